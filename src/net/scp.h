/*
 * scp.h - the DIMSE services radshare offers on an accepted association: C-ECHO, C-STORE
 * (streamed into the store, answered only once durable), C-FIND, C-MOVE, C-GET and C-CANCEL.
 * The server (server.c) accepts and negotiates; this file serves messages until release.
 */
#ifndef NET_SCP_H
#define NET_SCP_H

#include "assoc.h"
#include "server.h"

struct store;

typedef struct scp_ctx {
    struct store *store;
    const net_config *cfg;
    unsigned long long assoc_id;
    unsigned services; /* NET_SVC_* the peer may use; others are refused with 0124H */
} scp_ctx;

/* Fill a->pcs results/transfer syntaxes for the contexts of an A-ASSOCIATE-RQ. */
void scp_negotiate(assoc *a, const pdu_assoc *rq);
/* Serve messages until the peer releases or aborts, or an error. */
void scp_serve(const scp_ctx *ctx, assoc *a);

#endif
