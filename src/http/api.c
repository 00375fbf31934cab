/*
 * api.c - staff REST API and /metrics (see api.h). Searches go through the same store_query
 * as C-FIND and QIDO-RS; answers are plain JSON objects with readable names, what a web page
 * wants, rather than DICOM JSON.
 */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dicom/tag.h"
#include "../store/record.h"

#define API_MAX_LIMIT 1000

typedef struct field {
    const char *name;
    uint32_t tag;
    int list;   /* multi-valued: a JSON array */
    int num;    /* a count: a JSON number */
} field;

static const field STUDY_FIELDS[] = {
    {"uid", DCM_TAG(0x0020, 0x000D), 0, 0},         {"date", DCM_TAG(0x0008, 0x0020), 0, 0},
    {"time", DCM_TAG(0x0008, 0x0030), 0, 0},        {"description", DCM_TAG(0x0008, 0x1030), 0, 0},
    {"accession", DCM_TAG(0x0008, 0x0050), 0, 0},   {"referring", DCM_TAG(0x0008, 0x0090), 0, 0},
    {"modalities", DCM_TAG(0x0008, 0x0061), 1, 0},  {"patient_name", DCM_TAG(0x0010, 0x0010), 0, 0},
    {"patient_id", DCM_TAG(0x0010, 0x0020), 0, 0},  {"birth_date", DCM_TAG(0x0010, 0x0030), 0, 0},
    {"sex", DCM_TAG(0x0010, 0x0040), 0, 0},         {"series", DCM_TAG(0x0020, 0x1206), 0, 1},
    {"instances", DCM_TAG(0x0020, 0x1208), 0, 1},   {NULL, 0, 0, 0}};
static const field SERIES_FIELDS[] = {
    {"uid", DCM_TAG(0x0020, 0x000E), 0, 0},         {"number", DCM_TAG(0x0020, 0x0011), 0, 1},
    {"modality", DCM_TAG(0x0008, 0x0060), 0, 0},    {"description", DCM_TAG(0x0008, 0x103E), 0, 0},
    {"body_part", DCM_TAG(0x0018, 0x0015), 0, 0},   {"instances", DCM_TAG(0x0020, 0x1209), 0, 1},
    {NULL, 0, 0, 0}};

typedef struct list_ctx {
    rs_buf out;
    const field *fields;
    unsigned long n;
    int newest_first; /* studies: newest first (the staff page pages through them in that order) */
    rs_err err;
} list_ctx;

/* One field of a match as JSON ("name": value). */
static int put_field(list_ctx *lc, const dcm_ds *ds, const field *f, rs_buf *text)
{
    dcm_elem *e = dcm_ds_find(ds, f->tag);
    rs_buf_reset(text);
    int rc = e ? store_elem_text(ds, e, text, &lc->err) : RS_OK;
    const char *v = text->p ? (const char *)text->p : "";
    rc = rc ? rc : rs_buf_printf(&lc->out, "%s\"%s\": ", f == lc->fields ? "" : ", ", f->name);
    if (rc)
        return rc;
    if (f->num)
        return rs_buf_printf(&lc->out, "%lld", atoll(v));
    if (!f->list)
        return http_json_str(&lc->out, v);
    rc = rs_buf_putc(&lc->out, '[');
    char *save = NULL, *copy = strdup(v);
    if (!copy)
        return RS_ENOMEM;
    int k = 0;
    for (char *t = strtok_r(copy, "\\", &save); t && rc == RS_OK; t = strtok_r(NULL, "\\", &save)) {
        rc = rs_buf_puts(&lc->out, k++ ? ", " : "");
        rc = rc ? rc : http_json_str(&lc->out, t);
    }
    free(copy);
    return rc ? rc : rs_buf_putc(&lc->out, ']');
}

static int on_row(void *ctx, const store_match *m)
{
    list_ctx *lc = ctx;
    rs_buf text = RS_BUF_INIT;
    int rc = rs_buf_puts(&lc->out, lc->n++ ? ",\n {" : "\n {");
    for (const field *f = lc->fields; f->name && rc == RS_OK; f++)
        rc = put_field(lc, m->ds, f, &text);
    rs_buf_free(&text);
    return rc ? rc : rs_buf_putc(&lc->out, '}');
}

