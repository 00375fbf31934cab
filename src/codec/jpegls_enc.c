/*
 * jpegls_enc.c - JPEG-LS encoder (ITU T.87) through CharLS's C API: lossless (NEAR 0, transfer
 * syntax .80) or near-lossless (.81, NEAR given by the caller). Bits per sample is BitsStored
 * (the stream's P), so 12-bit CT costs 12 bits of model, not 16; NEAR is cut to what P allows; samples of up to 8 bits go to
 * CharLS as bytes, others as 16-bit words, colour sample-interleaved (as decoded frames are).
 * The destination is CharLS's own estimate of the worst case, allocated in out at once.
 */
#include <stdlib.h>

#include <charls/charls.h>

#include "encoders.h"

int codec_jls_encode(const codec_frame *fr, int near, rs_buf *out, rs_err *err)
{
    size_t n = (size_t)fr->rows * fr->cols * (size_t)fr->spp, sb = fr->bits_stored <= 8 ? 1 : 2;
    uint8_t *src = malloc(n * sb);
    charls_jpegls_encoder *enc = charls_jpegls_encoder_create();
    int rc = RS_OK;
    if (!src || !enc) {
        rc = rs_err_set(err, RS_ENOMEM, "cannot create a JPEG-LS encoder");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t v = codec_raw(fr, i);
        if (sb == 1) {
            src[i] = (uint8_t)v;
        } else {
            src[2 * i] = (uint8_t)v;
            src[2 * i + 1] = (uint8_t)(v >> 8);
        }
    }
    charls_frame_info fi = {fr->cols, fr->rows, fr->bits_stored, fr->spp};
    int max_near = (int)(((1u << fr->bits_stored) - 1) / 2); /* T.87 C.2.4.1.1; CharLS asserts it */
    if (near > max_near)
        near = max_near > 255 ? 255 : max_near; /* a smaller error than asked keeps the promise */
    charls_jpegls_errc e;
    size_t need = 0, written = 0;
    if ((e = charls_jpegls_encoder_set_frame_info(enc, &fi)) ||
        (e = charls_jpegls_encoder_set_near_lossless(enc, near)) ||
        (fr->spp > 1 && (e = charls_jpegls_encoder_set_interleave_mode(enc, CHARLS_INTERLEAVE_MODE_SAMPLE))) ||
        (e = charls_jpegls_encoder_get_estimated_destination_size(enc, &need))) {
        rc = rs_err_set(err, RS_EINVAL, "JPEG-LS encoder setup: %s", charls_get_error_message(e));
        goto out;
    }
    if ((rc = rs_buf_reserve(out, need + 1))) {
        rc = rs_err_set(err, RS_ENOMEM, "out of memory for a %zu-byte JPEG-LS frame", need);
        goto out;
    }
    if ((e = charls_jpegls_encoder_set_destination_buffer(enc, out->p + out->len, need)) ||
        (e = charls_jpegls_encoder_encode_from_buffer(enc, src, n * sb, 0)) ||
        (e = charls_jpegls_encoder_get_bytes_written(enc, &written))) {
        rc = rs_err_set(err, RS_EFORMAT, "JPEG-LS encoding: %s", charls_get_error_message(e));
        goto out;
    }
    out->len += written;
    out->p[out->len] = 0; /* rs_buf keeps a NUL after the data */
out:
    charls_jpegls_encoder_destroy(enc);
    free(src);
    return rc;
}
