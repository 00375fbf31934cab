/*
 * users.c - see users.h. Tables: users(name, role, pwhash, disabled, created),
 * sessions(hash = SHA-256(session id), user, created, last_seen, expires).
 */
#include "users.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../share/statedb.h"

#define SCHEMA_VERSION 1
#define TOUCH_EVERY_S 60 /* write last_seen at most this often */

struct auth_db {
    sqlite3 *db;
    pthread_mutex_t mu;
    char dummy[crypto_pwhash_STRBYTES]; /* verified against for unknown users, so timing tells nothing */
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, role INTEGER NOT NULL, pwhash TEXT NOT NULL,"
    " disabled INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sessions(hash BLOB PRIMARY KEY,"
    " user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE, created INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL, expires INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user);";

static int hash_password(const char *pass, char out[crypto_pwhash_STRBYTES])
{
    return crypto_pwhash_str(out, pass, strlen(pass), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0
               ? RS_OK
               : RS_ENOMEM;
}

int auth_open(const char *datadir, auth_db **out, rs_err *err)
{
    *out = NULL;
    if (sodium_init() < 0)
        return rs_err_set(err, RS_EIO, "libsodium cannot initialise");
    auth_db *a = calloc(1, sizeof *a);
    if (!a)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    int rc = statedb_open(datadir, &a->db, err);
    if (rc == RS_OK)
        rc = statedb_schema(a->db, "auth", SCHEMA_VERSION, schema_sql, err);
    if (rc) {
        sqlite3_close(a->db);
        free(a);
        return rc;
    }
    pthread_mutex_init(&a->mu, NULL);
    *out = a;
    return RS_OK;
}

void auth_close(auth_db *a)
{
    if (!a)
        return;
    sqlite3_close(a->db);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

static int prep(auth_db *a, const char *sql, sqlite3_stmt **s, rs_err *err)
{
    return sqlite3_prepare_v2(a->db, sql, -1, s, NULL) == SQLITE_OK ? RS_OK : statedb_err(a->db, err, "preparing");
}

static int step_done(auth_db *a, sqlite3_stmt *s, rs_err *err, const char *what)
{
    int r = sqlite3_step(s);
    sqlite3_finalize(s);
    return r == SQLITE_DONE ? RS_OK : statedb_err(a->db, err, what);
}

static int name_ok(const char *n)
{
    size_t len = n ? strlen(n) : 0;
    if (len == 0 || len > AUTH_MAX_NAME)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') || (n[i] >= '0' && n[i] <= '9') ||
              strchr("._@-", n[i])))
            return 0;
    return 1;
}

static void row_to_user(sqlite3_stmt *s, int first, auth_user *u)
{
    memset(u, 0, sizeof *u);
    statedb_col_text(s, first, u->name, sizeof u->name);
    u->role = sqlite3_column_int(s, first + 1) == AUTH_ADMIN ? AUTH_ADMIN : AUTH_RADIOLOGIST;
    u->disabled = sqlite3_column_int(s, first + 2) != 0;
    u->created = sqlite3_column_int64(s, first + 3);
}

/* The rules every new password follows, from the CLI or the staff page alike. */
static int password_ok(const char *password, rs_err *err)
{
    size_t pl = password ? strlen(password) : 0;
    if (pl < AUTH_MIN_PASSWORD || pl > AUTH_MAX_PASSWORD)
        return rs_err_set(err, RS_EINVAL, "the password must have %d to %d characters", AUTH_MIN_PASSWORD,
                          AUTH_MAX_PASSWORD);
    return RS_OK;
}

/* Insert an account; only_first: only while the table is empty (the check and the insert are one
 * statement under the mutex, so two bootstrap requests cannot both create a first account). */
static int user_insert(auth_db *a, const char *name, auth_role role, const char *password, int64_t now,
                       int only_first, rs_err *err)
{
    char h[crypto_pwhash_STRBYTES];
    sqlite3_stmt *s;
    if (!name_ok(name))
        return rs_err_set(err, RS_EINVAL, "a user name has 1 to %d of A-Z a-z 0-9 . _ @ -", AUTH_MAX_NAME);
    if (role != AUTH_RADIOLOGIST && role != AUTH_ADMIN)
        return rs_err_set(err, RS_EINVAL, "the role is radiologist or admin");
    int rc = password_ok(password, err);
    if (rc)
        return rc;
    if (hash_password(password, h))
        return rs_err_set(err, RS_ENOMEM, "hashing the password: out of memory");
    pthread_mutex_lock(&a->mu);
    rc = prep(a,
              only_first ? "INSERT INTO users(name, role, pwhash, created) SELECT ?1, ?2, ?3, ?4"
                           " WHERE NOT EXISTS (SELECT 1 FROM users)"
                         : "INSERT INTO users(name, role, pwhash, created) VALUES(?1, ?2, ?3, ?4)",
              &s, err);
    if (rc == RS_OK) {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, role);
        sqlite3_bind_text(s, 3, h, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, now);
        int r = sqlite3_step(s);
        sqlite3_finalize(s);
        if (r == SQLITE_CONSTRAINT)
            rc = rs_err_set(err, RS_EINVAL, "user %s exists already", name);
        else if (r != SQLITE_DONE)
            rc = statedb_err(a->db, err, "adding a user");
        else if (only_first && sqlite3_changes(a->db) == 0)
            rc = rs_err_set(err, RS_EINVAL, "an account exists already");
    }
    pthread_mutex_unlock(&a->mu);
    sodium_memzero(h, sizeof h);
    return rc;
}

