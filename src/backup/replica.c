/*
 * replica.c - see replica.h.
 *
 * DATA/replica.sqlite: sent(peer, hash), one row per object the peer answered with a success
 * or warning status. peer is "AET@HOST:PORT": another machine under the same AE title is
 * another replica. The record is an optimisation, not a trust anchor: losing it (or --resend)
 * only costs sending again, which the peer answers as duplicates. It is not in backups for the
 * same reason.
 *
 * A pass lists every indexed version in received order and sends the ones not recorded, in
 * associations of at most PDU_MAX_CONTEXTS (class, syntax) pairs: a prefix of what is pending,
 * so the order (which makes versions on the peer) is kept across associations.
 */
#include "replica.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../net/dimse.h"
#include "../net/scu.h"
#include "../store/blobstore.h"
#include "../store/store.h"
#include "../util/log.h"
#include "../util/progress.h"
#include "../util/vec.h"
#include "catalog.h"

#define RECORD_EVERY 256 /* acknowledged objects per transaction of the record */

typedef struct item_list {
    net_scu_item *v;
    size_t n, cap;
} item_list;

typedef struct replica {
    const char *data;
    const net_peer *peer;
    const replica_opts *o;
    replica_report *rep;
    char key[300];           /* "AET@HOST:PORT" */
    sqlite3 *db;             /* DATA/replica.sqlite */
    sqlite3_stmt *has, *put;
    store_blobs *blobs;
    unsigned unrecorded;     /* rows in the open transaction */
} replica;

static int db_err(replica *r, rs_err *err, const char *what)
{
    return rs_err_set(err, RS_EIO, "%s/replica.sqlite: %s: %s", r->data, what, sqlite3_errmsg(r->db));
}

static int record_open(replica *r, rs_err *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/replica.sqlite", r->data) >= (int)sizeof path)
        return rs_err_set(err, RS_EINVAL, "path too long");
    if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK)
        return db_err(r, err, "open");
    sqlite3_busy_timeout(r->db, 10000);
    if (sqlite3_exec(r->db,
                     "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS sent(peer TEXT NOT NULL, hash TEXT NOT "
                     "NULL, PRIMARY KEY(peer, hash)) WITHOUT ROWID",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db, "SELECT 1 FROM sent WHERE peer = ?1 AND hash = ?2", -1, &r->has, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(r->db, "INSERT OR IGNORE INTO sent(peer, hash) VALUES (?1, ?2)", -1, &r->put, NULL) !=
            SQLITE_OK)
        return db_err(r, err, "schema");
    if (r->o->resend) {
        sqlite3_stmt *del = NULL;
        int ok = sqlite3_prepare_v2(r->db, "DELETE FROM sent WHERE peer = ?1", -1, &del, NULL) == SQLITE_OK;
        ok = ok && sqlite3_bind_text(del, 1, r->key, -1, SQLITE_STATIC) == SQLITE_OK && sqlite3_step(del) == SQLITE_DONE;
        sqlite3_finalize(del);
        if (!ok)
            return db_err(r, err, "forgetting what was sent");
    }
    return RS_OK;
}

static int record_flush(replica *r, rs_err *err)
{
    if (!r->unrecorded)
        return RS_OK;
    r->unrecorded = 0;
    return sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? RS_OK : db_err(r, err, "commit");
}

