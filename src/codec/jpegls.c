/*
 * jpegls.c - JPEG-LS lossless and near-lossless (ITU T.87) through CharLS's C API.
 *
 * The header is read first and checked against the dataset (dimensions, components, bits per
 * sample <= BitsAllocated); only then is the destination allocated, at the size CharLS asks
 * for, which must be the one the dataset implies. CharLS returns component planes for
 * non-interleaved scans and interleaved samples otherwise; both become interleaved here.
 */
#include <stdlib.h>

#include <charls/charls.h>

#include "decoders.h"

static int jls_fail(rs_err *err, const char *step, charls_jpegls_errc e)
{
    return rs_err_set(err, RS_EFORMAT, "JPEG-LS %s: %s", step, charls_get_error_message(e));
}

int codec_jls_decode(const codec_desc *d, const uint8_t *p, size_t n, codec_frame *out, rs_err *err)
{
    charls_jpegls_decoder *dec = charls_jpegls_decoder_create();
    if (!dec)
        return rs_err_set(err, RS_ENOMEM, "cannot create a JPEG-LS decoder");
    uint8_t *buf = NULL;
    int rc = RS_OK;
    charls_jpegls_errc e;
    charls_frame_info fi;
    charls_interleave_mode ilv;
    size_t need = 0;
    if ((e = charls_jpegls_decoder_set_source_buffer(dec, p, n)) ||
        (e = charls_jpegls_decoder_read_header(dec)) || (e = charls_jpegls_decoder_get_frame_info(dec, &fi)) ||
        (e = charls_jpegls_decoder_get_interleave_mode(dec, &ilv))) {
        rc = jls_fail(err, "header", e);
        goto out;
    }
    if ((rc = codec_check_header(d, "JPEG-LS frame header", fi.width, fi.height, fi.component_count,
                                 fi.bits_per_sample, err)))
        goto out;
    size_t sb = fi.bits_per_sample <= 8 ? 1 : 2, pixels = (size_t)fi.width * fi.height, spp = (size_t)d->spp;
    if ((e = charls_jpegls_decoder_get_destination_size(dec, 0, &need))) {
        rc = jls_fail(err, "header", e);
        goto out;
    }
    if (need != pixels * spp * sb) {
        rc = rs_err_set(err, RS_EFORMAT, "JPEG-LS wants %zu bytes for a %ux%u frame", need, fi.width, fi.height);
        goto out;
    }
    buf = malloc(need);
    if (!buf) {
        rc = rs_err_set(err, RS_ENOMEM, "cannot allocate %zu bytes", need);
        goto out;
    }
    if ((e = charls_jpegls_decoder_decode_to_buffer(dec, buf, need, 0))) {
        rc = jls_fail(err, "data", e);
        goto out;
    }
    if ((rc = codec_frame_init(out, d, d->spp, codec_native_photometric(d), err)))
        goto out;
    int planar = spp > 1 && ilv == CHARLS_INTERLEAVE_MODE_NONE;
    for (size_t i = 0; i < pixels * spp; i++) {
        size_t src = planar ? (i % spp) * pixels + i / spp : i;
        uint32_t v = sb == 1 ? buf[src] : (uint32_t)buf[2 * src] | (uint32_t)buf[2 * src + 1] << 8;
        codec_put(out, i, v);
    }
out:
    free(buf);
    charls_jpegls_decoder_destroy(dec);
    return rc;
}
