/*
 * store.c - the facade over blobstore (files), index (rows), commit (group commit) and query
 * (see store.h): opening and recovering a data directory, the ingest pipeline, reads, reindex.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../dicom/reader.h"
#include "../dicom/writer.h"
#include "../util/log.h"
#include "../util/vec.h"

#define INDEX_FILE "index.sqlite"
#define REBUILD_FILE "index.sqlite.rebuild"
#define LOCK_FILE "lock"
#define TRASH_DIR "trash"
#define COPY_CHUNK (1u << 20)
/* records per reindex transaction: the parsed records held at once; the rebuilt file's COMMITs
   are not synced (open_rebuild), so more per transaction no longer saves flushes */
#define REINDEX_BATCH 256

struct store {
    char *datadir;
    _Atomic int64_t last_stamp; /* received times handed out: strictly increasing */
    int lock_fd;
    store_opts opts;
    store_blobs *blobs;
    store_index *ix;
    store_commit *commit;
};

#define PREAMBLE_LEN 128 /* PS3.10 7.1 */

struct store_ingest {
    store *s;
    store_blob *blob;
    uint64_t written;
    char expect_class[STORE_UID_MAX + 1]; /* store_ingest_expect: what the data set must be */
    char expect_uid[STORE_UID_MAX + 1];
    char expect_study[STORE_UID_MAX + 1]; /* store_ingest_expect_study */
    /* The first bytes are held back until the preamble can be told from a data set: a
       preamble is stored zeroed, whatever came in (it can hold a Windows executable header,
       the DICOM/PE polyglot of CVE-2019-11687). */
    uint8_t head[PREAMBLE_LEN + 4];
    size_t head_n;
    int head_done;
};

static void default_log(void *ctx, int level, const char *msg)
{
    rs_log(level, "store: %s", msg);
}

/* ---- opening ------------------------------------------------------------------------------------ */

static const store_index_ops *backend(const store_opts *o, rs_err *err)
{
    if (!o->index || strcmp(o->index, store_index_sqlite.name) == 0)
        return &store_index_sqlite;
    rs_err_set(err, RS_EUNSUPPORTED, "no index backend \"%s\"", o->index);
    return NULL;
}

static int sub_path(const char *datadir, const char *name, char *out, size_t cap, rs_err *err)
{
    int n = snprintf(out, cap, "%s/%s", datadir, name);
    return n > 0 && (size_t)n < cap ? RS_OK : rs_err_set(err, RS_EINVAL, "data directory path too long");
}

/* One process per data directory: recovery deletes what it believes are leftovers. */
static int lock_datadir(const char *datadir, int *fd, rs_err *err)
{
    char p[PATH_MAX];
    *fd = -1;
    if (mkdir(datadir, 0750) != 0 && errno != EEXIST)
        return rs_err_set(err, RS_EIO, "cannot create %s: %s", datadir, strerror(errno));
    int rc = sub_path(datadir, LOCK_FILE, p, sizeof p, err);
    if (rc)
        return rc;
    *fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (*fd < 0)
        return rs_err_set(err, RS_EIO, "cannot open %s: %s", p, strerror(errno));
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
        return RS_OK;
    rc = errno == EWOULDBLOCK ? rs_err_set(err, RS_EINVAL, "%s is in use by another process", datadir)
                              : rs_err_set(err, RS_EIO, "cannot lock %s: %s", p, strerror(errno));
    close(*fd);
    *fd = -1;
    return rc;
}

