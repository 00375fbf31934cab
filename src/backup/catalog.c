/*
 * catalog.c - see catalog.h. Column names are the store's schema (index_sqlite.c, attrs.c).
 */
#include "catalog.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_ROWS 50000000u /* hard cap on what one listing may hold */

struct backup_catalog {
    sqlite3 *db;
};

int backup_catalog_open(const char *datadir, backup_catalog **out, rs_err *err)
{
    char p[PATH_MAX];
    struct stat st;
    *out = NULL;
    if (snprintf(p, sizeof p, "%s/index.sqlite", datadir) >= (int)sizeof p)
        return rs_err_set(err, RS_EINVAL, "data directory path too long");
    if (stat(p, &st) != 0)
        return rs_err_set(err, RS_ENOTFOUND, "%s: no index (rebuild it with `radshare reindex`)", p);
    backup_catalog *c = calloc(1, sizeof *c);
    if (!c)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    if (sqlite3_open_v2(p, &c->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        int rc = rs_err_set(err, RS_EIO, "cannot open %s: %s", p, sqlite3_errmsg(c->db));
        backup_catalog_close(c);
        return rc;
    }
    sqlite3_busy_timeout(c->db, 10000);
    *out = c;
    return RS_OK;
}

void backup_catalog_close(backup_catalog *c)
{
    if (!c)
        return;
    sqlite3_close(c->db);
    free(c);
}

static int grow(void **v, size_t *cap, size_t n, size_t size, rs_err *err)
{
    if (n < *cap)
        return RS_OK;
    if (n >= MAX_ROWS)
        return rs_err_set(err, RS_ELIMIT, "more than %u rows", MAX_ROWS);
    size_t nc = *cap ? *cap * 2 : 1024;
    void *nv = realloc(*v, nc * size);
    if (!nv)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    *v = nv;
    *cap = nc;
    return RS_OK;
}

static void col(sqlite3_stmt *s, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

int backup_catalog_hashes(backup_catalog *c, char (**hashes)[STORE_HASH_HEX + 1], size_t *n, rs_err *err)
{
    sqlite3_stmt *s = NULL;
    size_t cap = 0;
    *hashes = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(c->db, "SELECT DISTINCT hash FROM instances ORDER BY hash", -1, &s, NULL) != SQLITE_OK)
        return rs_err_set(err, RS_EIO, "index: %s", sqlite3_errmsg(c->db));
    int rc = RS_OK, r;
    while (rc == RS_OK && (r = sqlite3_step(s)) == SQLITE_ROW) {
        rc = grow((void **)hashes, &cap, *n, sizeof **hashes, err);
        if (rc == RS_OK)
            col(s, 0, (*hashes)[(*n)++], STORE_HASH_HEX + 1);
    }
    if (rc == RS_OK && r != SQLITE_DONE)
        rc = rs_err_set(err, RS_EIO, "index: %s", sqlite3_errmsg(c->db));
    sqlite3_finalize(s);
    return rc;
}

int backup_catalog_each_instance(backup_catalog *c, backup_catalog_fn fn, void *ctx, rs_err *err)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(c->db, "SELECT hash, sop_uid, sop_class, ts_uid FROM instances ORDER BY received_ns, hash",
                           -1, &s, NULL) != SQLITE_OK)
        return rs_err_set(err, RS_EIO, "index: %s", sqlite3_errmsg(c->db));
    int rc = RS_OK, r;
    while (rc == RS_OK && (r = sqlite3_step(s)) == SQLITE_ROW) {
        const char *v[4];
        for (int i = 0; i < 4; i++) {
            v[i] = (const char *)sqlite3_column_text(s, i);
            v[i] = v[i] ? v[i] : "";
        }
        rc = fn(ctx, v[0], v[1], v[2], v[3]);
    }
    if (rc == RS_OK && r != SQLITE_DONE)
        rc = rs_err_set(err, RS_EIO, "index: %s", sqlite3_errmsg(c->db));
    sqlite3_finalize(s);
    return rc;
}

int backup_catalog_study(backup_catalog *c, const char *study_uid, backup_study_item **items, size_t *n,
                         rs_err *err)
{
    static const char sql[] =
        "SELECT i.hash, i.sop_uid, se.series_uid, i.size FROM instances i JOIN series se ON i.series = se.id "
        "JOIN studies st ON se.study = st.id WHERE st.study_uid = ?1 AND i.current = 1 "
        "ORDER BY se.series_number, se.series_uid, i.instance_number, i.sop_uid";
    sqlite3_stmt *s = NULL;
    size_t cap = 0;
    *items = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK)
        return rs_err_set(err, RS_EIO, "index: %s", sqlite3_errmsg(c->db));
    sqlite3_bind_text(s, 1, study_uid, -1, SQLITE_STATIC);
    int rc = RS_OK, r;
    while (rc == RS_OK && (r = sqlite3_step(s)) == SQLITE_ROW) {
        rc = grow((void **)items, &cap, *n, sizeof **items, err);
        if (rc)
            break;
        backup_study_item *it = &(*items)[(*n)++];
        col(s, 0, it->hash, sizeof it->hash);
        col(s, 1, it->sop_uid, sizeof it->sop_uid);
        col(s, 2, it->series_uid, sizeof it->series_uid);
        it->size = (uint64_t)sqlite3_column_int64(s, 3);
    }
    if (rc == RS_OK && r != SQLITE_DONE)
        rc = rs_err_set(err, RS_EIO, "index: %s", sqlite3_errmsg(c->db));
    sqlite3_finalize(s);
    if (rc == RS_OK && *n == 0)
        rc = rs_err_set(err, RS_ENOTFOUND, "no study %s in the archive", study_uid);
    return rc;
}
