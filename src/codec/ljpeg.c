/*
 * ljpeg.c - JPEG lossless process 14 decoder (T.81 Annex H), see ljpeg.h and docs/codec-ljpeg.md.
 *
 * Layout: a marker walker (SOI, SOF3, DHT, DRI, SOS, EOI; everything else skipped or refused),
 * canonical Huffman tables with a 9-bit lookup, a bit reader that never leaves the input and
 * pads with zeros past a marker or the end (consuming padding is detected and reported as
 * truncation), and a line decoder that applies the predictors. Scans write straight into the
 * output image (samples still without the point transform), so the line above is always at
 * hand and no second buffer is needed.
 */
#include "ljpeg.h"

#include <stdlib.h>
#include <string.h>

#define LJ_LOOK 9 /* bits resolved by one table lookup; longer codes take the slow path */

typedef struct lj_huff {
    int defined;
    uint16_t lut[1 << LJ_LOOK]; /* (length << 8) | symbol, 0 when the code is longer */
    int32_t maxcode[17];        /* largest code of each length, -1 when none */
    int32_t valoff[17];         /* index in vals of a code of that length, minus the code */
    uint8_t vals[256];
} lj_huff;

typedef struct lj_comp {
    int id;
    int hv;   /* sampling factors byte; all components must agree */
    int done; /* decoded by an earlier scan */
} lj_comp;

typedef struct lj_dec {
    const uint8_t *p;
    size_t n, pos;
    int header_only;
    ljpeg_limits lim;
    int have_sof;
    ljpeg_info info;
    lj_comp comp[4];
    lj_huff huff[4];
    uint32_t restart; /* DRI interval in MCUs, 0 = none */
    uint16_t *samples;
    rs_err *err;
} lj_dec;

typedef struct lj_scan {
    int ns;
    int ci[4];              /* frame component index of each scan component */
    const lj_huff *tab[4];  /* its Huffman table */
    int pred;               /* selection value 1..7 */
    int pt;                 /* point transform */
} lj_scan;

/* ---- bit reader ------------------------------------------------------------------------ */

typedef struct lj_br {
    const uint8_t *p;
    size_t pos, end;
    uint64_t acc;  /* next bits, most significant first */
    int nbits;     /* bits in acc, real and padding */
    int64_t pad;   /* zero bits appended past the data; consuming them means truncation */
    int stopped;   /* reached a marker or the end: only padding from now on */
} lj_br;

static void lj_br_init(lj_br *b, const uint8_t *p, size_t pos, size_t end)
{
    memset(b, 0, sizeof *b);
    b->p = p;
    b->pos = pos;
    b->end = end;
}

/* Tops acc up to at least 57 bits, undoing FF00 stuffing; stops before any marker. */
static void lj_br_fill(lj_br *b)
{
    while (b->nbits <= 56) {
        unsigned c = 0;
        if (!b->stopped && b->pos < b->end) {
            c = b->p[b->pos];
            if (c != 0xFF)
                b->pos++;
            else if (b->pos + 1 < b->end && b->p[b->pos + 1] == 0)
                b->pos += 2;
            else
                b->stopped = 1, c = 0;
        } else {
            b->stopped = 1;
        }
        if (b->stopped)
            b->pad += 8;
        b->acc |= (uint64_t)c << (56 - b->nbits);
        b->nbits += 8;
    }
}

static inline uint32_t lj_br_peek(const lj_br *b, int n)
{
    return (uint32_t)(b->acc >> (64 - n));
}

static inline void lj_br_skip(lj_br *b, int n)
{
    b->acc <<= n;
    b->nbits -= n;
}

static inline int lj_br_overrun(const lj_br *b)
{
    return b->nbits < b->pad;
}

/* ---- Huffman --------------------------------------------------------------------------- */

static int lj_huff_build(lj_huff *h, const uint8_t counts[16], const uint8_t *vals, int total)
{
    int32_t code = 0;
    int k = 0;

    memset(h, 0, sizeof *h);
    memcpy(h->vals, vals, (size_t)total);
    for (int len = 1; len <= 16; len++) {
        h->valoff[len] = k - code;
        h->maxcode[len] = counts[len - 1] ? code + counts[len - 1] - 1 : -1;
        for (int i = 0; i < counts[len - 1]; i++, code++, k++) {
            if (code >= (1 << len))
                return -1; /* more codes than the length allows */
            if (len > LJ_LOOK)
                continue;
            int span = 1 << (LJ_LOOK - len);
            for (int j = 0; j < span; j++)
                h->lut[(code << (LJ_LOOK - len)) + j] = (uint16_t)(len << 8 | vals[k]);
        }
        code <<= 1;
    }
    h->defined = 1;
    return 0;
}

