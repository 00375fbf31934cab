/*
 * report.h - radiology reports and the deliveries they cause.
 *
 * A report is the radiologist's text for one study, addressed to one recipient (the referring
 * practitioner, or the patient), carrying the share link that lets the recipient see the images.
 * report_create() appends a sentence with the link to the text, stores the report and enqueues
 * one delivery per channel the recipient can be reached on (e-mail, HL7 ORU^R01 over MLLP), all
 * in one transaction: a report is never stored without its deliveries, nor the reverse. The
 * outbox (outbox.h) then delivers, retries and records the outcome of each delivery.
 *
 * Storage: tables `reports` and `report_outbox` in DATA/state.sqlite (WAL), which other modules
 * share with their own tables. A report_db is one connection guarded by a mutex, so the HTTP
 * threads may share one.
 *
 * The access code of a share never enters this module: there is no field for it. A caller may
 * hand it in report_input.access_code only so that report_create can refuse a text or link that
 * contains it; it is neither stored nor sent.
 */
#ifndef REPORT_REPORT_H
#define REPORT_REPORT_H

#include <stdint.h>

#include "../util/buf.h"
#include "../util/err.h"

#define REPORT_TEXT_MAX (256 * 1024)   /* bytes of report text accepted */
#define REPORT_URL_MAX 2048

typedef struct report_db report_db;

/* Who receives the report, and where. Empty strings: that channel is not used. */
typedef struct report_recipient {
    char name[256];           /* display name ("Dr Jean Dupont") */
    char email[256];          /* addr-spec */
    char hl7[262];            /* MLLP endpoint host:port */
    char hl7_app[128];        /* MSH-5 receiving application */
    char hl7_facility[128];   /* MSH-6 receiving facility */
} report_recipient;

/* The study as the HL7 PID/OBR segments and the e-mail describe it (UTF-8; DICOM forms). */
typedef struct report_study {
    char patient_id[72];
    char patient_name[324];   /* DICOM PN: Family^Given^Middle^Prefix^Suffix */
    char birth_date[16];      /* YYYYMMDD */
    char sex[16];             /* M, F, O */
    char accession[72];
    char procedure[324];      /* StudyDescription */
    char study_date[16];      /* YYYYMMDD */
    char referring[324];      /* ReferringPhysicianName (PN), for the directory */
} report_study;

typedef struct report_input {
    const char *study_uid;
    const char *text;         /* as the radiologist wrote it, UTF-8 */
    const char *author;       /* may be NULL */
    report_recipient recipient;
    report_study study;
    const char *share_id;     /* the share created for this recipient (may be NULL) */
    const char *link_url;     /* https://HOST/s/TOKEN */
    int link_needs_code;      /* the share has an access code: the text says it comes separately */
    const char *access_code;  /* optional, see the top of this file: only checked against, never kept */
} report_input;

/* Open (creating the tables when needed) DATA/state.sqlite. */
int report_db_open(const char *datadir, report_db **out, rs_err *err);
void report_db_close(report_db *db);

/*
 * Store a report and enqueue its deliveries (one transaction). RS_EINVAL (message in err) for a
 * missing study UID, text or link, a recipient with no channel, a text or link holding the
 * access code, control characters in header-like fields. *report_id may be NULL.
 */
int report_create(report_db *db, const report_input *in, int64_t *report_id, rs_err *err);

/* The stored text (with the link sentence) of report id into out. */
int report_get_text(report_db *db, int64_t report_id, rs_buf *out, rs_err *err);

/* The newest report carrying share_id's link, for the viewer's study.json:
 * {"text" (as written, without the link sentence),"author","date":"YYYYMMDD","created":ISO,"recipient"}.
 * RS_ENOTFOUND when no report has that share. */
int report_share_json(report_db *db, const char *share_id, rs_buf *out, rs_err *err);

/*
 * Deliveries as a JSON array, newest report first:
 * [{"id","report","study","channel","recipient","name","status","attempts","next_attempt_at",
 *   "last_error","message_id","created_at","updated_at","sent_at","share"}] (no URL: it holds the token)
 * Filters: study_uid (NULL: all), report_id (0: all).
 */
int report_delivery_list(report_db *db, const char *study_uid, int64_t report_id, rs_buf *json, rs_err *err);

/* Cancel a pending delivery. RS_ENOTFOUND when there is no such delivery or it is not pending. */
int report_delivery_cancel(report_db *db, int64_t delivery_id, rs_err *err);

/* How many deliveries of report_id (0: of every report) are still pending. */
int report_pending_count(report_db *db, int64_t report_id, int64_t *n, rs_err *err);

/* The sentence report_create appends (exposed for the docs and tests). */
int report_link_sentence(const char *url, int needs_code, rs_buf *out);

/* Append s to b as a JSON string (quoted, escaped). */
int report_json_str(rs_buf *b, const char *s);

#endif
