/*
 * dicomdir.c - see dicomdir.h. The records' lengths do not depend on the offsets they hold
 * (UL, 4 bytes), so the items are encoded once to measure them, the offsets computed, and the
 * items encoded again with the offsets in.
 */
#include "dicomdir.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader.h"
#include "writer.h"

enum { R_PATIENT, R_STUDY, R_SERIES, R_IMAGE };
static const char *const RTYPE[] = {"PATIENT", "STUDY", "SERIES", "IMAGE"};

typedef struct rec {
    int type;
    const dicomdir_entry *e;
    size_t next, lower;      /* indices into the record list; 0 = none (record 0 is never a target) */
    uint32_t off, len;       /* item offset in the file, item body length */
} rec;

static int put_tag(rs_buf *b, uint32_t tag)
{
    uint8_t h[4] = {(uint8_t)(tag >> 16), (uint8_t)(tag >> 24), (uint8_t)tag, (uint8_t)(tag >> 8)};
    return rs_buf_append(b, h, 4);
}

static int put_u32(rs_buf *b, uint32_t v)
{
    uint8_t h[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return rs_buf_append(b, h, 4);
}

/* A short-form explicit VR element (2-byte length). */
static int elem(rs_buf *b, uint32_t tag, const char *vr, const void *v, size_t n, char pad)
{
    size_t padded = n + (n & 1);
    uint8_t h[4] = {(uint8_t)vr[0], (uint8_t)vr[1], (uint8_t)padded, (uint8_t)(padded >> 8)};
    int rc = padded > 0xFFFF ? RS_ELIMIT : put_tag(b, tag);
    rc = rc ? rc : rs_buf_append(b, h, 4);
    rc = rc ? rc : rs_buf_append(b, v, n);
    if (rc == RS_OK && (n & 1))
        rc = rs_buf_putc(b, pad);
    return rc;
}

static int str(rs_buf *b, uint32_t tag, const char *vr, const char *s)
{
    return elem(b, tag, vr, s, strlen(s), strcmp(vr, "UI") ? ' ' : 0);
}

static int ul(rs_buf *b, uint32_t tag, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return elem(b, tag, "UL", x, 4, 0);
}

static int us(rs_buf *b, uint32_t tag, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return elem(b, tag, "US", x, 2, 0);
}

#define T(g, e) (((uint32_t)(g) << 16) | (e))

static int keys(rs_buf *b, const rec *r)
{
    const dicomdir_entry *e = r->e;
    int rc = RS_OK;
    switch (r->type) {
    case R_PATIENT:
        rc = str(b, T(0x0010, 0x0010), "PN", e->patient_name);
        return rc ? rc : str(b, T(0x0010, 0x0020), "LO", e->patient_id);
    case R_STUDY:
        rc = str(b, T(0x0008, 0x0020), "DA", e->study_date);
        rc = rc ? rc : str(b, T(0x0008, 0x0030), "TM", e->study_time);
        rc = rc ? rc : str(b, T(0x0008, 0x0050), "SH", e->accession);
        rc = rc ? rc : str(b, T(0x0008, 0x1030), "LO", e->study_desc);
        rc = rc ? rc : str(b, T(0x0020, 0x000D), "UI", e->study_uid);
        return rc ? rc : str(b, T(0x0020, 0x0010), "SH", e->study_id);
    case R_SERIES:
        rc = str(b, T(0x0008, 0x0060), "CS", e->modality);
        rc = rc ? rc : str(b, T(0x0020, 0x000E), "UI", e->series_uid);
        return rc ? rc : str(b, T(0x0020, 0x0011), "IS", e->series_number);
    default:
        return str(b, T(0x0020, 0x0013), "IS", e->instance_number);
    }
}

/* One record item: header, then elements in tag order. */
static int encode_rec(rs_buf *b, const rec *r, const rec *all)
{
    rs_buf body = RS_BUF_INIT;
    int rc = ul(&body, T(0x0004, 0x1400), r->next ? all[r->next].off : 0);
    /* retired since 2003 but still Type 1 to dciodvfy, and written by DCMTK: 0xFFFF = in use */
    rc = rc ? rc : us(&body, T(0x0004, 0x1410), 0xFFFF);
    rc = rc ? rc : ul(&body, T(0x0004, 0x1420), r->lower ? all[r->lower].off : 0);
    rc = rc ? rc : str(&body, T(0x0004, 0x1430), "CS", RTYPE[r->type]);
    if (rc == RS_OK && r->type == R_IMAGE) {
        rc = str(&body, T(0x0004, 0x1500), "CS", r->e->file_id);
        rc = rc ? rc : str(&body, T(0x0004, 0x1510), "UI", r->e->sop_class);
        rc = rc ? rc : str(&body, T(0x0004, 0x1511), "UI", r->e->sop_uid);
        rc = rc ? rc : str(&body, T(0x0004, 0x1512), "UI", r->e->ts_uid);
    }
    if (rc == RS_OK && r->e->charset[0] && r->type != R_IMAGE)
        rc = str(&body, T(0x0008, 0x0005), "CS", r->e->charset);
    rc = rc ? rc : keys(&body, r);
    rc = rc ? rc : put_tag(b, 0xFFFEE000u);
    rc = rc ? rc : put_u32(b, (uint32_t)body.len);
    rc = rc ? rc : rs_buf_append(b, body.p, body.len);
    rs_buf_free(&body);
    return rc;
}

/* Depth-first records with sibling and child links. */
static int build(const dicomdir_entry *e, size_t n, rec **out, size_t *nr)
{
    rec *r = calloc(4 * n + 1, sizeof *r);
    if (!r)
        return RS_ENOMEM;
    size_t k = 0, last[4] = {0}; /* the last record made at each level */
    for (size_t i = 0; i < n; i++) {
        int level = R_PATIENT; /* the first level where entry i starts a new record */
        const dicomdir_entry *p = i ? &e[i - 1] : NULL;
        if (p && !strcmp(p->patient_id, e[i].patient_id)) {
            level = R_STUDY;
            if (!strcmp(p->study_uid, e[i].study_uid)) {
                level = R_SERIES;
                if (!strcmp(p->series_uid, e[i].series_uid))
                    level = R_IMAGE;
            }
        }
        for (int l = level; l <= R_IMAGE; l++) {
            r[k] = (rec){.type = l, .e = &e[i]};
            if (l == level && i > 0)
                r[last[l]].next = k;      /* a sibling under the same parent */
            else if (l > level)
                r[last[l - 1]].lower = k; /* first child of the record just made */
            last[l] = k++;
        }
    }
    *out = r;
    *nr = k;
    return RS_OK;
}

static int meta(rs_buf *b, const char *sop_instance)
{
    static const uint8_t version[2] = {0x00, 0x01};
    rs_buf g = RS_BUF_INIT;
    uint8_t obh[8] = {'O', 'B', 0, 0, 2, 0, 0, 0};
    int rc = put_tag(&g, T(0x0002, 0x0001));
    rc = rc ? rc : rs_buf_append(&g, obh, 8);
    rc = rc ? rc : rs_buf_append(&g, version, 2);
    rc = rc ? rc : str(&g, T(0x0002, 0x0002), "UI", DICOMDIR_SOP_CLASS);
    rc = rc ? rc : str(&g, T(0x0002, 0x0003), "UI", sop_instance);
    rc = rc ? rc : str(&g, T(0x0002, 0x0010), "UI", "1.2.840.10008.1.2.1");
    rc = rc ? rc : str(&g, T(0x0002, 0x0012), "UI", DCM_IMPL_CLASS_UID);
    rc = rc ? rc : str(&g, T(0x0002, 0x0013), "SH", DCM_IMPL_VERSION);
    uint8_t pre[132] = {0};
    memcpy(pre + 128, "DICM", 4);
    rc = rc ? rc : rs_buf_append(b, pre, sizeof pre);
    rc = rc ? rc : ul(b, T(0x0002, 0x0000), (uint32_t)g.len);
    rc = rc ? rc : rs_buf_append(b, g.p, g.len);
    rs_buf_free(&g);
    return rc;
}

/* The data set up to the sequence's value, with the root offsets in. */
static int head(rs_buf *b, const char *fileset_id, uint32_t first, uint32_t last)
{
    int rc = str(b, T(0x0004, 0x1130), "CS", fileset_id);
    rc = rc ? rc : ul(b, T(0x0004, 0x1200), first);
    rc = rc ? rc : ul(b, T(0x0004, 0x1202), last);
    rc = rc ? rc : us(b, T(0x0004, 0x1212), 0);
    uint8_t sq[8] = {'S', 'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF};
    rc = rc ? rc : put_tag(b, T(0x0004, 0x1220));
    return rc ? rc : rs_buf_append(b, sq, 8);
}

int dicomdir_write(const dicomdir_entry *e, size_t n, const char *fileset_id, const char *sop_instance,
                   rs_buf *out, rs_err *err)
{
    rec *r = NULL;
    size_t nr = 0;
    rs_buf tmp = RS_BUF_INIT;
    if (!n)
        return rs_err_set(err, RS_EINVAL, "DICOMDIR: no instances");
    int rc = build(e, n, &r, &nr);
    size_t base = out->len;
    rc = rc ? rc : meta(out, sop_instance);
    rc = rc ? rc : head(&tmp, fileset_id, 0, 0); /* measured only */
    uint64_t at = out->len - base + tmp.len;
    for (size_t i = 0; i < nr && rc == RS_OK; i++) {
        rs_buf_reset(&tmp);
        r[i].off = (uint32_t)at;
        rc = encode_rec(&tmp, &r[i], r);
        at += tmp.len;
        if (at > UINT32_MAX)
            rc = RS_ELIMIT;
    }
    uint32_t first = nr ? r[0].off : 0, last = first;
    for (size_t i = 0; i < nr; i++)
        if (r[i].type == R_PATIENT)
            last = r[i].off;
    rc = rc ? rc : head(out, fileset_id, first, last);
    for (size_t i = 0; i < nr && rc == RS_OK; i++)
        rc = encode_rec(out, &r[i], r);
    rc = rc ? rc : put_tag(out, 0xFFFEE0DDu);
    rc = rc ? rc : put_u32(out, 0);
    rs_buf_free(&tmp);
    free(r);
    return rc ? rs_err_set(err, rc, "DICOMDIR: cannot encode (%s)", rc == RS_ELIMIT ? "too large" : "out of memory")
              : RS_OK;
}

/* ---- an entry from a stored file ------------------------------------------------------------ */

/* A string value's raw bytes, trailing padding dropped (the DICOMDIR keeps the charset). */
static void raw(const dcm_ds *ds, uint32_t tag, char *out, size_t cap)
{
    const dcm_elem *e = dcm_ds_find(ds, tag);
    size_t n = e && !(e->flags & DCM_EF_BULK) && e->len != DCM_UNDEF_LEN ? e->len : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(out, e->v.bytes, n);
    while (n && (out[n - 1] == ' ' || out[n - 1] == 0))
        n--;
    out[n] = 0;
}

int dicomdir_entry_read(const char *path, dicomdir_entry *d, rs_err *err)
{
    static const struct {
        uint32_t tag;
        size_t off, cap;
    } keys[] = {
#define K(g, e, f) {DCM_TAG(g, e), offsetof(dicomdir_entry, f), sizeof((dicomdir_entry *)0)->f}
        K(0x0008, 0x0016, sop_class),  K(0x0008, 0x0018, sop_uid),      K(0x0008, 0x0005, charset),
        K(0x0010, 0x0020, patient_id), K(0x0010, 0x0010, patient_name), K(0x0020, 0x000D, study_uid),
        K(0x0008, 0x0020, study_date), K(0x0008, 0x0030, study_time),   K(0x0008, 0x1030, study_desc),
        K(0x0020, 0x0010, study_id),   K(0x0008, 0x0050, accession),    K(0x0020, 0x000E, series_uid),
        K(0x0008, 0x0060, modality),   K(0x0020, 0x0011, series_number), K(0x0020, 0x0013, instance_number),
#undef K
    };
    dcm_read_opts ro = {.stop_tag = DCM_TAG_PIXEL_DATA, .bulk_min = 4096};
    dcm_file *f = NULL;
    int rc = dcm_read_path(path, &ro, &f, err);
    if (rc)
        return rc;
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        raw(f->ds, keys[k].tag, (char *)d + keys[k].off, keys[k].cap);
    raw(f->meta, DCM_TAG_TRANSFER_SYNTAX, d->ts_uid, sizeof d->ts_uid);
    if (!d->ts_uid[0])
        snprintf(d->ts_uid, sizeof d->ts_uid, "%.64s", f->ts_uid);
    dcm_file_free(f);
    return RS_OK;
}
