/*
 * index_sqlite.c - the embedded index backend: SQLite in WAL mode (see index.h).
 *
 * One write connection, used by the committer only, with synchronous=FULL so that COMMIT is
 * durable; a pool of read connections for queries, which WAL lets run beside the writer. The
 * tables' attribute columns are generated from the catalog (attrs.c), and so is the schema
 * version: any catalog change makes old index files refuse to open ("run reindex") instead of
 * answering wrongly. Counts, sizes, ModalitiesInStudy and SOPClassesInStudy are recomputed
 * once per batch for the entities the batch touched, so they cannot drift.
 */
#include "index.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "norm.h"
#include "../util/vec.h"

#define MAX_IDLE_READERS 8
#define BUSY_TIMEOUT_MS 10000
#define CHECKPOINT_PAGES 4000
#define REBUILD_PAGE_SIZE "8192"

/* Prepared statements of the write connection. */
enum {
    W_SOP_STATE,
    W_UPSERT_PATIENT,
    W_UPSERT_STUDY,
    W_UPSERT_SERIES,
    W_INSERT_INSTANCE,
    W_INSERT_JSON,
    W_VERSIONS,
    W_SET_VERSION,
    W_SERIES_DERIVED,
    W_STUDY_DERIVED,
    W_PATIENT_DERIVED,
    W_SETTLE,
    W_DROP_FIND,
    W_DROP_JSON,
    W_DROP_ROW,
    W_SAVEPOINT,
    W_RELEASE,
    W_COUNT
};

/* A growable set of row ids (entities touched by the open batch). */
typedef struct idset {
    int64_t *v;
    size_t n, cap;
} idset;

typedef struct sqlite_index {
    store_index base;
    char *path;
    sqlite3 *w;
    sqlite3_stmt *st[W_COUNT];
    idset touched;              /* series touched by the open batch */
    int wal_pages;              /* WAL size after the last commit (wal hook) */
    int rebuild;                /* opened by open_rebuild: see rebuild_setup */
    /* within the open batch (whose records outlive it): the last upsert per level, see upsert */
    const store_record *last_rec[STORE_LEVEL_IMAGE];
    int64_t last_id[STORE_LEVEL_IMAGE];
    const store_record *new_sop;   /* sop_state found no row for this record's SOP */
    pthread_mutex_t pool_mu;
    sqlite3 *idle[MAX_IDLE_READERS];
    size_t n_idle;
} sqlite_index;

static const char *const ALIAS[STORE_N_LEVELS] = {"p", "st", "se", "i"};

/* ---- helpers ---------------------------------------------------------------------------------- */

static int sq_err(sqlite3 *db, rs_err *err, const char *what)
{
    int c = sqlite3_errcode(db);
    int code = c == SQLITE_NOMEM ? RS_ENOMEM : c == SQLITE_CORRUPT || c == SQLITE_NOTADB ? RS_EFORMAT : RS_EIO;
    return rs_err_set(err, code, "index: %s: %s", what, sqlite3_errmsg(db));
}

static int exec(sqlite3 *db, const char *sql, rs_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return RS_OK;
    int rc = rs_err_set(err, RS_EIO, "index: %.60s: %s", sql, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return rc;
}

static int idset_add(idset *s, int64_t id)
{
    if (rs_grow((void **)&s->v, &s->cap, s->n, sizeof *s->v, 64))
        return RS_ENOMEM;
    s->v[s->n++] = id;
    return RS_OK;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void idset_unique(idset *s)
{
    if (s->n < 2)
        return;
    qsort(s->v, s->n, sizeof *s->v, cmp_id);
    size_t k = 1;
    for (size_t i = 1; i < s->n; i++)
        if (s->v[i] != s->v[k - 1])
            s->v[k++] = s->v[i];
    s->n = k;
}

static void idset_free(idset *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* Run a statement that returns nothing or one row we do not need; reset it. */
static int step_done(sqlite3_stmt *s)
{
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW)
        ;
    sqlite3_reset(s);
    return r == SQLITE_DONE ? RS_OK : RS_EIO;
}

/* Run a statement returning one integer (RETURNING id); reset it. */
static int step_id(sqlite3_stmt *s, int64_t *id)
{
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        *id = sqlite3_column_int64(s, 0);
    while (r == SQLITE_ROW)
        r = sqlite3_step(s);
    sqlite3_reset(s);
    return r == SQLITE_DONE ? RS_OK : RS_EIO;
}

/* rs_tmnorm(t): a DICOM time as "HHMMSS.FFFFFF" for range comparisons; '' -> midnight. */
static void fn_tmnorm(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const char *s = (const char *)sqlite3_value_text(argv[0]);
    char out[STORE_TM_LEN + 1];
    if (!s || !*s)
        sqlite3_result_text(ctx, "000000.000000", -1, SQLITE_STATIC);
    else if (store_norm_tm(s, 0, out) == 0)
        sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
    else
        sqlite3_result_null(ctx);
}

/* ---- schema --------------------------------------------------------------------------------- */

static const char *const FIXED_COLS[STORE_N_LEVELS] = {
    "id INTEGER PRIMARY KEY, pkey TEXT NOT NULL UNIQUE, size_bytes INTEGER NOT NULL DEFAULT 0",
    "id INTEGER PRIMARY KEY, patient INTEGER NOT NULL REFERENCES patients(id), "
    "size_bytes INTEGER NOT NULL DEFAULT 0",
    "id INTEGER PRIMARY KEY, study INTEGER NOT NULL REFERENCES studies(id), "
    "size_bytes INTEGER NOT NULL DEFAULT 0",
    "id INTEGER PRIMARY KEY, series INTEGER NOT NULL REFERENCES series(id), "
    "version INTEGER NOT NULL, current INTEGER NOT NULL, hash TEXT NOT NULL, size INTEGER NOT NULL, "
    "ts_uid TEXT NOT NULL, received_ns INTEGER NOT NULL",
};

/* Besides the tables: instance_json, then the indexes. */
static const char JSON_TABLE[] =
    "CREATE TABLE instance_json(instance INTEGER PRIMARY KEY REFERENCES instances(id), json TEXT NOT NULL);\n";

/*
 * The indexes, in schema order. A rebuild (open_rebuild) creates those not needed while rows
 * go in (deferred) once at the end, one sorted pass each, instead of maintaining them row by
 * row; the unique ones that the upserts and the version lookups use stay throughout.
 */
static const struct { const char *name, *sql; int deferred; } INDEXES[] = {
    {"patients_id", "CREATE INDEX patients_id ON patients(patient_id);\n", 1},
    {"patients_name", "CREATE INDEX patients_name ON patients(patient_name_norm);\n", 1},
    {"studies_uid", "CREATE UNIQUE INDEX studies_uid ON studies(study_uid);\n", 0},
    {"studies_patient", "CREATE INDEX studies_patient ON studies(patient);\n", 1},
    {"studies_date", "CREATE INDEX studies_date ON studies(study_date);\n", 1},
    {"studies_accession", "CREATE INDEX studies_accession ON studies(accession);\n", 1},
    {"series_uid", "CREATE UNIQUE INDEX series_uid ON series(series_uid);\n", 0},
    {"series_study", "CREATE INDEX series_study ON series(study, n_instances, modality);\n", 1},
    {"instances_sop", "CREATE UNIQUE INDEX instances_sop ON instances(sop_uid, hash);\n", 0},
    {"instances_hash", "CREATE INDEX instances_hash ON instances(hash);\n", 1},
    /* covering the per-batch recount of a series: count, size, SOP classes without row lookups */
    {"instances_series", "CREATE INDEX instances_series ON instances(series, current, sop_class, size);\n", 1},
};
#define N_INDEXES (sizeof INDEXES / sizeof INDEXES[0])

static int column_def(rs_buf *b, const store_attr *a)
{
    switch (a->kind) {
    case STORE_AK_CONST: return RS_OK;
    case STORE_AK_INT: return rs_buf_printf(b, ", %s INTEGER", a->column);
    case STORE_AK_COUNT: return rs_buf_printf(b, ", %s INTEGER NOT NULL DEFAULT 0", a->column);
    case STORE_AK_PN:
        return rs_buf_printf(b, ", %s TEXT NOT NULL DEFAULT '', %s_norm TEXT NOT NULL DEFAULT ''",
                             a->column, a->column);
    default: return rs_buf_printf(b, ", %s TEXT NOT NULL DEFAULT ''", a->column);
    }
}

static int schema_sql(rs_buf *b)
{
    int rc = RS_OK;
    for (int l = 0; l < STORE_N_LEVELS && rc == RS_OK; l++) {
        rc = rs_buf_printf(b, "CREATE TABLE %s(%s", store_level_table((store_level)l), FIXED_COLS[l]);
        for (size_t i = 0; i < store_n_attrs && rc == RS_OK; i++)
            if (store_attrs[i].level == l)
                rc = column_def(b, &store_attrs[i]);
        if (rc == RS_OK)
            rc = rs_buf_puts(b, ");\n");
    }
    if (rc == RS_OK)
        rc = rs_buf_puts(b, JSON_TABLE);
    for (size_t i = 0; i < N_INDEXES && rc == RS_OK; i++)
        rc = rs_buf_puts(b, INDEXES[i].sql);
    return rc;
}

/* The schema's identity: FNV-1a of its text, kept in PRAGMA user_version. */
static int32_t schema_version(const rs_buf *b)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < b->len; i++)
        h = (h ^ b->p[i]) * 16777619u;
    return (int32_t)(h & 0x7fffffff) | 1;
}

