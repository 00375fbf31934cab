/*
 * lut.c - LUTDescriptor/LUTData parsing and the grey-scale chain of PS3.3 C.11:
 * Modality LUT (C.11.1), VOI LUT window functions (C.11.2.1.2), Presentation inversion.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lut.h"

static unsigned rd16(const uint8_t *p) { return (unsigned)p[0] | ((unsigned)p[1] << 8); }

/* A plain (loaded) value of at least `need` bytes, loading bulk data on demand. */
static int elem_bytes(dcm_file *f, dcm_elem *e, size_t need, const uint8_t **p, size_t *n, rs_err *err)
{
    if (!e || e->vr == DCM_VR_SQ || (e->flags & DCM_EF_ENCAPS) || e->len == DCM_UNDEF_LEN)
        return rs_err_set(err, RS_EFORMAT, "LUT element missing or not a plain value");
    if (e->flags & DCM_EF_BULK) {
        int rc = dcm_file_load(f, e, err);
        if (rc)
            return rc;
    }
    if (e->len < need || (e->len && !e->v.bytes))
        return rs_err_set(err, RS_EFORMAT, "LUT element (%04X,%04X) too short (%u bytes)", DCM_TAG_GROUP(e->tag),
                          DCM_TAG_ELEM(e->tag), e->len);
    *p = e->v.bytes;
    *n = e->len;
    return RS_OK;
}

int render_lut_desc(dcm_file *f, dcm_elem *desc, int signed_first, render_lut *out, rs_err *err)
{
    const uint8_t *d;
    size_t dn;
    memset(out, 0, sizeof *out);
    int rc = elem_bytes(f, desc, 6, &d, &dn, err);
    if (rc)
        return rc;
    out->n = rd16(d);
    if (out->n == 0)
        out->n = RENDER_LUT_MAX; /* C.11.1.1.1: 0 means 2^16 entries */
    unsigned first = rd16(d + 2);
    out->first = (signed_first || desc->vr == DCM_VR_SS) ? (int64_t)(int16_t)first : (int64_t)first;
    out->bits = (int)rd16(d + 4);
    if (out->bits < 1 || out->bits > 16)
        return rs_err_set(err, RS_EFORMAT, "LUT descriptor: %d bits per entry", out->bits);
    return RS_OK;
}

int render_lut_parse(dcm_file *f, dcm_elem *desc, dcm_elem *data, int signed_first, render_lut *out, rs_err *err)
{
    const uint8_t *v;
    size_t vn;
    int rc = render_lut_desc(f, desc, signed_first, out, err);
    if (rc)
        return rc;
    uint32_t n = out->n;
    out->n = 0;
    rc = elem_bytes(f, data, 1, &v, &vn, err);
    if (rc)
        return rc;
    int wide;
    if (vn >= (size_t)n * 2)
        wide = 1;
    else if (vn >= n && out->bits <= 8)
        wide = 0;
    else
        return rs_err_set(err, RS_EFORMAT, "LUT data has %zu bytes for %u entries of %d bits", vn, n, out->bits);
    out->data = malloc((size_t)n * sizeof *out->data);
    if (!out->data)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++)
        out->data[i] = (uint16_t)(wide ? rd16(v + 2 * (size_t)i) : v[i]);
    out->n = n;
    return RS_OK;
}

int render_lut_from_item(dcm_file *f, dcm_ds *item, int signed_first, render_lut *out, rs_err *err)
{
    return render_lut_parse(f, dcm_ds_find(item, DCM_TAG_LUT_DESCRIPTOR), dcm_ds_find(item, DCM_TAG_LUT_DATA),
                            signed_first, out, err);
}

void render_lut_free(render_lut *l)
{
    free(l->data);
    memset(l, 0, sizeof *l);
}

double render_grey_modality(const render_grey *g, int64_t s)
{
    if (g->has_mlut)
        return render_lut_at(&g->mlut, s);
    return (double)s * g->slope + g->intercept;
}

double render_window(double x, double c, double w, render_voi_fn fn, double ymax)
{
    switch (fn) {
    case RENDER_VOI_SIGMOID:
        return ymax / (1.0 + exp(-4.0 * (x - c) / w));
    case RENDER_VOI_LINEAR_EXACT:
        if (x <= c - w / 2)
            return 0;
        if (x > c + w / 2)
            return ymax;
        return ((x - c) / w + 0.5) * ymax;
    default: /* LINEAR, with the -0.5 and -1 of C.11.2.1.2.1 */
        if (x <= c - 0.5 - (w - 1) / 2)
            return 0;
        if (x > c - 0.5 + (w - 1) / 2)
            return ymax;
        return ((x - (c - 0.5)) / (w - 1) + 0.5) * ymax;
    }
}

uint16_t render_grey_output(const render_grey *g, double m)
{
    double y;
    if (g->voi_kind == RENDER_VOI_LUT) {
        /* a VOI LUT is indexed by integer input values: fractions of rescaled values drop */
        double fl = floor(m);
        int64_t x = fl < -1e15 ? (int64_t)-1e15 : fl > 1e15 ? (int64_t)1e15 : (int64_t)fl;
        double top = (double)((1u << g->vlut.bits) - 1);
        double e = render_lut_at(&g->vlut, x);
        y = (e > top ? top : e) * g->ymax / top;
    } else {
        y = render_window(m, g->center, g->width, g->fn, g->ymax);
    }
    y = floor(y + 0.5);
    if (!(y >= 0))
        y = 0;
    if (y > g->ymax)
        y = g->ymax;
    uint16_t o = (uint16_t)y;
    return g->invert ? (uint16_t)(g->ymax - o) : o;
}

void render_grey_free(render_grey *g)
{
    render_lut_free(&g->mlut);
    render_lut_free(&g->vlut);
}
