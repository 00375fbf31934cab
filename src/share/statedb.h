/*
 * statedb.h - the connection to DATA/state.sqlite that the share, auth and report modules each open
 * on their own: WAL journal (readers never block the writer of another process), a busy timeout so
 * `radshare user add` can write while `serve` runs, and a per-component schema version kept in a
 * shared `schema_versions` table (PRAGMA user_version is one number for the whole file, and several
 * modules own tables in it).
 *
 * state.sqlite is not rebuildable from the archive: it is what `backup` saves.
 */
#ifndef RS_STATEDB_H
#define RS_STATEDB_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"

#define STATEDB_FILE "state.sqlite"
#define STATEDB_BUSY_MS 10000

/* Open (creating the data directory and the file when missing) DATA/state.sqlite. */
int statedb_open(const char *datadir, sqlite3 **out, rs_err *err);

/* Create component's tables with `sql` (CREATE TABLE IF NOT EXISTS ...) and record `version`;
 * a database written by a newer version of the component is refused (RS_EUNSUPPORTED). */
int statedb_schema(sqlite3 *db, const char *component, int version, const char *sql, rs_err *err);

/* Run SQL without results. */
int statedb_exec(sqlite3 *db, const char *sql, rs_err *err);

/* Turn the connection's last error into an rs_err; returns the RS_E code. */
int statedb_err(sqlite3 *db, rs_err *err, const char *what);

/* Bind helpers that treat NULL as SQL NULL. */
int statedb_bind_text(sqlite3_stmt *s, int i, const char *v);
/* A text column copied into out (cap bytes, NUL-terminated, truncated); "" for NULL. */
void statedb_col_text(sqlite3_stmt *s, int i, char *out, size_t cap);

#endif