/* The next symbol, or -1 for a bit pattern that is no code. Needs 16 bits in acc. */
static inline int lj_huff_decode(lj_br *b, const lj_huff *h)
{
    unsigned e = h->lut[lj_br_peek(b, LJ_LOOK)];
    if (e) {
        lj_br_skip(b, (int)(e >> 8));
        return (int)(e & 0xFF);
    }
    uint32_t c16 = lj_br_peek(b, 16);
    for (int len = LJ_LOOK + 1; len <= 16; len++) {
        int32_t code = (int32_t)(c16 >> (16 - len));
        if (code <= h->maxcode[len]) {
            lj_br_skip(b, len);
            return h->vals[h->valoff[len] + code];
        }
    }
    return -1;
}

/* One difference (H.1.2.2): category SSSS, then SSSS extra bits; SSSS 16 means 32768. */
static inline int lj_diff(lj_br *b, const lj_huff *h, int *diff)
{
    if (b->nbits < 32)
        lj_br_fill(b);
    int s = lj_huff_decode(b, h);
    if (s <= 0) {
        *diff = 0;
        return s;
    }
    if (s >= 16) {
        *diff = 32768;
        return s == 16 ? 0 : -1;
    }
    int v = (int)lj_br_peek(b, s);
    lj_br_skip(b, s);
    *diff = v < (1 << (s - 1)) ? v - (1 << s) + 1 : v;
    return 0;
}

/* ---- markers and segments -------------------------------------------------------------- */

static int lj_u16(const uint8_t *q)
{
    return q[0] << 8 | q[1];
}

/* Position of the next marker (FF followed by neither 00 nor FF) at or after pos, or n. */
static size_t lj_find_marker(const uint8_t *p, size_t pos, size_t n)
{
    while (pos + 1 < n) {
        const uint8_t *f = memchr(p + pos, 0xFF, n - pos - 1);
        if (!f)
            return n;
        pos = (size_t)(f - p);
        if (p[pos + 1] != 0 && p[pos + 1] != 0xFF)
            return pos;
        pos++;
    }
    return n;
}

/* Reads the marker at pos (fill bytes allowed). *m = -1 at the end of the input. */
static int lj_marker(lj_dec *d, int *m)
{
    if (d->pos >= d->n) {
        *m = -1;
        return RS_OK;
    }
    if (d->p[d->pos] != 0xFF)
        return rs_err_at(d->err, RS_EFORMAT, d->pos, "ljpeg: expected a marker, found byte 0x%02x",
                         d->p[d->pos]);
    while (d->pos < d->n && d->p[d->pos] == 0xFF)
        d->pos++;
    if (d->pos >= d->n) {
        *m = -1;
        return RS_OK;
    }
    *m = d->p[d->pos++];
    return RS_OK;
}

/* The body of a length-prefixed segment; pos moves past it. */
static int lj_segment(lj_dec *d, int m, const uint8_t **seg, size_t *len)
{
    if (d->n - d->pos < 2)
        return rs_err_at(d->err, RS_ETRUNC, d->pos, "ljpeg: marker FF%02X cut before its length", m);
    size_t l = (size_t)lj_u16(d->p + d->pos);
    if (l < 2)
        return rs_err_at(d->err, RS_EFORMAT, d->pos, "ljpeg: marker FF%02X has length %zu", m, l);
    if (l > d->n - d->pos)
        return rs_err_at(d->err, RS_ETRUNC, d->pos,
                         "ljpeg: marker FF%02X segment of %zu bytes, %zu left", m, l, d->n - d->pos);
    *seg = d->p + d->pos + 2;
    *len = l - 2;
    d->pos += l;
    return RS_OK;
}

/* ---- frame, tables, restart ------------------------------------------------------------ */

