/*
 * backup.c - see backup.h. The manifest is text, one record a line:
 *
 *   radshare-backup 1
 *   run <RUN>
 *   key <hex of the raw ed25519 public key>
 *   object <sha256> <size> <mtime_ns>
 *   file <relative path> <sha256> <size>
 *   end <objects> <files>
 *
 * The mtime is kept because it is data: the received time that orders versions (docs/store.md).
 */
#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../store/store.h"
#include "../util/buf.h"
#include "../util/progress.h"
#include "catalog.h"
#include "files.h"
#include "sign.h"

#define MANIFEST_MAGIC "radshare-backup 1"
#define MANIFEST_MAX (1u << 30)
#define MAX_AUDIT_FILES 100000

static int64_t stat_mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int path_join(char *out, const char *a, const char *b, rs_err *err)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", a, b);
    return n > 0 && n < PATH_MAX ? RS_OK : rs_err_set(err, RS_EINVAL, "path too long: %s/%s", a, b);
}

/* Names we copy from DATA/audit and accept back from a manifest: no separators, no dot files. */
static int plain_name(const char *s)
{
    if (!*s || *s == '.' || strlen(s) > 128)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* ---- backup -------------------------------------------------------------------------------- */

typedef struct backup_ctx {
    const char *data, *to;
    const backup_opts *o;
    backup_report *rep;
    char rundir[PATH_MAX];
    rs_buf manifest;
    rs_progress prog;
} backup_ctx;

/* A new run directory named for the time; another run in the same second gets a suffix. */
static int make_run_dir(backup_ctx *b, rs_err *err)
{
    char runs[PATH_MAX];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    int rc = path_join(runs, b->to, "runs", err);
    if (rc)
        return rc;
    if (mkdir(b->to, 0750) != 0 && errno != EEXIST)
        return rs_err_set(err, RS_EIO, "cannot create %s: %s", b->to, strerror(errno));
    if (mkdir(runs, 0750) != 0 && errno != EEXIST)
        return rs_err_set(err, RS_EIO, "cannot create %s: %s", runs, strerror(errno));
    for (int i = 0; i < 100; i++) {
        char name[64];
        size_t n = strftime(name, sizeof name, "%Y%m%dT%H%M%SZ", &tm);
        if (i)
            snprintf(name + n, sizeof name - n, "-%02d", i);
        if ((rc = path_join(b->rundir, runs, name, err)) != RS_OK)
            return rc;
        if (mkdir(b->rundir, 0750) == 0) {
            snprintf(b->rep->run, sizeof b->rep->run, "%s", name);
            return RS_OK;
        }
        if (errno != EEXIST)
            return rs_err_set(err, RS_EIO, "cannot create %s: %s", b->rundir, strerror(errno));
    }
    return rs_err_set(err, RS_ELIMIT, "too many runs in one second");
}

/* One object into the backup (if new) and into the manifest. */
static int backup_object(backup_ctx *b, const store_blob_info *o, int in_data, int *listed, rs_err *err)
{
    *listed = 0;
    char src[PATH_MAX], dst[PATH_MAX];
    struct stat st;
    int rc = backup_object_path(b->to, o->hash, dst, sizeof dst, err);
    if (rc == RS_OK)
        rc = backup_object_path(b->data, o->hash, src, sizeof src, err);
    if (rc)
        return rc;
    int64_t mtime = o->mtime_ns;
    uint64_t size = o->size;
    if (lstat(dst, &st) == 0 && S_ISREG(st.st_mode) && (!in_data || (uint64_t)st.st_size == o->size)) {
        mtime = stat_mtime_ns(&st); /* the copy's, hash-checked when it was made */
        size = (uint64_t)st.st_size;
    } else if (!in_data) {
        return RS_OK; /* indexed, gone from DATA, never backed up: verify reports it */
    } else {
        rs_err e = {0};
        rc = backup_copy_file(src, dst, o->mtime_ns, o->hash, NULL, &size, &e);
        if (rc == RS_EFORMAT || rc == RS_ENOTFOUND) {
            fprintf(stderr, "backup: not backed up: %s\n", e.msg);
            b->rep->corrupt++;
            return RS_OK;
        }
        if (rc) {
            *err = e;
            return rc;
        }
        b->rep->copied++;
        b->rep->bytes_copied += size;
    }
    b->rep->objects++;
    *listed = 1;
    rs_progress_add(&b->prog, 1, size);
    return rs_buf_printf(&b->manifest, "object %s %" PRIu64 " %" PRId64 "\n", o->hash, size, mtime)
               ? rs_err_set(err, RS_ENOMEM, "out of memory")
               : RS_OK;
}

static int add_file_line(backup_ctx *b, const char *rel, const char *path, rs_err *err)
{
    char hash[STORE_HASH_HEX + 1];
    uint64_t size;
    int rc = backup_hash_file(path, hash, &size, err);
    if (rc == RS_OK && rs_buf_printf(&b->manifest, "file %s %s %" PRIu64 "\n", rel, hash, size))
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
    if (rc == RS_OK)
        b->rep->files++;
    return rc;
}

/*
 * A consistent copy of the SQLite database DATA/<name> while its owners may be writing (online
 * backup API, from a read-only connection: WAL gives it a snapshot), as one self-contained file
 * rundir/<name>. RS_ENOTFOUND when DATA has no such database.
 */
static int snapshot_db(backup_ctx *b, const char *name, rs_err *err)
{
    char src[PATH_MAX], dst[PATH_MAX];
    struct stat st;
    int rc = path_join(src, b->data, name, err);
    if (rc == RS_OK)
        rc = path_join(dst, b->rundir, name, err);
    if (rc)
        return rc;
    if (lstat(src, &st) != 0)
        return RS_ENOTFOUND;
    sqlite3 *from = NULL, *into = NULL;
    if (sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_open_v2(dst, &into, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        rc = rs_err_set(err, RS_EIO, "%s: %s", name, sqlite3_errmsg(from ? into ? into : from : from));
    } else {
        sqlite3_busy_timeout(from, 10000);
        sqlite3_backup *bk = sqlite3_backup_init(into, "main", from, "main");
        int r = bk ? sqlite3_backup_step(bk, -1) : SQLITE_ERROR;
        if (bk)
            sqlite3_backup_finish(bk);
        if (r != SQLITE_DONE)
            rc = rs_err_set(err, RS_EIO, "cannot copy %s: %s", name, sqlite3_errmsg(into));
        /* one self-contained file: no WAL beside it */
        else if (sqlite3_exec(into, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK)
            rc = rs_err_set(err, RS_EIO, "%s copy: %s", name, sqlite3_errmsg(into));
    }
    sqlite3_close(from);
    sqlite3_close(into);
    if (rc == RS_OK && chmod(dst, 0640) != 0) /* patient data: as private as the objects */
        rc = rs_err_set(err, RS_EIO, "cannot chmod %s: %s", dst, strerror(errno));
    return rc;
}

static int backup_state(backup_ctx *b, rs_err *err)
{
    char dst[PATH_MAX];
    int rc = snapshot_db(b, "state.sqlite", err);
    if (rc == RS_ENOTFOUND)
        return RS_OK;
    if (rc == RS_OK)
        rc = path_join(dst, b->rundir, "state.sqlite", err);
    return rc ? rc : add_file_line(b, "state.sqlite", dst, err);
}

/* The plain files of DATA/<sub> (audit: the hash-chained log; trash: the store's deletion marks). */
static int backup_dir_files(backup_ctx *b, const char *sub, rs_err *err)
{
    char dir[PATH_MAX], outdir[PATH_MAX];
    int rc = path_join(dir, b->data, sub, err);
    if (rc == RS_OK)
        rc = path_join(outdir, b->rundir, sub, err);
    DIR *d = rc ? NULL : opendir(dir);
    if (!d)
        return rc;
    struct dirent *de;
    unsigned n = 0;
    while (rc == RS_OK && (de = readdir(d)) != NULL) {
        char src[PATH_MAX], dst[PATH_MAX], rel[PATH_MAX];
        struct stat st;
        if (!plain_name(de->d_name) || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (++n > MAX_AUDIT_FILES)
            rc = rs_err_set(err, RS_ELIMIT, "more than %d files in %s", MAX_AUDIT_FILES, dir);
        snprintf(rel, sizeof rel, "%s/%s", sub, de->d_name);
        if (rc == RS_OK)
            rc = path_join(src, dir, de->d_name, err);
        if (rc == RS_OK)
            rc = path_join(dst, outdir, de->d_name, err);
        if (rc == RS_OK)
            rc = backup_copy_file(src, dst, 0, NULL, NULL, NULL, err);
        if (rc == RS_OK)
            rc = add_file_line(b, rel, dst, err);
    }
    closedir(d);
    return rc;
}

static int cmp_hash(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* An indexed object the walk did not see: published since (its row was committed after the walk
   began), or gone from DATA (then only an earlier run may hold it). */
static int unwalked(backup_ctx *b, const char *hash, backup_objs *objs, rs_err *err)
{
    store_blob_info key = {0};
    char path[PATH_MAX];
    struct stat st;
    snprintf(key.hash, sizeof key.hash, "%s", hash);
    if (backup_object_path(b->data, hash, path, sizeof path, err) == RS_OK && lstat(path, &st) == 0 &&
        S_ISREG(st.st_mode)) {
        key.size = (uint64_t)st.st_size;
        key.mtime_ns = stat_mtime_ns(&st);
    }
    return backup_objs_push(objs, &key) ? rs_err_set(err, RS_ENOMEM, "out of memory") : RS_OK;
}

/*
 * Everything in DATA/objects, plus indexed objects gone from DATA that an earlier run holds.
 * The index is snapshotted after the walk (a file enters objects/ only after its row is
 * committed, so every walked indexed object is in the snapshot), and the snapshot goes into the
 * run only when every object it names is in the manifest: then restore can use it instead of
 * rebuilding the index (docs/backup.md). Otherwise it is dropped and restore reindexes.
 */
static int backup_objects(backup_ctx *b, rs_err *err)
{
    backup_objs objs = {0};
    store_blobs *blobs = NULL;
    backup_catalog *cat = NULL;
    char (*idx)[STORE_HASH_HEX + 1] = NULL;
    size_t n_idx = 0;
    uint64_t gaps = 0;
    int rc = store_blobs_open(b->data, 0, &blobs, err);
    if (rc == RS_OK)
        rc = store_blob_walk(blobs, backup_objs_collect, &objs, err);
    store_blobs_close(blobs);
    int snap = rc ? rc : b->o->no_index ? RS_ENOTFOUND : snapshot_db(b, "index.sqlite", err);
    if (snap != RS_OK && snap != RS_ENOTFOUND)
        rc = snap;
    else if (backup_catalog_open(snap == RS_OK ? b->rundir : b->data, &cat, NULL) == RS_OK)
        rc = backup_catalog_hashes(cat, &idx, &n_idx, err);
    backup_catalog_close(cat);
    size_t walked = objs.n;
    if (rc == RS_OK)
        qsort(objs.v, objs.n, sizeof *objs.v, backup_objs_cmp);
    for (size_t i = 0; i < n_idx && rc == RS_OK; i++) {
        store_blob_info key = {0};
        snprintf(key.hash, sizeof key.hash, "%s", idx[i]);
        if (!bsearch(&key, objs.v, walked, sizeof *objs.v, backup_objs_cmp))
            rc = unwalked(b, idx[i], &objs, err);
    }
    if (rc == RS_OK) {
        qsort(objs.v, objs.n, sizeof *objs.v, backup_objs_cmp);
        rs_progress_begin(&b->prog, "backup", objs.n, b->o->quiet);
        for (size_t i = 0; i < objs.n && rc == RS_OK; i++) {
            int listed;
            rc = backup_object(b, &objs.v[i], objs.v[i].size || objs.v[i].mtime_ns, &listed, err);
            gaps += rc == RS_OK && !listed && bsearch(objs.v[i].hash, idx, n_idx, sizeof *idx, cmp_hash);
        }
        rs_progress_end(&b->prog);
    }
    if (rc == RS_OK && snap == RS_OK) {
        char path[PATH_MAX];
        rc = path_join(path, b->rundir, "index.sqlite", err);
        b->rep->index_snapshot = !gaps;
        if (rc == RS_OK && gaps)
            unlink(path); /* never listed, in a run not yet sealed */
        else if (rc == RS_OK)
            rc = add_file_line(b, "index.sqlite", path, err);
    }
    free(objs.v);
    free(idx);
    return rc;
}

static int write_new(const char *path, const void *p, size_t n, rs_err *err)
{
    struct stat st;
    if (lstat(path, &st) == 0)
        return rs_err_set(err, RS_EINVAL, "%s exists already", path);
    return backup_write_file(path, p, n, 0640, err);
}

static int seal(backup_ctx *b, const backup_key *key, rs_err *err)
{
    char path[PATH_MAX], sighex[2 * BACKUP_SIG_RAW + 2];
    uint8_t sig[BACKUP_SIG_RAW];
    int rc = rs_buf_printf(&b->manifest, "end %" PRIu64 " %" PRIu64 "\n", b->rep->objects, b->rep->files)
                 ? rs_err_set(err, RS_ENOMEM, "out of memory")
                 : RS_OK;
    if (rc == RS_OK)
        rc = path_join(path, b->rundir, "manifest", err);
    if (rc == RS_OK)
        rc = write_new(path, b->manifest.p, b->manifest.len, err);
    if (rc == RS_OK)
        rc = backup_key_sign(key, b->manifest.p, b->manifest.len, sig, err);
    if (rc)
        return rc;
    backup_hex(sig, sizeof sig, sighex);
    strcat(sighex, "\n");
    rc = path_join(path, b->rundir, "manifest.sig", err);
    return rc ? rc : write_new(path, sighex, strlen(sighex), err);
}

static int copy_pub(backup_ctx *b, rs_err *err)
{
    char src[PATH_MAX], dst[PATH_MAX];
    int rc = path_join(src, b->data, "backup-key.pub", err);
    if (rc == RS_OK)
        rc = path_join(dst, b->rundir, "backup-key.pub", err);
    return rc ? rc : backup_copy_file(src, dst, 0, NULL, NULL, NULL, err);
}

int backup_run(const char *datadir, const char *to, const backup_opts *o, backup_report *rep, rs_err *err)
{
    memset(rep, 0, sizeof *rep);
    backup_opts none = {0};
    backup_ctx b = {.data = datadir, .to = to, .o = o ? o : &none, .rep = rep, .manifest = RS_BUF_INIT};
    backup_key *key = NULL;
    uint8_t pub[BACKUP_KEY_RAW];
    char pubhex[2 * BACKUP_KEY_RAW + 1];
    int rc = backup_key_load(datadir, &key, &rep->key_created, err);
    if (rc == RS_OK) {
        backup_key_public(key, pub);
        backup_fingerprint(pub, rep->fingerprint);
        backup_hex(pub, sizeof pub, pubhex);
        rc = make_run_dir(&b, err);
    }
    if (rc == RS_OK && rs_buf_printf(&b.manifest, MANIFEST_MAGIC "\nrun %s\nkey %s\n", rep->run, pubhex))
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
    if (rc == RS_OK)
        rc = copy_pub(&b, err);
    if (rc == RS_OK)
        rc = backup_objects(&b, err);
    if (rc == RS_OK)
        rc = backup_state(&b, err);
    if (rc == RS_OK)
        rc = backup_dir_files(&b, "audit", err);
    if (rc == RS_OK)
        rc = backup_dir_files(&b, "trash", err);
    /* everything the manifest lists is durable before the manifest exists */
    if (rc == RS_OK)
        rc = backup_sync_fs(to, err);
    if (rc == RS_OK)
        rc = seal(&b, key, err);
    backup_key_free(key);
    rs_buf_free(&b.manifest);
    return rc;
}

/* ---- restore ------------------------------------------------------------------------------- */

/* The latest run that has its signature (names sort by time). */
static int latest_run(const char *from, char *out, size_t cap, rs_err *err)
{
    char runs[PATH_MAX];
    int rc = path_join(runs, from, "runs", err);
    DIR *d = rc ? NULL : opendir(runs);
    if (!d)
        return rc ? rc : rs_err_set(err, RS_ENOTFOUND, "%s is not a radshare backup (no runs/)", from);
    struct dirent *de;
    out[0] = 0;
    while ((de = readdir(d)) != NULL) {
        char sig[PATH_MAX];
        struct stat st;
        if (!plain_name(de->d_name) || strlen(de->d_name) >= cap ||
            snprintf(sig, sizeof sig, "%s/%s/manifest.sig", runs, de->d_name) >= (int)sizeof sig ||
            lstat(sig, &st) != 0)
            continue;
        if (strcmp(de->d_name, out) > 0)
            snprintf(out, cap, "%s", de->d_name);
    }
    closedir(d);
    return out[0] ? RS_OK : rs_err_set(err, RS_ENOTFOUND, "no complete backup run in %s", runs);
}

/* The key to check the signature with: the one the operator names, never the backup's word. */
static int trusted_key(const restore_opts *o, const uint8_t claimed[BACKUP_KEY_RAW], uint8_t pub[BACKUP_KEY_RAW],
                       rs_err *err)
{
    if (o->trust_file)
        return backup_pubkey_read(o->trust_file, pub, err);
    if (o->fingerprint) {
        char fp[STORE_HASH_HEX + 1];
        backup_fingerprint(claimed, fp);
        if (strcasecmp(fp, o->fingerprint) != 0)
            return rs_err_set(err, RS_EFORMAT, "the backup's key has fingerprint %s, not the trusted %s", fp,
                              o->fingerprint);
        memcpy(pub, claimed, BACKUP_KEY_RAW);
        return RS_OK;
    }
    return rs_err_set(err, RS_EINVAL, "no trusted key: give --trust PUBKEY.pem or --fingerprint HEX (printed by "
                                      "`radshare backup`)");
}

typedef struct restore_ctx {
    backup_objs restored;          /* the manifest's objects, in its (hash) order */
    int has_index;              /* the run has an index snapshot (restored with the files) */
    const char *from;
    const restore_opts *o;
    restore_report *rep;
    char rundir[PATH_MAX];
    char tmpdir[PATH_MAX];
    rs_progress prog;
} restore_ctx;

static int restore_line(restore_ctx *r, char *line, rs_err *err)
{
    char a[PATH_MAX], b[PATH_MAX], src[PATH_MAX], dst[PATH_MAX];
    unsigned long long size;
    long long mtime;
    rs_err e = {0};
    int rc;
    if (sscanf(line, "object %64s %llu %lld", a, &size, &mtime) == 3) {
        uint64_t got = 0;
        rc = backup_object_path(r->from, a, src, sizeof src, err);
        if (rc == RS_OK)
            rc = backup_object_path(r->tmpdir, a, dst, sizeof dst, err);
        if (rc == RS_OK)
            rc = backup_copy_new(src, dst, mtime, a, &got, &e);
        if (rc == RS_OK && got != size)
            rc = rs_err_set(&e, RS_EFORMAT, "%s: %llu bytes, the manifest says %llu", src,
                            (unsigned long long)got, size);
        store_blob_info info = {.size = got};
        snprintf(info.hash, sizeof info.hash, "%.64s", a);
        if (rc == RS_OK && backup_objs_push(&r->restored, &info))
            rc = rs_err_set(err, RS_ENOMEM, "out of memory");
        r->rep->objects++;
        r->rep->bytes += got;
        rs_progress_add(&r->prog, 1, got);
    } else if (sscanf(line, "file %4095s %64s %llu", a, b, &size) == 3) {
        const char *name = !strncmp(a, "audit/", 6) || !strncmp(a, "trash/", 6) ? a + 6 : a;
        if (!plain_name(name) || (name == a && strcmp(a, "state.sqlite") != 0 && strcmp(a, "index.sqlite") != 0))
            return rs_err_set(err, RS_EFORMAT, "manifest names an unexpected file: %.100s", a);
        rc = path_join(src, r->rundir, a, err);
        if (rc == RS_OK)
            rc = path_join(dst, r->tmpdir, a, err);
        if (rc == RS_OK)
            rc = backup_copy_new(src, dst, 0, b, NULL, &e);
        r->has_index |= rc == RS_OK && !strcmp(a, "index.sqlite");
        r->rep->files++;
    } else {
        return RS_OK; /* header lines, checked by the caller */
    }
    if (rc && !err->msg[0])
        *err = e;
    return rc == RS_ENOTFOUND ? rs_err_set(err, RS_EFORMAT, "%s", e.msg) : rc;
}

static int restore_all(restore_ctx *r, char *text, rs_err *err)
{
    uint64_t lines = 0;
    for (const char *p = text; (p = strstr(p, "\nobject ")) != NULL; p++)
        lines++;
    rs_progress_begin(&r->prog, "restore", lines, r->o->quiet);
    char *save = NULL;
    int rc = RS_OK, ended = 0;
    for (char *t = strtok_r(text, "\n", &save); t && rc == RS_OK; t = strtok_r(NULL, "\n", &save)) {
        ended = strncmp(t, "end ", 4) == 0;
        rc = restore_line(r, t, err);
    }
    rs_progress_end(&r->prog);
    if (rc == RS_OK && !ended)
        rc = rs_err_set(err, RS_EFORMAT, "manifest has no end line");
    return rc;
}

static int check_manifest(restore_ctx *r, const uint8_t *m, size_t n, rs_err *err)
{
    char path[PATH_MAX], keyhex[2 * BACKUP_KEY_RAW + 2] = "";
    uint8_t claimed[BACKUP_KEY_RAW], pub[BACKUP_KEY_RAW], sig[BACKUP_SIG_RAW];
    uint8_t *sigtext = NULL;
    size_t sn;
    const char *k = n > sizeof MANIFEST_MAGIC ? strstr((const char *)m, "\nkey ") : NULL;
    if (n < sizeof MANIFEST_MAGIC || memcmp(m, MANIFEST_MAGIC "\n", sizeof MANIFEST_MAGIC) != 0 || !k ||
        sscanf(k, "\nkey %64s", keyhex) != 1 || backup_unhex(keyhex, claimed, sizeof claimed) != RS_OK)
        return rs_err_set(err, RS_EFORMAT, "%s/manifest is not a radshare backup manifest", r->rundir);
    int rc = trusted_key(r->o, claimed, pub, err);
    if (rc == RS_OK)
        rc = path_join(path, r->rundir, "manifest.sig", err);
    if (rc == RS_OK)
        rc = backup_read_file(path, 4096, &sigtext, &sn, err);
    if (rc == RS_OK) {
        while (sn && (sigtext[sn - 1] == '\n' || sigtext[sn - 1] == '\r'))
            sigtext[--sn] = 0;
        if (backup_unhex((char *)sigtext, sig, sizeof sig) != RS_OK)
            rc = rs_err_set(err, RS_EFORMAT, "%s is not a signature", path);
    }
    if (rc == RS_OK)
        rc = backup_sig_check(pub, m, n, sig, sizeof sig, err);
    free(sigtext);
    return rc;
}

/*
 * The run's index snapshot, when it names only restored objects and this version's store opens
 * it (same schema); else (no snapshot, an older schema) the index is rebuilt from the objects.
 */
static int snapshot_usable(restore_ctx *r, rs_err *err)
{
    backup_catalog *cat = NULL;
    char (*idx)[STORE_HASH_HEX + 1] = NULL;
    size_t n = 0;
    int ok = r->has_index && backup_catalog_open(r->tmpdir, &cat, NULL) == RS_OK &&
             backup_catalog_hashes(cat, &idx, &n, NULL) == RS_OK;
    backup_catalog_close(cat);
    for (size_t i = 0; ok && i < n; i++) {
        store_blob_info key = {0};
        snprintf(key.hash, sizeof key.hash, "%s", idx[i]);
        ok = bsearch(&key, r->restored.v, r->restored.n, sizeof key, backup_objs_cmp) != NULL;
    }
    free(idx);
    store *st = NULL;
    rs_err e = {0};
    if (ok && store_open(r->tmpdir, NULL, &st, &e) != RS_OK) {
        if (e.code != RS_EUNSUPPORTED)
            return rs_err_set(err, e.code ? e.code : RS_EIO, "%s", e.msg);
        ok = 0;
    }
    if (st)
        store_close(st);
    r->rep->indexed = ok ? n : 0;
    return ok;
}

static int restore_index(restore_ctx *r, rs_err *err)
{
    int ok = snapshot_usable(r, err);
    if (ok < 0)
        return ok;
    r->rep->index_from_snapshot = ok;
    if (ok)
        return RS_OK;
    char path[PATH_MAX];
    store_reindex_report rr = {0};
    int rc = path_join(path, r->tmpdir, "index.sqlite", err);
    if (rc == RS_OK && r->has_index && unlink(path) != 0)
        rc = rs_err_set(err, RS_EIO, "cannot remove %s: %s", path, strerror(errno));
    if (rc == RS_OK)
        rc = store_reindex(r->tmpdir, NULL, 0, &rr, err);
    r->rep->indexed = rr.indexed;
    return rc;
}

static int target_ok(const char *data, rs_err *err)
{
    struct stat st;
    if (lstat(data, &st) == 0 && (!S_ISDIR(st.st_mode) || !backup_dir_empty(data)))
        return rs_err_set(err, RS_EINVAL, "%s exists and is not an empty directory: restore only into a new one",
                          data);
    return RS_OK;
}

int backup_restore(const char *from, const char *data, const restore_opts *o, restore_report *rep, rs_err *err)
{
    memset(rep, 0, sizeof *rep);
    restore_ctx r = {.from = from, .o = o, .rep = rep};
    uint8_t *m = NULL;
    size_t n = 0;
    char path[PATH_MAX];
    int rc = target_ok(data, err);
    if (rc == RS_OK && o->run)
        snprintf(rep->run, sizeof rep->run, "%s", o->run);
    else if (rc == RS_OK)
        rc = latest_run(from, rep->run, sizeof rep->run, err);
    if (rc == RS_OK && !plain_name(rep->run))
        rc = rs_err_set(err, RS_EINVAL, "bad run name %s", rep->run);
    if (rc == RS_OK && snprintf(r.rundir, sizeof r.rundir, "%s/runs/%s", from, rep->run) >= (int)sizeof r.rundir)
        rc = rs_err_set(err, RS_EINVAL, "path too long");
    if (rc == RS_OK)
        rc = path_join(path, r.rundir, "manifest", err);
    if (rc == RS_OK)
        rc = backup_read_file(path, MANIFEST_MAX, &m, &n, err);
    if (rc == RS_OK)
        rc = check_manifest(&r, m, n, err);
    if (rc == RS_OK && snprintf(r.tmpdir, sizeof r.tmpdir, "%s.restoring-%ld", data, (long)getpid()) >=
                           (int)sizeof r.tmpdir)
        rc = rs_err_set(err, RS_EINVAL, "path too long");
    if (rc == RS_OK && mkdir(r.tmpdir, 0750) != 0)
        rc = rs_err_set(err, RS_EIO, "cannot create %s: %s", r.tmpdir, strerror(errno));
    int made = rc == RS_OK;
    if (rc == RS_OK)
        rc = restore_all(&r, (char *)m, err);
    if (rc == RS_OK)
        rc = backup_sync_fs(r.tmpdir, err); /* the objects, before the index says they exist */
    if (rc == RS_OK)
        rc = restore_index(&r, err);
    if (rc == RS_OK) {
        rmdir(data); /* empty, or absent */
        if (rename(r.tmpdir, data) != 0)
            rc = rs_err_set(err, RS_EIO, "cannot rename %s to %s: %s", r.tmpdir, data, strerror(errno));
    }
    if (rc && made)
        backup_remove_tree(r.tmpdir);
    free(r.restored.v);
    free(m);
    return rc;
}
