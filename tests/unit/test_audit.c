/*
 * test_audit.c - the hash-chained audit log on a real directory: append and verify, every kind of
 * tampering (an edited, deleted, inserted, reordered line, a cut line, a log cut at a line boundary,
 * a missing file) named with its file and line, rotation with the chain going on, a torn last line
 * repaired on reopen, queries, and concurrent appends from threads and from two processes.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit/audit.h"
#include "t.h"

#define STUDY "1.2.826.0.1.3680043.8.498.7"

static char root[64];

static void fresh(char *dir, size_t cap, const char *name)
{
    snprintf(dir, cap, "%s/%s", root, name);
    mkdir(dir, 0755);
}

static void fill(const char *dir, int n, uint64_t max_bytes)
{
    audit_log *a;
    CHECK_EQ_INT(audit_open(dir, max_bytes, &a, NULL), RS_OK);
    for (int i = 0; i < n; i++) {
        char share[16], detail[64];
        snprintf(share, sizeof share, "sh%02d", i % 3);
        snprintf(detail, sizeof detail, "{\"n\":%d,\"what\":[1,\"two\",null]}", i);
        CHECK_EQ_INT(audit_append(a, i % 2 ? "share.opened" : "share.created", share, i % 4 ? STUDY : "1.2.3",
                                  "192.0.2.7", "Mozilla/5.0 \"quoted\" \x01\xc3\xa9", detail, NULL, NULL),
                     RS_OK);
    }
    audit_close(a);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = malloc(1 << 20);
    *n = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

/* Byte offset of the start of line k (1-based) */
static size_t line_at(const char *b, size_t n, int k)
{
    size_t off = 0;
    for (int i = 1; i < k && off < n; i++)
        off = (size_t)((const char *)memchr(b + off, '\n', n - off) - b) + 1;
    return off;
}

static audit_report verify(const char *dir)
{
    audit_report r;
    CHECK_EQ_INT(audit_verify(dir, &r, NULL), RS_OK);
    return r;
}

#define CHECK_BROKEN_AT(dir, fname, ln)                      \
    do {                                                     \
        audit_report r_ = verify(dir);                       \
        CHECK_EQ_INT(r_.ok, 0);                              \
        CHECK(strstr(r_.file, fname) != NULL);               \
        CHECK_EQ_INT(r_.line, ln);                           \
        fprintf(stderr, "  (%s:%llu: %s)\n", r_.file, (unsigned long long)r_.line, r_.problem); \
    } while (0)

typedef enum { EDIT, DELETE, INSERT, SWAP, CUT_MID, CUT_LINE } damage;

/* Fill a log of 10 records, damage line 4 of 000001.log, verify. */
static void tamper(const char *name, damage how, int expect_line)
{
    char dir[128], file[160];
    fresh(dir, sizeof dir, name);
    fill(dir, 10, 0);
    CHECK_EQ_INT(verify(dir).ok, 1);
    snprintf(file, sizeof file, "%s/audit/000001.log", dir);
    size_t n;
    char *b = slurp(file, &n), *o = malloc(n * 2);
    size_t l4 = line_at(b, n, 4), l5 = line_at(b, n, 5), l6 = line_at(b, n, 6), m = 0;
    switch (how) {
    case EDIT: /* change one digit of the address */
        memcpy(o, b, n), m = n;
        *strstr(o + l4, "192.0.2.7") = '8';
        break;
    case DELETE:
        memcpy(o, b, l4), memcpy(o + l4, b + l5, n - l5), m = n - (l5 - l4);
        break;
    case INSERT: /* a copy of line 4 after it */
        memcpy(o, b, l5), memcpy(o + l5, b + l4, l5 - l4), memcpy(o + l5 + (l5 - l4), b + l5, n - l5);
        m = n + (l5 - l4);
        break;
    case SWAP: /* lines 4 and 5 */
        memcpy(o, b, l4), memcpy(o + l4, b + l5, l6 - l5), memcpy(o + l4 + (l6 - l5), b + l4, l5 - l4);
        memcpy(o + l6, b + l6, n - l6), m = n;
        break;
    case CUT_MID: /* the file ends in the middle of line 4 */
        memcpy(o, b, l4 + 20), m = l4 + 20;
        break;
    case CUT_LINE: /* the file ends after line 3: the head knows better */
        memcpy(o, b, l4), m = l4;
        break;
    }
    spit(file, o, m);
    if (how == CUT_LINE) {
        audit_report r = verify(dir);
        CHECK_EQ_INT(r.ok, 0);
        CHECK(strstr(r.file, "head") != NULL);
        CHECK(strstr(r.problem, "cut") != NULL);
    } else {
        CHECK_BROKEN_AT(dir, "000001.log", expect_line);
    }
    free(b);
    free(o);
}

