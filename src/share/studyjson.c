/* studyjson.c - see studyjson.h. Three index queries (study, series, instances), no file read:
 * slice location and window come from the header JSON the index keeps per instance. */
#include "studyjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../http/http.h"
#include "../dicom/tag.h"
#include "../store/query.h"
#include "../store/record.h"

#define MAX_COLS 12

typedef struct row {
    char *v[MAX_COLS];
    double num[2]; /* sort keys */
} row;

typedef struct rows {
    row *r;
    size_t n;
    const uint32_t *tags;
    size_t nt;
    const char *const *meta_tags; /* extracted from the header JSON into v[nt...] */
    size_t nm;
    const share *sh;              /* series scope (SERIES and IMAGE levels) */
    rs_err *err;
} rows;

/* The first number of "TAG":{"vr":..,"Value":[N...]} in DICOM JSON, as text. The search starts
 * at *from (then from the start): the header JSON is in tag order and the tags are asked in
 * ascending order, so the 7 KB of an MR header are scanned about once, not once per tag (this
 * was a tenth of study.json's time for a 300-image series). */
static char *meta_number(const char *js, size_t n, const char *tag, size_t *from)
{
    char key[16];
    snprintf(key, sizeof key, "\"%s\"", tag);
    const char *p = js && *from < n ? memmem(js + *from, n - *from, key, strlen(key)) : NULL;
    if (!p && js)
        p = memmem(js, n, key, strlen(key));
    if (!p)
        return NULL;
    *from = (size_t)(p - js);
    size_t left = n - (size_t)(p - js);
    const char *v = memmem(p, left < 160 ? left : 160, "\"Value\":", 8);
    if (!v)
        return NULL;
    v += 8;
    while (*v == ' ' || *v == '[' || *v == '"')
        v++;
    char *end;
    double d = strtod(v, &end);
    if (end == v)
        return NULL;
    char out[40];
    snprintf(out, sizeof out, "%.10g", d);
    return strdup(out);
}

static int on_match(void *ctx, const store_match *m)
{
    rows *rs = ctx;
    if (m->series_uid && rs->sh->series && !share_check_scope(rs->sh, rs->sh->study_uid, m->series_uid))
        return 0;
    if (rs->n == STUDYJSON_MAX_INSTANCES)
        return rs_err_set(rs->err, RS_ELIMIT, "more than %d instances", STUDYJSON_MAX_INSTANCES);
    row *g = realloc(rs->r, (rs->n + 1) * sizeof *g);
    if (!g)
        return rs_err_set(rs->err, RS_ENOMEM, "out of memory");
    rs->r = g;
    row *r = &g[rs->n++];
    memset(r, 0, sizeof *r);
    rs_buf t = RS_BUF_INIT;
    int rc = RS_OK;
    for (size_t i = 0; i < rs->nt && rc == RS_OK; i++) {
        dcm_elem *e = dcm_ds_find(m->ds, rs->tags[i]);
        rs_buf_reset(&t);
        rc = e ? store_elem_text(m->ds, e, &t, rs->err) : RS_OK;
        r->v[i] = strdup(t.p ? (const char *)t.p : "");
        if (!r->v[i])
            rc = RS_ENOMEM;
    }
    size_t from = 0;
    for (size_t i = 0; i < rs->nm && rc == RS_OK; i++)
        r->v[rs->nt + i] = meta_number(m->metadata, m->metadata_len, rs->meta_tags[i], &from);
    rs_buf_free(&t);
    return rc;
}

static void rows_free(rows *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        for (size_t k = 0; k < MAX_COLS; k++)
            free(rs->r[i].v[k]);
    free(rs->r);
    rs->r = NULL;
    rs->n = 0;
}

static int run(store *st, store_level level, rows *rs, int meta)
{
    store_keyset ks;
    store_keyset_init(&ks);
    int rc = store_keyset_add(&ks, DCM_TAG_STUDY_UID, 0, rs->sh->study_uid, rs->err);
    for (size_t i = 0; i < rs->nt && rc == RS_OK; i++)
        if (rs->tags[i] != DCM_TAG_STUDY_UID)
            rc = store_keyset_add(&ks, rs->tags[i], 0, NULL, rs->err);
    store_query q = {.level = level, .model = STORE_STUDY_ROOT, .keys = ks.key, .n_keys = ks.n,
                     .with_metadata = meta};
    rc = rc ? rc : store_query_run(st, &q, on_match, rs, rs->err);
    store_keyset_free(&ks);
    return rc;
}

