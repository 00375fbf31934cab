/*
 * jpeg12.c - 12-bit JPEG extended sequential (T.81 process 4: SOF1, Huffman, 12-bit samples),
 * the one JPEG process DICOM uses that Debian's 8-bit libjpeg-turbo cannot decode. One
 * component only (what CT/MR/CR 12-bit lossy files are); anything else is RS_EUNSUPPORTED.
 *
 * The input is never read past its end: the bit reader pads with zeros after a marker or
 * the end and counts the padding, so a truncated scan is reported, not decoded into grey.
 * The inverse DCT is the direct separable form in double precision (within rounding of
 * IJG's islow, which is what the tests' reference, dcmdjpeg, uses).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decoders.h"

typedef struct j12_huff {
    int defined;
    uint8_t bits[17];
    uint8_t vals[256];
    int32_t maxcode[18], valptr[17], mincode[17];
} j12_huff;

typedef struct j12 {
    const uint8_t *p;
    size_t n, pos;
    uint16_t q[4][64];
    int qdef[4];
    j12_huff dc[4], ac[4];
    uint32_t w, h, restart;
    int qsel, cid;
    /* bit reader */
    uint32_t acc;
    int nbits, hit_marker;
    uint32_t pad;
} j12;

static const uint8_t zigzag[64] = {0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
                                   12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
                                   35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
                                   58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

static int fail(rs_err *err, const char *what) { return rs_err_set(err, RS_EFORMAT, "12-bit JPEG: %s", what); }

static int read_dht(j12 *j, size_t end, rs_err *err)
{
    while (j->pos < end) {
        int tc = j->p[j->pos] >> 4, th = j->p[j->pos] & 15;
        if (tc > 1 || th > 3 || end - j->pos < 17)
            return fail(err, "bad Huffman table");
        j12_huff *t = tc ? &j->ac[th] : &j->dc[th];
        size_t total = 0;
        for (int i = 1; i <= 16; i++)
            total += t->bits[i] = j->p[j->pos + (size_t)i];
        j->pos += 17;
        if (total > 256 || total > end - j->pos)
            return fail(err, "Huffman table overruns its segment");
        memcpy(t->vals, j->p + j->pos, total);
        j->pos += total;
        int32_t code = 0, k = 0;
        for (int l = 1; l <= 16; l++) {
            t->valptr[l] = k;
            t->mincode[l] = code;
            code += t->bits[l];
            k += t->bits[l];
            t->maxcode[l] = t->bits[l] ? code - 1 : -1;
            if (code > (1 << l))
                return fail(err, "Huffman table is not a prefix code");
            code <<= 1;
        }
        t->maxcode[17] = INT32_MAX;
        t->defined = 1;
    }
    return RS_OK;
}

static int read_dqt(j12 *j, size_t end, rs_err *err)
{
    while (j->pos < end) {
        int pq = j->p[j->pos] >> 4, tq = j->p[j->pos] & 15;
        size_t len = pq ? 128 : 64;
        if (pq > 1 || tq > 3 || end - j->pos - 1 < len)
            return fail(err, "bad quantisation table");
        j->pos++;
        for (int i = 0; i < 64; i++)
            j->q[tq][zigzag[i]] = pq ? (uint16_t)(j->p[j->pos + 2 * i] << 8 | j->p[j->pos + 2 * i + 1]) : j->p[j->pos + i];
        j->pos += len;
        j->qdef[tq] = 1;
    }
    return RS_OK;
}

/* ---- bits ------------------------------------------------------------------------------------ */

static void fill(j12 *j)
{
    while (j->nbits <= 24) {
        uint32_t c = 0;
        if (!j->hit_marker && j->pos < j->n) {
            c = j->p[j->pos];
            if (c == 0xFF) {
                if (j->pos + 1 < j->n && j->p[j->pos + 1] == 0) {
                    j->pos += 2;
                } else {
                    j->hit_marker = 1;
                    c = 0;
                }
            } else {
                j->pos++;
            }
        } else {
            j->hit_marker = 1;
        }
        if (j->hit_marker)
            j->pad += 8;
        j->acc |= c << (24 - j->nbits);
        j->nbits += 8;
    }
}

static uint32_t getbits(j12 *j, int k)
{
    if (k == 0)
        return 0;
    fill(j);
    uint32_t v = j->acc >> (32 - k);
    j->acc <<= k;
    j->nbits -= k;
    return v;
}

static int decode_sym(j12 *j, const j12_huff *t)
{
    int32_t code = 0;
    for (int l = 1; l <= 16; l++) {
        code = code << 1 | (int32_t)getbits(j, 1);
        if (code <= t->maxcode[l])
            return t->vals[(t->valptr[l] + code - t->mincode[l]) & 255];
    }
    return -1;
}

static int32_t extend(uint32_t v, int s) { return s && v < (1u << (s - 1)) ? (int32_t)v - (1 << s) + 1 : (int32_t)v; }

/* padding consumed beyond what the reader still holds means the data ran out */
static int ran_out(const j12 *j) { return j->hit_marker && j->pad > (uint32_t)j->nbits; }

/* ---- blocks ------------------------------------------------------------------------------------ */

static void idct_put(const int32_t *coef, const uint16_t *q, codec_frame *out, uint32_t bx, uint32_t by)
{
    static double cosv[8][8];
    static int ready;
    if (!ready) { /* constant table, same values every time: benign if two threads race */
        for (int x = 0; x < 8; x++)
            for (int u = 0; u < 8; u++)
                cosv[x][u] = (u ? 1.0 : sqrt(0.5)) * cos((2 * x + 1) * u * M_PI / 16) / 2;
        ready = 1;
    }
    double tmp[64], f[64];
    for (int i = 0; i < 64; i++)
        f[i] = (double)coef[i] * q[i];
    for (int y = 0; y < 8; y++) /* rows of the result from the columns of f */
        for (int u = 0; u < 8; u++) {
            double s = 0;
            for (int v = 0; v < 8; v++)
                s += cosv[y][v] * f[v * 8 + u];
            tmp[y * 8 + u] = s;
        }
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) {
            double s = 0;
            for (int u = 0; u < 8; u++)
                s += cosv[x][u] * tmp[y * 8 + u];
            s = s < -4096 ? -4096 : s > 4096 ? 4096 : s;
            long v = lround(s) + 2048;
            v = v < 0 ? 0 : v > 4095 ? 4095 : v;
            uint32_t px = bx * 8 + (uint32_t)x, py = by * 8 + (uint32_t)y;
            if (px < out->cols && py < out->rows)
                codec_put(out, (size_t)py * out->cols + px, (uint32_t)v);
        }
}

