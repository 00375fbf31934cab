/*
 * blobstore.c - object files: a pool of empty tmp/ files -> objects/ (see blobstore.h).
 *
 * Directories are held open (tmp_fd, objects_fd) and every name is resolved relative to them
 * (openat, renameat...): paths are built once, short, and fsync of a directory is a plain
 * fsync of its fd.
 */
#include "blobstore.h"
#include "../util/fdio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define DEFAULT_MAX_SIZE ((uint64_t)4 << 30)
#define FILE_MODE 0640
#define DIR_MODE 0750
#define PART_SUFFIX ".part"
#define READY_SUFFIX ".ready"
#define COPY_CHUNK (1u << 20)
/* Pool of empty files whose names are already durable: refilled to POOL_HIGH below POOL_LOW. */
#define POOL_LOW 16
#define POOL_HIGH 48
/* Start write-back every this many bytes, so that the final fsync waits only for the tail. */
#define WRITEBACK_CHUNK (256u << 10)

typedef struct pool_slot {
    int fd;
    char name[STORE_TMP_NAME];
} pool_slot;

/* A committed file not yet moved into objects/: readers find it here by its hash. */
typedef struct pending_obj {
    char hash[STORE_HASH_HEX + 1];
    char name[STORE_TMP_NAME];
} pending_obj;

struct store_blobs {
    char *datadir;
    int tmp_fd;
    int objects_fd;
    uint64_t max_size;
    pthread_mutex_t mu;          /* pool and pending */
    pool_slot pool[POOL_HIGH];
    size_t n_pool;
    pending_obj *pending;
    size_t n_pending, cap_pending;
};

struct store_blob {
    store_blobs *b;
    int fd;
    EVP_MD_CTX *md;
    uint64_t size;
    uint64_t kicked;             /* bytes handed to write-back so far */
    int failed;                  /* a write failed or passed the cap: only abort remains */
    char name[STORE_TMP_NAME];   /* <random>.part, relative to tmp/ */
    char path[PATH_MAX];         /* full path of the .part, for the parser */
    char hash[STORE_HASH_HEX + 1];
};

/* ---- helpers -------------------------------------------------------------------------------- */

static int sys_err(rs_err *err, const char *what, const char *name)
{
    return rs_err_set(err, RS_EIO, "%s %s: %s", what, name, strerror(errno));
}

static int open_dir(const char *datadir, const char *sub, int *fd, rs_err *err)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", datadir, sub);
    if (mkdir(p, DIR_MODE) != 0 && errno != EEXIST)
        return sys_err(err, "cannot create", p);
    *fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return *fd < 0 ? sys_err(err, "cannot open", p) : RS_OK;
}

static int fsync_fd(int fd, const char *name, rs_err *err)
{
    return fsync(fd) == 0 ? RS_OK : sys_err(err, "cannot fsync", name);
}

static int is_hex_digit(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int store_hash_valid(const char *s)
{
    size_t i = 0;
    for (; s[i] && i <= STORE_HASH_HEX; i++)
        if (!is_hex_digit(s[i]))
            return 0;
    return i == STORE_HASH_HEX;
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}

/* "ab/cd/<hash>" relative to objects/. */
static void object_rel(const char *hash, char out[STORE_HASH_HEX + 8])
{
    snprintf(out, STORE_HASH_HEX + 8, "%.2s/%.2s/%s", hash, hash + 2, hash);
}

static void ready_name(const char *hash, char out[STORE_HASH_HEX + 8])
{
    snprintf(out, STORE_HASH_HEX + 8, "%s" READY_SUFFIX, hash);
}

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* ---- the blob area ---------------------------------------------------------------------------- */

int store_blobs_open(const char *datadir, uint64_t max_size, store_blobs **out, rs_err *err)
{
    *out = NULL;
    if (strlen(datadir) > PATH_MAX - 128)
        return rs_err_set(err, RS_EINVAL, "data directory path too long");
    store_blobs *b = calloc(1, sizeof *b);
    if (!b || !(b->datadir = strdup(datadir))) {
        free(b);
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    }
    b->tmp_fd = b->objects_fd = -1;
    b->max_size = max_size ? max_size : DEFAULT_MAX_SIZE;
    pthread_mutex_init(&b->mu, NULL);
    int rc = open_dir(datadir, "tmp", &b->tmp_fd, err);
    if (rc == RS_OK)
        rc = open_dir(datadir, "objects", &b->objects_fd, err);
    if (rc) {
        store_blobs_close(b);
        return rc;
    }
    *out = b;
    return RS_OK;
}

void store_blobs_close(store_blobs *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_pool; i++) { /* unused slots: a clean stop leaves tmp/ empty */
        unlinkat(b->tmp_fd, b->pool[i].name, 0);
        close(b->pool[i].fd);
    }
    free(b->pending);
    pthread_mutex_destroy(&b->mu);
    if (b->tmp_fd >= 0)
        close(b->tmp_fd);
    if (b->objects_fd >= 0)
        close(b->objects_fd);
    free(b->datadir);
    free(b);
}

