/*
 * ljpeg.h - decoder for JPEG lossless, process 14 (ITU T.81 Annex H: SOF3, Huffman coding,
 * predictors 1..7), which DICOM carries as 1.2.840.10008.1.2.4.57 and, restricted to
 * predictor 1 ("SV1"), as 1.2.840.10008.1.2.4.70. It sits below the pixel pipeline: it takes
 * the bytes of one frame (the fragments already joined by the caller) and returns samples.
 *
 * Nothing in the header is believed until checked against the data: dimensions and the
 * sample count are bounded by the limits and by what the remaining bytes could encode before
 * anything is allocated, and entropy-coded data is never read past its end.
 */
#ifndef RS_LJPEG_H
#define RS_LJPEG_H

#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"

typedef struct ljpeg_limits {
    uint32_t max_width;   /* samples per line */
    uint32_t max_height;  /* lines */
    uint64_t max_samples; /* width * height * components */
} ljpeg_limits;

/* What ljpeg_decode uses when lim is NULL. */
#define LJPEG_LIMITS_DEFAULT {65535, 65535, (uint64_t)1 << 30}

/* The frame header (SOF3), enough to check against Rows/Columns/BitsStored/SamplesPerPixel. */
typedef struct ljpeg_info {
    uint32_t width, height;
    int components; /* 1..4 */
    int precision;  /* 2..16 bits */
} ljpeg_info;

typedef struct ljpeg_image {
    uint32_t width, height;
    int components;
    int precision;
    /* width * height * components samples, components interleaved (RGBRGB...), each in
     * 0 .. 2^precision - 1 (point transform already undone). Owned; ljpeg_image_free. */
    uint16_t *samples;
} ljpeg_image;

/* Reads markers up to the frame header. RS_EUNSUPPORTED for other JPEG processes,
 * RS_EFORMAT / RS_ETRUNC for damaged input. Does not apply limits. */
int ljpeg_read_header(const uint8_t *p, size_t n, ljpeg_info *info, rs_err *err);

/* Decodes one lossless JPEG image. lim may be NULL (LJPEG_LIMITS_DEFAULT). On failure *out
 * is left empty (samples NULL), so ljpeg_image_free is always safe. */
int ljpeg_decode(const uint8_t *p, size_t n, const ljpeg_limits *lim, ljpeg_image *out,
                 rs_err *err);

void ljpeg_image_free(ljpeg_image *img);

#endif
