/*
 * encoders.h - what encode.c and the individual encoders (rle_enc.c, jpegls_enc.c, j2k_enc.c,
 * jpeg_enc.c) share; not for use outside src/codec/.
 *
 * An encoder gets a frame already checked against its syntax (encode.c: codec_enc_check) and
 * appends the encoded bytes to out. Samples are read through codec_raw, the inverse of
 * codec_put: the BitsStored low bits of each sample, so a signed sample becomes the two's
 * complement bit pattern the stream stores (as DICOM encapsulates signed data).
 */
#ifndef RS_CODEC_ENCODERS_H
#define RS_CODEC_ENCODERS_H

#include "encode.h"

static inline uint32_t codec_raw(const codec_frame *fr, size_t i)
{
    uint32_t v;
    switch (fr->type) {
    case CODEC_U8: case CODEC_S8: v = ((const uint8_t *)fr->data)[i]; break;
    case CODEC_U16: case CODEC_S16: v = ((const uint16_t *)fr->data)[i]; break;
    default: v = ((const uint32_t *)fr->data)[i]; break;
    }
    return fr->bits_stored >= 32 ? v : v & ((1u << fr->bits_stored) - 1u);
}

/* Bytes per sample of the frame's type (1, 2, 4). */
static inline int codec_frame_sb(const codec_frame *fr)
{
    return fr->type == CODEC_U8 || fr->type == CODEC_S8 ? 1 : fr->type == CODEC_U16 || fr->type == CODEC_S16 ? 2 : 4;
}

int codec_rle_encode(const codec_frame *fr, rs_buf *out, rs_err *err);
int codec_jls_encode(const codec_frame *fr, int near, rs_buf *out, rs_err *err);
int codec_j2k_encode(const codec_frame *fr, rs_buf *out, rs_err *err);
int codec_jpeg_encode(const codec_frame *fr, int quality, rs_buf *out, rs_err *err);

#endif
