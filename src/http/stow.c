/*
 * stow.c - STOW-RS (PS3.18 10.5): POST /dicom-web/studies[/{study}] with a multipart/related;
 * type="application/dicom" body, parsed as it arrives (multipart.c): each part streams into a
 * store ingest and is committed when its closing delimiter is seen, with the same durability
 * rule as C-STORE (the answer is sent only after the group commit). A part cut short by the end
 * of the body, or by a size cap, is aborted: nothing partial is stored.
 *
 * The 128-byte Part 10 preamble is zeroed before the bytes reach the store (it is free-form
 * and a classic place to smuggle content, PS3.10 7.5); the hash is of the zeroed file, so the
 * same instance sent twice with different preambles is one object.
 *
 * The answer is DICOM JSON: ReferencedSOPSequence for the stored instances, FailedSOPSequence
 * with a FailureReason for the others; 200 all stored, 202 some, 409 none, 400 malformed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../dicom/tag.h"
#include "dicomweb.h"
#include "multipart.h"

#define PREAMBLE 128
#define MAX_PARTS 100000

/* PS3.18 / PS3.4 failure reasons */
#define FR_PROCESSING 0x0110
#define FR_OUT_OF_RESOURCES 0xA700
#define FR_MISMATCH 0xA900
#define FR_NOT_UNDERSTOOD 0xC000

typedef struct stow {
    dicomweb *dw;
    http_req *rq;
    mp_parser *mp;
    char study[STORE_UID_MAX + 1];    /* from the path: every instance must belong to it */
    char fatal[256];                  /* the request as a whole is refused */
    int fatal_status;
    store_ingest *in;                 /* current part, NULL when it failed or none */
    uint8_t pre[PREAMBLE + 4];
    size_t npre;
    int part_reason;                  /* failure found while streaming the part */
    char part_msg[512];
    unsigned n_parts, n_ok, n_failed;
    char first_study[STORE_UID_MAX + 1];
    int several_studies;
    rs_buf ok, failed;                /* items of the two sequences */
} stow;

static void stow_free(void *p)
{
    stow *s = p;
    if (!s)
        return;
    store_ingest_abort(s->in);
    mp_parser_free(s->mp);
    rs_buf_free(&s->ok);
    rs_buf_free(&s->failed);
    free(s);
}

static int add_failed(stow *s, int reason, const char *cls, const char *uid, const char *why)
{
    s->n_failed++;
    atomic_fetch_add(&s->dw->n.stow_failed, 1);
    rs_buf *b = &s->failed;
    int rc = rs_buf_puts(b, b->len ? "," : "");
    rc = rc ? rc : rs_buf_putc(b, '{');
    if (rc == RS_OK && cls && *cls)
        rc = rs_buf_printf(b, "\"00081150\":{\"vr\":\"UI\",\"Value\":[\"%s\"]},", cls);
    if (rc == RS_OK && uid && *uid)
        rc = rs_buf_printf(b, "\"00081155\":{\"vr\":\"UI\",\"Value\":[\"%s\"]},", uid);
    rc = rc ? rc : rs_buf_printf(b, "\"00081197\":{\"vr\":\"US\",\"Value\":[%d]},\"00090010\":{\"vr\":\"LO\",\"Value\":[\"RADSHARE\"]},\"00091001\":{\"vr\":\"LT\",\"Value\":[", reason);
    rc = rc ? rc : http_json_str(b, why);
    rs_log(RS_LOG_WARN, "STOW-RS from %s: part %u refused: %s", http_req_peer(s->rq), s->n_parts, why);
    return rc ? rc : rs_buf_puts(b, "]}}");
}

static int add_ok(stow *s, const store_ingest_result *r)
{
    s->n_ok++;
    atomic_fetch_add(&s->dw->n.stow_instances, 1);
    atomic_fetch_add(&s->dw->n.stow_bytes, r->size);
    if (!s->first_study[0])
        snprintf(s->first_study, sizeof s->first_study, "%s", r->study_uid);
    else if (strcmp(s->first_study, r->study_uid))
        s->several_studies = 1;
    rs_buf *b = &s->ok;
    return rs_buf_printf(b, "%s{\"00081150\":{\"vr\":\"UI\",\"Value\":[\"%s\"]},\"00081155\":{\"vr\":\"UI\",\"Value\":[\"%s\"]},"
                            "\"00081190\":{\"vr\":\"UR\",\"Value\":[\"%s" DICOMWEB_PREFIX "/studies/%s/series/%s/instances/%s\"]}}",
                         b->len ? "," : "", r->sop_class, r->sop_uid, http_req_base_url(s->rq), r->study_uid, r->series_uid,
                         r->sop_uid);
}

