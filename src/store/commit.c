/* commit.c - the committer thread and the batch it applies (see commit.h for the protocol). */
#include "commit.h"
#include "../util/vec.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What the committer keeps of a submission, to move its file. */
typedef struct store_move {
    char hash[STORE_HASH_HEX + 1];
    char name[STORE_TMP_NAME];
    int replace;
} store_move;

/*
 * Batches whose rows are not yet settled: a batch is settled once all its files' fsyncs have
 * returned (counted down by the submitters) and the directories of its moves are synced (the
 * syncer's dirs_gen). At most RING of them at once; past that the committer waits.
 */
#define RING 256
#define SYNC_GATHER_NS 2000000 /* the syncer's wait before it takes the directories handed over */

typedef struct batch_mark {
    int64_t max_seq;     /* highest row sequence number the batch committed (0: none) */
    unsigned unsynced;   /* its submitters whose fsync is still running */
} batch_mark;

struct store_commit {
    store_commit_env env;
    pthread_mutex_t mu;
    pthread_cond_t work;      /* committer: something queued, or an ingest ended while closing */
    pthread_cond_t answered;  /* submitters: a batch is done */
    pthread_cond_t progress;  /* committer: an fsync returned or directories were synced */
    pthread_cond_t sync_work; /* syncer: directories to sync, or stop */
    store_pending *head, *tail;
    unsigned active;          /* ingests begun and not ended */
    int closing;
    int stopped;              /* the thread has exited: submissions are refused */
    pthread_t thread, syncer;
    store_commit_stats stats;
    /* unsettled batches: generations first_gen .. first_gen + n_ring - 1, at [gen % RING] */
    batch_mark ring[RING];
    uint64_t gen, first_gen;
    size_t n_ring;
    int64_t settle_to;        /* committer: rows up to this sequence number may be marked settled */
    int unsettled;            /* a move, fsync or directory sync failed: stop marking rows settled */
    /* the syncer's */
    store_dirset to_sync;     /* directories handed over by the committer */
    uint64_t to_sync_gen;     /* batches up to this one have their directories in to_sync or synced */
    uint64_t dirs_gen;        /* batches up to this one have their directories synced */
    int syncer_stop;
    /* committer thread only */
    store_dirset dirs;        /* object directories the current batch touched */
    store_pending **batch;    /* the batch being committed */
    size_t cap;
    store_move *moves;        /* the batch's files to move into objects/ */
    size_t n_moves, cap_moves;
    /* rows whose file fsync failed, to take out again (under mu) */
    char (*drops)[STORE_HASH_HEX + 1];
    size_t n_drops, cap_drops;
};

void store_logf(store_log_fn fn, void *ctx, int level, const char *fmt, ...)
{
    if (!fn)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fn(ctx, level, msg);
}

/* ---- one batch ---------------------------------------------------------------------------------- */

/* Versions are ordered by file mtime, then hash: process a batch in that order too. */
static int cmp_pending(const void *a, const void *b)
{
    const store_record *x = (*(store_pending *const *)a)->rec, *y = (*(store_pending *const *)b)->rec;
    if (x->received_ns != y->received_ns)
        return x->received_ns < y->received_ns ? -1 : 1;
    return strcmp(x->hash, y->hash);
}

static void fail_all(store_pending **v, size_t n, int rc, const rs_err *err)
{
    for (size_t i = 0; i < n; i++) {
        v[i]->rc = rc;
        if (err)
            v[i]->err = *err;
    }
}

/* Decide what one submission is and write its row (inside the batch transaction). */
static void decide(const store_commit_env *env, store_pending *p)
{
    store_index *ix = env->ix;
    store_sop_state st;
    p->rc = ix->ops->sop_state(ix, p->rec, &st, &p->err);
    if (p->rc)
        return;
    if (st.has_hash) {
        p->outcome = STORE_DUPLICATE;
        p->put.version = st.version;
        return;
    }
    p->outcome = st.n_versions ? STORE_NEW_VERSION : STORE_NEW;
    p->rc = ix->ops->put(ix, p->rec, &p->put, &p->err);
}

