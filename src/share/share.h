/*
 * share.h - share links: the capability a recipient (the referring practitioner, or the patient)
 * gets to see one study, or some of its series, for a limited time, without an account.
 *
 * A share is created by staff (or by the report module for the referring doctor). The link carries a
 * 256-bit token from the kernel CSPRNG; only SHA-256(token) is stored, so state.sqlite (or a backup
 * of it) opens nothing. Everything else - logs, the audit trail, the staff API - names a share by its
 * short public id, never by its token.
 *
 * Nothing is cached: every request resolves the token against the database again, so a revocation
 * (from this process or from `radshare` in another) refuses the very next request.
 *
 * Brute force is bounded twice, with state in the database so it survives a restart:
 *  - unknown tokens per address (SHARE_GUESS_MAX per SHARE_GUESS_WINDOW s, then SHARE_THROTTLED = 429);
 *  - wrong access codes per share and per address (SHARE_CODE_MAX per SHARE_CODE_WINDOW s, then locked).
 *
 * Times are seconds since the epoch passed in by the caller (tests drive the clock).
 * Every function is thread-safe (a mutex in share_db).
 */
#ifndef RS_SHARE_H
#define RS_SHARE_H

#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"
#include "token.h"

typedef struct share_db share_db;

#define SHARE_ID_CHARS 12           /* 72 random bits, base64url */
#define SHARE_DEFAULT_DAYS 30
#define SHARE_MAX_DAYS 3650
#define SHARE_MAX_SERIES 1000
#define SHARE_GUESS_MAX 20          /* unknown tokens per address ... */
#define SHARE_GUESS_WINDOW 60       /* ... per this many seconds */
#define SHARE_CODE_MAX 5            /* wrong access codes per share, and per address ... */
#define SHARE_CODE_WINDOW (15 * 60) /* ... per this many seconds */
#define SHARE_GRANT_MAX_S (12 * 3600) /* an unlock cookie lasts at most this long */

typedef enum share_kind { SHARE_PRACTITIONER = 0, SHARE_PATIENT = 1 } share_kind;

/* What the second factor is, so the page can ask for the right thing. */
typedef enum share_code_kind { SHARE_CODE_NONE = 0, SHARE_CODE_SECRET = 1, SHARE_CODE_BIRTHDATE = 2 } share_code_kind;

typedef enum share_status {
    SHARE_OK = 0,
    SHARE_UNKNOWN,   /* no such token (or not even well formed): 404 */
    SHARE_EXPIRED,   /* 410 */
    SHARE_REVOKED,   /* 410 */
    SHARE_THROTTLED  /* too many unknown tokens from this address: 429 with retry_after */
} share_status;

typedef enum share_code_result {
    SHARE_CODE_ACCEPTED = 0,
    SHARE_CODE_WRONG,  /* 401, counts as a failure */
    SHARE_CODE_LOCKED  /* 429 with retry_after: too many failures for this share or from this address */
} share_code_result;

/* What share_create needs. Strings may be NULL (= absent) except study_uid and created_by. */
typedef struct share_new {
    const char *study_uid;
    const char *const *series; /* optional subset of the study's series */
    size_t n_series;
    share_kind kind;
    const char *name, *email, *hl7; /* the recipient; hl7 = destination name/endpoint for the report */
    const char *purpose;
    const char *created_by;
    int64_t expires_in_s;      /* 0: the share_db default */
    const char *access_code;   /* optional second factor, sent separately; hashed with argon2id */
    const char *birth_date;    /* patient links: the patient's birth date (YYYYMMDD) as the code */
    int download;              /* may the recipient download the study as a ZIP */
} share_new;

typedef struct share {
    char id[SHARE_ID_CHARS + 1];
    char study_uid[65];
    char **series;             /* NULL when the whole study is shared; owned, share_clear frees */
    size_t n_series;
    share_kind kind;
    char name[256], email[256], hl7[256];
    char purpose[512];
    char created_by[128];
    int64_t created, expires;
    int64_t revoked_at;        /* 0 if not revoked */
    char revoked_by[128];
    share_code_kind code_kind;
    int download;
} share;

