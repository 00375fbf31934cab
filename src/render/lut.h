/*
 * lut.h - the grey-scale transforms of PS3.3 C.11 as data: a lookup table read from a
 * LUTDescriptor/LUTData pair (Modality LUT, VOI LUT, palette), and the whole
 * stored value -> modality value -> VOI output chain of one frame (render_grey).
 * render.c fills a render_grey from the dataset and evaluates it once per distinct stored
 * value; the formulas here are the only place the standard's equations live.
 */
#ifndef RS_RENDER_LUT_H
#define RS_RENDER_LUT_H

#include <stdint.h>

#include "../dicom/dataset.h"
#include "../util/err.h"
#include "render.h"

#define RENDER_LUT_MAX 65536u

typedef struct render_lut {
    uint32_t n;          /* entries, 1..65536 */
    int64_t first;       /* first input value mapped */
    int bits;            /* nominal bits per entry (descriptor value 3), 1..16 */
    uint16_t *data;      /* n entries, owned */
} render_lut;

/*
 * Parse a LUT from its descriptor (US/SS, 3 values) and data (OW/US/SS, or OB for palettes).
 * signed_first: the first-mapped value is to be read as signed 16-bit (PixelRepresentation 1).
 * Entry width comes from the data length: 2n bytes = 16-bit words, n bytes = packed 8-bit.
 * Bulk data values are loaded through f.
 */
int render_lut_parse(dcm_file *f, dcm_elem *desc, dcm_elem *data, int signed_first, render_lut *out,
                     rs_err *err);
/* Only the descriptor: n, first, bits set, data NULL. */
int render_lut_desc(dcm_file *f, dcm_elem *desc, int signed_first, render_lut *out, rs_err *err);
/* Parse the LUT of a sequence item (LUTDescriptor + LUTData). */
int render_lut_from_item(dcm_file *f, dcm_ds *item, int signed_first, render_lut *out, rs_err *err);
/* Entry for input x: values below `first` map to entry 0, above the last to entry n-1. */
static inline uint16_t render_lut_at(const render_lut *l, int64_t x)
{
    int64_t i = x - l->first;
    if (i < 0)
        i = 0;
    if (i >= (int64_t)l->n)
        i = (int64_t)l->n - 1;
    return l->data[i];
}
void render_lut_free(render_lut *l);

enum render_voi_kind { RENDER_VOI_WINDOW, RENDER_VOI_LUT };

typedef struct render_grey {
    /* Modality LUT: a table if has_mlut, else slope/intercept */
    int has_mlut;
    render_lut mlut;
    double slope, intercept;
    /* VOI */
    int voi_kind;
    double center, width;
    render_voi_fn fn;          /* LINEAR, LINEAR_EXACT or SIGMOID (never DEFAULT here) */
    render_lut vlut;
    /* Presentation */
    int invert;                /* MONOCHROME1 or Presentation LUT Shape INVERSE */
    uint32_t ymax;             /* 255 or 65535 */
} render_grey;

/* Modality value of stored value s. */
double render_grey_modality(const render_grey *g, int64_t s);
/* Output grey (0..ymax) of modality value m: VOI then presentation. */
uint16_t render_grey_output(const render_grey *g, double m);
/* The VOI window functions alone (y in [0, ymax], unrounded), for tests. */
double render_window(double x, double c, double w, render_voi_fn fn, double ymax);
void render_grey_free(render_grey *g);

#endif
