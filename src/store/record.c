/*
 * record.c - one instance file -> the values the index keeps (see record.h).
 *
 * The patient row's identity (patient_key) is PatientID plus IssuerOfPatientID, as PS3.4 has it.
 * Many files carry no PatientID at all; lumping all of those into one "patient" would make
 * Patient Root queries useless, so for them the name and birth date stand in for the ID.
 */
#include "record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dicom/reader.h"
#include "../dicom/json.h"
#include "norm.h"

#define DEFAULT_MAX_MEMORY ((size_t)256 << 20)
#define DEFAULT_JSON_MAX ((size_t)16 << 20)
#define DEFAULT_INLINE_MAX 1024u
#define BULK_MIN 4096u
/* Stop before the first pixel data element (Float/Double Float Pixel Data come before 7FE0,0010). */
#define STOP_TAG DCM_TAG(0x7FE0, 0x0008)

/* Latin-1 bytes of a non-charset VR to UTF-8 (as the JSON writer reads them). */
static int latin1_to_utf8(const uint8_t *p, size_t n, rs_buf *out)
{
    int rc = rs_buf_reserve(out, n * 2 + 1);
    for (size_t i = 0; i < n && rc == RS_OK; i++) {
        if (p[i] < 0x80) {
            rc = rs_buf_putc(out, p[i]);
        } else {
            uint8_t u[2] = {(uint8_t)(0xC0 | (p[i] >> 6)), (uint8_t)(0x80 | (p[i] & 0x3F))};
            rc = rs_buf_append(out, u, 2);
        }
    }
    return rc;
}

/* Remove padding from b from start on (in place): per backslash-separated value when multi. */
static void trim_values(rs_buf *b, size_t start, int multi)
{
    if (b->len == start)
        return;
    size_t w = start, i = start, n = b->len;
    uint8_t *p = b->p;
    while (i <= n) {
        size_t end = i;
        while (end < n && !(multi && p[end] == '\\'))
            end++;
        size_t s = i, e = end;
        while (multi && s < e && p[s] == ' ') /* leading spaces are text in LT/ST/UT */
            s++;
        while (e > s && (p[e - 1] == ' ' || p[e - 1] == 0))
            e--;
        memmove(p + w, p + s, e - s);
        w += e - s;
        if (end < n)
            p[w++] = '\\';
        i = end + 1;
    }
    b->len = w;
    p[w] = 0;
}

int store_elem_text(const dcm_ds *ds, dcm_elem *e, rs_buf *out, rs_err *err)
{
    if (!e || e->vr == DCM_VR_SQ || (e->flags & DCM_EF_ENCAPS))
        return RS_OK;
    const dcm_vr_info *vi = dcm_vr_info_get(e->vr);
    if (vi && vi->kind == DCM_VK_NUMBER && !(e->flags & DCM_EF_BULK)) {
        /* binary numbers (a C-FIND key like BitsAllocated, US) as decimal text values */
        unsigned vm = dcm_elem_vm(e);
        for (unsigned i = 0; i < vm; i++) {
            double d;
            int64_t iv;
            dcm_elem_num(e, i, &d, &iv);
            int rc = (e->vr == DCM_VR_FL || e->vr == DCM_VR_FD) ? rs_buf_printf(out, "%s%.17g", i ? "\\" : "", d)
                                                                  : rs_buf_printf(out, "%s%lld", i ? "\\" : "", (long long)iv);
            if (rc)
                return rs_err_set(err, rc, "out of memory");
        }
        return RS_OK;
    }
    if (!vi || (vi->kind != DCM_VK_STRING && vi->kind != DCM_VK_TEXT))
        return RS_OK;
    int rc = dcm_file_load(ds->file, e, err);
    if (rc)
        return rc;
    size_t start = out->len;
    if (vi->charset) {
        dcm_charset cs;
        dcm_ds_charset(ds, &cs);
        rc = dcm_charset_decode(&cs, e->vr, e->v.bytes, e->len, out, NULL);
    } else {
        rc = latin1_to_utf8(e->v.bytes, e->len, out);
    }
    if (rc)
        return rs_err_set(err, rc, "out of memory decoding text");
    trim_values(out, start, vi->kind == DCM_VK_STRING);
    return RS_OK;
}

