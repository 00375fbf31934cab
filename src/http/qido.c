/*
 * qido.c - QIDO-RS (PS3.18 10.6): query parameters become the same store_query a C-FIND
 * identifier becomes (src/net/scp.c), so both answer alike; the matches are written as DICOM
 * JSON, each with its RetrieveURL.
 *
 * Parameters: attribute keys by keyword or tag ("PatientName=DOE*", "00100020=123"; a comma
 * list is a list of alternatives), includefield (keywords, tags or "all"), limit (at most
 * DICOMWEB_MAX_LIMIT: larger is clamped with a Warning), offset, fuzzymatching. Anything else
 * is a 400.
 *
 * fuzzymatching=true: person name keys are taken out of the store query (they become return
 * keys) and matched here with dw_fuzzy_match on each candidate, so offset and limit are
 * applied here too, after the filter; at most FUZZY_MAX_SCAN candidates are looked at (a
 * Warning says when that cut the answer short).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dicom/dict.h"
#include "../dicom/json.h"
#include "../dicom/tag.h"
#include "dicomweb.h"
#include "fuzzy.h"

#define FUZZY_MAX_SCAN 200000
#define MAX_FUZZY_KEYS 8

/* PS3.18 Table 10.6.3-3/4/5: what every answer carries, when the index keeps it. */
static const uint32_t DEFAULT_STUDY[] = {
    DCM_TAG(0x0008, 0x0020), DCM_TAG(0x0008, 0x0030), DCM_TAG(0x0008, 0x0050), DCM_TAG(0x0008, 0x0056),
    DCM_TAG(0x0008, 0x0061), DCM_TAG(0x0008, 0x0090), DCM_TAG(0x0008, 0x0201), DCM_TAG(0x0008, 0x1030),
    DCM_TAG(0x0010, 0x0010), DCM_TAG(0x0010, 0x0020), DCM_TAG(0x0010, 0x0030), DCM_TAG(0x0010, 0x0040),
    DCM_TAG(0x0020, 0x000D), DCM_TAG(0x0020, 0x0010), DCM_TAG(0x0020, 0x1206), DCM_TAG(0x0020, 0x1208), 0};
static const uint32_t DEFAULT_SERIES[] = {
    DCM_TAG(0x0008, 0x0060), DCM_TAG(0x0008, 0x0201), DCM_TAG(0x0008, 0x103E), DCM_TAG(0x0020, 0x000E),
    DCM_TAG(0x0020, 0x0011), DCM_TAG(0x0020, 0x1209), DCM_TAG(0x0040, 0x0244), DCM_TAG(0x0040, 0x0245), 0};
static const uint32_t DEFAULT_IMAGE[] = {
    DCM_TAG(0x0008, 0x0016), DCM_TAG(0x0008, 0x0018), DCM_TAG(0x0008, 0x0056), DCM_TAG(0x0008, 0x0201),
    DCM_TAG(0x0020, 0x0013), DCM_TAG(0x0028, 0x0010), DCM_TAG(0x0028, 0x0011), DCM_TAG(0x0028, 0x0100),
    DCM_TAG(0x0028, 0x0008), 0};

typedef struct qido_ctx {
    dicomweb *dw;
    http_req *rq;
    store_level level;
    store_keyset ks;
    uint64_t limit, offset;
    int limit_clamped, fuzzy;
    struct {
        uint32_t tag;
        char *value;    /* backslash-separated alternatives */
    } fz[MAX_FUZZY_KEYS];
    size_t n_fz;
    uint64_t scanned, skipped;
    int scan_cut;
    char bad[200];
    rs_buf out;
    unsigned long n;
    rs_err err;
} qido_ctx;

/* A keyword or GGGGEEEE to a tag; 0 when neither. */
static uint32_t parse_tag(const char *s)
{
    size_t n = strlen(s);
    if (n == 8 && strspn(s, "0123456789abcdefABCDEF") == 8)
        return (uint32_t)strtoul(s, NULL, 16);
    const dcm_dict_entry *e = dcm_dict_by_keyword(s);
    return e ? e->tag : 0;
}

static int has_key(const qido_ctx *q, uint32_t tag)
{
    for (size_t i = 0; i < q->ks.n; i++)
        if (q->ks.key[i].tag == tag)
            return 1;
    return 0;
}

/* A return key (no value) unless the tag is there already. */
static int add_return(qido_ctx *q, uint32_t tag)
{
    if (has_key(q, tag) || !store_attr_find(tag))
        return RS_OK; /* not kept by the index: nothing to answer with */
    return store_keyset_add(&q->ks, tag, 0, NULL, &q->err);
}

static int add_defaults(qido_ctx *q, const uint32_t *tags)
{
    int rc = RS_OK;
    for (; *tags && rc == RS_OK; tags++)
        rc = add_return(q, *tags);
    return rc;
}

