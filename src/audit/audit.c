/* audit.c - see audit.h. */
#include "audit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../util/buf.h"
#include "../util/fdio.h"

#define HEAD_FILE "head"
#define HEAD_LEN (20 + 1 + AUDIT_HASH_HEX + 1)
#define MAX_FILES 1000000u
#define MAX_UA 512
#define MAX_FIELD 256

static const char zero_hash[AUDIT_HASH_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

struct audit_log {
    pthread_mutex_t mu;
    char dir[PATH_MAX];
    int dirfd;   /* flock'ed around every append; openat base */
    int fd;      /* current file, O_APPEND */
    int headfd;
    unsigned cur;
    uint64_t size; /* of the current file, as we last wrote or read it */
    uint64_t seq;
    char prev[AUDIT_HASH_HEX + 1];
    uint64_t max_bytes;
};

/* ---- parsing one line ------------------------------------------------------------------------- */

typedef struct span {
    const char *p;
    size_t n;
} span;

typedef struct parsed {
    uint64_t seq;
    span f[9];       /* time event share study addr ua detail prev hash: the value text */
    size_t body_len; /* bytes before `,"hash":` */
} parsed;

enum { F_TIME, F_EVENT, F_SHARE, F_STUDY, F_ADDR, F_UA, F_DETAIL, F_PREV, F_HASH };
static const char *const field_names[] = {"time", "event", "share", "study", "addr", "ua", "detail", "prev", "hash"};

static int skip_value(const char *p, size_t n, size_t *i, int depth);

static int skip_string(const char *p, size_t n, size_t *i)
{
    if (*i >= n || p[*i] != '"')
        return -1;
    for (size_t j = *i + 1; j < n; j++) {
        unsigned char c = (unsigned char)p[j];
        if (c == '"') {
            *i = j + 1;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\')
            j++;
    }
    return -1;
}

static int skip_container(const char *p, size_t n, size_t *i, int depth, char close)
{
    size_t j = *i + 1;
    if (j < n && p[j] == close) {
        *i = j + 1;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            if (skip_string(p, n, &j) || j >= n || p[j++] != ':')
                return -1;
        }
        if (skip_value(p, n, &j, depth + 1) || j >= n)
            return -1;
        if (p[j] == close) {
            *i = j + 1;
            return 0;
        }
        if (p[j++] != ',')
            return -1;
    }
}

static int skip_value(const char *p, size_t n, size_t *i, int depth)
{
    if (*i >= n || depth > 32)
        return -1;
    char c = p[*i];
    if (c == '"')
        return skip_string(p, n, i);
    if (c == '{' || c == '[')
        return skip_container(p, n, i, depth, c == '{' ? '}' : ']');
    size_t j = *i;
    while (j < n && (strchr("-+.0123456789eE", p[j]) || (p[j] >= 'a' && p[j] <= 'z')))
        j++;
    if (j == *i)
        return -1;
    span v = {p + *i, j - *i};
    if (c >= 'a' && !((v.n == 4 && !memcmp(v.p, "null", 4)) || (v.n == 4 && !memcmp(v.p, "true", 4)) ||
                      (v.n == 5 && !memcmp(v.p, "false", 5))))
        return -1;
    *i = j;
    return 0;
}

static int is_hex64(span s)
{
    if (s.n != AUDIT_HASH_HEX + 2)
        return 0;
    for (size_t k = 1; k <= AUDIT_HASH_HEX; k++)
        if (!strchr("0123456789abcdef", s.p[k]))
            return 0;
    return 1;
}

/* Parse a record line (without its newline); NULL on success, else what is wrong. */
static const char *parse_line(const char *p, size_t n, parsed *r)
{
    static const char seq_key[] = "{\"seq\":";
    size_t i = sizeof seq_key - 1;
    memset(r, 0, sizeof *r);
    if (n < i || memcmp(p, seq_key, i))
        return "not an audit record (no leading seq)";
    if (i >= n || p[i] < '0' || p[i] > '9')
        return "seq is not a number";
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        if (r->seq > UINT64_MAX / 10 - 10)
            return "seq out of range";
        r->seq = r->seq * 10 + (uint64_t)(p[i] - '0');
    }
    for (int f = 0; f <= F_HASH; f++) {
        size_t kl = strlen(field_names[f]);
        if (f == F_HASH)
            r->body_len = i;
        if (i + kl + 4 > n || p[i] != ',' || p[i + 1] != '"' || memcmp(p + i + 2, field_names[f], kl) ||
            p[i + 2 + kl] != '"' || p[i + 3 + kl] != ':')
            return "members missing or out of order";
        i += kl + 4;
        size_t start = i;
        if (skip_value(p, n, &i, 0))
            return "malformed JSON value";
        r->f[f] = (span){p + start, i - start};
        char c = p[start];
        if ((f == F_DETAIL && c != '{') || ((f == F_PREV || f == F_HASH) && !is_hex64(r->f[f])) ||
            ((f == F_TIME || f == F_EVENT) && c != '"') || (f != F_DETAIL && c != '"' && c != 'n'))
            return "a member has the wrong type";
    }
    if (i + 1 != n || p[i] != '}')
        return "text after the record";
    return NULL;
}

