/* routes.c - see routes.h. */
#include "routes.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../http/assets.h"
#include "../util/log.h"
#include "download.h"
#include "jsonin.h"
#include "qr.h"
#include "studyjson.h"

#define UNLOCK_COOKIE "radshare_unlock"
#define SEEN_SLOTS 256
#define SEEN_EVERY_S 60
#define LOGIN_MAX 10            /* failed staff logins per address ... */
#define LOGIN_WINDOW (15 * 60)  /* ... per this many seconds */ /* one images.viewed record per share and series per minute */

struct share_web {
    share_db *shares;
    auth_db *auth;
    audit_log *audit;
    store *st;
    dicomweb *dw;
    share_web_report_fn report_fn;  /* study.json's report (the report module), may be NULL */
    void *report_ctx;
    char datadir[4096];
    char public_url[512];
    int secure;
    pthread_mutex_t mu;
    struct {
        char key[160];
        int64_t t;
    } seen[SEEN_SLOTS];
};

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static void set_retry_after(http_req *rq, int64_t retry)
{
    char ra[24];
    snprintf(ra, sizeof ra, "%lld", (long long)retry);
    http_set_header(rq, "Retry-After", ra);
}

/* ---- audit -------------------------------------------------------------------------------------- */

static void audit_rq(share_web *w, http_req *rq, const char *event, const share *sh, const char *detail)
{
    rs_err err;
    rs_err_clear(&err);
    if (audit_append(w->audit, event, sh && sh->id[0] ? sh->id : NULL, sh && sh->study_uid[0] ? sh->study_uid : NULL,
                     http_req_peer(rq), http_req_header(rq, "User-Agent"), detail, NULL, &err))
        rs_log(RS_LOG_ERROR, "audit: %s: %s", event, err.msg);
}

/* Images are fetched by the hundred: one record per share and series per minute. */
static int seen_recently(share_web *w, const char *share_id, const char *series)
{
    char key[160];
    snprintf(key, sizeof key, "%s/%s", share_id, series);
    unsigned h = 5381;
    for (const char *p = key; *p; p++)
        h = h * 33 + (unsigned char)*p;
    int64_t t = now_s();
    pthread_mutex_lock(&w->mu);
    int recent = !strcmp(w->seen[h % SEEN_SLOTS].key, key) && t - w->seen[h % SEEN_SLOTS].t < SEEN_EVERY_S;
    if (!recent) {
        memcpy(w->seen[h % SEEN_SLOTS].key, key, sizeof key);
        w->seen[h % SEEN_SLOTS].t = t;
    }
    pthread_mutex_unlock(&w->mu);
    return recent;
}

/* ---- pages ------------------------------------------------------------------------------------- */

static int html_escape(rs_buf *b, const char *s)
{
    int rc = RS_OK;
    for (; *s && rc == RS_OK; s++) {
        switch (*s) {
        case '<': rc = rs_buf_puts(b, "&lt;"); break;
        case '>': rc = rs_buf_puts(b, "&gt;"); break;
        case '&': rc = rs_buf_puts(b, "&amp;"); break;
        case '"': rc = rs_buf_puts(b, "&quot;"); break;
        case '\'': rc = rs_buf_puts(b, "&#39;"); break;
        default: rc = rs_buf_putc(b, *s);
        }
    }
    return rc;
}

static void no_leak_headers(http_req *rq)
{
    /* the token is in the URL: never in a Referer, never in a cache */
    http_set_header(rq, "Referrer-Policy", "no-referrer");
    http_set_header(rq, "Cache-Control", "no-store");
    http_set_header(rq, "X-Content-Type-Options", "nosniff");
}

static int reply_page(http_req *rq, int status, const char *title, const char *text, const char *contact)
{
    rs_buf b = RS_BUF_INIT;
    int rc = rs_buf_puts(&b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                             "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>");
    rc = rc ? rc : html_escape(&b, title);
    rc = rc ? rc : rs_buf_puts(&b, "</title><style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;"
                                   "padding:0 1em;color:#222}h1{font-size:1.4em}</style></head><body><h1>");
    rc = rc ? rc : html_escape(&b, title);
    rc = rc ? rc : rs_buf_puts(&b, "</h1><p>");
    rc = rc ? rc : html_escape(&b, text);
    rc = rc ? rc : rs_buf_puts(&b, "</p>");
    if (contact && contact[0]) {
        rc = rc ? rc : rs_buf_puts(&b, "<p>For a new link, contact the department that sent it (issued by <b>");
        rc = rc ? rc : html_escape(&b, contact);
        rc = rc ? rc : rs_buf_puts(&b, "</b>).</p>");
    }
    rc = rc ? rc : rs_buf_puts(&b, "</body></html>\n");
    no_leak_headers(rq);
    rc = rc ? http_reply_error(rq, 503, "out of memory") : http_reply_buf(rq, status, "text/html; charset=utf-8", b.p, b.len);
    rs_buf_free(&b);
    return rc;
}

static int wants_json(const char *rest)
{
    return rest[0] != 0; /* everything below the page is fetched by the viewer's script */
}

/* The refusal for a share that cannot be used, as a page or JSON. */
static int refuse(share_web *w, http_req *rq, share_status st, const share *sh, int64_t retry, const char *rest)
{
    /* only fixed words go into the record: the path is the client's */
    static const char *const words[] = {"study.json", "unlock", "download"};
    const char *what = !rest[0] ? "page" : !strcmp(rest, "studies") ? "image" : "other";
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strcmp(rest, words[i]))
            what = words[i];
    char d[96];
    snprintf(d, sizeof d, "{\"reason\":\"%s\",\"what\":\"%s\"}", share_status_name(st), what);
    audit_rq(w, rq, st == SHARE_THROTTLED ? "access.throttled" : st == SHARE_UNKNOWN ? "access.unknown"
                                                                                     : "access.refused",
             st == SHARE_UNKNOWN || st == SHARE_THROTTLED ? NULL : sh, d);
    if (st == SHARE_THROTTLED) {
        set_retry_after(rq, retry);
        no_leak_headers(rq);
        return wants_json(rest) ? http_reply_error(rq, 429, "too many unknown links from your address")
                                : reply_page(rq, 429, "Too many attempts",
                                             "Too many unknown links were opened from your address. Wait a minute and "
                                             "try again.", NULL);
    }
    if (st == SHARE_UNKNOWN) {
        no_leak_headers(rq);
        return wants_json(rest) ? http_reply_error(rq, 404, "no such link")
                                : reply_page(rq, 404, "Link not found",
                                             "This link does not exist. Check that it was copied completely.", NULL);
    }
    const char *why = st == SHARE_EXPIRED ? "This link has expired." : "This link was withdrawn by the sender.";
    no_leak_headers(rq);
    return wants_json(rest) ? http_reply_error(rq, 410, "%s", why)
                            : reply_page(rq, 410, st == SHARE_EXPIRED ? "Link expired" : "Link withdrawn", why,
                                         sh->created_by);
}

