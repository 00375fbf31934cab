/*
 * encode.c - the encoder side of src/codec (encode.h): which syntaxes can be produced from
 * which images, the Photometric Interpretation they then carry, and the dispatch to the
 * encoder of each syntax (rle_enc.c, jpegls_enc.c, j2k_enc.c, jpeg_enc.c).
 */
#include "encode.h"

#include <string.h>

#include "encoders.h"

enum enc_kind { E_RLE, E_JLS, E_JLS_NEAR, E_J2K, E_JPEG };

static const struct {
    const char *uid;
    int kind;
    const char *method; /* lossy: Lossy Image Compression Method */
} encoders[] = {
    {CODEC_TS_RLE, E_RLE, NULL},
    {CODEC_TS_JLS, E_JLS, NULL},
    {CODEC_TS_JLS_NEAR, E_JLS_NEAR, "ISO_14495_1"},
    {CODEC_TS_J2K, E_J2K, NULL},
    {CODEC_TS_JPEG_BASELINE, E_JPEG, "ISO_10918_1"},
};

static int kind_of(const char *ts)
{
    for (size_t i = 0; i < sizeof encoders / sizeof encoders[0]; i++)
        if (!strcmp(ts, encoders[i].uid))
            return (int)i;
    return -1;
}

int codec_enc_known(const char *ts_uid) { return kind_of(ts_uid) >= 0; }

const char *codec_enc_lossy_method(const char *ts_uid)
{
    int k = kind_of(ts_uid);
    return k < 0 ? NULL : encoders[k].method;
}

uint64_t codec_rle_bound(uint32_t rows, uint32_t cols, int segments)
{
    /* per row: every byte a literal, one count byte per 128; per segment one pad byte */
    uint64_t seg = (uint64_t)rows * ((uint64_t)cols + (cols + 127) / 128) + 1;
    uint64_t total = 64 + seg * (uint64_t)segments;
    return total > UINT32_MAX ? 0 : total;
}

static int is_grey(const char *pi) { return !strcmp(pi, "MONOCHROME1") || !strcmp(pi, "MONOCHROME2"); }

int codec_enc_check(const char *ts_uid, const codec_desc *d, rs_err *err)
{
    int k = kind_of(ts_uid);
    if (k < 0)
        return rs_err_set(err, RS_EUNSUPPORTED, "radshare has no encoder for %s", ts_uid);
    int kind = encoders[k].kind;
    if (d->bits_allocated == 1)
        return rs_err_set(err, RS_EUNSUPPORTED, "1-bit pixel data is not encoded");
    if (encoders[k].method && !strcmp(d->photometric, "PALETTE COLOR"))
        return rs_err_set(err, RS_EUNSUPPORTED, "palette colour indexes are not compressed lossy");
    switch (kind) {
    case E_RLE:
        if (d->spp * (d->bits_allocated / 8) > 15)
            return rs_err_set(err, RS_EUNSUPPORTED, "RLE holds at most 15 segments");
        if (!codec_rle_bound(d->rows, d->cols, d->spp * (d->bits_allocated / 8)))
            return rs_err_set(err, RS_ELIMIT, "an RLE frame of %ux%u could exceed its 32-bit offsets", d->cols,
                              d->rows);
        return RS_OK;
    case E_JLS: case E_JLS_NEAR:
        if (d->bits_allocated > 16 || d->bits_stored < 2)
            return rs_err_set(err, RS_EUNSUPPORTED, "JPEG-LS takes 2 to 16 bits a sample, not %d", d->bits_stored);
        return RS_OK;
    case E_J2K:
        if (d->bits_allocated > 16)
            return rs_err_set(err, RS_EUNSUPPORTED, "JPEG 2000 is encoded for up to 16 bits a sample, not %d",
                              d->bits_stored);
        return RS_OK;
    default: /* JPEG baseline: 8-bit unsigned samples, grey or colour */
        if (d->bits_allocated != 8 || d->bits_stored != 8 || d->is_signed)
            return rs_err_set(err, RS_EUNSUPPORTED,
                              "JPEG baseline is 8-bit unsigned; this image has %d bits stored in %d%s", d->bits_stored,
                              d->bits_allocated, d->is_signed ? ", signed" : "");
        if (d->spp == 1 ? !is_grey(d->photometric)
                        : strcmp(d->photometric, "RGB") && strncmp(d->photometric, "YBR_FULL", 8))
            return rs_err_set(err, RS_EUNSUPPORTED, "JPEG baseline of %s data", d->photometric);
        if (d->rows > 65500 || d->cols > 65500)
            return rs_err_set(err, RS_EUNSUPPORTED, "JPEG is at most 65500 pixels a side");
        return RS_OK;
    }
}

const char *codec_enc_photometric(const char *ts_uid, const char *decoded)
{
    int k = kind_of(ts_uid);
    if (k >= 0 && encoders[k].kind == E_JPEG && (!strcmp(decoded, "RGB") || !strncmp(decoded, "YBR_FULL", 8)))
        return "YBR_FULL_422"; /* YCbCr, chroma halved horizontally (jpeg_enc.c) */
    if (k >= 0 && encoders[k].kind == E_J2K && !strcmp(decoded, "RGB"))
        return "YBR_RCT"; /* the reversible colour transform is applied */
    return decoded;
}

int codec_encode_frame(const char *ts_uid, const codec_frame *fr, const codec_enc_opts *opts, rs_buf *out,
                       rs_err *err)
{
    static const codec_enc_opts def = CODEC_ENC_OPTS_DEFAULT;
    if (!opts)
        opts = &def;
    int k = kind_of(ts_uid);
    if (k < 0)
        return rs_err_set(err, RS_EUNSUPPORTED, "radshare has no encoder for %s", ts_uid);
    if (!fr->rows || !fr->cols || (fr->spp != 1 && fr->spp != 3) || fr->bits_stored < 1 ||
        fr->bits_stored > 8 * codec_frame_sb(fr) ||
        fr->size != (size_t)fr->rows * fr->cols * (size_t)fr->spp * (size_t)codec_frame_sb(fr))
        return rs_err_set(err, RS_EINVAL, "frame to encode is inconsistent");
    switch (encoders[k].kind) {
    case E_RLE: return codec_rle_encode(fr, out, err);
    case E_JLS: return codec_jls_encode(fr, 0, out, err);
    case E_JLS_NEAR:
        if (opts->near < 1 || opts->near > 255)
            return rs_err_set(err, RS_EINVAL, "JPEG-LS NEAR %d is outside 1..255", opts->near);
        return codec_jls_encode(fr, opts->near, out, err);
    case E_J2K: return codec_j2k_encode(fr, out, err);
    default:
        if (opts->quality < 1 || opts->quality > 100)
            return rs_err_set(err, RS_EINVAL, "JPEG quality %d is outside 1..100", opts->quality);
        return codec_jpeg_encode(fr, opts->quality, out, err);
    }
}
