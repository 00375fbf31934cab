/*
 * decoders.h - what codec.c and the individual decoders (native.c, rle.c, jpeg.c, jpegls.c,
 * j2k.c) share; not for use outside src/codec/.
 *
 * Every decoder gets the checked desc and the bytes of one frame, and fills a codec_frame
 * through codec_frame_init/codec_put, so that the size, type and masking rules of codec.h are
 * applied in one place. A decoder whose bitstream disagrees with the desc (dimensions,
 * components, precision) returns RS_EFORMAT before writing anything.
 */
#ifndef RS_CODEC_DECODERS_H
#define RS_CODEC_DECODERS_H

#include <string.h>

#include "codec.h"

/* Allocates out->data for desc's rows x cols x spp samples of the type BitsAllocated and
 * PixelRepresentation call for, and sets photometric. */
int codec_frame_init(codec_frame *out, const codec_desc *d, int spp, const char *photometric, rs_err *err);

/* Stores sample i from raw bits: masked to BitsStored, sign-extended when signed. */
static inline void codec_put(codec_frame *fr, size_t i, uint32_t raw)
{
    int bs = fr->bits_stored;
    uint32_t v = bs >= 32 ? raw : raw & ((1u << bs) - 1u);
    switch (fr->type) {
    case CODEC_U8: ((uint8_t *)fr->data)[i] = (uint8_t)v; break;
    case CODEC_U16: ((uint16_t *)fr->data)[i] = (uint16_t)v; break;
    case CODEC_U32: ((uint32_t *)fr->data)[i] = v; break;
    default: {
        int32_t s = (int32_t)v;
        if (bs < 32 && (v >> (bs - 1)) & 1u)
            s = (int32_t)(v | ~((1u << bs) - 1u));
        if (fr->type == CODEC_S8)
            ((int8_t *)fr->data)[i] = (int8_t)s;
        else if (fr->type == CODEC_S16)
            ((int16_t *)fr->data)[i] = (int16_t)s;
        else
            ((int32_t *)fr->data)[i] = s;
    }
    }
}

/* Rewrites every sample of fr in place from its raw bits (as stored by a decoder that wrote
 * whole words): shifted down by `shift`, then masked and sign-extended like codec_put. */
void codec_frame_fix(codec_frame *fr, int shift);

/* Checks a bitstream header against the desc: RS_EFORMAT naming `what` when they disagree. */
int codec_check_header(const codec_desc *d, const char *what, uint32_t w, uint32_t h, int comps,
                       int precision, rs_err *err);

/* YBR_FULL_422 / YBR_PARTIAL_422: native data carries Y Y Cb Cr per pair of pixels. */
static inline int codec_is_422(const codec_desc *d)
{
    size_t n = strlen(d->photometric);
    return d->spp == 3 && !strncmp(d->photometric, "YBR_", 4) && n > 4 && !strcmp(d->photometric + n - 4, "_422");
}

/* The photometric interpretation of decoded colour data: YBR_FULL_422 comes out upsampled. */
const char *codec_native_photometric(const codec_desc *d);

/* Native frame: the frame's bytes start at bit `bit_off` of p (non-zero only for 1-bit data). */
int codec_native_decode(const codec_desc *d, const uint8_t *p, size_t n, uint64_t bit_off,
                        codec_frame *out, rs_err *err);
int codec_rle_decode(const codec_desc *d, const uint8_t *p, size_t n, codec_frame *out, rs_err *err);
int codec_jpeg_decode(const codec_desc *d, const uint8_t *p, size_t n, codec_frame *out, rs_err *err);
int codec_jpeg12_decode(const codec_desc *d, const uint8_t *p, size_t n, codec_frame *out, rs_err *err);
int codec_ljpeg_decode(const codec_desc *d, const uint8_t *p, size_t n, codec_frame *out, rs_err *err);
int codec_jls_decode(const codec_desc *d, const uint8_t *p, size_t n, codec_frame *out, rs_err *err);
int codec_j2k_decode(const codec_desc *d, const uint8_t *p, size_t n, codec_frame *out, rs_err *err);

#endif
