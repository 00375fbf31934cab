/*
 * store.h - the archive's storage engine, as the servers (net/, http/) and the CLI use it.
 *
 *   DATA/objects/ab/cd/<sha256>   instance files, content-addressed, written once
 *   DATA/index.sqlite             patients/studies/series/instances (rebuildable: store_reindex)
 *   DATA/tmp/                     receptions in flight
 *   DATA/lock                     one process per data directory
 *
 * Ingest streams: begin, write the bytes as they arrive (hashed on the way, capped), end. End
 * parses the header (never the pixels), makes the file durable and waits for the group commit
 * that makes its index row durable: when it returns RS_OK the instance survives any crash, so a
 * C-STORE or STOW success may be sent. Many threads may ingest at once; they share the fsyncs.
 *
 * Identity: same SOPInstanceUID and same bytes -> STORE_DUPLICATE, a success that changes
 * nothing. Same SOPInstanceUID, other bytes -> STORE_NEW_VERSION: both are kept, the one
 * received last is current (queries and retrieval see it), and a line is logged.
 *
 * Every function may be called from any thread, except store_close (once, last) and
 * store_reindex (on a data directory no process has open).
 */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"
#include "../util/err.h"
#include "commit.h"
#include "index.h"
#include "query.h"
#include "record.h"

typedef struct store store;
typedef struct store_ingest store_ingest;

typedef struct store_opts {
    uint64_t max_object_size;   /* largest instance accepted; 0 = 4 GiB */
    const char *index;          /* index backend: NULL or "sqlite" */
    store_log_fn log;           /* NULL: rs_log (util/log.h) */
    void *log_ctx;
    store_record_opts record;   /* header parsing limits */
} store_opts;

/* What became of one ingested instance. */
typedef struct store_ingest_result {
    store_outcome outcome;
    int duplicate;               /* outcome == STORE_DUPLICATE: a success that changed nothing */
    int new_version;             /* outcome == STORE_NEW_VERSION */
    int version;                 /* of the row this file is (for a duplicate: the existing one) */
    int current;                 /* it is the current version */
    char hash[STORE_HASH_HEX + 1];
    uint64_t size;
    char sop_uid[STORE_UID_MAX + 1];
    char sop_class[STORE_UID_MAX + 1];
    char study_uid[STORE_UID_MAX + 1];
    char series_uid[STORE_UID_MAX + 1];
} store_ingest_result;

typedef struct store_stats {
    store_index_stats index;     /* counts and sizes */
    store_commit_stats commit;   /* group commit: batches vs submissions */
} store_stats;

/*
 * Open (creating if needed) the data directory: take its lock, open the index, finish or undo
 * what a crash left in tmp/, start the committer.
 */
int store_open(const char *datadir, const store_opts *o, store **out, rs_err *err);
/*
 * Stop taking ingests, let the ones begun finish (they are committed and answered), stop the
 * committer, close everything. Callers end or abort their ingests first (SIGTERM: stop reading
 * from peers, finish what is complete, abort the rest).
 */
void store_close(store *s);

/* ---- ingest --------------------------------------------------------------------------------- */

int store_ingest_begin(store *s, store_ingest **out, rs_err *err);
/*
 * What the data set must be (a C-STORE's Affected SOP Class/Instance UID): commit refuses a
 * file whose SOPClassUID or SOPInstanceUID differs, with RS_EINVAL, and keeps nothing.
 */
int store_ingest_expect(store_ingest *in, const char *sop_class, const char *sop_uid, rs_err *err);
/* The data set must belong to this study (STOW-RS to /studies/{uid}): RS_EINVAL otherwise. */
int store_ingest_expect_study(store_ingest *in, const char *study_uid, rs_err *err);
/* Append bytes of the Part 10 file. RS_ELIMIT past max_object_size. */
int store_ingest_write(store_ingest *in, const void *data, size_t n, rs_err *err);
/*
 * For a bare dataset (what C-STORE carries): write the preamble and file meta information
 * first. It depends only on its arguments (no time, no peer), so the same dataset received
 * twice makes the same file and is recognised as a duplicate.
 */
int store_ingest_write_meta(store_ingest *in, const char *sop_class, const char *sop_uid,
                            const char *ts_uid, rs_err *err);
