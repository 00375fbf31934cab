/*
 * share.c - see share.h. Tables (component "share" in schema_versions):
 *   shares         one row per share; token_hash = SHA-256(token), code_hash = argon2id string
 *   share_series   the optional subset of series
 *   share_failures one row per failed attempt in a rate-limit bucket ("guess:ADDR",
 *                  "code-share:ID", "code-addr:ADDR"); rows older than the longest window are pruned
 *   share_grants   unlock cookies (hash only) given after a good access code
 */
#include "share.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../audit/audit.h"
#include "../util/buf.h"
#include "statedb.h"

#define SCHEMA_VERSION 1
#define MAX_LISTED 10000
#define MAX_ADDR 64

struct share_db {
    sqlite3 *db;
    pthread_mutex_t mu;
    int default_days;
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS shares("
    " pk INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, token_hash BLOB NOT NULL UNIQUE,"
    " study_uid TEXT NOT NULL, kind INTEGER NOT NULL, name TEXT, email TEXT, hl7 TEXT, purpose TEXT,"
    " created_by TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL,"
    " code_kind INTEGER NOT NULL DEFAULT 0, code_hash TEXT, download INTEGER NOT NULL DEFAULT 0,"
    " revoked_at INTEGER, revoked_by TEXT);"
    "CREATE INDEX IF NOT EXISTS shares_study ON shares(study_uid);"
    "CREATE TABLE IF NOT EXISTS share_series("
    " share_pk INTEGER NOT NULL REFERENCES shares(pk) ON DELETE CASCADE, series_uid TEXT NOT NULL,"
    " PRIMARY KEY(share_pk, series_uid)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS share_failures(bucket TEXT NOT NULL, time INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS share_failures_bucket ON share_failures(bucket, time);"
    "CREATE INDEX IF NOT EXISTS share_failures_time ON share_failures(time);"
    "CREATE TABLE IF NOT EXISTS share_grants(hash BLOB PRIMARY KEY,"
    " share_pk INTEGER NOT NULL REFERENCES shares(pk) ON DELETE CASCADE, expires INTEGER NOT NULL);";

#define SHARE_COLS                                                                                      \
    "pk, id, study_uid, kind, name, email, hl7, purpose, created_by, created, expires, code_kind, download, " \
    "revoked_at, revoked_by"

int share_open(const char *datadir, int default_days, share_db **out, rs_err *err)
{
    *out = NULL;
    if (sodium_init() < 0)
        return rs_err_set(err, RS_EIO, "libsodium cannot initialise");
    if (default_days <= 0 || default_days > SHARE_MAX_DAYS)
        return rs_err_set(err, RS_EINVAL, "share expiry must be 1..%d days", SHARE_MAX_DAYS);
    share_db *d = calloc(1, sizeof *d);
    if (!d)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    int rc = statedb_open(datadir, &d->db, err);
    if (rc == RS_OK)
        rc = statedb_schema(d->db, "share", SCHEMA_VERSION, schema_sql, err);
    if (rc) {
        sqlite3_close(d->db);
        free(d);
        return rc;
    }
    pthread_mutex_init(&d->mu, NULL);
    d->default_days = default_days;
    *out = d;
    return RS_OK;
}

void share_close(share_db *d)
{
    if (!d)
        return;
    sqlite3_close(d->db);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* ---- small helpers ---------------------------------------------------------------------------- */

static int prep(share_db *d, const char *sql, sqlite3_stmt **s, rs_err *err)
{
    return sqlite3_prepare_v2(d->db, sql, -1, s, NULL) == SQLITE_OK ? RS_OK
                                                                     : statedb_err(d->db, err, "preparing");
}

static int step_done(share_db *d, sqlite3_stmt *s, rs_err *err, const char *what)
{
    int r = sqlite3_step(s);
    sqlite3_finalize(s);
    return r == SQLITE_DONE ? RS_OK : statedb_err(d->db, err, what);
}

static int uid_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
            return 0;
    return 1;
}

static int fits(const char *s, size_t cap)
{
    return !s || strlen(s) < cap;
}

/* Digits only: "1980-01-31" and "19800131" are the same birth date. */
static int birth_digits(const char *s, char out[9])
{
    size_t n = 0;
    for (; *s; s++) {
        if (*s >= '0' && *s <= '9') {
            if (n == 8)
                return 0;
            out[n++] = *s;
        } else if (*s != '-' && *s != '.' && *s != '/' && *s != ' ') {
            return 0;
        }
    }
    out[n] = 0;
    return n == 8;
}

static void bucket_name(char *out, size_t cap, const char *kind, const char *key)
{
    snprintf(out, cap, "%s:%.*s", kind, MAX_ADDR, key ? key : "-");
}

/* ---- rate limits -------------------------------------------------------------------------------- */

/* 1 (and *retry_after) when bucket has max failures within the last window seconds. */
static int limiter_locked(share_db *d, const char *bucket, int max, int64_t window, int64_t now,
                          int64_t *retry_after, rs_err *err)
{
    sqlite3_stmt *s;
    if (prep(d, "SELECT count(*), min(time) FROM share_failures WHERE bucket = ?1 AND time > ?2", &s, err))
        return -1;
    sqlite3_bind_text(s, 1, bucket, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now - window);
    int locked = 0;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) >= max) {
        /* the lock lifts when the oldest failure that counts leaves the window */
        int64_t until = sqlite3_column_int64(s, 1) + window;
        *retry_after = until > now ? until - now : 1;
        locked = 1;
    }
    sqlite3_finalize(s);
    return locked;
}

