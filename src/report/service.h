/*
 * service.h - the report module as `radshare serve` runs it: the state database for the HTTP
 * routes, the recipients directory, and the outbox worker, started and stopped together.
 *
 *   serve:  report_service_start(&cfg, &svc, &err) after the store is open;
 *           report_service_stop(svc) after the HTTP server has stopped.
 *   route POST /api/studies/{uid}/reports:
 *           report_study_from_store(st, uid, &in.study, &err);       patient, accession, referring
 *           report_service_recipient(svc, &from_request, in.study.referring, &in.recipient);
 *           ... share_create(...) gives share id + URL ...
 *           report_service_submit(svc, &in, &id, &err);              store, enqueue, wake the worker
 *           report_delivery_list(report_service_db(svc), NULL, id, &json, &err);
 */
#ifndef REPORT_SERVICE_H
#define REPORT_SERVICE_H

#include "../util/err.h"
#include "directory.h"
#include "outbox.h"
#include "report.h"

typedef struct report_service_config {
    const char *datadir;
    const char *public_url;       /* --public-url: the base of share links (for the share module) */
    const char *hl7;              /* --hl7 HOST:PORT: where ORUs go for recipients without their own */
    const char *directory;        /* --directory FILE, NULL: none */
    report_outbox_config outbox;  /* smtp_url, mail_from, retries...; datadir is filled in */
} report_service_config;

typedef struct report_service report_service;

int report_service_start(const report_service_config *c, report_service **out, rs_err *err);
void report_service_stop(report_service *s);   /* NULL is fine */

/* The connection HTTP threads share (mutex inside) for lists and cancellation. */
report_db *report_service_db(report_service *s);
const char *report_service_public_url(const report_service *s);

/*
 * Who gets the report: the recipient given (by the request) when it has an e-mail address or
 * an HL7 destination; otherwise the directory entry for referring_pn (or, failing that, for the
 * given name). The default --hl7 endpoint fills an empty HL7 destination. RS_ENOTFOUND when
 * no channel is left.
 */
int report_service_recipient(const report_service *s, const report_recipient *given, const char *referring_pn,
                             report_recipient *out);

/* report_create, then wake the worker. */
int report_service_submit(report_service *s, const report_input *in, int64_t *report_id, rs_err *err);

/* Resolve recipients the same way without a running service (CLI). */
int report_recipient_resolve(const report_directory *dir, const char *default_hl7, const report_recipient *given,
                             const char *referring_pn, report_recipient *out);

struct store;
/* Patient and study attributes from the archive index. RS_ENOTFOUND when the study is unknown. */
int report_study_from_store(struct store *st, const char *study_uid, report_study *out, rs_err *err);

#endif