/* The string value without its quotes into out ("" for null or too long). */
static void span_copy(span s, char *out, size_t cap)
{
    out[0] = 0;
    if (s.n >= 2 && s.p[0] == '"' && s.n - 2 < cap) {
        memcpy(out, s.p + 1, s.n - 2);
        out[s.n - 2] = 0;
    }
}

static void hash_body(const char *p, size_t body_len, char hex[AUDIT_HASH_HEX + 1])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)p, body_len);
    crypto_hash_sha256_update(&st, (const unsigned char *)"}", 1);
    crypto_hash_sha256_final(&st, d);
    sodium_bin2hex(hex, AUDIT_HASH_HEX + 1, d, sizeof d);
}

/* ---- files ------------------------------------------------------------------------------------ */

static void file_name(char out[16], unsigned n)
{
    snprintf(out, 16, "%06u.log", n % MAX_FILES);
}

static int cmp_uint(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

/* The numbers of the NNNNNN.log files in dir, sorted. */
static int list_files(const char *dir, unsigned **out, size_t *n, rs_err *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? RS_OK : rs_err_set(err, RS_EIO, "%s: %s", dir, strerror(errno));
    size_t cap = 0;
    int rc = RS_OK;
    struct dirent *e;
    while ((e = readdir(d)) && rc == RS_OK) {
        unsigned v = 0;
        size_t k = 0;
        for (; k < 6 && e->d_name[k] >= '0' && e->d_name[k] <= '9'; k++)
            v = v * 10 + (unsigned)(e->d_name[k] - '0');
        if (k != 6 || strcmp(e->d_name + 6, ".log") || v == 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            unsigned *g = cap < MAX_FILES ? realloc(*out, cap * sizeof *g) : NULL;
            if (!g) {
                rc = rs_err_set(err, RS_ENOMEM, "too many audit files");
                break;
            }
            *out = g;
        }
        (*out)[(*n)++] = v;
    }
    closedir(d);
    if (rc == RS_OK && *n)
        qsort(*out, *n, sizeof **out, cmp_uint);
    return rc;
}

static int open_file(audit_log *a, unsigned n, int create, rs_err *err)
{
    char name[16];
    file_name(name, n);
    int fd = openat(a->dirfd, name, O_WRONLY | O_APPEND | O_CLOEXEC | (create ? O_CREAT : 0), 0640);
    if (fd < 0)
        return rs_err_set(err, RS_EIO, "%s/%s: %s", a->dir, name, strerror(errno));
    if (create && fsync(a->dirfd) != 0) {
        close(fd);
        return rs_err_set(err, RS_EIO, "%s: %s", a->dir, strerror(errno));
    }
    if (a->fd >= 0)
        close(a->fd);
    a->fd = fd;
    a->cur = n;
    return RS_OK;
}

/* The last complete line of file n: *found = 0 when it has none. *good = bytes up to and including
 * its last newline (less than the size when the last line is torn). */
static int last_record(audit_log *a, unsigned n, int *found, uint64_t *seq, char hash[AUDIT_HASH_HEX + 1],
                       uint64_t *size, uint64_t *good, rs_err *err)
{
    char name[16];
    struct stat st;
    *found = 0;
    file_name(name, n);
    int fd = openat(a->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        int rc = rs_err_set(err, RS_EIO, "%s/%s: %s", a->dir, name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    *size = (uint64_t)st.st_size;
    size_t want = *size < 2 * AUDIT_MAX_LINE ? (size_t)*size : 2 * AUDIT_MAX_LINE;
    char *buf = malloc(want + 1);
    int rc = buf ? rs_pread_all(fd, buf, want, *size - want) : RS_ENOMEM;
    close(fd);
    if (rc) {
        free(buf);
        return rs_err_set(err, rc, "%s/%s: cannot read its end", a->dir, name);
    }
    size_t end = want;
    while (end > 0 && buf[end - 1] != '\n')
        end--;
    *good = *size - (want - end);
    if (end > 0) {
        size_t start = end - 1;
        while (start > 0 && buf[start - 1] != '\n')
            start--;
        parsed r;
        const char *why = parse_line(buf + start, end - 1 - start, &r);
        if (why) {
            rc = rs_err_set(err, RS_EFORMAT, "%s/%s: last record: %s", a->dir, name, why);
        } else {
            *found = 1;
            *seq = r.seq;
            memcpy(hash, r.f[F_HASH].p + 1, AUDIT_HASH_HEX);
            hash[AUDIT_HASH_HEX] = 0;
        }
    }
    free(buf);
    return rc;
}

static int read_head(audit_log *a, uint64_t *seq)
{
    char b[HEAD_LEN + 1];
    *seq = 0;
    if (rs_pread_all(a->headfd, b, HEAD_LEN, 0) != RS_OK)
        return 0;
    b[HEAD_LEN] = 0;
    char *end;
    *seq = strtoull(b, &end, 10);
    return end == b + 20;
}

static int write_head(audit_log *a, rs_err *err)
{
    char b[HEAD_LEN + 1];
    snprintf(b, sizeof b, "%020llu %s\n", (unsigned long long)a->seq, a->prev);
    if (pwrite(a->headfd, b, HEAD_LEN, 0) != HEAD_LEN || fdatasync(a->headfd) != 0)
        return rs_err_set(err, RS_EIO, "%s/%s: %s", a->dir, HEAD_FILE, strerror(errno));
    return RS_OK;
}

/* Find where the chain ends (the newest file, its last record) and cut a torn last line.
 * Called with the directory flock held. *torn = bytes cut. */
static int load_state(audit_log *a, uint64_t *torn, rs_err *err)
{
    unsigned *nums;
    size_t n;
    *torn = 0;
    int rc = list_files(a->dir, &nums, &n, err);
    if (rc)
        return rc;
    a->seq = 0;
    memcpy(a->prev, zero_hash, sizeof zero_hash);
    a->size = 0;
    if (n == 0) {
        rc = open_file(a, 1, 1, err);
        goto out;
    }
    if ((rc = open_file(a, nums[n - 1], 0, err)))
        goto out;
    for (size_t k = n; k-- > 0 && rc == RS_OK;) {
        int found;
        uint64_t size = 0, good = 0;
        rc = last_record(a, nums[k], &found, &a->seq, a->prev, &size, &good, err);
        if (rc == RS_OK && k == n - 1) {
            if (good < size) {
                /* a write cut by a crash: never acknowledged, so not a record; cut it and say so */
                if (ftruncate(a->fd, (off_t)good) != 0 || fdatasync(a->fd) != 0)
                    rc = rs_err_set(err, RS_EIO, "%s: cannot cut a torn line: %s", a->dir, strerror(errno));
                *torn = size - good;
            }
            a->size = good;
        }
        if (found)
            break;
    }
out:
    free(nums);
    return rc;
}

/* ---- writing ---------------------------------------------------------------------------------- */

int audit_json_string(rs_buf *b, const char *s, size_t max)
{
    if (!s)
        return rs_buf_puts(b, "null");
    int rc = rs_buf_putc(b, '"');
    for (size_t i = 0; s[i] && i < max && rc == RS_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            rc = rs_buf_putc(b, '\\') || rs_buf_putc(b, c) ? RS_ENOMEM : RS_OK;
        else if (c < 0x20 || c >= 0x7f) /* bytes from outside (user agents) need not be UTF-8 */
            rc = rs_buf_printf(b, "\\u%04x", c);
        else
            rc = rs_buf_putc(b, c);
    }
    return rc ? rc : rs_buf_putc(b, '"');
}

static int event_ok(const char *e)
{
    size_t n = e ? strlen(e) : 0;
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((e[i] >= 'a' && e[i] <= 'z') || (e[i] >= '0' && e[i] <= '9') || e[i] == '.' || e[i] == '_'))
            return 0;
    return 1;
}

static int detail_ok(const char *d)
{
    size_t n = strlen(d), i = 0;
    if (n > AUDIT_MAX_DETAIL || d[0] != '{' || memchr(d, '\n', n))
        return 0;
    return skip_value(d, n, &i, 0) == 0 && i == n;
}

static void now_iso(char out[96])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 96, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000) % 1000);
}

