/*
 * rle_enc.c - RLE Lossless encoder (PS3.5 Annex G): one PackBits segment per byte plane of each
 * sample, most significant byte first, component after component; the 64-byte header lists up
 * to 15 segment offsets. Runs never cross a row (G.3.1), each segment is padded to an even
 * length. Runs of three or more equal bytes are replicated; pairs stay inside literals, which
 * is never longer (a pair costs two bytes either way) and keeps the worst case at one count byte
 * per 128 bytes of a row (codec_rle_bound).
 */
#include <stdlib.h>
#include <string.h>

#include "encoders.h"

/* PackBits of one row of n bytes. */
static int pack_row(const uint8_t *p, size_t n, rs_buf *out)
{
    size_t i = 0;
    int rc = RS_OK;
    while (i < n && rc == RS_OK) {
        size_t j = i + 1;
        while (j < n && j - i < 128 && p[j] == p[i])
            j++;
        if (j - i >= 3) { /* replicate run: 1 - length, then the byte */
            rc = rs_buf_putc(out, (int)(uint8_t)(257 - (j - i)));
            rc = rc ? rc : rs_buf_putc(out, p[i]);
            i = j;
            continue;
        }
        size_t k = i; /* literal run up to the next three equal bytes */
        while (k < n && k - i < 128 && !(k + 2 < n && p[k] == p[k + 1] && p[k] == p[k + 2]))
            k++;
        rc = rs_buf_putc(out, (int)(k - i - 1));
        rc = rc ? rc : rs_buf_append(out, p + i, k - i);
        i = k;
    }
    return rc;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

int codec_rle_encode(const codec_frame *fr, rs_buf *out, rs_err *err)
{
    int sb = codec_frame_sb(fr), nseg = fr->spp * sb;
    if (nseg > 15 || !codec_rle_bound(fr->rows, fr->cols, nseg))
        return rs_err_set(err, RS_ELIMIT, "RLE cannot hold %d segments of %ux%u bytes", nseg, fr->cols, fr->rows);
    uint8_t *row = malloc(fr->cols);
    if (!row)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    size_t start = out->len;
    uint8_t header[64] = {0};
    int rc = rs_buf_append(out, header, sizeof header);
    uint32_t off[15];
    for (int s = 0; s < nseg && rc == RS_OK; s++) {
        int comp = s / sb, shift = 8 * (sb - 1 - s % sb); /* segments: MSB first */
        off[s] = (uint32_t)(out->len - start);
        for (uint32_t y = 0; y < fr->rows && rc == RS_OK; y++) {
            size_t base = (size_t)y * fr->cols * (size_t)fr->spp + (size_t)comp;
            for (uint32_t x = 0; x < fr->cols; x++)
                row[x] = (uint8_t)(codec_raw(fr, base + (size_t)x * fr->spp) >> shift);
            rc = pack_row(row, fr->cols, out);
        }
        if (rc == RS_OK && (out->len - start) % 2)
            rc = rs_buf_putc(out, 0); /* even segments; the decoder allows one trailing byte */
    }
    free(row);
    if (rc)
        return rs_err_set(err, RS_ENOMEM, "out of memory for an RLE frame");
    uint8_t *h = out->p + start;
    put_le32(h, (uint32_t)nseg);
    for (int s = 0; s < nseg; s++)
        put_le32(h + 4 + 4 * s, off[s]);
    return RS_OK;
}
