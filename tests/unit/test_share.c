/*
 * test_share.c - share links against a real state.sqlite in a temporary directory, with the clock
 * driven by the test: token format and entropy, nothing secret at rest, expiry, revocation seen by
 * another connection on the very next resolve, scope, access codes (secret and birth date) with their
 * per-share and per-address locks surviving a reopen, the unknown-token throttle, unlock grants, the
 * handout's QR code (its SVG runs are libqrencode's modules).
 */
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <qrencode.h>

#include "share/qr.h"
#include "share/share.h"
#include "util/buf.h"
#include "t.h"

#define STUDY "1.2.826.0.1.3680043.8.498.1"
#define OTHER "1.2.826.0.1.3680043.8.498.2"
#define SER1 "1.2.826.0.1.3680043.8.498.1.1"
#define SER2 "1.2.826.0.1.3680043.8.498.1.2"
#define T0 1800000000LL

static char dir[64];

static share_new base(void)
{
    share_new q = {0};
    q.study_uid = STUDY;
    q.kind = SHARE_PRACTITIONER;
    q.name = "Dr. Anne Peeters";
    q.email = "gp@example.org";
    q.purpose = "report";
    q.created_by = "alice";
    return q;
}

/* 1 if needle occurs in the file (or does not exist: 0). */
static int file_has(const char *path, const char *needle)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    struct stat st;
    fstat(fd, &st);
    char *b = malloc((size_t)st.st_size + 1);
    ssize_t n = read(fd, b, (size_t)st.st_size);
    close(fd);
    int found = n > 0 && memmem(b, (size_t)n, needle, strlen(needle)) != NULL;
    free(b);
    return found;
}

static int db_has(const char *needle)
{
    char p[128];
    int found = 0;
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/state.sqlite%s", dir, suffix[i]);
        found |= file_has(p, needle);
    }
    return found;
}

static share_status resolve(share_db *db, const char *tok, const char *addr, int64_t now, share *out)
{
    share_status st = SHARE_UNKNOWN;
    int64_t retry;
    share tmp;
    CHECK_EQ_INT(share_resolve(db, tok, addr, now, out ? out : &tmp, &st, &retry, NULL), RS_OK);
    if (!out)
        share_clear(&tmp);
    return st;
}