/* ---- writing ---------------------------------------------------------------------------------- */

/* tmp/<32 random hex digits>.part: unguessable, so O_EXCL never meets another reception. */
static int random_name(char name[STORE_TMP_NAME], rs_err *err)
{
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return rs_err_set(err, RS_EIO, "getrandom: %s", strerror(errno));
    hex(rnd, sizeof rnd, name);
    strcat(name, PART_SUFFIX);
    return RS_OK;
}

/* n new empty files in tmp/, their names made durable by one fsync of tmp/. */
static int create_slots(store_blobs *b, pool_slot *v, size_t n, rs_err *err)
{
    int rc = RS_OK;
    size_t k = 0;
    for (; k < n && rc == RS_OK; k++) {
        rc = random_name(v[k].name, err);
        if (rc)
            break;
        v[k].fd = openat(b->tmp_fd, v[k].name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, FILE_MODE);
        if (v[k].fd < 0)
            rc = sys_err(err, "cannot create tmp/", v[k].name);
    }
    if (rc == RS_OK)
        rc = fsync_fd(b->tmp_fd, "tmp/", err);
    if (rc)
        for (size_t i = 0; i < k; i++)
            if (v[i].fd >= 0) {
                unlinkat(b->tmp_fd, v[i].name, 0);
                close(v[i].fd);
            }
    return rc;
}

int store_blobs_prepare(store_blobs *b, rs_err *err)
{
    if (faccessat(b->objects_fd, "ff", F_OK, 0) == 0)
        return RS_OK; /* made before (ff is the last) */
    for (int i = 0; i < 256; i++) {
        char ab[3];
        snprintf(ab, sizeof ab, "%02x", i);
        if (mkdirat(b->objects_fd, ab, DIR_MODE) != 0 && errno != EEXIST)
            return sys_err(err, "cannot create objects/", ab);
    }
    return fsync_fd(b->objects_fd, "objects/", err);
}

int store_blobs_refill(store_blobs *b, rs_err *err)
{
    pthread_mutex_lock(&b->mu);
    size_t have = b->n_pool;
    pthread_mutex_unlock(&b->mu);
    if (have >= POOL_LOW)
        return RS_OK;
    pool_slot fresh[POOL_HIGH];
    size_t n = POOL_HIGH - have;
    int rc = create_slots(b, fresh, n, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&b->mu);
    size_t i = 0;
    for (; i < n && b->n_pool < POOL_HIGH; i++)
        b->pool[b->n_pool++] = fresh[i];
    pthread_mutex_unlock(&b->mu);
    for (; i < n; i++) { /* the pool filled up meanwhile (cannot happen with one refiller) */
        unlinkat(b->tmp_fd, fresh[i].name, 0);
        close(fresh[i].fd);
    }
    return RS_OK;
}

static void blob_free(store_blob *w)
{
    if (w->fd >= 0)
        close(w->fd);
    EVP_MD_CTX_free(w->md);
    free(w);
}

/* A slot from the pool, or a new one (with its own fsync of tmp/) when the pool is empty. */
static int take_slot(store_blobs *b, pool_slot *slot, rs_err *err)
{
    pthread_mutex_lock(&b->mu);
    int have = b->n_pool > 0;
    if (have)
        *slot = b->pool[--b->n_pool];
    pthread_mutex_unlock(&b->mu);
    return have ? RS_OK : create_slots(b, slot, 1, err);
}