static int put_str(rs_buf *b, const char *key, const char *v, int first)
{
    int rc = rs_buf_printf(b, "%s\"%s\":", first ? "" : ",", key);
    /* http_json_str, not audit_json_string: the index's values are UTF-8 (the audit's escaper
       reads bytes >= 0x80 as Latin-1, which turned "Hélène" into "HÃ©lÃ¨ne") */
    return rc ? rc : v && v[0] ? http_json_str(b, v) : rs_buf_puts(b, "null");
}

static int put_num(rs_buf *b, const char *key, const char *v)
{
    char *end = NULL;
    double d = v && v[0] ? strtod(v, &end) : 0;
    if (!v || !v[0] || *end)
        return rs_buf_printf(b, ",\"%s\":null", key);
    return rs_buf_printf(b, ",\"%s\":%.10g", key, d);
}

static int put_list(rs_buf *b, const char *key, const char *v)
{
    int rc = rs_buf_printf(b, ",\"%s\":[", key);
    int k = 0;
    for (const char *p = v; rc == RS_OK && p && *p;) {
        const char *e = strchr(p, '\\');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        char one[80];
        snprintf(one, sizeof one, "%.*s", (int)(l < 79 ? l : 79), p);
        rc = rs_buf_puts(b, k++ ? "," : "");
        rc = rc ? rc : http_json_str(b, one);
        p = e ? e + 1 : NULL;
    }
    return rc ? rc : rs_buf_putc(b, ']');
}

static double key_num(const char *v, double missing)
{
    char *end;
    double d = v && v[0] ? strtod(v, &end) : missing;
    return v && v[0] && !*end ? d : missing;
}

static int cmp_rows(const void *a, const void *b)
{
    const row *x = a, *y = b;
    for (int k = 0; k < 2; k++)
        if (x->num[k] != y->num[k])
            return x->num[k] < y->num[k] ? -1 : 1;
    return 0;
}

enum { SE_UID, SE_NUM, SE_MOD, SE_DESC, SE_BODY };
static const uint32_t series_tags[] = {DCM_TAG_SERIES_UID, DCM_TAG(0x0020, 0x0011), DCM_TAG(0x0008, 0x0060),
                                       DCM_TAG(0x0008, 0x103E), DCM_TAG(0x0018, 0x0015)};
enum { IM_UID, IM_SERIES, IM_NUM, IM_ROWS, IM_COLS, IM_FRAMES, IM_SLICE, IM_WC, IM_WW };
static const uint32_t image_tags[] = {DCM_TAG_SOP_INSTANCE_UID, DCM_TAG_SERIES_UID, DCM_TAG(0x0020, 0x0013),
                                      DCM_TAG(0x0028, 0x0010),  DCM_TAG(0x0028, 0x0011), DCM_TAG(0x0028, 0x0008)};
static const char *const image_meta[] = {"00201041", "00281050", "00281051"};
enum { ST_PN, ST_PID, ST_BD, ST_SEX, ST_UID, ST_DATE, ST_TIME, ST_DESC, ST_ACC, ST_REF, ST_MODS };
static const uint32_t study_tags[] = {DCM_TAG(0x0010, 0x0010), DCM_TAG(0x0010, 0x0020), DCM_TAG(0x0010, 0x0030),
                                      DCM_TAG(0x0010, 0x0040), DCM_TAG_STUDY_UID,       DCM_TAG(0x0008, 0x0020),
                                      DCM_TAG(0x0008, 0x0030), DCM_TAG(0x0008, 0x1030), DCM_TAG(0x0008, 0x0050),
                                      DCM_TAG(0x0008, 0x0090), DCM_TAG(0x0008, 0x0061)};