static int add_includefield(qido_ctx *q, const char *v)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", v);
    int rc = RS_OK;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t && rc == RS_OK; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "all")) {
            for (size_t i = 0; i < store_n_attrs && rc == RS_OK; i++) {
                const store_attr *a = &store_attrs[i];
                int up = q->level == STORE_LEVEL_STUDY ? a->level <= STORE_LEVEL_STUDY : a->level == q->level;
                if (up)
                    rc = add_return(q, a->tag);
            }
            continue;
        }
        uint32_t tag = parse_tag(t);
        if (!tag) {
            snprintf(q->bad, sizeof q->bad, "includefield: unknown attribute \"%.64s\"", t);
            return RS_EINVAL;
        }
        rc = add_return(q, tag);
    }
    return rc;
}

static int parse_u64(const char *v, uint64_t *out)
{
    char *end;
    if (!*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 18)
        return RS_EINVAL;
    *out = strtoull(v, &end, 10);
    return RS_OK;
}

static int on_param(void *ctx, const char *name, const char *value)
{
    qido_ctx *q = ctx;
    if (!strcmp(name, "limit") || !strcmp(name, "offset")) {
        uint64_t v;
        if (parse_u64(value, &v)) {
            snprintf(q->bad, sizeof q->bad, "%s must be a non-negative integer, not \"%.32s\"", name, value);
            return 1;
        }
        if (!strcmp(name, "offset"))
            q->offset = v;
        else if (v > DICOMWEB_MAX_LIMIT) {
            q->limit = DICOMWEB_MAX_LIMIT;
            q->limit_clamped = 1;
        } else {
            q->limit = v;
        }
        return 0;
    }
    if (!strcmp(name, "fuzzymatching")) {
        if (strcmp(value, "true") && strcmp(value, "false")) {
            snprintf(q->bad, sizeof q->bad, "fuzzymatching must be true or false");
            return 1;
        }
        q->fuzzy = !strcmp(value, "true");
        return 0;
    }
    if (!strcmp(name, "includefield"))
        return add_includefield(q, value) != RS_OK;
    uint32_t tag = parse_tag(name);
    if (!tag) {
        snprintf(q->bad, sizeof q->bad, "unknown query parameter \"%.64s\"", name);
        return 1;
    }
    if (strlen(value) > 1024) {
        snprintf(q->bad, sizeof q->bad, "value of %.64s too long", name);
        return 1;
    }
    char v[1025];
    snprintf(v, sizeof v, "%s", value);
    for (char *c = v; *c; c++)
        if (*c == ',')
            *c = '\\';
    for (size_t i = 0; i < q->ks.n; i++) {
        store_key *k = &q->ks.key[i];
        if (k->tag != tag)
            continue;
        if (k->value) {
            snprintf(q->bad, sizeof q->bad, "attribute %.64s given twice (or against the path)", name);
            return 1;
        }
        k->value = rs_arena_strndup(&q->ks.arena, v, strlen(v)); /* was a return key (includefield) */
        return k->value == NULL;
    }
    return store_keyset_add(&q->ks, tag, 0, v, &q->err) != RS_OK;
}

/* The RetrieveURL (0008,1190) of a match, spliced into its JSON object before the closing brace. */
static int add_retrieve_url(qido_ctx *q, const store_match *m)
{
    const char *base = http_req_base_url(q->rq);
    if (q->out.len && q->out.p[q->out.len - 1] == '}')
        q->out.len--;
    int rc = rs_buf_printf(&q->out, "%s\"00081190\":{\"vr\":\"UR\",\"Value\":[\"%s" DICOMWEB_PREFIX "/studies/%s",
                           q->out.p[q->out.len - 1] == '{' ? "" : ",", base, m->study_uid ? m->study_uid : "");
    if (rc == RS_OK && m->series_uid)
        rc = rs_buf_printf(&q->out, "/series/%s", m->series_uid);
    if (rc == RS_OK && m->sop_uid)
        rc = rs_buf_printf(&q->out, "/instances/%s", m->sop_uid);
    return rc ? rc : rs_buf_puts(&q->out, "\"]}}");
}

/* Fuzzy keys -> return keys matched here (only those the index keeps; others match universally). */
static int take_fuzzy_keys(qido_ctx *q)
{
    for (size_t i = 0; i < q->ks.n; i++) {
        store_key *k = &q->ks.key[i];
        const dcm_dict_entry *e = dcm_dict_lookup(k->tag);
        if (!k->value || !*k->value || !e || e->vr[0] != DCM_VR_PN || !store_attr_find(k->tag))
            continue;
        if (q->n_fz == MAX_FUZZY_KEYS) {
            snprintf(q->bad, sizeof q->bad, "at most %d person name keys with fuzzymatching", MAX_FUZZY_KEYS);
            return RS_EINVAL;
        }
        q->fz[q->n_fz].tag = k->tag;
        q->fz[q->n_fz++].value = (char *)k->value;
        k->value = NULL;
    }
    return RS_OK;
}

