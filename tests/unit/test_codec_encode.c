/*
 * test_codec_encode.c - the encoders of src/codec (encode.h) against radshare's own decoders:
 * - RLE: round trips of hand-picked rows (runs of 1..130 bytes, 1-, 127-, 128-, 129-column and
 *   odd sizes, constant and alternating data), the worst case exactly at codec_rle_bound, segment
 *   count and offsets as Annex G wants, 12 segments for 32-bit colour, and the 32-bit offset limit;
 * - a round-trip property over pseudo-random images (sizes 1..40, 2..16 bits, signed or not,
 *   grey and colour): RLE, JPEG-LS and JPEG 2000 give the samples back exactly, JPEG-LS NEAR=3
 *   within 3, JPEG baseline within a bound on smooth 8-bit data;
 * - codec_enc_check: what each syntax refuses (JPEG from 12-bit or signed data, 1-bit, > 16 bits).
 */
#include <stdlib.h>
#include <string.h>

#include "codec/decoders.h"
#include "codec/encode.h"
#include "t.h"

static uint32_t lcg = 12345;
static uint32_t rnd(void)
{
    lcg = lcg * 1103515245u + 12345u;
    return lcg >> 8;
}

static codec_desc desc(uint32_t rows, uint32_t cols, int spp, int ba, int bs, int sgn)
{
    codec_desc d = {.rows = rows, .cols = cols, .frames = 1, .spp = spp, .bits_allocated = ba, .bits_stored = bs,
                    .high_bit = bs - 1, .is_signed = sgn};
    snprintf(d.photometric, sizeof d.photometric, "%s", spp == 3 ? "RGB" : "MONOCHROME2");
    return d;
}

/* A frame of d's samples from gen(i) (raw bits, masked and sign-extended by codec_put). */
static void fill(codec_frame *fr, const codec_desc *d, uint32_t (*gen)(size_t, const codec_desc *))
{
    CHECK_EQ_INT(codec_frame_init(fr, d, d->spp, d->photometric, NULL), RS_OK);
    size_t n = (size_t)d->rows * d->cols * (size_t)d->spp;
    for (size_t i = 0; i < n; i++)
        codec_put(fr, i, gen(i, d));
}

static uint32_t g_random(size_t i, const codec_desc *d) { return rnd(); }
static uint32_t g_const(size_t i, const codec_desc *d) { return 0xA5A5A5A5u; }
static uint32_t g_alt(size_t i, const codec_desc *d) { return i % 2 ? 0x01020304u : 0x80706050u; }
static uint32_t g_runs(size_t i, const codec_desc *d) /* runs of 1, 2, ..., 130 equal samples */
{
    size_t k = 1, at = 0;
    while (at + k <= i)
        at += k++;
    return (uint32_t)(k * 2654435761u);
}
static uint32_t g_smooth(size_t i, const codec_desc *d)
{
    size_t p = i / (size_t)d->spp, x = p % d->cols, y = p / d->cols;
    return (uint32_t)(x * 2 + y + (i % (size_t)d->spp) * 30); /* < 202: no wrap, no edge */
}

/* Max |a - b| of two frames of the same type (-1 when they differ in shape). */
static long max_diff(const codec_frame *a, const codec_frame *b)
{
    if (a->type != b->type || a->size != b->size || a->spp != b->spp)
        return -1;
    size_t n = (size_t)a->rows * a->cols * (size_t)a->spp;
    long m = 0;
    for (size_t i = 0; i < n; i++) {
        long x, y;
        switch (a->type) {
        case CODEC_U8: x = ((uint8_t *)a->data)[i], y = ((uint8_t *)b->data)[i]; break;
        case CODEC_S8: x = ((int8_t *)a->data)[i], y = ((int8_t *)b->data)[i]; break;
        case CODEC_U16: x = ((uint16_t *)a->data)[i], y = ((uint16_t *)b->data)[i]; break;
        case CODEC_S16: x = ((int16_t *)a->data)[i], y = ((int16_t *)b->data)[i]; break;
        case CODEC_U32: x = (long)((uint32_t *)a->data)[i], y = (long)((uint32_t *)b->data)[i]; break;
        default: x = ((int32_t *)a->data)[i], y = ((int32_t *)b->data)[i]; break;
        }
        if (labs(x - y) > m)
            m = labs(x - y);
    }
    return m;
}

