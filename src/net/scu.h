/*
 * scu.h - radshare as a Storage SCU: sending stored instances with C-STORE. Used by C-MOVE and
 * C-GET (scp.c: sub-operations, on a new association to the move destination or on the
 * requesting one) and by the live replica (backup/replica.c: every instance another radshare
 * does not have yet). Both send the stored file's data set as it is, from the object file.
 */
#ifndef NET_SCU_H
#define NET_SCU_H

#include <stddef.h>
#include <stdint.h>

#include "assoc.h"

/* One stored instance to send. */
typedef struct net_scu_item {
    char sop_uid[65];
    char sop_class[65];
    char ts[65];    /* the stored transfer syntax */
    char hash[65];  /* the object's name */
} net_scu_item;

/*
 * Open an association from `calling` to `called` at host:port proposing one presentation context
 * per distinct (class, stored transfer syntax) of items, at most PDU_MAX_CONTEXTS; items beyond
 * that find no context (net_scu_context gives NULL) and need another association.
 */
int net_scu_open(assoc *a, const char *host, int port, const char *calling, const char *called,
                 const net_scu_item *items, size_t n, int timeout_ms, rs_err *err);

/* The accepted context for an item in its stored syntax, or NULL. */
const assoc_pc *net_scu_context(const assoc *a, const net_scu_item *it);

/*
 * One C-STORE-RQ on context pc and its response: the data set is len bytes of fd at off, or (fd
 * < 0) the len bytes at data. orig_ae (may be NULL): the C-MOVE originator. Returns the peer's
 * status (0 success, PS3.7 C.4.2 codes), or -1 when nothing came back (err says why; the
 * association may be closed: a->closed).
 */
int net_scu_store(assoc *a, const assoc_pc *pc, const net_scu_item *it, uint16_t msg_id, const char *orig_ae,
                  uint16_t orig_id, int fd, uint64_t off, const uint8_t *data, uint64_t len, rs_err *err);

/* Release (abort if that fails) and close. */
void net_scu_close(assoc *a);

#endif