static int put_header(rs_buf *b, const share *sh, const row *s, const char *report_json)
{
    char exp[32];
    share_iso_time(sh->expires, exp);
    int rc = rs_buf_puts(b, "{\"patient\":{");
    rc = rc ? rc : put_str(b, "name", s->v[ST_PN], 1);
    rc = rc ? rc : put_str(b, "id", s->v[ST_PID], 0);
    rc = rc ? rc : put_str(b, "birth_date", s->v[ST_BD], 0);
    rc = rc ? rc : put_str(b, "sex", s->v[ST_SEX], 0);
    rc = rc ? rc : rs_buf_puts(b, "},\"study\":{");
    rc = rc ? rc : put_str(b, "uid", s->v[ST_UID], 1);
    rc = rc ? rc : put_str(b, "date", s->v[ST_DATE], 0);
    rc = rc ? rc : put_str(b, "time", s->v[ST_TIME], 0);
    rc = rc ? rc : put_str(b, "description", s->v[ST_DESC], 0);
    rc = rc ? rc : put_str(b, "accession", s->v[ST_ACC], 0);
    rc = rc ? rc : put_str(b, "referring", s->v[ST_REF], 0);
    rc = rc ? rc : put_list(b, "modalities", s->v[ST_MODS]);
    return rc ? rc : rs_buf_printf(b, "},\"report\":%s,\"download\":%s,\"expires\":\"%s\",\"series\":[",
                                   report_json ? report_json : "null", sh->download ? "true" : "false", exp);
}

static int put_instances(rs_buf *b, const rows *im, const char *series_uid)
{
    int rc = rs_buf_puts(b, ",\"instances\":[");
    int k = 0;
    for (size_t i = 0; i < im->n && rc == RS_OK; i++) {
        const row *r = &im->r[i];
        if (strcmp(r->v[IM_SERIES], series_uid))
            continue;
        rc = rs_buf_puts(b, k++ ? ",{" : "{");
        rc = rc ? rc : put_str(b, "uid", r->v[IM_UID], 1);
        rc = rc ? rc : put_num(b, "number", r->v[IM_NUM]);
        rc = rc ? rc : put_num(b, "rows", r->v[IM_ROWS]);
        rc = rc ? rc : put_num(b, "cols", r->v[IM_COLS]);
        rc = rc ? rc : put_num(b, "frames", r->v[IM_FRAMES] && r->v[IM_FRAMES][0] ? r->v[IM_FRAMES] : "1");
        rc = rc ? rc : put_num(b, "slice_location", r->v[IM_SLICE]);
        rc = rc ? rc : put_num(b, "window_center", r->v[IM_WC]);
        rc = rc ? rc : put_num(b, "window_width", r->v[IM_WW]);
        rc = rc ? rc : rs_buf_putc(b, '}');
    }
    return rc ? rc : rs_buf_putc(b, ']');
}

/* Series by number, instances by InstanceNumber then slice location (when it was read). */
static void sort_rows(rows *se, rows *im)
{
    for (size_t i = 0; i < se->n; i++)
        se->r[i].num[0] = key_num(se->r[i].v[SE_NUM], 1e18);
    for (size_t i = 0; i < im->n; i++) {
        im->r[i].num[0] = key_num(im->r[i].v[IM_NUM], 1e18);
        im->r[i].num[1] = key_num(im->r[i].v[IM_SLICE], 1e18);
    }
    qsort(se->r, se->n, sizeof *se->r, cmp_rows);
    qsort(im->r, im->n, sizeof *im->r, cmp_rows);
}

static uint32_t frames_of(const row *r)
{
    double f = key_num(r->v[IM_FRAMES], 1);
    return f >= 1 && f < 1e9 ? (uint32_t)f : 1;
}