static void log_version(const store_commit_env *env, const store_pending *p)
{
    store_logf(env->log, env->log_ctx, RS_LOG_WARN,
          "instance %s received%s%s with other content: kept as version %d (%s)%s; %s stays %s",
          store_record_str(p->rec, DCM_TAG_SOP_INSTANCE_UID), p->source ? " from " : "",
          p->source ? p->source : "", p->put.version, p->rec->hash,
          p->put.current ? " and made current" : ", older than the current version",
          p->put.prev_hash[0] ? p->put.prev_hash : "the previous version",
          p->put.current ? "as an older version" : "current");
}

/*
 * Move each committed file from tmp/ to objects/, as soon as its row is committed (the
 * submitters' fsyncs may still be running: a crash now leaves the row unsettled, and
 * store_open checks the file of every unsettled row). A failure here does not fail the
 * submission: the file is in tmp/, readers find it there, the next store_open moves it.
 */
static void publish(store_commit *c)
{
    for (size_t i = 0; i < c->n_moves; i++) {
        store_move *m = &c->moves[i];
        rs_err err = {0};
        if (store_blob_publish(c->env.blobs, m->hash, m->name, m->replace, &c->dirs, &err)) {
            c->unsettled = 1;
            store_logf(c->env.log, c->env.log_ctx, RS_LOG_ERROR, "object %s stays in tmp/ until restart: %s",
                       m->hash, err.msg);
        } else {
            store_blob_pending(c->env.blobs, m->hash, NULL);
        }
    }
    c->n_moves = 0;
}

/* What publish() needs of v. */
static void plan_moves(store_commit *c, store_pending **v, size_t n)
{
    c->n_moves = 0;
    if (n > c->cap_moves) {
        store_move *nm = realloc(c->moves, n * sizeof *nm);
        if (!nm) { /* the files stay in tmp/, durable and found by readers; restart moves them */
            c->unsettled = 1;
            return;
        }
        c->moves = nm;
        c->cap_moves = n;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i]->rc || !v[i]->tmp_name)
            continue;
        store_move *m = &c->moves[c->n_moves++];
        snprintf(m->hash, sizeof m->hash, "%s", v[i]->rec->hash);
        snprintf(m->name, sizeof m->name, "%s", v[i]->tmp_name);
        m->replace = v[i]->outcome != STORE_DUPLICATE;
    }
}

/*
 * The index part of a batch: one transaction, one durable COMMIT. settle (nonzero): the rows up
 * to that sequence number (-1: all committed before) have their files durable in objects/ (see
 * commit.h); say so in the same transaction.
 */
static int write_rows(const store_commit_env *env, store_pending **v, size_t n, int64_t settle, rs_err *err)
{
    store_index *ix = env->ix;
    int rc = ix->ops->begin(ix, err);
    if (rc == RS_OK && settle)
        rc = ix->ops->settle(ix, settle, err);
    if (rc) {
        ix->ops->rollback(ix);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        decide(env, v[i]);
    rc = ix->ops->commit(ix, err);
    if (rc) {
        ix->ops->rollback(ix);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        if (v[i]->rc == RS_OK && v[i]->outcome == STORE_NEW_VERSION)
            log_version(env, v[i]);
    return RS_OK;
}

/* Forget the tmp/ names of the submissions that failed (all of them: all = 1). */
static void unpend(store_commit *c, store_pending **v, size_t n, int all)
{
    for (size_t i = 0; i < n; i++)
        if (v[i]->tmp_name && (all || v[i]->rc))
            store_blob_pending(c->env.blobs, v[i]->rec->hash, NULL);
}

/* Everything a batch needs before its submitters may be answered (their fsyncs aside). */
static void run_batch(store_commit *c, store_pending **v, size_t n, uint64_t gen, int64_t settle)
{
    rs_err err = {0};
    qsort(v, n, sizeof *v, cmp_pending);
    int rc = RS_OK;
    /* readers may see a row as soon as COMMIT returns: make its file findable before */
    for (size_t i = 0; i < n && rc == RS_OK; i++)
        if (v[i]->tmp_name && store_blob_pending(c->env.blobs, v[i]->rec->hash, v[i]->tmp_name))
            rc = rs_err_set(&err, RS_ENOMEM, "out of memory");
    if (rc == RS_OK)
        rc = write_rows(&c->env, v, n, settle, &err);
    if (rc) {
        store_logf(c->env.log, c->env.log_ctx, RS_LOG_ERROR, "batch of %zu not stored: %s", n, err.msg);
        fail_all(v, n, rc, &err);
        unpend(c, v, n, 1);
        return;
    }
    int64_t max_seq = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i]->rc == RS_OK && v[i]->outcome != STORE_DUPLICATE && v[i]->put.seq > max_seq)
            max_seq = v[i]->put.seq;
    pthread_mutex_lock(&c->mu);
    c->ring[gen % RING].max_seq = max_seq;
    pthread_mutex_unlock(&c->mu);
    plan_moves(c, v, n);
    publish(c);
    unpend(c, v, n, 0);
}

