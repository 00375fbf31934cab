/*
 * outbox.c - the delivery worker (see outbox.h).
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../audit/audit.h"
#include "../util/log.h"
#include "hl7.h"
#include "mllp.h"
#include "outbox.h"
#include "report.h"
#include "smtp.h"
#include "state.h"

struct report_outbox {
    report_outbox_config c;   /* strings point into the copies below */
    char *smtp_url, *mail_from, *ca_file, *app, *facility;
    report_db *db;
    audit_log *audit;         /* share.delivered / share.delivery_failed, in the shares' trail */
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int kicked;
    atomic_int stop;
};

/* One claimed row with what its message needs. */
typedef struct delivery {
    int64_t id, report_id;
    int attempts;
    char channel[8], recipient[262], message_id[40];
    char *col[20];   /* reports columns, see load_sql */
} delivery;

enum { C_STUDY, C_TEXT, C_AUTHOR, C_RNAME, C_RAPP, C_RFAC, C_URL, C_PID, C_PNAME, C_BIRTH, C_SEX, C_ACC,
       C_PROC, C_SDATE, C_SHARE, C_N };

static const char load_sql[] =
    "SELECT o.channel, o.recipient, o.attempts, o.message_id, o.report_id, r.study_uid, r.text, r.author,"
    " r.recipient_name, r.recipient_hl7_app, r.recipient_hl7_facility, r.link_url, r.patient_id,"
    " r.patient_name, r.birth_date, r.sex, r.accession, r.procedure_desc, r.study_date, r.share_id"
    " FROM report_outbox o JOIN reports r ON r.id = o.report_id WHERE o.id = ?";