static int lj_check_size(lj_dec *d, size_t at)
{
    const ljpeg_info *f = &d->info;
    uint64_t samples = (uint64_t)f->width * f->height * (uint64_t)f->components;

    if (f->width > d->lim.max_width || f->height > d->lim.max_height || samples > d->lim.max_samples)
        return rs_err_at(d->err, RS_ELIMIT, at, "ljpeg: %ux%u x%d exceeds the limits (%ux%u, %llu samples)",
                         f->width, f->height, f->components, d->lim.max_width, d->lim.max_height,
                         (unsigned long long)d->lim.max_samples);
    /* Every sample costs at least one bit of entropy-coded data. */
    if (samples > (uint64_t)(d->n - d->pos) * 8)
        return rs_err_at(d->err, RS_ETRUNC, at, "ljpeg: %llu samples cannot fit in the %zu bytes left",
                         (unsigned long long)samples, d->n - d->pos);
    return RS_OK;
}

static int lj_sof3(lj_dec *d, const uint8_t *s, size_t len, size_t at)
{
    ljpeg_info *f = &d->info;

    if (d->have_sof)
        return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: second frame header");
    if (len < 6 || len != 6 + 3 * (size_t)s[5])
        return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: SOF3 length %zu does not match its content", len);
    f->precision = s[0];
    f->height = (uint32_t)lj_u16(s + 1);
    f->width = (uint32_t)lj_u16(s + 3);
    f->components = s[5];
    if (f->precision < 2 || f->precision > 16)
        return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: precision %d (2..16 allowed)", f->precision);
    if (f->height == 0)
        return rs_err_at(d->err, RS_EUNSUPPORTED, at, "ljpeg: height given by DNL is not supported");
    if (f->width == 0)
        return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: width 0");
    if (f->components < 1 || f->components > 4)
        return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: %d components (1..4 allowed)", f->components);
    for (int i = 0; i < f->components; i++) {
        const uint8_t *c = s + 6 + 3 * i;
        d->comp[i] = (lj_comp){c[0], c[1], 0};
        if ((c[1] >> 4) < 1 || (c[1] >> 4) > 4 || (c[1] & 15) < 1 || (c[1] & 15) > 4)
            return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: sampling factors 0x%02x", c[1]);
        if (c[1] != d->comp[0].hv)
            return rs_err_at(d->err, RS_EUNSUPPORTED, at, "ljpeg: subsampled components are not supported");
        for (int j = 0; j < i; j++)
            if (d->comp[j].id == c[0])
                return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: component id %d twice", c[0]);
    }
    d->have_sof = 1;
    return d->header_only ? RS_OK : lj_check_size(d, at);
}

static int lj_dht(lj_dec *d, const uint8_t *s, size_t len, size_t at)
{
    while (len > 0) {
        if (len < 17)
            return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: DHT cut short");
        int tc = s[0] >> 4, th = s[0] & 15, total = 0;
        for (int i = 1; i <= 16; i++)
            total += s[i];
        if (tc > 1 || th > 3)
            return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: DHT class %d id %d", tc, th);
        if ((size_t)total > len - 17 || total > 256)
            return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: DHT lists %d codes, has room for %zu",
                             total, len - 17);
        /* Class 1 (AC) tables mean nothing to a lossless scan; some encoders send them anyway. */
        if (tc == 0 && lj_huff_build(&d->huff[th], s + 1, s + 17, total) != 0)
            return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: DHT table %d code lengths overflow", th);
        s += 17 + total;
        len -= 17 + (size_t)total;
    }
    return RS_OK;
}

static int lj_dri(lj_dec *d, const uint8_t *s, size_t len, size_t at)
{
    if (len != 2)
        return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: DRI length %zu", len);
    d->restart = (uint32_t)lj_u16(s);
    return RS_OK;
}

/* Between restart intervals: drop the rest of the byte, expect RSTn, start afresh. */
static int lj_restart(lj_dec *d, lj_br *b, unsigned expect)
{
    size_t at = lj_find_marker(d->p, b->pos, d->n);

    if (at >= d->n)
        return rs_err_at(d->err, RS_ETRUNC, b->pos, "ljpeg: data ends before RST%u", expect);
    if (d->p[at + 1] != 0xD0 + expect)
        return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: found marker FF%02X where RST%u belongs",
                         d->p[at + 1], expect);
    lj_br_init(b, d->p, at + 2, d->n);
    return RS_OK;
}

/* ---- scans ----------------------------------------------------------------------------- */

static inline int lj_predict(int sel, int ra, int rb, int rc)
{
    switch (sel) {
    case 1: return ra;
    case 2: return rb;
    case 3: return rc;
    case 4: return ra + rb - rc;
    case 5: return ra + ((rb - rc) >> 1);
    case 6: return rb + ((ra - rc) >> 1);
    default: return (ra + rb) >> 1;
    }
}