/* Run a query whose keys are the fields' tags plus the given constraints; rows appended as a JSON array. */
static int run_list(store *st, store_level level, const field *fields, const store_key *extra, size_t n_extra,
                    uint64_t limit, uint64_t offset, int trashed, list_ctx *lc)
{
    store_keyset ks;
    store_keyset_init(&ks);
    int rc = RS_OK;
    for (size_t i = 0; i < n_extra && rc == RS_OK; i++)
        rc = store_keyset_add(&ks, extra[i].tag, 0, extra[i].value, &lc->err);
    for (const field *f = fields; f->name && rc == RS_OK; f++) {
        int given = 0;
        for (size_t i = 0; i < n_extra; i++)
            given |= extra[i].tag == f->tag;
        if (!given)
            rc = store_keyset_add(&ks, f->tag, 0, NULL, &lc->err);
    }
    lc->fields = fields;
    store_query q = {.level = level, .model = STORE_STUDY_ROOT, .keys = ks.key, .n_keys = ks.n, .limit = limit,
                     .offset = offset, .trashed = trashed, .newest_first = lc->newest_first};
    rc = rc ? rc : rs_buf_putc(&lc->out, '[');
    rc = rc ? rc : store_query_run(st, &q, on_row, lc, &lc->err);
    rc = rc ? rc : rs_buf_puts(&lc->out, "\n]");
    store_keyset_free(&ks);
    return rc;
}

static int reply_rc(http_req *rq, int rc, const rs_err *err)
{
    return http_reply_error(rq, http_status_for(rc), "%s", err->msg[0] ? err->msg : rs_strerror(rc));
}

static uint64_t num_param(http_req *rq, const char *name, uint64_t dflt, uint64_t max, int *bad)
{
    const char *v = http_req_query(rq, name);
    if (!v)
        return dflt;
    if (!*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 18) {
        *bad = 1;
        return 0;
    }
    uint64_t n = strtoull(v, NULL, 10);
    return n > max ? max : n;
}

static int studies_search(api_ctx *a, http_req *rq)
{
    static const struct {
        const char *param;
        uint32_t tag;
    } map[] = {{"name", DCM_TAG(0x0010, 0x0010)},     {"patient_id", DCM_TAG(0x0010, 0x0020)},
               {"modality", DCM_TAG(0x0008, 0x0061)}, {"accession", DCM_TAG(0x0008, 0x0050)},
               {"uid", DCM_TAG(0x0020, 0x000D)}};
    store_key keys[8];
    size_t n = 0;
    char name[300], range[64];
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *v = http_req_query(rq, map[i].param);
        if (!v || !*v)
            continue;
        if (strlen(v) > 256)
            return http_reply_error(rq, 400, "%s too long", map[i].param);
        if (map[i].tag == DCM_TAG(0x0010, 0x0010) && !strpbrk(v, "*?")) {
            snprintf(name, sizeof name, "*%s*", v); /* a name search is a substring search */
            v = name;
        }
        keys[n++] = (store_key){map[i].tag, 0, v};
    }
    const char *from = http_req_query(rq, "from"), *to = http_req_query(rq, "to");
    if ((from && *from) || (to && *to)) {
        if ((from && strlen(from) > 8) || (to && strlen(to) > 8))
            return http_reply_error(rq, 400, "from/to are dates YYYYMMDD");
        snprintf(range, sizeof range, "%s-%s", from ? from : "", to ? to : "");
        keys[n++] = (store_key){DCM_TAG(0x0008, 0x0020), 0, range};
    }
    int bad = 0;
    uint64_t limit = num_param(rq, "limit", 100, API_MAX_LIMIT, &bad), offset = num_param(rq, "offset", 0, UINT32_MAX, &bad);
    const char *tr = http_req_query(rq, "trashed");
    if (bad)
        return http_reply_error(rq, 400, "limit and offset are non-negative integers");
    list_ctx lc = {.out = RS_BUF_INIT, .newest_first = 1};
    rs_err_clear(&lc.err);
    int rc = run_list(a->st, STORE_LEVEL_STUDY, STUDY_FIELDS, keys, n, limit ? limit : API_MAX_LIMIT, offset,
                      tr && !strcmp(tr, "1"), &lc);
    rc = rc ? reply_rc(rq, rc, &lc.err) : http_reply_json(rq, 200, &lc.out);
    rs_buf_free(&lc.out);
    return rc;
}