static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return RS_EIO;
    int r = sqlite3_step(s);
    *out = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    return r == SQLITE_ROW || r == SQLITE_DONE ? RS_OK : RS_EIO;
}

static int ensure_schema(sqlite3 *db, rs_err *err)
{
    rs_buf sql = RS_BUF_INIT;
    int64_t have = 0, tables = 0;
    int rc = schema_sql(&sql);
    if (rc)
        return rs_err_set(err, rc, "out of memory");
    int32_t want = schema_version(&sql);
    rc = exec(db, "BEGIN IMMEDIATE", err);
    if (rc == RS_OK && (query_int(db, "PRAGMA user_version", &have) ||
                        query_int(db, "SELECT count(*) FROM sqlite_master", &tables)))
        rc = sq_err(db, err, "reading the schema version");
    if (rc == RS_OK && tables == 0) {
        rc = exec(db, (const char *)sql.p, err);
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", (int)want);
        if (rc == RS_OK)
            rc = exec(db, pragma, err);
    } else if (rc == RS_OK && have != want) {
        rc = rs_err_set(err, RS_EUNSUPPORTED, "index schema %lld is not this version's (%d): "
                        "rebuild it with `radshare reindex`", (long long)have, (int)want);
    }
    rs_buf_free(&sql);
    if (rc == RS_OK)
        return exec(db, "COMMIT", err);
    exec(db, "ROLLBACK", NULL);
    return rc;
}

/* ---- write statements, generated from the catalog -------------------------------------------- */

/* "c1, c2, c2_norm, ..." for the dataset-sourced attributes of a level; counts them in *n. */
static int attr_cols(rs_buf *b, store_level l, int *n)
{
    int rc = RS_OK;
    for (size_t i = 0; i < store_n_attrs && rc == RS_OK; i++) {
        const store_attr *a = &store_attrs[i];
        if (a->level != l || !store_attr_from_dataset(a))
            continue;
        rc = rs_buf_printf(b, ", %s", a->column);
        (*n)++;
        if (rc == RS_OK && a->kind == STORE_AK_PN) {
            rc = rs_buf_printf(b, ", %s_norm", a->column);
            (*n)++;
        }
    }
    return rc;
}

/* "c = CASE WHEN excluded.c <> '' THEN excluded.c ELSE c END, ...": non-empty new values win. */
static int attr_updates(rs_buf *b, store_level l)
{
    int rc = RS_OK, first = 1;
    for (size_t i = 0; i < store_n_attrs && rc == RS_OK; i++) {
        const store_attr *a = &store_attrs[i];
        if (a->level != l || !store_attr_from_dataset(a))
            continue;
        const char *sep = first ? "" : ", ";
        first = 0;
        if (a->kind == STORE_AK_INT)
            rc = rs_buf_printf(b, "%s%s = coalesce(excluded.%s, %s)", sep, a->column, a->column, a->column);
        else
            rc = rs_buf_printf(b, "%s%s = CASE WHEN excluded.%s <> '' THEN excluded.%s ELSE %s END", sep,
                               a->column, a->column, a->column, a->column);
        if (rc == RS_OK && a->kind == STORE_AK_PN)
            rc = rs_buf_printf(b, ", %s_norm = CASE WHEN excluded.%s <> '' THEN excluded.%s_norm ELSE %s_norm END",
                               a->column, a->column, a->column, a->column);
    }
    return rc;
}

/*
 * INSERT for a level: fixed columns first, then the catalog's. With a conflict column it is an
 * upsert returning the row id (patients, studies, series).
 */
static int insert_sql(rs_buf *b, store_level l, const char *fixed, int n_fixed, const char *conflict)
{
    int n = n_fixed;
    int rc = rs_buf_printf(b, "INSERT INTO %s(%s", store_level_table(l), fixed);
    if (rc == RS_OK)
        rc = attr_cols(b, l, &n);
    if (rc == RS_OK)
        rc = rs_buf_puts(b, ") VALUES(?");
    for (int i = 1; i < n && rc == RS_OK; i++)
        rc = rs_buf_puts(b, ", ?");
    if (rc == RS_OK)
        rc = rs_buf_putc(b, ')');
    if (rc == RS_OK && conflict) {
        rc = rs_buf_printf(b, " ON CONFLICT(%s) DO UPDATE SET ", conflict);
        if (rc == RS_OK)
            rc = attr_updates(b, l);
        if (rc == RS_OK)
            rc = rs_buf_puts(b, " RETURNING id");
    }
    return rc;
}

static const char SQL_SOP_STATE[] =
    "SELECT count(*), coalesce(max(hash = ?2), 0), max(CASE WHEN hash = ?2 THEN version END) "
    "FROM instances WHERE sop_uid = ?1";
static const char SQL_INSERT_JSON[] = "INSERT INTO instance_json(instance, json) VALUES(?1, ?2)";
static const char SQL_VERSIONS[] =
    "SELECT id, series, hash, current FROM instances WHERE sop_uid = ?1 ORDER BY received_ns, hash";
static const char SQL_SET_VERSION[] = "UPDATE instances SET version = ?2, current = ?3 WHERE id = ?1";
static const char SQL_SERIES_DERIVED[] =
    "UPDATE series SET "
    "n_instances = (SELECT count(*) FROM instances WHERE series = ?1 AND current = 1), "
    "size_bytes = (SELECT coalesce(sum(size), 0) FROM instances WHERE series = ?1 AND current = 1) "
    "WHERE id = ?1 RETURNING study";
static const char SQL_STUDY_DERIVED[] =
    "UPDATE studies SET "
    "n_series = (SELECT count(*) FROM series WHERE study = ?1 AND n_instances > 0), "
    "n_instances = (SELECT coalesce(sum(n_instances), 0) FROM series WHERE study = ?1), "
    "size_bytes = (SELECT coalesce(sum(size_bytes), 0) FROM series WHERE study = ?1), "
    "modalities = (SELECT coalesce(group_concat(m, '\\'), '') FROM (SELECT DISTINCT modality AS m "
    "  FROM series WHERE study = ?1 AND n_instances > 0 AND modality <> '' ORDER BY m)), "
    "sop_classes = (SELECT coalesce(group_concat(c, '\\'), '') FROM (SELECT DISTINCT i.sop_class AS c "
    "  FROM series s JOIN instances i ON i.series = s.id AND i.current = 1 WHERE s.study = ?1 ORDER BY c)) "
    "WHERE id = ?1 RETURNING patient";