static int build_line(audit_log *a, rs_buf *b, const char *event, const char *share_id, const char *study,
                      const char *addr, const char *ua, const char *detail)
{
    char t[96], hex[AUDIT_HASH_HEX + 1];
    now_iso(t);
    int rc = rs_buf_printf(b, "{\"seq\":%llu,\"time\":\"%s\",\"event\":\"%s\",\"share\":",
                           (unsigned long long)(a->seq + 1), t, event);
    rc = rc ? rc : audit_json_string(b, share_id, MAX_FIELD);
    rc = rc ? rc : rs_buf_puts(b, ",\"study\":");
    rc = rc ? rc : audit_json_string(b, study, MAX_FIELD);
    rc = rc ? rc : rs_buf_puts(b, ",\"addr\":");
    rc = rc ? rc : audit_json_string(b, addr, MAX_FIELD);
    rc = rc ? rc : rs_buf_puts(b, ",\"ua\":");
    rc = rc ? rc : audit_json_string(b, ua, MAX_UA);
    rc = rc ? rc : rs_buf_printf(b, ",\"detail\":%s,\"prev\":\"%s\"", detail, a->prev);
    if (rc)
        return RS_ENOMEM;
    hash_body((const char *)b->p, b->len, hex);
    return rs_buf_printf(b, ",\"hash\":\"%s\"}\n", hex);
}