static int study_details(api_ctx *a, http_req *rq, const char *uid)
{
    int trashed = 0;
    rs_err err;
    rs_err_clear(&err);
    int rc = store_is_trashed(a->st, uid, &trashed, &err);
    if (rc)
        return reply_rc(rq, rc, &err);
    store_key k = {DCM_TAG_STUDY_UID, 0, uid};
    list_ctx st = {.out = RS_BUF_INIT}, se = {.out = RS_BUF_INIT};
    rs_err_clear(&st.err);
    rs_err_clear(&se.err);
    rc = run_list(a->st, STORE_LEVEL_STUDY, STUDY_FIELDS, &k, 1, 1, 0, 2, &st);
    if (rc == RS_OK && st.n == 0)
        rc = rs_err_set(&st.err, RS_ENOTFOUND, "no study %s", uid);
    rc = rc ? rc : run_list(a->st, STORE_LEVEL_SERIES, SERIES_FIELDS, &k, 1, 0, 0, 2, &se);
    if (rc) {
        rc = reply_rc(rq, rc, st.err.msg[0] ? &st.err : &se.err);
    } else {
        /* "[\n {...}\n]" -> the object, plus "trashed" and "series_list" */
        rs_buf b = RS_BUF_INIT;
        size_t start = 4, end = st.out.len - 3; /* between "[\n {" and "}\n]" */
        rc = rs_buf_putc(&b, '{');
        rc = rc ? rc : rs_buf_append(&b, st.out.p + start, end - start);
        rc = rc ? rc : rs_buf_printf(&b, ", \"trashed\": %s, \"series_list\": ", trashed ? "true" : "false");
        rc = rc ? rc : rs_buf_append(&b, se.out.p, se.out.len);
        rc = rc ? rc : rs_buf_puts(&b, "}\n");
        rc = rc ? http_reply_error(rq, 503, "out of memory") : http_reply_json(rq, 200, &b);
        rs_buf_free(&b);
    }
    rs_buf_free(&st.out);
    rs_buf_free(&se.out);
    return rc;
}

/* Does the study exist (trashed or not, per `trashed`)? */
static int study_exists(api_ctx *a, const char *uid, int trashed, int *yes, rs_err *err)
{
    store_key k = {DCM_TAG_STUDY_UID, 0, uid};
    list_ctx lc = {.out = RS_BUF_INIT};
    int rc = run_list(a->st, STORE_LEVEL_STUDY, STUDY_FIELDS, &k, 1, 1, 0, trashed, &lc);
    *yes = lc.n > 0;
    if (rc && err)
        *err = lc.err;
    rs_buf_free(&lc.out);
    return rc;
}

static int study_trash(api_ctx *a, http_req *rq, const char *uid, int to_trash)
{
    rs_err err;
    rs_err_clear(&err);
    int yes = 0, rc = study_exists(a, uid, to_trash ? 0 : 1, &yes, &err);
    if (rc)
        return reply_rc(rq, rc, &err);
    if (!yes)
        return http_reply_error(rq, 404, to_trash ? "no study %s (or it is in the trash already)" : "study %s is not in the trash", uid);
    rc = store_trash_study(a->st, uid, to_trash, &err);
    if (rc)
        return reply_rc(rq, rc, &err);
    rs_log(RS_LOG_INFO, "api: study %s %s by %s", uid, to_trash ? "moved to the trash" : "restored", http_req_peer(rq));
    rs_buf b = RS_BUF_INIT;
    rc = rs_buf_printf(&b, "{\"uid\": \"%s\", \"trashed\": %s}\n", uid, to_trash ? "true" : "false");
    rc = rc ? http_reply_error(rq, 503, "out of memory") : http_reply_json(rq, 200, &b);
    rs_buf_free(&b);
    return rc;
}

static int valid_uid(const char *s)
{
    size_t n = strlen(s);
    return n && n <= 64 && strspn(s, "0123456789.") == n;
}

/* /api/studies[/{uid}[/restore]] for every method. */
static int api_studies(http_req *rq, void *ctx)
{
    api_ctx *a = ctx;
    char path[256], *seg[4];
    if (snprintf(path, sizeof path, "%s", http_req_subpath(rq)) >= (int)sizeof path)
        return http_reply_error(rq, 404, "no such resource");
    int n = http_split_path(path, seg, 4);
    const char *m = http_req_method(rq);
    int get = !strcmp(m, "GET") || !strcmp(m, "HEAD");
    if (n == 0 && get)
        return studies_search(a, rq);
    if (n == 2 && strcmp(seg[1], "restore") && a->study_sub && valid_uid(seg[0]))
        return a->study_sub(rq, a->study_sub_ctx, seg[0], seg[1]);
    if (n < 1 || n > 2 || (n == 2 && strcmp(seg[1], "restore")))
        return http_reply_error(rq, 404, "no such resource: %s", http_req_path(rq));
    if (!valid_uid(seg[0]))
        return http_reply_error(rq, 400, "invalid study UID \"%.80s\"", seg[0]);
    if (n == 1 && get)
        return study_details(a, rq, seg[0]);
    if (n == 1 && !strcmp(m, "DELETE"))
        return study_trash(a, rq, seg[0], 1);
    if (n == 2 && !strcmp(m, "POST"))
        return study_trash(a, rq, seg[0], 0);
    return http_reply_error(rq, 405, "method %s not allowed here", m);
}