int64_t report_outbox_backoff_ms(int base_ms, int cap_ms, int attempt, double r)
{
    double d = base_ms;
    for (int i = 1; i < attempt && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    return (int64_t)(d * (0.5 + r / 2));
}

static double unit_random(void)
{
    uint32_t v = 0;
    report_random(&v, sizeof v);
    return v / 4294967296.0;
}

static void delivery_free(delivery *d)
{
    for (int i = 0; i < C_N; i++)
        free(d->col[i]);
    memset(d, 0, sizeof *d);
}

/* Claim the next due row: RS_OK with d filled, RS_ENOTFOUND when none is due. */
static int claim(report_outbox *ob, delivery *d, rs_err *err)
{
    sqlite3 *db = ob->db->db;
    int64_t now = report_now_ms(), lease = (int64_t)ob->c.timeout_ms * 2 + 10000;
    sqlite3_stmt *st = NULL;
    memset(d, 0, sizeof *d);
    pthread_mutex_lock(&ob->db->mu);
    int rc = report_sql_prepare(db,
                                "UPDATE report_outbox SET claimed_until_ms = ?2 WHERE id = (SELECT id FROM report_outbox"
                                " WHERE status = 'pending' AND next_attempt_ms <= ?1 AND claimed_until_ms < ?1"
                                " ORDER BY next_attempt_ms, id LIMIT 1) RETURNING id",
                                &st, err);
    if (rc)
        goto out;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, now + lease);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        d->id = sqlite3_column_int64(st, 0);
    else if (s == SQLITE_DONE)
        rc = RS_ENOTFOUND;
    else
        rc = rs_err_set(err, RS_EIO, "state database: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    st = NULL;
    if (rc || (rc = report_sql_prepare(db, load_sql, &st, err)))
        goto out;
    sqlite3_bind_int64(st, 1, d->id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = rs_err_set(err, RS_EIO, "state database: %s", sqlite3_errmsg(db));
        goto out;
    }
    snprintf(d->channel, sizeof d->channel, "%s", sqlite3_column_text(st, 0));
    snprintf(d->recipient, sizeof d->recipient, "%s", sqlite3_column_text(st, 1));
    d->attempts = sqlite3_column_int(st, 2);
    snprintf(d->message_id, sizeof d->message_id, "%s", sqlite3_column_text(st, 3));
    d->report_id = sqlite3_column_int64(st, 4);
    for (int i = 0; i < C_N; i++) {
        const char *v = (const char *)sqlite3_column_text(st, 5 + i);
        if (!(d->col[i] = strdup(v ? v : ""))) {
            rc = rs_err_set(err, RS_ENOMEM, "out of memory");
            break;
        }
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ob->db->mu);
    if (rc && rc != RS_ENOTFOUND)
        delivery_free(d);
    return rc;
}

typedef enum outcome { SENT, RETRY, FAILED, ABANDONED } outcome;

/* The outcome in the audit trail, under the share the report carries, so a share's history shows
   when its link reached the recipient (or could not). */
static void audit_outcome(report_outbox *ob, const delivery *d, int delivered, const char *error)
{
    rs_buf b = RS_BUF_INIT;
    rs_err err;
    rs_err_clear(&err);
    int rc = rs_buf_printf(&b, "{\"delivery\":%lld,\"report\":%lld,\"channel\":\"%s\",\"recipient\":",
                           (long long)d->id, (long long)d->report_id, d->channel);
    rc = rc ? rc : audit_json_string(&b, d->recipient, 256);
    rc = rc ? rc : rs_buf_printf(&b, ",\"attempts\":%d", d->attempts + 1);
    if (!delivered) {
        rc = rc ? rc : rs_buf_puts(&b, ",\"error\":");
        rc = rc ? rc : audit_json_string(&b, error ? error : "", 512);
    }
    rc = rc ? rc : rs_buf_putc(&b, '}');
    if (rc || audit_append(ob->audit, delivered ? "share.delivered" : "share.delivery_failed",
                           d->col[C_SHARE][0] ? d->col[C_SHARE] : NULL, d->col[C_STUDY], NULL, NULL,
                           (const char *)b.p, NULL, &err))
        rs_log(RS_LOG_ERROR, "report outbox: delivery %lld: audit: %s", (long long)d->id,
               err.msg[0] ? err.msg : "out of memory");
    rs_buf_free(&b);
}

static void record(report_outbox *ob, const delivery *d, outcome o, const char *error)
{
    static const char *sql[] = {
        [SENT] = "UPDATE report_outbox SET status = 'sent', attempts = attempts + 1, sent_ms = ?2, updated_ms = ?2,"
                 " last_error = '', claimed_until_ms = 0 WHERE id = ?1",
        [RETRY] = "UPDATE report_outbox SET attempts = attempts + 1, updated_ms = ?2, last_error = ?3,"
                  " claimed_until_ms = 0, next_attempt_ms = ?2 + ?4, status = CASE WHEN status <> 'pending'"
                  " THEN status WHEN ?5 > 0 AND attempts + 1 >= ?5 THEN 'failed' ELSE 'pending' END WHERE id = ?1",
        [FAILED] = "UPDATE report_outbox SET attempts = attempts + 1, updated_ms = ?2, last_error = ?3,"
                   " claimed_until_ms = 0, status = CASE WHEN status = 'pending' THEN 'failed' ELSE status END"
                   " WHERE id = ?1",
        [ABANDONED] = "UPDATE report_outbox SET claimed_until_ms = 0 WHERE id = ?1"};
    int64_t now = report_now_ms();
    int64_t delay = report_outbox_backoff_ms(ob->c.retry_base_ms, ob->c.retry_cap_ms, d->attempts + 1, unit_random());
    rs_err err;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&ob->db->mu);
    if (report_sql_prepare(ob->db->db, sql[o], &st, &err) == RS_OK) {
        sqlite3_bind_int64(st, 1, d->id);
        if (o != ABANDONED)
            sqlite3_bind_int64(st, 2, now);
        if (o == RETRY || o == FAILED)
            sqlite3_bind_text(st, 3, error ? error : "", -1, SQLITE_STATIC);
        if (o == RETRY) {
            sqlite3_bind_int64(st, 4, delay);
            sqlite3_bind_int(st, 5, ob->c.max_attempts);
        }
        if (sqlite3_step(st) != SQLITE_DONE)
            rs_log(RS_LOG_ERROR, "report outbox: delivery %lld: recording the outcome: %s", (long long)d->id,
                   sqlite3_errmsg(ob->db->db));
    } else {
        rs_log(RS_LOG_ERROR, "report outbox: %s", err.msg);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ob->db->mu);
    int gave_up = o == FAILED || (o == RETRY && ob->c.max_attempts > 0 && d->attempts + 1 >= ob->c.max_attempts);
    if (o == SENT || gave_up)
        audit_outcome(ob, d, o == SENT, error);
    if (o == SENT)
        rs_log(RS_LOG_INFO, "report %lld: delivery %lld (%s to %s) sent", (long long)d->report_id, (long long)d->id,
               d->channel, d->recipient);
    else if (o != ABANDONED)
        rs_log(RS_LOG_WARN, "report %lld: delivery %lld (%s to %s) attempt %d %s: %s", (long long)d->report_id,
               (long long)d->id, d->channel, d->recipient, d->attempts + 1,
               o == FAILED ? "failed for good" : "failed, will retry", error ? error : "");
}