/* Take out the rows of files whose fsync failed (their submitters were told so). */
static void run_drops(store_commit *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->n_drops;
    char(*v)[STORE_HASH_HEX + 1] = c->drops;
    c->drops = NULL;
    c->n_drops = c->cap_drops = 0;
    pthread_mutex_unlock(&c->mu);
    if (!n)
        return;
    store_index *ix = c->env.ix;
    rs_err err = {0};
    int rc = ix->ops->begin(ix, &err);
    for (size_t i = 0; i < n && rc == RS_OK; i++) {
        rc = ix->ops->drop(ix, v[i], &err);
        store_blob_remove(c->env.blobs, v[i]);
    }
    if (rc == RS_OK)
        rc = ix->ops->commit(ix, &err);
    if (rc) {
        ix->ops->rollback(ix);
        store_logf(c->env.log, c->env.log_ctx, RS_LOG_ERROR,
                   "cannot remove the rows of unsynced files: %s (the next start does)", err.msg);
    }
    free(v);
}

int store_commit_apply(const store_commit_env *env, store_pending **batch, size_t n, rs_err *err)
{
    qsort(batch, n, sizeof *batch, cmp_pending);
    /* objects already in place: each batch settles the ones before it */
    int rc = write_rows(env, batch, n, -1, err);
    if (rc)
        fail_all(batch, n, rc, err);
    return rc;
}

/* ---- the thread ---------------------------------------------------------------------------------- */

/*
 * Drop the settled batches from the head of the ring, raising settle_to (under mu). A batch is
 * settled when its fsyncs have all returned and the syncer has synced its directories.
 */
static void pop_settled(store_commit *c)
{
    while (c->n_ring) {
        batch_mark *m = &c->ring[c->first_gen % RING];
        if (m->unsynced || c->first_gen > c->dirs_gen)
            break;
        if (m->max_seq > c->settle_to)
            c->settle_to = m->max_seq;
        c->first_gen++;
        c->n_ring--;
    }
}

/*
 * Detach up to the batch array's capacity from the queue (FIFO order; run_batch sorts) as a
 * new generation; under mu. Waits while RING batches are unsettled.
 */
static size_t take_queue(store_commit *c, uint64_t *gen)
{
    pop_settled(c);
    while (c->n_ring == RING) {
        pthread_cond_wait(&c->progress, &c->mu);
        pop_settled(c);
    }
    size_t k = 0;
    for (store_pending *p = c->head; p; p = p->next)
        k++;
    if (k > c->cap) {
        store_pending **nb = realloc(c->batch, k * sizeof *nb);
        if (nb) {  /* without memory, the rest simply waits for the next batch */
            c->batch = nb;
            c->cap = k;
        }
    }
    *gen = ++c->gen;
    if (!c->n_ring)
        c->first_gen = *gen;
    batch_mark *m = &c->ring[*gen % RING];
    c->n_ring++;
    *m = (batch_mark){0};
    size_t n = 0;
    while (c->head && n < c->cap) {
        store_pending *p = c->head;
        c->batch[n++] = p;
        c->head = p->next;
        p->gen = *gen;
        m->unsynced += !p->synced;
    }
    if (!c->head)
        c->tail = NULL;
    return n;
}