/* ---- the share-scoped routes ------------------------------------------------------------------- */

static int unlocked(share_web *w, http_req *rq, const share *sh)
{
    char g[TOKEN_CHARS + 2];
    if (sh->code_kind == SHARE_CODE_NONE)
        return 1;
    if (!auth_cookie_get(http_req_header(rq, "Cookie"), UNLOCK_COOKIE, g, sizeof g))
        return 0;
    return share_grant_check(w->shares, sh, g, now_s());
}

static int need_code(http_req *rq, const share *sh)
{
    rs_buf b = RS_BUF_INIT;
    int rc = rs_buf_printf(&b, "{\"need_code\":true,\"code\":\"%s\"}",
                           sh->code_kind == SHARE_CODE_BIRTHDATE ? "birth_date" : "code");
    no_leak_headers(rq);
    rc = rc ? rc : http_reply_json(rq, 401, &b);
    rs_buf_free(&b);
    return rc;
}

static int do_study_json(share_web *w, http_req *rq, const share *sh)
{
    rs_buf b = RS_BUF_INIT;
    rs_err err;
    rs_err_clear(&err);
    rs_buf rep = RS_BUF_INIT;
    int have = w->report_fn && w->report_fn(w->report_ctx, sh->id, &rep) == RS_OK && rep.len;
    int rc = share_study_json(w->st, sh, have ? (const char *)rep.p : NULL, &b, &err);
    rs_buf_free(&rep);
    no_leak_headers(rq);
    if (rc == RS_OK) {
        audit_rq(w, rq, "study.viewed", sh, NULL);
        rc = http_reply_json(rq, 200, &b);
    } else {
        rc = http_reply_error(rq, http_status_for(rc), "%s", err.msg);
    }
    rs_buf_free(&b);
    return rc;
}

static int do_unlock(share_web *w, http_req *rq, const share *sh, const char *token)
{
    const void *p;
    size_t n;
    jsonin j;
    rs_err err;
    rs_err_clear(&err);
    http_req_body(rq, &p, &n);
    no_leak_headers(rq);
    if (n > 4096 || jsonin_parse(p, n, &j, &err))
        return http_reply_error(rq, 400, "expected {\"code\": \"...\"}");
    share_code_result res;
    int64_t retry = 0;
    int rc = share_verify_code(w->shares, sh, jsonin_str(&j, "code"), http_req_peer(rq), now_s(), &res, &retry, &err);
    jsonin_free(&j);
    if (rc)
        return http_reply_error(rq, 503, "%s", err.msg);
    if (res == SHARE_CODE_LOCKED) {
        set_retry_after(rq, retry);
        audit_rq(w, rq, "access.code_locked", sh, NULL);
        return http_reply_error(rq, 429, "too many wrong codes: try again in %lld s", (long long)retry);
    }
    if (res == SHARE_CODE_WRONG) {
        audit_rq(w, rq, "access.code_wrong", sh, NULL);
        return http_reply_error(rq, 401, "wrong code");
    }
    char g[TOKEN_CHARS + 1], path[TOKEN_CHARS + 8];
    int64_t exp;
    if (share_grant_create(w->shares, sh, now_s(), g, &exp, &err))
        return http_reply_error(rq, 503, "%s", err.msg);
    snprintf(path, sizeof path, "/s/%s", token);
    rs_buf c = RS_BUF_INIT, body = RS_BUF_INIT;
    rc = auth_cookie_format(&c, UNLOCK_COOKIE, g, path, exp - now_s(), w->secure);
    rc = rc ? rc : http_set_header(rq, "Set-Cookie", (const char *)c.p);
    rc = rc ? rc : rs_buf_puts(&body, "{\"unlocked\":true}");
    audit_rq(w, rq, "access.unlocked", sh, NULL);
    rc = rc ? http_reply_error(rq, 503, "out of memory") : http_reply_json(rq, 200, &body);
    rs_buf_free(&c);
    rs_buf_free(&body);
    return rc;
}

/* Every SOP of a batch's "SOP[:N],..." list in that series (a malformed list is wado's 400). */
static int batch_in_series(share_web *w, const char *st, const char *se, const char *list)
{
    char sop[80];
    for (const char *p = list ? list : ""; *p; p += *p == ',') {
        size_t k = strcspn(p, ":,");
        if (k && k < sizeof sop) {
            memcpy(sop, p, k);
            sop[k] = 0;
            if (dw_uid_ok(sop) && !share_instance_in(w->st, st, se, sop))
                return 0;
        }
        p += strcspn(p, ",");
    }
    return 1;
}

/* studies/{st}/series/{se}/thumbnail | studies/{st}/series/{se}/instances/{sop}/frames/{n}/rendered |
   studies/{st}/series/{se}/rendered?instances=SOP[:N],... (the viewer's prefetch, wado_render_batch) */