/* The UTF-8 text of element e (all values) copied into the arena, "" when absent. */
static int text_value(const dcm_ds *ds, dcm_elem *e, rs_buf *tmp, rs_arena *a, const char **out, rs_err *err)
{
    rs_buf_reset(tmp);
    int rc = store_elem_text(ds, e, tmp, err);
    if (rc)
        return rc;
    char *s = rs_arena_strndup(a, tmp->p ? (const char *)tmp->p : "", tmp->len);
    if (!s)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    *out = s;
    return RS_OK;
}

static int arena_str(rs_arena *a, const rs_buf *b, const char **out)
{
    char *s = rs_arena_strndup(a, b->p ? (const char *)b->p : "", b->len);
    *out = s;
    return s ? RS_OK : RS_ENOMEM;
}

/* The value of one catalogued attribute, with its matching form. */
static int extract_one(store_record *r, dcm_file *f, const store_attr *at, rs_buf *tmp, rs_err *err)
{
    store_value *v = &r->v[store_attr_index(at)];
    v->s = "";
    if (!store_attr_from_dataset(at))
        return RS_OK;
    if (at->kind == STORE_AK_INT) {
        v->has_i = dcm_ds_get_i64(f->ds, at->tag, 0, &v->i) == RS_OK;
        return RS_OK;
    }
    int rc = text_value(f->ds, dcm_ds_find(f->ds, at->tag), tmp, &r->arena, &v->s, err);
    if (rc)
        return rc;
    if (at->kind == STORE_AK_DA) {
        char da[STORE_DA_LEN + 1];
        if (store_norm_da(v->s, da) == 0 && strcmp(da, v->s) != 0)
            v->s = rs_arena_strndup(&r->arena, da, STORE_DA_LEN);
    } else if (at->kind == STORE_AK_PN) {
        rs_buf_reset(tmp);
        rc = store_norm_pn(v->s, tmp);
        if (rc == RS_OK)
            rc = arena_str(&r->arena, tmp, &v->norm);
    }
    if (rc == RS_OK && !v->s)
        rc = RS_ENOMEM;
    return rc ? rs_err_set(err, rc, "out of memory") : RS_OK;
}

static int check_uids(const store_record *r, rs_err *err)
{
    static const struct { uint32_t tag; const char *name; } required[] = {
        {DCM_TAG_SOP_INSTANCE_UID, "SOPInstanceUID"},
        {DCM_TAG_SOP_CLASS_UID, "SOPClassUID"},
        {DCM_TAG_STUDY_UID, "StudyInstanceUID"},
        {DCM_TAG_SERIES_UID, "SeriesInstanceUID"},
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        const char *s = store_record_str(r, required[i].tag);
        if (!s[0])
            return rs_err_set(err, RS_EFORMAT, "no %s: not a storable DICOM instance", required[i].name);
        if (strlen(s) > STORE_UID_MAX || strchr(s, '\\'))
            return rs_err_set(err, RS_EFORMAT, "%s is not a single UID of at most %d characters",
                              required[i].name, STORE_UID_MAX);
    }
    return RS_OK;
}

static int make_patient_key(store_record *r, rs_buf *tmp)
{
    const char *id = store_record_str(r, DCM_TAG(0x0010, 0x0020));
    rs_buf_reset(tmp);
    int rc = id[0] ? rs_buf_printf(tmp, "%s\\%s", id, store_record_str(r, DCM_TAG(0x0010, 0x0021)))
                   : rs_buf_printf(tmp, "\\\\%s\\%s", store_record_get(r, DCM_TAG(0x0010, 0x0010))->norm,
                                   store_record_str(r, DCM_TAG(0x0010, 0x0030)));
    return rc ? rc : arena_str(&r->arena, tmp, &r->patient_key);
}

/* "bulk/" then the attribute path of ds inside the file: "GGGGEEEE/item/" per enclosing SQ. */
static int bulk_path(const dcm_ds *ds, rs_buf *out)
{
    if (!ds->parent)
        return rs_buf_puts(out, "bulk/");
    int rc = bulk_path(ds->parent, out);
    for (uint32_t i = 0; rc == RS_OK && i < ds->parent->n; i++) {
        const dcm_elem *e = &ds->parent->e[i];
        if (e->vr != DCM_VR_SQ)
            continue;
        for (uint32_t k = 0; k < e->v.sq.n; k++)
            if (e->v.sq.items[k] == ds)
                return rs_buf_printf(out, "%08X/%u/", e->tag, k);
    }
    return rc;
}

