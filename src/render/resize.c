/*
 * resize.c - fitting a rendered image into a viewport: aspect kept, never enlarged, and when
 * shrinking every output pixel is the area average of the source rectangle it covers
 * (a box filter with fractional coverage at the edges), done separably: rows then columns.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "resize.h"

/* Output size for a cols x rows image in a vw x vh viewport (0 = unbounded). */
void render_fit(uint32_t cols, uint32_t rows, uint32_t vw, uint32_t vh, uint32_t *ow, uint32_t *oh)
{
    double s = 1;
    if (vw && (double)vw / cols < s)
        s = (double)vw / cols;
    if (vh && (double)vh / rows < s)
        s = (double)vh / rows;
    *ow = cols;
    *oh = rows;
    if (s >= 1)
        return;
    double w = floor(cols * s + 0.5), h = floor(rows * s + 0.5);
    *ow = w < 1 ? 1 : w > cols ? cols : (uint32_t)w;
    *oh = h < 1 ? 1 : h > rows ? rows : (uint32_t)h;
    if (vw && *ow > vw)
        *ow = vw;
    if (vh && *oh > vh)
        *oh = vh;
}

/* Box-filter taps of one axis: output o covers source [o*r, (o+1)*r), r = in/out. */
typedef struct axis {
    uint32_t *first;   /* first source index of output o */
    uint32_t *count;   /* taps of output o */
    uint32_t *off;     /* offset of o's weights in w */
    double *w;
} axis;

static void axis_free(axis *a)
{
    free(a->first);
    free(a->count);
    free(a->off);
    free(a->w);
}

static int axis_make(uint32_t in, uint32_t out, axis *a)
{
    double r = (double)in / out;
    size_t taps = (size_t)out * ((size_t)ceil(r) + 2);
    a->first = malloc(out * sizeof *a->first);
    a->count = malloc(out * sizeof *a->count);
    a->off = malloc(out * sizeof *a->off);
    a->w = malloc(taps * sizeof *a->w);
    if (!a->first || !a->count || !a->off || !a->w)
        return RS_ENOMEM;
    size_t k = 0;
    for (uint32_t o = 0; o < out; o++) {
        double lo = o * r, hi = (o + 1) * r;
        uint32_t j0 = (uint32_t)floor(lo), j1 = (uint32_t)ceil(hi);
        if (j1 > in)
            j1 = in;
        if (hi > in)
            hi = in;
        a->first[o] = j0;
        a->off[o] = (uint32_t)k;
        a->count[o] = 0;
        for (uint32_t j = j0; j < j1 && k < taps; j++) {
            double cl = j > lo ? j : lo, ch = j + 1 < hi ? j + 1 : hi;
            if (ch > cl) {
                a->w[k++] = ((ch - cl) / (hi - lo));
                a->count[o]++;
            } else if (a->count[o] == 0) {
                a->first[o] = j + 1;
            }
        }
    }
    return RS_OK;
}

int render_resize(const render_image *in, uint32_t viewport_w, uint32_t viewport_h, render_image *out, rs_err *err)
{
    uint32_t ow, oh;
    memset(out, 0, sizeof *out);
    if (!in || !in->data || !in->rows || !in->cols || (in->channels != 1 && in->channels != 3) ||
        (in->depth != 8 && in->depth != 16) ||
        in->size != (size_t)in->rows * in->cols * (size_t)in->channels * (size_t)(in->depth / 8))
        return rs_err_set(err, RS_EINVAL, "not a rendered image");
    render_fit(in->cols, in->rows, viewport_w, viewport_h, &ow, &oh);
    *out = *in;
    out->rows = oh;
    out->cols = ow;
    out->size = (size_t)ow * oh * (size_t)in->channels * (size_t)(in->depth / 8);
    out->data = malloc(out->size);
    if (!out->data)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    if (ow == in->cols && oh == in->rows) {
        memcpy(out->data, in->data, out->size);
        return RS_OK;
    }
    int ch = in->channels, rc = RS_OK;
    axis ax = {0}, ay = {0};
    size_t rowlen = (size_t)ow * ch;
    double *tmp = malloc((size_t)in->rows * rowlen * sizeof *tmp), *acc = malloc(rowlen * sizeof *acc);
    if (!tmp || !acc || axis_make(in->cols, ow, &ax) || axis_make(in->rows, oh, &ay)) {
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
        goto out;
    }
    const uint8_t *s8 = in->data;
    const uint16_t *s16 = in->data;
    for (uint32_t y = 0; y < in->rows; y++) { /* horizontal pass into tmp */
        size_t base = (size_t)y * in->cols * ch;
        for (uint32_t o = 0; o < ow; o++)
            for (int c = 0; c < ch; c++) {
                double sum = 0;
                const double *w = ax.w + ax.off[o];
                size_t j = base + (size_t)ax.first[o] * ch + c;
                for (uint32_t t = 0; t < ax.count[o]; t++, j += ch)
                    sum += w[t] * (in->depth == 16 ? s16[j] : s8[j]);
                tmp[(size_t)y * rowlen + (size_t)o * ch + c] = sum;
            }
    }
    double top = in->depth == 16 ? 65535.0 : 255.0;
    for (uint32_t o = 0; o < oh; o++) { /* vertical pass, a whole row per tap */
        const double *w = ay.w + ay.off[o];
        memset(acc, 0, rowlen * sizeof *acc);
        for (uint32_t t = 0; t < ay.count[o]; t++) {
            const double *src = tmp + (size_t)(ay.first[o] + t) * rowlen;
            for (size_t x = 0; x < rowlen; x++)
                acc[x] += w[t] * src[x];
        }
        for (size_t x = 0; x < rowlen; x++) {
            double v = floor(acc[x] + 0.5);
            v = v < 0 ? 0 : v > top ? top : v;
            if (in->depth == 16)
                ((uint16_t *)out->data)[(size_t)o * rowlen + x] = (uint16_t)v;
            else
                ((uint8_t *)out->data)[(size_t)o * rowlen + x] = (uint8_t)v;
        }
    }
out:
    free(tmp);
    free(acc);
    axis_free(&ax);
    axis_free(&ay);
    if (rc)
        render_image_free(out);
    return rc;
}