static int do_image(share_web *w, http_req *rq, const share *sh, char **seg, int n)
{
    int thumb = n == 5 && !strcmp(seg[4], "thumbnail");
    int batch = n == 5 && !strcmp(seg[4], "rendered");
    int rendered = n == 9 && !strcmp(seg[4], "instances") && !strcmp(seg[6], "frames") && !strcmp(seg[8], "rendered");
    no_leak_headers(rq);
    if (strcmp(seg[0], "studies") || strcmp(seg[2], "series") || !(thumb || rendered || batch) || !dw_uid_ok(seg[1]) ||
        !dw_uid_ok(seg[3]) || (rendered && !dw_uid_ok(seg[5])) ||
        (rendered && strspn(seg[7], "0123456789") != strlen(seg[7])))
        return http_reply_error(rq, 404, "no such resource");
    /* outside the share: 404, and the refusal is recorded (one instance of a batch outside
       the series is a 404 for the whole batch) */
    if (!share_check_scope(sh, seg[1], seg[3]) || (rendered && !share_instance_in(w->st, seg[1], seg[3], seg[5])) ||
        (batch && !batch_in_series(w, seg[1], seg[3], http_req_query(rq, "instances")))) {
        audit_rq(w, rq, "access.out_of_scope", sh, NULL);
        return http_reply_error(rq, 404, "not in this share");
    }
    if (!w->dw)
        return http_reply_error(rq, 503, "images are not served by this server");
    if (!seen_recently(w, sh->id, seg[3])) {
        rs_buf d = RS_BUF_INIT;
        if (rs_buf_puts(&d, "{\"series\":") == RS_OK && audit_json_string(&d, seg[3], 64) == RS_OK &&
            rs_buf_putc(&d, '}') == RS_OK)
            audit_rq(w, rq, "images.viewed", sh, (const char *)d.p);
        rs_buf_free(&d);
    }
    /* no_store: the viewer keeps its own in-page cache; the browser's must not outlive a revocation */
    dw_target t = {.study = seg[1], .series = seg[3], .instance = rendered ? seg[5] : NULL, .no_store = 1};
    if (batch)
        return wado_render_batch(w->dw, rq, &t, http_req_query(rq, "instances"));
    if (rendered)
        snprintf(t.rest, sizeof t.rest, "frames/%s/rendered", seg[7]);
    else
        snprintf(t.rest, sizeof t.rest, "thumbnail");
    return wado_retrieve(w->dw, rq, &t);
}

/* The first image too, at the viewport the viewer asks when the stage is at least the image's
   size (most screens, for images up to 768 pixels; a wrong guess costs one unused image). With
   an access code there is nothing to preload before the code is given. */
static void preload_first_image(share_web *w, http_req *rq, const share *sh, const char *token)
{
    share_image fi;
    rs_err err;
    rs_err_clear(&err);
    if (sh->code_kind != SHARE_CODE_NONE || share_first_image(w->st, sh, &fi, &err) != RS_OK)
        return;
    uint32_t vp = fi.rows > fi.cols ? fi.rows : fi.cols;
    char link[512];
    if (vp == 0 || vp > 768 ||
        snprintf(link, sizeof link, "</s/%.64s/studies/%s/series/%s/instances/%s/frames/%u/rendered?viewport=%u,%u&quality=90>;"
                 " rel=preload; as=fetch; crossorigin", token, sh->study_uid, fi.series, fi.sop, fi.frame, vp, vp) >= (int)sizeof link)
        return;
    http_set_header(rq, "Link", link);
}

static int share_route(http_req *rq, void *ctx)
{
    share_web *w = ctx;
    char path[1024], *seg[12];
    if (snprintf(path, sizeof path, "%s", http_req_subpath(rq)) >= (int)sizeof path)
        return http_reply_error(rq, 404, "no such resource");
    int n = http_split_path(path, seg, 12);
    if (n < 1)
        return http_reply_error(rq, 404, "no such resource");
    const char *token = seg[0];
    char rest[64];
    snprintf(rest, sizeof rest, "%s", n > 1 ? seg[1] : "");
    share sh;
    share_status st;
    int64_t retry;
    rs_err err;
    rs_err_clear(&err);
    if (share_resolve(w->shares, token, http_req_peer(rq), now_s(), &sh, &st, &retry, &err))
        return http_reply_error(rq, 503, "%s", err.msg);
    int post = !strcmp(http_req_method(rq), "POST"), rc;
    if (st != SHARE_OK)
        rc = refuse(w, rq, st, &sh, retry, rest);
    else if (n == 1 && !post) {
        audit_rq(w, rq, "share.opened", &sh, NULL);
        no_leak_headers(rq);
        /* the browser asks study.json while it is still fetching the scripts that need it:
           one round trip less before the first image (the viewer's fetch takes the preload) */
        char link[512];
        snprintf(link, sizeof link, "</s/%.64s/study.json>; rel=preload; as=fetch; crossorigin", token);
        http_set_header(rq, "Link", link);
        preload_first_image(w, rq, &sh, token);
        rc = http_reply_asset(rq, "index.html", "no-store");
    } else if (n == 2 && post && !strcmp(rest, "unlock"))
        rc = do_unlock(w, rq, &sh, token);
    else if (post)
        rc = http_reply_error(rq, 405, "method not allowed");
    else if (!unlocked(w, rq, &sh))
        rc = need_code(rq, &sh);
    else if (n == 2 && !strcmp(rest, "study.json"))
        rc = do_study_json(w, rq, &sh);
    else if (n == 2 && !strcmp(rest, "download"))
        rc = share_download_reply(rq, w->datadir, w->audit, &sh);
    else if (n >= 5)
        rc = do_image(w, rq, &sh, seg + 1, n - 1);
    else
        rc = http_reply_error(rq, 404, "no such resource");
    share_clear(&sh);
    return rc;
}

/* ---- staff API ---------------------------------------------------------------------------------- */

/* The staff user behind a request the auth hook let through ("" for the loopback bootstrap). */
static void who(share_web *w, http_req *rq, char out[AUTH_MAX_NAME + 1])
{
    auth_user u;
    char sid[TOKEN_CHARS + 2];
    out[0] = 0;
    if (auth_cookie_get(http_req_header(rq, "Cookie"), AUTH_COOKIE, sid, sizeof sid) &&
        auth_session_lookup(w->auth, sid, now_s(), &u, NULL) == RS_OK)
        memcpy(out, u.name, sizeof u.name);
    else if (auth_check_header(w->auth, http_req_header(rq, "Authorization"), &u, NULL) == RS_OK)
        memcpy(out, u.name, sizeof u.name);
}