static void answer(store_commit *c, store_pending **v, size_t n)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++)
        v[i]->done = 1;  /* after this the submitter may free it: v[i] is not touched again */
    c->stats.batches++;
    c->stats.submitted += n;
    if (n > c->stats.max_batch)
        c->stats.max_batch = n;
    pthread_cond_broadcast(&c->answered);
    pthread_mutex_unlock(&c->mu);
}

/* Hand the batch's directories to the syncer; let the index tidy up. */
static void after_batch(store_commit *c, uint64_t gen)
{
    pthread_mutex_lock(&c->mu);
    if (store_dirset_merge(&c->to_sync, &c->dirs))
        c->unsettled = 1; /* no memory: those directories are synced by the next start */
    c->dirs.n = 0;
    c->to_sync_gen = gen;
    pthread_cond_signal(&c->sync_work);
    pthread_mutex_unlock(&c->mu);
    if (c->env.ix->ops->maintain)
        c->env.ix->ops->maintain(c->env.ix);
}

static void *committer(void *arg)
{
    store_commit *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->head && !c->n_drops && !(c->closing && c->active == 0))
            pthread_cond_wait(&c->work, &c->mu);
        if (c->n_drops) {
            pthread_mutex_unlock(&c->mu);
            run_drops(c);
            pthread_mutex_lock(&c->mu);
            continue;
        }
        if (!c->head)
            break;
        uint64_t gen;
        size_t n = take_queue(c, &gen);
        int64_t settle = c->unsettled ? 0 : c->settle_to;
        c->settle_to = 0;
        pthread_mutex_unlock(&c->mu);
        run_batch(c, c->batch, n, gen, settle);
        answer(c, c->batch, n);
        after_batch(c, gen);
        pthread_mutex_lock(&c->mu);
    }
    c->stopped = 1;
    pthread_cond_broadcast(&c->answered);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/*
 * The syncer: fsyncs the object directories the committer's moves touched, off the path of
 * both the answers and the next batch, and keeps the pool of tmp/ slots filled.
 */
static void *syncer(void *arg)
{
    store_commit *c = arg;
    store_dirset mine = {0};
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (c->to_sync_gen == c->dirs_gen && !c->syncer_stop)
            pthread_cond_wait(&c->sync_work, &c->mu);
        if (c->to_sync_gen == c->dirs_gen)
            break;
        if (!c->syncer_stop) {
            /* let a few batches gather: directories shared between them are synced once, and
               the disk and CPUs see fewer, larger turns of this thread (rows settle a little later) */
            pthread_mutex_unlock(&c->mu);
            nanosleep(&(struct timespec){.tv_nsec = SYNC_GATHER_NS}, NULL);
            pthread_mutex_lock(&c->mu);
        }
        store_dirset t = mine;
        mine = c->to_sync;
        c->to_sync = t;
        uint64_t target = c->to_sync_gen;
        pthread_mutex_unlock(&c->mu);
        rs_err err = {0};
        int rc = store_blob_sync_dirs(c->env.blobs, &mine, &err);
        if (rc)
            store_logf(c->env.log, c->env.log_ctx, RS_LOG_ERROR, "%s (the next start syncs them)", err.msg);
        if (store_blobs_refill(c->env.blobs, &err))
            store_logf(c->env.log, c->env.log_ctx, RS_LOG_WARN, "cannot refill the pool of tmp/ files: %s", err.msg);
        pthread_mutex_lock(&c->mu);
        if (rc)
            c->unsettled = 1;
        c->dirs_gen = target;
        pthread_cond_broadcast(&c->progress);
    }
    pthread_mutex_unlock(&c->mu);
    store_dirset_free(&mine);
    return NULL;
}

static void commit_free(store_commit *c)
{
    store_dirset_free(&c->dirs);
    store_dirset_free(&c->to_sync);
    free(c->batch);
    free(c->moves);
    free(c->drops);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->work);
    pthread_cond_destroy(&c->answered);
    pthread_cond_destroy(&c->progress);
    pthread_cond_destroy(&c->sync_work);
    free(c);
}