/* Encode in ts, decode with our decoder; the largest sample error, or -1 on failure. */
static long round_trip(const char *ts, const codec_desc *d, const codec_frame *fr, const codec_enc_opts *o,
                       rs_buf *enc)
{
    rs_err err;
    rs_err_clear(&err);
    codec_frame back = {0};
    rs_buf_reset(enc);
    int rc = codec_enc_check(ts, d, &err);
    rc = rc ? rc : codec_encode_frame(ts, fr, o, enc, &err);
    codec_desc as_encoded = *d; /* what the instance says once encoded (JPEG colour: YBR_FULL_422) */
    snprintf(as_encoded.photometric, sizeof as_encoded.photometric, "%s", codec_enc_photometric(ts, d->photometric));
    d = &as_encoded;
    if (rc == RS_OK) {
        if (!strcmp(ts, CODEC_TS_RLE))
            rc = codec_rle_decode(d, enc->p, enc->len, &back, &err);
        else if (!strcmp(ts, CODEC_TS_J2K))
            rc = codec_j2k_decode(d, enc->p, enc->len, &back, &err);
        else if (!strcmp(ts, CODEC_TS_JPEG_BASELINE))
            rc = codec_jpeg_decode(d, enc->p, enc->len, &back, &err);
        else
            rc = codec_jls_decode(d, enc->p, enc->len, &back, &err);
    }
    long m = rc == RS_OK ? max_diff(fr, &back) : -1;
    if (m < 0)
        fprintf(stderr, "# %s %ux%u spp %d bits %d/%d signed %d: %s\n", ts, d->cols, d->rows, d->spp, d->bits_stored,
                d->bits_allocated, d->is_signed, err.msg);
    codec_frame_free(&back);
    return m;
}

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static void rle(void)
{
    rs_buf enc = RS_BUF_INIT;
    static const uint32_t cols[] = {1, 2, 3, 127, 128, 129, 131, 257};
    uint32_t (*gens[])(size_t, const codec_desc *) = {g_random, g_const, g_alt, g_runs};
    for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++)
        for (size_t g = 0; g < sizeof gens / sizeof gens[0]; g++)
            for (int ba = 8; ba <= 32; ba *= 2)
                for (int spp = 1; spp <= 3; spp += 2) {
                    codec_desc d = desc(5, cols[c], spp, ba, ba == 8 ? 7 : ba, 0);
                    codec_frame fr;
                    fill(&fr, &d, gens[g]);
                    CHECK_EQ_INT(round_trip(CODEC_TS_RLE, &d, &fr, NULL, &enc), 0);
                    int nseg = spp * ba / 8;
                    uint64_t bound = codec_rle_bound(d.rows, d.cols, nseg);
                    CHECK(enc.len <= bound);
                    CHECK_EQ_INT(le32(enc.p), nseg);
                    CHECK_EQ_INT(le32(enc.p + 4), 64);
                    for (int s = 0; s < nseg; s++)
                        CHECK(le32(enc.p + 4 + 4 * s) % 2 == 0);
                    CHECK_EQ_INT(enc.len % 2, 0);
                    if (gens[g] == g_alt && ba == 8) { /* all literals: the bound, to the padding */
                        uint64_t seg = (uint64_t)d.rows * (d.cols + (d.cols + 127) / 128);
                        CHECK_EQ_INT(enc.len, 64 + (uint64_t)nseg * (seg + seg % 2));
                    }
                    if (gens[g] == g_const && d.cols >= 3) /* a replicate run per 128 bytes of a row, + a short end */
                        CHECK(enc.len <= 64 + (uint64_t)nseg * (d.rows * (2 * ((d.cols + 127) / 128) + 1) + 1));
                    codec_frame_free(&fr);
                }
    /* limits: 12 segments fit (32-bit colour), 32-bit offsets do not for 65535 x 65535 x 12 */
    codec_desc big = desc(65535, 65535, 3, 32, 32, 0);
    CHECK_EQ_INT(codec_enc_check(CODEC_TS_RLE, &big, NULL), RS_ELIMIT);
    CHECK_EQ_INT(codec_rle_bound(65535, 65535, 12), 0);
    CHECK(codec_rle_bound(100, 100, 12) > 0);
    rs_buf_free(&enc);
}