static const char *base_url(share_web *w, http_req *rq)
{
    return w->public_url[0] ? w->public_url : http_req_base_url(rq);
}

static int reply_rc(http_req *rq, int rc, const rs_err *err)
{
    return http_reply_error(rq, http_status_for(rc), "%s", err->msg[0] ? err->msg : rs_strerror(rc));
}

static int create_share(share_web *w, http_req *rq)
{
    const void *p;
    size_t n;
    jsonin j;
    rs_err err;
    rs_err_clear(&err);
    http_req_body(rq, &p, &n);
    int rc = jsonin_parse(p, n, &j, &err);
    if (rc)
        return http_reply_error(rq, 400, "%s", err.msg);
    char by[AUTH_MAX_NAME + 1];
    who(w, rq, by);
    const char *series[SHARE_MAX_SERIES];
    share_new q = {.study_uid = jsonin_str(&j, "study"), .series = series, .created_by = by[0] ? by : "local"};
    for (size_t i = 0; i < j.n && q.n_series < SHARE_MAX_SERIES; i++)
        if (!strcmp(j.items[i].path, "series") && j.items[i].type == JSONIN_STRING)
            series[q.n_series++] = j.items[i].value;
    q.name = jsonin_str(&j, "recipient.name");
    q.email = jsonin_str(&j, "recipient.email");
    q.hl7 = jsonin_str(&j, "recipient.hl7");
    q.purpose = jsonin_str(&j, "purpose");
    q.access_code = jsonin_str(&j, "access_code");
    q.birth_date = jsonin_str(&j, "birth_date");
    const jsonin_item *days = jsonin_get(&j, "expires_in_days");
    const char *kind = jsonin_str(&j, "recipient.kind");
    if (kind && share_kind_parse(kind, &q.kind))
        rc = rs_err_set(&err, RS_EINVAL, "recipient.kind is practitioner or patient");
    if (days) {
        double d = days->type == JSONIN_NUMBER ? atof(days->value) : -1;
        if (d < 1 || d > SHARE_MAX_DAYS || d != (double)(long)d)
            rc = rs_err_set(&err, RS_EINVAL, "expires_in_days must be a whole number 1..%d", SHARE_MAX_DAYS);
        q.expires_in_s = (int64_t)d * 86400;
    }
    q.download = jsonin_true(&j, "download");
    int qr = jsonin_true(&j, "qr");
    int exists = rc == RS_OK && q.study_uid && dw_uid_ok(q.study_uid) && share_study_exists(w->st, q.study_uid);
    char tok[TOKEN_CHARS + 1], id[SHARE_ID_CHARS + 1];
    if (rc == RS_OK && !exists)
        rc = rs_err_set(&err, q.study_uid ? RS_ENOTFOUND : RS_EINVAL, q.study_uid ? "no such study" : "study is required");
    rc = rc ? rc : share_create(w->shares, &q, now_s(), tok, id, &err);
    jsonin_free(&j);
    if (rc)
        return reply_rc(rq, rc, &err);
    share sh;
    rs_buf b = RS_BUF_INIT, d = RS_BUF_INIT;
    rc = share_get(w->shares, id, &sh, &err);
    if (rc)
        return reply_rc(rq, rc, &err);
    rc = rs_buf_printf(&d, "{\"by\":");
    rc = rc ? rc : audit_json_string(&d, sh.created_by, 128);
    rc = rc ? rc : rs_buf_printf(&d, ",\"kind\":\"%s\",\"expires\":%lld,\"download\":%s,\"code\":%s}",
                                 share_kind_name(sh.kind), (long long)sh.expires, sh.download ? "true" : "false",
                                 sh.code_kind ? "true" : "false");
    if (rc == RS_OK)
        audit_rq(w, rq, "share.created", &sh, (const char *)d.p);
    rs_buf url = RS_BUF_INIT, svg = RS_BUF_INIT;
    rc = rc ? rc : rs_buf_printf(&url, "%s/s/%s", base_url(w, rq), tok);
    rc = rc ? rc : rs_buf_printf(&b, "{\"id\":\"%s\",\"url\":", id);
    rc = rc ? rc : http_json_str(&b, (const char *)url.p);
    /* the handout's QR code: now or never, the token is not kept (qr.h) */
    if (rc == RS_OK && qr && share_qr_svg((const char *)url.p, &svg, &err) == RS_OK) {
        rc = rs_buf_puts(&b, ",\"qr_svg\":");
        rc = rc ? rc : http_json_str(&b, (const char *)svg.p);
    }
    rc = rc ? rc : rs_buf_puts(&b, ",\"share\":");
    rc = rc ? rc : share_json(&b, &sh);
    rc = rc ? rc : rs_buf_putc(&b, '}');
    memset(tok, 0, sizeof tok);
    if (url.p)
        memset(url.p, 0, url.len);
    rs_buf_free(&url);
    rs_buf_free(&svg);
    http_set_header(rq, "Cache-Control", "no-store");
    rc = rc ? http_reply_error(rq, 503, "out of memory") : http_reply_json(rq, 201, &b);
    share_clear(&sh);
    rs_buf_free(&b);
    rs_buf_free(&d);
    return rc;
}

typedef struct list_out {
    rs_buf b;
    int n;
} list_out;

static int list_one(const share *sh, void *ctx)
{
    list_out *o = ctx;
    return (o->n++ ? rs_buf_putc(&o->b, ',') : RS_OK) || share_json(&o->b, sh);
}