static int collect(const audit_record *r, void *ctx)
{
    int *n = ctx;
    CHECK(r->line[0] == '{' && r->line[r->len - 1] == '}');
    CHECK(memchr(r->line, '\n', r->len) == NULL);
    n[0]++;
    n[1] += !strcmp(r->event, "share.opened");
    return 0;
}

static void test_basic(void)
{
    char dir[128], file[160];
    fresh(dir, sizeof dir, "basic");
    fill(dir, 10, 0);
    audit_report r = verify(dir);
    CHECK_EQ_INT(r.ok, 1);
    CHECK_EQ_INT(r.records, 10);
    CHECK_EQ_INT(r.files, 1);
    CHECK_EQ_INT(r.last_seq, 10);
    /* reopening continues the chain */
    fill(dir, 5, 0);
    r = verify(dir);
    CHECK_EQ_INT(r.ok, 1);
    CHECK_EQ_INT(r.records, 15);
    /* the line format of the contract */
    snprintf(file, sizeof file, "%s/audit/000001.log", dir);
    size_t n;
    char *b = slurp(file, &n);
    CHECK(!strncmp(b, "{\"seq\":1,\"time\":\"20", 19));
    CHECK(strstr(b, "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"hash\":\"") != NULL);
    CHECK(strstr(b, "\"ua\":\"Mozilla/5.0 \\\"quoted\\\" \\u0001\\u00c3\\u00a9\"") != NULL);
    free(b);
    /* queries */
    int cnt[2] = {0, 0};
    CHECK_EQ_INT(audit_query(dir, STUDY, NULL, collect, cnt, NULL), RS_OK);
    CHECK_EQ_INT(cnt[0], 10); /* i % 4 != 0: 7 of 0..9 and 3 of 0..4 */
    memset(cnt, 0, sizeof cnt);
    CHECK_EQ_INT(audit_query(dir, NULL, "sh01", collect, cnt, NULL), RS_OK);
    CHECK_EQ_INT(cnt[0], 5); /* i = 1,4,7 and 1,4 */
    memset(cnt, 0, sizeof cnt);
    CHECK_EQ_INT(audit_query(dir, STUDY, "sh01", collect, cnt, NULL), RS_OK);
    CHECK_EQ_INT(cnt[0], 3); /* 1, 7 and 1 */
    /* bad input is refused, not written */
    audit_log *a;
    CHECK_EQ_INT(audit_open(dir, 0, &a, NULL), RS_OK);
    CHECK_EQ_INT(audit_append(a, "Bad Event", NULL, NULL, NULL, NULL, NULL, NULL, NULL), RS_EINVAL);
    CHECK_EQ_INT(audit_append(a, "x.y", NULL, NULL, NULL, NULL, "{\"a\":1}\n{", NULL, NULL), RS_EINVAL);
    CHECK_EQ_INT(audit_append(a, "x.y", NULL, NULL, NULL, NULL, "[1]", NULL, NULL), RS_EINVAL);
    CHECK_EQ_INT(audit_append(a, "x.y", NULL, NULL, NULL, NULL, "{\"a\":", NULL, NULL), RS_EINVAL);
    uint64_t seq = 0;
    CHECK_EQ_INT(audit_append(a, "x.y", NULL, NULL, NULL, NULL, NULL, &seq, NULL), RS_OK);
    CHECK_EQ_INT(seq, 16);
    audit_close(a);
    CHECK_EQ_INT(verify(dir).records, 16);
}

static void test_rotation(void)
{
    char dir[128], file[160];
    fresh(dir, sizeof dir, "rotate");
    fill(dir, 40, 2000);
    audit_report r = verify(dir);
    CHECK_EQ_INT(r.ok, 1);
    CHECK_EQ_INT(r.records, 40);
    CHECK(r.files >= 5);
    snprintf(file, sizeof file, "%s/audit/000002.log", dir);
    struct stat st;
    CHECK(stat(file, &st) == 0 && st.st_size <= 2000);
    fill(dir, 5, 2000);
    CHECK_EQ_INT(verify(dir).records, 45);
    /* a whole file removed */
    CHECK(unlink(file) == 0);
    r = verify(dir);
    CHECK_EQ_INT(r.ok, 0);
    CHECK(strstr(r.file, "000003.log") != NULL);
}