static int decode_scan(j12 *j, int td, int ta, codec_frame *out, rs_err *err)
{
    const j12_huff *dc = &j->dc[td], *ac = &j->ac[ta];
    if (!dc->defined || !ac->defined || !j->qdef[j->qsel])
        return fail(err, "scan uses an undefined table");
    uint32_t bw = (j->w + 7) / 8, bh = (j->h + 7) / 8, left = j->restart;
    int64_t pred = 0; /* hostile DC differences could overflow 32 bits over many blocks */
    int32_t coef[64];
    for (uint32_t by = 0; by < bh; by++)
        for (uint32_t bx = 0; bx < bw; bx++) {
            if (j->restart && left == 0) { /* expect RSTn: drop the bits, skip the marker */
                j->acc = 0;
                j->nbits = 0;
                j->pad = 0;
                j->hit_marker = 0;
                if (j->pos + 1 >= j->n || j->p[j->pos] != 0xFF || (j->p[j->pos + 1] & 0xF8) != 0xD0)
                    return fail(err, "missing restart marker");
                j->pos += 2;
                pred = 0;
                left = j->restart;
            }
            left--;
            memset(coef, 0, sizeof coef);
            int s = decode_sym(j, dc);
            if (s < 0 || s > 15)
                return fail(err, "bad DC code");
            pred += extend(getbits(j, s), s);
            coef[0] = (int32_t)(pred > (1 << 24) ? (1 << 24) : pred < -(1 << 24) ? -(1 << 24) : pred);
            for (int k = 1; k < 64;) {
                int rs = decode_sym(j, ac);
                if (rs < 0)
                    return fail(err, "bad AC code");
                int r = rs >> 4;
                s = rs & 15;
                if (s == 0) {
                    if (r != 15)
                        break;
                    k += 16;
                    continue;
                }
                k += r;
                if (k > 63)
                    return fail(err, "AC run past the block");
                coef[zigzag[k++]] = extend(getbits(j, s), s);
            }
            if (ran_out(j))
                return fail(err, "scan data ends early (truncated fragment?)");
            idct_put(coef, j->q[j->qsel], out, bx, by);
        }
    return RS_OK;
}