static int api_shares(http_req *rq, void *ctx)
{
    share_web *w = ctx;
    const char *m = http_req_method(rq), *sub = http_req_subpath(rq);
    rs_err err;
    rs_err_clear(&err);
    if (!sub[0] && !strcmp(m, "POST"))
        return create_share(w, rq);
    if (!sub[0] && (!strcmp(m, "GET") || !strcmp(m, "HEAD"))) {
        const char *study = http_req_query(rq, "study");
        if (study && !dw_uid_ok(study))
            return http_reply_error(rq, 400, "bad study UID");
        list_out o = {RS_BUF_INIT, 0};
        int rc = rs_buf_puts(&o.b, "{\"shares\":[");
        rc = rc ? rc : share_list(w->shares, study, list_one, &o, &err);
        rc = rc ? rc : rs_buf_puts(&o.b, "]}");
        rc = rc ? reply_rc(rq, rc, &err) : http_reply_json(rq, 200, &o.b);
        rs_buf_free(&o.b);
        return rc;
    }
    if (!sub[0] || strchr(sub, '/') || strlen(sub) != SHARE_ID_CHARS)
        return http_reply_error(rq, 404, "no such share");
    share sh;
    int rc = share_get(w->shares, sub, &sh, &err);
    if (rc)
        return reply_rc(rq, rc, &err);
    if (!strcmp(m, "DELETE")) {
        char by[AUTH_MAX_NAME + 1];
        who(w, rq, by);
        rc = share_revoke(w->shares, sh.id, by[0] ? by : "local", now_s(), &err);
        share_clear(&sh);
        if (rc == RS_OK)
            rc = share_get(w->shares, sub, &sh, &err);
        if (rc)
            return reply_rc(rq, rc, &err);
        rs_buf d = RS_BUF_INIT;
        if (rs_buf_puts(&d, "{\"by\":") == RS_OK && audit_json_string(&d, sh.revoked_by, 128) == RS_OK &&
            rs_buf_putc(&d, '}') == RS_OK)
            audit_rq(w, rq, "share.revoked", &sh, (const char *)d.p);
        rs_buf_free(&d);
    } else if (strcmp(m, "GET") && strcmp(m, "HEAD")) {
        share_clear(&sh);
        return http_reply_error(rq, 405, "method %s not allowed here", m);
    }
    rs_buf b = RS_BUF_INIT;
    rc = share_json(&b, &sh);
    rc = rc ? http_reply_error(rq, 503, "out of memory") : http_reply_json(rq, 200, &b);
    share_clear(&sh);
    rs_buf_free(&b);
    return rc;
}

typedef struct audit_out {
    rs_buf b;
    int n;
} audit_out;

static int audit_one(const audit_record *r, void *ctx)
{
    audit_out *o = ctx;
    return (o->n++ ? rs_buf_putc(&o->b, ',') : RS_OK) || rs_buf_append(&o->b, r->line, r->len);
}

static int audit_reply(share_web *w, http_req *rq, const char *study, const char *share_id)
{
    audit_out o = {RS_BUF_INIT, 0};
    rs_err err;
    rs_err_clear(&err);
    if ((study && !dw_uid_ok(study)) || (share_id && strlen(share_id) != SHARE_ID_CHARS) || (!study && !share_id))
        return http_reply_error(rq, 400, "give study=UID or share=ID");
    int rc = rs_buf_puts(&o.b, "{\"records\":[");
    rc = rc ? rc : audit_query(w->datadir, study, share_id, audit_one, &o, &err);
    rc = rc ? rc : rs_buf_puts(&o.b, "]}");
    rc = rc ? reply_rc(rq, rc, &err) : http_reply_json(rq, 200, &o.b);
    rs_buf_free(&o.b);
    return rc;
}

int share_web_study_audit(http_req *rq, share_web *w, const char *study_uid)
{
    return audit_reply(w, rq, study_uid, NULL);
}

static int api_audit(http_req *rq, void *ctx)
{
    return audit_reply(ctx, rq, http_req_query(rq, "study"), http_req_query(rq, "share"));
}

/* ---- cross-site requests -------------------------------------------------------------------------- */

/* Length of the "scheme://host[:port]" part of an absolute URL, 0 when it is not one. */
static size_t origin_len(const char *url)
{
    const char *p = strstr(url, "://");
    return p ? (size_t)(p + 3 - url) + strcspn(p + 3, "/?#") : 0;
}

static int same_origin(const char *origin, const char *url)
{
    size_t n = origin_len(url);
    return n && strlen(origin) == n && !strncasecmp(origin, url, n);
}

/* A state-changing request that a page of another site made the browser send (CSRF). Browsers say
 * where a request comes from (Sec-Fetch-Site, Origin); other clients (curl, a RIS) send neither.
 * The session cookie is SameSite=Strict already; this also covers Basic credentials a browser
 * remembers and the loopback bootstrap, which needs no credentials at all. */
static int cross_site(share_web *w, http_req *rq)
{
    const char *m = http_req_method(rq);
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS"))
        return 0;
    const char *sfs = http_req_header(rq, "Sec-Fetch-Site");
    if (sfs && strcmp(sfs, "same-origin") && strcmp(sfs, "none"))
        return 1;
    const char *o = http_req_header(rq, "Origin");
    return o && !same_origin(o, http_req_base_url(rq)) && !(w->public_url[0] && same_origin(o, w->public_url));
}

/* The loopback bootstrap trusts this machine, not every page its browser shows: a DNS name rebound
 * to 127.0.0.1 by a web site (or a reverse proxy on this machine, passing on the public name) must
 * not get in. Such requests carry a dotted DNS name in Host; a browser at an IP literal or a
 * single-label name (localhost, the machine's own name) is this machine's user. */
static int host_is_local(http_req *rq)
{
    const char *h = http_req_header(rq, "Host");
    if (!h || h[0] == '[')
        return 1;
    size_t n = strcspn(h, ":");
    if (strspn(h, "0123456789.") == n || !memchr(h, '.', n))
        return 1;
    static const char suffix[] = ".localhost";
    return n >= sizeof suffix - 1 && !strncasecmp(h + n - (sizeof suffix - 1), suffix, sizeof suffix - 1);
}

static int open_bootstrap(share_web *w, http_req *rq)
{
    int users = 1;
    return auth_user_count(w->auth, &users, NULL) == RS_OK && users == 0 && http_req_peer_is_loopback(rq) &&
           host_is_local(rq);
}

/* ---- login and the auth hook -------------------------------------------------------------------- */

/* Failed staff logins (form or Basic) per address: 1 and *retry when over the limit. */
static int login_locked(share_web *w, http_req *rq, int64_t *retry)
{
    char b[96];
    snprintf(b, sizeof b, "login:%.64s", http_req_peer(rq));
    return share_limit_locked(w->shares, b, LOGIN_MAX, LOGIN_WINDOW, now_s(), retry, NULL) == 1;
}

