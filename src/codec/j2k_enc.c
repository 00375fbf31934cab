/*
 * j2k_enc.c - JPEG 2000 Part 1 lossless encoder (transfer syntax .90) through OpenJPEG: a bare
 * J2K codestream (what DICOM encapsulates, PS3.5 A.4.4), reversible 5-3 wavelet, one quality
 * layer, precision BitsStored, signed per PixelRepresentation. RGB goes through the reversible
 * colour transform (the frame is then YBR_RCT, encode.c). The number of resolutions is cut for
 * small images (OpenJPEG needs 2^(levels) <= the smaller side). Output is written through a
 * memory stream into the caller's buffer.
 */
#include <stdio.h>
#include <string.h>

#include <openjpeg.h>

#include "encoders.h"

typedef struct j2k_out {
    rs_buf *b;
    size_t start, pos; /* pos: relative to start */
    int failed;
} j2k_out;

static OPJ_SIZE_T out_write(void *buf, OPJ_SIZE_T n, void *user)
{
    j2k_out *o = user;
    size_t end = o->start + o->pos + n;
    if (end > o->b->len && rs_buf_reserve(o->b, end - o->b->len)) {
        o->failed = 1;
        return (OPJ_SIZE_T)-1;
    }
    memcpy(o->b->p + o->start + o->pos, buf, n);
    o->pos += n;
    if (end > o->b->len) {
        o->b->len = end;
        o->b->p[end] = 0;
    }
    return n;
}

static OPJ_BOOL out_seek(OPJ_OFF_T to, void *user)
{
    j2k_out *o = user;
    if (to < 0 || (uint64_t)to > o->b->len - o->start)
        return OPJ_FALSE;
    o->pos = (size_t)to;
    return OPJ_TRUE;
}

static OPJ_OFF_T out_skip(OPJ_OFF_T k, void *user)
{
    j2k_out *o = user;
    return out_seek((OPJ_OFF_T)o->pos + k, user) ? k : -1;
}

static void on_error(const char *msg, void *user)
{
    snprintf(user, 200, "%s", msg);
}

static void on_quiet(const char *msg, void *user) {}

/* The sample as OpenJPEG wants it: its value (signed when the frame is). */
static OPJ_INT32 sample(const codec_frame *fr, size_t i)
{
    switch (fr->type) {
    case CODEC_S8: return ((const int8_t *)fr->data)[i];
    case CODEC_S16: return ((const int16_t *)fr->data)[i];
    case CODEC_S32: return ((const int32_t *)fr->data)[i];
    default: return (OPJ_INT32)codec_raw(fr, i);
    }
}

int codec_j2k_encode(const codec_frame *fr, rs_buf *out, rs_err *err)
{
    int spp = fr->spp, sgnd = fr->type == CODEC_S8 || fr->type == CODEC_S16 || fr->type == CODEC_S32;
    opj_image_cmptparm_t cp[3];
    memset(cp, 0, sizeof cp);
    for (int c = 0; c < spp; c++) {
        cp[c].dx = cp[c].dy = 1;
        cp[c].w = fr->cols;
        cp[c].h = fr->rows;
        cp[c].prec = (OPJ_UINT32)fr->bits_stored;
        cp[c].sgnd = (OPJ_UINT32)sgnd;
    }
    char last[200] = "";
    int rc = RS_OK;
    j2k_out o = {out, out->len, 0, 0};
    opj_image_t *im = opj_image_create((OPJ_UINT32)spp, cp, spp == 3 ? OPJ_CLRSPC_SRGB : OPJ_CLRSPC_GRAY);
    opj_codec_t *codec = opj_create_compress(OPJ_CODEC_J2K);
    opj_stream_t *s = opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_FALSE);
    if (!im || !codec || !s) {
        rc = rs_err_set(err, RS_ENOMEM, "cannot create a JPEG 2000 encoder");
        goto out;
    }
    im->x0 = im->y0 = 0;
    im->x1 = fr->cols;
    im->y1 = fr->rows;
    size_t pixels = (size_t)fr->rows * fr->cols;
    for (int c = 0; c < spp; c++)
        for (size_t i = 0; i < pixels; i++)
            im->comps[c].data[i] = sample(fr, i * (size_t)spp + (size_t)c);
    opj_cparameters_t par;
    opj_set_default_encoder_parameters(&par);
    par.irreversible = 0; /* 5-3 wavelet: lossless */
    par.tcp_numlayers = 1;
    par.tcp_rates[0] = 0;
    par.cp_disto_alloc = 1;
    par.tcp_mct = spp == 3 ? 1 : 0;
    uint32_t side = fr->rows < fr->cols ? fr->rows : fr->cols;
    while (par.numresolution > 1 && (side >> (par.numresolution - 1)) == 0)
        par.numresolution--;
    opj_set_error_handler(codec, on_error, last);
    opj_set_warning_handler(codec, on_quiet, NULL);
    opj_set_info_handler(codec, on_quiet, NULL);
    opj_stream_set_user_data(s, &o, NULL);
    opj_stream_set_write_function(s, out_write);
    opj_stream_set_seek_function(s, out_seek);
    opj_stream_set_skip_function(s, out_skip);
    if (!opj_setup_encoder(codec, &par, im) || !opj_start_compress(codec, im, s) || !opj_encode(codec, s) ||
        !opj_end_compress(codec, s) || o.failed) {
        out->len = o.start;
        rc = o.failed ? rs_err_set(err, RS_ENOMEM, "out of memory for a JPEG 2000 frame")
                      : rs_err_set(err, RS_EFORMAT, "JPEG 2000 encoding: %s", last[0] ? last : "failed");
        goto out;
    }
out:
    if (s)
        opj_stream_destroy(s);
    if (codec)
        opj_destroy_codec(codec);
    if (im)
        opj_image_destroy(im);
    return rc;
}