static int limiter_fail(share_db *d, const char *bucket, int64_t now, rs_err *err)
{
    sqlite3_stmt *s;
    int rc = prep(d, "DELETE FROM share_failures WHERE time <= ?1", &s, err);
    if (rc)
        return rc;
    int64_t longest = SHARE_CODE_WINDOW > SHARE_GUESS_WINDOW ? SHARE_CODE_WINDOW : SHARE_GUESS_WINDOW;
    sqlite3_bind_int64(s, 1, now - longest);
    if ((rc = step_done(d, s, err, "pruning failures")))
        return rc;
    if ((rc = prep(d, "INSERT INTO share_failures(bucket, time) VALUES(?1, ?2)", &s, err)))
        return rc;
    sqlite3_bind_text(s, 1, bucket, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now);
    return step_done(d, s, err, "recording a failure");
}

int share_limit_locked(share_db *d, const char *bucket, int max, int64_t window, int64_t now,
                       int64_t *retry_after, rs_err *err)
{
    pthread_mutex_lock(&d->mu);
    int r = limiter_locked(d, bucket, max, window, now, retry_after, err);
    pthread_mutex_unlock(&d->mu);
    return r < 0 ? RS_EIO : r;
}

int share_limit_fail(share_db *d, const char *bucket, int64_t now, rs_err *err)
{
    pthread_mutex_lock(&d->mu);
    int rc = limiter_fail(d, bucket, now, err);
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* ---- reading shares ---------------------------------------------------------------------------- */

void share_clear(share *sh)
{
    for (size_t i = 0; sh->series && i < sh->n_series; i++)
        free(sh->series[i]);
    free(sh->series);
    memset(sh, 0, sizeof *sh);
}

static int load_series(share_db *d, int64_t pk, share *sh, rs_err *err)
{
    sqlite3_stmt *s;
    int rc = prep(d, "SELECT series_uid FROM share_series WHERE share_pk = ?1 ORDER BY series_uid", &s, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, pk);
    while (rc == RS_OK && sqlite3_step(s) == SQLITE_ROW) {
        if (sh->n_series == SHARE_MAX_SERIES)
            break;
        char **grown = realloc(sh->series, (sh->n_series + 1) * sizeof *grown);
        char *uid = grown ? strdup((const char *)sqlite3_column_text(s, 0)) : NULL;
        if (grown)
            sh->series = grown;
        if (!uid)
            rc = rs_err_set(err, RS_ENOMEM, "out of memory");
        else
            sh->series[sh->n_series++] = uid;
    }
    sqlite3_finalize(s);
    return rc;
}

/* Fill *sh from a row selected with SHARE_COLS; returns the row's pk. */
static int64_t row_to_share(sqlite3_stmt *s, share *sh)
{
    memset(sh, 0, sizeof *sh);
    statedb_col_text(s, 1, sh->id, sizeof sh->id);
    statedb_col_text(s, 2, sh->study_uid, sizeof sh->study_uid);
    sh->kind = sqlite3_column_int(s, 3) == SHARE_PATIENT ? SHARE_PATIENT : SHARE_PRACTITIONER;
    statedb_col_text(s, 4, sh->name, sizeof sh->name);
    statedb_col_text(s, 5, sh->email, sizeof sh->email);
    statedb_col_text(s, 6, sh->hl7, sizeof sh->hl7);
    statedb_col_text(s, 7, sh->purpose, sizeof sh->purpose);
    statedb_col_text(s, 8, sh->created_by, sizeof sh->created_by);
    sh->created = sqlite3_column_int64(s, 9);
    sh->expires = sqlite3_column_int64(s, 10);
    sh->code_kind = (share_code_kind)sqlite3_column_int(s, 11);
    sh->download = sqlite3_column_int(s, 12) != 0;
    sh->revoked_at = sqlite3_column_int64(s, 13);
    statedb_col_text(s, 14, sh->revoked_by, sizeof sh->revoked_by);
    return sqlite3_column_int64(s, 0);
}

/* One share by a key column; RS_ENOTFOUND if none. Caller holds the mutex. */
static int fetch(share_db *d, const char *where, const void *key, int keylen, share *out, int64_t *pk,
                 rs_err *err)
{
    char sql[256];
    sqlite3_stmt *s;
    snprintf(sql, sizeof sql, "SELECT " SHARE_COLS " FROM shares WHERE %s = ?1", where);
    int rc = prep(d, sql, &s, err);
    if (rc)
        return rc;
    if (keylen < 0)
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    else
        sqlite3_bind_blob(s, 1, key, keylen, SQLITE_STATIC);
    int r = sqlite3_step(s);
    int64_t k = 0;
    if (r == SQLITE_ROW)
        k = row_to_share(s, out);
    else
        rc = r == SQLITE_DONE ? RS_ENOTFOUND : statedb_err(d->db, err, "reading a share");
    sqlite3_finalize(s);
    if (rc == RS_OK && (rc = load_series(d, k, out, err)))
        share_clear(out);
    if (pk)
        *pk = k;
    return rc;
}

int share_get(share_db *d, const char *id, share *out, rs_err *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&d->mu);
    int rc = fetch(d, "id", id, -1, out, NULL, err);
    pthread_mutex_unlock(&d->mu);
    if (rc == RS_ENOTFOUND)
        rs_err_set(err, rc, "no share %s", id);
    return rc;
}