int store_blob_begin(store_blobs *b, store_blob **out, rs_err *err)
{
    *out = NULL;
    store_blob *w = calloc(1, sizeof *w);
    if (!w)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    w->b = b;
    w->fd = -1;
    int rc = (w->md = EVP_MD_CTX_new()) && EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) == 1
                 ? RS_OK : rs_err_set(err, RS_ENOMEM, "cannot start a SHA-256 digest");
    pool_slot slot;
    if (rc == RS_OK)
        rc = take_slot(b, &slot, err);
    if (rc) {
        blob_free(w);
        return rc;
    }
    w->fd = slot.fd;
    snprintf(w->name, sizeof w->name, "%s", slot.name);
    snprintf(w->path, sizeof w->path, "%s/tmp/%s", b->datadir, w->name);
    *out = w;
    return RS_OK;
}

int store_blob_write(store_blob *w, const void *data, size_t n, rs_err *err)
{
    if (w->failed)
        return rs_err_set(err, RS_EINVAL, "write to a failed object");
    if (n > w->b->max_size - w->size) {
        w->failed = 1;
        return rs_err_set(err, RS_ELIMIT, "object larger than the %llu-byte limit",
                          (unsigned long long)w->b->max_size);
    }
    if (rs_write_all(w->fd, data, n) != 0) {
        w->failed = 1;
        return sys_err(err, "cannot write", w->path);
    }
    if (EVP_DigestUpdate(w->md, data, n) != 1) {
        w->failed = 1;
        return rs_err_set(err, RS_ENOMEM, "SHA-256 update failed");
    }
    w->size += n;
    /* start write-back of what is complete, so that the fsync at the end has only the tail
       to wait for (Linux; elsewhere the fsync simply writes everything) */
#ifdef SYNC_FILE_RANGE_WRITE
    if (w->size - w->kicked >= WRITEBACK_CHUNK) {
        sync_file_range(w->fd, (off64_t)w->kicked, (off64_t)(w->size - w->kicked), SYNC_FILE_RANGE_WRITE);
        w->kicked = w->size;
    }
#endif
    return RS_OK;
}

int store_blob_finish(store_blob *w, int64_t stamp_ns, store_blob_info *info, rs_err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    struct stat st;
    if (w->failed)
        return rs_err_set(err, RS_EINVAL, "finish of a failed object");
    w->failed = 1; /* until proven otherwise */
    if (EVP_DigestFinal_ex(w->md, md, &mdlen) != 1 || mdlen * 2 != STORE_HASH_HEX)
        return rs_err_set(err, RS_EIO, "SHA-256 final failed");
    hex(md, mdlen, w->hash);
    struct timespec times[2] = {{.tv_nsec = UTIME_OMIT},
                                {.tv_sec = stamp_ns / 1000000000, .tv_nsec = stamp_ns % 1000000000}};
    if (stamp_ns > 0 && futimens(w->fd, times) != 0)
        return sys_err(err, "cannot set the time of", w->path);
    if (fstat(w->fd, &st) != 0)
        return sys_err(err, "cannot stat", w->path);
    snprintf(info->hash, sizeof info->hash, "%s", w->hash);
    info->size = w->size;
    info->mtime_ns = mtime_ns(&st);
    w->failed = 0;
    return RS_OK;
}

const char *store_blob_tmp_path(const store_blob *w)
{
    return w->path;
}

const char *store_blob_name(const store_blob *w)
{
    return w->name;
}

int store_blob_sync(store_blob *w, rs_err *err)
{
    if (fsync(w->fd) != 0)
        return sys_err(err, "cannot fsync", w->path);
    posix_fadvise(w->fd, 0, 0, POSIX_FADV_DONTNEED);
    return RS_OK;
}

void store_blob_close(store_blob *w)
{
    if (w)
        blob_free(w);
}

void store_blob_abort(store_blob *w)
{
    if (!w)
        return;
    unlinkat(w->b->tmp_fd, w->name, 0);
    blob_free(w);
}

