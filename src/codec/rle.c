/*
 * rle.c - RLE Lossless (PS3.5 Annex G): a 64-byte header with up to 15 segment offsets, one
 * PackBits segment per byte of each sample (most significant byte first, component after
 * component). The header is validated whole (segment count = SamplesPerPixel x bytes per
 * sample, first offset 64, offsets increasing and inside the fragment) before any output is
 * written; each segment must decode to exactly Rows x Columns bytes (a trailing pad byte is
 * tolerated, more data is not: it would mean other dimensions) without reading past its own end.
 */
#include <string.h>

#include "decoders.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "rle.c writes sample bytes in little-endian order"
#endif

/* Decodes one PackBits segment into every `stride`-th byte of dst (`count` bytes). */
static int rle_segment(const uint8_t *p, size_t n, uint8_t *dst, size_t stride, size_t count, int seg, rs_err *err)
{
    size_t in = 0, outn = 0;
    while (outn < count) {
        if (in >= n)
            return rs_err_set(err, RS_EFORMAT, "RLE segment %d ends after %zu of %zu bytes", seg, outn, count);
        int c = (int8_t)p[in++];
        if (c >= 0) {
            size_t len = (size_t)c + 1;
            if (len > n - in || len > count - outn)
                return rs_err_set(err, RS_EFORMAT, "RLE segment %d: literal run of %zu bytes overruns", seg, len);
            for (size_t k = 0; k < len; k++)
                dst[(outn + k) * stride] = p[in + k];
            in += len;
            outn += len;
        } else if (c != -128) {
            size_t len = (size_t)(1 - c);
            if (in >= n || len > count - outn)
                return rs_err_set(err, RS_EFORMAT, "RLE segment %d: replicate run of %zu bytes overruns", seg, len);
            uint8_t b = p[in++];
            for (size_t k = 0; k < len; k++)
                dst[(outn + k) * stride] = b;
            outn += len;
        }
    }
    /* one pad byte may follow (even segment lengths); more data means other dimensions */
    if (n - in > 1)
        return rs_err_set(err, RS_EFORMAT, "RLE segment %d holds more than %zu bytes", seg, count);
    return RS_OK;
}

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

int codec_rle_decode(const codec_desc *d, const uint8_t *p, size_t n, codec_frame *out, rs_err *err)
{
    if (d->bits_allocated < 8)
        return rs_err_set(err, RS_EUNSUPPORTED, "RLE with BitsAllocated %d", d->bits_allocated);
    int sb = d->bits_allocated / 8, spp = d->spp;
    uint32_t nseg = (uint32_t)(sb * spp);
    if (n < 64)
        return rs_err_set(err, RS_EFORMAT, "RLE fragment of %zu bytes has no 64-byte header", n);
    if (le32(p) != nseg)
        return rs_err_set(err, RS_EFORMAT, "RLE header says %u segments, %d samples x %d bytes need %u", le32(p), spp,
                          sb, nseg);
    uint32_t off[16];
    for (uint32_t k = 0; k < nseg; k++) {
        off[k] = le32(p + 4 + 4 * k);
        if ((k == 0 && off[k] != 64) || (k > 0 && off[k] <= off[k - 1]) || off[k] > n)
            return rs_err_set(err, RS_EFORMAT, "RLE segment %u offset %u is out of order or outside the %zu bytes", k,
                              off[k], n);
    }
    off[nseg] = (uint32_t)(n > UINT32_MAX ? UINT32_MAX : n);
    int rc = codec_frame_init(out, d, spp, d->photometric, err);
    if (rc)
        return rc;
    size_t pixels = (size_t)d->rows * d->cols, stride = (size_t)spp * (size_t)sb;
    uint8_t *dst = out->data;
    for (uint32_t k = 0; k < nseg; k++) {
        int comp = (int)k / sb, byte = sb - 1 - (int)k % sb; /* segments: MSB first */
        rc = rle_segment(p + off[k], off[k + 1] - off[k], dst + (size_t)comp * sb + byte, stride, pixels, (int)k, err);
        if (rc) {
            codec_frame_free(out);
            return rc;
        }
    }
    codec_frame_fix(out, d->high_bit + 1 - d->bits_stored);
    return RS_OK;
}
