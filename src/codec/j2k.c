/*
 * j2k.c - JPEG 2000 (not yet wired to OpenJPEG).
 */
#include "decoders.h"

int codec_j2k_decode(const codec_desc *d, const uint8_t *p, size_t n, codec_frame *out, rs_err *err)
{
    return rs_err_set(err, RS_EUNSUPPORTED, "JPEG 2000 is not decoded yet");
}
