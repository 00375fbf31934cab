/* commit.c - the committer thread and the batch it applies (see commit.h for the protocol). */
#include "commit.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the committer keeps of an answered submission, to move its file after the answer. */
typedef struct store_move {
    char hash[STORE_HASH_HEX + 1];
    char name[STORE_TMP_NAME];
    int replace;
} store_move;

struct store_commit {
    store_commit_env env;
    pthread_mutex_t mu;
    pthread_cond_t work;      /* committer: something queued, or an ingest ended while closing */
    pthread_cond_t answered;  /* submitters: a batch is done */
    pthread_cond_t synced;    /* committer: a submitter's fsync returned */
    store_pending *head, *tail;
    unsigned active;          /* ingests begun and not ended */
    int closing;
    int stopped;              /* the thread has exited: submissions are refused */
    pthread_t thread;
    store_commit_stats stats;
    store_dirset dirs;        /* object directories to fsync after the answer */
    store_pending **batch;    /* the batch being committed (committer thread only) */
    size_t cap;
    store_move *moves;        /* the batch's files to move into objects/ after the answer */
    size_t n_moves, cap_moves;
    int unsettled;            /* a move or directory sync failed: stop marking rows settled */
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
 * The index part of a batch: one transaction, one durable COMMIT. settle: every row committed
 * before this batch has its file durable in objects/ (see commit.h), say so in the same
 * transaction.
 */
static int write_rows(const store_commit_env *env, store_pending **v, size_t n, int settle, rs_err *err)
{
    store_index *ix = env->ix;
    int rc = ix->ops->begin(ix, err);
    if (rc == RS_OK && settle)
        rc = ix->ops->settle(ix, err);
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

/* Wait until every submitter of the batch has had its file fsync'ed. */
static void wait_synced(store_commit *c, store_pending **v, size_t n)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++)
        while (v[i]->tmp_name && !v[i]->synced)
            pthread_cond_wait(&c->synced, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

/*
 * A file whose fsync failed is not durable: its submission fails, and a row the batch gave it
 * is taken out again (until that is committed the row is unsettled, which the next store_open
 * repairs).
 */
static void undo_unsynced(store_commit *c, store_pending **v, size_t n)
{
    store_index *ix = c->env.ix;
    int opened = 0, rc = RS_OK;
    rs_err err = {0};
    for (size_t i = 0; i < n; i++) {
        if (!v[i]->tmp_name || v[i]->sync_rc == RS_OK || v[i]->rc)
            continue;
        v[i]->rc = v[i]->sync_rc;
        v[i]->err = v[i]->sync_err;
        if (v[i]->outcome == STORE_DUPLICATE || rc)
            continue;
        if (!opened)
            rc = ix->ops->begin(ix, &err);
        opened = 1;
        if (rc == RS_OK)
            rc = ix->ops->drop(ix, v[i]->rec->hash, &err);
        store_blob_remove(c->env.blobs, v[i]->rec->hash);
    }
    if (opened && rc == RS_OK)
        rc = ix->ops->commit(ix, &err);
    if (rc) {
        ix->ops->rollback(ix);
        c->unsettled = 1;
        store_logf(c->env.log, c->env.log_ctx, RS_LOG_ERROR, "cannot remove the rows of unsynced files: %s "
                   "(the next start does)", err.msg);
    }
}

/* Forget the tmp/ names of the submissions that failed (all of them: all = 1). */
static void unpend(store_commit *c, store_pending **v, size_t n, int all)
{
    for (size_t i = 0; i < n; i++)
        if (v[i]->tmp_name && (all || v[i]->rc))
            store_blob_pending(c->env.blobs, v[i]->rec->hash, NULL);
}

/* Everything a batch needs before its submitters may be answered. */
static void run_batch(store_commit *c, store_pending **v, size_t n)
{
    rs_err err = {0};
    qsort(v, n, sizeof *v, cmp_pending);
    int rc = RS_OK;
    /* readers may see a row as soon as COMMIT returns: make its file findable before */
    for (size_t i = 0; i < n && rc == RS_OK; i++)
        if (v[i]->tmp_name && store_blob_pending(c->env.blobs, v[i]->rec->hash, v[i]->tmp_name))
            rc = rs_err_set(&err, RS_ENOMEM, "out of memory");
    if (rc == RS_OK)
        rc = write_rows(&c->env, v, n, !c->unsettled, &err);
    if (rc == RS_OK) {
        plan_moves(c, v, n);
        publish(c);
    }
    wait_synced(c, v, n);
    if (rc) {
        store_logf(c->env.log, c->env.log_ctx, RS_LOG_ERROR, "batch of %zu not stored: %s", n, err.msg);
        fail_all(v, n, rc, &err);
        unpend(c, v, n, 1);
        return;
    }
    undo_unsynced(c, v, n);
    unpend(c, v, n, 0);
}

int store_commit_apply(const store_commit_env *env, store_pending **batch, size_t n, rs_err *err)
{
    qsort(batch, n, sizeof *batch, cmp_pending);
    /* objects already in place: each batch settles the ones before it */
    int rc = write_rows(env, batch, n, 1, err);
    if (rc)
        fail_all(batch, n, rc, err);
    return rc;
}

/* ---- the thread ---------------------------------------------------------------------------------- */

/* Detach up to the batch array's capacity from the queue (FIFO order; run_batch sorts). */
static size_t take_queue(store_commit *c)
{
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
    size_t n = 0;
    while (c->head && n < c->cap) {
        c->batch[n++] = c->head;
        c->head = c->head->next;
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

/*
 * Off the answer path: make the moves into objects/ durable (the next batch marks their rows
 * settled), keep the pool of tmp/ slots filled, let the index tidy up.
 */
static void after_batch(store_commit *c)
{
    rs_err err = {0};
    if (store_blob_sync_dirs(c->env.blobs, &c->dirs, &err)) {
        c->unsettled = 1;
        store_logf(c->env.log, c->env.log_ctx, RS_LOG_ERROR, "%s (recovery will redo the moves)", err.msg);
    }
    if (store_blobs_refill(c->env.blobs, &err))
        store_logf(c->env.log, c->env.log_ctx, RS_LOG_WARN, "cannot refill the pool of tmp/ files: %s", err.msg);
    if (c->env.ix->ops->maintain)
        c->env.ix->ops->maintain(c->env.ix);
}

static void *committer(void *arg)
{
    store_commit *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->head && !(c->closing && c->active == 0))
            pthread_cond_wait(&c->work, &c->mu);
        if (!c->head)
            break;
        size_t n = take_queue(c);
        pthread_mutex_unlock(&c->mu);
        run_batch(c, c->batch, n);
        answer(c, c->batch, n);
        after_batch(c);
        pthread_mutex_lock(&c->mu);
    }
    c->stopped = 1;
    pthread_cond_broadcast(&c->answered);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int store_commit_start(const store_commit_env *env, store_commit **out, rs_err *err)
{
    *out = NULL;
    store_commit *c = calloc(1, sizeof *c);
    if (!c)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    c->env = *env;
    c->cap = 64;
    if (!(c->batch = malloc(c->cap * sizeof *c->batch))) {
        free(c);
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->work, NULL);
    pthread_cond_init(&c->answered, NULL);
    pthread_cond_init(&c->synced, NULL);
    if (pthread_create(&c->thread, NULL, committer, c) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->work);
        pthread_cond_destroy(&c->answered);
        pthread_cond_destroy(&c->synced);
        free(c->batch);
        free(c);
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

int store_commit_submit(store_commit *c, store_pending *p, store_sync_fn sync, void *ctx)
{
    p->done = 0;
    p->next = NULL;
    p->rc = RS_OK;
    p->synced = 0;
    p->sync_rc = RS_OK;
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
    pthread_cond_signal(&c->synced);
    while (!p->done)
        pthread_cond_wait(&c->answered, &c->mu);
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
    store_dirset_free(&c->dirs);
    free(c->batch);
    free(c->moves);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->work);
    pthread_cond_destroy(&c->answered);
    pthread_cond_destroy(&c->synced);
    free(c);
}

void store_commit_stats_get(store_commit *c, store_commit_stats *st)
{
    pthread_mutex_lock(&c->mu);
    *st = c->stats;
    pthread_mutex_unlock(&c->mu);
}
