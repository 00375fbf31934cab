/*
 * colour.c - colour frames to 8-bit RGB. The YBR equations are the inverses of PS3.3
 * C.7.6.3.1.2 (full range, chroma offset 2^(BitsStored-1)); samples wider than 8 bits are
 * scaled to 0..255 by their BitsStored range. Palettes (C.7.6.3.1.5) are looked up with the
 * same clamping as any LUT; segmented palettes (C.7.9.2) are expanded first.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "colour.h"
#include "lut.h"

#define TAG_PAL_DESC(c) DCM_TAG(0x0028, 0x1101 + (c))
#define TAG_PAL_DATA(c) DCM_TAG(0x0028, 0x1201 + (c))
#define TAG_PAL_SEGMENTED(c) DCM_TAG(0x0028, 0x1221 + (c))

enum { C_RGB, C_YBR_FULL, C_YBR_PARTIAL };

static int colour_kind(const char *pi)
{
    if (!strcmp(pi, "RGB"))
        return C_RGB;
    if (!strcmp(pi, "YBR_FULL") || !strcmp(pi, "YBR_FULL_422") || !strcmp(pi, "YBR_ICT"))
        return C_YBR_FULL;
    if (!strcmp(pi, "YBR_PARTIAL_422") || !strcmp(pi, "YBR_PARTIAL_420"))
        return C_YBR_PARTIAL;
    return -1;
}

int render_colour_known(const char *photometric) { return colour_kind(photometric) >= 0; }

static uint8_t to8(double v, double top)
{
    v = floor(v + 0.5);
    if (!(v >= 0))
        v = 0;
    if (v > top)
        v = top;
    return top == 255 ? (uint8_t)v : (uint8_t)floor(v * 255.0 / top + 0.5);
}

int render_colour(const codec_frame *fr, uint8_t *rgb, rs_err *err)
{
    int kind = colour_kind(fr->photometric);
    size_t n = (size_t)fr->rows * fr->cols;
    double top = fr->bits_stored >= 32 ? 4294967295.0 : (double)((1ull << fr->bits_stored) - 1);
    double off = (double)(1ull << (fr->bits_stored - 1)), k = top / 255.0;
    if (kind < 0)
        return rs_err_set(err, RS_EUNSUPPORTED, "photometric interpretation '%s'", fr->photometric);
    for (size_t i = 0; i < n; i++) {
        double a = (double)render_sample(fr, 3 * i), b = (double)render_sample(fr, 3 * i + 1),
               c = (double)render_sample(fr, 3 * i + 2), r, g, bl;
        if (kind == C_RGB) {
            r = a, g = b, bl = c;
        } else if (kind == C_YBR_FULL) {
            b -= off, c -= off;
            r = a + 1.402 * c;
            g = a - 0.344136 * b - 0.714136 * c;
            bl = a + 1.772 * b;
        } else { /* partial range: Y in 16..235, chroma 16..240 (scaled for wider samples) */
            a = 1.164384 * (a - 16 * k);
            b -= off, c -= off;
            r = a + 1.596027 * c;
            g = a - 0.391762 * b - 0.812968 * c;
            bl = a + 2.017232 * b;
        }
        rgb[3 * i] = to8(r, top);
        rgb[3 * i + 1] = to8(g, top);
        rgb[3 * i + 2] = to8(bl, top);
    }
    return RS_OK;
}

/* ---- palettes -------------------------------------------------------------------------------- */

typedef struct seg_src {
    const uint8_t *p;
    size_t n;   /* words (16-bit) or bytes (8-bit) */
    int wide;
} seg_src;

static unsigned seg_at(const seg_src *s, size_t i)
{
    return s->wide ? (unsigned)s->p[2 * i] | ((unsigned)s->p[2 * i + 1] << 8) : s->p[i];
}