/* One line of a scan. prev is NULL on the first line of the scan or of a restart interval,
 * which is predicted from the left only, its first sample from `initial` (H.1.2.1). */
static int lj_line(lj_br *b, const lj_scan *s, uint16_t *row, const uint16_t *prev, uint32_t w,
                   int nc, int initial, unsigned mask)
{
    for (uint32_t x = 0; x < w; x++) {
        for (int k = 0; k < s->ns; k++) {
            size_t i = (size_t)x * (size_t)nc + (size_t)s->ci[k];
            int pred, diff;
            if (!prev)
                pred = x ? row[i - (size_t)nc] : initial;
            else if (!x)
                pred = prev[i];
            else
                pred = lj_predict(s->pred, row[i - (size_t)nc], prev[i], prev[i - (size_t)nc]);
            if (lj_diff(b, s->tab[k], &diff) != 0)
                return -1;
            row[i] = (uint16_t)((unsigned)(pred + diff) & mask);
        }
    }
    return 0;
}

static void lj_point_transform(lj_dec *d, const lj_scan *s)
{
    size_t count = (size_t)d->info.width * d->info.height;
    int nc = d->info.components;

    if (s->pt == 0)
        return;
    for (int k = 0; k < s->ns; k++)
        for (size_t i = 0; i < count; i++) {
            uint16_t *v = &d->samples[i * (size_t)nc + (size_t)s->ci[k]];
            *v = (uint16_t)(*v << s->pt);
        }
}

static int lj_decode_scan(lj_dec *d, const lj_scan *s)
{
    uint32_t w = d->info.width, h = d->info.height, per_interval = 0;
    int nc = d->info.components, bits = d->info.precision - s->pt;
    size_t stride = (size_t)w * (size_t)nc;
    unsigned rst = 0;
    lj_br b;

    if (d->restart) {
        if (d->restart % w != 0)
            return rs_err_at(d->err, RS_EUNSUPPORTED, d->pos,
                             "ljpeg: restart interval %u is not a whole number of %u-sample lines",
                             d->restart, w);
        per_interval = d->restart / w;
    }
    lj_br_init(&b, d->p, d->pos, d->n);
    for (uint32_t y = 0; y < h; y++) {
        int first = y == 0;
        if (per_interval && y > 0 && y % per_interval == 0) {
            int rc = lj_restart(d, &b, rst);
            if (rc != RS_OK)
                return rc;
            rst = (rst + 1) & 7;
            first = 1;
        }
        uint16_t *row = d->samples + y * stride;
        if (lj_line(&b, s, row, first ? NULL : row - stride, w, nc, 1 << (bits - 1),
                    (1u << bits) - 1) != 0)
            return rs_err_at(d->err, RS_EFORMAT, b.pos, "ljpeg: invalid Huffman code in line %u", y);
        if (lj_br_overrun(&b))
            return rs_err_at(d->err, RS_ETRUNC, b.pos, "ljpeg: entropy-coded data ends in line %u", y);
    }
    lj_point_transform(d, s);
    d->pos = lj_find_marker(d->p, b.pos, d->n);
    return RS_OK;
}

static int lj_sos(lj_dec *d, const uint8_t *s, size_t len, size_t at)
{
    lj_scan sc = {0};

    if (!d->have_sof)
        return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: SOS before SOF3");
    if (len < 1 || len != 4 + 2 * (size_t)s[0] || s[0] < 1 || s[0] > d->info.components)
        return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: bad SOS header");
    sc.ns = s[0];
    for (int k = 0; k < sc.ns; k++) {
        int id = s[1 + 2 * k], td = s[2 + 2 * k] >> 4, ci = -1;
        for (int i = 0; i < d->info.components; i++)
            if (d->comp[i].id == id)
                ci = i;
        if (ci < 0 || d->comp[ci].done)
            return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: scan names component %d, unknown or decoded", id);
        if (td > 3 || !d->huff[td].defined)
            return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: scan uses Huffman table %d, never defined", td);
        d->comp[ci].done = 1;
        sc.ci[k] = ci;
        sc.tab[k] = &d->huff[td];
    }
    sc.pred = s[1 + 2 * sc.ns];
    sc.pt = s[3 + 2 * sc.ns] & 15;
    if (sc.pred < 1 || sc.pred > 7)
        return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: predictor %d (1..7 allowed)", sc.pred);
    if (sc.pt >= d->info.precision || (s[3 + 2 * sc.ns] >> 4) != 0)
        return rs_err_at(d->err, RS_EFORMAT, at, "ljpeg: point transform 0x%02x", s[3 + 2 * sc.ns]);
    if (!d->samples) {
        size_t count = (size_t)d->info.width * d->info.height * (size_t)d->info.components;
        d->samples = calloc(count, sizeof *d->samples);
        if (!d->samples)
            return rs_err_set(d->err, RS_ENOMEM, "ljpeg: %zu samples", count);
    }
    return lj_decode_scan(d, &sc);
}