int auth_user_add(auth_db *a, const char *name, auth_role role, const char *password, int64_t now, rs_err *err)
{
    return user_insert(a, name, role, password, now, 0, err);
}

int auth_user_add_first(auth_db *a, const char *name, const char *password, int64_t now, rs_err *err)
{
    return user_insert(a, name, AUTH_ADMIN, password, now, 1, err);
}

int auth_user_get(auth_db *a, const char *name, auth_user *out, rs_err *err)
{
    sqlite3_stmt *s;
    memset(out, 0, sizeof *out);
    if (!name_ok(name))
        return rs_err_set(err, RS_ENOTFOUND, "no user %s", name ? name : "");
    pthread_mutex_lock(&a->mu);
    int rc = prep(a, "SELECT name, role, disabled, created FROM users WHERE name = ?1", &s, err);
    if (rc == RS_OK) {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW)
            row_to_user(s, 0, out);
        else
            rc = rs_err_set(err, RS_ENOTFOUND, "no user %s", name);
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int auth_user_set_password(auth_db *a, const char *name, const char *password, const char *keep_sid, rs_err *err)
{
    char h[crypto_pwhash_STRBYTES];
    uint8_t keep[TOKEN_HASH_BYTES] = {0};
    sqlite3_stmt *s;
    int rc = password_ok(password, err);
    if (rc)
        return rc;
    if (hash_password(password, h))
        return rs_err_set(err, RS_ENOMEM, "hashing the password: out of memory");
    if (keep_sid && token_well_formed(keep_sid))
        token_hash(keep_sid, keep);
    pthread_mutex_lock(&a->mu);
    rc = prep(a, "UPDATE users SET pwhash = ?2 WHERE name = ?1", &s, err);
    if (rc == RS_OK) {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, h, -1, SQLITE_STATIC);
        rc = step_done(a, s, err, "changing a password");
        if (rc == RS_OK && sqlite3_changes(a->db) == 0)
            rc = rs_err_set(err, RS_ENOTFOUND, "no user %s", name);
    }
    /* whoever knew the old password is signed out; the session making the change stays */
    if (rc == RS_OK && (rc = prep(a, "DELETE FROM sessions WHERE user = ?1 AND hash <> ?2", &s, err)) == RS_OK) {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 2, keep, sizeof keep, SQLITE_STATIC);
        rc = step_done(a, s, err, "ending sessions");
    }
    pthread_mutex_unlock(&a->mu);
    sodium_memzero(h, sizeof h);
    return rc;
}

