/*
 * routes.h - the web side of share links on top of the http module:
 *   GET  /s/{token}                 the viewer page (410 page if expired/revoked, 404 unknown, 429 throttled)
 *   GET  /s/{token}/study.json      the shared study (401 {"need_code":true,...} before the access code)
 *   POST /s/{token}/unlock          {"code": "..."} -> unlock cookie (HttpOnly, SameSite=Strict, Path=/s/{token})
 *   GET  /s/{token}/studies/{st}/series/{se}/thumbnail
 *   GET  /s/{token}/studies/{st}/series/{se}/instances/{sop}/frames/{n}/rendered
 *                                   scoped (404 outside the share), then the same code as WADO-RS
 *   GET  /s/{token}/download        404 unless the share allows it; the ZIP itself is not built here
 *   POST /api/shares, GET /api/shares[?study=UID], GET|DELETE /api/shares/{id}   (staff)
 *   GET  /api/audit?study=UID|share=ID   (staff) and share_web_study_audit for /api/studies/{uid}/audit
 *   POST /api/login {"user","password"} -> session cookie; POST /api/logout
 *   GET  /api/session               who the caller is: {"user","role"} or {"user":null,"open":bool}
 *   GET|POST /api/users, POST /api/users/{name}/disable|enable|password   staff accounts (admin; a user
 *                                   their own password; the first admin on the loopback bootstrap)
 *   GET  /staff                     the staff page (src/web/staff/, docs/staff.md); /staff/{file} its assets
 * plus share_web_auth, the http auth hook (Basic or session cookie).
 *
 * Every access to a share, granted or refused, is appended to the audit trail with the share id
 * (never the token), the peer address and the user agent.
 */
#ifndef RS_SHARE_ROUTES_H
#define RS_SHARE_ROUTES_H

#include "../audit/audit.h"
#include "../auth/users.h"
#include "../http/dicomweb.h"
#include "../http/http.h"
#include "../store/store.h"
#include "share.h"

typedef struct share_web share_web;

typedef struct share_web_opts {
    const char *public_url;   /* "https://pacs.example.org" (no trailing /); NULL: the request's Host */
    int default_days;         /* 0: SHARE_DEFAULT_DAYS */
    uint64_t audit_file_bytes; /* 0: AUDIT_DEFAULT_FILE_BYTES */
} share_web_opts;

/* Opens share_db, auth_db and the audit log of datadir. st must outlive it. */
int share_web_open(const char *datadir, const share_web_opts *o, store *st, share_web **out, rs_err *err);
/* The DICOMweb context whose WADO-RS code serves rendered frames (set after dicomweb_register). */
void share_web_set_dicomweb(share_web *w, dicomweb *dw);
int share_web_register(http_server *srv, share_web *w, rs_err *err);
void share_web_free(share_web *w);

/* http_config.auth (auth_ctx = the share_web). Basic credentials or the session cookie; radiologist ->
 * HTTP_ROLE_STAFF, admin -> HTTP_ROLE_ADMIN; -401 with WWW-Authenticate otherwise. While no account
 * exists at all, loopback peers pass as staff (first start, tests of other modules). */
int share_web_auth(http_req *rq, void *ctx);

/* GET /api/studies/{uid}/audit, for the api module's router to call: {"records":[...]} */
int share_web_study_audit(http_req *rq, share_web *w, const char *study_uid);

/* Where study.json's "report" comes from (the report module, wired by serve): append the report
 * of share_id as a JSON object to out and return RS_OK, or RS_ENOTFOUND (then "report": null). */
typedef int (*share_web_report_fn)(void *ctx, const char *share_id, rs_buf *out);
void share_web_set_report_source(share_web *w, share_web_report_fn fn, void *ctx);

/* For other modules (report): the audit log and the share db this context owns. */
audit_log *share_web_audit(share_web *w);
share_db *share_web_shares(share_web *w);

#endif
