/* dataset.c - building and reading the dataset model (see dataset.h). */
#include "dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../util/fdio.h"

dcm_file *dcm_file_new(size_t arena_limit)
{
    dcm_file *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    rs_arena_init(&f->arena, arena_limit);
    f->meta = dcm_ds_new(f, NULL);
    f->ds = dcm_ds_new(f, NULL);
    if (!f->meta || !f->ds) {
        dcm_file_free(f);
        return NULL;
    }
    f->ts = dcm_ts_explicit_le();
    f->source_ts = f->ts;
    return f;
}

void dcm_file_free(dcm_file *f)
{
    if (!f)
        return;
    rs_arena_free(&f->arena);
    free(f->path);
    free(f);
}

dcm_ds *dcm_ds_new(dcm_file *f, dcm_ds *parent)
{
    dcm_ds *ds = rs_arena_zalloc(&f->arena, sizeof *ds);
    if (!ds)
        return NULL;
    ds->file = f;
    ds->parent = parent;
    ds->item_len = DCM_UNDEF_LEN;
    return ds;
}

/* Index of the first element with tag >= tag. */
static uint32_t ds_lower_bound(const dcm_ds *ds, uint32_t tag)
{
    uint32_t lo = 0, hi = ds->n;
    /* elements mostly arrive in order: check the end first */
    if (hi > 0 && ds->e[hi - 1].tag < tag)
        return hi;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ds->e[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

dcm_elem *dcm_ds_find(const dcm_ds *ds, uint32_t tag)
{
    if (!ds)
        return NULL;
    uint32_t i = ds_lower_bound(ds, tag);
    return (i < ds->n && ds->e[i].tag == tag) ? &ds->e[i] : NULL;
}

dcm_elem *dcm_ds_find_up(const dcm_ds *ds, uint32_t tag)
{
    for (; ds; ds = ds->parent) {
        dcm_elem *e = dcm_ds_find(ds, tag);
        if (e)
            return e;
    }
    return NULL;
}

dcm_elem *dcm_ds_put(dcm_ds *ds, uint32_t tag, uint16_t vr)
{
    uint32_t i = ds_lower_bound(ds, tag);
    if (i < ds->n && ds->e[i].tag == tag) {
        memset(&ds->e[i], 0, sizeof ds->e[i]);
    } else {
        if (ds->n == ds->cap) {
            uint32_t cap = ds->cap ? ds->cap * 2 : 16;
            dcm_elem *ne = rs_arena_realloc(&ds->file->arena, ds->e, ds->cap * sizeof *ne,
                                            cap * sizeof *ne);
            if (!ne)
                return NULL;
            ds->e = ne;
            ds->cap = cap;
        }
        memmove(&ds->e[i + 1], &ds->e[i], (ds->n - i) * sizeof *ds->e);
        ds->n++;
        memset(&ds->e[i], 0, sizeof ds->e[i]);
    }
    ds->e[i].tag = tag;
    ds->e[i].vr = vr;
    return &ds->e[i];
}

int dcm_ds_remove(dcm_ds *ds, uint32_t tag)
{
    uint32_t i = ds_lower_bound(ds, tag);
    if (i >= ds->n || ds->e[i].tag != tag)
        return RS_ENOTFOUND;
    memmove(&ds->e[i], &ds->e[i + 1], (ds->n - i - 1) * sizeof *ds->e);
    ds->n--;
    return RS_OK;
}

int dcm_ds_set_bytes(dcm_ds *ds, uint32_t tag, uint16_t vr, const void *data, size_t n)
{
    if (n >= DCM_UNDEF_LEN)
        return RS_ELIMIT;
    uint8_t *p = rs_arena_alloc(&ds->file->arena, n + 1);
    if (!p)
        return RS_ENOMEM;
    if (n)
        memcpy(p, data, n);
    p[n] = 0;
    dcm_elem *e = dcm_ds_put(ds, tag, vr);
    if (!e)
        return RS_ENOMEM;
    e->len = (uint32_t)n;
    e->v.bytes = p;
    return RS_OK;
}

int dcm_ds_set_str(dcm_ds *ds, uint32_t tag, uint16_t vr, const char *s)
{
    return dcm_ds_set_bytes(ds, tag, vr, s, strlen(s));
}

dcm_ds *dcm_ds_add_item(dcm_ds *ds, uint32_t tag)
{
    dcm_elem *e = dcm_ds_find(ds, tag);
    if (!e) {
        e = dcm_ds_put(ds, tag, DCM_VR_SQ);
        if (!e)
            return NULL;
        e->len = DCM_UNDEF_LEN;
        e->flags = DCM_EF_UNDEF_LEN;
    }
    if (e->vr != DCM_VR_SQ)
        return NULL;
    dcm_ds *item = dcm_ds_new(ds->file, ds);
    if (!item)
        return NULL;
    dcm_ds **items = rs_arena_realloc(&ds->file->arena, e->v.sq.items, e->v.sq.n * sizeof *items,
                                      (e->v.sq.n + 1) * sizeof *items);
    if (!items)
        return NULL;
    items[e->v.sq.n++] = item;
    e->v.sq.items = items;
    return item;
}

/* ---- values -------------------------------------------------------------------------------- */

/* Locate string value idx inside a backslash-separated value, trimmed of padding. */
static int str_value_span(const dcm_elem *e, unsigned idx, const uint8_t **start, size_t *len)
{
    if (!e || (e->flags & (DCM_EF_BULK | DCM_EF_ENCAPS)) || e->vr == DCM_VR_SQ || !e->v.bytes)
        return RS_ENOTFOUND;
    const dcm_vr_info *vi = dcm_vr_info_get(e->vr);
    int multi = !vi || vi->kind == DCM_VK_STRING;
    const uint8_t *p = e->v.bytes, *end = p + e->len;
    for (unsigned k = 0; k < idx; k++) {
        const uint8_t *bs = multi ? memchr(p, '\\', (size_t)(end - p)) : NULL;
        if (!bs)
            return RS_ENOTFOUND;
        p = bs + 1;
    }
    const uint8_t *q = multi ? memchr(p, '\\', (size_t)(end - p)) : NULL;
    if (!q)
        q = end;
    /* leading spaces are padding except in free text */
    if (!vi || vi->kind != DCM_VK_TEXT)
        while (p < q && *p == ' ')
            p++;
    while (q > p && (q[-1] == ' ' || q[-1] == '\0'))
        q--;
    *start = p;
    *len = (size_t)(q - p);
    return RS_OK;
}

int dcm_ds_get_str(const dcm_ds *ds, uint32_t tag, unsigned idx, char *out, size_t cap)
{
    const uint8_t *p;
    size_t n;
    int rc = str_value_span(dcm_ds_find(ds, tag), idx, &p, &n);
    if (rc)
        return rc;
    if (cap) {
        size_t k = n < cap - 1 ? n : cap - 1;
        memcpy(out, p, k);
        out[k] = 0;
    }
    return (int)(n > INT32_MAX ? INT32_MAX : n);
}

unsigned dcm_elem_vm(const dcm_elem *e)
{
    if (e->vr == DCM_VR_SQ)
        return e->v.sq.n;
    if (e->len == 0 || e->len == DCM_UNDEF_LEN)
        return 0;
    const dcm_vr_info *vi = dcm_vr_info_get(e->vr);
    if (!vi)
        return 1;
    if (vi->fixed_size)
        return e->len / vi->fixed_size;
    if (vi->kind == DCM_VK_STRING && e->v.bytes && !(e->flags & DCM_EF_BULK)) {
        unsigned n = 1;
        for (uint32_t i = 0; i < e->len; i++)
            n += e->v.bytes[i] == '\\';
        return n;
    }
    return 1;
}

static uint64_t rd_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = (v << 8) | p[i];
    return v;
}

/* The integer part of d; 0 for NaN and infinities, saturated outside int64 (a plain cast is undefined). */
static int64_t f64_to_i64(double d)
{
    if (!isfinite(d))
        return 0;
    if (d >= 9223372036854775807.0)
        return INT64_MAX;
    if (d <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)d;
}

int dcm_elem_num(const dcm_elem *e, unsigned idx, double *d, int64_t *i)
{
    const dcm_vr_info *vi = dcm_vr_info_get(e->vr);
    if (!vi || !vi->fixed_size || (e->flags & DCM_EF_BULK) || !e->v.bytes)
        return RS_EINVAL;
    if ((uint64_t)(idx + 1) * vi->fixed_size > e->len)
        return RS_ENOTFOUND;
    const uint8_t *p = e->v.bytes + (size_t)idx * vi->fixed_size;
    uint64_t u = rd_le(p, vi->fixed_size);
    double dv;
    int64_t iv;
    switch (e->vr) {
    case DCM_VR_US: iv = (uint16_t)u; dv = (double)iv; break;
    case DCM_VR_SS: iv = (int16_t)u; dv = (double)iv; break;
    case DCM_VR_UL: iv = (uint32_t)u; dv = (double)iv; break;
    case DCM_VR_SL: iv = (int32_t)u; dv = (double)iv; break;
    case DCM_VR_UV: iv = (int64_t)u; dv = (double)u; break;
    case DCM_VR_SV: iv = (int64_t)u; dv = (double)iv; break;
    case DCM_VR_AT: iv = (int64_t)((rd_le(p, 2) << 16) | rd_le(p + 2, 2)); dv = (double)iv; break;
    case DCM_VR_FL: { float f; uint32_t w = (uint32_t)u; memcpy(&f, &w, 4); dv = f; iv = f64_to_i64(dv); break; }
    case DCM_VR_FD: { memcpy(&dv, &u, 8); iv = f64_to_i64(dv); break; }
    default: return RS_EINVAL;
    }
    if (d)
        *d = dv;
    if (i)
        *i = iv;
    return RS_OK;
}

static int get_num(const dcm_ds *ds, uint32_t tag, unsigned idx, double *d, int64_t *i)
{
    const dcm_elem *e = dcm_ds_find(ds, tag);
    if (!e)
        return RS_ENOTFOUND;
    const dcm_vr_info *vi = dcm_vr_info_get(e->vr);
    if (vi && vi->fixed_size)
        return dcm_elem_num(e, idx, d, i);
    if (e->vr == DCM_VR_IS || e->vr == DCM_VR_DS) {
        const uint8_t *p;
        size_t n;
        char tmp[64];
        if (str_value_span(e, idx, &p, &n) || n == 0 || n >= sizeof tmp)
            return RS_ENOTFOUND;
        memcpy(tmp, p, n);
        tmp[n] = 0;
        char *endp;
        errno = 0;
        double v = strtod(tmp, &endp);
        if (endp == tmp || *endp || errno)
            return RS_EFORMAT;
        if (d)
            *d = v;
        if (i)
            *i = f64_to_i64(v);
        return RS_OK;
    }
    return RS_EINVAL;
}

int dcm_ds_get_f64(const dcm_ds *ds, uint32_t tag, unsigned idx, double *out)
{
    return get_num(ds, tag, idx, out, NULL);
}

int dcm_ds_get_i64(const dcm_ds *ds, uint32_t tag, unsigned idx, int64_t *out)
{
    return get_num(ds, tag, idx, NULL, out);
}

void dcm_ds_charset(const dcm_ds *ds, dcm_charset *cs)
{
    const dcm_elem *e = dcm_ds_find_up(ds, DCM_TAG_SPECIFIC_CHARSET);
    const dcm_vr_info *vi = e ? dcm_vr_info_get(e->vr) : NULL;
    /* only a string value says anything; a hostile SQ or binary one is ignored */
    if (e && vi && vi->kind == DCM_VK_STRING && !(e->flags & (DCM_EF_BULK | DCM_EF_ENCAPS)) && e->v.bytes)
        dcm_charset_parse((const char *)e->v.bytes, e->len, cs, NULL);
    else
        dcm_charset_default(cs);
}

void dcm_swap_value(uint16_t vr, uint8_t *p, size_t n)
{
    const dcm_vr_info *vi = dcm_vr_info_get(vr);
    unsigned w = vi ? vi->swap : 0;
    if (w < 2)
        return;
    for (size_t i = 0; i + w <= n; i += w)
        for (unsigned a = 0, b = w - 1; a < b; a++, b--) {
            uint8_t t = p[i + a];
            p[i + a] = p[i + b];
            p[i + b] = t;
        }
}

/* ---- bulk data ------------------------------------------------------------------------------- */

int dcm_file_load(dcm_file *f, dcm_elem *e, rs_err *err)
{
    if (!(e->flags & DCM_EF_BULK))
        return RS_OK;
    if (!f->path)
        return rs_err_set(err, RS_EUNSUPPORTED, "bulk value of (%04X,%04X) has no source to load from",
                          DCM_TAG_GROUP(e->tag), DCM_TAG_ELEM(e->tag));
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rs_err_set(err, RS_EIO, "%s: %s", f->path, strerror(errno));
    int rc = RS_OK;
    if (e->flags & DCM_EF_ENCAPS) {
        for (uint32_t k = 0; k < e->v.px.n && rc == RS_OK; k++) {
            dcm_frag *fr = &e->v.px.frags[k];
            if (fr->bytes)
                continue;
            uint8_t *p = rs_arena_alloc(&f->arena, (size_t)fr->len + 1);
            if (!p) {
                rc = rs_err_set(err, RS_ELIMIT, "fragment of %u bytes exceeds the memory limit", fr->len);
                break;
            }
            rc = rs_pread_all(fd, p, fr->len, fr->off);
            p[fr->len] = 0;
            fr->bytes = p;
        }
    } else {
        uint8_t *p = rs_arena_alloc(&f->arena, (size_t)e->len + 1);
        if (!p) {
            rc = rs_err_set(err, RS_ELIMIT, "value of %u bytes exceeds the memory limit", e->len);
        } else {
            rc = rs_pread_all(fd, p, e->len, e->off);
            p[e->len] = 0;
            if (rc == RS_OK) {
                /* the reader flags values that were big endian where they lie (not those in
                   the little-endian items of a UN sequence of a big-endian file) */
                if (e->flags & DCM_EF_SWAPPED)
                    dcm_swap_value(e->vr, p, e->len);
                e->v.bytes = p;
                e->flags &= (uint16_t)~DCM_EF_BULK;
            }
        }
    }
    if (rc != RS_OK && err && !err->msg[0])
        rs_err_set(err, rc, "%s: cannot read bulk value at offset %llu", f->path,
                   (unsigned long long)e->off);
    if (rc == RS_OK && (e->flags & DCM_EF_ENCAPS))
        e->flags &= (uint16_t)~DCM_EF_BULK;
    close(fd);
    return rc;
}

void dcm_file_warn(dcm_file *f, uint64_t offset, const char *fmt, ...)
{
    if (f->n_warnings < DCM_MAX_WARNINGS) {
        dcm_warning *w = &f->warnings[f->n_warnings];
        w->offset = offset;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->msg, sizeof w->msg, fmt, ap);
        va_end(ap);
    }
    f->n_warnings++;
}
