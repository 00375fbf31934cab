/*
 * commit.h - group commit: one thread turns many waiting ingests into one durable batch.
 *
 * An ingest thread has its file written (not yet fsync'ed) in its tmp/ pool slot, whose name
 * is already durable, and its record parsed; it queues a store_pending, fsyncs its file while
 * the committer works, and sleeps until its batch is committed. The committer takes everything
 * queued, writes all the index rows in one transaction whose COMMIT is fsync'ed, links the
 * files into objects/ and wakes the submitters: the two flushes an instance needs (file, index)
 * run at the same time. It hands the directories it touched to the syncer thread, which
 * fsyncs them, then unlinks the files' slot names and refills the pool, off the path of both
 * the answers and the next batch. Under load a batch holds everything that arrived during the
 * previous one, so the COMMIT is shared by all concurrent associations.
 *
 * Settling. Rows have increasing sequence numbers; the index keeps a mark below which every
 * row's file is fsync'ed and durable in objects/. A batch is settled once its submitters'
 * fsyncs have returned and the syncer has synced its directories; the mark is raised inside
 * a later batch's transaction (no extra flush).
 *
 * Invariants (what a crash can leave, before recovery):
 *   answered success  =>  row committed, file fsync'ed, with a durable name (its slot name,
 *                         unlinked only once the objects/ name is durable)
 *   file in objects/  =>  row committed (files are linked only after COMMIT)
 *   row settled       =>  file whole and durable in objects/
 *   row not settled   =>  possibly a file that never became durable: never answered
 * store_open (store.c) moves committed files left in tmp/, then re-hashes the files of the
 * unsettled rows and removes the rows whose file is missing or cut short, which restores
 * "row committed => file durable" before anything reads the index.
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
    const char *tmp_name;      /* in: its file in tmp/ (NULL: already in objects/, reindex) */
    /* out, valid once store_commit_submit returns: */
    int rc;
    rs_err err;
    store_outcome outcome;
    store_put_result put;      /* version, current, prev_hash (for a duplicate: its version) */
    /* the committer's: */
    int synced;                /* the submitter's fsync has returned (sync_rc, sync_err) */
    uint64_t gen;              /* the batch it was taken into (0: still queued) */
    int sync_rc;
    rs_err sync_err;
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
/*
 * Queue p, run sync(ctx) (the file's fsync) while the committer writes the batch, and wait for
 * the batch to be durable; returns p->rc (the sync's failure included).
 */
typedef int (*store_sync_fn)(void *ctx, rs_err *err);
int store_commit_submit(store_commit *c, store_pending *p, store_sync_fn sync, void *ctx);
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