/* Expand segments starting at word `pos` into out (cap entries); nseg 0 = until the end. */
static int seg_expand(const seg_src *s, size_t pos, unsigned nseg, int depth, uint16_t *out, uint32_t cap,
                      uint32_t *len)
{
    if (depth > 4)
        return RS_EFORMAT;
    for (unsigned done = 0; pos < s->n && (!nseg || done < nseg); done++) {
        if (pos + 2 > s->n)
            break; /* a pad byte after the last segment */
        unsigned op = seg_at(s, pos), cnt = seg_at(s, pos + 1);
        pos += 2;
        if (op == 0) { /* discrete */
            if (pos + cnt > s->n || *len + cnt > cap)
                return RS_EFORMAT;
            for (unsigned i = 0; i < cnt; i++)
                out[(*len)++] = (uint16_t)seg_at(s, pos + i);
            pos += cnt;
        } else if (op == 1) { /* linear from the previous entry */
            if (pos + 1 > s->n || *len == 0 || *len + cnt > cap)
                return RS_EFORMAT;
            double y0 = out[*len - 1], y1 = seg_at(s, pos++);
            for (unsigned i = 1; i <= cnt; i++)
                out[(*len)++] = (uint16_t)nearbyint(y0 + (y1 - y0) * i / cnt);
        } else if (op == 2) { /* indirect: cnt segments again from an earlier offset */
            if (!s->wide || pos + 2 > s->n)
                return RS_EFORMAT;
            size_t at = (size_t)seg_at(s, pos) | ((size_t)seg_at(s, pos + 1) << 16);
            pos += 2;
            if (at >= pos - 4)
                return RS_EFORMAT;
            int rc = seg_expand(s, at, cnt, depth + 1, out, cap, len);
            if (rc)
                return rc;
        } else {
            return RS_EFORMAT;
        }
    }
    return RS_OK;
}

static int palette_segmented(dcm_file *f, dcm_elem *desc, dcm_elem *seg, int is_signed, render_lut *l,
                             rs_err *err)
{
    int rc = render_lut_desc(f, desc, is_signed, l, err);
    if (rc)
        return rc;
    uint32_t n = l->n;
    l->n = 0;
    if (seg->flags & DCM_EF_BULK) {
        if ((rc = dcm_file_load(f, seg, err)))
            return rc;
    }
    uint16_t *t = calloc(n, sizeof *t);
    if (!t)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    seg_src s = {seg->v.bytes, 0, l->bits > 8};
    s.n = s.wide ? seg->len / 2 : seg->len;
    uint32_t len = 0;
    if (!seg->v.bytes || seg_expand(&s, 0, 0, 0, t, n, &len) || len != n) {
        free(t);
        return rs_err_set(err, RS_EFORMAT, "segmented palette does not expand to %u entries", n);
    }
    l->data = t;
    l->n = n;
    return RS_OK;
}

static uint8_t pal8(const render_lut *l, uint16_t e)
{
    if (l->bits > 8)
        return (uint8_t)(((uint32_t)e * 255 + 32767) / 65535);
    return (uint8_t)(e > 255 ? e >> 8 : e); /* 8-bit entries in 16-bit words: some put them high */
}

int render_palette(dcm_file *f, const codec_frame *fr, uint8_t *rgb, rs_err *err)
{
    render_lut lut[3];
    int rc = RS_OK;
    int is_signed = fr->type == CODEC_S8 || fr->type == CODEC_S16 || fr->type == CODEC_S32;
    memset(lut, 0, sizeof lut);
    for (int c = 0; c < 3; c++) {
        dcm_elem *desc = dcm_ds_find(f->ds, TAG_PAL_DESC(c));
        dcm_elem *seg = dcm_ds_find(f->ds, TAG_PAL_SEGMENTED(c));
        dcm_elem *data = dcm_ds_find(f->ds, TAG_PAL_DATA(c));
        if (!desc)
            rc = rs_err_set(err, RS_EFORMAT, "PALETTE COLOR without palette descriptors");
        else if (data || !seg)
            rc = render_lut_parse(f, desc, data, is_signed, &lut[c], err);
        else
            rc = palette_segmented(f, desc, seg, is_signed, &lut[c], err);
        if (rc)
            goto out;
    }
    size_t n = (size_t)fr->rows * fr->cols;
    for (size_t i = 0; i < n; i++) {
        int64_t s = render_sample(fr, i);
        for (int c = 0; c < 3; c++)
            rgb[3 * i + c] = pal8(&lut[c], render_lut_at(&lut[c], s));
    }
out:
    for (int c = 0; c < 3; c++)
        render_lut_free(&lut[c]);
    return rc;
}