/* ---- committing -------------------------------------------------------------------------------- */

int store_blob_sync_tmp(store_blobs *b, rs_err *err)
{
    return fsync_fd(b->tmp_fd, "tmp/", err);
}

static int dirset_add(store_dirset *d, const char *rel)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->dir[i], rel) == 0)
            return RS_OK;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 32;
        char(*nd)[6] = realloc(d->dir, cap * sizeof *nd);
        if (!nd)
            return RS_ENOMEM;
        d->dir = nd;
        d->cap = cap;
    }
    snprintf(d->dir[d->n++], sizeof d->dir[0], "%s", rel);
    return RS_OK;
}

static int dirset_gone(store_dirset *d, const char *name)
{
    if (d->n_gone == d->cap_gone) {
        size_t cap = d->cap_gone ? d->cap_gone * 2 : 32;
        char(*ng)[STORE_HASH_HEX + 8] = realloc(d->gone, cap * sizeof *ng);
        if (!ng)
            return RS_ENOMEM;
        d->gone = ng;
        d->cap_gone = cap;
    }
    snprintf(d->gone[d->n_gone++], sizeof d->gone[0], "%s", name);
    return RS_OK;
}

int store_dirset_merge(store_dirset *dst, const store_dirset *src)
{
    for (size_t i = 0; i < src->n; i++)
        if (dirset_add(dst, src->dir[i]))
            return RS_ENOMEM;
    for (size_t i = 0; i < src->n_gone; i++)
        if (dirset_gone(dst, src->gone[i]))
            return RS_ENOMEM;
    return RS_OK;
}

void store_dirset_free(store_dirset *d)
{
    free(d->gone);
    free(d->dir);
    memset(d, 0, sizeof *d);
}

/* mkdir objects/ab and objects/ab/cd as needed; a new directory dirties its parent. */
static int make_prefix_dirs(store_blobs *b, const char *hash, store_dirset *dirs, rs_err *err)
{
    char ab[3], abcd[6];
    snprintf(ab, sizeof ab, "%.2s", hash);
    snprintf(abcd, sizeof abcd, "%.2s/%.2s", hash, hash + 2);
    int rc = RS_OK;
    if (mkdirat(b->objects_fd, ab, DIR_MODE) == 0)
        rc = dirset_add(dirs, "");
    else if (errno != EEXIST)
        return sys_err(err, "cannot create objects/", ab);
    if (rc == RS_OK && mkdirat(b->objects_fd, abcd, DIR_MODE) == 0)
        rc = dirset_add(dirs, ab);
    else if (rc == RS_OK && errno != EEXIST)
        return sys_err(err, "cannot create objects/", abcd);
    if (rc == RS_OK)
        rc = dirset_add(dirs, abcd);
    return rc ? rs_err_set(err, rc, "out of memory") : RS_OK;
}

static int object_exists(store_blobs *b, const char *rel)
{
    return faccessat(b->objects_fd, rel, F_OK, 0) == 0;
}

void store_blob_remove(store_blobs *b, const char *hash)
{
    char rel[STORE_HASH_HEX + 8];
    if (!store_hash_valid(hash))
        return;
    object_rel(hash, rel);
    unlinkat(b->objects_fd, rel, 0);
}

int store_blob_exists(store_blobs *b, const char *hash)
{
    char rel[STORE_HASH_HEX + 8];
    if (!store_hash_valid(hash))
        return 0;
    object_rel(hash, rel);
    return object_exists(b, rel);
}