static int sync_dir(const char *path, rs_err *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync(fd) == 0 ? RS_OK : rs_err_set(err, RS_EIO, "cannot sync %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}

static int index_has_hash(void *ctx, const char *hash, int *yes, rs_err *err)
{
    store_index *ix = ctx;
    return ix->ops->has_hash(ix, hash, yes, err);
}

typedef struct hash_list {
    char (*v)[STORE_HASH_HEX + 1];
    size_t n, cap;
    store_blobs *blobs;
} hash_list;

/* An unsettled row: keep its hash when its file is not in objects/ or not whole there. */
static int collect_fileless(void *ctx, const char *hash)
{
    hash_list *l = ctx;
    char have[STORE_HASH_HEX + 1] = "";
    int fd = -1;
    if (store_blob_exists(l->blobs, hash) && store_blob_open(l->blobs, hash, &fd, NULL) == RS_OK) {
        int rc = store_blob_hash_fd(fd, have, NULL, NULL);
        close(fd);
        if (rc == RS_OK && !strcmp(have, hash))
            return 0;
    }
    if (rs_grow((void **)&l->v, &l->cap, l->n, sizeof *l->v, 16))
        return RS_ENOMEM;
    snprintf(l->v[l->n++], sizeof l->v[0], "%s", hash);
    return 0;
}

/*
 * The rows committed after the last settle (commit.h): their files were being fsync'ed when
 * the rows were written (and moved into objects/ right after), so a crash can have left a row
 * whose file never became durable, or is there cut short. Such a submission was never
 * answered (an answer waits for both flushes). After store_blob_recover every durable file of
 * a committed row is in objects/: each unsettled row's file is re-hashed there (a few files:
 * the last batches before the crash); the rows without a whole file are removed with what is
 * left of the file, and everything is marked settled.
 */
static int settle_rows(store *s, rs_err *err)
{
    hash_list l = {.blobs = s->blobs};
    store_index *ix = s->ix;
    int rc = ix->ops->unsettled(ix, collect_fileless, &l, err);
    if (rc == RS_OK)
        rc = ix->ops->begin(ix, err);
    for (size_t i = 0; i < l.n && rc == RS_OK; i++) {
        rc = ix->ops->drop(ix, l.v[i], err);
        store_blob_remove(s->blobs, l.v[i]);
    }
    if (rc == RS_OK)
        rc = ix->ops->settle(ix, -1, err);
    if (rc == RS_OK)
        rc = ix->ops->commit(ix, err);
    else
        ix->ops->rollback(ix);
    if (rc == RS_OK && l.n)
        store_logf(s->opts.log, s->opts.log_ctx, RS_LOG_WARN,
                   "recovery: %zu index rows without a durable file removed (never acknowledged)", l.n);
    free(l.v);
    return rc;
}

static int recover(store *s, rs_err *err)
{
    store_blob_recovery rep;
    int rc = store_blob_recover(s->blobs, index_has_hash, s->ix, &rep, err);
    if (rc == RS_OK && (rep.parts_deleted || rep.ready_published || rep.ready_deleted))
        store_logf(s->opts.log, s->opts.log_ctx, RS_LOG_WARN,
                   "recovery: %u interrupted receptions removed, %u committed objects moved into objects/, "
                   "%u never-acknowledged objects removed",
                   rep.parts_deleted, rep.ready_published, rep.ready_deleted);
    if (rc == RS_OK)
        rc = settle_rows(s, err);
    if (rc == RS_OK)
        rc = store_blobs_prepare(s->blobs, err);
    if (rc == RS_OK)
        rc = store_blobs_refill(s->blobs, err);
    return rc;
}

/*
 * Trash: DATA/trash/<StudyInstanceUID> marks a study deleted by staff, its objects untouched.
 * The files are the truth (they survive a reindex); the index keeps a copy so queries can hide
 * the studies. At open the copy is made again from the files.
 */
static int trash_load(store *s, rs_err *err)
{
    char p[PATH_MAX];
    int rc = sub_path(s->datadir, TRASH_DIR, p, sizeof p, err);
    if (rc)
        return rc;
    if (mkdir(p, 0750) != 0 && errno != EEXIST)
        return rs_err_set(err, RS_EIO, "cannot create %s: %s", p, strerror(errno));
    rc = s->ix->ops->trash(s->ix, NULL, 0, err);
    DIR *d = rc ? NULL : opendir(p);
    if (!d)
        return rc ? rc : rs_err_set(err, RS_EIO, "cannot read %s: %s", p, strerror(errno));
    struct dirent *de;
    while (rc == RS_OK && (de = readdir(d)))
        if (de->d_name[0] != '.')
            rc = s->ix->ops->trash(s->ix, de->d_name, 1, err);
    closedir(d);
    return rc;
}

static int open_parts(store *s, rs_err *err)
{
    char p[PATH_MAX];
    const store_index_ops *ops = backend(&s->opts, err);
    if (!ops)
        return RS_EUNSUPPORTED;
    int rc = lock_datadir(s->datadir, &s->lock_fd, err);
    if (rc == RS_OK)
        rc = store_blobs_open(s->datadir, s->opts.max_object_size, &s->blobs, err);
    if (rc == RS_OK)
        rc = sub_path(s->datadir, INDEX_FILE, p, sizeof p, err);
    if (rc == RS_OK)
        rc = ops->open(p, &s->ix, err);
    if (rc == RS_OK)
        rc = recover(s, err);
    if (rc == RS_OK)
        rc = sync_dir(s->datadir, err); /* the new index files and directories, if any */
    if (rc == RS_OK)
        rc = trash_load(s, err);
    store_commit_env env = {s->ix, s->blobs, s->opts.log, s->opts.log_ctx};
    if (rc == RS_OK)
        rc = store_commit_start(&env, &s->commit, err);
    return rc;
}

int store_open(const char *datadir, const store_opts *o, store **out, rs_err *err)
{
    *out = NULL;
    store *s = calloc(1, sizeof *s);
    if (!s || !(s->datadir = strdup(datadir))) {
        free(s);
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    }
    s->lock_fd = -1;
    atomic_init(&s->last_stamp, 0);
    if (o)
        s->opts = *o;
    if (!s->opts.log)
        s->opts.log = default_log;
    int rc = open_parts(s, err);
    if (rc) {
        store_close(s);
        return rc;
    }
    *out = s;
    return RS_OK;
}

void store_close(store *s)
{
    if (!s)
        return;
    store_commit_stop(s->commit);
    if (s->ix)
        s->ix->ops->close(s->ix);
    store_blobs_close(s->blobs);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    free(s->datadir);
    free(s);
}

/* ---- ingest --------------------------------------------------------------------------------------- */

int store_ingest_begin(store *s, store_ingest **out, rs_err *err)
{
    *out = NULL;
    int rc = store_commit_enter(s->commit, err);
    if (rc)
        return rc;
    store_ingest *in = calloc(1, sizeof *in);
    rc = in ? store_blob_begin(s->blobs, &in->blob, err) : rs_err_set(err, RS_ENOMEM, "out of memory");
    if (rc) {
        free(in);
        store_commit_leave(s->commit);
        return rc;
    }
    in->s = s;
    *out = in;
    return RS_OK;
}

/* Write the held-back head, its preamble zeroed if it is one ("DICM" after 128 bytes). */
static int flush_head(store_ingest *in, rs_err *err)
{
    if (in->head_done)
        return RS_OK;
    in->head_done = 1;
    if (in->head_n == sizeof in->head && !memcmp(in->head + PREAMBLE_LEN, "DICM", 4))
        memset(in->head, 0, PREAMBLE_LEN);
    return in->head_n ? store_blob_write(in->blob, in->head, in->head_n, err) : RS_OK;
}

int store_ingest_write(store_ingest *in, const void *data, size_t n, rs_err *err)
{
    const uint8_t *p = data;
    if (!in->head_done) {
        size_t k = sizeof in->head - in->head_n;
        if (k > n)
            k = n;
        memcpy(in->head + in->head_n, p, k);
        in->head_n += k;
        in->written += k;
        p += k;
        n -= k;
        if (in->head_n < sizeof in->head)
            return RS_OK;
        int rc = flush_head(in, err);
        if (rc)
            return rc;
    }
    int rc = n ? store_blob_write(in->blob, p, n, err) : RS_OK;
    if (rc == RS_OK)
        in->written += n;
    return rc;
}

/* One explicit VR little endian element of the meta group, value padded to even length. */
static int meta_elem(rs_buf *b, uint16_t elem, const char *vr, const char *value, char pad)
{
    size_t n = strlen(value), padded = n + (n & 1);
    uint8_t h[8] = {0x02, 0x00, (uint8_t)elem, (uint8_t)(elem >> 8), (uint8_t)vr[0], (uint8_t)vr[1],
                    (uint8_t)padded, (uint8_t)(padded >> 8)};
    int rc = rs_buf_append(b, h, sizeof h);
    if (rc == RS_OK)
        rc = rs_buf_append(b, value, n);
    if (rc == RS_OK && (n & 1))
        rc = rs_buf_putc(b, pad);
    return rc;
}

/* Preamble, DICM and the file meta group (PS3.10 7.1) for a dataset received bare. */
static int build_meta(rs_buf *b, const char *sop_class, const char *sop_uid, const char *ts_uid)
{
    static const uint8_t version[] = {0x02, 0x00, 0x01, 0x00, 'O', 'B', 0, 0, 2, 0, 0, 0, 0x00, 0x01};
    rs_buf group = RS_BUF_INIT;
    int rc = rs_buf_append(&group, version, sizeof version);
    rc = rc ? rc : meta_elem(&group, 0x0002, "UI", sop_class, 0);
    rc = rc ? rc : meta_elem(&group, 0x0003, "UI", sop_uid, 0);
    rc = rc ? rc : meta_elem(&group, 0x0010, "UI", ts_uid, 0);
    rc = rc ? rc : meta_elem(&group, 0x0012, "UI", DCM_IMPL_CLASS_UID, 0);
    rc = rc ? rc : meta_elem(&group, 0x0013, "SH", DCM_IMPL_VERSION, ' ');
    uint8_t pre[132] = {0};
    memcpy(pre + 128, "DICM", 4);
    uint32_t glen = (uint32_t)group.len;
    uint8_t gl[12] = {0x02, 0x00, 0x00, 0x00, 'U', 'L', 4, 0, (uint8_t)glen, (uint8_t)(glen >> 8),
                      (uint8_t)(glen >> 16), (uint8_t)(glen >> 24)};
    rc = rc ? rc : rs_buf_append(b, pre, sizeof pre);
    rc = rc ? rc : rs_buf_append(b, gl, sizeof gl);
    rc = rc ? rc : rs_buf_append(b, group.p, group.len);
    rs_buf_free(&group);
    return rc;
}

int store_ingest_expect(store_ingest *in, const char *sop_class, const char *sop_uid, rs_err *err)
{
    if (strlen(sop_class) > STORE_UID_MAX || strlen(sop_uid) > STORE_UID_MAX)
        return rs_err_set(err, RS_EINVAL, "UID longer than %d characters", STORE_UID_MAX);
    snprintf(in->expect_class, sizeof in->expect_class, "%s", sop_class);
    snprintf(in->expect_uid, sizeof in->expect_uid, "%s", sop_uid);
    return RS_OK;
}

int store_ingest_expect_study(store_ingest *in, const char *study_uid, rs_err *err)
{
    if (strlen(study_uid) > STORE_UID_MAX)
        return rs_err_set(err, RS_EINVAL, "UID longer than %d characters", STORE_UID_MAX);
    snprintf(in->expect_study, sizeof in->expect_study, "%s", study_uid);
    return RS_OK;
}

int store_ingest_write_meta(store_ingest *in, const char *sop_class, const char *sop_uid,
                            const char *ts_uid, rs_err *err)
{
    if (in->written)
        return rs_err_set(err, RS_EINVAL, "the file meta information must come first");
    if (strlen(sop_class) > STORE_UID_MAX || strlen(sop_uid) > STORE_UID_MAX || strlen(ts_uid) > STORE_UID_MAX)
        return rs_err_set(err, RS_EINVAL, "UID longer than %d characters", STORE_UID_MAX);
    rs_buf b = RS_BUF_INIT;
    int rc = build_meta(&b, sop_class, sop_uid, ts_uid);
    rc = rc ? rs_err_set(err, rc, "out of memory") : store_ingest_write(in, b.p, b.len, err);
    rs_buf_free(&b);
    return rc;
}

static void fill_result(store_ingest_result *res, const store_record *rec, const store_pending *p)
{
    memset(res, 0, sizeof *res);
    res->outcome = p->outcome;
    res->duplicate = p->outcome == STORE_DUPLICATE;
    res->new_version = p->outcome == STORE_NEW_VERSION;
    res->version = p->put.version;
    res->current = p->outcome == STORE_DUPLICATE ? 0 : p->put.current;
    snprintf(res->hash, sizeof res->hash, "%s", rec->hash);
    res->size = rec->size;
    snprintf(res->sop_uid, sizeof res->sop_uid, "%s", store_record_str(rec, DCM_TAG_SOP_INSTANCE_UID));
    snprintf(res->sop_class, sizeof res->sop_class, "%s", store_record_str(rec, DCM_TAG_SOP_CLASS_UID));
    snprintf(res->study_uid, sizeof res->study_uid, "%s", store_record_str(rec, DCM_TAG_STUDY_UID));
    snprintf(res->series_uid, sizeof res->series_uid, "%s", store_record_str(rec, DCM_TAG_SERIES_UID));
}

/*
 * The received time of an ingest, which becomes its file's mtime: the clock, but never equal to
 * or before the previous one. Versions of an instance are ordered by it (and reindex finds it
 * again in the mtime), so two versions written within one tick of the kernel's file-time clock
 * must not tie.
 */
static int64_t next_stamp(store *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    int64_t last = atomic_load(&s->last_stamp), next;
    do
        next = now > last ? now : last + 1;
    while (!atomic_compare_exchange_weak(&s->last_stamp, &last, next));
    return next;
}

/* Finish the file (not yet durable) and parse it; on failure the blob is aborted. */
static int prepare(store_ingest *in, store_record **rec, rs_err *err)
{
    store_blob_info info;
    *rec = NULL;
    int rc = store_blob_finish(in->blob, next_stamp(in->s), &info, err);
    if (rc == RS_OK)
        rc = store_record_read(store_blob_tmp_path(in->blob), &in->s->opts.record, rec, err);
    /* a file whose meta group (from the C-STORE command) and data set disagree is refused
       before it is committed: the sender would believe in an instance nobody can find */
    if (rc == RS_OK && in->expect_uid[0]) {
        const char *cls = store_record_str(*rec, DCM_TAG_SOP_CLASS_UID);
        const char *uid = store_record_str(*rec, DCM_TAG_SOP_INSTANCE_UID);
        if (strcmp(cls, in->expect_class) || strcmp(uid, in->expect_uid))
            rc = rs_err_set(err, RS_EINVAL, "data set is %.64s of class %.64s, not %.64s of class %.64s", uid, cls,
                            in->expect_uid, in->expect_class);
    }
    if (rc == RS_OK && in->expect_study[0] && strcmp(store_record_str(*rec, DCM_TAG_STUDY_UID), in->expect_study))
        rc = rs_err_set(err, RS_EINVAL, "instance belongs to study %.64s, not %.64s",
                        store_record_str(*rec, DCM_TAG_STUDY_UID), in->expect_study);
    if (rc) {
        store_blob_abort(in->blob);
        in->blob = NULL;
        return rc;
    }
    snprintf((*rec)->hash, sizeof (*rec)->hash, "%s", info.hash);
    (*rec)->size = info.size;
    (*rec)->received_ns = info.mtime_ns;
    if ((*rec)->json_dropped)
        store_logf(in->s->opts.log, in->s->opts.log_ctx, RS_LOG_WARN,
                   "instance %s: header JSON over the size cap, not kept in the index",
                   store_record_str(*rec, DCM_TAG_SOP_INSTANCE_UID));
    return RS_OK;
}

static int sync_blob(void *ctx, rs_err *err)
{
    return store_blob_sync(ctx, err);
}

int store_ingest_commit(store_ingest *in, const char *source, store_ingest_result *res, rs_err *err)
{
    store *s = in->s;
    store_record *rec = NULL;
    int rc = flush_head(in, err);
    if (rc == RS_OK)
        rc = prepare(in, &rec, err);
    else
        store_blob_abort(in->blob);
    if (rc == RS_OK) {
        /* the file's fsync runs in this thread while the committer writes its row */
        store_pending p = {.rec = rec, .source = source, .tmp_name = store_blob_name(in->blob)};
        rc = store_commit_submit(s->commit, &p, sync_blob, in->blob);
        if (rc && err)
            *err = p.err;
        if (rc == RS_OK && res)
            fill_result(res, rec, &p);
        /* committed: the committer moves (or, for a duplicate, removes) the file */
        if (rc == RS_OK)
            store_blob_close(in->blob);
        else
            store_blob_abort(in->blob);
    }
    store_record_free(rec);
    store_commit_leave(s->commit);
    free(in);
    return rc;
}

void store_ingest_abort(store_ingest *in)
{
    if (!in)
        return;
    store_blob_abort(in->blob);
    store_commit_leave(in->s->commit);
    free(in);
}

/* The bytes of a one-call put, written into an open ingest. */
typedef int (*feed_fn)(store_ingest *in, const void *src, rs_err *err);

static int put_fed(store *s, const char *source, feed_fn feed, const void *src, store_ingest_result *res,
                   rs_err *err)
{
    store_ingest *in;
    int rc = store_ingest_begin(s, &in, err);
    if (rc)
        return rc;
    rc = feed(in, src, err);
    if (rc) {
        store_ingest_abort(in);
        return rc;
    }
    return store_ingest_commit(in, source, res, err);
}

typedef struct mem_src {
    const void *data;
    size_t n;
} mem_src;

static int feed_mem(store_ingest *in, const void *src, rs_err *err)
{
    const mem_src *m = src;
    return store_ingest_write(in, m->data, m->n, err);
}

static int feed_fd(store_ingest *in, const void *src, rs_err *err)
{
    int fd = *(const int *)src;
    uint8_t *buf = malloc(COPY_CHUNK);
    if (!buf)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    int rc = RS_OK;
    for (;;) {
        ssize_t r = read(fd, buf, COPY_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r < 0)
                rc = rs_err_set(err, RS_EIO, "read: %s", strerror(errno));
            break;
        }
        rc = store_ingest_write(in, buf, (size_t)r, err);
        if (rc)
            break;
    }
    free(buf);
    return rc;
}

int store_put_mem(store *s, const void *data, size_t n, store_ingest_result *res, rs_err *err)
{
    mem_src m = {data, n};
    return put_fed(s, NULL, feed_mem, &m, res, err);
}

int store_put_file(store *s, const char *path, store_ingest_result *res, rs_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rs_err_set(err, RS_EIO, "cannot open %s: %s", path, strerror(errno));
    int rc = put_fed(s, path, feed_fd, &fd, res, err);
    close(fd);
    return rc;
}

/* ---- reading --------------------------------------------------------------------------------------- */

int store_find_instance(store *s, const char *sop_uid, store_instance_info *info, rs_err *err)
{
    return s->ix->ops->instance(s->ix, sop_uid, info, err);
}

int store_dataset_span(int fd, uint64_t *off, uint64_t *len, rs_err *err)
{
    dcm_in in;
    dcm_file *f = NULL;
    dcm_read_opts ro = {.stop_tag = 1, .max_memory = 1u << 20}; /* stop at the first dataset element */
    int rc = dcm_in_fd(&in, fd, err);
    if (rc)
        return rc;
    rc = dcm_read_input(&in, &ro, &f, err);
    if (rc == RS_OK) {
        *off = f->data_offset;
        *len = f->source_size > f->data_offset ? f->source_size - f->data_offset : 0;
    }
    dcm_in_close(&in);
    dcm_file_free(f);
    return rc;
}

int store_open_instance(store *s, const char *hash, int *fd, uint64_t *off, uint64_t *len, rs_err *err)
{
    int rc = store_blob_open(s->blobs, hash, fd, err);
    if (rc == RS_OK && off && len && (rc = store_dataset_span(*fd, off, len, err)) != RS_OK) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

int store_has_object(store *s, const char *hash, int *yes, rs_err *err)
{
    return s->ix->ops->has_hash(s->ix, hash, yes, err);
}

int store_open_current(store *s, const char *sop_uid, int *fd, store_instance_info *info, rs_err *err)
{
    store_instance_info local;
    if (!info)
        info = &local;
    *fd = -1;
    int rc = store_find_instance(s, sop_uid, info, err);
    return rc ? rc : store_blob_open(s->blobs, info->hash, fd, err);
}

int store_get_instance_path(store *s, const char *sop_uid, char *out, size_t cap, rs_err *err)
{
    store_instance_info info;
    int rc = store_find_instance(s, sop_uid, &info, err);
    if (rc == RS_OK && store_blob_path(s->blobs, info.hash, out, cap) != RS_OK)
        rc = rs_err_set(err, RS_ELIMIT, "path buffer too small");
    return rc;
}

int store_get_metadata(store *s, const char *sop_uid, rs_buf *out, rs_err *err)
{
    return s->ix->ops->metadata(s->ix, sop_uid, out, err);
}

int store_query_run(store *s, const store_query *q, store_match_fn fn, void *ctx, rs_err *err)
{
    store_plan plan;
    int rc = store_plan_build(q, &plan, err);
    if (rc == RS_OK)
        rc = s->ix->ops->query(s->ix, &plan, fn, ctx, err);
    store_plan_free(&plan);
    return rc;
}

/* A UID fit to be a file name: digits and dots only. */
static int uid_ok(const char *uid)
{
    size_t n = strlen(uid);
    if (n == 0 || n > STORE_UID_MAX || uid[0] == '.')
        return 0;
    return strspn(uid, "0123456789.") == n;
}

int store_trash_study(store *s, const char *study_uid, int trashed, rs_err *err)
{
    char dir[PATH_MAX], p[PATH_MAX];
    if (!uid_ok(study_uid))
        return rs_err_set(err, RS_EINVAL, "not a UID: \"%.64s\"", study_uid);
    int rc = sub_path(s->datadir, TRASH_DIR, dir, sizeof dir, err);
    if (rc == RS_OK && snprintf(p, sizeof p, "%s/%s", dir, study_uid) >= (int)sizeof p)
        rc = rs_err_set(err, RS_EINVAL, "data directory path too long");
    if (rc)
        return rc;
    if (!trashed) {
        /* the index first: a crash in between leaves a mark the next open restores */
        rc = s->ix->ops->trash(s->ix, study_uid, 0, err);
        if (rc == RS_OK && unlink(p) != 0 && errno != ENOENT)
            rc = rs_err_set(err, RS_EIO, "cannot remove %s: %s", p, strerror(errno));
        return rc ? rc : sync_dir(dir, err);
    }
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return rs_err_set(err, RS_EIO, "cannot create %s: %s", p, strerror(errno));
    close(fd);
    rc = sync_dir(dir, err);
    return rc ? rc : s->ix->ops->trash(s->ix, study_uid, 1, err);
}

int store_is_trashed(store *s, const char *study_uid, int *yes, rs_err *err)
{
    return s->ix->ops->is_trashed(s->ix, study_uid, yes, err);
}

int store_get_stats(store *s, store_stats *st, rs_err *err)
{
    memset(st, 0, sizeof *st);
    store_commit_stats_get(s->commit, &st->commit);
    return s->ix->ops->stats(s->ix, &st->index, err);
}

/* ---- reindex ------------------------------------------------------------------------------------------ */

typedef struct object_list {
    store_blob_info *v;
    size_t n, cap;
} object_list;

static int collect_object(void *ctx, const store_blob_info *info)
{
    object_list *l = ctx;
    if (rs_grow((void **)&l->v, &l->cap, l->n, sizeof *l->v, 1024))
        return RS_ENOMEM;
    l->v[l->n++] = *info;
    return 0;
}

/* Receive order, as the committer saw it: mtime, then hash. */
static int cmp_object(const void *a, const void *b)
{
    const store_blob_info *x = a, *y = b;
    if (x->mtime_ns != y->mtime_ns)
        return x->mtime_ns < y->mtime_ns ? -1 : 1;
    return strcmp(x->hash, y->hash);
}

typedef struct reindex_ctx {
    const store_opts *o;
    store_blobs *blobs;
    store_commit_env env;
    store_reindex_report *rep;
    int verify;
} reindex_ctx;

/* The record of one object, or NULL when it is not indexable (counted and logged). */
static store_record *object_record(reindex_ctx *k, const store_blob_info *obj)
{
    char path[PATH_MAX];
    rs_err e = {0};
    store_blob_path(k->blobs, obj->hash, path, sizeof path);
    if (k->verify) {
        char hash[STORE_HASH_HEX + 1];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        int rc = fd < 0 ? RS_EIO : store_blob_hash_fd(fd, hash, NULL, &e);
        if (fd >= 0)
            close(fd);
        if (rc || strcmp(hash, obj->hash) != 0) {
            k->rep->corrupt++;
            store_logf(k->o->log, k->o->log_ctx, RS_LOG_ERROR,
                       "object %s: content does not match its name; not indexed", obj->hash);
            return NULL;
        }
    }
    store_record *rec;
    if (store_record_read(path, &k->o->record, &rec, &e)) {
        k->rep->unreadable++;
        store_logf(k->o->log, k->o->log_ctx, RS_LOG_ERROR, "object %s: %s; not indexed", obj->hash, e.msg);
        return NULL;
    }
    snprintf(rec->hash, sizeof rec->hash, "%s", obj->hash);
    rec->size = obj->size;
    rec->received_ns = obj->mtime_ns;
    return rec;
}

static int reindex_batch(reindex_ctx *k, const store_blob_info *objs, size_t n, rs_err *err)
{
    store_pending *p = calloc(n, sizeof *p), **v = calloc(n, sizeof *v);
    size_t m = 0;
    if (!p || !v)
        n = 0;
    for (size_t i = 0; i < n; i++) {
        store_record *rec = object_record(k, &objs[i]);
        if (rec) {
            p[m] = (store_pending){.rec = rec};
            v[m] = &p[m];
            m++;
        }
    }
    int rc = m ? store_commit_apply(&k->env, v, m, err) : RS_OK;
    for (size_t i = 0; i < m; i++) {
        if (rc == RS_OK && p[i].rc == RS_OK && p[i].outcome != STORE_DUPLICATE)
            k->rep->indexed++;
        else if (rc == RS_OK && p[i].rc)
            store_logf(k->o->log, k->o->log_ctx, RS_LOG_ERROR, "object %s: %s; not indexed", p[i].rec->hash,
                       p[i].err.msg);
        store_record_free((store_record *)p[i].rec);
    }
    free(p);
    free(v);
    return p && v ? rc : rs_err_set(err, RS_ENOMEM, "out of memory");
}

/* tmp/ before a rebuild: .ready files are complete and durable; some were acknowledged. */
static int always_indexed(void *ctx, const char *hash, int *yes, rs_err *err)
{
    *yes = 1;
    return RS_OK;
}

static int rebuild(reindex_ctx *k, const char *path, rs_err *err)
{
    object_list objs = {0};
    const store_index_ops *ops = backend(k->o, err);
    int rc = ops ? store_blob_recover(k->blobs, always_indexed, NULL, &k->rep->tmp, err) : RS_EUNSUPPORTED;
    if (rc == RS_OK)
        rc = store_blob_walk(k->blobs, collect_object, &objs, err);
    if (rc == RS_OK)
        rc = ops->open_rebuild(path, &k->env.ix, err);
    if (rc == RS_OK) {
        k->rep->objects = objs.n;
        qsort(objs.v, objs.n, sizeof *objs.v, cmp_object);
        for (size_t i = 0; i < objs.n && rc == RS_OK; i += REINDEX_BATCH)
            rc = reindex_batch(k, objs.v + i, objs.n - i < REINDEX_BATCH ? objs.n - i : REINDEX_BATCH, err);
        if (rc == RS_OK)
            rc = k->env.ix->ops->rebuild_finish(k->env.ix, err);
        k->env.ix->ops->close(k->env.ix);
    }
    free(objs.v);
    return rc;
}

/* Remove the WAL companions of an index file. */
static void remove_wal(const char *path)
{
    char p[PATH_MAX + 8];
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static void remove_index(const char *path)
{
    unlink(path);
    remove_wal(path);
}

int store_reindex(const char *datadir, const store_opts *o, int verify, store_reindex_report *rep, rs_err *err)
{
    char fresh[PATH_MAX], live[PATH_MAX];
    int lock_fd;
    memset(rep, 0, sizeof *rep);
    store_opts opts = o ? *o : (store_opts){0};
    if (!opts.log)
        opts.log = default_log;
    reindex_ctx k = {.o = &opts, .rep = rep, .verify = verify,
                     .env = {.log = opts.log, .log_ctx = opts.log_ctx}};
    int rc = lock_datadir(datadir, &lock_fd, err);
    if (rc)
        return rc;
    rc = sub_path(datadir, REBUILD_FILE, fresh, sizeof fresh, err);
    if (rc == RS_OK)
        rc = sub_path(datadir, INDEX_FILE, live, sizeof live, err);
    if (rc == RS_OK)
        rc = store_blobs_open(datadir, opts.max_object_size, &k.blobs, err);
    k.env.blobs = k.blobs;
    if (rc == RS_OK) {
        remove_index(fresh);
        rc = rebuild(&k, fresh, err);
    }
    /*
     * The new index is complete and durable in one file (rebuild_finish): swap it in. The old WAL must go
     * first (SQLite would replay it onto the new file); a crash between the two steps leaves the
     * old index without its last transactions, which the next reindex repairs like any other.
     */
    if (rc == RS_OK) {
        remove_wal(live);
        if (rename(fresh, live) != 0)
            rc = rs_err_set(err, RS_EIO, "cannot rename %s: %s", fresh, strerror(errno));
    }
    if (rc == RS_OK)
        rc = sync_dir(datadir, err);
    if (rc)
        remove_index(fresh);
    store_blobs_close(k.blobs);
    close(lock_fd);
    return rc;
}