/* ---- the marker walk ------------------------------------------------------------------- */

static int lj_finish(lj_dec *d)
{
    if (!d->have_sof)
        return rs_err_at(d->err, RS_EFORMAT, d->pos, "ljpeg: no SOF3 frame header");
    if (d->header_only)
        return RS_OK;
    for (int i = 0; i < d->info.components; i++)
        if (!d->comp[i].done)
            return rs_err_at(d->err, d->pos >= d->n ? RS_ETRUNC : RS_EFORMAT, d->pos,
                             "ljpeg: no scan for component %d", d->comp[i].id);
    return RS_OK;
}

static int lj_is_other_sof(int m)
{
    return m >= 0xC0 && m <= 0xCF && m != 0xC3 && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

static int lj_walk(lj_dec *d)
{
    if (d->n < 2 || d->p[0] != 0xFF || d->p[1] != 0xD8)
        return rs_err_at(d->err, RS_EFORMAT, 0, "ljpeg: no SOI marker");
    d->pos = 2;
    for (;;) {
        size_t at = d->pos;
        const uint8_t *seg = NULL;
        size_t len = 0;
        int m = -1, rc = lj_marker(d, &m);
        if (rc != RS_OK)
            return rc;
        if (m < 0 || m == 0xD9)
            return lj_finish(d);
        if ((m >= 0xD0 && m <= 0xD7) || m == 0x01)
            continue; /* stray RSTn, TEM: no segment */
        if (lj_is_other_sof(m))
            return rs_err_at(d->err, RS_EUNSUPPORTED, at,
                             "ljpeg: SOF%d frame, only lossless SOF3 is supported", m - 0xC0);
        if (m == 0xD8 || m == 0xDC)
            return rs_err_at(d->err, m == 0xDC ? RS_EUNSUPPORTED : RS_EFORMAT, at,
                             "ljpeg: unexpected marker FF%02X", m);
        if ((rc = lj_segment(d, m, &seg, &len)) != RS_OK)
            return rc;
        if (m == 0xC3)
            rc = lj_sof3(d, seg, len, at);
        else if (m == 0xC4)
            rc = lj_dht(d, seg, len, at);
        else if (m == 0xDD)
            rc = lj_dri(d, seg, len, at);
        else if (m == 0xDA)
            rc = d->header_only ? lj_finish(d) : lj_sos(d, seg, len, at);
        if (rc != RS_OK || (d->header_only && d->have_sof))
            return rc;
    }
}

int ljpeg_read_header(const uint8_t *p, size_t n, ljpeg_info *info, rs_err *err)
{
    lj_dec *d = calloc(1, sizeof *d);
    int rc;

    memset(info, 0, sizeof *info);
    if (!d)
        return rs_err_set(err, RS_ENOMEM, "ljpeg: decoder state");
    *d = (lj_dec){.p = p, .n = n, .header_only = 1, .err = err};
    rc = lj_walk(d);
    if (rc == RS_OK)
        *info = d->info;
    free(d);
    return rc;
}

int ljpeg_decode(const uint8_t *p, size_t n, const ljpeg_limits *lim, ljpeg_image *out,
                 rs_err *err)
{
    static const ljpeg_limits defaults = LJPEG_LIMITS_DEFAULT;
    lj_dec *d = calloc(1, sizeof *d);
    int rc;

    memset(out, 0, sizeof *out);
    if (!d)
        return rs_err_set(err, RS_ENOMEM, "ljpeg: decoder state");
    *d = (lj_dec){.p = p, .n = n, .lim = lim ? *lim : defaults, .err = err};
    rc = lj_walk(d);
    if (rc == RS_OK) {
        *out = (ljpeg_image){d->info.width, d->info.height, d->info.components, d->info.precision,
                             d->samples};
        d->samples = NULL;
    }
    free(d->samples);
    free(d);
    return rc;
}

void ljpeg_image_free(ljpeg_image *img)
{
    if (!img)
        return;
    free(img->samples);
    img->samples = NULL;
}
