/*
 * render.c - the rendering pipeline of render.h: checks a decoded frame against its own
 * description, picks the Modality/VOI/Presentation transforms for the frame from the dataset
 * (enhanced multi-frame functional groups first), evaluates the grey chain once per distinct
 * stored value into a table, and maps the samples through it. Colour photometric
 * interpretations become RGB here too (colour.c). Resizing and encoding live in resize.c and
 * encode.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "colour.h"
#include "lut.h"
#include "render.h"

#define TAG_WINDOW_CENTER DCM_TAG(0x0028, 0x1050)
#define TAG_WINDOW_WIDTH DCM_TAG(0x0028, 0x1051)
#define TAG_RESCALE_INTERCEPT DCM_TAG(0x0028, 0x1052)
#define TAG_RESCALE_SLOPE DCM_TAG(0x0028, 0x1053)
#define TAG_VOI_LUT_FUNCTION DCM_TAG(0x0028, 0x1056)
#define TAG_MODALITY_LUT_SEQ DCM_TAG(0x0028, 0x3000)
#define TAG_VOI_LUT_SEQ DCM_TAG(0x0028, 0x3010)
#define TAG_FRAME_VOI_LUT_SEQ DCM_TAG(0x0028, 0x9132)
#define TAG_PIXEL_VALUE_TRANSFORM_SEQ DCM_TAG(0x0028, 0x9145)
#define TAG_PRESENTATION_LUT_SHAPE DCM_TAG(0x2050, 0x0020)
#define TAG_SHARED_FG_SEQ DCM_TAG(0x5200, 0x9229)
#define TAG_PER_FRAME_FG_SEQ DCM_TAG(0x5200, 0x9230)

/* Stored value ranges up to this many values are mapped through a precomputed table. */
#define RENDER_TABLE_MAX (1u << 20)

size_t render_stype_size(codec_stype t)
{
    switch (t) {
    case CODEC_U8: case CODEC_S8: return 1;
    case CODEC_U16: case CODEC_S16: return 2;
    case CODEC_U32: case CODEC_S32: return 4;
    }
    return 0;
}

int64_t render_sample(const codec_frame *fr, size_t i)
{
    switch (fr->type) {
    case CODEC_U8: return ((const uint8_t *)fr->data)[i];
    case CODEC_S8: return ((const int8_t *)fr->data)[i];
    case CODEC_U16: return ((const uint16_t *)fr->data)[i];
    case CODEC_S16: return ((const int16_t *)fr->data)[i];
    case CODEC_U32: return ((const uint32_t *)fr->data)[i];
    case CODEC_S32: return ((const int32_t *)fr->data)[i];
    }
    return 0;
}

/* The frame says what it holds; make sure it holds exactly that before reading a sample. */
static int frame_check(const codec_frame *fr, int spp, rs_err *err)
{
    size_t ss = render_stype_size(fr->type);
    if (!ss)
        return rs_err_set(err, RS_EINVAL, "unknown sample type %d", (int)fr->type);
    if (!fr->rows || !fr->cols)
        return rs_err_set(err, RS_EFORMAT, "empty frame (%ux%u)", fr->rows, fr->cols);
    if (fr->spp != spp)
        return rs_err_set(err, RS_EFORMAT, "%s with %d samples per pixel", fr->photometric, fr->spp);
    if (fr->bits_stored < 1 || (size_t)fr->bits_stored > ss * 8)
        return rs_err_set(err, RS_EFORMAT, "%d bits stored in %zu-byte samples", fr->bits_stored, ss);
    uint64_t px = (uint64_t)fr->rows * fr->cols;
    if (px > SIZE_MAX / 16 / ss)
        return rs_err_set(err, RS_ELIMIT, "frame too large");
    if (!fr->data || fr->size != (size_t)px * (size_t)spp * ss)
        return rs_err_set(err, RS_EFORMAT, "frame holds %zu bytes, %ux%ux%d samples need %zu", fr->size, fr->rows,
                          fr->cols, spp, (size_t)px * (size_t)spp * ss);
    return RS_OK;
}