static outcome send_email(report_outbox *ob, const delivery *d, rs_err *err)
{
    if (!ob->c.mail_from || !*ob->c.mail_from) {
        rs_err_set(err, RS_EINVAL, "no sender address configured (--mail-from)");
        return RETRY;
    }
    report_mail m = {.from = ob->c.mail_from, .to = d->recipient, .to_name = d->col[C_RNAME],
                     .patient_name = d->col[C_PNAME], .procedure = d->col[C_PROC], .study_date = d->col[C_SDATE],
                     .text = d->col[C_TEXT], .link_url = d->col[C_URL], .message_id = d->message_id,
                     .date_s = (long long)time(NULL)};
    rs_buf msg = RS_BUF_INIT;
    outcome o = FAILED;   /* a message that cannot be built never will be */
    if (report_mail_build(&m, &msg, err) == RS_OK) {
        report_smtp c = {.url = ob->c.smtp_url, .ca_file = ob->c.smtp_ca_file, .timeout_ms = ob->c.timeout_ms};
        int permanent = 0;
        int rc = report_smtp_send(&c, ob->c.mail_from, d->recipient, msg.p, msg.len, &ob->stop, &permanent, err);
        o = rc == RS_OK ? SENT : atomic_load(&ob->stop) ? ABANDONED : permanent ? FAILED : RETRY;
    }
    rs_buf_free(&msg);
    return o;
}

static outcome send_hl7(report_outbox *ob, const delivery *d, rs_err *err)
{
    char ts[16];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y%m%d%H%M%S", &tm);
    report_hl7_oru m = {.sending_app = ob->c.hl7_sending_app, .sending_facility = ob->c.hl7_sending_facility,
                        .receiving_app = d->col[C_RAPP], .receiving_facility = d->col[C_RFAC], .timestamp = ts,
                        .control_id = d->message_id, .patient_id = d->col[C_PID], .patient_name = d->col[C_PNAME],
                        .birth_date = d->col[C_BIRTH], .sex = d->col[C_SEX], .accession = d->col[C_ACC],
                        .study_uid = d->col[C_STUDY], .procedure = d->col[C_PROC], .study_date = d->col[C_SDATE],
                        .author = d->col[C_AUTHOR], .text = d->col[C_TEXT], .link_url = d->col[C_URL]};
    rs_buf msg = RS_BUF_INIT, ans = RS_BUF_INIT;
    outcome o = RETRY;
    report_hl7_ack ack;
    if (report_hl7_build_oru(&m, &msg)) {
        rs_err_set(err, RS_ENOMEM, "out of memory");
    } else if (report_mllp_exchange(d->recipient, msg.p, msg.len, ob->c.timeout_ms, &ob->stop, &ans, err)) {
        o = atomic_load(&ob->stop) ? ABANDONED : RETRY;
    } else if (report_hl7_parse_ack((const char *)ans.p, ans.len, &ack, err) == RS_OK) {
        if (strcmp(ack.control_id, d->message_id))
            rs_err_set(err, RS_EFORMAT, "ACK for another message (MSA-2 %s, sent %s)", ack.control_id, d->message_id);
        else if (!strcmp(ack.code, "AA") || !strcmp(ack.code, "CA"))
            o = SENT;
        else {
            rs_err_set(err, RS_EIO, "HL7 %s%s%s", ack.code, ack.text[0] ? ": " : "", ack.text);
            o = !strcmp(ack.code, "AR") || !strcmp(ack.code, "CR") ? FAILED : RETRY;
        }
    }
    rs_buf_free(&msg);
    rs_buf_free(&ans);
    return o;
}

static void deliver_due(report_outbox *ob)
{
    while (!atomic_load(&ob->stop)) {
        delivery d;
        rs_err err;
        rs_err_clear(&err);
        int rc = claim(ob, &d, &err);
        if (rc == RS_ENOTFOUND)
            return;
        if (rc) {
            rs_log(RS_LOG_ERROR, "report outbox: %s", err.msg);
            return;
        }
        outcome o = !strcmp(d.channel, "email") ? send_email(ob, &d, &err) : send_hl7(ob, &d, &err);
        record(ob, &d, o, err.msg);
        delivery_free(&d);
    }
}

