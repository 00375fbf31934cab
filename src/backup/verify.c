/*
 * verify.c - see verify.h.
 *
 * DATA/verify.state: "radshare-verify 1" then one "<hash> <size> <mtime_ns>" line per file that
 * hashed clean, sorted by hash; rewritten atomically at the end of each run.
 */
#include "verify.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../store/blobstore.h"
#include "../util/buf.h"
#include "../util/progress.h"
#include "catalog.h"
#include "files.h"

#define STATE_FILE "verify.state"
#define STATE_MAGIC "radshare-verify 1\n"
#define STATE_MAX (1u << 30)

typedef struct verify_run {
    const char *datadir;
    const backup_verify_opts *o;
    backup_verify_report *rep;
    backup_objs objs;   /* walked, sorted by hash */
    backup_objs prev;   /* from verify.state, sorted by hash */
    backup_objs clean;  /* for the next verify.state */
    char (*indexed)[STORE_HASH_HEX + 1];
    size_t n_indexed;
    int paused;      /* really_missing has waited once for in-flight publishes */
    rs_progress prog;
} verify_run;

const char *backup_problem_name(backup_problem p)
{
    return p == BACKUP_MISSING ? "missing" : p == BACKUP_CORRUPT ? "corrupt" : "orphan";
}

static int cmp_hash(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void problem(verify_run *r, backup_problem p, const char *hash, const char *detail)
{
    char path[PATH_MAX];
    if (backup_object_path(r->datadir, hash, path, sizeof path, NULL) != RS_OK)
        snprintf(path, sizeof path, "%s", hash);
    if (p == BACKUP_MISSING)
        r->rep->missing++;
    else if (p == BACKUP_CORRUPT)
        r->rep->corrupt++;
    else
        r->rep->orphan++;
    if (r->o->problem)
        r->o->problem(r->o->ctx, p, path, detail);
}

static int state_path(const char *datadir, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", datadir, STATE_FILE);
    return n > 0 && (size_t)n < cap ? RS_OK : RS_EINVAL;
}

/* A missing or unreadable state only means everything is hashed again. */
static void load_state(verify_run *r)
{
    char p[PATH_MAX];
    uint8_t *data = NULL;
    size_t n;
    if (state_path(r->datadir, p, sizeof p) || backup_read_file(p, STATE_MAX, &data, &n, NULL))
        return;
    if (n < sizeof STATE_MAGIC - 1 || memcmp(data, STATE_MAGIC, sizeof STATE_MAGIC - 1) != 0) {
        free(data);
        return;
    }
    char *line = (char *)data + sizeof STATE_MAGIC - 1, *save = NULL;
    for (char *t = strtok_r(line, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
        store_blob_info info;
        char hash[80];
        unsigned long long size;
        long long mt;
        if (sscanf(t, "%79s %llu %lld", hash, &size, &mt) != 3 || !store_hash_valid(hash))
            continue;
        snprintf(info.hash, sizeof info.hash, "%.64s", hash);
        info.size = size;
        info.mtime_ns = mt;
        if (backup_objs_push(&r->prev, &info))
            break;
    }
    free(data);
    qsort(r->prev.v, r->prev.n, sizeof *r->prev.v, backup_objs_cmp);
}

static int save_state(verify_run *r, rs_err *err)
{
    char p[PATH_MAX];
    rs_buf b = RS_BUF_INIT;
    int rc = rs_buf_puts(&b, STATE_MAGIC);
    for (size_t i = 0; i < r->clean.n && rc == RS_OK; i++)
        rc = rs_buf_printf(&b, "%s %" PRIu64 " %" PRId64 "\n", r->clean.v[i].hash, r->clean.v[i].size,
                           r->clean.v[i].mtime_ns);
    if (rc)
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
    else if (state_path(r->datadir, p, sizeof p))
        rc = rs_err_set(err, RS_EINVAL, "path too long");
    else
        rc = backup_write_file(p, b.p, b.len, 0640, err);
    rs_buf_free(&b);
    return rc;
}

static int unchanged(verify_run *r, const store_blob_info *o)
{
    const store_blob_info *p = bsearch(o, r->prev.v, r->prev.n, sizeof *r->prev.v, backup_objs_cmp);
    return p && p->size == o->size && p->mtime_ns == o->mtime_ns;
}

static int check_object(verify_run *r, const store_blob_info *o, rs_err *err)
{
    if (!bsearch(o->hash, r->indexed, r->n_indexed, sizeof *r->indexed, cmp_hash)) {
        problem(r, BACKUP_ORPHAN, o->hash, "no index row names this file");
        return RS_OK;
    }
    if (!r->o->full && unchanged(r, o)) {
        r->rep->skipped++;
        rs_progress_add(&r->prog, 1, 0);
        return backup_objs_push(&r->clean, o) ? rs_err_set(err, RS_ENOMEM, "out of memory") : RS_OK;
    }
    char path[PATH_MAX], hash[STORE_HASH_HEX + 1];
    uint64_t size = 0;
    rs_err e = {0};
    int rc = backup_object_path(r->datadir, o->hash, path, sizeof path, err);
    if (rc)
        return rc;
    rc = backup_hash_file(path, hash, &size, &e);
    r->rep->hashed++;
    r->rep->bytes += size;
    rs_progress_add(&r->prog, 1, size);
    if (rc == RS_ENOTFOUND) /* deleted since the walk: a missing file, found below if still indexed */
        return RS_OK;
    if (rc) {
        problem(r, BACKUP_CORRUPT, o->hash, e.msg);
        return RS_OK;
    }
    if (strcmp(hash, o->hash) != 0) {
        char d[128];
        snprintf(d, sizeof d, "content hashes to %.16s...", hash);
        problem(r, BACKUP_CORRUPT, o->hash, d);
        return RS_OK;
    }
    return backup_objs_push(&r->clean, o) ? rs_err_set(err, RS_ENOMEM, "out of memory") : RS_OK;
}

/*
 * An indexed hash absent from the walk: published since? A running serve links a file into
 * objects/ just after the COMMIT of its row (docs/store.md), so a row read from the index can be
 * a few microseconds ahead of its file. Every row was read before the first miss is checked, so
 * one short pause at that first miss lets all such links land; later misses need no pause.
 */
static int really_missing(verify_run *r, const char *hash)
{
    char p[PATH_MAX];
    struct stat st;
    if (backup_object_path(r->datadir, hash, p, sizeof p, NULL) != RS_OK)
        return 1;
    if (lstat(p, &st) == 0)
        return 0;
    if (!r->paused) {
        r->paused = 1;
        usleep(100 * 1000);
        return lstat(p, &st) != 0;
    }
    return 1;
}

static int run(verify_run *r, rs_err *err)
{
    store_blobs *blobs = NULL;
    backup_catalog *cat = NULL;
    int rc = store_blobs_open(r->datadir, 0, &blobs, err);
    if (rc == RS_OK)
        rc = store_blob_walk(blobs, backup_objs_collect, &r->objs, err);
    store_blobs_close(blobs);
    /* the index after the walk: a file in objects/ always has its row committed before */
    if (rc == RS_OK)
        rc = backup_catalog_open(r->datadir, &cat, err);
    if (rc == RS_OK)
        rc = backup_catalog_hashes(cat, &r->indexed, &r->n_indexed, err);
    backup_catalog_close(cat);
    if (rc)
        return rc;
    r->rep->objects = r->objs.n;
    r->rep->indexed = r->n_indexed;
    qsort(r->objs.v, r->objs.n, sizeof *r->objs.v, backup_objs_cmp);
    load_state(r);
    rs_progress_begin(&r->prog, "verify", r->objs.n, r->o->quiet);
    for (size_t i = 0; i < r->objs.n && rc == RS_OK; i++)
        rc = check_object(r, &r->objs.v[i], err);
    rs_progress_end(&r->prog);
    for (size_t i = 0, j = 0; i < r->n_indexed && rc == RS_OK; i++) {
        while (j < r->objs.n && strcmp(r->objs.v[j].hash, r->indexed[i]) < 0)
            j++;
        if ((j == r->objs.n || strcmp(r->objs.v[j].hash, r->indexed[i]) != 0) && really_missing(r, r->indexed[i]))
            problem(r, BACKUP_MISSING, r->indexed[i], "indexed, but there is no such file");
    }
    return rc ? rc : save_state(r, err);
}

int backup_verify(const char *datadir, const backup_verify_opts *o, backup_verify_report *rep, rs_err *err)
{
    memset(rep, 0, sizeof *rep);
    verify_run r = {.datadir = datadir, .o = o, .rep = rep};
    int rc = run(&r, err);
    free(r.objs.v);
    free(r.prev.v);
    free(r.clean.v);
    free(r.indexed);
    return rc;
}
