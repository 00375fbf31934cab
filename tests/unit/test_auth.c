/*
 * test_auth.c - staff accounts and sessions on a real state.sqlite: password rules, argon2id hashes
 * at rest (neither the password nor a session id is in the database files), Basic credentials,
 * disabled accounts, session idle timeout, absolute expiry and logout, cookie formatting and parsing.
 */
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/users.h"
#include "t.h"

#define T0 1800000000LL

static char dir[64];

static int db_has(const char *needle)
{
    const char *suffix[] = {"", "-wal"};
    int found = 0;
    for (int i = 0; i < 2; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/state.sqlite%s", dir, suffix[i]);
        FILE *f = fopen(p, "rb");
        if (!f)
            continue;
        char *b = malloc(4 << 20);
        size_t n = fread(b, 1, 4 << 20, f);
        fclose(f);
        found |= memmem(b, n, needle, strlen(needle)) != NULL;
        free(b);
    }
    return found;
}

static int count(const auth_user *u, void *ctx)
{
    ++*(int *)ctx;
    return 0;
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/rs-test-auth-XXXXXX");
    if (!mkdtemp(dir))
        return 2;
    auth_db *db;
    auth_user u;
    rs_err err = {0};
    CHECK_EQ_INT(auth_open(dir, &db, NULL), RS_OK);
    /* the bootstrap's first account: an admin, the same rules, only while there is none */
    CHECK_EQ_INT(auth_user_add_first(db, "root", "short", T0, NULL), RS_EINVAL);
    CHECK_EQ_INT(auth_user_add_first(db, "../x", "long enough password", T0, NULL), RS_EINVAL);
    CHECK_EQ_INT(auth_user_add_first(db, "root", "first admin password", T0, NULL), RS_OK);
    CHECK_EQ_INT(auth_user_get(db, "root", &u, NULL), RS_OK);
    CHECK_EQ_INT(u.role, AUTH_ADMIN);
    CHECK_EQ_INT(auth_user_add_first(db, "root2", "first admin password", T0, &err), RS_EINVAL);
    CHECK(strstr(err.msg, "exists") != NULL);
    CHECK_EQ_INT(auth_user_get(db, "root2", &u, NULL), RS_ENOTFOUND);
    CHECK_EQ_INT(auth_user_get(db, "../x", &u, NULL), RS_ENOTFOUND);
    CHECK_EQ_INT(auth_user_set_disabled(db, "root", 1, NULL), RS_OK);
    CHECK_EQ_INT(auth_user_add_first(db, "root3", "first admin password", T0, NULL), RS_EINVAL); /* disabled counts */
    CHECK_EQ_INT(auth_user_add(db, "alice", AUTH_ADMIN, "Tr0ub4dor&3-horse", T0, NULL), RS_OK);
    CHECK_EQ_INT(auth_user_add(db, "bob", AUTH_RADIOLOGIST, "another long secret", T0, NULL), RS_OK);
    CHECK_EQ_INT(auth_user_add(db, "alice", AUTH_ADMIN, "whatever password", T0, &err), RS_EINVAL);
    CHECK(strstr(err.msg, "exists") != NULL);
    CHECK_EQ_INT(auth_user_add(db, "carol", AUTH_ADMIN, "short", T0, NULL), RS_EINVAL);
    CHECK_EQ_INT(auth_user_add(db, "carol", AUTH_ADMIN, "", T0, NULL), RS_EINVAL);
    CHECK_EQ_INT(auth_user_add(db, "../etc", AUTH_ADMIN, "long enough password", T0, NULL), RS_EINVAL);
    CHECK_EQ_INT(auth_user_add(db, "dave", (auth_role)7, "long enough password", T0, NULL), RS_EINVAL);
    int n = 0;
    CHECK_EQ_INT(auth_user_list(db, count, &n, NULL), RS_OK);
    CHECK_EQ_INT(n, 3);
    CHECK(!db_has("Tr0ub4dor&3-horse"));
    CHECK(db_has("$argon2id$"));

    CHECK_EQ_INT(auth_check_basic(db, "alice", "Tr0ub4dor&3-horse", &u, NULL), RS_OK);
    CHECK_EQ_STR(u.name, "alice");
    CHECK_EQ_INT(u.role, AUTH_ADMIN);
    CHECK_EQ_INT(auth_check_basic(db, "alice", "Tr0ub4dor&3-horsf", &u, NULL), RS_ENOTFOUND);
    CHECK_EQ_INT(auth_check_basic(db, "alice", "", &u, NULL), RS_ENOTFOUND);
    CHECK_EQ_INT(auth_check_basic(db, "mallory", "Tr0ub4dor&3-horse", &u, NULL), RS_ENOTFOUND);
    CHECK_EQ_INT(auth_check_basic(db, "bob", "Tr0ub4dor&3-horse", &u, NULL), RS_ENOTFOUND);

    /* Authorization: Basic */
    char hdr[256], b64[200];
    const char *cred = "bob:another long secret";
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)cred, strlen(cred), sodium_base64_VARIANT_ORIGINAL);
    snprintf(hdr, sizeof hdr, "Basic %s", b64);
    CHECK_EQ_INT(auth_check_header(db, hdr, &u, NULL), RS_OK);
    CHECK_EQ_STR(u.name, "bob");
    CHECK_EQ_INT(u.role, AUTH_RADIOLOGIST);
    CHECK_EQ_INT(auth_check_header(db, "Basic !!!", &u, NULL), RS_ENOTFOUND);
    CHECK_EQ_INT(auth_check_header(db, "Bearer abc", &u, NULL), RS_ENOTFOUND);
    CHECK_EQ_INT(auth_check_header(db, NULL, &u, NULL), RS_ENOTFOUND);
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)"bob", 3, sodium_base64_VARIANT_ORIGINAL);
    snprintf(hdr, sizeof hdr, "Basic %s", b64);
    CHECK_EQ_INT(auth_check_header(db, hdr, &u, NULL), RS_ENOTFOUND);

    /* sessions */
    char sid[TOKEN_CHARS + 1], sid2[TOKEN_CHARS + 1];
    CHECK_EQ_INT(auth_session_create(db, "alice", T0, sid, NULL), RS_OK);
    CHECK_EQ_INT(strlen(sid), TOKEN_CHARS);
    CHECK(!db_has(sid));
    CHECK_EQ_INT(auth_session_lookup(db, sid, T0 + 10, &u, NULL), RS_OK);
    CHECK_EQ_STR(u.name, "alice");
    /* used every 20 minutes it lives on, up to the absolute limit */
    int64_t t = T0;
    int alive = 1;
    for (t = T0 + 1200; t < T0 + AUTH_SESSION_MAX_S && alive; t += 1200)
        alive = auth_session_lookup(db, sid, t, &u, NULL) == RS_OK;
    CHECK(alive);
    CHECK_EQ_INT(auth_session_lookup(db, sid, T0 + AUTH_SESSION_MAX_S, &u, NULL), RS_ENOTFOUND);
    /* idle too long */
    CHECK_EQ_INT(auth_session_create(db, "alice", T0, sid2, NULL), RS_OK);
    CHECK_EQ_INT(auth_session_lookup(db, sid2, T0 + AUTH_SESSION_IDLE_S - 1, &u, NULL), RS_OK);
    CHECK_EQ_INT(auth_session_lookup(db, sid2, T0 + 2 * AUTH_SESSION_IDLE_S, &u, NULL), RS_ENOTFOUND);
    /* logout */
    CHECK_EQ_INT(auth_session_create(db, "alice", T0, sid, NULL), RS_OK);
    CHECK_EQ_INT(auth_session_end(db, sid, NULL), RS_OK);
    CHECK_EQ_INT(auth_session_lookup(db, sid, T0 + 1, &u, NULL), RS_ENOTFOUND);
    CHECK_EQ_INT(auth_session_lookup(db, "not-a-session", T0 + 1, &u, NULL), RS_ENOTFOUND);
    CHECK_EQ_INT(auth_session_create(db, "mallory", T0, sid, NULL), RS_ENOTFOUND);

    /* disabling refuses the password and ends the sessions, from another connection too */
    CHECK_EQ_INT(auth_session_create(db, "bob", T0, sid, NULL), RS_OK);
    auth_db *other;
    CHECK_EQ_INT(auth_open(dir, &other, NULL), RS_OK);
    CHECK_EQ_INT(auth_user_set_disabled(other, "bob", 1, NULL), RS_OK);
    CHECK_EQ_INT(auth_user_set_disabled(other, "nobody", 1, NULL), RS_ENOTFOUND);
    auth_close(other);
    CHECK_EQ_INT(auth_session_lookup(db, sid, T0 + 1, &u, NULL), RS_ENOTFOUND);
    CHECK_EQ_INT(auth_check_basic(db, "bob", "another long secret", &u, NULL), RS_ENOTFOUND);
    CHECK_EQ_INT(auth_session_create(db, "bob", T0, sid, NULL), RS_ENOTFOUND);
    CHECK_EQ_INT(auth_user_set_disabled(db, "bob", 0, NULL), RS_OK);
    CHECK_EQ_INT(auth_check_basic(db, "bob", "another long secret", &u, NULL), RS_OK);

    /* a new password: same rules, the old one refused, other sessions ended, the changing one kept */
    char keep[TOKEN_CHARS + 1];
    CHECK_EQ_INT(auth_session_create(db, "bob", T0, sid, NULL), RS_OK);
    CHECK_EQ_INT(auth_session_create(db, "bob", T0, keep, NULL), RS_OK);
    CHECK_EQ_INT(auth_session_create(db, "alice", T0, sid2, NULL), RS_OK);
    CHECK_EQ_INT(auth_user_set_password(db, "bob", "too short", keep, &err), RS_EINVAL);
    CHECK(strstr(err.msg, "characters") != NULL);
    CHECK_EQ_INT(auth_user_set_password(db, "nobody", "a new long secret", NULL, NULL), RS_ENOTFOUND);
    CHECK_EQ_INT(auth_check_basic(db, "bob", "another long secret", &u, NULL), RS_OK); /* unchanged so far */
    CHECK_EQ_INT(auth_user_set_password(db, "bob", "a new long secret", keep, NULL), RS_OK);
    CHECK_EQ_INT(auth_check_basic(db, "bob", "another long secret", &u, NULL), RS_ENOTFOUND);
    CHECK_EQ_INT(auth_check_basic(db, "bob", "a new long secret", &u, NULL), RS_OK);
    CHECK(!db_has("a new long secret"));
    CHECK_EQ_INT(auth_session_lookup(db, sid, T0 + 1, &u, NULL), RS_ENOTFOUND);
    CHECK_EQ_INT(auth_session_lookup(db, keep, T0 + 1, &u, NULL), RS_OK);
    CHECK_EQ_INT(auth_session_lookup(db, sid2, T0 + 1, &u, NULL), RS_OK); /* another user's: untouched */
    CHECK_EQ_INT(auth_user_set_password(db, "bob", "yet another secret", NULL, NULL), RS_OK); /* an admin reset */
    CHECK_EQ_INT(auth_session_lookup(db, keep, T0 + 2, &u, NULL), RS_ENOTFOUND);

    /* cookies */
    rs_buf b = RS_BUF_INIT;
    CHECK_EQ_INT(auth_cookie_format(&b, AUTH_COOKIE, "abc_-DEF", "/", 3600, 1), RS_OK);
    CHECK_EQ_STR((char *)b.p, "radshare_session=abc_-DEF; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict; Secure");
    rs_buf_reset(&b);
    CHECK_EQ_INT(auth_cookie_format(&b, AUTH_COOKIE, "x", "/s/tok", 0, 0), RS_OK);
    CHECK_EQ_STR((char *)b.p, "radshare_session=x; Path=/s/tok; Max-Age=0; HttpOnly; SameSite=Strict");
    CHECK_EQ_INT(auth_cookie_format(&b, AUTH_COOKIE, "a;b", "/", 1, 0), RS_EINVAL);
    CHECK_EQ_INT(auth_cookie_format(&b, AUTH_COOKIE, "a\r\nSet-Cookie: x=1", "/", 1, 0), RS_EINVAL);
    rs_buf_free(&b);
    char v[64];
    CHECK(auth_cookie_get("a=1; radshare_session=XYZ; b=2", AUTH_COOKIE, v, sizeof v));
    CHECK_EQ_STR(v, "XYZ");
    CHECK(auth_cookie_get("radshare_session=Q", AUTH_COOKIE, v, sizeof v));
    CHECK_EQ_STR(v, "Q");
    CHECK(!auth_cookie_get("xradshare_session=Q; radshare_sessionx=R", AUTH_COOKIE, v, sizeof v));
    CHECK(!auth_cookie_get(NULL, AUTH_COOKIE, v, sizeof v));
    CHECK(!auth_cookie_get("radshare_session=0123456789", AUTH_COOKIE, v, 5));

    auth_close(db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return t_done();
}