/* Every fuzzy key matched by one of its alternatives against one of the match's values. */
static int fuzzy_ok(const qido_ctx *q, const store_match *m)
{
    for (size_t i = 0; i < q->n_fz; i++) {
        int ok = 0;
        char name[1024], alt[1025];
        for (unsigned vi = 0; !ok && vi < 16 && dcm_ds_get_str(m->ds, q->fz[i].tag, vi, name, sizeof name) >= 0; vi++)
            for (const char *a = q->fz[i].value; !ok && a;) {
                const char *end = strchr(a, '\\');
                snprintf(alt, sizeof alt, "%.*s", (int)(end ? (size_t)(end - a) : strlen(a)), a);
                ok = dw_fuzzy_match(alt, name);
                a = end ? end + 1 : NULL;
            }
        if (!ok)
            return 0;
    }
    return 1;
}

static int on_match(void *ctx, const store_match *m)
{
    qido_ctx *q = ctx;
    if (q->n_fz) {
        if (++q->scanned > FUZZY_MAX_SCAN) {
            q->scan_cut = 1;
            return 1;
        }
        if (!fuzzy_ok(q, m))
            return 0;
        if (q->skipped < q->offset) {
            q->skipped++;
            return 0;
        }
    }
    int rc = rs_buf_puts(&q->out, q->n ? ",\n" : "\n");
    dcm_json_opts jo = {.inline_max = UINT32_MAX};
    rc = rc ? rc : dcm_json_write(m->ds, &jo, &q->out, &q->err);
    rc = rc ? rc : add_retrieve_url(q, m);
    q->n++;
    return rc ? rc : q->n_fz && q->n == q->limit ? 1 : 0;
}

int qido_search(dicomweb *dw, http_req *rq, store_level level, const dw_target *t)
{
    if (!http_req_accepts(rq, "application/dicom+json") && !http_req_accepts(rq, "application/json"))
        return http_reply_error(rq, 406, "QIDO-RS answers application/dicom+json only");
    qido_ctx *q = calloc(1, sizeof *q);
    if (!q)
        return http_reply_error(rq, 503, "out of memory");
    q->dw = dw;
    q->rq = rq;
    q->level = level;
    store_keyset_init(&q->ks);
    rs_err_clear(&q->err);
    const uint32_t path_tags[] = {DCM_TAG_STUDY_UID, DCM_TAG_SERIES_UID};
    const char *path_uids[] = {t->study, t->series};
    int rc = RS_OK;
    for (int i = 0; i < 2 && rc == RS_OK; i++)
        if (path_uids[i])
            rc = store_keyset_add(&q->ks, path_tags[i], 0, path_uids[i], &q->err);
    if (rc == RS_OK && http_req_query_each(rq, on_param, q))
        rc = RS_EINVAL;
    const uint32_t *defaults = level == STORE_LEVEL_STUDY ? DEFAULT_STUDY : level == STORE_LEVEL_SERIES ? DEFAULT_SERIES
                                                                                                      : DEFAULT_IMAGE;
    rc = rc ? rc : add_defaults(q, defaults);
    if (rc == RS_OK && q->fuzzy)
        rc = take_fuzzy_keys(q);
    if (!q->limit)
        q->limit = DICOMWEB_MAX_LIMIT;
    if (rc == RS_OK) {
        store_query sq = {.level = level, .model = STORE_STUDY_ROOT, .keys = q->ks.key, .n_keys = q->ks.n,
                          .limit = q->n_fz ? 0 : q->limit, .offset = q->n_fz ? 0 : q->offset};
        rc = rs_buf_putc(&q->out, '[');
        rc = rc ? rc : store_query_run(dw->st, &sq, on_match, q, &q->err);
        rc = rc ? rc : rs_buf_puts(&q->out, "\n]\n");
    }
    atomic_fetch_add(&dw->n.qido, 1);
    if (rc == RS_OK) {
        if (q->limit_clamped || q->scan_cut)
            http_set_header(rq, "Warning", q->scan_cut ? "299 radshare \"fuzzy matching looked at the first 200000 candidates only\""
                                                       : "299 radshare \"limit clamped to 1000\"");
        http_set_header(rq, "Cache-Control", "no-cache");
        rc = http_reply_buf(rq, 200, "application/dicom+json", q->out.p, q->out.len);
    } else if (q->bad[0]) {
        rc = http_reply_error(rq, 400, "%s", q->bad);
    } else {
        rc = http_reply_error(rq, rc == RS_EINVAL ? 400 : http_status_for(rc), "%s", q->err.msg[0] ? q->err.msg : rs_strerror(rc));
    }
    store_keyset_free(&q->ks);
    rs_buf_free(&q->out);
    free(q);
    return rc;
}
