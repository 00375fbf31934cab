/*
 * codec.h - "give me frame N as samples": the one interface between stored pixel data and
 * everything that shows it (render/, WADO-RS /frames, the viewer).
 *
 * codec_open() looks at an instance's Image Pixel module and its transfer syntax, checks them
 * against each other and against the bytes actually present (Rows x Columns x frames x
 * BitsAllocated against the native length; fragments and the basic offset table for
 * encapsulated syntaxes) before anything is allocated, and picks the decoder: native,
 * RLE Lossless, JPEG baseline/extended, JPEG lossless (ljpeg.c), JPEG-LS, JPEG 2000.
 * Deflated syntax is undone by the reader before we get here.
 *
 * A decoded frame is always pixel-interleaved (planar configuration undone), full resolution
 * (YBR_*_422 chroma upsampled), with every sample masked to BitsStored and sign-extended when
 * PixelRepresentation is 1. `photometric` says what the samples are *now* (a JPEG decoder
 * that converts YBR_FULL_422 to RGB says "RGB"), which is what render/ must interpret.
 * No LUT is applied here: Modality/VOI/Presentation LUTs belong to render/.
 */
#ifndef RS_CODEC_H
#define RS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "../dicom/dataset.h"
#include "../util/err.h"

typedef enum codec_stype {
    CODEC_U8,
    CODEC_S8,
    CODEC_U16,
    CODEC_S16,
    CODEC_U32,
    CODEC_S32,
} codec_stype;

/* The Image Pixel module as found in the dataset (after checks). */
typedef struct codec_desc {
    uint32_t rows, cols, frames;
    int spp;                  /* SamplesPerPixel: 1 or 3 */
    int bits_allocated;       /* 1, 8, 16 or 32 */
    int bits_stored, high_bit;
    int is_signed;            /* PixelRepresentation */
    int planar;               /* PlanarConfiguration as stored */
    char photometric[17];     /* PhotometricInterpretation as stored */
    char ts_uid[65];          /* transfer syntax of the pixel data */
    int encapsulated;         /* pixel data is in fragments */
    int lossy;                /* the syntax is lossy (JPEG baseline/extended, JPEG-LS near, J2K) */
} codec_desc;

typedef struct codec_frame {
    uint32_t rows, cols;
    int spp;                  /* samples per pixel, interleaved */
    codec_stype type;
    int bits_stored;          /* significant bits of each sample */
    char photometric[17];     /* of the samples as returned */
    void *data;               /* rows * cols * spp samples of `type`; owned, codec_frame_free */
    size_t size;              /* bytes in data */
} codec_frame;

typedef struct codec_limits {
    uint32_t max_rows, max_cols, max_frames;
    uint64_t max_frame_bytes; /* decoded bytes of one frame */
} codec_limits;

#define CODEC_LIMITS_DEFAULT {65535, 65535, 100000, (uint64_t)1 << 30}

typedef struct codec_image codec_image;

/* Opens the pixel data of a parsed file. The file must outlive the image; pixel data left on
 * disk by the reader (bulk) is loaded here. lim may be NULL (CODEC_LIMITS_DEFAULT).
 * RS_EFORMAT when the module and the bytes disagree, RS_EUNSUPPORTED for a syntax or
 * layout no decoder handles, RS_ENOTFOUND when there is no pixel data. */
int codec_open(dcm_file *f, const codec_limits *lim, codec_image **out, rs_err *err);
const codec_desc *codec_get_desc(const codec_image *img);

/* Decodes frame `index` (0-based). On failure *out is left empty, so codec_frame_free is
 * always safe. A decoder whose output disagrees with the desc (size, precision, components)
 * fails with RS_EFORMAT rather than returning a frame that is not the instance's. */
int codec_decode_frame(codec_image *img, uint32_t index, codec_frame *out, rs_err *err);

/* The stored bytes of frame `index` without decoding: the joined fragments of an encapsulated
 * frame, or the native frame's slice of the pixel data. *p points into the image (valid until
 * codec_close). For WADO-RS /frames in the stored syntax. */
int codec_frame_bytes(codec_image *img, uint32_t index, const uint8_t **p, size_t *n, rs_err *err);

void codec_frame_free(codec_frame *fr);
void codec_close(codec_image *img);

#endif