/* ---- creating ----------------------------------------------------------------------------------- */

static int validate(const share_new *q, rs_err *err)
{
    if (!uid_ok(q->study_uid))
        return rs_err_set(err, RS_EINVAL, "share: bad study UID");
    if (q->n_series > SHARE_MAX_SERIES)
        return rs_err_set(err, RS_ELIMIT, "share: more than %d series", SHARE_MAX_SERIES);
    for (size_t i = 0; i < q->n_series; i++)
        if (!uid_ok(q->series[i]))
            return rs_err_set(err, RS_EINVAL, "share: bad series UID");
    if (!q->created_by || !q->created_by[0])
        return rs_err_set(err, RS_EINVAL, "share: created_by is required");
    if (!fits(q->name, 256) || !fits(q->email, 256) || !fits(q->hl7, 256) || !fits(q->purpose, 512) ||
        !fits(q->created_by, 128))
        return rs_err_set(err, RS_ELIMIT, "share: a recipient field is too long");
    if (q->expires_in_s < 0 || q->expires_in_s > (int64_t)SHARE_MAX_DAYS * 86400)
        return rs_err_set(err, RS_EINVAL, "share: expiry must be within %d days", SHARE_MAX_DAYS);
    if (q->access_code && q->birth_date)
        return rs_err_set(err, RS_EINVAL, "share: either an access code or the birth date, not both");
    if (q->access_code && (strlen(q->access_code) < 4 || strlen(q->access_code) > 128))
        return rs_err_set(err, RS_EINVAL, "share: an access code has 4 to 128 characters");
    if (q->birth_date && q->kind != SHARE_PATIENT)
        return rs_err_set(err, RS_EINVAL, "share: the birth date is a second factor for patient links only");
    return RS_OK;
}

