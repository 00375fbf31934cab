/* commit.c - the committer thread and the batch it applies (see commit.h for the protocol). */
#include "commit.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store_commit {
    store_commit_env env;
    pthread_mutex_t mu;
    pthread_cond_t work;      /* committer: something queued, or an ingest ended while closing */
    pthread_cond_t answered;  /* submitters: a batch is done */
    store_pending *head, *tail;
    unsigned active;          /* ingests begun and not ended */
    int closing;
    int stopped;              /* the thread has exited: submissions are refused */
    pthread_t thread;
    store_commit_stats stats;
    store_dirset dirs;        /* object directories to fsync after the answer */
    store_pending **batch;    /* the batch being committed (committer thread only) */
    size_t cap;
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
 * Move each committed file from tmp/ to objects/. A failure here does not undo the answer:
 * the file is durable in tmp/ and readers find it there; the next store_open moves it.
 */
static void publish(store_commit *c, store_pending **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i]->rc)
            continue;
        rs_err err = {0};
        int replace = v[i]->outcome != STORE_DUPLICATE;
        if (store_blob_publish(c->env.blobs, v[i]->rec->hash, replace, &c->dirs, &err))
            store_logf(c->env.log, c->env.log_ctx, RS_LOG_ERROR, "object %s stays in tmp/ until restart: %s",
                       v[i]->rec->hash, err.msg);
    }
}

/* The index part of a batch: one transaction, one durable COMMIT. */
static int write_rows(const store_commit_env *env, store_pending **v, size_t n, rs_err *err)
{
    store_index *ix = env->ix;
    int rc = ix->ops->begin(ix, err);
    if (rc)
        return rc;
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

/* Everything a batch needs before its submitters may be answered. */
static void run_batch(store_commit *c, store_pending **v, size_t n)
{
    rs_err err = {0};
    qsort(v, n, sizeof *v, cmp_pending);
    int rc = store_blob_sync_tmp(c->env.blobs, &err);
    if (rc == RS_OK)
        rc = write_rows(&c->env, v, n, &err);
    if (rc) {
        store_logf(c->env.log, c->env.log_ctx, RS_LOG_ERROR, "batch of %zu not stored: %s", n, err.msg);
        fail_all(v, n, rc, &err);
        return;
    }
    publish(c, v, n);
}

int store_commit_apply(const store_commit_env *env, store_pending **batch, size_t n, rs_err *err)
{
    qsort(batch, n, sizeof *batch, cmp_pending);
    int rc = write_rows(env, batch, n, err);
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

/* Off the answer path: make the moves into objects/ durable, let the index tidy up. */
static void after_batch(store_commit *c)
{
    rs_err err = {0};
    if (store_blob_sync_dirs(c->env.blobs, &c->dirs, &err))
        store_logf(c->env.log, c->env.log_ctx, RS_LOG_ERROR, "%s (recovery will redo the moves)", err.msg);
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
    if (pthread_create(&c->thread, NULL, committer, c) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->work);
        pthread_cond_destroy(&c->answered);
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

int store_commit_submit(store_commit *c, store_pending *p)
{
    p->done = 0;
    p->next = NULL;
    p->rc = RS_OK;
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
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->work);
    pthread_cond_destroy(&c->answered);
    free(c);
}

void store_commit_stats_get(store_commit *c, store_commit_stats *st)
{
    pthread_mutex_lock(&c->mu);
    *st = c->stats;
    pthread_mutex_unlock(&c->mu);
}
