/*
 * colour.h - colour frames to 8-bit RGB: RGB, the YBR family (PS3.3 C.7.6.3.1.2) and
 * PALETTE COLOR (C.7.6.3.1.5/6, including segmented palettes). Also the two frame-access
 * helpers the grey and colour paths share.
 */
#ifndef RS_RENDER_COLOUR_H
#define RS_RENDER_COLOUR_H

#include <stddef.h>
#include <stdint.h>

#include "../codec/codec.h"
#include "../dicom/dataset.h"
#include "../util/err.h"

/* Bytes of one sample of type t (0 for an unknown type). */
size_t render_stype_size(codec_stype t);
/* Sample i of a checked frame. */
int64_t render_sample(const codec_frame *fr, size_t i);

/* Is this a 3-sample photometric interpretation render_colour converts? */
int render_colour_known(const char *photometric);
/* rows*cols*3 bytes of RGB from a checked 3-sample frame. */
int render_colour(const codec_frame *fr, uint8_t *rgb, rs_err *err);
/* rows*cols*3 bytes of RGB from a checked 1-sample PALETTE COLOR frame and f's palettes. */
int render_palette(dcm_file *f, const codec_frame *fr, uint8_t *rgb, rs_err *err);

#endif