static int record_sent(replica *r, const char *hash, rs_err *err)
{
    if (!r->unrecorded && sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_err(r, err, "begin");
    r->unrecorded++;
    sqlite3_bind_text(r->put, 1, r->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(r->put, 2, hash, -1, SQLITE_STATIC);
    int ok = sqlite3_step(r->put) == SQLITE_DONE;
    sqlite3_reset(r->put);
    if (!ok)
        return db_err(r, err, "insert");
    return r->unrecorded >= RECORD_EVERY ? record_flush(r, err) : RS_OK;
}

static int was_sent(replica *r, const char *hash)
{
    sqlite3_bind_text(r->has, 1, r->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(r->has, 2, hash, -1, SQLITE_STATIC);
    int yes = sqlite3_step(r->has) == SQLITE_ROW;
    sqlite3_reset(r->has);
    return yes;
}

typedef struct list_ctx {
    replica *r;
    item_list *pending;
} list_ctx;

static int list_one(void *vctx, const char *hash, const char *sop_uid, const char *sop_class, const char *ts)
{
    list_ctx *c = vctx;
    c->r->rep->indexed++;
    if (was_sent(c->r, hash))
        return RS_OK;
    item_list *l = c->pending;
    if (rs_grow((void **)&l->v, &l->cap, l->n, sizeof *l->v, 1024))
        return RS_ENOMEM;
    net_scu_item *it = &l->v[l->n++];
    snprintf(it->hash, sizeof it->hash, "%s", hash);
    snprintf(it->sop_uid, sizeof it->sop_uid, "%s", sop_uid);
    snprintf(it->sop_class, sizeof it->sop_class, "%s", sop_class);
    snprintf(it->ts, sizeof it->ts, "%s", ts);
    return RS_OK;
}

/* What the peer does not have yet, as far as the record knows, in received order. */
static int list_pending(replica *r, item_list *pending, rs_err *err)
{
    backup_catalog *cat = NULL;
    list_ctx c = {.r = r, .pending = pending};
    r->rep->indexed = 0;
    pending->n = 0;
    int rc = backup_catalog_open(r->data, &cat, err);
    if (rc == RS_OK)
        rc = backup_catalog_each_instance(cat, list_one, &c, err);
    backup_catalog_close(cat);
    return rc == RS_ENOMEM ? rs_err_set(err, rc, "out of memory") : rc;
}

/* How many of items (a prefix) fit one association: at most PDU_MAX_CONTEXTS distinct pairs. */
static size_t batch_len(const net_scu_item *v, size_t n)
{
    const net_scu_item *pairs[PDU_MAX_CONTEXTS];
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t k = 0; k < np && !seen; k++)
            seen = !strcmp(pairs[k]->sop_class, v[i].sop_class) && !strcmp(pairs[k]->ts, v[i].ts);
        if (!seen && np == PDU_MAX_CONTEXTS)
            return i;
        if (!seen)
            pairs[np++] = &v[i];
    }
    return n;
}

/* One instance from its object file; the peer's status, or -1 (err says why). */
static int send_one(replica *r, assoc *a, const assoc_pc *pc, const net_scu_item *it, uint16_t msg_id, rs_err *err)
{
    int fd = -1;
    uint64_t off = 0, len = 0;
    int rc = store_blob_open(r->blobs, it->hash, &fd, err);
    if (rc == RS_OK)
        rc = store_dataset_span(fd, &off, &len, err);
    int status = rc ? -1 : net_scu_store(a, pc, it, msg_id, NULL, 0, fd, off, NULL, len, err);
    if (fd >= 0)
        close(fd);
    return status;
}

/* Send v[0..n) over one association. RS_EIO: the peer could not be reached or went away. */
static int send_batch(replica *r, const net_scu_item *v, size_t n, rs_progress *prog, rs_err *err)
{
    const char *aet = r->o->aet ? r->o->aet : "RADSHARE";
    int timeout = r->o->timeout_ms ? r->o->timeout_ms : 60000;
    assoc a;
    rs_err e;
    rs_err_clear(&e);
    if (net_scu_open(&a, r->peer->host, r->peer->port, aet, r->peer->aet, v, n, timeout, &e) != RS_OK) {
        assoc_close(&a);
        return rs_err_set(err, RS_EIO, "cannot replicate to %s: %s", r->key, e.msg);
    }
    int rc = RS_OK;
    for (size_t i = 0; i < n && rc == RS_OK; i++) {
        const assoc_pc *pc = net_scu_context(&a, &v[i]);
        rs_err_clear(&e);
        int st = pc ? send_one(r, &a, pc, &v[i], (uint16_t)(i % 0xFFFF + 1), &e) : -2;
        const char *cls = st >= 0 ? dimse_status_class((uint16_t)st) : "";
        if (st >= 0 && (!strcmp(cls, "success") || !strcmp(cls, "warning"))) {
            r->rep->sent++;
            rc = record_sent(r, v[i].hash, err);
        } else {
            r->rep->failed++;
            if (st == -2)
                rs_log(RS_LOG_WARN, "replica %s: %s not sent: the peer accepts no context for class %s in %s",
                       r->key, v[i].sop_uid, v[i].sop_class, v[i].ts);
            else if (st >= 0)
                rs_log(RS_LOG_WARN, "replica %s: %s refused with status %04X", r->key, v[i].sop_uid, (unsigned)st);
            else
                rs_log(RS_LOG_WARN, "replica %s: %s not sent: %s", r->key, v[i].sop_uid, e.msg);
            if (st == -1 && a.closed)
                rc = rs_err_set(err, RS_EIO, "replica %s: the association ended: %s", r->key, e.msg);
        }
        rs_progress_add(prog, 1, 0);
    }
    net_scu_close(&a);
    int frc = record_flush(r, rc ? NULL : err);
    return rc ? rc : frc;
}

static int one_pass(replica *r, item_list *pending, rs_err *err)
{
    int rc = list_pending(r, pending, err);
    r->rep->passes++;
    if (rc || !pending->n)
        return rc;
    rs_progress prog;
    rs_progress_begin(&prog, "replica", pending->n, r->o->quiet);
    for (size_t done = 0; done < pending->n && rc == RS_OK;) {
        size_t n = batch_len(pending->v + done, pending->n - done);
        rc = send_batch(r, pending->v + done, n, &prog, err);
        done += n;
    }
    rs_progress_end(&prog);
    return rc;
}

int replica_run(const char *datadir, const net_peer *peer, const replica_opts *o, replica_report *rep, rs_err *err)
{
    memset(rep, 0, sizeof *rep);
    replica r = {.data = datadir, .peer = peer, .o = o, .rep = rep};
    item_list pending = {0};
    snprintf(r.key, sizeof r.key, "%s@%s:%d", peer->aet, peer->host, peer->port);
    if (o->follow && !o->wait)
        return rs_err_set(err, RS_EINVAL, "follow mode needs a wait function");
    int rc = record_open(&r, err);
    if (rc == RS_OK)
        rc = store_blobs_open(datadir, 0, &r.blobs, err);
    while (rc == RS_OK) {
        uint64_t before = rep->sent, failed = rep->failed;
        rs_err e;
        rs_err_clear(&e);
        int prc = one_pass(&r, &pending, &e);
        if (!o->follow) {
            if (prc)
                *err = e;
            rc = prc;
            break;
        }
        if (prc)
            rs_log(RS_LOG_WARN, "replica %s: %s; trying again in %d s", r.key, e.msg, o->interval_s ? o->interval_s : 5);
        else if (rep->sent != before || rep->failed != failed)
            rs_log(RS_LOG_INFO, "replica %s: %llu sent, %llu failed", r.key, (unsigned long long)(rep->sent - before),
                   (unsigned long long)(rep->failed - failed));
        if (o->wait(o->wait_ctx, o->interval_s ? o->interval_s : 5))
            break;
    }
    free(pending.v);
    store_blobs_close(r.blobs);
    sqlite3_finalize(r.has);
    sqlite3_finalize(r.put);
    if (r.db)
        sqlite3_close(r.db);
    return rc;
}
