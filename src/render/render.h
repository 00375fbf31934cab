/*
 * render.h - from decoded samples to an image a person looks at: the one path used by
 * WADO-RS /rendered and /thumbnail, WADO-URI, and the share-link viewer.
 *
 * Pipeline (PS3.3 C.11, PS3.4 N.2): stored samples -> Modality LUT (rescale slope/intercept or
 * Modality LUT Sequence) -> VOI LUT (window center/width with the LINEAR, LINEAR_EXACT or
 * SIGMOID function of C.11.2.1.2, or a VOI LUT Sequence) -> Presentation LUT shape / MONOCHROME1
 * inversion -> 8 (or 16) bit grey; colour images (RGB, YBR_FULL, YBR_FULL_422, PALETTE COLOR)
 * become RGB. Then an optional resize into a viewport (area averaging when shrinking), then
 * PNG or JPEG encoding.
 *
 * The default window is the file's first WindowCenter/Width (per-frame functional groups
 * first for enhanced multi-frame), otherwise the range of the frame's modality values.
 * Every output pixel comes from the frame's own samples: sizes are checked against the
 * codec_frame before anything is read.
 */
#ifndef RS_RENDER_H
#define RS_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "../codec/codec.h"
#include "../dicom/dataset.h"
#include "../util/buf.h"
#include "../util/err.h"

typedef enum render_format {
    RENDER_PNG = 0,     /* 8-bit grey or RGB PNG */
    RENDER_PNG16 = 1,   /* 16-bit grey PNG (colour stays 8-bit) */
    RENDER_JPEG = 2,    /* baseline JPEG, `quality` */
} render_format;

typedef enum render_voi_fn {
    RENDER_VOI_DEFAULT = 0,   /* the file's VOILUTFunction, else LINEAR */
    RENDER_VOI_LINEAR,
    RENDER_VOI_LINEAR_EXACT,
    RENDER_VOI_SIGMOID,
} render_voi_fn;

typedef struct render_params {
    int has_window;            /* use center/width below instead of the file's/auto window */
    double center, width;      /* in modality (rescaled) units; width > 0 (>= 1 for LINEAR) */
    render_voi_fn voi_fn;
    uint32_t viewport_w;       /* 0 = native size; otherwise fit inside w x h keeping aspect, */
    uint32_t viewport_h;       /*   never enlarged; one of them 0 = bound only by the other */
    render_format format;
    int quality;               /* JPEG quality 1..100; 0 = 90 */
} render_params;

#define RENDER_PARAMS_DEFAULT {0, 0, 0, RENDER_VOI_DEFAULT, 0, 0, RENDER_PNG, 0}

/* An 8/16-bit image before encoding: rows*cols*channels samples (channels 1 or 3). */
typedef struct render_image {
    uint32_t rows, cols;
    int channels;
    int depth;                 /* 8 or 16 bits per sample */
    void *data;                /* owned; render_image_free */
    size_t size;
} render_image;

/*
 * Render frame `index` of an opened image of the dataset f (which supplies the LUT and window
 * attributes) and append the encoded PNG/JPEG to out. *mime receives "image/png" or
 * "image/jpeg". RS_EINVAL for bad params, errors of codec_decode_frame otherwise.
 */
int render_frame(dcm_file *f, codec_image *img, uint32_t index, const render_params *p,
                 rs_buf *out, const char **mime, rs_err *err);

/* The steps, for tests and for callers that encode themselves. */
int render_to_image(dcm_file *f, const codec_frame *fr, uint32_t index, const render_params *p,
                    render_image *out, rs_err *err);
int render_resize(const render_image *in, uint32_t viewport_w, uint32_t viewport_h,
                  render_image *out, rs_err *err);
int render_encode_png(const render_image *im, rs_buf *out, rs_err *err);
int render_encode_jpeg(const render_image *im, int quality, rs_buf *out, rs_err *err);
void render_image_free(render_image *im);

#endif
