/*
 * users.h - staff accounts and their sessions, in DATA/state.sqlite (component "auth").
 *
 * Passwords are kept as libsodium crypto_pwhash_str strings (argon2id, INTERACTIVE limits: 64 MiB and
 * a few passes per check - memory-hard, so a stolen state.sqlite costs an attacker dearly per guess,
 * yet a login stays well under a second on the small machines a department runs this on).
 * Session ids are 256-bit tokens from the kernel CSPRNG; only their SHA-256 is stored. A session
 * ends after AUTH_SESSION_IDLE_S without use, after AUTH_SESSION_MAX_S in any case, when its user is
 * disabled, or on logout.
 *
 * Thread-safe (a mutex in auth_db); works while `serve` runs (WAL, busy timeout).
 */
#ifndef RS_AUTH_USERS_H
#define RS_AUTH_USERS_H

#include <stddef.h>
#include <stdint.h>

#include "../share/token.h"
#include "../util/buf.h"
#include "../util/err.h"

typedef struct auth_db auth_db;

typedef enum auth_role { AUTH_RADIOLOGIST = 1, AUTH_ADMIN = 2 } auth_role;

#define AUTH_MIN_PASSWORD 10
#define AUTH_MAX_PASSWORD 1024
#define AUTH_MAX_NAME 64
#define AUTH_SESSION_IDLE_S (30 * 60)
#define AUTH_SESSION_MAX_S (12 * 3600)
#define AUTH_COOKIE "radshare_session"

typedef struct auth_user {
    char name[AUTH_MAX_NAME + 1];
    auth_role role;
    int disabled;
    int64_t created;
} auth_user;

int auth_open(const char *datadir, auth_db **out, rs_err *err);
void auth_close(auth_db *db);

/* name: [A-Za-z0-9._@-]{1,64}; password AUTH_MIN_PASSWORD..AUTH_MAX_PASSWORD bytes.
 * RS_EINVAL (with a message) for a bad name, a short password, or an existing name. */
int auth_user_add(auth_db *db, const char *name, auth_role role, const char *password, int64_t now, rs_err *err);
/* The first account, an admin, only while no account exists at all (the loopback bootstrap of the
 * staff page): RS_EINVAL "an account exists already" otherwise; the same name and password rules. */
int auth_user_add_first(auth_db *db, const char *name, const char *password, int64_t now, rs_err *err);
/* One account by name; RS_ENOTFOUND if none. */
int auth_user_get(auth_db *db, const char *name, auth_user *out, rs_err *err);
/* A new password (same rules as auth_user_add). Ends the user's sessions except keep_sid (the session
 * making the change; NULL: all). RS_ENOTFOUND if no such user. */
int auth_user_set_password(auth_db *db, const char *name, const char *password, const char *keep_sid, rs_err *err);
/* Disable (or enable again) an account; disabling ends its sessions. RS_ENOTFOUND if no such user. */
int auth_user_set_disabled(auth_db *db, const char *name, int disabled, rs_err *err);
typedef int (*auth_user_fn)(const auth_user *u, void *ctx); /* nonzero stops */
int auth_user_list(auth_db *db, auth_user_fn fn, void *ctx, rs_err *err);

/* How many accounts exist (enabled or not). */
int auth_user_count(auth_db *db, int *n, rs_err *err);

/* Name and password. RS_OK and *out filled, or RS_ENOTFOUND for any refusal (unknown user, wrong
 * password, disabled account: one answer, and an unknown user costs the same hash as a known one). */
int auth_check_basic(auth_db *db, const char *user, const char *pass, auth_user *out, rs_err *err);
/* The value of an Authorization header ("Basic base64(user:pass)"), same answers. */
int auth_check_header(auth_db *db, const char *authorization, auth_user *out, rs_err *err);

int auth_session_create(auth_db *db, const char *user, int64_t now, char sid_out[TOKEN_CHARS + 1], rs_err *err);
/* RS_OK and *out for a live session (its idle clock restarts), RS_ENOTFOUND otherwise. */
int auth_session_lookup(auth_db *db, const char *sid, int64_t now, auth_user *out, rs_err *err);
int auth_session_end(auth_db *db, const char *sid, rs_err *err);

/* A Set-Cookie header value: "NAME=VALUE; Path=PATH; Max-Age=N; HttpOnly; SameSite=Strict[; Secure]".
 * max_age 0 clears the cookie. secure: the public URL is https. */
int auth_cookie_format(rs_buf *out, const char *name, const char *value, const char *path, int64_t max_age,
                       int secure);
/* Find NAME's value in a Cookie request header; 1 if found (and it fits in cap), else 0. */
int auth_cookie_get(const char *cookie_header, const char *name, char *out, size_t cap);

const char *auth_role_name(auth_role r); /* "radiologist" | "admin" */
int auth_role_parse(const char *s, auth_role *r);

#endif
