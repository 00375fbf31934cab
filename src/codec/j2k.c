/*
 * j2k.c - JPEG 2000 (Part 1, lossless and lossy, and High-Throughput JPEG 2000, which
 * OpenJPEG 2.5 decodes) through OpenJPEG from a memory stream. A J2K codestream (SOC SIZ) and
 * a JP2 file (signature box) are both accepted, as both occur in DICOM files in the wild.
 *
 * The main header is read first and checked against the dataset: image size, component
 * count, every component at full resolution (no subsampling) with the same precision, which
 * must fit BitsAllocated. Signedness comes from the codestream; a sample is passed on as its
 * two's complement bits, masked to BitsStored and sign-extended per PixelRepresentation, so a
 * codestream that disagrees on the sign (J2K_pixelrep_mismatch.dcm) still gives the values
 * the dataset describes. OpenJPEG undoes the multiple component transform itself, so
 * YBR_RCT / YBR_ICT data comes out as RGB and is labelled so.
 */
#include <stdio.h>
#include <string.h>

#include <openjpeg.h>

#include "decoders.h"

typedef struct j2k_mem {
    const uint8_t *p;
    size_t n, pos;
} j2k_mem;

static OPJ_SIZE_T mem_read(void *buf, OPJ_SIZE_T want, void *user)
{
    j2k_mem *m = user;
    if (m->pos >= m->n)
        return (OPJ_SIZE_T)-1;
    size_t k = m->n - m->pos < want ? m->n - m->pos : want;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return k;
}

static OPJ_OFF_T mem_skip(OPJ_OFF_T k, void *user)
{
    j2k_mem *m = user;
    if (k < 0 || (uint64_t)k > m->n - m->pos) /* OpenJPEG only skips forward */
        return -1;
    m->pos += (size_t)k;
    return k;
}

static OPJ_BOOL mem_seek(OPJ_OFF_T to, void *user)
{
    j2k_mem *m = user;
    if (to < 0 || (uint64_t)to > m->n)
        return OPJ_FALSE;
    m->pos = (size_t)to;
    return OPJ_TRUE;
}

static void on_error(const char *msg, void *user)
{
    char *last = user;
    snprintf(last, 200, "%s", msg);
    size_t l = strlen(last);
    if (l && last[l - 1] == '\n')
        last[l - 1] = 0;
}

static void on_quiet(const char *msg, void *user) {}

/* Checks the main header: one size and precision for every component, none subsampled. */
static int check_image(const codec_desc *d, const opj_image_t *im, rs_err *err)
{
    if (im->numcomps < 1 || im->x1 <= im->x0 || im->y1 <= im->y0)
        return rs_err_set(err, RS_EFORMAT, "JPEG 2000 image is empty");
    for (OPJ_UINT32 c = 0; c < im->numcomps; c++) {
        const opj_image_comp_t *k = &im->comps[c];
        if (k->dx != 1 || k->dy != 1 || k->prec != im->comps[0].prec)
            return rs_err_set(err, RS_EUNSUPPORTED,
                              "JPEG 2000 component %u is subsampled or of another precision", c);
    }
    return codec_check_header(d, "JPEG 2000 codestream", im->x1 - im->x0, im->y1 - im->y0, (int)im->numcomps,
                              (int)im->comps[0].prec, err);
}

int codec_j2k_decode(const codec_desc *d, const uint8_t *p, size_t n, codec_frame *out, rs_err *err)
{
    OPJ_CODEC_FORMAT fmt;
    if (n >= 4 && p[0] == 0xFF && p[1] == 0x4F && p[2] == 0xFF && p[3] == 0x51)
        fmt = OPJ_CODEC_J2K;
    else if (n >= 12 && !memcmp(p, "\0\0\0\x0CjP  \r\n\x87\n", 12))
        fmt = OPJ_CODEC_JP2;
    else
        return rs_err_set(err, RS_EFORMAT, "frame is neither a JPEG 2000 codestream nor a JP2 file");
    char last[200] = "";
    j2k_mem m = {p, n, 0};
    opj_image_t *im = NULL;
    int rc = RS_OK;
    opj_codec_t *codec = opj_create_decompress(fmt);
    opj_stream_t *s = opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_TRUE);
    if (!codec || !s) {
        rc = rs_err_set(err, RS_ENOMEM, "cannot create a JPEG 2000 decoder");
        goto out;
    }
    opj_stream_set_user_data(s, &m, NULL);
    opj_stream_set_user_data_length(s, n);
    opj_stream_set_read_function(s, mem_read);
    opj_stream_set_skip_function(s, mem_skip);
    opj_stream_set_seek_function(s, mem_seek);
    opj_set_error_handler(codec, on_error, last);
    opj_set_warning_handler(codec, on_quiet, NULL);
    opj_set_info_handler(codec, on_quiet, NULL);
    opj_dparameters_t par;
    opj_set_default_decoder_parameters(&par);
    /* strict: a truncated codestream is an error, not a blurred image */
    if (!opj_setup_decoder(codec, &par) || !opj_decoder_set_strict_mode(codec, OPJ_TRUE) ||
        !opj_read_header(s, codec, &im)) {
        rc = rs_err_set(err, RS_EFORMAT, "JPEG 2000 header: %s", last[0] ? last : "unreadable");
        goto out;
    }
    if ((rc = check_image(d, im, err)))
        goto out;
    if (!opj_decode(codec, s, im) || !opj_end_decompress(codec, s)) {
        rc = rs_err_set(err, RS_EFORMAT, "JPEG 2000 data: %s", last[0] ? last : "cannot be decoded");
        goto out;
    }
    /* decoding may not change the header, but check what will be read */
    if ((rc = check_image(d, im, err)))
        goto out;
    for (OPJ_UINT32 c = 0; c < im->numcomps; c++)
        if (!im->comps[c].data || im->comps[c].w != d->cols || im->comps[c].h != d->rows) {
            rc = rs_err_set(err, RS_EFORMAT, "JPEG 2000 component %u was not decoded at full size", c);
            goto out;
        }
    int mct = !strcmp(d->photometric, "YBR_RCT") || !strcmp(d->photometric, "YBR_ICT");
    if ((rc = codec_frame_init(out, d, d->spp, mct ? "RGB" : d->photometric, err)))
        goto out;
    size_t pixels = (size_t)d->rows * d->cols, spp = (size_t)d->spp;
    for (size_t c = 0; c < spp; c++) {
        const OPJ_INT32 *src = im->comps[c].data;
        for (size_t i = 0; i < pixels; i++)
            codec_put(out, i * spp + c, (uint32_t)src[i]);
    }
out:
    if (im)
        opj_image_destroy(im);
    if (s)
        opj_stream_destroy(s);
    if (codec)
        opj_destroy_codec(codec);
    return rc;
}
