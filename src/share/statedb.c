/* statedb.c - see statedb.h. */
#include "statedb.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int statedb_err(sqlite3 *db, rs_err *err, const char *what)
{
    int c = sqlite3_errcode(db);
    int code = c == SQLITE_NOMEM ? RS_ENOMEM : c == SQLITE_CORRUPT || c == SQLITE_NOTADB ? RS_EFORMAT : RS_EIO;
    return rs_err_set(err, code, "state: %s: %s", what, sqlite3_errmsg(db));
}

int statedb_exec(sqlite3 *db, const char *sql, rs_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return RS_OK;
    int rc = rs_err_set(err, RS_EIO, "state: %.60s: %s", sql, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return rc;
}

int statedb_open(const char *datadir, sqlite3 **out, rs_err *err)
{
    char path[PATH_MAX];
    sqlite3 *db = NULL;
    *out = NULL;
    if (snprintf(path, sizeof path, "%s/%s", datadir, STATEDB_FILE) >= (int)sizeof path)
        return rs_err_set(err, RS_EINVAL, "data directory path too long");
    if (mkdir(datadir, 0750) != 0 && errno != EEXIST)
        return rs_err_set(err, RS_EIO, "cannot create %s: %s", datadir, strerror(errno));
    /* FULLMUTEX: the modules add their own mutex around multi-statement work, but a connection
     * handed between threads must never be entered twice at once. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        int rc = rs_err_set(err, RS_EIO, "state %s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, STATEDB_BUSY_MS);
    int rc = statedb_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                              "PRAGMA secure_delete=ON;"
                              "CREATE TABLE IF NOT EXISTS schema_versions("
                              " component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
                          err);
    if (rc) {
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return RS_OK;
}

int statedb_schema(sqlite3 *db, const char *component, int version, const char *sql, rs_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc = statedb_exec(db, "BEGIN IMMEDIATE", err);
    if (rc)
        return rc;
    if (sqlite3_prepare_v2(db, "SELECT version FROM schema_versions WHERE component = ?1", -1, &s, NULL)) {
        rc = statedb_err(db, err, "reading the schema version");
        goto out;
    }
    sqlite3_bind_text(s, 1, component, -1, SQLITE_STATIC);
    int have = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    sqlite3_finalize(s);
    s = NULL;
    if (have > version) {
        rc = rs_err_set(err, RS_EUNSUPPORTED, "state: %s tables are version %d, this radshare knows %d",
                        component, have, version);
        goto out;
    }
    if ((rc = statedb_exec(db, sql, err)))
        goto out;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO schema_versions(component, version) VALUES(?1, ?2)", -1,
                           &s, NULL)) {
        rc = statedb_err(db, err, "writing the schema version");
        goto out;
    }
    sqlite3_bind_text(s, 1, component, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, version);
    if (sqlite3_step(s) != SQLITE_DONE)
        rc = statedb_err(db, err, "writing the schema version");
out:
    sqlite3_finalize(s);
    if (rc == RS_OK)
        return statedb_exec(db, "COMMIT", err);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int statedb_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    return v ? sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i);
}

void statedb_col_text(sqlite3_stmt *s, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}