static void property(void)
{
    rs_buf enc = RS_BUF_INIT;
    const char *lossless[] = {CODEC_TS_RLE, CODEC_TS_JLS, CODEC_TS_J2K};
    codec_enc_opts near = {3, 90};
    for (int it = 0; it < 120; it++) {
        int spp = rnd() % 3 == 0 ? 3 : 1, bs = 2 + (int)(rnd() % 15), ba = bs <= 8 ? 8 : 16, sgn = (int)(rnd() % 2);
        codec_desc d = desc(1 + rnd() % 40, 1 + rnd() % 40, spp, ba, bs, sgn);
        codec_frame fr;
        fill(&fr, &d, it % 2 ? g_random : g_smooth);
        for (size_t k = 0; k < 3; k++)
            CHECK_EQ_INT(round_trip(lossless[k], &d, &fr, NULL, &enc), 0);
        if (!sgn) { /* near-lossless of signed data wraps at the ends of the range: unsigned only */
            long m = round_trip(CODEC_TS_JLS_NEAR, &d, &fr, &near, &enc);
            CHECK(m >= 0 && m <= 3);
        }
        codec_frame_free(&fr);
        codec_desc d8 = desc(8 + rnd() % 40, 8 + rnd() % 40, spp, 8, 8, 0);
        fill(&fr, &d8, g_smooth);
        long m = round_trip(CODEC_TS_JPEG_BASELINE, &d8, &fr, NULL, &enc);
        if (!(m >= 0 && m <= 24))
            fprintf(stderr, "# JPEG %ux%u spp %d: error %ld\n", d8.cols, d8.rows, spp, m);
        CHECK(m >= 0 && m <= 24);
        codec_frame_free(&fr);
    }
    rs_buf_free(&enc);
}

static void checks(void)
{
    codec_desc d = desc(16, 16, 1, 16, 12, 0);
    CHECK_EQ_INT(codec_enc_check(CODEC_TS_JPEG_BASELINE, &d, NULL), RS_EUNSUPPORTED);
    CHECK_EQ_INT(codec_enc_check(CODEC_TS_JLS, &d, NULL), RS_OK);
    d = desc(16, 16, 1, 8, 8, 1);
    CHECK_EQ_INT(codec_enc_check(CODEC_TS_JPEG_BASELINE, &d, NULL), RS_EUNSUPPORTED);
    d = desc(16, 16, 1, 1, 1, 0);
    CHECK_EQ_INT(codec_enc_check(CODEC_TS_RLE, &d, NULL), RS_EUNSUPPORTED);
    d = desc(16, 16, 1, 32, 32, 0);
    CHECK_EQ_INT(codec_enc_check(CODEC_TS_JLS, &d, NULL), RS_EUNSUPPORTED);
    CHECK_EQ_INT(codec_enc_check(CODEC_TS_J2K, &d, NULL), RS_EUNSUPPORTED);
    CHECK_EQ_INT(codec_enc_check(CODEC_TS_RLE, &d, NULL), RS_OK);
    CHECK_EQ_INT(codec_enc_check("1.2.840.10008.1.2.4.91", &d, NULL), RS_EUNSUPPORTED);
    d = desc(16, 16, 1, 8, 8, 0);
    snprintf(d.photometric, sizeof d.photometric, "PALETTE COLOR");
    CHECK_EQ_INT(codec_enc_check(CODEC_TS_JLS_NEAR, &d, NULL), RS_EUNSUPPORTED);
    CHECK_EQ_INT(codec_enc_check(CODEC_TS_JLS, &d, NULL), RS_OK);
    CHECK_EQ_STR(codec_enc_photometric(CODEC_TS_J2K, "RGB"), "YBR_RCT");
    CHECK_EQ_STR(codec_enc_photometric(CODEC_TS_JPEG_BASELINE, "RGB"), "YBR_FULL_422");
    CHECK_EQ_STR(codec_enc_photometric(CODEC_TS_RLE, "RGB"), "RGB");
    CHECK(codec_enc_lossy_method(CODEC_TS_JLS) == NULL);
    CHECK_EQ_STR(codec_enc_lossy_method(CODEC_TS_JLS_NEAR), "ISO_14495_1");
    /* options out of range are refused, not clamped */
    codec_frame fr;
    d = desc(4, 4, 1, 8, 8, 0);
    fill(&fr, &d, g_smooth);
    rs_buf enc = RS_BUF_INIT;
    codec_enc_opts bad = {0, 0};
    CHECK_EQ_INT(codec_encode_frame(CODEC_TS_JLS_NEAR, &fr, &bad, &enc, NULL), RS_EINVAL);
    CHECK_EQ_INT(codec_encode_frame(CODEC_TS_JPEG_BASELINE, &fr, &bad, &enc, NULL), RS_EINVAL);
    fr.size--; /* a frame whose size disagrees with its shape */
    CHECK_EQ_INT(codec_encode_frame(CODEC_TS_RLE, &fr, NULL, &enc, NULL), RS_EINVAL);
    fr.size++;
    codec_frame_free(&fr);
    rs_buf_free(&enc);
}

int main(void)
{
    rle();
    property();
    checks();
    return t_done();
}