static dcm_ds *seq_item(const dcm_ds *ds, uint32_t tag, uint32_t i)
{
    dcm_elem *e = ds ? dcm_ds_find(ds, tag) : NULL;
    if (!e || e->vr != DCM_VR_SQ || i >= e->v.sq.n)
        return NULL;
    return e->v.sq.items[i];
}

/* A functional group macro for frame `index`: its per-frame item, else the shared one. */
static dcm_ds *fg_macro(const dcm_ds *ds, uint32_t index, uint32_t macro)
{
    dcm_ds *m = seq_item(seq_item(ds, TAG_PER_FRAME_FG_SEQ, index), macro, 0);
    return m ? m : seq_item(seq_item(ds, TAG_SHARED_FG_SEQ, 0), macro, 0);
}

static int has_str(const dcm_ds *ds, uint32_t tag, const char *want)
{
    char v[32];
    return ds && dcm_ds_get_str(ds, tag, 0, v, sizeof v) >= 0 && !strcmp(v, want);
}

static int photometric_is(const codec_frame *fr, const char *name) { return !strcmp(fr->photometric, name); }

static render_voi_fn file_voi_fn(const dcm_ds *ds)
{
    if (has_str(ds, TAG_VOI_LUT_FUNCTION, "SIGMOID"))
        return RENDER_VOI_SIGMOID;
    if (has_str(ds, TAG_VOI_LUT_FUNCTION, "LINEAR_EXACT"))
        return RENDER_VOI_LINEAR_EXACT;
    return RENDER_VOI_LINEAR;
}

static int window_ok(double c, double w, render_voi_fn fn)
{
    return isfinite(c) && isfinite(w) && w > 0 && (fn != RENDER_VOI_LINEAR || w >= 1);
}

/* The file's first window: the frame's Frame VOI LUT macro, else the top level. */
static int file_window(const dcm_ds *ds, uint32_t index, double *c, double *w, render_voi_fn *fn)
{
    const dcm_ds *srcs[2] = {fg_macro(ds, index, TAG_FRAME_VOI_LUT_SEQ), ds};
    for (int i = 0; i < 2; i++) {
        if (!srcs[i] || dcm_ds_get_f64(srcs[i], TAG_WINDOW_CENTER, 0, c) ||
            dcm_ds_get_f64(srcs[i], TAG_WINDOW_WIDTH, 0, w))
            continue;
        *fn = file_voi_fn(srcs[i]);
        if (window_ok(*c, *w, *fn))
            return 1;
    }
    return 0;
}

static int modality_setup(dcm_file *f, uint32_t index, int is_signed, render_grey *g, rs_err *err)
{
    dcm_ds *item = seq_item(f->ds, TAG_MODALITY_LUT_SEQ, 0);
    g->slope = 1;
    g->intercept = 0;
    if (item) {
        int rc = render_lut_from_item(f, item, is_signed, &g->mlut, err);
        if (rc)
            return rc;
        g->has_mlut = 1;
        return RS_OK;
    }
    const dcm_ds *pv = fg_macro(f->ds, index, TAG_PIXEL_VALUE_TRANSFORM_SEQ);
    double v;
    if ((pv && !dcm_ds_get_f64(pv, TAG_RESCALE_SLOPE, 0, &v)) || !dcm_ds_get_f64(f->ds, TAG_RESCALE_SLOPE, 0, &v))
        if (isfinite(v) && v != 0)
            g->slope = v;
    if ((pv && !dcm_ds_get_f64(pv, TAG_RESCALE_INTERCEPT, 0, &v)) ||
        !dcm_ds_get_f64(f->ds, TAG_RESCALE_INTERCEPT, 0, &v))
        if (isfinite(v))
            g->intercept = v;
    return RS_OK;
}

/*
 * Min and max of 16-bit samples as 8 running minima/maxima side by side, which the compiler
 * turns into one SIMD min and max per 8 samples (a plain loop is a chain of cmovs, the costliest
 * step of a render before this). SSE2 has min/max for signed 16-bit words only: unsigned samples
 * are biased by 0x8000 into that order and back.
 */