static int api_status(http_req *rq, void *ctx)
{
    api_ctx *a = ctx;
    store_stats s;
    rs_err err;
    rs_err_clear(&err);
    int rc = store_get_stats(a->st, &s, &err);
    if (rc)
        return reply_rc(rq, rc, &err);
    rs_buf b = RS_BUF_INIT;
    rc = rs_buf_printf(&b,
                       "{\"version\": \"%s\", \"uptime_s\": %.1f, \"patients\": %llu, \"studies\": %llu, "
                       "\"series\": %llu, \"instances\": %llu, \"versions\": %llu, \"bytes\": %llu, "
                       "\"object_bytes\": %llu, \"commit\": {\"batches\": %llu, \"submitted\": %llu, "
                       "\"max_batch\": %llu}}\n",
                       a->version, http_server_uptime(a->srv), (unsigned long long)s.index.patients,
                       (unsigned long long)s.index.studies, (unsigned long long)s.index.series,
                       (unsigned long long)s.index.instances, (unsigned long long)s.index.versions,
                       (unsigned long long)s.index.bytes, (unsigned long long)s.index.object_bytes,
                       (unsigned long long)s.commit.batches, (unsigned long long)s.commit.submitted,
                       (unsigned long long)s.commit.max_batch);
    http_set_header(rq, "Cache-Control", "no-store");
    rc = rc ? http_reply_error(rq, 503, "out of memory") : http_reply_json(rq, 200, &b);
    rs_buf_free(&b);
    return rc;
}

static int metrics(http_req *rq, void *ctx)
{
    api_ctx *a = ctx;
    store_stats s;
    rs_err err;
    rs_err_clear(&err);
    int rc = store_get_stats(a->st, &s, &err);
    if (rc)
        return reply_rc(rq, rc, &err);
    rs_buf b = RS_BUF_INIT;
    rc = http_server_metrics(a->srv, &b);
    if (rc == RS_OK && a->dw)
        rc = dicomweb_metrics(a->dw, &b);
    const struct {
        const char *name, *type;
        uint64_t v;
    } g[] = {{"radshare_store_patients", "gauge", s.index.patients},
             {"radshare_store_studies", "gauge", s.index.studies},
             {"radshare_store_series", "gauge", s.index.series},
             {"radshare_store_instances", "gauge", s.index.instances},
             {"radshare_store_bytes", "gauge", s.index.bytes},
             {"radshare_store_object_bytes", "gauge", s.index.object_bytes},
             {"radshare_commit_batches_total", "counter", s.commit.batches},
             {"radshare_commit_submitted_total", "counter", s.commit.submitted}};
    for (size_t i = 0; i < sizeof g / sizeof g[0] && rc == RS_OK; i++)
        rc = rs_buf_printf(&b, "# TYPE %s %s\n%s %llu\n", g[i].name, g[i].type, g[i].name, (unsigned long long)g[i].v);
    rc = rc ? rc : rs_buf_printf(&b, "# TYPE radshare_uptime_seconds gauge\nradshare_uptime_seconds %.1f\n",
                                 http_server_uptime(a->srv));
    http_set_header(rq, "Cache-Control", "no-store");
    rc = rc ? http_reply_error(rq, 503, "out of memory")
            : http_reply_buf(rq, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    rs_buf_free(&b);
    return rc;
}

int api_register(http_server *srv, api_ctx *a, rs_err *err)
{
    http_route_opts staff = {.flags = HTTP_ROUTE_STAFF};
    static const char *const methods[] = {"GET", "DELETE", "POST"};
    int rc = RS_OK;
    for (size_t i = 0; i < 3 && rc == RS_OK; i++)
        rc = http_server_route_opts(srv, methods[i], "/api/studies", api_studies, a, &staff);
    rc = rc ? rc : http_server_route_opts(srv, "GET", "/api/status", api_status, a, &staff);
    rc = rc ? rc : http_server_route_opts(srv, "GET", "/metrics", metrics, a, &staff);
    return rc ? rs_err_set(err, rc, "cannot register the API routes") : RS_OK;
}