static void test_tokens(share_db *db)
{
    share_new q = base();
    char tok[TOKEN_CHARS + 1], id[SHARE_ID_CHARS + 1];
    unsigned ones = 0, n = 200;
    char (*seen)[TOKEN_CHARS + 1] = calloc(n, sizeof *seen);
    for (unsigned i = 0; i < n; i++) {
        CHECK_EQ_INT(token_new(seen[i]), RS_OK);
        CHECK_EQ_INT(strlen(seen[i]), 43);
        CHECK(token_well_formed(seen[i]));
        unsigned char raw[64];
        size_t len = 0;
        CHECK_EQ_INT(sodium_base642bin(raw, sizeof raw, seen[i], 43, NULL, &len, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
        CHECK_EQ_INT(len, 32);
        for (size_t k = 0; k < len; k++)
            ones += (unsigned)__builtin_popcount(raw[k]);
        for (unsigned j = 0; j < i; j++)
            CHECK(strcmp(seen[i], seen[j]) != 0);
    }
    /* 51,200 random bits: the share of ones is within 1.5% of a half (p of failing < 1e-10) */
    CHECK(ones > n * 256 * 0.485 && ones < n * 256 * 0.515);
    free(seen);
    CHECK(!token_well_formed("short"));
    CHECK(!token_well_formed("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/"));
    CHECK(!token_well_formed("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));

    CHECK_EQ_INT(share_create(db, &q, T0, tok, id, NULL), RS_OK);
    CHECK_EQ_INT(strlen(id), SHARE_ID_CHARS);
    CHECK(strstr(tok, id) == NULL);
    share sh;
    CHECK_EQ_INT(resolve(db, tok, "10.0.0.1", T0 + 1, &sh), SHARE_OK);
    CHECK_EQ_STR(sh.id, id);
    CHECK_EQ_STR(sh.study_uid, STUDY);
    CHECK_EQ_STR(sh.name, "Dr. Anne Peeters");
    CHECK_EQ_STR(sh.created_by, "alice");
    CHECK_EQ_INT(sh.expires, T0 + 30 * 86400);
    CHECK_EQ_INT(sh.code_kind, SHARE_CODE_NONE);
    share_clear(&sh);
    /* one character changed is another token */
    tok[5] = tok[5] == 'A' ? 'B' : 'A';
    CHECK_EQ_INT(resolve(db, tok, "10.0.0.1", T0 + 1, NULL), SHARE_UNKNOWN);
    tok[5] = 0;
    CHECK_EQ_INT(resolve(db, tok, "10.0.0.1", T0 + 1, NULL), SHARE_UNKNOWN);
    CHECK_EQ_INT(resolve(db, NULL, "10.0.0.1", T0 + 1, NULL), SHARE_UNKNOWN);
}

static void test_at_rest(void)
{
    share_db *db;
    char tok[TOKEN_CHARS + 1], id[SHARE_ID_CHARS + 1];
    CHECK_EQ_INT(share_open(dir, 30, &db, NULL), RS_OK);
    share_new q = base();
    q.access_code = "K7Q-PLM-42Z";
    CHECK_EQ_INT(share_create(db, &q, T0, tok, id, NULL), RS_OK);
    /* while open (WAL not checkpointed) and after close */
    CHECK(!db_has(tok));
    CHECK(!db_has("K7Q-PLM-42Z"));
    CHECK(db_has(id)); /* the grep itself works: the public id is there */
    share_close(db);
    CHECK(!db_has(tok));
    CHECK(!db_has("K7Q-PLM-42Z"));
}

static void test_expiry_revoke_scope(share_db *db)
{
    char tok[TOKEN_CHARS + 1], id[SHARE_ID_CHARS + 1];
    share_new q = base();
    const char *series[] = {SER1};
    q.series = series;
    q.n_series = 1;
    q.expires_in_s = 3600;
    q.download = 1;
    CHECK_EQ_INT(share_create(db, &q, T0, tok, id, NULL), RS_OK);
    share sh;
    CHECK_EQ_INT(resolve(db, tok, "10.0.0.2", T0 + 3599, &sh), SHARE_OK);
    CHECK_EQ_INT(sh.download, 1);
    CHECK_EQ_INT(sh.n_series, 1);
    CHECK(share_check_scope(&sh, STUDY, NULL));
    CHECK(share_check_scope(&sh, STUDY, SER1));
    CHECK(!share_check_scope(&sh, STUDY, SER2));
    CHECK(!share_check_scope(&sh, OTHER, NULL));
    CHECK(!share_check_scope(&sh, OTHER, SER1));
    CHECK(!share_check_scope(&sh, NULL, NULL));
    share_clear(&sh);
    CHECK_EQ_INT(resolve(db, tok, "10.0.0.2", T0 + 3600, &sh), SHARE_EXPIRED);
    CHECK_EQ_STR(sh.created_by, "alice"); /* the 410 page says whom to contact */
    share_clear(&sh);

    /* whole-study scope */
    q = base();
    CHECK_EQ_INT(share_create(db, &q, T0, tok, id, NULL), RS_OK);
    CHECK_EQ_INT(resolve(db, tok, "10.0.0.2", T0 + 10, &sh), SHARE_OK);
    CHECK(share_check_scope(&sh, STUDY, SER2));
    CHECK(!share_check_scope(&sh, OTHER, SER2));
    share_clear(&sh);

    /* revoked through another connection (as `radshare` or another server would): the next resolve sees it */
    share_db *other;
    CHECK_EQ_INT(share_open(dir, 30, &other, NULL), RS_OK);
    CHECK_EQ_INT(share_revoke(other, id, "bob", T0 + 20, NULL), RS_OK);
    CHECK_EQ_INT(share_revoke(other, id, "carol", T0 + 30, NULL), RS_OK);
    CHECK_EQ_INT(share_revoke(other, "nosuchshare0", "bob", T0 + 30, NULL), RS_ENOTFOUND);
    share_close(other);
    CHECK_EQ_INT(resolve(db, tok, "10.0.0.2", T0 + 21, &sh), SHARE_REVOKED);
    CHECK_EQ_INT(sh.revoked_at, T0 + 20);
    CHECK_EQ_STR(sh.revoked_by, "bob");
    share_clear(&sh);
    CHECK_EQ_INT(share_get(db, id, &sh, NULL), RS_OK);
    CHECK_EQ_INT(sh.revoked_at, T0 + 20);
    rs_buf j = RS_BUF_INIT;
    CHECK_EQ_INT(share_json(&j, &sh), RS_OK);
    char want[512];
    snprintf(want, sizeof want,
             "{\"id\":\"%s\",\"study\":\"" STUDY "\",\"series\":null,\"recipient\":{\"kind\":\"practitioner\","
             "\"name\":\"Dr. Anne Peeters\",\"email\":\"gp@example.org\",\"hl7\":null},\"purpose\":\"report\","
             "\"created_by\":\"alice\",\"created\":\"2027-01-15T08:00:00Z\",\"expires\":\"2027-02-14T08:00:00Z\","
             "\"revoked\":{\"at\":\"2027-01-15T08:00:20Z\",\"by\":\"bob\"},\"access_code\":\"none\",\"download\":false}",
             id);
    CHECK_EQ_STR((char *)j.p, want);
    share_clear(&sh);
    rs_buf_free(&j);
    CHECK_EQ_INT(share_get(db, "nosuchshare0", &sh, NULL), RS_ENOTFOUND);

    /* outside text is escaped in the JSON */
    q = base();
    q.name = "<script>\"x\"</script>\n";
    q.series = series;
    q.n_series = 1;
    CHECK_EQ_INT(share_create(db, &q, T0, tok, id, NULL), RS_OK);
    CHECK_EQ_INT(share_get(db, id, &sh, NULL), RS_OK);
    CHECK_EQ_INT(share_json(&j, &sh), RS_OK);
    CHECK(strstr((char *)j.p, "\"name\":\"<script>\\\"x\\\"</script>\\u000a\"") != NULL);
    CHECK(strstr((char *)j.p, "\"series\":[\"" SER1 "\"]") != NULL);
    share_clear(&sh);
    rs_buf_free(&j);

    /* the default is configurable */
    share_db *d7;
    CHECK_EQ_INT(share_open(dir, 7, &d7, NULL), RS_OK);
    q = base();
    CHECK_EQ_INT(share_create(d7, &q, T0, tok, id, NULL), RS_OK);
    CHECK_EQ_INT(resolve(d7, tok, "10.0.0.2", T0 + 7 * 86400 - 1, NULL), SHARE_OK);
    CHECK_EQ_INT(resolve(d7, tok, "10.0.0.2", T0 + 7 * 86400, NULL), SHARE_EXPIRED);
    share_close(d7);

    /* bad requests */
    q = base();
    q.study_uid = "1.2.3/../x";
    CHECK_EQ_INT(share_create(db, &q, T0, tok, id, NULL), RS_EINVAL);
    q = base();
    q.created_by = NULL;
    CHECK_EQ_INT(share_create(db, &q, T0, tok, id, NULL), RS_EINVAL);
    q = base();
    q.birth_date = "19800131"; /* practitioner */
    CHECK_EQ_INT(share_create(db, &q, T0, tok, id, NULL), RS_EINVAL);
}

static int count_share(const share *sh, void *ctx)
{
    ++*(int *)ctx;
    return 0;
}

static void test_list(share_db *db)
{
    char tok[TOKEN_CHARS + 1], id[SHARE_ID_CHARS + 1];
    share_new q = base();
    q.study_uid = OTHER;
    int before = 0, after = 0, all = 0;
    CHECK_EQ_INT(share_list(db, OTHER, count_share, &before, NULL), RS_OK);
    CHECK_EQ_INT(share_create(db, &q, T0, tok, id, NULL), RS_OK);
    CHECK_EQ_INT(share_create(db, &q, T0 + 1, tok, id, NULL), RS_OK);
    CHECK_EQ_INT(share_list(db, OTHER, count_share, &after, NULL), RS_OK);
    CHECK_EQ_INT(after - before, 2);
    CHECK_EQ_INT(share_list(db, NULL, count_share, &all, NULL), RS_OK);
    CHECK(all > after);
}

static share_code_result code(share_db *db, const share *sh, const char *c, const char *addr, int64_t now,
                              int64_t *retry)
{
    share_code_result r = SHARE_CODE_WRONG;
    int64_t dummy;
    CHECK_EQ_INT(share_verify_code(db, sh, c, addr, now, &r, retry ? retry : &dummy, NULL), RS_OK);
    return r;
}

static void test_codes(share_db **dbp)
{
    share_db *db = *dbp;
    char tok[TOKEN_CHARS + 1], id[SHARE_ID_CHARS + 1];
    share sh;
    int64_t retry = 0;
    share_new q = base();
    q.access_code = "4711-0815";
    CHECK_EQ_INT(share_create(db, &q, T0, tok, id, NULL), RS_OK);
    CHECK_EQ_INT(resolve(db, tok, "192.0.2.1", T0, &sh), SHARE_OK);
    CHECK_EQ_INT(sh.code_kind, SHARE_CODE_SECRET);
    CHECK(!share_grant_check(db, &sh, NULL, T0));
    CHECK_EQ_INT(code(db, &sh, "4711-0815", "192.0.2.1", T0, NULL), SHARE_CODE_ACCEPTED);
    char grant[TOKEN_CHARS + 1];
    int64_t gexp;
    CHECK_EQ_INT(share_grant_create(db, &sh, T0, grant, &gexp, NULL), RS_OK);
    CHECK_EQ_INT(gexp, T0 + SHARE_GRANT_MAX_S);
    CHECK(share_grant_check(db, &sh, grant, T0 + 5));
    CHECK(!share_grant_check(db, &sh, grant, gexp));
    CHECK(!share_grant_check(db, &sh, tok, T0 + 5)); /* the link token is not a grant */
    CHECK(!db_has(grant));

    /* per share: 5 failures from 5 addresses lock it for everybody, the right code included */
    char addr[32];
    for (int i = 0; i < SHARE_CODE_MAX; i++) {
        snprintf(addr, sizeof addr, "198.51.100.%d", i + 1);
        CHECK_EQ_INT(code(db, &sh, "0000-0000", addr, T0 + 100 + i, NULL), SHARE_CODE_WRONG);
    }
    CHECK_EQ_INT(code(db, &sh, "4711-0815", "203.0.113.9", T0 + 200, &retry), SHARE_CODE_LOCKED);
    CHECK_EQ_INT(retry, 100 + SHARE_CODE_WINDOW - 200);
    /* the lock is in the database: it survives a restart */
    share_close(db);
    CHECK_EQ_INT(share_open(dir, 30, dbp, NULL), RS_OK);
    db = *dbp;
    CHECK_EQ_INT(code(db, &sh, "4711-0815", "203.0.113.9", T0 + 300, &retry), SHARE_CODE_LOCKED);
    CHECK(retry > 0 && retry <= SHARE_CODE_WINDOW);
    /* the oldest failure leaves the window: one more try is allowed */
    CHECK_EQ_INT(code(db, &sh, "4711-0815", "203.0.113.9", T0 + 100 + SHARE_CODE_WINDOW + 1, NULL),
                 SHARE_CODE_ACCEPTED);
    share_clear(&sh);

    /* per address: one address failing on 5 different shares is locked on a sixth, others are not */
    share s2[SHARE_CODE_MAX + 1];
    for (int i = 0; i <= SHARE_CODE_MAX; i++) {
        CHECK_EQ_INT(share_create(db, &q, T0, tok, id, NULL), RS_OK);
        CHECK_EQ_INT(resolve(db, tok, "192.0.2.1", T0, &s2[i]), SHARE_OK);
    }
    for (int i = 0; i < SHARE_CODE_MAX; i++)
        CHECK_EQ_INT(code(db, &s2[i], "bad-guess", "192.0.2.66", T0 + 5000, NULL), SHARE_CODE_WRONG);
    CHECK_EQ_INT(code(db, &s2[SHARE_CODE_MAX], "4711-0815", "192.0.2.66", T0 + 5001, &retry), SHARE_CODE_LOCKED);
    CHECK_EQ_INT(retry, SHARE_CODE_WINDOW - 1);
    CHECK_EQ_INT(code(db, &s2[SHARE_CODE_MAX], "4711-0815", "192.0.2.67", T0 + 5001, NULL), SHARE_CODE_ACCEPTED);
    CHECK_EQ_INT(code(db, &s2[0], "4711-0815", "192.0.2.67", T0 + 5001, NULL), SHARE_CODE_ACCEPTED);
    for (int i = 0; i <= SHARE_CODE_MAX; i++)
        share_clear(&s2[i]);

    /* patient link with the birth date as second factor, in either spelling */
    q = base();
    q.kind = SHARE_PATIENT;
    q.birth_date = "1980-01-31";
    CHECK_EQ_INT(share_create(db, &q, T0, tok, id, NULL), RS_OK);
    CHECK_EQ_INT(resolve(db, tok, "192.0.2.1", T0, &sh), SHARE_OK);
    CHECK_EQ_INT(sh.kind, SHARE_PATIENT);
    CHECK_EQ_INT(sh.code_kind, SHARE_CODE_BIRTHDATE);
    CHECK_EQ_INT(code(db, &sh, "19800130", "192.0.2.5", T0, NULL), SHARE_CODE_WRONG);
    CHECK_EQ_INT(code(db, &sh, "", "192.0.2.5", T0, NULL), SHARE_CODE_WRONG);
    CHECK_EQ_INT(code(db, &sh, "19800131", "192.0.2.5", T0, NULL), SHARE_CODE_ACCEPTED);
    CHECK_EQ_INT(code(db, &sh, "1980-01-31", "192.0.2.5", T0, NULL), SHARE_CODE_ACCEPTED);
    /* a revoked share's grants stop working */
    CHECK_EQ_INT(share_grant_create(db, &sh, T0, grant, &gexp, NULL), RS_OK);
    CHECK(share_grant_check(db, &sh, grant, T0 + 1));
    CHECK_EQ_INT(share_revoke(db, sh.id, "alice", T0 + 2, NULL), RS_OK);
    CHECK(!share_grant_check(db, &sh, grant, T0 + 3));
    share_clear(&sh);
}

static void test_guessing(share_db *db)
{
    char tok[TOKEN_CHARS + 1], id[SHARE_ID_CHARS + 1], guess[TOKEN_CHARS + 1];
    share_new q = base();
    CHECK_EQ_INT(share_create(db, &q, T0, tok, id, NULL), RS_OK);
    int unknown = 0, throttled = 0;
    int64_t retry = 0;
    for (int i = 0; i < 1000; i++) {
        share_status st;
        share tmp;
        token_new(guess);
        CHECK_EQ_INT(share_resolve(db, guess, "203.0.113.50", T0 + 10 + i / 100, &tmp, &st, &retry, NULL), RS_OK);
        share_clear(&tmp);
        unknown += st == SHARE_UNKNOWN;
        throttled += st == SHARE_THROTTLED;
    }
    CHECK_EQ_INT(unknown, SHARE_GUESS_MAX);
    CHECK_EQ_INT(throttled, 1000 - SHARE_GUESS_MAX);
    CHECK(retry > 0 && retry <= SHARE_GUESS_WINDOW);
    /* the throttled address is refused even with a real token; another address is not */
    CHECK_EQ_INT(resolve(db, tok, "203.0.113.50", T0 + 20, NULL), SHARE_THROTTLED);
    CHECK_EQ_INT(resolve(db, tok, "203.0.113.51", T0 + 20, NULL), SHARE_OK);
    /* the window passes */
    CHECK_EQ_INT(resolve(db, tok, "203.0.113.50", T0 + 10 + SHARE_GUESS_WINDOW, NULL), SHARE_OK);
}

/* The SVG's runs redrawn into a matrix are exactly libqrencode's modules; refusals for nothing / too long. */
static void test_qr(void)
{
    const char *url = "https://radshare.example.org/s/4dkQ5bGrQbu1XkuYjTwkiDlUYNkBgXZLBu_eJiR7LAw";
    rs_buf b = RS_BUF_INIT;
    rs_err err;
    CHECK_EQ_INT(share_qr_svg(url, &b, &err), RS_OK);
    QRcode *q = QRcode_encodeString8bit(url, 0, QR_ECLEVEL_M);
    CHECK(q != NULL);
    if (!q || !b.p)
        return;
    int w = q->width, side = 0, x, y, run, dark = 0, same = 1;
    CHECK(strncmp((char *)b.p, "<svg ", 5) == 0 && strstr((char *)b.p, "</svg>") != NULL);
    const char *vb = strstr((char *)b.p, "viewBox=\"0 0 ");
    CHECK(vb && sscanf(vb + 13, "%d", &side) == 1 && side == w + 8);
    unsigned char *m = calloc((size_t)w * w, 1);
    for (const char *p = strstr((char *)b.p, " d=\""); p && (p = strchr(p, 'M')); p++)
        if (sscanf(p, "M%d %dh%dv1h-", &x, &y, &run) == 3 && y - 4 < w)
            for (int i = 0; i < run && x - 4 + i < w; i++)
                m[(y - 4) * w + x - 4 + i] = 1;
    for (int i = 0; i < w * w; i++) {
        same &= m[i] == (q->data[i] & 1);
        dark += m[i];
    }
    CHECK(same && dark > w);
    free(m);
    QRcode_free(q);
    CHECK_EQ_INT(share_qr_svg("", &b, &err), RS_EINVAL);
    char *big = malloc(SHARE_QR_MAX_TEXT + 2);
    memset(big, 'a', SHARE_QR_MAX_TEXT + 1);
    big[SHARE_QR_MAX_TEXT + 1] = 0;
    CHECK_EQ_INT(share_qr_svg(big, &b, &err), RS_EINVAL);
    free(big);
    rs_buf_free(&b);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/rs-test-share-XXXXXX");
    if (!mkdtemp(dir))
        return 2;
    share_db *db;
    CHECK_EQ_INT(share_open(dir, 30, &db, NULL), RS_OK);
    CHECK_EQ_INT(share_open(dir, 0, &(share_db *){NULL}, NULL), RS_EINVAL);
    test_tokens(db);
    test_at_rest();
    test_expiry_revoke_scope(db);
    test_list(db);
    test_codes(&db);
    test_guessing(db);
    test_qr();
    share_close(db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return t_done();
}