static void test_torn(void)
{
    char dir[128], file[160];
    fresh(dir, sizeof dir, "torn");
    fill(dir, 6, 0);
    snprintf(file, sizeof file, "%s/audit/000001.log", dir);
    size_t n;
    char *b = slurp(file, &n);
    spit(file, b, n - 30); /* a crash in the middle of the last append */
    free(b);
    CHECK_BROKEN_AT(dir, "000001.log", 6);
    /* the writer cuts the torn line and says so in the chain; the chain verifies again */
    fill(dir, 2, 0);
    audit_report r = verify(dir);
    CHECK_EQ_INT(r.ok, 1);
    CHECK_EQ_INT(r.records, 5 + 1 + 2);
    CHECK_EQ_INT(r.torn_repairs, 1);
    /* a log cut at a line boundary is written into the chain as audit.truncated, which verify reports */
    b = slurp(file, &n);
    spit(file, b, line_at(b, n, 8));
    free(b);
    fill(dir, 1, 0);
    r = verify(dir);
    CHECK_EQ_INT(r.ok, 0);
    CHECK_EQ_INT(r.line, 8);
    CHECK(strstr(r.problem, "cut") != NULL);
}

typedef struct thr {
    audit_log *a;
    int n, id;
} thr;

static void *writer(void *p)
{
    thr *t = p;
    char share[16];
    snprintf(share, sizeof share, "t%d", t->id);
    for (int i = 0; i < t->n; i++)
        if (audit_append(t->a, "image.viewed", share, STUDY, "::1", "test", "{}", NULL, NULL) != RS_OK)
            return (void *)1;
    return NULL;
}

static int run_threads(const char *dir, int nthreads, int each, uint64_t max_bytes)
{
    audit_log *a;
    if (audit_open(dir, max_bytes, &a, NULL) != RS_OK)
        return 1;
    pthread_t th[8];
    thr t[8];
    int bad = 0;
    for (int i = 0; i < nthreads; i++) {
        t[i] = (thr){a, each, i};
        pthread_create(&th[i], NULL, writer, &t[i]);
    }
    for (int i = 0; i < nthreads; i++) {
        void *res;
        pthread_join(th[i], &res);
        bad |= res != NULL;
    }
    audit_close(a);
    return bad;
}

static void test_concurrent(void)
{
    char dir[128];
    fresh(dir, sizeof dir, "threads");
    CHECK_EQ_INT(run_threads(dir, 4, 100, 0), 0);
    audit_report r = verify(dir);
    CHECK_EQ_INT(r.ok, 1);
    CHECK_EQ_INT(r.records, 400);

    /* two processes, each with 3 threads, appending to the same log, rotating small files */
    fresh(dir, sizeof dir, "procs");
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] == 0)
            _exit(run_threads(dir, 3, 60, 8192));
    }
    for (int k = 0; k < 2; k++) {
        int st;
        waitpid(kids[k], &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    r = verify(dir);
    CHECK_EQ_INT(r.ok, 1);
    CHECK_EQ_INT(r.records, 360);
    CHECK(r.files > 3);
    if (!r.ok)
        fprintf(stderr, "  (%s:%llu: %s)\n", r.file, (unsigned long long)r.line, r.problem);
}

int main(int argc, char **argv)
{
    /* used by tests/share/test_cli.py to write a log with the real writer */
    if (argc == 4 && !strcmp(argv[1], "--write")) {
        fill(argv[2], atoi(argv[3]), 0);
        return t_failures != 0;
    }
    snprintf(root, sizeof root, "/tmp/rs-test-audit-XXXXXX");
    if (!mkdtemp(root))
        return 2;
    test_basic();
    tamper("edit", EDIT, 4);
    tamper("delete", DELETE, 4);
    tamper("insert", INSERT, 5);
    tamper("swap", SWAP, 4);
    tamper("cutmid", CUT_MID, 4);
    tamper("cutline", CUT_LINE, 0);
    test_rotation();
    test_torn();
    test_concurrent();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        return 2;
    return t_done();
}
