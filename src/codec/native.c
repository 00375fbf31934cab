/*
 * native.c - uncompressed pixel data (implicit/explicit little endian, big endian already
 * swapped by the reader and fixed up by codec.c, deflated already inflated by the reader).
 *
 * One sample reader for every layout: 1-bit (packed, least significant bit first, a frame may
 * start inside a byte), 8/16/32-bit little endian words shifted down by HighBit+1-BitsStored
 * then masked and sign-extended by codec_put. Planar configuration 1 and YBR_*_422 (Y Y Cb Cr
 * per pair of pixels) are rearranged into interleaved full-resolution samples.
 */
#include <string.h>

#include "decoders.h"

typedef struct native_src {
    const uint8_t *p;
    uint64_t bit_off;
    int bytes, shift;
} native_src;

static inline uint32_t native_raw(const native_src *s, size_t i)
{
    if (s->bytes == 0) {
        uint64_t b = s->bit_off + i;
        return (s->p[b / 8] >> (b % 8)) & 1u;
    }
    const uint8_t *q = s->p + i * (size_t)s->bytes;
    uint32_t v = q[0];
    if (s->bytes > 1)
        v |= (uint32_t)q[1] << 8;
    if (s->bytes > 2)
        v |= (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
    return v >> s->shift;
}

int codec_native_decode(const codec_desc *d, const uint8_t *p, size_t n, uint64_t bit_off, codec_frame *out,
                        rs_err *err)
{
    native_src s = {p, bit_off, d->bits_allocated / 8, d->high_bit + 1 - d->bits_stored};
    size_t pixels = (size_t)d->rows * d->cols, spp = (size_t)d->spp;
    int ybr422 = codec_is_422(d);
    /* codec_open checked the whole pixel data; this is the belt to its braces */
    uint64_t need_bits = bit_off + (uint64_t)pixels * (ybr422 ? 2 : spp) * (uint64_t)d->bits_allocated;
    if ((need_bits + 7) / 8 > n)
        return rs_err_set(err, RS_EFORMAT, "native frame needs %llu bytes, %zu present",
                          (unsigned long long)((need_bits + 7) / 8), n);
    int rc = codec_frame_init(out, d, d->spp, codec_native_photometric(d), err);
    if (rc)
        return rc;
    if (ybr422) {
        for (size_t i = 0; i < pixels; i += 2) {
            size_t q = i * 2; /* 4 samples per pair */
            uint32_t y0 = native_raw(&s, q), y1 = native_raw(&s, q + 1);
            uint32_t cb = native_raw(&s, q + 2), cr = native_raw(&s, q + 3);
            codec_put(out, i * 3, y0);
            codec_put(out, i * 3 + 1, cb);
            codec_put(out, i * 3 + 2, cr);
            codec_put(out, i * 3 + 3, y1);
            codec_put(out, i * 3 + 4, cb);
            codec_put(out, i * 3 + 5, cr);
        }
    } else if (spp > 1 && d->planar) {
        for (size_t c = 0; c < spp; c++)
            for (size_t i = 0; i < pixels; i++)
                codec_put(out, i * spp + c, native_raw(&s, c * pixels + i));
    } else if (s.bytes == 2 && out->type == CODEC_U16) {
        /* the common case (CT, MR: unsigned 16-bit words) as a loop the compiler vectorises;
           the same shift and mask as native_raw + codec_put, a sixth of a rendering's time before */
        size_t total = pixels * spp;
        uint32_t mask = out->bits_stored >= 16 ? 0xffffu : (1u << out->bits_stored) - 1u;
        uint16_t *o = out->data;
        for (size_t i = 0; i < total; i++)
            o[i] = (uint16_t)((((uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8) >> s.shift) & mask);
    } else {
        size_t total = pixels * spp;
        for (size_t i = 0; i < total; i++)
            codec_put(out, i, native_raw(&s, i));
    }
    return RS_OK;
}
