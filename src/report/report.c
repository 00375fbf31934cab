/*
 * report.c - reports and their deliveries in DATA/state.sqlite (see report.h).
 *
 * The outbox rows are created here, in the same transaction as the report, so that a crash can
 * never leave a report that will not be delivered. Each row gets its message identifier now
 * (e-mail Message-ID, HL7 MSH-10): every retry sends the same identifier, which lets a receiver
 * recognise a message it already has when an acknowledgement was lost.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "../share/statedb.h"
#include "report.h"
#include "state.h"

#define SCHEMA_VERSION 1

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS reports ("
    " id INTEGER PRIMARY KEY, study_uid TEXT NOT NULL, text TEXT NOT NULL, original_text TEXT NOT NULL,"
    " author TEXT NOT NULL, created_ms INTEGER NOT NULL,"
    " recipient_name TEXT NOT NULL, recipient_email TEXT NOT NULL, recipient_hl7 TEXT NOT NULL,"
    " recipient_hl7_app TEXT NOT NULL, recipient_hl7_facility TEXT NOT NULL,"
    " share_id TEXT NOT NULL, link_url TEXT NOT NULL,"
    " patient_id TEXT NOT NULL, patient_name TEXT NOT NULL, birth_date TEXT NOT NULL, sex TEXT NOT NULL,"
    " accession TEXT NOT NULL, procedure_desc TEXT NOT NULL, study_date TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS reports_study ON reports(study_uid);"
    "CREATE TABLE IF NOT EXISTS report_outbox ("
    " id INTEGER PRIMARY KEY, report_id INTEGER NOT NULL REFERENCES reports(id),"
    " channel TEXT NOT NULL CHECK (channel IN ('email','hl7')), recipient TEXT NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('pending','sent','failed','cancelled')),"
    " attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL,"
    " claimed_until_ms INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',"
    " message_id TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " sent_ms INTEGER);"
    "CREATE INDEX IF NOT EXISTS report_outbox_due ON report_outbox(status, next_attempt_ms);"
    "CREATE INDEX IF NOT EXISTS report_outbox_report ON report_outbox(report_id);";

int64_t report_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void report_iso_time(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int report_random(void *p, size_t n)
{
    uint8_t *b = p;
    while (n) {
        ssize_t r = getrandom(b, n, 0);
        if (r < 0)
            return RS_EIO;
        b += r;
        n -= (size_t)r;
    }
    return RS_OK;
}

int report_sql_exec(sqlite3 *db, const char *sql, rs_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        rs_err_set(err, RS_EIO, "state database: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return RS_EIO;
    }
    return RS_OK;
}

int report_sql_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, rs_err *err)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return rs_err_set(err, RS_EIO, "state database: %s", sqlite3_errmsg(db));
    return RS_OK;
}

int report_db_open(const char *datadir, report_db **out, rs_err *err)
{
    *out = NULL;
    report_db *d = calloc(1, sizeof *d);
    if (!d)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    pthread_mutex_init(&d->mu, NULL);
    /* statedb: WAL, synchronous=FULL (a stored report survives power loss), busy timeout, and our
     * schema version in the shared schema_versions table */
    int rc = statedb_open(datadir, &d->db, err);
    if (!rc)
        rc = statedb_schema(d->db, "report", SCHEMA_VERSION, schema, err);
    if (rc) {
        report_db_close(d);
        d = NULL;
    }
    *out = d;
    return rc;
}