/* Write one record; mutex and flock held, state current. */
static int append_locked(audit_log *a, const char *event, const char *share_id, const char *study,
                         const char *addr, const char *ua, const char *detail, uint64_t *seq_out, rs_err *err)
{
    rs_buf b = RS_BUF_INIT;
    int rc = build_line(a, &b, event, share_id, study, addr, ua, detail);
    if (rc) {
        rs_buf_free(&b);
        return rs_err_set(err, rc, "out of memory");
    }
    if (a->size > 0 && a->size + b.len > a->max_bytes) {
        rc = a->cur + 1 < MAX_FILES ? open_file(a, a->cur + 1, 1, err)
                                    : rs_err_set(err, RS_ELIMIT, "audit: no more file numbers");
        if (rc) {
            rs_buf_free(&b);
            return rc;
        }
        a->size = 0;
    }
    ssize_t w = write(a->fd, b.p, b.len);
    if ((w != (ssize_t)b.len || fdatasync(a->fd) != 0)) {
        rc = rs_err_set(err, RS_EIO, "%s: cannot append: %s", a->dir, w < 0 ? strerror(errno) : "short write");
        if (w > 0 && ftruncate(a->fd, (off_t)a->size) != 0)
            rs_err_set(err, RS_EIO, "%s: cannot undo a short append: %s", a->dir, strerror(errno));
    }
    if (rc == RS_OK) {
        const char *h = (const char *)b.p + b.len - 2 - AUDIT_HASH_HEX - 1;
        memcpy(a->prev, h, AUDIT_HASH_HEX);
        a->seq++;
        a->size += b.len;
        if (seq_out)
            *seq_out = a->seq;
        rc = write_head(a, err);
    }
    rs_buf_free(&b);
    return rc;
}

