/*
 * routes.h - the staff HTTP side of reports, on top of the share and report modules:
 *   POST /api/studies/{uid}/reports   {"text", "recipient": {"name","email","hl7"}, "expires_in_days",
 *                                      "download", "access_code"} -> a share for the recipient, the report
 *                                      with its link queued in the outbox; 201 {"report","share":{"id","url"},
 *                                      "deliveries":[...]}
 *   GET  /api/studies/{uid}/reports   {"study","referring","recipient":{"name","email","hl7"}|null,
 *                                      "deliveries":[...]}: every delivery of the study's reports, and whom
 *                                      a report would go to by default (the directory's entry, for forms)
 * The api module's /api/studies router calls report_web_study for the "reports" sub-resource
 * (api_ctx.study_sub), so authentication is the staff hook of every /api route.
 */
#ifndef REPORT_ROUTES_H
#define REPORT_ROUTES_H

#include "../http/http.h"
#include "../share/routes.h"
#include "service.h"

typedef struct report_web report_web;

/* svc, sw and st must outlive it. */
int report_web_open(const char *datadir, report_service *svc, share_web *sw, store *st, report_web **out, rs_err *err);
void report_web_free(report_web *w);

/* GET or POST /api/studies/{study_uid}/reports. */
int report_web_study(http_req *rq, report_web *w, const char *study_uid);

/* share_web_report_fn (ctx = the report_web): the report behind a share, for the viewer. */
int report_web_share_report(void *ctx, const char *share_id, rs_buf *out);

#endif
