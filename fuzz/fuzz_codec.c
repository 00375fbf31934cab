/*
 * fuzz_codec.c - libFuzzer target for the frame interface (src/codec/): codec_open and every
 * decoder behind it, on whatever the reader makes of the input.
 *
 * For every input: dcm_read_mem (best effort, 64 MiB arena), then codec_open under small
 * limits (frames of at most 16 MiB decoded, 4096 x 4096, 64 frames), then for the first frames
 * codec_frame_bytes and codec_decode_frame. Invariants (print "INVARIANT:" and abort): a
 * decoded frame has exactly rows x cols x spp samples of the desc's size and its dimensions;
 * a failed decode leaves the frame empty. Everything is freed (LeakSanitizer).
 *
 * Build: fuzz/run.sh (FUZZ_TARGETS=codec); links src/dicom, src/util, src/codec and the
 * system's libjpeg, CharLS and OpenJPEG.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "codec/codec.h"
#include "dicom/reader.h"

static void invariant(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_codec: INVARIANT: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const dcm_read_opts ro = {.max_memory = (size_t)64 << 20, .max_value = 16u << 20};
    static const codec_limits lim = {4096, 4096, 64, (uint64_t)16 << 20};
    dcm_file *f = NULL;
    rs_err err;
    if (dcm_read_mem(data, size, &ro, &f, &err) != RS_OK)
        return 0;
    codec_image *img = NULL;
    if (codec_open(f, &lim, &img, &err) == RS_OK) {
        const codec_desc *d = codec_get_desc(img);
        size_t sb = d->bits_allocated <= 8 ? 1 : d->bits_allocated <= 16 ? 2 : 4;
        for (uint32_t k = 0; k < d->frames && k < 4; k++) {
            const uint8_t *p;
            size_t n;
            if (codec_frame_bytes(img, k, &p, &n, &err) == RS_OK && n) {
                volatile uint8_t sink = p[0] ^ p[n - 1]; /* the slice must be readable */
                (void)sink;
            }
            codec_frame fr;
            int rc = codec_decode_frame(img, k, &fr, &err);
            if (rc == RS_OK) {
                invariant(fr.rows == d->rows && fr.cols == d->cols && fr.spp == d->spp, "frame dimensions");
                invariant(fr.size == (size_t)d->rows * d->cols * (size_t)d->spp * sb, "frame size");
            } else {
                invariant(fr.data == NULL && fr.size == 0, "failed decode left data");
            }
            codec_frame_free(&fr);
        }
    }
    codec_close(img);
    dcm_file_free(f);
    return 0;
}