/* Another process may have appended (or rotated) since our last append: then re-read the tail. */
static int refresh(audit_log *a, rs_err *err)
{
    struct stat st;
    char next[16];
    file_name(next, a->cur + 1);
    if (fstat(a->fd, &st) != 0)
        return rs_err_set(err, RS_EIO, "%s: %s", a->dir, strerror(errno));
    if ((uint64_t)st.st_size == a->size && faccessat(a->dirfd, next, F_OK, 0) != 0)
        return RS_OK;
    uint64_t torn;
    int rc = load_state(a, &torn, err);
    if (rc == RS_OK && torn) {
        char d[64];
        snprintf(d, sizeof d, "{\"bytes\":%llu}", (unsigned long long)torn);
        rc = append_locked(a, "audit.torn", NULL, NULL, NULL, NULL, d, NULL, err);
    }
    return rc;
}

static int lock_dir(audit_log *a, rs_err *err)
{
    while (flock(a->dirfd, LOCK_EX) != 0)
        if (errno != EINTR)
            return rs_err_set(err, RS_EIO, "%s: cannot lock: %s", a->dir, strerror(errno));
    return RS_OK;
}

int audit_append(audit_log *a, const char *event, const char *share_id, const char *study, const char *addr,
                 const char *ua, const char *detail_json, uint64_t *seq_out, rs_err *err)
{
    const char *detail = detail_json ? detail_json : "{}";
    if (!event_ok(event))
        return rs_err_set(err, RS_EINVAL, "audit: bad event name");
    if (!detail_ok(detail))
        return rs_err_set(err, RS_EINVAL, "audit: detail is not a one-line JSON object of at most %d bytes",
                          AUDIT_MAX_DETAIL);
    pthread_mutex_lock(&a->mu);
    int rc = lock_dir(a, err);
    if (rc == RS_OK) {
        rc = refresh(a, err);
        if (rc == RS_OK)
            rc = append_locked(a, event, share_id, study, addr, ua, detail, seq_out, err);
        flock(a->dirfd, LOCK_UN);
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

static int audit_dir(const char *datadir, char out[PATH_MAX], rs_err *err)
{
    if (snprintf(out, PATH_MAX, "%s/%s", datadir, AUDIT_DIR) >= PATH_MAX)
        return rs_err_set(err, RS_EINVAL, "data directory path too long");
    return RS_OK;
}

/* After open: a cut line or a log shorter than its head are written into the chain itself. */
static int record_damage(audit_log *a, uint64_t torn, rs_err *err)
{
    char d[96];
    uint64_t head_seq;
    int rc = RS_OK;
    if (torn) {
        snprintf(d, sizeof d, "{\"bytes\":%llu}", (unsigned long long)torn);
        rc = append_locked(a, "audit.torn", NULL, NULL, NULL, NULL, d, NULL, err);
    }
    if (rc == RS_OK && read_head(a, &head_seq) && head_seq > a->seq) {
        snprintf(d, sizeof d, "{\"head_seq\":%llu,\"log_seq\":%llu}", (unsigned long long)head_seq,
                 (unsigned long long)a->seq);
        rc = append_locked(a, "audit.truncated", NULL, NULL, NULL, NULL, d, NULL, err);
    }
    return rc;
}

int audit_open(const char *datadir, uint64_t max_file_bytes, audit_log **out, rs_err *err)
{
    *out = NULL;
    if (sodium_init() < 0)
        return rs_err_set(err, RS_EIO, "libsodium cannot initialise");
    audit_log *a = calloc(1, sizeof *a);
    if (!a)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    a->fd = a->headfd = a->dirfd = -1;
    a->max_bytes = max_file_bytes ? max_file_bytes : AUDIT_DEFAULT_FILE_BYTES;
    pthread_mutex_init(&a->mu, NULL);
    int rc = audit_dir(datadir, a->dir, err);
    if (rc == RS_OK && mkdir(datadir, 0750) != 0 && errno != EEXIST)
        rc = rs_err_set(err, RS_EIO, "cannot create %s: %s", datadir, strerror(errno));
    if (rc == RS_OK && mkdir(a->dir, 0750) != 0 && errno != EEXIST)
        rc = rs_err_set(err, RS_EIO, "cannot create %s: %s", a->dir, strerror(errno));
    if (rc == RS_OK && (a->dirfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        rc = rs_err_set(err, RS_EIO, "%s: %s", a->dir, strerror(errno));
    if (rc == RS_OK && (a->headfd = openat(a->dirfd, HEAD_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0)
        rc = rs_err_set(err, RS_EIO, "%s/%s: %s", a->dir, HEAD_FILE, strerror(errno));
    if (rc == RS_OK && (rc = lock_dir(a, err)) == RS_OK) {
        uint64_t torn;
        rc = load_state(a, &torn, err);
        if (rc == RS_OK)
            rc = record_damage(a, torn, err);
        flock(a->dirfd, LOCK_UN);
    }
    if (rc) {
        audit_close(a);
        return rc;
    }
    *out = a;
    return RS_OK;
}

void audit_close(audit_log *a)
{
    if (!a)
        return;
    if (a->fd >= 0)
        close(a->fd);
    if (a->headfd >= 0)
        close(a->headfd);
    if (a->dirfd >= 0)
        close(a->dirfd);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* ---- reading: query and verify ---------------------------------------------------------------- */

/* Calls line_fn for every line of every file in order. Stops at nonzero (returned). */
typedef int (*line_fn)(const char *file, uint64_t lineno, const char *p, size_t n, int has_nl, void *ctx);

static int each_line(const char *dir, line_fn fn, void *ctx, uint64_t *nfiles, rs_err *err)
{
    unsigned *nums;
    size_t n;
    int rc = list_files(dir, &nums, &n, err);
    char *line = NULL;
    size_t cap = 0;
    for (size_t k = 0; k < n && rc == RS_OK; k++) {
        char name[16], path[PATH_MAX + 16];
        file_name(name, nums[k]);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (k > 0 && nums[k] != nums[k - 1] + 1) {
            rc = fn(path, 0, NULL, 0, 0, ctx);
            break;
        }
        FILE *f = fopen(path, "re");
        if (!f) {
            rc = rs_err_set(err, RS_EIO, "%s: %s", path, strerror(errno));
            break;
        }
        ssize_t len;
        for (uint64_t ln = 1; rc == RS_OK && (len = getline(&line, &cap, f)) > 0; ln++) {
            int nl = line[len - 1] == '\n';
            rc = fn(path, ln, line, (size_t)len - (size_t)nl, nl, ctx);
        }
        fclose(f);
        if (nfiles)
            (*nfiles)++;
    }
    free(line);
    free(nums);
    return rc;
}

typedef struct query_ctx {
    const char *study, *share;
    audit_fn fn;
    void *ctx;
} query_ctx;

static int query_line(const char *file, uint64_t lineno, const char *p, size_t n, int has_nl, void *vq)
{
    query_ctx *q = vq;
    parsed r;
    audit_record rec;
    if (!p || parse_line(p, n, &r))
        return 0; /* verify reports these; a query shows what can be read */
    memset(&rec, 0, sizeof rec);
    span_copy(r.f[F_STUDY], rec.study, sizeof rec.study);
    span_copy(r.f[F_SHARE], rec.share, sizeof rec.share);
    if ((q->study && strcmp(q->study, rec.study)) || (q->share && strcmp(q->share, rec.share)))
        return 0;
    rec.seq = r.seq;
    span_copy(r.f[F_TIME], rec.time, sizeof rec.time);
    span_copy(r.f[F_EVENT], rec.event, sizeof rec.event);
    rec.line = p;
    rec.len = n;
    return q->fn(&rec, q->ctx) ? 1 : 0;
}

int audit_query(const char *datadir, const char *study, const char *share_id, audit_fn fn, void *ctx,
                rs_err *err)
{
    char dir[PATH_MAX];
    query_ctx q = {study, share_id, fn, ctx};
    int rc = audit_dir(datadir, dir, err);
    if (rc == RS_OK)
        rc = each_line(dir, query_line, &q, NULL, err);
    return rc == 1 ? RS_OK : rc;
}

typedef struct verify_ctx {
    audit_report *rep;
    uint64_t expect_seq;
    char prev[AUDIT_HASH_HEX + 1];
} verify_ctx;

static int broken(audit_report *rep, const char *file, uint64_t line, const char *fmt, const char *a)
{
    rep->ok = 0;
    snprintf(rep->file, sizeof rep->file, "%s", file);
    rep->line = line;
    snprintf(rep->problem, sizeof rep->problem, fmt, a);
    return 1;
}

static int verify_line(const char *file, uint64_t lineno, const char *p, size_t n, int has_nl, void *vv)
{
    verify_ctx *v = vv;
    parsed r;
    char hex[AUDIT_HASH_HEX + 1], num[48];
    if (!p)
        return broken(v->rep, file, 0, "%s", "the file before it is missing (file numbers have a gap)");
    if (!has_nl)
        return broken(v->rep, file, lineno, "%s", "incomplete last line (cut by a crash, or truncated)");
    const char *why = parse_line(p, n, &r);
    if (why)
        return broken(v->rep, file, lineno, "malformed record: %s", why);
    if (r.seq != v->expect_seq) {
        snprintf(num, sizeof num, "%llu where %llu", (unsigned long long)r.seq, (unsigned long long)v->expect_seq);
        return broken(v->rep, file, lineno, "seq %s was expected: a record was deleted, inserted or moved", num);
    }
    hash_body(p, r.body_len, hex);
    if (memcmp(hex, r.f[F_HASH].p + 1, AUDIT_HASH_HEX))
        return broken(v->rep, file, lineno, "%s", "the record's hash does not match its content: it was edited");
    if (memcmp(v->prev, r.f[F_PREV].p + 1, AUDIT_HASH_HEX))
        return broken(v->rep, file, lineno, "%s",
                      "prev is not the previous record's hash: a record before it was replaced or removed");
    span ev = r.f[F_EVENT];
    if (ev.n == sizeof "\"audit.truncated\"" - 1 && !memcmp(ev.p, "\"audit.truncated\"", ev.n))
        return broken(v->rep, file, lineno, "%s", "records were cut from the end of the log before this one");
    if (ev.n == sizeof "\"audit.torn\"" - 1 && !memcmp(ev.p, "\"audit.torn\"", ev.n))
        v->rep->torn_repairs++;
    memcpy(v->prev, hex, sizeof hex);
    v->expect_seq++;
    v->rep->records++;
    v->rep->last_seq = r.seq;
    return 0;
}

int audit_verify(const char *datadir, audit_report *rep, rs_err *err)
{
    char dir[PATH_MAX], head[PATH_MAX + 8], hb[HEAD_LEN + 1];
    memset(rep, 0, sizeof *rep);
    rep->ok = 1;
    if (sodium_init() < 0)
        return rs_err_set(err, RS_EIO, "libsodium cannot initialise");
    verify_ctx v = {rep, 1, ""};
    memcpy(v.prev, zero_hash, sizeof zero_hash);
    int rc = audit_dir(datadir, dir, err);
    if (rc == RS_OK)
        rc = each_line(dir, verify_line, &v, &rep->files, err);
    if (rc < 0)
        return rc;
    memcpy(rep->last_hash, v.prev, sizeof v.prev);
    if (!rep->ok)
        return RS_OK;
    snprintf(head, sizeof head, "%s/%s", dir, HEAD_FILE);
    int fd = open(head, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && rs_pread_all(fd, hb, HEAD_LEN, 0) == RS_OK) {
        hb[HEAD_LEN] = 0;
        unsigned long long hseq = strtoull(hb, NULL, 10);
        /* the head may lag one record behind (a crash between the two writes), never lead */
        if (hseq > rep->last_seq) {
            char num[64];
            snprintf(num, sizeof num, "%llu but the head says %llu", (unsigned long long)rep->last_seq, hseq);
            broken(rep, head, 0, "the log ends at seq %s: records were cut from the end", num);
        } else if (hseq == rep->last_seq && hseq && memcmp(hb + 21, rep->last_hash, AUDIT_HASH_HEX)) {
            broken(rep, head, 0, "%s", "the last record is not the one the head names: it was replaced");
        }
    }
    if (fd >= 0)
        close(fd);
    return RS_OK;
}