/* Tell the syncer thread to finish what it holds and wait for it. */
static void stop_syncer(store_commit *c)
{
    pthread_mutex_lock(&c->mu);
    c->syncer_stop = 1;
    pthread_cond_signal(&c->sync_work);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->syncer, NULL);
}

int store_commit_start(const store_commit_env *env, store_commit **out, rs_err *err)
{
    *out = NULL;
    store_commit *c = calloc(1, sizeof *c);
    if (!c)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    c->env = *env;
    c->cap = 64;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->work, NULL);
    pthread_cond_init(&c->answered, NULL);
    pthread_cond_init(&c->progress, NULL);
    pthread_cond_init(&c->sync_work, NULL);
    if (!(c->batch = malloc(c->cap * sizeof *c->batch))) {
        commit_free(c);
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    }
    if (pthread_create(&c->syncer, NULL, syncer, c) != 0) {
        commit_free(c);
        return rs_err_set(err, RS_ENOMEM, "cannot start the syncer thread");
    }
    if (pthread_create(&c->thread, NULL, committer, c) != 0) {
        stop_syncer(c);
        commit_free(c);
        return rs_err_set(err, RS_ENOMEM, "cannot start the committer thread");
    }
    *out = c;
    return RS_OK;
}

int store_commit_enter(store_commit *c, rs_err *err)
{
    pthread_mutex_lock(&c->mu);
    int closing = c->closing;
    if (!closing)
        c->active++;
    pthread_mutex_unlock(&c->mu);
    return closing ? rs_err_set(err, RS_EINVAL, "the store is closing") : RS_OK;
}

void store_commit_leave(store_commit *c)
{
    pthread_mutex_lock(&c->mu);
    c->active--;
    if (c->closing && c->active == 0)
        pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&c->mu);
}

/* A committed row whose file could not be fsync'ed: the submission fails, the row goes (under mu). */
static void fail_unsynced(store_commit *c, store_pending *p)
{
    p->rc = p->sync_rc;
    p->err = p->sync_err;
    c->unsettled = 1; /* until the row is taken out it is not durable: never mark rows settled again */
    if (p->outcome == STORE_DUPLICATE || !p->tmp_name)
        return;
    if (rs_grow((void **)&c->drops, &c->cap_drops, c->n_drops, sizeof *c->drops, 8) == RS_OK)
        snprintf(c->drops[c->n_drops++], sizeof c->drops[0], "%s", p->rec->hash);
    pthread_cond_signal(&c->work);
}

int store_commit_submit(store_commit *c, store_pending *p, store_sync_fn sync, void *ctx)
{
    p->done = 0;
    p->next = NULL;
    p->rc = RS_OK;
    p->synced = 0;
    p->sync_rc = RS_OK;
    p->gen = 0;
    pthread_mutex_lock(&c->mu);
    if (c->stopped) {
        pthread_mutex_unlock(&c->mu);
        return p->rc = rs_err_set(&p->err, RS_EINVAL, "the store is closed");
    }
    if (c->tail)
        c->tail->next = p;
    else
        c->head = p;
    c->tail = p;
    pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&c->mu);
    /* the file's flush, while the committer writes and flushes the rows */
    int src = sync ? sync(ctx, &p->sync_err) : RS_OK;
    pthread_mutex_lock(&c->mu);
    p->sync_rc = src;
    p->synced = 1;
    if (p->gen) { /* taken into a batch: count down its unsynced files */
        c->ring[p->gen % RING].unsynced--;
        pthread_cond_signal(&c->progress);
    }
    while (!p->done)
        pthread_cond_wait(&c->answered, &c->mu);
    if (p->rc == RS_OK && p->sync_rc)
        fail_unsynced(c, p);
    pthread_mutex_unlock(&c->mu);
    return p->rc;
}

void store_commit_stop(store_commit *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->closing = 1;
    pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    run_drops(c);
    stop_syncer(c);
    commit_free(c);
}

void store_commit_stats_get(store_commit *c, store_commit_stats *st)
{
    pthread_mutex_lock(&c->mu);
    *st = c->stats;
    pthread_mutex_unlock(&c->mu);
}