void report_db_close(report_db *d)
{
    if (!d)
        return;
    sqlite3_close(d->db);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

int report_link_sentence(const char *url, int needs_code, rs_buf *out)
{
    int rc = rs_buf_printf(out, "The images of this examination can be viewed online at:\n%s\n", url);
    if (!rc && needs_code)
        rc = rs_buf_puts(out, "An access code, sent to you separately, is needed to open them.\n");
    return rc ? RS_ENOMEM : RS_OK;
}

/* A value that goes into mail headers or HL7 fields must be one line of printable text. */
static int one_line(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static int check_input(const report_input *in, rs_err *err)
{
    const report_recipient *r = &in->recipient;
    if (!in->study_uid || !*in->study_uid || strlen(in->study_uid) > 64 || !one_line(in->study_uid))
        return rs_err_set(err, RS_EINVAL, "a study instance UID is required");
    if (!in->text || !*in->text)
        return rs_err_set(err, RS_EINVAL, "the report text is empty");
    if (strlen(in->text) > REPORT_TEXT_MAX)
        return rs_err_set(err, RS_ELIMIT, "the report text is longer than %d bytes", REPORT_TEXT_MAX);
    if (!in->link_url || !*in->link_url || strlen(in->link_url) > REPORT_URL_MAX || !one_line(in->link_url) ||
        strchr(in->link_url, ' '))
        return rs_err_set(err, RS_EINVAL, "a share link URL (one line, no spaces) is required");
    if (!r->email[0] && !r->hl7[0])
        return rs_err_set(err, RS_EINVAL, "the recipient has neither an e-mail address nor an HL7 destination");
    const char *fields[] = {r->name, r->email, r->hl7, r->hl7_app, r->hl7_facility, in->author ? in->author : "",
                            in->share_id ? in->share_id : ""};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (!one_line(fields[i]))
            return rs_err_set(err, RS_EINVAL, "control characters in a recipient or author field");
    if (r->email[0] && (!strchr(r->email, '@') || strpbrk(r->email, " <>\"(),;:\\[]")))
        return rs_err_set(err, RS_EINVAL, "bad e-mail address '%s'", r->email);
    if (r->hl7[0] && !strchr(r->hl7, ':'))
        return rs_err_set(err, RS_EINVAL, "HL7 destination must be HOST:PORT");
    const char *code = in->access_code;
    if (code && *code && (strstr(in->text, code) || strstr(in->link_url, code)))
        return rs_err_set(err, RS_EINVAL, "the access code must not be in the report or its link: it is sent separately");
    return RS_OK;
}

static int enqueue(sqlite3 *db, int64_t report_id, const char *channel, const char *recipient, int64_t now,
                   rs_err *err)
{
    /* 80 random bits in 20 hex digits: unique, and it fits MSH-10 (ST, 20 characters in v2.5) */
    uint8_t rnd[10];
    char mid[24];
    if (report_random(rnd, sizeof rnd))
        return rs_err_set(err, RS_EIO, "no random bytes from the OS");
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(mid + 2 * i, sizeof mid - 2 * i, "%02X", rnd[i]);
    sqlite3_stmt *st = NULL;
    int rc = report_sql_prepare(db,
                                "INSERT INTO report_outbox(report_id, channel, recipient, status, next_attempt_ms,"
                                " message_id, created_ms, updated_ms) VALUES (?,?,?,'pending',?,?,?,?)",
                                &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, report_id);
    sqlite3_bind_text(st, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, recipient, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_text(st, 5, mid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int64(st, 7, now);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = rs_err_set(err, RS_EIO, "state database: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

static int insert_report(sqlite3 *db, const report_input *in, const char *text, int64_t now, int64_t *id,
                         rs_err *err)
{
    const report_recipient *r = &in->recipient;
    const report_study *s = &in->study;
    sqlite3_stmt *st = NULL;
    int rc = report_sql_prepare(
        db,
        "INSERT INTO reports(study_uid, text, original_text, author, created_ms, recipient_name,"
        " recipient_email, recipient_hl7, recipient_hl7_app, recipient_hl7_facility, share_id, link_url,"
        " patient_id, patient_name, birth_date, sex, accession, procedure_desc, study_date)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        &st, err);
    if (rc)
        return rc;
    const char *v[] = {in->study_uid, text, in->text, in->author ? in->author : "", NULL, r->name, r->email,
                       r->hl7, r->hl7_app, r->hl7_facility, in->share_id ? in->share_id : "", in->link_url,
                       s->patient_id, s->patient_name, s->birth_date, s->sex, s->accession, s->procedure,
                       s->study_date};
    for (int i = 0; i < (int)(sizeof v / sizeof v[0]); i++)
        if (v[i])
            sqlite3_bind_text(st, i + 1, v[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = rs_err_set(err, RS_EIO, "state database: %s", sqlite3_errmsg(db));
    else
        *id = sqlite3_last_insert_rowid(db);
    sqlite3_finalize(st);
    return rc;
}

int report_create(report_db *d, const report_input *in, int64_t *report_id, rs_err *err)
{
    int rc = check_input(in, err);
    if (rc)
        return rc;
    /* the text as sent: what the radiologist wrote, a blank line, the link sentence */
    rs_buf text = RS_BUF_INIT;
    size_t n = strlen(in->text);
    while (n && (in->text[n - 1] == '\n' || in->text[n - 1] == '\r' || in->text[n - 1] == ' '))
        n--;
    if (rs_buf_append(&text, in->text, n) || rs_buf_puts(&text, "\n\n") ||
        report_link_sentence(in->link_url, in->link_needs_code, &text)) {
        rs_buf_free(&text);
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    }
    int64_t now = report_now_ms(), id = 0;
    pthread_mutex_lock(&d->mu);
    rc = report_sql_exec(d->db, "BEGIN IMMEDIATE", err);
    if (rc)
        goto out;
    rc = insert_report(d->db, in, (const char *)text.p, now, &id, err);
    if (!rc && in->recipient.email[0])
        rc = enqueue(d->db, id, "email", in->recipient.email, now, err);
    if (!rc && in->recipient.hl7[0])
        rc = enqueue(d->db, id, "hl7", in->recipient.hl7, now, err);
    if (!rc)
        rc = report_sql_exec(d->db, "COMMIT", err);
    if (rc)
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
out:
    pthread_mutex_unlock(&d->mu);
    rs_buf_free(&text);
    if (!rc && report_id)
        *report_id = id;
    return rc;
}

int report_get_text(report_db *d, int64_t report_id, rs_buf *out, rs_err *err)
{
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&d->mu);
    int rc = report_sql_prepare(d->db, "SELECT text FROM reports WHERE id = ?", &st, err);
    if (!rc) {
        sqlite3_bind_int64(st, 1, report_id);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW)
            rc = rs_buf_puts(out, (const char *)sqlite3_column_text(st, 0)) ? RS_ENOMEM : RS_OK;
        else if (s == SQLITE_DONE)
            rc = rs_err_set(err, RS_ENOTFOUND, "no report %lld", (long long)report_id);
        else
            rc = rs_err_set(err, RS_EIO, "state database: %s", sqlite3_errmsg(d->db));
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int report_share_json(report_db *d, const char *share_id, rs_buf *out, rs_err *err)
{
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&d->mu);
    int rc = report_sql_prepare(d->db,
                                "SELECT original_text, author, created_ms, recipient_name FROM reports"
                                " WHERE share_id = ? ORDER BY id DESC LIMIT 1",
                                &st, err);
    if (!rc) {
        sqlite3_bind_text(st, 1, share_id, -1, SQLITE_STATIC);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            char iso[32], day[16];
            report_iso_time(sqlite3_column_int64(st, 2), iso);
            snprintf(day, sizeof day, "%.4s%.2s%.2s", iso, iso + 5, iso + 8); /* DICOM form, as the viewer's dates */
            rc = rs_buf_puts(out, "{\"text\":") ? RS_ENOMEM : RS_OK;
            rc = rc ? rc : report_json_str(out, (const char *)sqlite3_column_text(st, 0));
            rc = rc ? rc : rs_buf_puts(out, ",\"author\":") ? RS_ENOMEM : RS_OK;
            rc = rc ? rc : report_json_str(out, (const char *)sqlite3_column_text(st, 1));
            rc = rc ? rc : rs_buf_printf(out, ",\"date\":\"%s\",\"created\":\"%s\",\"recipient\":", day, iso) ? RS_ENOMEM : RS_OK;
            rc = rc ? rc : report_json_str(out, (const char *)sqlite3_column_text(st, 3));
            rc = rc ? rc : rs_buf_putc(out, '}') ? RS_ENOMEM : RS_OK;
        } else if (s == SQLITE_DONE) {
            rc = rs_err_set(err, RS_ENOTFOUND, "no report for share %s", share_id);
        } else {
            rc = rs_err_set(err, RS_EIO, "state database: %s", sqlite3_errmsg(d->db));
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int report_json_str(rs_buf *b, const char *s)
{
    int rc = rs_buf_putc(b, '"');
    for (; !rc && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rc = rs_buf_putc(b, '\\') || rs_buf_putc(b, c);
        else if (c == '\n')
            rc = rs_buf_puts(b, "\\n");
        else if (c < 0x20 || c == 0x7f)
            rc = rs_buf_printf(b, "\\u%04x", c) < 0;
        else if (c == '<')   /* safe inside an HTML <script> too */
            rc = rs_buf_puts(b, "\\u003c");
        else
            rc = rs_buf_putc(b, c);
    }
    if (!rc)
        rc = rs_buf_putc(b, '"');
    return rc ? RS_ENOMEM : RS_OK;
}

/* Column i of the row as a JSON value: text as a string, NULL as null, integers as numbers, *_ms as time. */
static int json_col(rs_buf *b, sqlite3_stmt *st, int i)
{
    const char *name = sqlite3_column_name(st, i);
    int t = sqlite3_column_type(st, i);
    if (rs_buf_printf(b, "%s\"%s\":", i ? "," : "", name) < 0)
        return RS_ENOMEM;
    if (t == SQLITE_NULL)
        return rs_buf_puts(b, "null") ? RS_ENOMEM : RS_OK;
    size_t nl = strlen(name);
    if (t == SQLITE_INTEGER && nl > 3 && !strcmp(name + nl - 3, "_at")) {
        char iso[32];
        report_iso_time(sqlite3_column_int64(st, i), iso);
        return report_json_str(b, iso);
    }
    if (t == SQLITE_INTEGER)
        return rs_buf_printf(b, "%lld", (long long)sqlite3_column_int64(st, i)) < 0 ? RS_ENOMEM : RS_OK;
    return report_json_str(b, (const char *)sqlite3_column_text(st, i));
}

int report_delivery_list(report_db *d, const char *study_uid, int64_t report_id, rs_buf *json, rs_err *err)
{
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&d->mu);
    int rc = report_sql_prepare(
        d->db,
        "SELECT o.id AS id, o.report_id AS report, r.study_uid AS study, o.channel AS channel,"
        " o.recipient AS recipient, r.recipient_name AS name, o.status AS status, o.attempts AS attempts,"
        " CASE WHEN o.status = 'pending' THEN o.next_attempt_ms END AS next_attempt_at,"
        " o.last_error AS last_error, o.message_id AS message_id, o.created_ms AS created_at,"
        " o.updated_ms AS updated_at, o.sent_ms AS sent_at, r.share_id AS share"
        " FROM report_outbox o JOIN reports r ON r.id = o.report_id"
        " WHERE (?1 IS NULL OR r.study_uid = ?1) AND (?2 = 0 OR o.report_id = ?2)"
        " ORDER BY o.report_id DESC, o.id",
        &st, err);
    if (rc)
        goto out;
    if (study_uid)
        sqlite3_bind_text(st, 1, study_uid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, report_id);
    rc = rs_buf_putc(json, '[') ? RS_ENOMEM : RS_OK;
    int s, first = 1;
    while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
        rc = rs_buf_puts(json, first ? "{" : ",{") ? RS_ENOMEM : RS_OK;
        for (int i = 0; !rc && i < sqlite3_column_count(st); i++)
            rc = json_col(json, st, i);
        if (!rc)
            rc = rs_buf_putc(json, '}') ? RS_ENOMEM : RS_OK;
        first = 0;
    }
    if (!rc && s != SQLITE_DONE)
        rc = rs_err_set(err, RS_EIO, "state database: %s", sqlite3_errmsg(d->db));
    if (!rc)
        rc = rs_buf_putc(json, ']') ? RS_ENOMEM : RS_OK;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* One integer from a statement with at most one int64 parameter. */
static int query_i64(report_db *d, const char *sql, int64_t p, int64_t *v, rs_err *err)
{
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&d->mu);
    int rc = report_sql_prepare(d->db, sql, &st, err);
    if (!rc) {
        sqlite3_bind_int64(st, 1, p);
        if (sqlite3_step(st) == SQLITE_ROW)
            *v = sqlite3_column_int64(st, 0);
        else
            rc = rs_err_set(err, RS_EIO, "state database: %s", sqlite3_errmsg(d->db));
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int report_delivery_cancel(report_db *d, int64_t delivery_id, rs_err *err)
{
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&d->mu);
    int rc = report_sql_prepare(d->db,
                                "UPDATE report_outbox SET status = 'cancelled', updated_ms = ?2"
                                " WHERE id = ?1 AND status = 'pending'",
                                &st, err);
    if (!rc) {
        sqlite3_bind_int64(st, 1, delivery_id);
        sqlite3_bind_int64(st, 2, report_now_ms());
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = rs_err_set(err, RS_EIO, "state database: %s", sqlite3_errmsg(d->db));
        else if (sqlite3_changes(d->db) == 0)
            rc = rs_err_set(err, RS_ENOTFOUND, "no pending delivery %lld", (long long)delivery_id);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int report_pending_count(report_db *d, int64_t report_id, int64_t *n, rs_err *err)
{
    return query_i64(d,
                     "SELECT count(*) FROM report_outbox WHERE status = 'pending' AND (?1 = 0 OR report_id = ?1)",
                     report_id, n, err);
}