/* Milliseconds until the next pending row is due (capped at poll_ms). */
static int64_t next_wait_ms(report_outbox *ob)
{
    int64_t wait = ob->c.poll_ms, now = report_now_ms();
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&ob->db->mu);
    if (sqlite3_prepare_v2(ob->db->db,
                           "SELECT min(max(next_attempt_ms, claimed_until_ms)) FROM report_outbox WHERE status = 'pending'",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        int64_t due = sqlite3_column_int64(st, 0) - now;
        if (due < wait)
            wait = due < 0 ? 0 : due;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ob->db->mu);
    return wait;
}

static void *worker(void *arg)
{
    report_outbox *ob = arg;
    while (!atomic_load(&ob->stop)) {
        deliver_due(ob);
        int64_t wait = next_wait_ms(ob);
        pthread_mutex_lock(&ob->mu);
        if (!ob->kicked && !atomic_load(&ob->stop) && wait > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&ob->cv, &ob->mu, &ts);
        }
        ob->kicked = 0;
        pthread_mutex_unlock(&ob->mu);
    }
    return NULL;
}

static char *dup_or(const char *s, const char *dflt)
{
    return s ? strdup(s) : dflt ? strdup(dflt) : NULL;
}

static void outbox_free(report_outbox *ob)
{
    report_db_close(ob->db);
    audit_close(ob->audit);
    free(ob->smtp_url);
    free(ob->mail_from);
    free(ob->ca_file);
    free(ob->app);
    free(ob->facility);
    pthread_cond_destroy(&ob->cv);
    pthread_mutex_destroy(&ob->mu);
    free(ob);
    curl_global_cleanup();
}

int report_outbox_start(const report_outbox_config *c, report_outbox **out, rs_err *err)
{
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return rs_err_set(err, RS_EIO, "curl_global_init failed");
    report_outbox *ob = calloc(1, sizeof *ob);
    if (!ob) {
        curl_global_cleanup();
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&ob->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ob->cv, &ca);
    pthread_condattr_destroy(&ca);
    ob->c = *c;
    ob->smtp_url = dup_or(c->smtp_url, NULL);
    ob->mail_from = dup_or(c->mail_from, NULL);
    ob->ca_file = dup_or(c->smtp_ca_file, NULL);
    ob->app = dup_or(c->hl7_sending_app, "RADSHARE");
    ob->facility = dup_or(c->hl7_sending_facility, "RADSHARE");
    ob->c.datadir = NULL;
    ob->c.smtp_url = ob->smtp_url;
    ob->c.mail_from = ob->mail_from;
    ob->c.smtp_ca_file = ob->ca_file;
    ob->c.hl7_sending_app = ob->app;
    ob->c.hl7_sending_facility = ob->facility;
    if (ob->c.timeout_ms <= 0)
        ob->c.timeout_ms = 30000;
    if (ob->c.retry_base_ms <= 0)
        ob->c.retry_base_ms = 30000;
    if (ob->c.retry_cap_ms <= 0)
        ob->c.retry_cap_ms = 3600000;
    if (ob->c.retry_cap_ms < ob->c.retry_base_ms)
        ob->c.retry_cap_ms = ob->c.retry_base_ms;
    if (ob->c.poll_ms <= 0)
        ob->c.poll_ms = 5000;
    int rc = !ob->app || !ob->facility || (c->smtp_url && !ob->smtp_url) || (c->mail_from && !ob->mail_from) ||
                         (c->smtp_ca_file && !ob->ca_file)
                 ? rs_err_set(err, RS_ENOMEM, "out of memory")
                 : report_db_open(c->datadir, &ob->db, err);
    rc = rc ? rc : audit_open(c->datadir, 0, &ob->audit, err);
    if (!rc && pthread_create(&ob->thr, NULL, worker, ob) != 0)
        rc = rs_err_set(err, RS_EIO, "cannot start the outbox thread");
    if (rc) {
        outbox_free(ob);
        return rc;
    }
    *out = ob;
    return RS_OK;
}

void report_outbox_kick(report_outbox *ob)
{
    pthread_mutex_lock(&ob->mu);
    ob->kicked = 1;
    pthread_cond_signal(&ob->cv);
    pthread_mutex_unlock(&ob->mu);
}

void report_outbox_stop(report_outbox *ob)
{
    if (!ob)
        return;
    pthread_mutex_lock(&ob->mu);
    atomic_store(&ob->stop, 1);
    pthread_cond_signal(&ob->cv);
    pthread_mutex_unlock(&ob->mu);
    pthread_join(ob->thr, NULL);
    outbox_free(ob);
}