int share_first_image(store *st, const share *sh, share_image *out, rs_err *err)
{
    rows se = {.tags = series_tags, .nt = 5, .sh = sh, .err = err};
    rows im = {.tags = image_tags, .nt = 6, .sh = sh, .err = err};
    memset(out, 0, sizeof *out);
    int rc = run(st, STORE_LEVEL_SERIES, &se, 0);
    rc = rc ? rc : run(st, STORE_LEVEL_IMAGE, &im, 0);
    if (rc == RS_OK) {
        sort_rows(&se, &im);
        rc = RS_ENOTFOUND;
    }
    /* the viewer's first series is the first with an image; its stack is every frame of every
       instance in order, opened at item (count - 1) / 2 */
    for (size_t i = 0; i < se.n && rc == RS_ENOTFOUND; i++) {
        uint64_t total = 0, want;
        for (size_t k = 0; k < im.n; k++)
            if (!strcmp(im.r[k].v[IM_SERIES], se.r[i].v[SE_UID]))
                total += frames_of(&im.r[k]);
        want = total ? (total - 1) / 2 : 0;
        for (size_t k = 0; k < im.n && total && rc == RS_ENOTFOUND; k++) {
            const row *r = &im.r[k];
            if (strcmp(r->v[IM_SERIES], se.r[i].v[SE_UID]))
                continue;
            if (want >= frames_of(r)) {
                want -= frames_of(r);
                continue;
            }
            snprintf(out->series, sizeof out->series, "%s", se.r[i].v[SE_UID]);
            snprintf(out->sop, sizeof out->sop, "%s", r->v[IM_UID]);
            out->frame = (uint32_t)want + 1;
            out->rows = (uint32_t)key_num(r->v[IM_ROWS], 0);
            out->cols = (uint32_t)key_num(r->v[IM_COLS], 0);
            rc = RS_OK;
        }
    }
    rows_free(&se);
    rows_free(&im);
    return rc;
}

int share_study_json(store *st, const share *sh, const char *report_json, rs_buf *out, rs_err *err)
{
    rows sr = {.tags = study_tags, .nt = 11, .sh = sh, .err = err};
    rows se = {.tags = series_tags, .nt = 5, .sh = sh, .err = err};
    rows im = {.tags = image_tags, .nt = 6, .meta_tags = image_meta, .nm = 3, .sh = sh, .err = err};
    int rc = run(st, STORE_LEVEL_STUDY, &sr, 0);
    if (rc == RS_OK && sr.n == 0)
        rc = rs_err_set(err, RS_ENOTFOUND, "the study is no longer in the archive");
    rc = rc ? rc : run(st, STORE_LEVEL_SERIES, &se, 0);
    rc = rc ? rc : run(st, STORE_LEVEL_IMAGE, &im, 1);
    if (rc == RS_OK) {
        sort_rows(&se, &im);
        rc = put_header(out, sh, &sr.r[0], report_json);
        for (size_t i = 0; i < se.n && rc == RS_OK; i++) {
            const row *r = &se.r[i];
            rc = rs_buf_puts(out, i ? ",{" : "{");
            rc = rc ? rc : put_str(out, "uid", r->v[SE_UID], 1);
            rc = rc ? rc : put_num(out, "number", r->v[SE_NUM]);
            rc = rc ? rc : put_str(out, "modality", r->v[SE_MOD], 0);
            rc = rc ? rc : put_str(out, "description", r->v[SE_DESC], 0);
            rc = rc ? rc : put_str(out, "body_part", r->v[SE_BODY], 0);
            rc = rc ? rc : put_instances(out, &im, r->v[SE_UID]);
            rc = rc ? rc : rs_buf_putc(out, '}');
        }
        rc = rc ? rc : rs_buf_puts(out, "]}");
        if (rc && !err->msg[0])
            rs_err_set(err, rc, "out of memory");
    }
    rows_free(&sr);
    rows_free(&se);
    rows_free(&im);
    return rc;
}

static int count_match(void *ctx, const store_match *m)
{
    ++*(int *)ctx;
    return 1;
}

int share_instance_in(store *st, const char *study, const char *series, const char *sop_uid)
{
    store_key k[3] = {{DCM_TAG_STUDY_UID, 0, study}, {DCM_TAG_SERIES_UID, 0, series},
                      {DCM_TAG_SOP_INSTANCE_UID, 0, sop_uid}};
    store_query q = {.level = STORE_LEVEL_IMAGE, .model = STORE_STUDY_ROOT, .keys = k, .n_keys = 3, .limit = 1};
    int n = 0;
    rs_err err;
    rs_err_clear(&err);
    return store_query_run(st, &q, count_match, &n, &err) == RS_OK && n > 0;
}

int share_study_exists(store *st, const char *study)
{
    store_key k = {DCM_TAG_STUDY_UID, 0, study};
    store_query q = {.level = STORE_LEVEL_STUDY, .model = STORE_STUDY_ROOT, .keys = &k, .n_keys = 1, .limit = 1};
    int n = 0;
    rs_err err;
    rs_err_clear(&err);
    return store_query_run(st, &q, count_match, &n, &err) == RS_OK && n > 0;
}