static void part_fail(stow *s, int reason, const char *msg)
{
    if (s->part_reason)
        return;
    s->part_reason = reason;
    snprintf(s->part_msg, sizeof s->part_msg, "%s", msg);
    store_ingest_abort(s->in);
    s->in = NULL;
}

static int on_part_begin(void *ctx, const char *headers)
{
    stow *s = ctx;
    rs_err err;
    rs_err_clear(&err);
    s->n_parts++;
    s->npre = 0;
    s->part_reason = 0;
    if (s->n_parts > MAX_PARTS)
        return RS_ELIMIT;
    /* each part must be application/dicom (a part without Content-Type takes the request's type) */
    const char *ct = strcasestr(headers, "content-type:");
    if (ct) {
        ct += 13;
        ct += strspn(ct, " \t");
        if (strncasecmp(ct, "application/dicom", 17) || (ct[17] && !strchr(";\r\n \t", ct[17]))) {
            part_fail(s, FR_NOT_UNDERSTOOD, "part is not application/dicom");
            return RS_OK;
        }
    }
    int rc = store_ingest_begin(s->dw->st, &s->in, &err);
    if (rc == RS_OK && s->study[0])
        rc = store_ingest_expect_study(s->in, s->study, &err);
    if (rc)
        part_fail(s, FR_OUT_OF_RESOURCES, err.msg);
    return RS_OK;
}

/* The preamble, zeroed if the file has one, then what followed it. */
static int flush_pre(stow *s, rs_err *err)
{
    if (s->npre == PREAMBLE + 4 && !memcmp(s->pre + PREAMBLE, "DICM", 4))
        memset(s->pre, 0, PREAMBLE);
    int rc = store_ingest_write(s->in, s->pre, s->npre, err);
    s->npre = SIZE_MAX; /* done */
    return rc;
}

static int on_part_data(void *ctx, const uint8_t *p, size_t n)
{
    stow *s = ctx;
    if (!s->in)
        return RS_OK; /* failed part: its bytes are dropped */
    rs_err err;
    rs_err_clear(&err);
    int rc = RS_OK;
    if (s->npre != SIZE_MAX) {
        size_t k = PREAMBLE + 4 - s->npre < n ? PREAMBLE + 4 - s->npre : n;
        memcpy(s->pre + s->npre, p, k);
        s->npre += k;
        p += k;
        n -= k;
        if (s->npre == PREAMBLE + 4)
            rc = flush_pre(s, &err);
    }
    if (rc == RS_OK && n)
        rc = store_ingest_write(s->in, p, n, &err);
    if (rc)
        part_fail(s, rc == RS_ELIMIT ? FR_OUT_OF_RESOURCES : FR_PROCESSING, err.msg);
    return RS_OK;
}

static int on_part_end(void *ctx)
{
    stow *s = ctx;
    rs_err err;
    rs_err_clear(&err);
    int rc = RS_OK;
    if (s->in && s->npre != SIZE_MAX)
        rc = flush_pre(s, &err);
    if (rc)
        part_fail(s, FR_PROCESSING, err.msg);
    if (!s->in)
        return add_failed(s, s->part_reason, NULL, NULL, s->part_msg);
    store_ingest_result res;
    char source[96];
    snprintf(source, sizeof source, "STOW-RS %s", http_req_peer(s->rq));
    store_ingest *in = s->in;
    s->in = NULL;
    rc = store_ingest_commit(in, source, &res, &err);
    if (rc == RS_OK)
        return add_ok(s, &res);
    int reason = rc == RS_EINVAL ? FR_MISMATCH : rc == RS_EFORMAT || rc == RS_ETRUNC ? FR_NOT_UNDERSTOOD
                 : rc == RS_ELIMIT ? FR_OUT_OF_RESOURCES : FR_PROCESSING;
    return add_failed(s, reason, NULL, NULL, err.msg);
}

static const mp_callbacks CALLBACKS = {on_part_begin, on_part_data, on_part_end};