/* The argon2id string of the second factor, or "" when there is none. */
static int hash_code(const share_new *q, char out[crypto_pwhash_STRBYTES], share_code_kind *kind, rs_err *err)
{
    char digits[9];
    const char *code = q->access_code;
    *kind = code ? SHARE_CODE_SECRET : SHARE_CODE_NONE;
    out[0] = 0;
    if (q->birth_date) {
        if (!birth_digits(q->birth_date, digits))
            return rs_err_set(err, RS_EINVAL, "share: the birth date must be YYYYMMDD");
        code = digits;
        *kind = SHARE_CODE_BIRTHDATE;
    }
    if (code && crypto_pwhash_str(out, code, strlen(code), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                  crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return rs_err_set(err, RS_ENOMEM, "share: hashing the access code: out of memory");
    return RS_OK;
}

static int insert_share(share_db *d, const share_new *q, int64_t now, const uint8_t *th, const char *id,
                        const char *code_hash, share_code_kind ck, rs_err *err)
{
    sqlite3_stmt *s;
    int rc = prep(d,
                  "INSERT INTO shares(id, token_hash, study_uid, kind, name, email, hl7, purpose, created_by,"
                  " created, expires, code_kind, code_hash, download)"
                  " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
                  &s, err);
    if (rc)
        return rc;
    int64_t life = q->expires_in_s ? q->expires_in_s : (int64_t)d->default_days * 86400;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, th, TOKEN_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, q->study_uid, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, q->kind);
    statedb_bind_text(s, 5, q->name);
    statedb_bind_text(s, 6, q->email);
    statedb_bind_text(s, 7, q->hl7);
    statedb_bind_text(s, 8, q->purpose);
    statedb_bind_text(s, 9, q->created_by);
    sqlite3_bind_int64(s, 10, now);
    sqlite3_bind_int64(s, 11, now + life);
    sqlite3_bind_int(s, 12, ck);
    statedb_bind_text(s, 13, code_hash[0] ? code_hash : NULL);
    sqlite3_bind_int(s, 14, q->download ? 1 : 0);
    if ((rc = step_done(d, s, err, "inserting a share")))
        return rc;
    int64_t pk = sqlite3_last_insert_rowid(d->db);
    for (size_t i = 0; i < q->n_series && rc == RS_OK; i++) {
        if ((rc = prep(d, "INSERT OR IGNORE INTO share_series(share_pk, series_uid) VALUES(?1, ?2)", &s, err)))
            break;
        sqlite3_bind_int64(s, 1, pk);
        sqlite3_bind_text(s, 2, q->series[i], -1, SQLITE_STATIC);
        rc = step_done(d, s, err, "inserting a share's series");
    }
    return rc;
}

int share_create(share_db *d, const share_new *q, int64_t now, char token_out[TOKEN_CHARS + 1],
                 char id_out[SHARE_ID_CHARS + 1], rs_err *err)
{
    char code_hash[crypto_pwhash_STRBYTES];
    char token[TOKEN_CHARS + 1], id[SHARE_ID_CHARS + 1];
    uint8_t th[TOKEN_HASH_BYTES];
    share_code_kind ck;
    int rc = validate(q, err);
    if (rc == RS_OK)
        rc = hash_code(q, code_hash, &ck, err); /* outside the mutex: argon2id takes a while */
    if (rc)
        return rc;
    if (token_new(token) || token_random_text(SHARE_ID_CHARS * 3 / 4, id, sizeof id))
        return rs_err_set(err, RS_EIO, "share: no randomness from the kernel");
    token_hash(token, th);
    pthread_mutex_lock(&d->mu);
    rc = statedb_exec(d->db, "BEGIN IMMEDIATE", err);
    if (rc == RS_OK) {
        rc = insert_share(d, q, now, th, id, code_hash, ck, err);
        if (rc == RS_OK)
            rc = statedb_exec(d->db, "COMMIT", err);
        else
            sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&d->mu);
    if (rc == RS_OK) {
        memcpy(token_out, token, sizeof token);
        memcpy(id_out, id, sizeof id);
    }
    sodium_memzero(token, sizeof token);
    return rc;
}

/* ---- resolving ---------------------------------------------------------------------------------- */

int share_resolve(share_db *d, const char *token, const char *addr, int64_t now, share *out, share_status *st,
                  int64_t *retry_after, rs_err *err)
{
    char bucket[MAX_ADDR + 16];
    uint8_t th[TOKEN_HASH_BYTES];
    memset(out, 0, sizeof *out);
    *retry_after = 0;
    bucket_name(bucket, sizeof bucket, "guess", addr);
    pthread_mutex_lock(&d->mu);
    int rc = RS_OK;
    int locked = limiter_locked(d, bucket, SHARE_GUESS_MAX, SHARE_GUESS_WINDOW, now, retry_after, err);
    if (locked < 0) {
        rc = RS_EIO;
        goto out;
    }
    if (locked) {
        *st = SHARE_THROTTLED;
        goto out;
    }
    rc = RS_ENOTFOUND;
    if (token && token_well_formed(token)) {
        token_hash(token, th);
        rc = fetch(d, "token_hash", th, TOKEN_HASH_BYTES, out, NULL, err);
    }
    if (rc == RS_ENOTFOUND) {
        *st = SHARE_UNKNOWN;
        rc = limiter_fail(d, bucket, now, err);
    } else if (rc == RS_OK) {
        *st = out->revoked_at ? SHARE_REVOKED : now >= out->expires ? SHARE_EXPIRED : SHARE_OK;
    }
out:
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int share_check_scope(const share *sh, const char *study_uid, const char *series_uid)
{
    if (!study_uid || strcmp(study_uid, sh->study_uid) != 0)
        return 0;
    if (!series_uid || !sh->series)
        return 1;
    for (size_t i = 0; i < sh->n_series; i++)
        if (!strcmp(sh->series[i], series_uid))
            return 1;
    return 0;
}

/* ---- revoking and listing ----------------------------------------------------------------------- */

int share_revoke(share_db *d, const char *id, const char *by, int64_t now, rs_err *err)
{
    sqlite3_stmt *s;
    pthread_mutex_lock(&d->mu);
    int rc = prep(d,
                  "UPDATE shares SET revoked_at = coalesce(revoked_at, ?2), revoked_by = coalesce(revoked_by, ?3)"
                  " WHERE id = ?1",
                  &s, err);
    if (rc == RS_OK) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, now > 0 ? now : 1);
        statedb_bind_text(s, 3, by && by[0] ? by : "-");
        rc = step_done(d, s, err, "revoking");
        if (rc == RS_OK && sqlite3_changes(d->db) == 0)
            rc = rs_err_set(err, RS_ENOTFOUND, "no share %s", id);
    }
    /* the unlock cookies die with the share */
    if (rc == RS_OK && prep(d, "DELETE FROM share_grants WHERE share_pk = (SELECT pk FROM shares WHERE id = ?1)",
                            &s, err) == RS_OK) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        rc = step_done(d, s, err, "dropping grants");
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int share_list(share_db *d, const char *study_uid, share_list_fn fn, void *ctx, rs_err *err)
{
    sqlite3_stmt *s;
    share *all = NULL;
    size_t n = 0;
    pthread_mutex_lock(&d->mu);
    int rc = prep(d,
                  study_uid ? "SELECT " SHARE_COLS " FROM shares WHERE study_uid = ?1 ORDER BY created DESC, pk DESC"
                            : "SELECT " SHARE_COLS " FROM shares ORDER BY created DESC, pk DESC",
                  &s, err);
    if (rc == RS_OK) {
        if (study_uid)
            sqlite3_bind_text(s, 1, study_uid, -1, SQLITE_STATIC);
        int64_t *pks = NULL;
        while (rc == RS_OK && n < MAX_LISTED && sqlite3_step(s) == SQLITE_ROW) {
            share *g = realloc(all, (n + 1) * sizeof *g);
            int64_t *gp = realloc(pks, (n + 1) * sizeof *gp);
            if (g)
                all = g;
            if (gp)
                pks = gp;
            if (!g || !gp)
                rc = rs_err_set(err, RS_ENOMEM, "out of memory");
            else
                pks[n] = row_to_share(s, &all[n]), n++;
        }
        sqlite3_finalize(s);
        for (size_t i = 0; i < n && rc == RS_OK; i++)
            rc = load_series(d, pks[i], &all[i], err);
        free(pks);
    }
    pthread_mutex_unlock(&d->mu);
    /* the callbacks run without the mutex: they may call back into share_db */
    int stop = rc != RS_OK;
    for (size_t i = 0; i < n; i++) {
        if (!stop && fn(&all[i], ctx))
            stop = 1;
        share_clear(&all[i]);
    }
    free(all);
    return rc;
}

/* ---- access codes and grants -------------------------------------------------------------------- */

static int code_hash_of(share_db *d, const char *id, char out[crypto_pwhash_STRBYTES], rs_err *err)
{
    sqlite3_stmt *s;
    out[0] = 0;
    int rc = prep(d, "SELECT code_hash FROM shares WHERE id = ?1", &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW)
        statedb_col_text(s, 0, out, crypto_pwhash_STRBYTES);
    else
        rc = RS_ENOTFOUND;
    sqlite3_finalize(s);
    return rc;
}

int share_verify_code(share_db *d, const share *sh, const char *code, const char *addr, int64_t now,
                      share_code_result *res, int64_t *retry_after, rs_err *err)
{
    char bshare[MAX_ADDR + 16], baddr[MAX_ADDR + 16], hash[crypto_pwhash_STRBYTES], digits[9];
    *retry_after = 0;
    *res = SHARE_CODE_WRONG;
    bucket_name(bshare, sizeof bshare, "code-share", sh->id);
    bucket_name(baddr, sizeof baddr, "code-addr", addr);
    pthread_mutex_lock(&d->mu);
    int64_t r1 = 0, r2 = 0;
    int l1 = limiter_locked(d, bshare, SHARE_CODE_MAX, SHARE_CODE_WINDOW, now, &r1, err);
    int l2 = l1 < 0 ? -1 : limiter_locked(d, baddr, SHARE_CODE_MAX, SHARE_CODE_WINDOW, now, &r2, err);
    int rc = l1 < 0 || l2 < 0 ? RS_EIO : code_hash_of(d, sh->id, hash, err);
    pthread_mutex_unlock(&d->mu);
    if (rc)
        return rc;
    if (l1 || l2) {
        *res = SHARE_CODE_LOCKED;
        *retry_after = r1 > r2 ? r1 : r2;
        return RS_OK;
    }
    if (!hash[0]) {
        *res = SHARE_CODE_ACCEPTED;
        return RS_OK;
    }
    const char *c = code ? code : "";
    if (sh->code_kind == SHARE_CODE_BIRTHDATE)
        c = birth_digits(c, digits) ? digits : "";
    if (c[0] && strlen(c) <= 128 && crypto_pwhash_str_verify(hash, c, strlen(c)) == 0) {
        *res = SHARE_CODE_ACCEPTED;
        return RS_OK;
    }
    pthread_mutex_lock(&d->mu);
    rc = limiter_fail(d, bshare, now, err);
    if (rc == RS_OK)
        rc = limiter_fail(d, baddr, now, err);
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int share_grant_create(share_db *d, const share *sh, int64_t now, char grant_out[TOKEN_CHARS + 1],
                       int64_t *expires, rs_err *err)
{
    uint8_t h[TOKEN_HASH_BYTES];
    sqlite3_stmt *s;
    if (token_new(grant_out))
        return rs_err_set(err, RS_EIO, "share: no randomness from the kernel");
    token_hash(grant_out, h);
    *expires = now + SHARE_GRANT_MAX_S < sh->expires ? now + SHARE_GRANT_MAX_S : sh->expires;
    pthread_mutex_lock(&d->mu);
    int rc = prep(d,
                  "INSERT INTO share_grants(hash, share_pk, expires)"
                  " SELECT ?1, pk, ?3 FROM shares WHERE id = ?2 AND revoked_at IS NULL",
                  &s, err);
    if (rc == RS_OK) {
        sqlite3_bind_blob(s, 1, h, sizeof h, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, sh->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, *expires);
        rc = step_done(d, s, err, "creating a grant");
        if (rc == RS_OK && sqlite3_changes(d->db) == 0)
            rc = rs_err_set(err, RS_ENOTFOUND, "no share %s", sh->id);
    }
    pthread_mutex_unlock(&d->mu);
    if (rc)
        sodium_memzero(grant_out, TOKEN_CHARS + 1);
    return rc;
}

int share_grant_check(share_db *d, const share *sh, const char *grant, int64_t now)
{
    uint8_t h[TOKEN_HASH_BYTES];
    sqlite3_stmt *s;
    if (sh->code_kind == SHARE_CODE_NONE)
        return 1;
    if (!grant || !token_well_formed(grant))
        return 0;
    token_hash(grant, h);
    int ok = 0;
    pthread_mutex_lock(&d->mu);
    if (prep(d,
             "SELECT 1 FROM share_grants g JOIN shares s ON s.pk = g.share_pk"
             " WHERE g.hash = ?1 AND s.id = ?2 AND g.expires > ?3 AND s.revoked_at IS NULL",
             &s, NULL) == RS_OK) {
        sqlite3_bind_blob(s, 1, h, sizeof h, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, sh->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, now);
        ok = sqlite3_step(s) == SQLITE_ROW;
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&d->mu);
    return ok;
}

/* ---- names -------------------------------------------------------------------------------------- */

const char *share_kind_name(share_kind k)
{
    return k == SHARE_PATIENT ? "patient" : "practitioner";
}

int share_kind_parse(const char *s, share_kind *k)
{
    if (s && !strcmp(s, "patient"))
        *k = SHARE_PATIENT;
    else if (s && !strcmp(s, "practitioner"))
        *k = SHARE_PRACTITIONER;
    else
        return RS_EINVAL;
    return RS_OK;
}

const char *share_status_name(share_status st)
{
    static const char *const names[] = {"ok", "unknown", "expired", "revoked", "throttled"};
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "?";
}

/* ---- JSON for the staff API -------------------------------------------------------------------- */

void share_iso_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int json_member(rs_buf *b, const char *key, const char *val)
{
    int rc = rs_buf_printf(b, ",\"%s\":", key);
    return rc ? rc : audit_json_string(b, val && val[0] ? val : NULL, 1024);
}

int share_json(rs_buf *b, const share *sh)
{
    static const char *const codes[] = {"none", "code", "birth_date"};
    char created[32], expires[32], revoked[32];
    share_iso_time(sh->created, created);
    share_iso_time(sh->expires, expires);
    share_iso_time(sh->revoked_at, revoked);
    int rc = rs_buf_printf(b, "{\"id\":\"%s\",\"study\":\"%s\",\"series\":", sh->id, sh->study_uid);
    if (!sh->series)
        rc = rc ? rc : rs_buf_puts(b, "null");
    for (size_t i = 0; sh->series && i < sh->n_series && rc == RS_OK; i++)
        rc = rs_buf_printf(b, "%c\"%s\"", i ? ',' : '[', sh->series[i]);
    if (sh->series && rc == RS_OK)
        rc = rs_buf_puts(b, sh->n_series ? "]" : "[]");
    rc = rc ? rc : rs_buf_printf(b, ",\"recipient\":{\"kind\":\"%s\"", share_kind_name(sh->kind));
    rc = rc ? rc : json_member(b, "name", sh->name);
    rc = rc ? rc : json_member(b, "email", sh->email);
    rc = rc ? rc : json_member(b, "hl7", sh->hl7);
    rc = rc ? rc : rs_buf_putc(b, '}');
    rc = rc ? rc : json_member(b, "purpose", sh->purpose);
    rc = rc ? rc : json_member(b, "created_by", sh->created_by);
    rc = rc ? rc : rs_buf_printf(b, ",\"created\":\"%s\",\"expires\":\"%s\",\"revoked\":", created, expires);
    if (rc == RS_OK && sh->revoked_at) {
        rc = rs_buf_printf(b, "{\"at\":\"%s\"", revoked);
        rc = rc ? rc : json_member(b, "by", sh->revoked_by);
        rc = rc ? rc : rs_buf_putc(b, '}');
    } else if (rc == RS_OK) {
        rc = rs_buf_puts(b, "null");
    }
    return rc ? RS_ENOMEM
              : rs_buf_printf(b, ",\"access_code\":\"%s\",\"download\":%s}",
                              codes[(unsigned)sh->code_kind < 3 ? sh->code_kind : 0], sh->download ? "true" : "false");
}
