/*
 * commit.h - group commit: one thread turns many waiting ingests into one durable batch.
 *
 * An ingest thread has its file fdatasync'ed under tmp/<hash>.ready and its record parsed; it
 * submits a store_pending and sleeps. The committer takes everything queued, makes the batch's
 * renames durable with one fsync of tmp/, writes all the index rows in one transaction whose
 * COMMIT is fsync'ed, moves the files into objects/, and wakes every submitter with its
 * outcome. Then, off the answer path, it fsyncs the object directories it touched. Under load
 * a batch holds everything that arrived during the previous one, so the two fsyncs per batch
 * are shared by all concurrent associations.
 *
 * Invariants (what a crash can leave):
 *   answered success  =>  row committed and file durable (in objects/ or tmp/<hash>.ready)
 *   row committed     =>  file durable (the .ready was fsync'ed before COMMIT)
 *   file in objects/  =>  row committed (files move only after COMMIT)
 * store_blob_recover finishes or undoes whatever was between these steps.
 */
#ifndef STORE_COMMIT_H
#define STORE_COMMIT_H

#include <stdint.h>

#include "../util/err.h"
#include "../util/log.h"
#include "blobstore.h"
#include "index.h"
#include "record.h"

typedef enum store_outcome {
    STORE_NEW = 1,         /* first time this SOPInstanceUID is seen */
    STORE_DUPLICATE = 2,   /* same SOPInstanceUID, same bytes: nothing changed */
    STORE_NEW_VERSION = 3  /* same SOPInstanceUID, other bytes: kept beside the older ones */
} store_outcome;

/*
 * Where the store's log lines go (levels of util/log.h; called from any thread, the committer's
 * included). store_open's default is rs_log.
 */
typedef void (*store_log_fn)(void *ctx, int level, const char *msg);

/* Format a line and hand it to fn (nothing when fn is NULL). */
void store_logf(store_log_fn fn, void *ctx, int level, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

typedef struct store_pending {
    const store_record *rec;   /* in: hash, size, received_ns set; owned by the submitter */
    const char *source;        /* in: who sent it, for log lines (may be NULL) */
    /* out, valid once store_commit_submit returns: */
    int rc;
    rs_err err;
    store_outcome outcome;
    store_put_result put;      /* version, current, prev_hash (for a duplicate: its version) */
    /* the committer's: */
    int done;
    struct store_pending *next;
} store_pending;

typedef struct store_commit_stats {
    uint64_t batches;     /* transactions committed */
    uint64_t submitted;   /* submissions answered by them */
    uint64_t max_batch;   /* largest batch */
} store_commit_stats;

typedef struct store_commit store_commit;

typedef struct store_commit_env {
    store_index *ix;
    store_blobs *blobs;
    store_log_fn log;
    void *log_ctx;
} store_commit_env;

int store_commit_start(const store_commit_env *env, store_commit **out, rs_err *err);
/* An ingest begins (RS_EINVAL once the store is closing) / ends (whatever became of it). */
int store_commit_enter(store_commit *c, rs_err *err);
void store_commit_leave(store_commit *c);
/* Queue p and wait for its batch to be durable; returns p->rc. */
int store_commit_submit(store_commit *c, store_pending *p);
/*
 * Refuse new ingests, let those begun finish (their submissions are committed), then stop the
 * thread and free c. Callers must end or abort their ingests: this waits for them.
 */
void store_commit_stop(store_commit *c);
void store_commit_stats_get(store_commit *c, store_commit_stats *st);

/*
 * Apply a batch in the calling thread, objects already in place (reindex): the same decisions
 * as the committer (duplicate / new / new version), without tmp/ and without waiting.
 */
int store_commit_apply(const store_commit_env *env, store_pending **batch, size_t n, rs_err *err);

#endif