static void minmax16(const uint16_t *s, size_t n, int is_signed, int64_t *mn, int64_t *mx)
{
    uint16_t bias = is_signed ? 0 : 0x8000;
    int16_t lo[8], hi[8], a, b;
    for (int k = 0; k < 8; k++)
        lo[k] = hi[k] = (int16_t)(s[0] ^ bias);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            int16_t v = (int16_t)(s[i + k] ^ bias);
            lo[k] = v < lo[k] ? v : lo[k];
            hi[k] = v > hi[k] ? v : hi[k];
        }
    a = lo[0];
    b = hi[0];
    for (int k = 1; k < 8; k++) {
        a = lo[k] < a ? lo[k] : a;
        b = hi[k] > b ? hi[k] : b;
    }
    for (; i < n; i++) {
        int16_t v = (int16_t)(s[i] ^ bias);
        a = v < a ? v : a;
        b = v > b ? v : b;
    }
    *mn = is_signed ? a : (uint16_t)((uint16_t)a ^ bias);
    *mx = is_signed ? b : (uint16_t)((uint16_t)b ^ bias);
}

static void stored_minmax(const codec_frame *fr, int64_t *mn, int64_t *mx)
{
    size_t n = (size_t)fr->rows * fr->cols;
    if (fr->type == CODEC_U16 || fr->type == CODEC_S16) {
        minmax16(fr->data, n, fr->type == CODEC_S16, mn, mx);
        return;
    }
#define MINMAX(T)                                                                                \
    do {                                                                                         \
        const T *s = fr->data;                                                                   \
        T lo = s[0], hi = s[0];                                                                  \
        for (size_t i = 1; i < n; i++) {                                                         \
            if (s[i] < lo) lo = s[i];                                                            \
            if (s[i] > hi) hi = s[i];                                                            \
        }                                                                                        \
        *mn = lo;                                                                                \
        *mx = hi;                                                                                \
    } while (0)
    switch (fr->type) {
    case CODEC_U8: MINMAX(uint8_t); break;
    case CODEC_S8: MINMAX(int8_t); break;
    case CODEC_U16: MINMAX(uint16_t); break;
    case CODEC_S16: MINMAX(int16_t); break;
    case CODEC_U32: MINMAX(uint32_t); break;
    case CODEC_S32: MINMAX(int32_t); break;
    }
#undef MINMAX
}

/* The window that maps the frame's lowest modality value to black and its highest to white. */
static void auto_window(const codec_frame *fr, render_grey *g, int64_t smin, int64_t smax)
{
    double lo, hi;
    if (g->has_mlut) { /* a table need not be monotonic: look at what the pixels map to */
        size_t n = (size_t)fr->rows * fr->cols;
        lo = hi = render_lut_at(&g->mlut, render_sample(fr, 0));
        for (size_t i = 1; i < n; i++) {
            double m = render_lut_at(&g->mlut, render_sample(fr, i));
            lo = m < lo ? m : lo;
            hi = m > hi ? m : hi;
        }
    } else {
        double a = render_grey_modality(g, smin), b = render_grey_modality(g, smax);
        lo = a < b ? a : b;
        hi = a < b ? b : a;
    }
    /* LINEAR with w = hi-lo+1, c = (lo+hi+1)/2 has its bounds exactly at lo and hi */
    g->fn = RENDER_VOI_LINEAR;
    g->width = hi - lo + 1;
    g->center = (lo + hi + 1) / 2;
}

static int voi_setup(dcm_file *f, const codec_frame *fr, uint32_t index, const render_params *p, render_grey *g,
                     int64_t smin, int64_t smax, int is_signed, rs_err *err)
{
    render_voi_fn ffn = RENDER_VOI_LINEAR;
    g->voi_kind = RENDER_VOI_WINDOW;
    if (p->has_window) {
        g->center = p->center;
        g->width = p->width;
        g->fn = p->voi_fn != RENDER_VOI_DEFAULT ? p->voi_fn : file_voi_fn(f->ds);
        if (!window_ok(g->center, g->width, g->fn))
            return rs_err_set(err, RS_EINVAL, "window width %g is out of range for this VOI function", p->width);
        return RS_OK;
    }
    if (file_window(f->ds, index, &g->center, &g->width, &ffn)) {
        g->fn = p->voi_fn != RENDER_VOI_DEFAULT ? p->voi_fn : ffn;
        if (window_ok(g->center, g->width, g->fn))
            return RS_OK;
    }
    dcm_ds *item = seq_item(f->ds, TAG_VOI_LUT_SEQ, 0);
    if (item && render_lut_from_item(f, item, is_signed, &g->vlut, NULL) == RS_OK) {
        g->voi_kind = RENDER_VOI_LUT;
        return RS_OK;
    }
    auto_window(fr, g, smin, smax);
    if (p->voi_fn == RENDER_VOI_SIGMOID || p->voi_fn == RENDER_VOI_LINEAR_EXACT)
        g->fn = p->voi_fn;
    return RS_OK;
}

