/*
 * routes.c - see routes.h. One POST does what a radiologist means by "send the report": the
 * share for the recipient, the link in the text, the deliveries queued, the audit records. The
 * token exists only in the URL handed to report_service_submit (the outbox needs it to send)
 * and is never in the reply's audit records or logs.
 */
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../auth/users.h"
#include "../http/dicomweb.h"
#include "../share/jsonin.h"

#define REPORT_BODY_MAX (REPORT_TEXT_MAX + 8192)

struct report_web {
    report_service *svc;
    share_web *sw;
    store *st;
    auth_db *auth;
};

int report_web_open(const char *datadir, report_service *svc, share_web *sw, store *st, report_web **out, rs_err *err)
{
    *out = NULL;
    report_web *w = calloc(1, sizeof *w);
    if (!w)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    *w = (report_web){.svc = svc, .sw = sw, .st = st};
    int rc = auth_open(datadir, &w->auth, err);
    if (rc) {
        free(w);
        return rc;
    }
    *out = w;
    return RS_OK;
}

void report_web_free(report_web *w)
{
    if (!w)
        return;
    auth_close(w->auth);
    free(w);
}

static void audit_rq(report_web *w, http_req *rq, const char *event, const char *share_id, const char *study,
                     const char *detail)
{
    rs_err err;
    rs_err_clear(&err);
    audit_append(share_web_audit(w->sw), event, share_id, study, http_req_peer(rq), http_req_header(rq, "User-Agent"),
                 detail, NULL, &err);
}