static const char SQL_PATIENT_DERIVED[] =
    "UPDATE patients SET "
    "n_studies = (SELECT count(*) FROM studies WHERE patient = ?1 AND n_instances > 0), "
    "n_series = (SELECT coalesce(sum(n_series), 0) FROM studies WHERE patient = ?1), "
    "n_instances = (SELECT coalesce(sum(n_instances), 0) FROM studies WHERE patient = ?1), "
    "size_bytes = (SELECT coalesce(sum(size_bytes), 0) FROM studies WHERE patient = ?1) "
    "WHERE id = ?1";

/* The highest instance row id whose file is known durable in objects/ (see index.h: settle). */
static const char SQL_SETTLE[] =
    "INSERT INTO ingest_mark(k, settled) "
    "VALUES(0, CASE WHEN ?1 < 0 THEN (SELECT coalesce(max(id), 0) FROM instances) ELSE ?1 END) "
    "ON CONFLICT(k) DO UPDATE SET settled = excluded.settled";
static const char SQL_UNSETTLED[] =
    "SELECT hash FROM instances WHERE id > coalesce((SELECT settled FROM ingest_mark WHERE k = 0), 0)";
static const char SQL_DROP_FIND[] = "SELECT id, series, sop_uid FROM instances WHERE hash = ?1";
static const char SQL_DROP_JSON[] = "DELETE FROM instance_json WHERE instance = ?1";
static const char SQL_DROP_ROW[] = "DELETE FROM instances WHERE id = ?1";

static int prepare_one(sqlite_index *x, int which, const char *sql, rs_err *err)
{
    if (sqlite3_prepare_v3(x->w, sql, -1, SQLITE_PREPARE_PERSISTENT, &x->st[which], NULL) != SQLITE_OK)
        return sq_err(x->w, err, "preparing a statement");
    return RS_OK;
}

static int prepare_writes(sqlite_index *x, rs_err *err)
{
    static const struct { int which; store_level level; const char *fixed; int n; const char *conflict; } ups[] = {
        {W_UPSERT_PATIENT, STORE_LEVEL_PATIENT, "pkey", 1, "pkey"},
        {W_UPSERT_STUDY, STORE_LEVEL_STUDY, "patient", 1, "study_uid"},
        {W_UPSERT_SERIES, STORE_LEVEL_SERIES, "study", 1, "series_uid"},
        {W_INSERT_INSTANCE, STORE_LEVEL_IMAGE, "series, version, current, hash, size, ts_uid, received_ns", 7, NULL},
    };
    static const struct { int which; const char *sql; } fixed[] = {
        {W_SOP_STATE, SQL_SOP_STATE}, {W_INSERT_JSON, SQL_INSERT_JSON}, {W_VERSIONS, SQL_VERSIONS},
        {W_SET_VERSION, SQL_SET_VERSION}, {W_SERIES_DERIVED, SQL_SERIES_DERIVED},
        {W_STUDY_DERIVED, SQL_STUDY_DERIVED}, {W_PATIENT_DERIVED, SQL_PATIENT_DERIVED},
        {W_SETTLE, SQL_SETTLE}, {W_DROP_FIND, SQL_DROP_FIND}, {W_DROP_JSON, SQL_DROP_JSON},
        {W_DROP_ROW, SQL_DROP_ROW}, {W_SAVEPOINT, "SAVEPOINT put"}, {W_RELEASE, "RELEASE put"},
    };
    rs_buf sql = RS_BUF_INIT;
    int rc = RS_OK;
    for (size_t i = 0; i < sizeof ups / sizeof ups[0] && rc == RS_OK; i++) {
        rs_buf_reset(&sql);
        rc = insert_sql(&sql, ups[i].level, ups[i].fixed, ups[i].n, ups[i].conflict);
        rc = rc ? rs_err_set(err, rc, "out of memory") : prepare_one(x, ups[i].which, (const char *)sql.p, err);
    }
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && rc == RS_OK; i++)
        rc = prepare_one(x, fixed[i].which, fixed[i].sql, err);
    rs_buf_free(&sql);
    return rc;
}

/* ---- connections ------------------------------------------------------------------------------ */