static void login_failed(share_web *w, http_req *rq)
{
    char b[96];
    snprintf(b, sizeof b, "login:%.64s", http_req_peer(rq));
    share_limit_fail(w->shares, b, now_s(), NULL);
}

static int api_login(http_req *rq, void *ctx)
{
    share_web *w = ctx;
    const void *p;
    size_t n;
    jsonin j;
    rs_err err;
    rs_err_clear(&err);
    http_req_body(rq, &p, &n);
    if (cross_site(w, rq))
        return http_reply_error(rq, 403, "cross-site request refused");
    if (n > 8192 || jsonin_parse(p, n, &j, &err))
        return http_reply_error(rq, 400, "expected {\"user\": \"...\", \"password\": \"...\"}");
    auth_user u;
    char sid[TOKEN_CHARS + 1];
    int64_t retry;
    if (login_locked(w, rq, &retry)) {
        jsonin_free(&j);
        set_retry_after(rq, retry);
        audit_rq(w, rq, "staff.login_locked", NULL, NULL);
        return http_reply_error(rq, 429, "too many failed logins from your address");
    }
    int rc = auth_check_basic(w->auth, jsonin_str(&j, "user"), jsonin_str(&j, "password"), &u, &err);
    if (rc == RS_ENOTFOUND)
        login_failed(w, rq);
    rs_buf d = RS_BUF_INIT;
    if (rs_buf_puts(&d, "{\"user\":") == RS_OK && audit_json_string(&d, jsonin_str(&j, "user"), 64) == RS_OK &&
        rs_buf_putc(&d, '}') == RS_OK)
        audit_rq(w, rq, rc == RS_OK ? "staff.login" : "staff.login_failed", NULL, (const char *)d.p);
    rs_buf_free(&d);
    jsonin_free(&j);
    if (rc)
        return http_reply_error(rq, rc == RS_ENOTFOUND ? 401 : 503, "%s", err.msg);
    if ((rc = auth_session_create(w->auth, u.name, now_s(), sid, &err)))
        return reply_rc(rq, rc, &err);
    rs_buf c = RS_BUF_INIT, b = RS_BUF_INIT;
    rc = auth_cookie_format(&c, AUTH_COOKIE, sid, "/", AUTH_SESSION_MAX_S, w->secure);
    rc = rc ? rc : http_set_header(rq, "Set-Cookie", (const char *)c.p);
    rc = rc ? rc : rs_buf_printf(&b, "{\"user\":\"%s\",\"role\":\"%s\"}", u.name, auth_role_name(u.role));
    rc = rc ? http_reply_error(rq, 503, "out of memory") : http_reply_json(rq, 200, &b);
    rs_buf_free(&c);
    rs_buf_free(&b);
    return rc;
}

static int api_logout(http_req *rq, void *ctx)
{
    share_web *w = ctx;
    char sid[TOKEN_CHARS + 2];
    if (cross_site(w, rq))
        return http_reply_error(rq, 403, "cross-site request refused");
    if (auth_cookie_get(http_req_header(rq, "Cookie"), AUTH_COOKIE, sid, sizeof sid))
        auth_session_end(w->auth, sid, NULL);
    rs_buf c = RS_BUF_INIT, b = RS_BUF_INIT;
    int rc = auth_cookie_format(&c, AUTH_COOKIE, "x", "/", 0, w->secure);
    rc = rc ? rc : http_set_header(rq, "Set-Cookie", (const char *)c.p);
    rc = rc ? rc : rs_buf_puts(&b, "{\"logged_out\":true}");
    rc = rc ? http_reply_error(rq, 503, "out of memory") : http_reply_json(rq, 200, &b);
    rs_buf_free(&c);
    rs_buf_free(&b);
    return rc;
}

int share_web_auth(http_req *rq, void *ctx)
{
    share_web *w = ctx;
    auth_user u;
    char sid[TOKEN_CHARS + 2];
    const char *authz = http_req_header(rq, "Authorization");
    int ok = 0;
    if (cross_site(w, rq))
        return -403;
    if (auth_cookie_get(http_req_header(rq, "Cookie"), AUTH_COOKIE, sid, sizeof sid))
        ok = auth_session_lookup(w->auth, sid, now_s(), &u, NULL) == RS_OK;
    int64_t retry;
    if (!ok && authz && login_locked(w, rq, &retry)) {
        set_retry_after(rq, retry);
        return -429;
    }
    if (!ok && authz && !(ok = auth_check_header(w->auth, authz, &u, NULL) == RS_OK)) {
        login_failed(w, rq);
        audit_rq(w, rq, "staff.login_failed", NULL, "{\"via\":\"basic\"}");
    }
    if (ok)
        return u.role == AUTH_ADMIN ? HTTP_ROLE_ADMIN : HTTP_ROLE_STAFF;
    if (!authz && open_bootstrap(w, rq))
        return HTTP_ROLE_STAFF;
    /* the staff page's own requests say so: a challenge would make the browser pop up its Basic dialog
       over the page's sign-in form */
    if (!http_req_header(rq, "X-Requested-With"))
        http_set_header(rq, "WWW-Authenticate", "Basic realm=\"radshare\", charset=\"UTF-8\"");
    return -401;
}

/* GET /api/session: who the staff page is talking for, without a challenge. */
static int api_session(http_req *rq, void *ctx)
{
    share_web *w = ctx;
    auth_user u;
    char sid[TOKEN_CHARS + 2];
    rs_buf b = RS_BUF_INIT;
    int rc;
    if (auth_cookie_get(http_req_header(rq, "Cookie"), AUTH_COOKIE, sid, sizeof sid) &&
        auth_session_lookup(w->auth, sid, now_s(), &u, NULL) == RS_OK)
        rc = rs_buf_printf(&b, "{\"user\":\"%s\",\"role\":\"%s\"}", u.name, auth_role_name(u.role));
    else
        rc = rs_buf_printf(&b, "{\"user\":null,\"open\":%s}", open_bootstrap(w, rq) ? "true" : "false");
    http_set_header(rq, "Cache-Control", "no-store");
    rc = rc ? http_reply_error(rq, 503, "out of memory") : http_reply_json(rq, 200, &b);
    rs_buf_free(&b);
    return rc;
}