int codec_jpeg12_decode(const codec_desc *d, const uint8_t *p, size_t n, codec_frame *out, rs_err *err)
{
    j12 *j = calloc(1, sizeof *j);
    if (!j)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    j->p = p;
    j->n = n;
    j->pos = 2; /* after SOI, checked by the caller */
    int rc = RS_OK, have_sof = 0;
    while (rc == RS_OK) {
        if (j->pos + 4 > n || p[j->pos] != 0xFF) {
            rc = fail(err, "expected a marker");
            break;
        }
        int m = p[j->pos + 1];
        if (m == 0xFF) {
            j->pos++;
            continue;
        }
        size_t len = (size_t)p[j->pos + 2] << 8 | p[j->pos + 3];
        if (len < 2 || len > n - j->pos - 2) {
            rc = fail(err, "segment overruns the frame");
            break;
        }
        size_t start = j->pos + 4, end = j->pos + 2 + len;
        j->pos = start;
        if (m == 0xC4) {
            rc = read_dht(j, end, err);
        } else if (m == 0xDB) {
            rc = read_dqt(j, end, err);
        } else if (m == 0xDD) {
            j->restart = len >= 4 ? (uint32_t)p[start] << 8 | p[start + 1] : 0;
        } else if (m == 0xC1) {
            if (len != 11 || p[start] != 12 || p[start + 5] != 1) {
                rc = rs_err_set(err, RS_EUNSUPPORTED, "12-bit JPEG with more than one component");
                break;
            }
            j->h = (uint32_t)p[start + 1] << 8 | p[start + 2];
            j->w = (uint32_t)p[start + 3] << 8 | p[start + 4];
            j->cid = p[start + 6];
            j->qsel = p[start + 8] & 3;
            if (p[start + 7] != 0x11 || p[start + 8] > 3) {
                rc = fail(err, "bad frame header");
                break;
            }
            if ((rc = codec_check_header(d, "JPEG frame header", j->w, j->h, 1, 12, err)))
                break;
            have_sof = 1;
        } else if (m == 0xDA) {
            /* Ss/Se/Ah/Al mean nothing to a sequential scan; some encoders write junk there
               (JPEG-lossy.dcm), which IJG ignores with a warning, so they are ignored here */
            if (!have_sof || len != 8 || p[start] != 1 || p[start + 1] != j->cid) {
                rc = fail(err, "unexpected scan header");
                break;
            }
            j->pos = end;
            if ((rc = codec_frame_init(out, d, 1, d->photometric, err)))
                break;
            rc = decode_scan(j, p[start + 2] >> 4 & 3, p[start + 2] & 3, out, err);
            break; /* one component, one scan: done */
        } else if ((m >= 0xC0 && m <= 0xCF) || m == 0xD9) {
            rc = rs_err_set(err, RS_EUNSUPPORTED, "12-bit JPEG with marker %02X", m);
        }
        j->pos = end;
    }
    free(j);
    if (rc)
        codec_frame_free(out);
    return rc;
}