static int open_conn(const char *path, int create, sqlite3 **out, rs_err *err)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        int rc = rs_err_set(err, RS_EIO, "index %s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(db, 0);
    if (sqlite3_create_function(db, "rs_tmnorm", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fn_tmnorm,
                                NULL, NULL) != SQLITE_OK) {
        int rc = sq_err(db, err, "registering functions");
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return RS_OK;
}

static int get_reader(sqlite_index *x, sqlite3 **db, rs_err *err)
{
    pthread_mutex_lock(&x->pool_mu);
    *db = x->n_idle ? x->idle[--x->n_idle] : NULL;
    pthread_mutex_unlock(&x->pool_mu);
    return *db ? RS_OK : open_conn(x->path, 0, db, err);
}

/* A reader connection keeps the statements read_one prepared on it: finalize them first. */
static void close_reader(sqlite3 *db)
{
    sqlite3_stmt *s;
    while (db && (s = sqlite3_next_stmt(db, NULL)))
        sqlite3_finalize(s);
    sqlite3_close(db);
}

static void put_reader(sqlite_index *x, sqlite3 *db)
{
    pthread_mutex_lock(&x->pool_mu);
    if (x->n_idle < MAX_IDLE_READERS) {
        x->idle[x->n_idle++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&x->pool_mu);
    close_reader(db);
}

static int wal_hook(void *ctx, sqlite3 *db, const char *name, int pages)
{
    ((sqlite_index *)ctx)->wal_pages = pages;
    return SQLITE_OK;
}

/* PRAGMA journal_mode=mode; RS_OK when SQLite took it. */
static int journal_mode(sqlite_index *x, const char *mode, rs_err *err)
{
    char sql[48];
    sqlite3_stmt *s;
    int ok = 0;
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", mode);
    if (sqlite3_prepare_v2(x->w, sql, -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            ok = sqlite3_stricmp((const char *)sqlite3_column_text(s, 0), mode) == 0;
        sqlite3_finalize(s);
    }
    return ok ? RS_OK : rs_err_set(err, RS_EIO, "index %s: cannot switch to journal mode %s", x->path, mode);
}

/*
 * A rebuild writes a fresh file nobody else reads, which is thrown away unless complete (the
 * caller renames it into place only after rebuild_finish): no WAL (every page would be written
 * twice, WAL then checkpoint), no fsync per COMMIT (synchronous=OFF; rebuild_finish's last
 * COMMIT is the one fsync'ed), the rollback journal in memory (savepoints still roll back a
 * failed put), and the deferred indexes dropped until rebuild_finish.
 */
static int rebuild_setup(sqlite_index *x, rs_err *err)
{
    int rc = exec(x->w, "PRAGMA synchronous=OFF; PRAGMA cache_size=-65536", err);
    for (size_t i = 0; i < N_INDEXES && rc == RS_OK; i++) {
        char sql[80];
        snprintf(sql, sizeof sql, "DROP INDEX %s", INDEXES[i].name);
        if (INDEXES[i].deferred)
            rc = exec(x->w, sql, err);
    }
    return rc;
}

static int writer_setup(sqlite_index *x, rs_err *err)
{
    /* a rebuild's file is new, so its page size may still change: 8 KiB pages hold five header JSONs
       of a small instance (~1.4 KB) where 4 KiB pages hold two, 15 % less file (docs/store.md) */
    int rc = x->rebuild ? exec(x->w, "PRAGMA page_size=" REBUILD_PAGE_SIZE, err) : RS_OK;
    if (rc == RS_OK)
        rc = journal_mode(x, x->rebuild ? "memory" : "wal", err);
    if (rc)
        return rc;
    /* FULL: in WAL mode each COMMIT is fsync'ed, which is what an acknowledgement promises */
    rc = exec(x->w, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY;"
                    "PRAGMA cache_size=-32768; PRAGMA wal_autocheckpoint=0", err);
    if (rc == RS_OK)
        rc = ensure_schema(x->w, err);
    if (rc == RS_OK && x->rebuild)
        rc = rebuild_setup(x, err);
    /* outside the versioned schema: trash marks are not rebuilt from objects/ but from DATA/trash/ */
    if (rc == RS_OK)
        rc = exec(x->w, "CREATE TABLE IF NOT EXISTS trash(study_uid TEXT PRIMARY KEY)", err);
    /* outside it too: where crash recovery starts checking rows against files (index.h: settle) */
    if (rc == RS_OK)
        rc = exec(x->w, "CREATE TABLE IF NOT EXISTS ingest_mark(k INTEGER PRIMARY KEY CHECK (k = 0), "
                        "settled INTEGER NOT NULL)", err);
    sqlite3_wal_hook(x->w, wal_hook, x);
    return rc ? rc : prepare_writes(x, err);
}

static void sq_close(store_index *ix)
{
    sqlite_index *x = (sqlite_index *)ix;
    if (!x)
        return;
    for (int i = 0; i < W_COUNT; i++)
        sqlite3_finalize(x->st[i]);
    if (x->w) {
        sqlite3_wal_checkpoint_v2(x->w, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        sqlite3_close(x->w);
    }
    for (size_t i = 0; i < x->n_idle; i++)
        close_reader(x->idle[i]);
    pthread_mutex_destroy(&x->pool_mu);
    idset_free(&x->touched);
    free(x->path);
    free(x);
}

static int open_index(const char *path, int rebuild, store_index **out, rs_err *err)
{
    *out = NULL;
    sqlite_index *x = calloc(1, sizeof *x);
    if (!x || !(x->path = strdup(path))) {
        free(x);
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    }
    x->base.ops = &store_index_sqlite;
    x->rebuild = rebuild;
    pthread_mutex_init(&x->pool_mu, NULL);
    int rc = open_conn(path, 1, &x->w, err);
    if (rc == RS_OK)
        rc = writer_setup(x, err);
    if (rc) {
        sq_close(&x->base);
        return rc;
    }
    *out = &x->base;
    return RS_OK;
}

static int sq_open(const char *path, store_index **out, rs_err *err)
{
    return open_index(path, 0, out, err);
}

static int sq_open_rebuild(const char *path, store_index **out, rs_err *err)
{
    int rc = RS_OK;
    if (remove(path) != 0 && errno != ENOENT)
        rc = rs_err_set(err, RS_EIO, "cannot remove %s: %s", path, strerror(errno));
    return rc ? rc : open_index(path, 1, out, err);
}

/* ---- the write side ---------------------------------------------------------------------------- */

/* Forget what the batch's statements remember (at its begin and end, after a failed put). */
static void forget_batch(sqlite_index *x)
{
    memset(x->last_rec, 0, sizeof x->last_rec);
    x->new_sop = NULL;
}

static int sq_begin(store_index *ix, rs_err *err)
{
    sqlite_index *x = (sqlite_index *)ix;
    if (!x->rebuild) /* a rebuild recounts everything it touched once, in rebuild_finish */
        x->touched.n = 0;
    forget_batch(x);
    return exec(x->w, "BEGIN IMMEDIATE", err);
}

static void sq_rollback(store_index *ix)
{
    sqlite_index *x = (sqlite_index *)ix;
    exec(x->w, "ROLLBACK", NULL);
    x->touched.n = 0;
    forget_batch(x);
}

static int sq_sop_state(store_index *ix, const store_record *rec, store_sop_state *st, rs_err *err)
{
    sqlite_index *x = (sqlite_index *)ix;
    sqlite3_stmt *s = x->st[W_SOP_STATE];
    sqlite3_bind_text(s, 1, store_record_str(rec, DCM_TAG_SOP_INSTANCE_UID), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, rec->hash, -1, SQLITE_STATIC);
    memset(st, 0, sizeof *st);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        st->n_versions = sqlite3_column_int(s, 0);
        st->has_hash = sqlite3_column_int(s, 1);
        st->version = sqlite3_column_int(s, 2);
    }
    sqlite3_reset(s);
    x->new_sop = r == SQLITE_ROW && st->n_versions == 0 ? rec : NULL;
    return r == SQLITE_ROW ? RS_OK : sq_err(x->w, err, "looking up an instance");
}

/* Bind the catalog values of level l from index `first` on (same order as attr_cols). */
static void bind_attrs(sqlite3_stmt *s, int first, const store_record *rec, store_level l)
{
    int k = first;
    for (size_t i = 0; i < store_n_attrs; i++) {
        const store_attr *a = &store_attrs[i];
        if (a->level != l || !store_attr_from_dataset(a))
            continue;
        const store_value *v = &rec->v[i];
        if (a->kind == STORE_AK_INT) {
            if (v->has_i)
                sqlite3_bind_int64(s, k, v->i);
            else
                sqlite3_bind_null(s, k);
            k++;
            continue;
        }
        sqlite3_bind_text(s, k++, v->s ? v->s : "", -1, SQLITE_STATIC);
        if (a->kind == STORE_AK_PN)
            sqlite3_bind_text(s, k++, v->norm ? v->norm : "", -1, SQLITE_STATIC);
    }
}

static int same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* a and b give the row of level l the same key and the same values. */
static int same_row(const store_record *a, const store_record *b, store_level l)
{
    if (l == STORE_LEVEL_PATIENT && !same_str(a->patient_key, b->patient_key))
        return 0;
    for (size_t i = 0; i < store_n_attrs; i++) {
        const store_attr *at = &store_attrs[i];
        if (at->level != l || !store_attr_from_dataset(at))
            continue;
        const store_value *u = &a->v[i], *v = &b->v[i];
        if (at->kind == STORE_AK_INT ? u->has_i != v->has_i || (u->has_i && u->i != v->i)
                                     : !same_str(u->s, v->s) || !same_str(u->norm, v->norm))
            return 0;
    }
    return 1;
}

/*
 * Upsert a patient, study or series row under parent; its id in *id. Consecutive instances
 * mostly share their patient, study and series: when rec would upsert exactly what the last
 * upsert of this level did (same key, same values; the parent column is only written by an
 * insert), that upsert would change nothing, and its id is known.
 */
static int upsert(sqlite_index *x, int which, store_level l, const store_record *rec, int64_t parent, int64_t *id)
{
    if (x->last_rec[l] && same_row(x->last_rec[l], rec, l)) {
        *id = x->last_id[l];
        return RS_OK;
    }
    sqlite3_stmt *s = x->st[which];
    if (l == STORE_LEVEL_PATIENT)
        sqlite3_bind_text(s, 1, rec->patient_key, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(s, 1, parent);
    bind_attrs(s, 2, rec, l);
    int rc = step_id(s, id);
    x->last_rec[l] = rc == RS_OK ? rec : NULL;
    x->last_id[l] = *id;
    return rc;
}

/* The row of rec; version and current (0: left to renumber). */
static int insert_instance(sqlite_index *x, const store_record *rec, int64_t series, int version, int64_t *id)
{
    sqlite3_stmt *s = x->st[W_INSERT_INSTANCE];
    sqlite3_bind_int64(s, 1, series);
    sqlite3_bind_int(s, 2, version);
    sqlite3_bind_int(s, 3, version != 0);
    sqlite3_bind_text(s, 4, rec->hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)rec->size);
    sqlite3_bind_text(s, 6, rec->ts_uid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, rec->received_ns);
    bind_attrs(s, 8, rec, STORE_LEVEL_IMAGE);
    int rc = step_done(s);
    *id = sqlite3_last_insert_rowid(x->w);
    if (rc == RS_OK && rec->json.len) {
        sqlite3_stmt *j = x->st[W_INSERT_JSON];
        sqlite3_bind_int64(j, 1, *id);
        sqlite3_bind_text(j, 2, (const char *)rec->json.p, (int)rec->json.len, SQLITE_STATIC);
        rc = step_done(j);
    }
    return rc;
}

typedef struct version_row {
    int64_t id, series;
    int current;
    char hash[STORE_HASH_HEX + 1];
} version_row;

/* Read every row of a SOP instance in version order. */
static int load_versions(sqlite_index *x, const char *sop, version_row **rows, size_t *n)
{
    sqlite3_stmt *s = x->st[W_VERSIONS];
    size_t cap = 0;
    int r, rc = RS_OK;
    *rows = NULL;
    *n = 0;
    sqlite3_bind_text(s, 1, sop, -1, SQLITE_STATIC);
    while (rc == RS_OK && (r = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            version_row *nr = realloc(*rows, cap * sizeof *nr);
            if (!nr) {
                rc = RS_ENOMEM;
                break;
            }
            *rows = nr;
        }
        version_row *v = &(*rows)[(*n)++];
        v->id = sqlite3_column_int64(s, 0);
        v->series = sqlite3_column_int64(s, 1);
        snprintf(v->hash, sizeof v->hash, "%s", (const char *)sqlite3_column_text(s, 2));
        v->current = sqlite3_column_int(s, 3);
    }
    if (rc == RS_OK && r != SQLITE_DONE)
        rc = RS_EIO;
    sqlite3_reset(s);
    return rc;
}

/*
 * Give the versions of a SOP instance their numbers in (received_ns, hash) order and make the
 * last one current. Ordering by the files' mtimes, not by arrival at the committer, is what
 * makes a rebuilt index agree with this one.
 */
static int renumber(sqlite_index *x, const char *sop, int64_t new_id, store_put_result *res)
{
    version_row *rows;
    size_t n;
    int rc = load_versions(x, sop, &rows, &n);
    for (size_t k = 0; k < n && rc == RS_OK; k++) {
        int current = k + 1 == n;
        if (rows[k].current && rows[k].id != new_id)
            snprintf(res->prev_hash, sizeof res->prev_hash, "%s", rows[k].hash);
        if (rows[k].id == new_id) {
            res->version = (int)k + 1;
            res->current = current;
        }
        sqlite3_stmt *s = x->st[W_SET_VERSION];
        sqlite3_bind_int64(s, 1, rows[k].id);
        sqlite3_bind_int(s, 2, (int)k + 1);
        sqlite3_bind_int(s, 3, current);
        rc = step_done(s);
        if (rc == RS_OK)
            rc = idset_add(&x->touched, rows[k].series);
    }
    free(rows);
    return rc;
}

static int put_rows(sqlite_index *x, const store_record *rec, store_put_result *res)
{
    int64_t patient, study, series, inst = 0;
    int rc = upsert(x, W_UPSERT_PATIENT, STORE_LEVEL_PATIENT, rec, 0, &patient);
    if (rc == RS_OK)
        rc = upsert(x, W_UPSERT_STUDY, STORE_LEVEL_STUDY, rec, patient, &study);
    if (rc == RS_OK)
        rc = upsert(x, W_UPSERT_SERIES, STORE_LEVEL_SERIES, rec, study, &series);
    /* the first version of a SOP (sop_state just said so) needs no renumbering: 1, current */
    int first = x->new_sop == rec;
    if (rc == RS_OK)
        rc = insert_instance(x, rec, series, first, &inst);
    if (rc == RS_OK && first) {
        *res = (store_put_result){.version = 1, .current = 1};
        rc = idset_add(&x->touched, series);
    } else if (rc == RS_OK) {
        rc = renumber(x, store_record_str(rec, DCM_TAG_SOP_INSTANCE_UID), inst, res);
    }
    x->new_sop = NULL;
    res->seq = inst; /* rowids grow: the largest so far + 1 */
    return rc;
}

static int sq_put(store_index *ix, const store_record *rec, store_put_result *res, rs_err *err)
{
    sqlite_index *x = (sqlite_index *)ix;
    size_t touched = x->touched.n;
    memset(res, 0, sizeof *res);
    if (step_done(x->st[W_SAVEPOINT]))
        return sq_err(x->w, err, "starting a put");
    int rc = put_rows(x, rec, res);
    if (rc == RS_OK)
        return step_done(x->st[W_RELEASE]) ? sq_err(x->w, err, "ending a put") : RS_OK;
    rc = rc == RS_ENOMEM ? rs_err_set(err, rc, "out of memory") : sq_err(x->w, err, "adding an instance");
    exec(x->w, "ROLLBACK TO put; RELEASE put", NULL);
    x->touched.n = touched;
    forget_batch(x); /* the upserts it remembers may be rolled back */
    return rc;
}

static int sq_settle(store_index *ix, int64_t upto, rs_err *err)
{
    sqlite_index *x = (sqlite_index *)ix;
    sqlite3_bind_int64(x->st[W_SETTLE], 1, upto);
    return step_done(x->st[W_SETTLE]) == RS_OK ? RS_OK : sq_err(x->w, err, "marking rows settled");
}

/* The ids of the rows of one hash (normally one; one per SOP instance in theory). */
static int drop_find(sqlite_index *x, const char *hash, version_row **rows, size_t *n, char ***sops)
{
    sqlite3_stmt *s = x->st[W_DROP_FIND];
    size_t cap = 0;
    int r, rc = RS_OK;
    sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
    while (rc == RS_OK && (r = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 2;
            version_row *nr = realloc(*rows, cap * sizeof *nr);
            char **ns = realloc(*sops, cap * sizeof *ns);
            if (nr)
                *rows = nr;
            if (ns)
                *sops = ns;
            if (!nr || !ns) {
                rc = RS_ENOMEM;
                break;
            }
        }
        (*rows)[*n].id = sqlite3_column_int64(s, 0);
        (*rows)[*n].series = sqlite3_column_int64(s, 1);
        if (!((*sops)[*n] = strdup((const char *)sqlite3_column_text(s, 2)))) {
            rc = RS_ENOMEM;
            break;
        }
        (*n)++;
    }
    if (rc == RS_OK && r != SQLITE_DONE)
        rc = RS_EIO;
    sqlite3_reset(s);
    return rc;
}

static int sq_drop(store_index *ix, const char *hash, rs_err *err)
{
    sqlite_index *x = (sqlite_index *)ix;
    version_row *rows = NULL;
    char **sops = NULL;
    size_t n = 0;
    int rc = drop_find(x, hash, &rows, &n, &sops);
    for (size_t i = 0; i < n && rc == RS_OK; i++) {
        sqlite3_bind_int64(x->st[W_DROP_JSON], 1, rows[i].id);
        sqlite3_bind_int64(x->st[W_DROP_ROW], 1, rows[i].id);
        rc = step_done(x->st[W_DROP_JSON]);
        if (rc == RS_OK)
            rc = step_done(x->st[W_DROP_ROW]);
        if (rc == RS_OK)
            rc = idset_add(&x->touched, rows[i].series);
        store_put_result res = {0};
        if (rc == RS_OK) /* the remaining versions: numbered again, the last made current */
            rc = renumber(x, sops[i], -1, &res);
    }
    for (size_t i = 0; i < n; i++)
        free(sops[i]);
    free(sops);
    free(rows);
    return rc == RS_OK ? RS_OK
           : rc == RS_ENOMEM ? rs_err_set(err, rc, "out of memory") : sq_err(x->w, err, "removing a row");
}

static int sq_unsettled(store_index *ix, int (*fn)(void *ctx, const char *hash), void *ctx, rs_err *err)
{
    sqlite_index *x = (sqlite_index *)ix;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(x->w, SQL_UNSETTLED, -1, &s, NULL) != SQLITE_OK)
        return sq_err(x->w, err, "listing unsettled rows");
    int r, rc = RS_OK;
    while (rc == RS_OK && (r = sqlite3_step(s)) == SQLITE_ROW)
        rc = fn(ctx, (const char *)sqlite3_column_text(s, 0));
    if (rc == RS_OK && r != SQLITE_DONE)
        rc = sq_err(x->w, err, "listing unsettled rows");
    else if (rc < 0)
        rc = rs_err_set(err, rc, "listing unsettled rows: %s", rs_strerror(rc));
    sqlite3_finalize(s);
    return rc;
}

/* Run a derived-values statement for each id of in; collect what it returns into out. */
static int update_derived(sqlite_index *x, int which, idset *in, idset *out)
{
    idset_unique(in);
    sqlite3_stmt *s = x->st[which];
    int rc = RS_OK;
    for (size_t i = 0; i < in->n && rc == RS_OK; i++) {
        int64_t parent = 0;
        sqlite3_bind_int64(s, 1, in->v[i]);
        rc = out ? step_id(s, &parent) : step_done(s);
        if (rc == RS_OK && out)
            rc = idset_add(out, parent);
    }
    return rc;
}

/* Recount the series touched (and their studies and patients); inside a transaction. */
static int recount(sqlite_index *x, rs_err *err)
{
    idset studies = {0}, patients = {0};
    int rc = update_derived(x, W_SERIES_DERIVED, &x->touched, &studies);
    if (rc == RS_OK)
        rc = update_derived(x, W_STUDY_DERIVED, &studies, &patients);
    if (rc == RS_OK)
        rc = update_derived(x, W_PATIENT_DERIVED, &patients, NULL);
    idset_free(&studies);
    idset_free(&patients);
    x->touched.n = 0;
    if (rc)
        return rc == RS_ENOMEM ? rs_err_set(err, rc, "out of memory") : sq_err(x->w, err, "updating counts");
    return RS_OK;
}

static int sq_commit(store_index *ix, rs_err *err)
{
    sqlite_index *x = (sqlite_index *)ix;
    int rc = x->rebuild ? RS_OK : recount(x, err);
    forget_batch(x);
    return rc ? rc : exec(x->w, "COMMIT", err);
}

/*
 * The end of a rebuild: the deferred indexes (each built in one pass over its table, before the
 * recount, which uses them), the counts of everything put, and one durable COMMIT: with
 * synchronous=FULL again, that COMMIT fsyncs the database file, and with it every page the
 * unsynced COMMITs before left to the OS.
 */
static int sq_rebuild_finish(store_index *ix, rs_err *err)
{
    sqlite_index *x = (sqlite_index *)ix;
    int rc = exec(x->w, "PRAGMA synchronous=FULL; BEGIN IMMEDIATE", err);
    for (size_t i = 0; i < N_INDEXES && rc == RS_OK; i++)
        if (INDEXES[i].deferred)
            rc = exec(x->w, INDEXES[i].sql, err);
    if (rc == RS_OK)
        rc = recount(x, err);
    if (rc == RS_OK)
        rc = exec(x->w, "COMMIT", err);
    if (rc)
        exec(x->w, "ROLLBACK", NULL);
    return rc;
}

/*
 * Checkpoints are ours to schedule (wal_autocheckpoint=0): SQLite would otherwise run them inside
 * some COMMIT, on the acknowledgement path of whichever batch filled the WAL.
 */
static void sq_maintain(store_index *ix)
{
    sqlite_index *x = (sqlite_index *)ix;
    if (x->wal_pages < CHECKPOINT_PAGES)
        return;
    sqlite3_wal_checkpoint_v2(x->w, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    x->wal_pages = 0;
}

/* ---- the read side ------------------------------------------------------------------------------ */

/* Reads the row a one-row lookup gives; called only when there is one. */
typedef int (*row_fn)(sqlite3_stmt *s, void *ctx, rs_err *err);

/*
 * The statement for sql on db: one prepared earlier on this connection and not running (a
 * connection serves one thread at a time, so that is any idle one), else a new one, kept. The
 * lookups' SQL texts are a fixed handful, so a connection keeps a handful of statements, and a
 * lookup (store_find_instance, the trash check: two per rendered image) no longer pays SQLite's
 * parser and planner, which were a third of the CPU of answering an image from the render cache.
 */
static int lookup_stmt(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
    for (sqlite3_stmt *s = sqlite3_next_stmt(db, NULL); s; s = sqlite3_next_stmt(db, s))
        if (!sqlite3_stmt_busy(s) && !strcmp(sqlite3_sql(s), sql)) {
            *out = s;
            return SQLITE_OK;
        }
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
}

/*
 * A one-row lookup on a reader connection: the statement for sql, bind arg (if any) as ?1, step
 * once, let fn read the row, reset. *found says whether there was one (may be NULL when fn is
 * enough).
 */
static int read_one(sqlite_index *x, const char *sql, const char *arg, int *found, row_fn fn, void *ctx,
                    rs_err *err)
{
    sqlite3 *db;
    sqlite3_stmt *s = NULL;
    int rc = get_reader(x, &db, err);
    if (rc)
        return rc;
    if (lookup_stmt(db, sql, &s) != SQLITE_OK) {
        rc = sq_err(db, err, "preparing a lookup");
        goto out;
    }
    if (arg)
        sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (found)
        *found = r == SQLITE_ROW;
    if (r == SQLITE_ROW && fn)
        rc = fn(s, ctx, err);
    else if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = sq_err(db, err, "reading the index");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
out:
    put_reader(x, db);
    return rc;
}

static int sq_has_hash(store_index *ix, const char *hash, int *yes, rs_err *err)
{
    return read_one((sqlite_index *)ix, "SELECT 1 FROM instances WHERE hash = ?1 LIMIT 1", hash, yes, NULL, NULL,
                    err);
}

static void col_copy(sqlite3_stmt *s, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static int row_instance(sqlite3_stmt *s, void *ctx, rs_err *err)
{
    store_instance_info *out = ctx;
    memset(out, 0, sizeof *out);
    col_copy(s, 0, out->sop_uid, sizeof out->sop_uid);
    col_copy(s, 1, out->sop_class, sizeof out->sop_class);
    col_copy(s, 2, out->study_uid, sizeof out->study_uid);
    col_copy(s, 3, out->series_uid, sizeof out->series_uid);
    col_copy(s, 4, out->ts_uid, sizeof out->ts_uid);
    col_copy(s, 5, out->hash, sizeof out->hash);
    out->size = (uint64_t)sqlite3_column_int64(s, 6);
    out->version = sqlite3_column_int(s, 7);
    out->received_ns = sqlite3_column_int64(s, 8);
    out->n_versions = sqlite3_column_int(s, 9);
    return RS_OK;
}

static int sq_instance(store_index *ix, const char *sop_uid, store_instance_info *out, rs_err *err)
{
    static const char sql[] =
        "SELECT i.sop_uid, i.sop_class, st.study_uid, se.series_uid, i.ts_uid, i.hash, i.size, i.version, "
        "i.received_ns, (SELECT count(*) FROM instances WHERE sop_uid = ?1) "
        "FROM instances i JOIN series se ON se.id = i.series JOIN studies st ON st.id = se.study "
        "WHERE i.sop_uid = ?1 AND i.current = 1";
    int found = 0;
    int rc = read_one((sqlite_index *)ix, sql, sop_uid, &found, row_instance, out, err);
    if (rc == RS_OK && !found)
        rc = rs_err_set(err, RS_ENOTFOUND, "no instance %.64s", sop_uid);
    return rc;
}

static int row_append_text(sqlite3_stmt *s, void *ctx, rs_err *err)
{
    if (rs_buf_append(ctx, sqlite3_column_text(s, 0), (size_t)sqlite3_column_bytes(s, 0)))
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    return RS_OK;
}

static int sq_metadata(store_index *ix, const char *sop_uid, rs_buf *out, rs_err *err)
{
    static const char sql[] = "SELECT j.json FROM instances i JOIN instance_json j ON j.instance = i.id "
                              "WHERE i.sop_uid = ?1 AND i.current = 1";
    int found = 0;
    int rc = read_one((sqlite_index *)ix, sql, sop_uid, &found, row_append_text, out, err);
    if (rc == RS_OK && !found)
        rc = rs_err_set(err, RS_ENOTFOUND, "no metadata for instance %.64s", sop_uid);
    return rc;
}

static int row_stats(sqlite3_stmt *s, void *ctx, rs_err *err)
{
    store_index_stats *st = ctx;
    uint64_t *f[] = {&st->patients, &st->studies, &st->series, &st->instances, &st->versions,
                     &st->bytes, &st->object_bytes};
    for (int i = 0; i < 7; i++)
        *f[i] = (uint64_t)sqlite3_column_int64(s, i);
    return RS_OK;
}

static int sq_stats(store_index *ix, store_index_stats *st, rs_err *err)
{
    static const char sql[] =
        "SELECT (SELECT count(*) FROM patients WHERE n_instances > 0), "
        "(SELECT count(*) FROM studies WHERE n_instances > 0), (SELECT count(*) FROM series WHERE n_instances > 0), "
        "(SELECT count(*) FROM instances WHERE current = 1), (SELECT count(*) FROM instances), "
        "(SELECT coalesce(sum(size_bytes), 0) FROM patients), (SELECT coalesce(sum(size), 0) FROM instances)";
    return read_one((sqlite_index *)ix, sql, NULL, NULL, row_stats, st, err);
}

/* ---- queries: a plan to SQL --------------------------------------------------------------------- */

typedef struct qbind {
    const char *s;
    int64_t i;
    int is_int;
} qbind;

typedef struct qb {
    rs_buf sql;
    qbind *b;
    size_t n, cap;
    rs_arena strings;  /* GLOB patterns built for this query */
} qb;

/* Append a numbered parameter "?N" and remember its value. */
static int qb_param(qb *q, const char *s, int is_int)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        qbind *nb = realloc(q->b, cap * sizeof *nb);
        if (!nb)
            return RS_ENOMEM;
        q->b = nb;
        q->cap = cap;
    }
    q->b[q->n] = (qbind){s, is_int ? strtoll(s, NULL, 10) : 0, is_int};
    q->n++;
    return rs_buf_printf(&q->sql, "?%zu", q->n);
}

/*
 * A GLOB pattern for value, then suffix (taken as is): DICOM wildcards kept when wildcard is
 * set, every other GLOB special escaped.
 */
static const char *glob_pattern(qb *q, const char *v, int wildcard, const char *suffix)
{
    size_t n = strlen(v);
    char *out = rs_arena_alloc(&q->strings, n * 3 + strlen(suffix) + 1), *o = out;
    if (!out)
        return NULL;
    for (; *v; v++) {
        int special = *v == '[' || ((*v == '*' || *v == '?') && !wildcard);
        if (special) {
            *o++ = '[';
            *o++ = *v;
            *o++ = ']';
        } else {
            *o++ = *v;
        }
    }
    strcpy(o, suffix);
    return out;
}

/* Column expression of an attribute in the main query ("st.study_date"). */
static int put_col(qb *q, const store_attr *a, const char *suffix)
{
    return rs_buf_printf(&q->sql, "%s.%s%s", ALIAS[a->level], a->column, suffix);
}

/*
 * Person names: the normal form equals (or globs) the key; a key without '=' is compared with
 * the alphabetic group alone, so "DOE^JOHN" finds "Doe^John=..." too. Both patterns are plain
 * parameters, so a key that starts with letters uses the index on the normal form.
 */
static int term_pn(qb *q, const store_attr *a, const store_term *t)
{
    int groups = strchr(t->value, '=') != NULL;
    const char *pat = glob_pattern(q, t->value, t->kind == STORE_TERM_WILDCARD, groups ? "" : "=*");
    if (!pat)
        return RS_ENOMEM;
    int rc = rs_buf_putc(&q->sql, '(');
    rc = rc ? rc : put_col(q, a, "_norm");
    rc = rc ? rc : rs_buf_puts(&q->sql, " GLOB ");
    rc = rc ? rc : qb_param(q, pat, 0);
    if (rc == RS_OK && !groups) {
        const char *alone = rs_arena_strndup(&q->strings, pat, strlen(pat) - 2);
        rc = alone ? rs_buf_puts(&q->sql, " OR ") : RS_ENOMEM;
        rc = rc ? rc : put_col(q, a, "_norm");
        rc = rc ? rc : rs_buf_puts(&q->sql, " GLOB ");
        rc = rc ? rc : qb_param(q, alone, 0);
    }
    return rc ? rc : rs_buf_putc(&q->sql, ')');
}

/* The value expression a range compares: the column, normalised for times, joined for date-time. */
static int range_expr(qb *q, const store_cond *c, const char *expr)
{
    if (c->time)
        return rs_buf_printf(&q->sql, "(%s || rs_tmnorm(%s.%s))", expr, ALIAS[c->time->level], c->time->column);
    if (c->attr->kind == STORE_AK_TM)
        return rs_buf_printf(&q->sql, "rs_tmnorm(%s)", expr);
    return rs_buf_puts(&q->sql, expr);
}

static int term_range(qb *q, const store_cond *c, const char *expr, const store_term *t)
{
    int rc = rs_buf_printf(&q->sql, "(%s <> ''", expr);
    const char *bound[2] = {t->lo, t->hi};
    for (int k = 0; k < 2 && rc == RS_OK; k++) {
        if (!bound[k])
            continue;
        rc = rs_buf_puts(&q->sql, " AND ");
        rc = rc ? rc : range_expr(q, c, expr);
        rc = rc ? rc : rs_buf_puts(&q->sql, k ? " <= " : " >= ");
        rc = rc ? rc : qb_param(q, bound[k], 0);
    }
    return rc ? rc : rs_buf_putc(&q->sql, ')');
}

/* One alternative of a condition, on expression expr. */
static int term_sql(qb *q, const store_cond *c, const char *expr, const store_term *t)
{
    if (c->attr->kind == STORE_AK_PN)
        return term_pn(q, c->attr, t);
    if (t->kind == STORE_TERM_RANGE)
        return term_range(q, c, expr, t);
    const char *v = t->kind == STORE_TERM_WILDCARD ? glob_pattern(q, t->value, 1, "") : t->value;
    if (!v)
        return RS_ENOMEM;
    int rc = rs_buf_printf(&q->sql, "%s %s ", expr, t->kind == STORE_TERM_WILDCARD ? "GLOB" : "=");
    return rc ? rc : qb_param(q, v, c->attr->kind == STORE_AK_INT);
}

/* Derived lists match when one of the entities they summarise matches. */
static const char *list_source(const store_attr *a, const char **expr)
{
    if (strcmp(a->column, "modalities") == 0) {
        *expr = "x.modality";
        return "EXISTS (SELECT 1 FROM series x WHERE x.study = st.id AND x.n_instances > 0 AND (";
    }
    *expr = "y.sop_class";
    return "EXISTS (SELECT 1 FROM series x JOIN instances y ON y.series = x.id AND y.current = 1 "
           "WHERE x.study = st.id AND (";
}

static int cond_sql(qb *q, const store_cond *c)
{
    char expr[96];
    const char *open = "(", *close = ")";
    if (c->attr->kind == STORE_AK_LIST) {
        const char *e;
        open = list_source(c->attr, &e);
        close = "))";
        snprintf(expr, sizeof expr, "%s", e);
    } else {
        snprintf(expr, sizeof expr, "%s.%s", ALIAS[c->attr->level], c->attr->column);
    }
    int rc = rs_buf_printf(&q->sql, " AND %s", open);
    for (size_t k = 0; k < c->n_terms && rc == RS_OK; k++) {
        if (k)
            rc = rs_buf_puts(&q->sql, " OR ");
        if (rc == RS_OK)
            rc = term_sql(q, c, expr, &c->terms[k]);
    }
    return rc ? rc : rs_buf_puts(&q->sql, close);
}

static int select_sql(qb *q, const store_plan *p)
{
    int rc = rs_buf_puts(&q->sql, "SELECT ");
    for (size_t i = 0; i < p->n_ret && rc == RS_OK; i++) {
        if (i)
            rc = rs_buf_puts(&q->sql, ", ");
        if (rc == RS_OK)
            rc = put_col(q, p->ret[i], "");
    }
    if (rc == RS_OK && p->level == STORE_LEVEL_IMAGE)
        rc = rs_buf_printf(&q->sql, ", i.sop_class, i.hash, i.size, i.ts_uid, %s",
                           p->q->with_metadata ? "(SELECT json FROM instance_json WHERE instance = i.id)" : "NULL");
    if (rc == RS_OK)
        rc = rs_buf_puts(&q->sql, " FROM patients p");
    static const char *const joins[STORE_N_LEVELS] = {
        "", " JOIN studies st ON st.patient = p.id", " JOIN series se ON se.study = st.id",
        " JOIN instances i ON i.series = se.id AND i.current = 1"};
    for (int l = 1; l <= (int)p->level && rc == RS_OK; l++)
        rc = rs_buf_puts(&q->sql, joins[l]);
    if (rc == RS_OK)
        rc = p->level == STORE_LEVEL_IMAGE ? rs_buf_puts(&q->sql, " WHERE 1")
                                     : rs_buf_printf(&q->sql, " WHERE %s.n_instances > 0", ALIAS[p->level]);
    for (size_t i = 0; i < p->n_cond && rc == RS_OK; i++)
        rc = cond_sql(q, &p->cond[i]);
    if (rc == RS_OK && p->level >= STORE_LEVEL_STUDY && p->q->trashed != 2)
        rc = rs_buf_printf(&q->sql, " AND st.study_uid %sIN (SELECT study_uid FROM trash)", p->q->trashed ? "" : "NOT ");
    /* a patient is seen when one of their studies is (a patient whose studies are all in the trash is not) */
    if (rc == RS_OK && p->level == STORE_LEVEL_PATIENT && p->q->trashed != 2)
        rc = rs_buf_printf(&q->sql,
                           " AND EXISTS (SELECT 1 FROM studies ps WHERE ps.patient = p.id AND ps.n_instances > 0"
                           " AND ps.study_uid %sIN (SELECT study_uid FROM trash))",
                           p->q->trashed ? "" : "NOT ");
    /* newest first: the id breaks ties, so that pages of the list neither repeat nor skip a study */
    int newest = p->level == STORE_LEVEL_STUDY && p->q->newest_first;
    if (rc == RS_OK)
        rc = rs_buf_printf(&q->sql, " ORDER BY %s%s.id%s LIMIT %lld OFFSET %lld",
                           newest ? "st.study_date DESC, st.study_time DESC, " : "", ALIAS[p->level],
                           newest ? " DESC" : "", p->q->limit ? (long long)p->q->limit : -1LL,
                           (long long)p->q->offset);
    return rc;
}

static int run_query(sqlite3 *db, qb *q, const store_plan *p, store_match_fn fn, void *ctx, rs_err *err)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, (const char *)q->sql.p, -1, &s, NULL) != SQLITE_OK)
        return sq_err(db, err, "preparing a query");
    for (size_t i = 0; i < q->n; i++) {
        if (q->b[i].is_int)
            sqlite3_bind_int64(s, (int)i + 1, q->b[i].i);
        else
            sqlite3_bind_text(s, (int)i + 1, q->b[i].s, -1, SQLITE_STATIC);
    }
    const char *vals[STORE_MAX_KEYS + STORE_N_LEVELS];
    int r = SQLITE_DONE, rc = RS_OK;
    while (rc == RS_OK && (r = sqlite3_step(s)) == SQLITE_ROW) {
        for (size_t i = 0; i < p->n_ret; i++)
            vals[i] = (const char *)sqlite3_column_text(s, (int)i);
        store_row_extra ex = {0};
        int k = (int)p->n_ret;
        if (p->level == STORE_LEVEL_IMAGE) {
            ex.sop_class = (const char *)sqlite3_column_text(s, k);
            ex.hash = (const char *)sqlite3_column_text(s, k + 1);
            ex.size = (uint64_t)sqlite3_column_int64(s, k + 2);
            ex.ts_uid = (const char *)sqlite3_column_text(s, k + 3);
            ex.metadata = (const char *)sqlite3_column_text(s, k + 4);
            ex.metadata_len = (size_t)sqlite3_column_bytes(s, k + 4);
        }
        rc = store_plan_emit(p, vals, &ex, fn, ctx);
    }
    if (rc == RS_OK && r != SQLITE_DONE)
        rc = sq_err(db, err, "running a query");
    else if (rc < 0 && err && !err->msg[0])
        rs_err_set(err, rc, "query stopped: %s", rs_strerror(rc));
    sqlite3_finalize(s);
    return rc < 0 ? rc : RS_OK;
}