/*
 * Finish: parse, make durable, wait for the group commit, fill res (may be NULL). Frees in,
 * whatever the outcome. source (the calling AE title, a web client...) is only used in log
 * lines; it is not kept, since nothing in the index may come from outside the file. Errors:
 * RS_EFORMAT not DICOM or missing a required UID, RS_ELIMIT too big, RS_EIO storage failure.
 */
int store_ingest_commit(store_ingest *in, const char *source, store_ingest_result *res, rs_err *err);
/* Drop an ingest (peer aborted, shutdown). Frees in; NULL is fine. */
void store_ingest_abort(store_ingest *in);

/* Convenience: a whole file in memory, or on disk (import), in one call. */
int store_put_mem(store *s, const void *data, size_t n, store_ingest_result *res, rs_err *err);
int store_put_file(store *s, const char *path, store_ingest_result *res, rs_err *err);

/* ---- reading -------------------------------------------------------------------------------- */

/* Current version of an instance. RS_ENOTFOUND when unknown. */
int store_find_instance(store *s, const char *sop_uid, store_instance_info *info, rs_err *err);
/*
 * Open a stored file by content hash (as queries give it: store_match.hash), read-only. When
 * off and len are not NULL they receive where the dataset lies after the preamble and meta
 * group: what a C-STORE sub-operation sends (in the file's transfer syntax, store_match.ts_uid).
 * Read with pread/sendfile: the file position is unspecified.
 */
int store_open_instance(store *s, const char *hash, int *fd, uint64_t *off, uint64_t *len, rs_err *err);
/*
 * Where the data set of an open Part 10 file lies, after the preamble and meta group (what the
 * reader finds; the file position is unspecified afterwards). Needs no store: the live replica
 * (backup/replica.c) sends object files while the server holds the store.
 */
int store_dataset_span(int fd, uint64_t *off, uint64_t *len, rs_err *err);
/* Is hash the content of some indexed version (verify, backup)? */
int store_has_object(store *s, const char *hash, int *yes, rs_err *err);
/* Open the current version of a SOP instance read-only (info may be NULL). */
int store_open_current(store *s, const char *sop_uid, int *fd, store_instance_info *info, rs_err *err);
/*
 * Path of the current version's file in objects/. Prefer the open functions: in the rare case
 * where moving a committed file failed, it is still in tmp/ until restart, and only they look
 * there.
 */
int store_get_instance_path(store *s, const char *sop_uid, char *out, size_t cap, rs_err *err);
/* DICOM JSON of the current version's header (bulk data as relative "bulk/..." URIs). */
int store_get_metadata(store *s, const char *sop_uid, rs_buf *out, rs_err *err);
/* C-FIND / QIDO-RS, see query.h. */
int store_query_run(store *s, const store_query *q, store_match_fn fn, void *ctx, rs_err *err);
int store_get_stats(store *s, store_stats *st, rs_err *err);

/*
 * Trash: a study deleted by staff is only marked (DATA/trash/<uid>, and the index): queries
 * hide it (store_query.trashed), its objects stay, and trashed = 0 restores it. A mark for a
 * study not (or not yet) in the index is kept and applies when it arrives. RS_EINVAL: not a UID.
 */
int store_trash_study(store *s, const char *study_uid, int trashed, rs_err *err);
int store_is_trashed(store *s, const char *study_uid, int *yes, rs_err *err);

/* ---- rebuilding ------------------------------------------------------------------------------ */

typedef struct store_reindex_report {
    uint64_t objects;      /* files found in objects/ */
    uint64_t indexed;      /* rows written */
    uint64_t unreadable;   /* not parseable as a storable instance: left in place, not indexed */
    uint64_t corrupt;      /* content does not match the name (verify only): left, not indexed */
    store_blob_recovery tmp; /* what was in tmp/ (.ready files are kept: see store.c) */
} store_reindex_report;

/*
 * Rebuild the index from objects/ alone, replacing DATA/index.sqlite at the end (atomically:
 * a crash during reindex leaves the old index). verify: re-hash every file against its name.
 */
int store_reindex(const char *datadir, const store_opts *o, int verify, store_reindex_report *rep, rs_err *err);

#endif