int auth_user_set_disabled(auth_db *a, const char *name, int disabled, rs_err *err)
{
    sqlite3_stmt *s;
    pthread_mutex_lock(&a->mu);
    int rc = prep(a, "UPDATE users SET disabled = ?2 WHERE name = ?1", &s, err);
    if (rc == RS_OK) {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, disabled ? 1 : 0);
        rc = step_done(a, s, err, "disabling a user");
        if (rc == RS_OK && sqlite3_changes(a->db) == 0)
            rc = rs_err_set(err, RS_ENOTFOUND, "no user %s", name);
    }
    if (rc == RS_OK && disabled && (rc = prep(a, "DELETE FROM sessions WHERE user = ?1", &s, err)) == RS_OK) {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        rc = step_done(a, s, err, "ending sessions");
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int auth_user_list(auth_db *a, auth_user_fn fn, void *ctx, rs_err *err)
{
    sqlite3_stmt *s = NULL;
    auth_user *all = NULL;
    size_t n = 0;
    pthread_mutex_lock(&a->mu);
    int rc = prep(a, "SELECT name, role, disabled, created FROM users ORDER BY name", &s, err);
    while (rc == RS_OK && n < 100000 && sqlite3_step(s) == SQLITE_ROW) {
        auth_user *g = realloc(all, (n + 1) * sizeof *g);
        if (!g)
            rc = rs_err_set(err, RS_ENOMEM, "out of memory");
        else
            row_to_user(s, 0, &(all = g)[n++]);
    }
    if (s)
        sqlite3_finalize(s);
    pthread_mutex_unlock(&a->mu);
    for (size_t i = 0; i < n && rc == RS_OK; i++)
        if (fn(&all[i], ctx))
            break;
    free(all);
    return rc;
}

int auth_user_count(auth_db *a, int *n, rs_err *err)
{
    sqlite3_stmt *s;
    *n = 0;
    pthread_mutex_lock(&a->mu);
    int rc = prep(a, "SELECT count(*) FROM users", &s, err);
    if (rc == RS_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            *n = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int auth_check_basic(auth_db *a, const char *user, const char *pass, auth_user *out, rs_err *err)
{
    char h[crypto_pwhash_STRBYTES] = "";
    sqlite3_stmt *s;
    int found = 0;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&a->mu);
    int rc = name_ok(user) ? prep(a, "SELECT pwhash, name, role, disabled, created FROM users WHERE name = ?1", &s, err)
                           : RS_ENOTFOUND;
    if (rc == RS_OK) {
        sqlite3_bind_text(s, 1, user, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW) {
            statedb_col_text(s, 0, h, sizeof h);
            row_to_user(s, 1, out);
            found = 1;
        }
        sqlite3_finalize(s);
    }
    if (!found && !a->dummy[0])
        hash_password("radshare-no-such-user", a->dummy);
    if (!found)
        memcpy(h, a->dummy, sizeof h);
    pthread_mutex_unlock(&a->mu);
    if (rc != RS_OK && rc != RS_ENOTFOUND)
        return rc;
    size_t pl = pass ? strlen(pass) : 0;
    int good = pl > 0 && pl <= AUTH_MAX_PASSWORD && crypto_pwhash_str_verify(h, pass, pl) == 0;
    if (!found || !good || out->disabled) {
        memset(out, 0, sizeof *out);
        return rs_err_set(err, RS_ENOTFOUND, "wrong user name or password");
    }
    return RS_OK;
}

int auth_check_header(auth_db *a, const char *hdr, auth_user *out, rs_err *err)
{
    unsigned char dec[AUTH_MAX_NAME + AUTH_MAX_PASSWORD + 2];
    size_t n = 0;
    memset(out, 0, sizeof *out);
    if (!hdr || strncasecmp(hdr, "Basic ", 6))
        return rs_err_set(err, RS_ENOTFOUND, "no Basic credentials");
    hdr += 6;
    while (*hdr == ' ')
        hdr++;
    if (strlen(hdr) > sizeof dec * 4 / 3 ||
        sodium_base642bin(dec, sizeof dec - 1, hdr, strlen(hdr), " ", &n, NULL, sodium_base64_VARIANT_ORIGINAL))
        return rs_err_set(err, RS_ENOTFOUND, "malformed Basic credentials");
    dec[n] = 0;
    char *colon = memchr(dec, ':', n);
    if (!colon || memchr(dec, 0, n))
        return rs_err_set(err, RS_ENOTFOUND, "malformed Basic credentials");
    *colon = 0;
    int rc = auth_check_basic(a, (const char *)dec, colon + 1, out, err);
    sodium_memzero(dec, sizeof dec);
    return rc;
}

int auth_session_create(auth_db *a, const char *user, int64_t now, char sid_out[TOKEN_CHARS + 1], rs_err *err)
{
    uint8_t h[TOKEN_HASH_BYTES];
    sqlite3_stmt *s;
    if (token_new(sid_out))
        return rs_err_set(err, RS_EIO, "no randomness from the kernel");
    token_hash(sid_out, h);
    pthread_mutex_lock(&a->mu);
    int rc = prep(a,
                  "INSERT INTO sessions(hash, user, created, last_seen, expires)"
                  " SELECT ?1, name, ?3, ?3, ?4 FROM users WHERE name = ?2 AND disabled = 0",
                  &s, err);
    if (rc == RS_OK) {
        sqlite3_bind_blob(s, 1, h, sizeof h, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, now);
        sqlite3_bind_int64(s, 4, now + AUTH_SESSION_MAX_S);
        rc = step_done(a, s, err, "creating a session");
        if (rc == RS_OK && sqlite3_changes(a->db) == 0)
            rc = rs_err_set(err, RS_ENOTFOUND, "no active user %s", user);
    }
    /* expired sessions are cleared here, the one moment sessions grow */
    if (rc == RS_OK && prep(a, "DELETE FROM sessions WHERE expires <= ?1 OR last_seen <= ?2", &s, err) == RS_OK) {
        sqlite3_bind_int64(s, 1, now);
        sqlite3_bind_int64(s, 2, now - AUTH_SESSION_IDLE_S);
        rc = step_done(a, s, err, "clearing sessions");
    }
    pthread_mutex_unlock(&a->mu);
    if (rc)
        sodium_memzero(sid_out, TOKEN_CHARS + 1);
    return rc;
}

int auth_session_lookup(auth_db *a, const char *sid, int64_t now, auth_user *out, rs_err *err)
{
    uint8_t h[TOKEN_HASH_BYTES];
    sqlite3_stmt *s;
    memset(out, 0, sizeof *out);
    if (!sid || !token_well_formed(sid))
        return rs_err_set(err, RS_ENOTFOUND, "no session");
    token_hash(sid, h);
    pthread_mutex_lock(&a->mu);
    int rc = prep(a,
                  "SELECT s.last_seen, u.name, u.role, u.disabled, u.created FROM sessions s"
                  " JOIN users u ON u.name = s.user"
                  " WHERE s.hash = ?1 AND s.expires > ?2 AND s.last_seen > ?3 AND u.disabled = 0",
                  &s, err);
    int64_t last = 0;
    if (rc == RS_OK) {
        sqlite3_bind_blob(s, 1, h, sizeof h, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, now);
        sqlite3_bind_int64(s, 3, now - AUTH_SESSION_IDLE_S);
        if (sqlite3_step(s) == SQLITE_ROW) {
            last = sqlite3_column_int64(s, 0);
            row_to_user(s, 1, out);
        } else {
            rc = rs_err_set(err, RS_ENOTFOUND, "no session");
        }
        sqlite3_finalize(s);
    }
    if (rc == RS_OK && now - last >= TOUCH_EVERY_S &&
        prep(a, "UPDATE sessions SET last_seen = ?2 WHERE hash = ?1", &s, err) == RS_OK) {
        sqlite3_bind_blob(s, 1, h, sizeof h, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, now);
        rc = step_done(a, s, err, "touching a session");
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int auth_session_end(auth_db *a, const char *sid, rs_err *err)
{
    uint8_t h[TOKEN_HASH_BYTES];
    sqlite3_stmt *s;
    if (!sid || !token_well_formed(sid))
        return RS_OK;
    token_hash(sid, h);
    pthread_mutex_lock(&a->mu);
    int rc = prep(a, "DELETE FROM sessions WHERE hash = ?1", &s, err);
    if (rc == RS_OK) {
        sqlite3_bind_blob(s, 1, h, sizeof h, SQLITE_STATIC);
        rc = step_done(a, s, err, "ending a session");
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

/* ---- cookies ------------------------------------------------------------------------------------ */

static int cookie_text_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || strchr("\";,\\", *s))
            return 0;
    return 1;
}

int auth_cookie_format(rs_buf *out, const char *name, const char *value, const char *path, int64_t max_age,
                       int secure)
{
    if (!cookie_text_ok(name) || !cookie_text_ok(value) || !cookie_text_ok(path) || max_age < 0)
        return RS_EINVAL;
    return rs_buf_printf(out, "%s=%s; Path=%s; Max-Age=%lld; HttpOnly; SameSite=Strict%s", name, value, path,
                         (long long)max_age, secure ? "; Secure" : "");
}

int auth_cookie_get(const char *h, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    while (h && *h) {
        while (*h == ' ' || *h == ';')
            h++;
        const char *end = strchr(h, ';');
        size_t len = end ? (size_t)(end - h) : strlen(h);
        if (len > nl && !strncmp(h, name, nl) && h[nl] == '=') {
            size_t vl = len - nl - 1;
            if (vl >= cap)
                return 0;
            memcpy(out, h + nl + 1, vl);
            out[vl] = 0;
            return 1;
        }
        h = end;
    }
    return 0;
}

const char *auth_role_name(auth_role r)
{
    return r == AUTH_ADMIN ? "admin" : "radiologist";
}

int auth_role_parse(const char *s, auth_role *r)
{
    if (s && !strcmp(s, "admin"))
        *r = AUTH_ADMIN;
    else if (s && !strcmp(s, "radiologist"))
        *r = AUTH_RADIOLOGIST;
    else
        return RS_EINVAL;
    return RS_OK;
}
