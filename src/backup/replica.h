/*
 * replica.h - a second radshare (or any Storage SCP) kept as a live replica over DICOM: every
 * indexed instance the peer has not acknowledged yet is sent with C-STORE (net/scu.h), in
 * received order, from the object files. What the peer acknowledged is remembered per peer in
 * DATA/replica.sqlite, so each run only sends what is new; in follow mode the index is polled
 * and new instances go out within the interval.
 *
 * Like backup, it runs beside `radshare serve` on the same data directory: it reads the index
 * through its own read-only connection (catalog.h) and the objects through the blob layer, and
 * takes no lock.
 */
#ifndef BACKUP_REPLICA_H
#define BACKUP_REPLICA_H

#include <stdint.h>

#include "../net/server.h"
#include "../util/err.h"

/* Follow mode's pause between passes: nonzero = stop now. */
typedef int (*replica_wait_fn)(void *ctx, int seconds);

typedef struct replica_opts {
    const char *aet;         /* our (calling) AE title; NULL: RADSHARE */
    int timeout_ms;          /* any wait for the peer; 0: 60 s */
    int resend;              /* forget what the peer acknowledged: send everything again */
    int follow;              /* keep polling until wait says stop */
    int interval_s;          /* follow: seconds between passes; 0: 5 */
    replica_wait_fn wait;    /* follow: required */
    void *wait_ctx;
    int quiet;
} replica_opts;

typedef struct replica_report {
    uint64_t indexed;        /* versions in the index (last pass) */
    uint64_t sent;           /* acknowledged by the peer (all passes) */
    uint64_t failed;         /* refused by the peer or unreadable here: sent again next pass */
    uint64_t passes;
} replica_report;

/*
 * One pass (or, with follow, passes until wait says stop). RS_OK when every instance is on the
 * peer; RS_EIO when the peer cannot be reached (follow: logged, retried next pass); failed > 0
 * when some were refused.
 */
int replica_run(const char *datadir, const net_peer *peer, const replica_opts *o, replica_report *rep, rs_err *err);

#endif