static int image_alloc(render_image *im, const codec_frame *fr, int channels, int depth, rs_err *err)
{
    memset(im, 0, sizeof *im);
    im->rows = fr->rows;
    im->cols = fr->cols;
    im->channels = channels;
    im->depth = depth;
    im->size = (size_t)fr->rows * fr->cols * (size_t)channels * (size_t)(depth / 8);
    im->data = malloc(im->size ? im->size : 1);
    if (!im->data)
        return rs_err_set(err, RS_ENOMEM, "out of memory for a %ux%u image", fr->rows, fr->cols);
    return RS_OK;
}

/* out[i] = tab[s[i] - base] for every sample, in the output's depth. */
static void map_table(const codec_frame *fr, const uint16_t *tab, int64_t base, render_image *im)
{
    size_t n = (size_t)fr->rows * fr->cols;
#define MAP(T, O)                                                                                \
    do {                                                                                         \
        const T *s = fr->data;                                                                   \
        O *o = im->data;                                                                         \
        for (size_t i = 0; i < n; i++)                                                           \
            o[i] = (O)tab[(int64_t)s[i] - base];                                                 \
    } while (0)
#define MAP_ALL(O)                                                                               \
    switch (fr->type) {                                                                          \
    case CODEC_U8: MAP(uint8_t, O); break;                                                       \
    case CODEC_S8: MAP(int8_t, O); break;                                                        \
    case CODEC_U16: MAP(uint16_t, O); break;                                                     \
    case CODEC_S16: MAP(int16_t, O); break;                                                      \
    case CODEC_U32: MAP(uint32_t, O); break;                                                     \
    case CODEC_S32: MAP(int32_t, O); break;                                                      \
    }
    if (im->depth == 16) {
        MAP_ALL(uint16_t)
    } else {
        MAP_ALL(uint8_t)
    }
#undef MAP_ALL
#undef MAP
}

static int render_grey_frame(dcm_file *f, const codec_frame *fr, uint32_t index, const render_params *p,
                             render_image *im, rs_err *err)
{
    render_grey g;
    memset(&g, 0, sizeof g);
    uint16_t *tab = NULL;
    int is_signed = fr->type == CODEC_S8 || fr->type == CODEC_S16 || fr->type == CODEC_S32;
    int64_t smin = 0, smax = 0;
    int rc = modality_setup(f, index, is_signed, &g, err);
    if (rc)
        goto out;
    stored_minmax(fr, &smin, &smax);
    rc = voi_setup(f, fr, index, p, &g, smin, smax, is_signed, err);
    if (rc)
        goto out;
    g.ymax = p->format == RENDER_PNG16 ? 65535 : 255;
    g.invert = photometric_is(fr, "MONOCHROME1") || has_str(f->ds, TAG_PRESENTATION_LUT_SHAPE, "INVERSE");
    if ((rc = image_alloc(im, fr, 1, g.ymax > 255 ? 16 : 8, err)))
        goto out;
    uint64_t range = (uint64_t)(smax - smin) + 1;
    if (range <= RENDER_TABLE_MAX) {
        if (!(tab = malloc(range * sizeof *tab))) {
            rc = rs_err_set(err, RS_ENOMEM, "out of memory");
            goto out;
        }
        for (uint64_t i = 0; i < range; i++)
            tab[i] = render_grey_output(&g, render_grey_modality(&g, smin + (int64_t)i));
        map_table(fr, tab, smin, im);
    } else { /* wide 32-bit data: evaluate per pixel */
        size_t n = (size_t)fr->rows * fr->cols;
        for (size_t i = 0; i < n; i++) {
            uint16_t y = render_grey_output(&g, render_grey_modality(&g, render_sample(fr, i)));
            if (im->depth == 16)
                ((uint16_t *)im->data)[i] = y;
            else
                ((uint8_t *)im->data)[i] = (uint8_t)y;
        }
    }
out:
    if (rc)
        render_image_free(im);
    free(tab);
    render_grey_free(&g);
    return rc;
}