/*
 * BulkDataURI of a big binary value: relative to the instance's WADO-RS URL, so the web layer
 * resolves it ("bulk/00420011", "bulk/30060039/0/30060050"). It names the attribute, not a byte
 * range, so it stays right whatever the transfer syntax (big endian, deflated) of the file.
 */
static int bulk_uri(void *ctx, const dcm_ds *ds, const dcm_elem *e, rs_buf *out)
{
    int rc = bulk_path(ds, out);
    return rc ? rc : rs_buf_printf(out, "%08X", e->tag);
}

static int make_json(store_record *r, dcm_file *f, const store_record_opts *o, rs_err *err)
{
    dcm_json_opts jo = {.inline_max = o->inline_max ? o->inline_max : DEFAULT_INLINE_MAX, .bulk = bulk_uri};
    int rc = dcm_json_write(f->ds, &jo, &r->json, err);
    if (rc == RS_OK && r->json.len > (o->json_max ? o->json_max : DEFAULT_JSON_MAX)) {
        rs_buf_free(&r->json);
        r->json_dropped = 1;
    }
    return rc;
}

/*
 * The reader keeps what precedes a cut, which is right for looking at a damaged file and wrong
 * for archiving one: a truncated header is refused. (Pixel data is not read at ingest, so a
 * cut there is for the transport to prevent: a C-STORE is complete or aborted.)
 */
static int check_complete(const dcm_file *f, rs_err *err)
{
    unsigned n = f->n_warnings < DCM_MAX_WARNINGS ? f->n_warnings : DCM_MAX_WARNINGS;
    for (unsigned i = 0; i < n; i++)
        if (strncmp(f->warnings[i].msg, "file is truncated", 17) == 0)
            return rs_err_at(err, RS_ETRUNC, f->warnings[i].offset, "%s", f->warnings[i].msg);
    return RS_OK;
}

static int build(store_record *r, dcm_file *f, const store_record_opts *o, rs_err *err)
{
    rs_buf tmp = RS_BUF_INIT;
    int rc = check_complete(f, err);
    for (size_t i = 0; i < store_n_attrs && rc == RS_OK; i++)
        rc = extract_one(r, f, &store_attrs[i], &tmp, err);
    if (rc == RS_OK)
        rc = check_uids(r, err);
    if (rc == RS_OK && make_patient_key(r, &tmp))
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
    if (rc == RS_OK)
        rc = make_json(r, f, o, err);
    if (rc == RS_OK)
        snprintf(r->ts_uid, sizeof r->ts_uid, "%.64s", f->ts_uid);
    rs_buf_free(&tmp);
    return rc;
}

int store_record_read(const char *path, const store_record_opts *o, store_record **out, rs_err *err)
{
    static const store_record_opts defaults;
    if (!o)
        o = &defaults;
    *out = NULL;
    dcm_read_opts ro = {.stop_tag = STOP_TAG, .bulk_min = BULK_MIN,
                        .max_memory = o->max_memory ? o->max_memory : DEFAULT_MAX_MEMORY};
    dcm_file *f = NULL;
    int rc = dcm_read_path(path, &ro, &f, err);
    if (rc)
        return rc;
    store_record *r = calloc(1, sizeof *r);
    if (!r) {
        dcm_file_free(f);
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    }
    rs_arena_init(&r->arena, 0);
    rc = build(r, f, o, err);
    dcm_file_free(f);
    if (rc) {
        store_record_free(r);
        return rc;
    }
    *out = r;
    return RS_OK;
}

void store_record_free(store_record *r)
{
    if (!r)
        return;
    rs_arena_free(&r->arena);
    rs_buf_free(&r->json);
    free(r);
}

const store_value *store_record_get(const store_record *r, uint32_t tag)
{
    const store_attr *a = store_attr_find(tag);
    return a ? &r->v[store_attr_index(a)] : NULL;
}

const char *store_record_str(const store_record *r, uint32_t tag)
{
    const store_value *v = store_record_get(r, tag);
    return v && v->s ? v->s : "";
}
