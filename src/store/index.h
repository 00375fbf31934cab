/*
 * index.h - the index backend interface: what the store asks of a database.
 *
 * The index holds patients, studies, series and instances (attrs.h) and each instance's header
 * JSON. It is a cache of the object files: everything in it can be rebuilt from objects/
 * (store_reindex). SQLite (index_sqlite.c) is the embedded default; a PostgreSQL backend is
 * another `store_index_ops` and nothing above this file changes.
 *
 * Threads: the write operations (begin, put, commit, rollback) are called by one thread at a
 * time, the committer, which owns the write connection. The read operations may be called from
 * any number of threads at once; the backend keeps its own readers (SQLite in WAL mode lets
 * them run while the committer writes).
 *
 * Durability contract: commit returns RS_OK only once the batch is on stable storage.
 */
#ifndef STORE_INDEX_H
#define STORE_INDEX_H

#include <stdint.h>

#include "../util/buf.h"
#include "../util/err.h"
#include "query.h"
#include "record.h"

typedef struct store_index store_index;
typedef struct store_index_ops store_index_ops;

/* Every backend's handle starts with this. */
struct store_index {
    const store_index_ops *ops;
};

/* What the index knows about one SOPInstanceUID, against a candidate file. */
typedef struct store_sop_state {
    int n_versions;     /* rows for this SOPInstanceUID (0: never seen) */
    int has_hash;       /* one of them is the candidate's content hash */
    int version;        /* when has_hash: that row's version */
} store_sop_state;

/* How one put ended. */
typedef struct store_put_result {
    int version;                      /* version number given to the row */
    int current;                      /* the row is the current version */
    int64_t seq;                      /* the row's sequence number: increases with each put */
    char prev_hash[STORE_HASH_HEX + 1]; /* the hash that was current before, "" if none */
} store_put_result;

/* The current version of an instance, as readers need it. */
typedef struct store_instance_info {
    char sop_uid[STORE_UID_MAX + 1];
    char sop_class[STORE_UID_MAX + 1];
    char study_uid[STORE_UID_MAX + 1];
    char series_uid[STORE_UID_MAX + 1];
    char ts_uid[STORE_UID_MAX + 1];
    char hash[STORE_HASH_HEX + 1];
    uint64_t size;
    int version;
    int n_versions;
    int64_t received_ns;
} store_instance_info;

/* Counts and sizes (current versions unless said otherwise). */
typedef struct store_index_stats {
    uint64_t patients, studies, series, instances;
    uint64_t versions;       /* instance rows, all versions */
    uint64_t bytes;          /* size of the current versions */
    uint64_t object_bytes;   /* size of every object file the index refers to */
} store_index_stats;

struct store_index_ops {
    const char *name;
    /* path: the backend's location (a file for SQLite, a connection string later). */
    int (*open)(const char *path, store_index **out, rs_err *err);
    /*
     * A new, empty index at path (whatever was there is removed) for a bulk rebuild: the same
     * write and read operations, but no commit is durable and derived values may lag until
     * rebuild_finish, which completes the index and makes it durable as a whole. Until it
     * returns RS_OK the index is unfinished: the caller must not use it as the live one.
     */
    int (*open_rebuild)(const char *path, store_index **out, rs_err *err);
    int (*rebuild_finish)(store_index *ix, rs_err *err);
    void (*close)(store_index *ix);

    /* ---- write side (the committer thread) ---- */
    int (*begin)(store_index *ix, rs_err *err);
    /* State of rec's SOPInstanceUID inside the open batch (sees the batch's own puts). */
    int (*sop_state)(store_index *ix, const store_record *rec, store_sop_state *st, rs_err *err);
    /*
     * Add rec as a new row (never a duplicate: the caller checked). Versions of one SOP are
     * ordered by (received_ns, hash); the last one is current. Atomic: on error the batch
     * is as before the call and may go on.
     */
    int (*put)(store_index *ix, const store_record *rec, store_put_result *res, rs_err *err);
    /* Bring derived values (counts, sizes, ModalitiesInStudy...) up to date, then commit durably. */
    int (*commit)(store_index *ix, rs_err *err);
    void (*rollback)(store_index *ix);
    /*
     * Inside a batch: the rows up to sequence number upto (-1: every row committed before this
     * batch) are settled, their files durable in objects/. Rows put after the last settle are
     * what store_open checks after a crash.
     */
    int (*settle)(store_index *ix, int64_t upto, rs_err *err);
    /* Inside a batch: remove the row(s) of this hash (versions renumbered, counts redone). */
    int (*drop)(store_index *ix, const char *hash, rs_err *err);
    /* Before the committer starts: call fn with the hash of every row not settled. */
    int (*unsettled)(store_index *ix, int (*fn)(void *ctx, const char *hash), void *ctx, rs_err *err);
    /* Housekeeping (checkpoints), run by the committer after it has answered a batch. */
    void (*maintain)(store_index *ix);

    /* ---- read side (any thread) ---- */
    int (*has_hash)(store_index *ix, const char *hash, int *yes, rs_err *err);
    /* Current version of sop_uid; RS_ENOTFOUND when unknown. */
    int (*instance)(store_index *ix, const char *sop_uid, store_instance_info *out, rs_err *err);
    /* Header JSON of the current version, appended to out; RS_ENOTFOUND when unknown or not kept. */
    int (*metadata)(store_index *ix, const char *sop_uid, rs_buf *out, rs_err *err);
    int (*query)(store_index *ix, const store_plan *plan, store_match_fn fn, void *ctx, rs_err *err);
    int (*stats)(store_index *ix, store_index_stats *st, rs_err *err);
    /*
     * Trash (store_trash_study): mark or unmark a study as trashed; study_uid NULL with on = 0
     * clears every mark. Any thread, outside the committer's batches (a small write of its own).
     * Queries hide trashed studies unless store_query.trashed asks for them.
     */
    int (*trash)(store_index *ix, const char *study_uid, int on, rs_err *err);
    int (*is_trashed)(store_index *ix, const char *study_uid, int *yes, rs_err *err);
};

/* The SQLite backend. */
extern const store_index_ops store_index_sqlite;

#endif