int store_blob_publish(store_blobs *b, const char *hash, const char *src, int replace, store_dirset *dirs,
                       rs_err *err)
{
    char rel[STORE_HASH_HEX + 8], ready_buf[STORE_HASH_HEX + 8];
    if (!store_hash_valid(hash))
        return rs_err_set(err, RS_EINVAL, "not a content hash: %.80s", hash);
    object_rel(hash, rel);
    ready_name(hash, ready_buf);
    const char *ready = src ? src : ready_buf;
    if (!replace && object_exists(b, rel)) {
        /* same bytes as the object we keep: the extra copy goes */
        if (unlinkat(b->tmp_fd, ready, 0) != 0 && errno != ENOENT)
            return sys_err(err, "cannot remove tmp/", ready);
        return RS_OK;
    }
    int rc = make_prefix_dirs(b, hash, dirs, err);
    if (rc)
        return rc;
    if (linkat(b->tmp_fd, ready, b->objects_fd, rel, 0) == 0)
        return dirset_gone(dirs, ready) ? rs_err_set(err, RS_ENOMEM, "out of memory") : RS_OK;
    if (errno == EEXIST && renameat(b->tmp_fd, ready, b->objects_fd, rel) == 0)
        return RS_OK; /* replace: the object exists (same bytes), this file's mtime wins */
    if (errno == ENOENT && object_exists(b, rel))
        return RS_OK; /* an identical copy was published first */
    return errno == ENOENT ? rs_err_set(err, RS_ENOTFOUND, "tmp/%s is missing", ready)
                           : sys_err(err, "cannot move into objects/", rel);
}