/* ---- staff accounts (the staff page's user management) -------------------------------------------- */

/* A user.* audit record: {"user": NAME, "by": WHO[, "role": ROLE]} - never a password. */
static void audit_user(share_web *w, http_req *rq, const char *event, const char *user, const char *by,
                       const char *role)
{
    rs_buf d = RS_BUF_INIT;
    int rc = rs_buf_puts(&d, "{\"user\":");
    rc = rc ? rc : audit_json_string(&d, user, AUTH_MAX_NAME);
    rc = rc ? rc : rs_buf_puts(&d, ",\"by\":");
    rc = rc ? rc : audit_json_string(&d, by[0] ? by : "local", AUTH_MAX_NAME);
    if (role)
        rc = rc ? rc : rs_buf_printf(&d, ",\"role\":\"%s\"", role);
    rc = rc ? rc : rs_buf_putc(&d, '}');
    if (rc == RS_OK)
        audit_rq(w, rq, event, NULL, (const char *)d.p);
    rs_buf_free(&d);
}

static int user_one(const auth_user *u, void *ctx)
{
    list_out *o = ctx;
    int rc = rs_buf_puts(&o->b, o->n++ ? ",{\"name\":" : "{\"name\":");
    rc = rc ? rc : http_json_str(&o->b, u->name);
    return rc ? rc : rs_buf_printf(&o->b, ",\"role\":\"%s\",\"disabled\":%s,\"created\":%lld}",
                                   auth_role_name(u->role), u->disabled ? "true" : "false", (long long)u->created);
}

static int reply_user(share_web *w, http_req *rq, int status, const char *name)
{
    auth_user u;
    list_out o = {RS_BUF_INIT, 0};
    int rc = auth_user_get(w->auth, name, &u, NULL);
    rc = rc ? rc : user_one(&u, &o);
    rc = rc ? http_reply_error(rq, 503, "cannot read the account") : http_reply_json(rq, status, &o.b);
    rs_buf_free(&o.b);
    return rc;
}

/* POST /api/users {"name","role","password"}: an admin adds an account; or, on the loopback bootstrap
 * (no account yet, this machine's browser), the first admin account. */
static int user_create(share_web *w, http_req *rq, const jsonin *j, const char *by)
{
    rs_err err;
    rs_err_clear(&err);
    const char *name = jsonin_str(j, "name"), *pw = jsonin_str(j, "password"), *rs = jsonin_str(j, "role");
    auth_role role = AUTH_RADIOLOGIST;
    int rc;
    if (http_req_role(rq) == HTTP_ROLE_ADMIN) {
        if (auth_role_parse(rs ? rs : "", &role))
            return http_reply_error(rq, 400, "role is radiologist or admin");
        rc = auth_user_add(w->auth, name, role, pw, now_s(), &err);
    } else if (open_bootstrap(w, rq)) {
        if (rs && strcmp(rs, "admin"))
            return http_reply_error(rq, 400, "the first account is an admin");
        role = AUTH_ADMIN;
        rc = auth_user_add_first(w->auth, name, pw, now_s(), &err);
    } else {
        return http_reply_error(rq, 403, "only an admin manages accounts");
    }
    if (rc)
        return reply_rc(rq, rc, &err);
    audit_user(w, rq, "user.created", name, by, auth_role_name(role));
    return reply_user(w, rq, 201, name);
}

/* POST /api/users/{name}/password {"password"[, "current"]}: an admin resets anyone's; a user changes
 * their own with the current one (throttled like a login: it is a password check). */
static int user_password(share_web *w, http_req *rq, const jsonin *j, const char *name, const char *by)
{
    rs_err err;
    rs_err_clear(&err);
    int self = by[0] && !strcmp(by, name), rc;
    char sid[TOKEN_CHARS + 2];
    if (!self && http_req_role(rq) != HTTP_ROLE_ADMIN)
        return http_reply_error(rq, 403, "only an admin sets another user's password");
    if (self && http_req_role(rq) != HTTP_ROLE_ADMIN) {
        auth_user u;
        int64_t retry;
        if (login_locked(w, rq, &retry)) {
            set_retry_after(rq, retry);
            return http_reply_error(rq, 429, "too many failed password checks from your address");
        }
        if ((rc = auth_check_basic(w->auth, name, jsonin_str(j, "current"), &u, &err)) == RS_ENOTFOUND) {
            login_failed(w, rq);
            return http_reply_error(rq, 403, "the current password is not right");
        }
        if (rc)
            return reply_rc(rq, rc, &err);
    }
    int have_sid = self && auth_cookie_get(http_req_header(rq, "Cookie"), AUTH_COOKIE, sid, sizeof sid);
    if ((rc = auth_user_set_password(w->auth, name, jsonin_str(j, "password"), have_sid ? sid : NULL, &err)))
        return reply_rc(rq, rc, &err);
    audit_user(w, rq, "user.password_changed", name, by, NULL);
    return reply_user(w, rq, 200, name);
}

