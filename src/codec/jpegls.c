/*
 * jpegls.c - JPEG-LS lossless and near-lossless (not yet wired to CharLS).
 */
#include "decoders.h"

int codec_jls_decode(const codec_desc *d, const uint8_t *p, size_t n, codec_frame *out, rs_err *err)
{
    return rs_err_set(err, RS_EUNSUPPORTED, "JPEG-LS is not decoded yet");
}