int store_blob_sync_dirs(store_blobs *b, store_dirset *dirs, rs_err *err)
{
    int rc = RS_OK;
    for (size_t i = 0; i < dirs->n && rc == RS_OK; i++) {
        const char *rel = dirs->dir[i][0] ? dirs->dir[i] : ".";
        int fd = openat(b->objects_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return sys_err(err, "cannot open objects/", rel);
        rc = fsync_fd(fd, rel, err);
        close(fd);
    }
    /* the objects/ names are durable: the tmp/ ones can go (on failure they stay, and the next
       start finds the files there, hashes them and keeps the object) */
    for (size_t i = 0; i < dirs->n_gone && rc == RS_OK; i++)
        if (unlinkat(b->tmp_fd, dirs->gone[i], 0) != 0 && errno != ENOENT)
            rc = sys_err(err, "cannot remove tmp/", dirs->gone[i]);
    dirs->n = dirs->n_gone = 0;
    return rc;
}

/* ---- reading ----------------------------------------------------------------------------------- */

int store_blob_path(const store_blobs *b, const char *hash, char *out, size_t cap)
{
    if (!store_hash_valid(hash))
        return RS_EINVAL;
    int n = snprintf(out, cap, "%s/objects/%.2s/%.2s/%s", b->datadir, hash, hash + 2, hash);
    return n > 0 && (size_t)n < cap ? RS_OK : RS_ELIMIT;
}

static size_t pending_find(const store_blobs *b, const char *hash)
{
    size_t i = 0;
    while (i < b->n_pending && strcmp(b->pending[i].hash, hash) != 0)
        i++;
    return i;
}

int store_blob_pending(store_blobs *b, const char *hash, const char *name)
{
    int rc = RS_OK;
    pthread_mutex_lock(&b->mu);
    size_t i = pending_find(b, hash);
    if (!name) {
        if (i < b->n_pending)
            b->pending[i] = b->pending[--b->n_pending];
    } else if (i == b->n_pending) {
        if (b->n_pending == b->cap_pending) {
            size_t cap = b->cap_pending ? b->cap_pending * 2 : 64;
            pending_obj *np = realloc(b->pending, cap * sizeof *np);
            if (np) {
                b->pending = np;
                b->cap_pending = cap;
            }
        }
        if (b->n_pending < b->cap_pending) {
            pending_obj *p = &b->pending[b->n_pending++];
            snprintf(p->hash, sizeof p->hash, "%s", hash);
            snprintf(p->name, sizeof p->name, "%s", name);
        } else {
            rc = RS_ENOMEM;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

/* Open a committed file still in the pool (between COMMIT and its move into objects/). */
static int open_pending(store_blobs *b, const char *hash)
{
    char name[STORE_TMP_NAME] = "";
    pthread_mutex_lock(&b->mu);
    size_t i = pending_find(b, hash);
    if (i < b->n_pending)
        snprintf(name, sizeof name, "%s", b->pending[i].name);
    pthread_mutex_unlock(&b->mu);
    if (!name[0]) {
        errno = ENOENT;
        return -1;
    }
    return openat(b->tmp_fd, name, O_RDONLY | O_CLOEXEC);
}

int store_blob_open(store_blobs *b, const char *hash, int *fd, rs_err *err)
{
    char rel[STORE_HASH_HEX + 8], ready[STORE_HASH_HEX + 8];
    *fd = -1;
    if (!store_hash_valid(hash))
        return rs_err_set(err, RS_EINVAL, "not a content hash: %.80s", hash);
    object_rel(hash, rel);
    ready_name(hash, ready);
    /* the committer may move the file between our two looks: look again */
    for (int attempt = 0; attempt < 3; attempt++) {
        *fd = openat(b->objects_fd, rel, O_RDONLY | O_CLOEXEC);
        if (*fd >= 0 || errno != ENOENT)
            break;
        *fd = open_pending(b, hash);
        if (*fd >= 0 || errno != ENOENT)
            break;
        *fd = openat(b->tmp_fd, ready, O_RDONLY | O_CLOEXEC);
        if (*fd >= 0 || errno != ENOENT)
            break;
    }
    if (*fd >= 0)
        return RS_OK;
    return errno == ENOENT ? rs_err_set(err, RS_ENOTFOUND, "object %s is missing", hash)
                           : sys_err(err, "cannot open object", hash);
}

int store_blob_hash_fd(int fd, char hash[STORE_HASH_HEX + 1], uint64_t *size, rs_err *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = malloc(COPY_CHUNK);
    int rc = md && buf && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? RS_OK : RS_ENOMEM;
    uint64_t off = 0;
    while (rc == RS_OK) {
        ssize_t r = pread(fd, buf, COPY_CHUNK, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = RS_EIO;
        else if (r == 0)
            break;
        else if (EVP_DigestUpdate(md, buf, (size_t)r) != 1)
            rc = RS_ENOMEM;
        else
            off += (uint64_t)r;
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    if (rc == RS_OK && (EVP_DigestFinal_ex(md, d, &dlen) != 1 || dlen * 2 != STORE_HASH_HEX))
        rc = RS_EIO;
    if (rc == RS_OK) {
        hex(d, dlen, hash);
        if (size)
            *size = off;
    }
    free(buf);
    EVP_MD_CTX_free(md);
    return rc ? rs_err_set(err, rc, "cannot hash object: %s", rc == RS_EIO ? strerror(errno) : "no memory")
              : RS_OK;
}

/* ---- recovery and walking ---------------------------------------------------------------------- */

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

/* A file of tmp/ that a crash left: complete and committed (published now), or not (deleted). */
static int recover_file(store_blobs *b, const char *name, const char *hash, store_blob_indexed_fn indexed,
                        void *ctx, store_blob_recovery *rep, store_dirset *dirs, rs_err *err)
{
    int yes = 0;
    int rc = indexed(ctx, hash, &yes, err);
    if (rc)
        return rc;
    if (yes) {
        rc = store_blob_publish(b, hash, name, 0, dirs, err);
        rep->ready_published += rc == RS_OK;
        return rc;
    }
    if (unlinkat(b->tmp_fd, name, 0) != 0)
        return sys_err(err, "cannot remove tmp/", name);
    if (has_suffix(name, PART_SUFFIX))
        rep->parts_deleted++;
    else
        rep->ready_deleted++;
    return RS_OK;
}

/*
 * A pool file: empty (an unused slot, or a reception that had not started) is deleted; one with
 * bytes is identified by hashing it, since its committed row knows it by its hash only. An
 * interrupted reception hashes to nothing indexed and goes.
 */
static int recover_part(store_blobs *b, const char *name, store_blob_indexed_fn indexed, void *ctx,
                        store_blob_recovery *rep, store_dirset *dirs, rs_err *err)
{
    char hash[STORE_HASH_HEX + 1];
    uint64_t size = 0;
    int fd = openat(b->tmp_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys_err(err, "cannot open tmp/", name);
    int rc = store_blob_hash_fd(fd, hash, &size, err);
    close(fd);
    if (rc)
        return rc;
    if (size > 0)
        return recover_file(b, name, hash, indexed, ctx, rep, dirs, err);
    if (unlinkat(b->tmp_fd, name, 0) != 0)
        return sys_err(err, "cannot remove tmp/", name);
    return RS_OK;
}

/* One entry of tmp/ after a crash. */
static int recover_entry(store_blobs *b, const char *name, store_blob_indexed_fn indexed, void *ctx,
                         store_blob_recovery *rep, store_dirset *dirs, rs_err *err)
{
    if (has_suffix(name, PART_SUFFIX))
        return recover_part(b, name, indexed, ctx, rep, dirs, err);
    char hash[STORE_HASH_HEX + 1];
    if (!has_suffix(name, READY_SUFFIX) || strlen(name) != STORE_HASH_HEX + strlen(READY_SUFFIX))
        return RS_OK; /* not ours: leave it */
    snprintf(hash, sizeof hash, "%.*s", STORE_HASH_HEX, name);
    if (!store_hash_valid(hash))
        return RS_OK;
    return recover_file(b, name, hash, indexed, ctx, rep, dirs, err);
}

int store_blob_recover(store_blobs *b, store_blob_indexed_fn indexed, void *ctx,
                       store_blob_recovery *rep, rs_err *err)
{
    memset(rep, 0, sizeof *rep);
    int dfd = dup(b->tmp_fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return sys_err(err, "cannot list", "tmp/");
    }
    rewinddir(d);
    store_dirset dirs = {0};
    int rc = RS_OK;
    struct dirent *de;
    while (rc == RS_OK && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            rc = recover_entry(b, de->d_name, indexed, ctx, rep, &dirs, err);
    closedir(d);
    if (rc == RS_OK)
        rc = store_blob_sync_dirs(b, &dirs, err);
    if (rc == RS_OK)
        rc = store_blob_sync_tmp(b, err);
    store_dirset_free(&dirs);
    return rc;
}

static int is_hex2(const char *s)
{
    return is_hex_digit(s[0]) && is_hex_digit(s[1]) && !s[2];
}

/* Open a subdirectory of dirfd as a DIR stream (NULL when it cannot be listed). */
static DIR *open_sub(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d && fd >= 0)
        close(fd);
    return d;
}

/* Objects in one leaf directory objects/ab/cd. */
static int walk_leaf(DIR *leaf, const char *prefix, store_blob_walk_fn fn, void *ctx, rs_err *err)
{
    struct dirent *de;
    while ((de = readdir(leaf)) != NULL) {
        struct stat st;
        if (!store_hash_valid(de->d_name) || strncmp(de->d_name, prefix, 4) != 0)
            continue;
        if (fstatat(dirfd(leaf), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        store_blob_info info = {.size = (uint64_t)st.st_size, .mtime_ns = mtime_ns(&st)};
        snprintf(info.hash, sizeof info.hash, "%.64s", de->d_name);
        int stop = fn(ctx, &info);
        if (stop)
            return stop < 0 ? stop : 1;
    }
    return RS_OK;
}

int store_blob_walk(store_blobs *b, store_blob_walk_fn fn, void *ctx, rs_err *err)
{
    DIR *top = open_sub(b->objects_fd, ".");
    if (!top)
        return sys_err(err, "cannot list", "objects/");
    int rc = RS_OK;
    struct dirent *a;
    while (rc == RS_OK && (a = readdir(top)) != NULL) {
        DIR *mid = is_hex2(a->d_name) ? open_sub(dirfd(top), a->d_name) : NULL;
        struct dirent *c;
        while (mid && rc == RS_OK && (c = readdir(mid)) != NULL) {
            DIR *leaf = is_hex2(c->d_name) ? open_sub(dirfd(mid), c->d_name) : NULL;
            if (leaf) {
                char prefix[5];
                snprintf(prefix, sizeof prefix, "%.2s%.2s", a->d_name, c->d_name);
                rc = walk_leaf(leaf, prefix, fn, ctx, err);
                closedir(leaf);
            }
        }
        if (mid)
            closedir(mid);
    }
    closedir(top);
    return rc < 0 ? rs_err_set(err, rc, "walking objects/: %s", rs_strerror(rc)) : RS_OK;
}