/* Open the share tables in DATA/state.sqlite. default_days: expiry when share_new says 0. */
int share_open(const char *datadir, int default_days, share_db **out, rs_err *err);
void share_close(share_db *db);

/* Create a share. token_out receives the link's token - the only time it exists outside the link:
 * the caller puts it in the URL and forgets it. id_out receives the public id. */
int share_create(share_db *db, const share_new *req, int64_t now, char token_out[TOKEN_CHARS + 1],
                 char id_out[SHARE_ID_CHARS + 1], rs_err *err);

/* Resolve a token presented by `addr`. RS_OK with *st telling the outcome; for SHARE_OK, EXPIRED and
 * REVOKED *out is filled (for the 410 page: who created it, whom to contact); for SHARE_THROTTLED
 * *retry_after (seconds) is set and the token was not even looked at. An unknown token counts as a
 * guess from addr. The caller must share_clear(out) afterwards. */
int share_resolve(share_db *db, const char *token, const char *addr, int64_t now, share *out, share_status *st,
                  int64_t *retry_after, rs_err *err);

/* By public id (staff API). RS_ENOTFOUND if none. */
int share_get(share_db *db, const char *id, share *out, rs_err *err);

/* 1 if (study, series) is inside the share's scope; series NULL asks about the study level.
 * Anything else must be answered 404 (never 403: existence outside the scope is not disclosed). */
int share_check_scope(const share *sh, const char *study_uid, const char *series_uid);

/* Revoke by id; RS_ENOTFOUND if none. Revoking again keeps the first time and author. */
int share_revoke(share_db *db, const char *id, const char *by, int64_t now, rs_err *err);

/* Every share of a study (all shares if study_uid is NULL), newest first. fn returns nonzero to stop. */
typedef int (*share_list_fn)(const share *sh, void *ctx);
int share_list(share_db *db, const char *study_uid, share_list_fn fn, void *ctx, rs_err *err);

/* Check an access code (for SHARE_CODE_BIRTHDATE, digits of the date are compared: 1980-01-31
 * and 19800131 both match). Failures are counted per share and per address; when either is over its
 * limit the answer is SHARE_CODE_LOCKED with *retry_after, and the code is not even checked.
 * A share without code accepts anything. */
int share_verify_code(share_db *db, const share *sh, const char *code, const char *addr, int64_t now,
                      share_code_result *res, int64_t *retry_after, rs_err *err);

/* After a good code: a grant for the unlock cookie (a fresh token, stored hashed, valid until the
 * share expires or SHARE_GRANT_MAX_S, whichever is first). */
int share_grant_create(share_db *db, const share *sh, int64_t now, char grant_out[TOKEN_CHARS + 1],
                       int64_t *expires, rs_err *err);
/* 1 if `grant` (the cookie value, may be NULL) unlocks this share now; shares without code: always 1. */
int share_grant_check(share_db *db, const share *sh, const char *grant, int64_t now);

/* The share as the staff API shows it (never the token):
 * {"id","study","series":[...]|null,"recipient":{"kind","name","email","hl7"},"purpose","created_by",
 *  "created","expires","revoked":null|{"at","by"},"access_code":"none"|"code"|"birth_date","download"}
 * times as ISO-8601 UTC. Appended to out. */
struct rs_buf;
int share_json(struct rs_buf *out, const share *sh);
/* ISO-8601 UTC ("2026-12-04T13:23:56Z") of t into out[24]. */
void share_iso_time(int64_t t, char out[32]);

/* The same failure limiter for other uses (staff logins): 1 if bucket holds max failures within the
 * last window seconds (*retry_after set), 0 if not, negative RS_E* on error. Windows up to
 * SHARE_CODE_WINDOW. */
int share_limit_locked(share_db *db, const char *bucket, int max, int64_t window, int64_t now,
                       int64_t *retry_after, rs_err *err);
int share_limit_fail(share_db *db, const char *bucket, int64_t now, rs_err *err);

void share_clear(share *sh);

const char *share_kind_name(share_kind k);     /* "practitioner" | "patient" */
int share_kind_parse(const char *s, share_kind *k);
const char *share_status_name(share_status st); /* "ok" | "unknown" | "expired" | "revoked" | "throttled" */

#endif