static int api_users(http_req *rq, void *ctx)
{
    share_web *w = ctx;
    const char *m = http_req_method(rq), *sub = http_req_subpath(rq);
    char by[AUTH_MAX_NAME + 1], name[AUTH_MAX_NAME + 1];
    rs_err err;
    rs_err_clear(&err);
    who(w, rq, by);
    int admin = http_req_role(rq) == HTTP_ROLE_ADMIN;
    if (!sub[0] && !strcmp(m, "GET")) {
        if (!admin)
            return http_reply_error(rq, 403, "only an admin manages accounts");
        list_out o = {RS_BUF_INIT, 0};
        int rc = rs_buf_puts(&o.b, "{\"users\":[");
        rc = rc ? rc : auth_user_list(w->auth, user_one, &o, &err);
        rc = rc ? rc : rs_buf_puts(&o.b, "]}");
        rc = rc ? reply_rc(rq, rc, &err) : http_reply_json(rq, 200, &o.b);
        rs_buf_free(&o.b);
        return rc;
    }
    /* "" or "{name}/{action}" */
    const char *slash = strchr(sub, '/'), *action = slash ? slash + 1 : "";
    size_t nl = slash ? (size_t)(slash - sub) : 0;
    if (strcmp(m, "POST") || (sub[0] && (!slash || !nl || nl > AUTH_MAX_NAME)))
        return http_reply_error(rq, 404, "no such resource");
    const void *p;
    size_t n;
    jsonin j;
    http_req_body(rq, &p, &n);
    if (n > 4096 || jsonin_parse(n ? p : "{}", n ? n : 2, &j, &err))
        return http_reply_error(rq, 400, "expected a JSON object");
    int rc;
    memcpy(name, sub, nl);
    name[nl] = 0;
    if (!sub[0]) {
        rc = user_create(w, rq, &j, by);
    } else if (!strcmp(action, "password")) {
        rc = user_password(w, rq, &j, name, by);
    } else if (!strcmp(action, "disable") || !strcmp(action, "enable")) {
        int off = action[0] == 'd';
        if (!admin)
            rc = http_reply_error(rq, 403, "only an admin manages accounts");
        else if (off && !strcmp(name, by))
            rc = http_reply_error(rq, 400, "you cannot disable your own account");
        else if ((rc = auth_user_set_disabled(w->auth, name, off, &err)))
            rc = reply_rc(rq, rc, &err);
        else {
            audit_user(w, rq, off ? "user.disabled" : "user.enabled", name, by, NULL);
            rc = reply_user(w, rq, 200, name);
        }
    } else {
        rc = http_reply_error(rq, 404, "no such resource");
    }
    jsonin_free(&j);
    return rc;
}

/* GET /staff: the staff page (src/web/staff.html; its script and style are served under /viewer/ like
   the viewer's), under a strict CSP: nothing but radshare's own files, the QR image as a blob: URL. */
static int staff_page(http_req *rq, void *ctx)
{
    if (*http_req_subpath(rq))
        return http_reply_error(rq, 404, "no such page");
    http_set_header(rq, "Content-Security-Policy",
                    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
                    "form-action 'self'; frame-ancestors 'none'");
    http_set_header(rq, "Referrer-Policy", "no-referrer"); /* links shown in the page carry tokens */
    return http_reply_asset(rq, "staff.html", NULL);
}

/* ---- setup --------------------------------------------------------------------------------------- */

int share_web_open(const char *datadir, const share_web_opts *o, store *st, share_web **out, rs_err *err)
{
    *out = NULL;
    share_web *w = calloc(1, sizeof *w);
    if (!w)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    pthread_mutex_init(&w->mu, NULL);
    w->st = st;
    int rc = snprintf(w->datadir, sizeof w->datadir, "%s", datadir) < (int)sizeof w->datadir
                 ? RS_OK : rs_err_set(err, RS_EINVAL, "data directory path too long");
    const char *pu = o && o->public_url ? o->public_url : "";
    size_t pl = strlen(pu);
    while (pl && pu[pl - 1] == '/')
        pl--;
    if (rc == RS_OK && (pl >= sizeof w->public_url || strpbrk(pu, "\"<> \r\n")))
        rc = rs_err_set(err, RS_EINVAL, "bad public URL");
    if (rc == RS_OK) {
        memcpy(w->public_url, pu, pl);
        w->secure = !strncmp(pu, "https://", 8);
    }
    rc = rc ? rc : share_open(datadir, o && o->default_days ? o->default_days : SHARE_DEFAULT_DAYS, &w->shares, err);
    rc = rc ? rc : auth_open(datadir, &w->auth, err);
    rc = rc ? rc : audit_open(datadir, o ? o->audit_file_bytes : 0, &w->audit, err);
    if (rc) {
        share_web_free(w);
        return rc;
    }
    *out = w;
    return RS_OK;
}

void share_web_set_dicomweb(share_web *w, dicomweb *dw)
{
    w->dw = dw;
}

void share_web_set_report_source(share_web *w, share_web_report_fn fn, void *ctx)
{
    w->report_fn = fn;
    w->report_ctx = ctx;
}

void share_web_free(share_web *w)
{
    if (!w)
        return;
    share_close(w->shares);
    auth_close(w->auth);
    audit_close(w->audit);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

audit_log *share_web_audit(share_web *w)
{
    return w->audit;
}

share_db *share_web_shares(share_web *w)
{
    return w->shares;
}

int share_web_register(http_server *srv, share_web *w, rs_err *err)
{
    static const http_route_opts staff = {.flags = HTTP_ROUTE_STAFF, .max_body = 64 << 10};
    static const http_route_opts small = {.max_body = 8 << 10};
    int rc = http_server_route_opts(srv, "GET", "/s/", share_route, w, &small);
    rc = rc ? rc : http_server_route_opts(srv, "POST", "/s/", share_route, w, &small);
    rc = rc ? rc : http_server_route_opts(srv, "POST", "/api/shares", api_shares, w, &staff);
    rc = rc ? rc : http_server_route_opts(srv, "GET", "/api/shares", api_shares, w, &staff);
    rc = rc ? rc : http_server_route_opts(srv, "DELETE", "/api/shares", api_shares, w, &staff);
    rc = rc ? rc : http_server_route_opts(srv, "GET", "/api/audit", api_audit, w, &staff);
    rc = rc ? rc : http_server_route_opts(srv, "POST", "/api/login", api_login, w, &small);
    rc = rc ? rc : http_server_route_opts(srv, "POST", "/api/logout", api_logout, w, &small);
    rc = rc ? rc : http_server_route_opts(srv, "GET", "/api/session", api_session, w, &small);
    rc = rc ? rc : http_server_route_opts(srv, "GET", "/staff", staff_page, w, &small);
    rc = rc ? rc : http_server_route_opts(srv, "GET", "/api/users", api_users, w, &staff);
    rc = rc ? rc : http_server_route_opts(srv, "POST", "/api/users", api_users, w, &staff);
    return rc ? rs_err_set(err, rc, "cannot register the share routes") : RS_OK;
}
