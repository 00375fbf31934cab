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

/*
 * o[j] = EXPR(o[j]) for j in 0..n, as blocks of 8 plus a tail: GCC at -O2 vectorises a fixed-count
 * inner loop (SLP) but not a loop of unknown length that would need an epilogue.
 */
#define NATIVE_EACH(o, n, EXPR)                                                                  \
    do {                                                                                         \
        size_t j = 0;                                                                            \
        for (; j + 8 <= (n); j += 8)                                                             \
            for (size_t k_ = 0; k_ < 8; k_++)                                                    \
                (o)[j + k_] = EXPR((o)[j + k_]);                                                 \
        for (; j < (n); j++)                                                                     \
            (o)[j] = EXPR((o)[j]);                                                               \
    } while (0)

/*
 * Whole 8- or 16-bit samples, interleaved, on a little-endian host: the common case (CT, MR, CR,
 * RGB). The words are copied as they are, then shifted, masked and sign-extended in place, as
 * codec_put does, in loops the compiler vectorises. 0 when the layout is not one of these (the
 * general loop handles it).
 */
static int native_words(const native_src *s, size_t total, codec_frame *out)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (s->bytes != 1 && s->bytes != 2)
        return 0;
    const int bs = out->bits_stored, sh = s->shift;
    const uint32_t mask = (1u << bs) - 1u; /* bs <= 16 for these types */
    const int up = 32 - bs;                /* sign extension: the sign bit to bit 31 and back */
    int is_signed = out->type == CODEC_S8 || out->type == CODEC_S16;
    memcpy(out->data, s->p, total * (size_t)s->bytes);
    if (sh == 0 && bs == 8 * s->bytes && !is_signed)
        return 1;
#define WORD(v) (((uint32_t)(v) >> sh) & mask)
#define SIGNED(v) ((int32_t)(WORD(v) << up) >> up)
#define U8(v) ((uint8_t)WORD(v))
#define S8(v) ((int8_t)SIGNED((uint8_t)(v)))
#define U16(v) ((uint16_t)WORD(v))
#define S16(v) ((int16_t)SIGNED((uint16_t)(v)))
    switch (out->type) {
    case CODEC_U8: NATIVE_EACH((uint8_t *)out->data, total, U8); return 1;
    case CODEC_S8: NATIVE_EACH((int8_t *)out->data, total, S8); return 1;
    case CODEC_U16: NATIVE_EACH((uint16_t *)out->data, total, U16); return 1;
    case CODEC_S16: NATIVE_EACH((int16_t *)out->data, total, S16); return 1;
    default: return 0;
    }
#undef WORD
#undef SIGNED
#undef U8
#undef S8
#undef U16
#undef S16
#else
    (void)s, (void)total, (void)out;
    return 0;
#endif
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
    } else if (!native_words(&s, pixels * spp, out)) {
        size_t total = pixels * spp;
        for (size_t i = 0; i < total; i++)
            codec_put(out, i, native_raw(&s, i));
    }
    return RS_OK;
}