static int params_check(const render_params *p, rs_err *err)
{
    if (p->voi_fn < RENDER_VOI_DEFAULT || p->voi_fn > RENDER_VOI_SIGMOID)
        return rs_err_set(err, RS_EINVAL, "unknown VOI function %d", (int)p->voi_fn);
    if (p->format < RENDER_PNG || p->format > RENDER_JPEG)
        return rs_err_set(err, RS_EINVAL, "unknown output format %d", (int)p->format);
    if (p->quality < 0 || p->quality > 100)
        return rs_err_set(err, RS_EINVAL, "JPEG quality %d is not 1..100", p->quality);
    return RS_OK;
}

int render_to_image(dcm_file *f, const codec_frame *fr, uint32_t index, const render_params *p, render_image *out,
                    rs_err *err)
{
    render_params dp = RENDER_PARAMS_DEFAULT;
    memset(out, 0, sizeof *out);
    if (!p)
        p = &dp;
    int rc = params_check(p, err);
    if (rc)
        return rc;
    if (!f || !f->ds || !fr)
        return rs_err_set(err, RS_EINVAL, "no dataset or frame");
    if (photometric_is(fr, "MONOCHROME1") || photometric_is(fr, "MONOCHROME2")) {
        if ((rc = frame_check(fr, 1, err)))
            return rc;
        return render_grey_frame(f, fr, index, p, out, err);
    }
    if (photometric_is(fr, "PALETTE COLOR")) {
        if ((rc = frame_check(fr, 1, err)))
            return rc;
        if ((rc = image_alloc(out, fr, 3, 8, err)))
            return rc;
        rc = render_palette(f, fr, out->data, err);
    } else {
        if (!render_colour_known(fr->photometric))
            return rs_err_set(err, RS_EUNSUPPORTED, "photometric interpretation '%s' is not rendered",
                              fr->photometric);
        if ((rc = frame_check(fr, 3, err)))
            return rc;
        if ((rc = image_alloc(out, fr, 3, 8, err)))
            return rc;
        rc = render_colour(fr, out->data, err);
    }
    if (rc)
        render_image_free(out);
    return rc;
}

void render_image_free(render_image *im)
{
    if (!im)
        return;
    free(im->data);
    memset(im, 0, sizeof *im);
}

int render_frame(dcm_file *f, codec_image *img, uint32_t index, const render_params *p, rs_buf *out,
                 const char **mime, rs_err *err)
{
    render_params dp = RENDER_PARAMS_DEFAULT;
    codec_frame fr;
    render_image im, sized;
    memset(&fr, 0, sizeof fr);
    memset(&im, 0, sizeof im);
    memset(&sized, 0, sizeof sized);
    if (!p)
        p = &dp;
    int rc = params_check(p, err);
    if (rc)
        return rc;
    if ((rc = codec_decode_frame(img, index, &fr, err)))
        goto out;
    if ((rc = render_to_image(f, &fr, index, p, &im, err)))
        goto out;
    if ((rc = render_resize(&im, p->viewport_w, p->viewport_h, &sized, err)))
        goto out;
    if (p->format == RENDER_JPEG) {
        rc = render_encode_jpeg(&sized, p->quality ? p->quality : 90, out, err);
        if (mime)
            *mime = "image/jpeg";
    } else {
        rc = render_encode_png(&sized, out, err);
        if (mime)
            *mime = "image/png";
    }
out:
    codec_frame_free(&fr);
    render_image_free(&im);
    render_image_free(&sized);
    return rc;
}