static int sq_query(store_index *ix, const store_plan *plan, store_match_fn fn, void *ctx, rs_err *err)
{
    sqlite_index *x = (sqlite_index *)ix;
    qb q = {.sql = RS_BUF_INIT};
    rs_arena_init(&q.strings, 0);
    int rc = select_sql(&q, plan);
    if (rc) {
        rc = rs_err_set(err, rc, "out of memory");
    } else {
        sqlite3 *db;
        rc = get_reader(x, &db, err);
        if (rc == RS_OK) {
            rc = run_query(db, &q, plan, fn, ctx, err);
            put_reader(x, db);
        }
    }
    rs_buf_free(&q.sql);
    free(q.b);
    rs_arena_free(&q.strings);
    return rc;
}

/* ---- trash ----------------------------------------------------------------------------------- */

static int sq_trash(store_index *ix, const char *study_uid, int on, rs_err *err)
{
    const char *sql = !study_uid ? "DELETE FROM trash"
                      : on       ? "INSERT OR IGNORE INTO trash(study_uid) VALUES(?1)"
                                 : "DELETE FROM trash WHERE study_uid = ?1";
    return read_one((sqlite_index *)ix, sql, study_uid, NULL, NULL, NULL, err);
}

static int sq_is_trashed(store_index *ix, const char *study_uid, int *yes, rs_err *err)
{
    return read_one((sqlite_index *)ix, "SELECT 1 FROM trash WHERE study_uid = ?1", study_uid, yes, NULL, NULL, err);
}

const store_index_ops store_index_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .open_rebuild = sq_open_rebuild,
    .rebuild_finish = sq_rebuild_finish,
    .close = sq_close,
    .begin = sq_begin,
    .sop_state = sq_sop_state,
    .put = sq_put,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .maintain = sq_maintain,
    .settle = sq_settle,
    .drop = sq_drop,
    .unsettled = sq_unsettled,
    .has_hash = sq_has_hash,
    .instance = sq_instance,
    .metadata = sq_metadata,
    .query = sq_query,
    .stats = sq_stats,
    .trash = sq_trash,
    .is_trashed = sq_is_trashed,
};