static void copy_field(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* The request's recipient, then the directory for the study's referring physician. */
static int recipient_of(report_web *w, const jsonin *j, const report_study *study, report_recipient *out, rs_err *err)
{
    report_recipient given;
    memset(&given, 0, sizeof given);
    copy_field(given.name, sizeof given.name, jsonin_str(j, "recipient.name"));
    copy_field(given.email, sizeof given.email, jsonin_str(j, "recipient.email"));
    copy_field(given.hl7, sizeof given.hl7, jsonin_str(j, "recipient.hl7"));
    if (report_service_recipient(w->svc, &given, study->referring, out) != RS_OK)
        return rs_err_set(err, RS_EINVAL,
                          "no recipient: give recipient.email or recipient.hl7, or list the referring physician "
                          "(\"%.60s\") in the directory", study->referring);
    return RS_OK;
}

static int parse_days(const jsonin *j, int64_t *secs, rs_err *err)
{
    const jsonin_item *days = jsonin_get(j, "expires_in_days");
    *secs = 0;
    if (!days)
        return RS_OK;
    double d = days->type == JSONIN_NUMBER ? atof(days->value) : -1;
    if (d < 1 || d > SHARE_MAX_DAYS || d != (double)(long)d)
        return rs_err_set(err, RS_EINVAL, "expires_in_days must be a whole number 1..%d", SHARE_MAX_DAYS);
    *secs = (int64_t)d * 86400;
    return RS_OK;
}

/* Whoever the auth hook let through ("local" for the loopback bootstrap without accounts). */
static void author_of(report_web *w, http_req *rq, char out[AUTH_MAX_NAME + 1])
{
    auth_user u;
    char sid[TOKEN_CHARS + 2];
    snprintf(out, AUTH_MAX_NAME + 1, "local");
    if ((auth_cookie_get(http_req_header(rq, "Cookie"), AUTH_COOKIE, sid, sizeof sid) &&
         auth_session_lookup(w->auth, sid, (int64_t)time(NULL), &u, NULL) == RS_OK) ||
        auth_check_header(w->auth, http_req_header(rq, "Authorization"), &u, NULL) == RS_OK)
        memcpy(out, u.name, sizeof u.name);
}

static int reply_rc(http_req *rq, int rc, const rs_err *err)
{
    return http_reply_error(rq, http_status_for(rc), "%s", err->msg[0] ? err->msg : rs_strerror(rc));
}

static int create_report(report_web *w, http_req *rq, const char *uid)
{
    const void *p;
    size_t n;
    jsonin j;
    rs_err err;
    rs_err_clear(&err);
    http_req_body(rq, &p, &n);
    if (jsonin_parse(p, n, &j, &err))
        return http_reply_error(rq, 400, "bad JSON: %s", err.msg);
    report_input in;
    memset(&in, 0, sizeof in);
    char by[AUTH_MAX_NAME + 1], tok[TOKEN_CHARS + 1], id[SHARE_ID_CHARS + 1], url[REPORT_URL_MAX];
    author_of(w, rq, by);
    int64_t secs = 0, report_id = 0;
    in.study_uid = uid;
    in.text = jsonin_str(&j, "text");
    in.author = by;
    in.access_code = jsonin_str(&j, "access_code");
    in.link_needs_code = in.access_code && in.access_code[0];
    int rc = in.text && in.text[0] ? RS_OK : rs_err_set(&err, RS_EINVAL, "\"text\" (the report) is required");
    rc = rc ? rc : parse_days(&j, &secs, &err);
    rc = rc ? rc : report_study_from_store(w->st, uid, &in.study, &err);
    if (rc == RS_ENOTFOUND)
        rs_err_set(&err, RS_ENOTFOUND, "no study %s in the archive", uid);
    rc = rc ? rc : recipient_of(w, &j, &in.study, &in.recipient, &err);
    share_new q = {.study_uid = uid, .kind = SHARE_PRACTITIONER, .name = in.recipient.name,
                   .email = in.recipient.email, .hl7 = in.recipient.hl7, .purpose = "report", .created_by = by,
                   .expires_in_s = secs, .access_code = in.link_needs_code ? in.access_code : NULL,
                   .download = jsonin_true(&j, "download")};
    rc = rc ? rc : share_create(share_web_shares(w->sw), &q, (int64_t)time(NULL), tok, id, &err);
    const char *base = report_service_public_url(w->svc);
    if (!base || !base[0])
        base = http_req_base_url(rq);
    if (rc == RS_OK && snprintf(url, sizeof url, "%s/s/%s", base, tok) >= (int)sizeof url)
        rc = rs_err_set(&err, RS_EINVAL, "public URL too long");
    in.share_id = id;
    in.link_url = url;
    int shared = rc == RS_OK;
    rc = rc ? rc : report_service_submit(w->svc, &in, &report_id, &err);
    if (rc && shared) /* no report, no link: nobody could be told about it */
        share_revoke(share_web_shares(w->sw), id, by, (int64_t)time(NULL), NULL);
    rs_buf b = RS_BUF_INIT, d = RS_BUF_INIT;
    if (rc == RS_OK) {
        if (rs_buf_printf(&d, "{\"by\":") == RS_OK && audit_json_string(&d, by, 64) == RS_OK &&
            rs_buf_printf(&d, ",\"kind\":\"practitioner\",\"purpose\":\"report\",\"download\":%s,\"code\":%s}",
                          q.download ? "true" : "false", q.access_code ? "true" : "false") == RS_OK)
            audit_rq(w, rq, "share.created", id, uid, (const char *)d.p);
        rs_buf_reset(&d);
        if (rs_buf_printf(&d, "{\"report\":%lld,\"by\":", (long long)report_id) == RS_OK &&
            audit_json_string(&d, by, 64) == RS_OK && rs_buf_puts(&d, ",\"recipient\":") == RS_OK &&
            audit_json_string(&d, in.recipient.name, 128) == RS_OK && rs_buf_putc(&d, '}') == RS_OK)
            audit_rq(w, rq, "report.created", id, uid, (const char *)d.p);
        rc = rs_buf_printf(&b, "{\"report\":%lld,\"share\":{\"id\":\"%s\",\"url\":", (long long)report_id, id);
        rc = rc ? rc : http_json_str(&b, url);
        rc = rc ? rc : rs_buf_puts(&b, "},\"deliveries\":");
        rc = rc ? rc : report_delivery_list(report_service_db(w->svc), NULL, report_id, &b, &err);
        rc = rc ? rc : rs_buf_putc(&b, '}');
        http_set_header(rq, "Cache-Control", "no-store");
        rc = rc ? reply_rc(rq, rc, &err) : http_reply_json(rq, 201, &b);
    } else {
        rc = reply_rc(rq, rc, &err);
    }
    memset(tok, 0, sizeof tok);
    memset(url, 0, sizeof url);
    rs_buf_free(&b);
    rs_buf_free(&d);
    jsonin_free(&j);
    return rc;
}

/* "recipient": whom the report would go to without one in the request (the directory entry of the
   study's referring physician), or null - the staff page fills its form with it. */
static int put_suggestion(report_web *w, const report_study *s, rs_buf *b)
{
    report_recipient none, r;
    memset(&none, 0, sizeof none);
    if (report_service_recipient(w->svc, &none, s->referring, &r) != RS_OK)
        return rs_buf_puts(b, ",\"recipient\":null");
    int rc = rs_buf_puts(b, ",\"recipient\":{\"name\":");
    rc = rc ? rc : http_json_str(b, r.name);
    rc = rc ? rc : rs_buf_puts(b, ",\"email\":");
    rc = rc ? rc : http_json_str(b, r.email);
    rc = rc ? rc : rs_buf_puts(b, ",\"hl7\":");
    rc = rc ? rc : http_json_str(b, r.hl7);
    return rc ? rc : rs_buf_putc(b, '}');
}

static int list_reports(report_web *w, http_req *rq, const char *uid)
{
    rs_err err;
    rs_err_clear(&err);
    rs_buf b = RS_BUF_INIT;
    report_study s;
    int rc = report_study_from_store(w->st, uid, &s, &err);
    if (rc == RS_ENOTFOUND)
        return http_reply_error(rq, 404, "no study %s in the archive", uid);
    rc = rc ? rc : rs_buf_puts(&b, "{\"study\":");
    rc = rc ? rc : http_json_str(&b, uid);
    rc = rc ? rc : rs_buf_puts(&b, ",\"referring\":");
    rc = rc ? rc : http_json_str(&b, s.referring);
    rc = rc ? rc : put_suggestion(w, &s, &b);
    rc = rc ? rc : rs_buf_puts(&b, ",\"deliveries\":");
    rc = rc ? rc : report_delivery_list(report_service_db(w->svc), uid, 0, &b, &err);
    rc = rc ? rc : rs_buf_putc(&b, '}');
    rc = rc ? reply_rc(rq, rc, &err) : http_reply_json(rq, 200, &b);
    rs_buf_free(&b);
    return rc;
}

int report_web_study(http_req *rq, report_web *w, const char *study_uid)
{
    const char *m = http_req_method(rq);
    if (!dw_uid_ok(study_uid))
        return http_reply_error(rq, 400, "invalid study UID");
    if (!strcmp(m, "POST"))
        return create_report(w, rq, study_uid);
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD"))
        return list_reports(w, rq, study_uid);
    return http_reply_error(rq, 405, "method %s not allowed here", m);
}

int report_web_share_report(void *ctx, const char *share_id, rs_buf *out)
{
    report_web *w = ctx;
    rs_err err;
    rs_err_clear(&err);
    return report_share_json(report_service_db(w->svc), share_id, out, &err);
}