/* The request's Content-Type and path, checked once; sets s->fatal when refused. */
static int stow_setup(stow *s)
{
    const char *sub = http_req_subpath(s->rq);
    if (*sub) {
        if (!dw_uid_ok(sub)) {
            s->fatal_status = strchr(sub, '/') ? 404 : 400;
            snprintf(s->fatal, sizeof s->fatal, "invalid study UID in the path: \"%.80s\"", sub);
            return RS_EINVAL;
        }
        snprintf(s->study, sizeof s->study, "%s", sub);
    }
    const char *ct = http_req_header(s->rq, "Content-Type");
    char type[80], boundary[MP_MAX_BOUNDARY + 1];
    s->fatal_status = 415;
    if (!ct || strncasecmp(ct, "multipart/related", 17)) {
        snprintf(s->fatal, sizeof s->fatal, "STOW-RS takes multipart/related; type=\"application/dicom\"");
        return RS_EUNSUPPORTED;
    }
    if (mp_param(ct, "type", type, sizeof type) == RS_OK && strcasecmp(type, "application/dicom")) {
        snprintf(s->fatal, sizeof s->fatal, "part type \"%.60s\" is not supported (application/dicom is)", type);
        return RS_EUNSUPPORTED;
    }
    s->fatal_status = 400;
    if (mp_boundary(ct, boundary, sizeof boundary)) {
        snprintf(s->fatal, sizeof s->fatal, "multipart/related without a valid boundary");
        return RS_EINVAL;
    }
    int rc = mp_parser_new(boundary, &CALLBACKS, s, &s->mp);
    if (rc)
        snprintf(s->fatal, sizeof s->fatal, "cannot parse the multipart body");
    s->fatal_status = rc ? 400 : 0;
    return rc;
}

static stow *get_state(http_req *rq, dicomweb *dw)
{
    stow *s = http_req_state(rq);
    if (s)
        return s;
    if (!(s = calloc(1, sizeof *s)))
        return NULL;
    s->dw = dw;
    s->rq = rq;
    http_req_set_state(rq, s, stow_free);
    stow_setup(s);
    return s;
}

int stow_body(http_req *rq, const void *p, size_t n, void *ctx)
{
    stow *s = get_state(rq, ctx);
    if (!s)
        return RS_ENOMEM;
    if (s->fatal[0])
        return RS_EINVAL;
    int rc = mp_parser_feed(s->mp, p, n);
    if (rc && !s->fatal[0]) {
        s->fatal_status = rc == RS_ELIMIT ? 413 : 400;
        snprintf(s->fatal, sizeof s->fatal, rc == RS_ELIMIT ? "more than %d parts" : "malformed multipart body", MAX_PARTS);
    }
    return rc;
}

static int reply_result(stow *s)
{
    rs_buf b = RS_BUF_INIT;
    int rc = rs_buf_putc(&b, '{');
    if (rc == RS_OK && s->first_study[0] && !s->several_studies)
        rc = rs_buf_printf(&b, "\"00081190\":{\"vr\":\"UR\",\"Value\":[\"%s" DICOMWEB_PREFIX "/studies/%s\"]},",
                           http_req_base_url(s->rq), s->first_study);
    if (rc == RS_OK && s->n_failed)
        rc = rs_buf_printf(&b, "\"00081198\":{\"vr\":\"SQ\",\"Value\":[%s]},", (const char *)s->failed.p);
    if (rc == RS_OK && s->n_ok)
        rc = rs_buf_printf(&b, "\"00081199\":{\"vr\":\"SQ\",\"Value\":[%s]},", (const char *)s->ok.p);
    if (rc == RS_OK && b.p[b.len - 1] == ',')
        b.len--;
    rc = rc ? rc : rs_buf_puts(&b, "}\n");
    int status = s->n_failed == 0 ? 200 : s->n_ok ? 202 : 409;
    rs_log(RS_LOG_INFO, "STOW-RS from %s: %u stored, %u failed", http_req_peer(s->rq), s->n_ok, s->n_failed);
    rc = rc ? http_reply_error(s->rq, 503, "out of memory")
            : http_reply_buf(s->rq, status, "application/dicom+json", b.p, b.len);
    rs_buf_free(&b);
    return rc;
}

int stow_finish(http_req *rq, void *ctx)
{
    if (!http_req_accepts(rq, "application/dicom+json") && !http_req_accepts(rq, "application/json"))
        return http_reply_error(rq, 406, "STOW-RS answers application/dicom+json");
    stow *s = get_state(rq, ctx);
    if (!s)
        return http_reply_error(rq, 503, "out of memory");
    int status;
    const char *msg;
    if (s->fatal[0])
        return http_reply_error(rq, s->fatal_status, "%s", s->fatal);
    if (http_req_body_error(rq, &status, &msg))
        return http_reply_error(rq, status, "%s; %u instance(s) stored before, the part in progress was not",
                                msg, s->n_ok);
    if (!mp_parser_done(s->mp))
        return http_reply_error(rq, 400, "multipart body truncated (no closing delimiter): %u instance(s) stored, "
                                "the part in progress was not", s->n_ok);
    if (s->n_parts == 0)
        return http_reply_error(rq, 400, "multipart body without parts");
    return reply_result(s);
}
