/*
 * assoc.h - a DICOM association over a TCP socket (PS3.8): establishment (both sides),
 * message transfer (command + optional data set, fragmented into P-DATA-TF PDUs), release
 * and abort, with timeouts on every wait.
 *
 * It sits between the PDU codec (pdu.h: bytes <-> structs) and the DIMSE services: the
 * services see whole command sets and a stream of data-set fragments, never PDUs. Data sets
 * are streamed both ways: a received one is handed to a sink fragment by fragment (C-STORE
 * writes it straight into the store), a sent one is read from a file descriptor or memory in
 * PDU-sized pieces (writev of a 12-byte header and the payload), so no whole instance is ever
 * held in memory.
 */
#ifndef ASSOC_H
#define ASSOC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/arena.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "pdu.h"

/* Outcomes of receiving besides RS_OK and errors. */
enum {
    ASSOC_RELEASED = 1, /* the peer asked for release; we answered A-RELEASE-RP */
    ASSOC_ABORTED = 2,  /* the peer sent A-ABORT (or closed the connection) */
    ASSOC_STOPPED = 3   /* the server is shutting down: we aborted an idle association */
};

#define ASSOC_OUR_MAX_PDU (256u * 1024u) /* maximum P-DATA-TF length we announce */

typedef struct assoc_pc {
    uint8_t id;
    uint8_t result;        /* enum pdu_pc_result */
    uint8_t scp_role;      /* we may act as SCP (C-STORE sub-operations of C-GET need it) */
    char abstract[65];
    char ts[65];           /* the accepted transfer syntax */
} assoc_pc;

typedef struct assoc {
    int fd;
    int timeout_ms;        /* any single wait for the peer (ARTIM while establishing) */
    uint32_t peer_max;     /* the peer's maximum PDU length (0 = unlimited) */
    char calling[17];
    char called[17];
    char peer_addr[64];    /* "host:port" for logs */
    char peer_impl_class[65];
    char peer_impl_version[17];
    assoc_pc pcs[PDU_MAX_CONTEXTS];
    unsigned n_pcs;
    /* receive state: the current P-DATA-TF PDU and how far its PDVs are consumed */
    rs_arena arena;
    uint8_t *rbuf;
    size_t rcap;
    pdu cur;
    uint32_t next_pdv;
    int closed;
    const atomic_int *stop; /* set by the server on shutdown; checked between messages (may be NULL) */
    struct net_tls *tls;   /* the association runs over TLS (tls.h); owned, closed by assoc_close */
    rs_buf wbuf;           /* TLS only: one PDU gathered for one record */
} assoc;

/*
 * What the acceptor's policy decides for an A-ASSOCIATE-RQ: either reject (result/source/reason
 * of PS3.8 table 9-21) or accept, with per-context answers filled into a->pcs.
 */
typedef struct assoc_decision {
    int reject;
    uint8_t result, source, reason;
} assoc_decision;

typedef void (*assoc_policy_fn)(void *ctx, assoc *a, const pdu_assoc *rq, assoc_decision *d);

/*
 * Acceptor: read the A-ASSOCIATE-RQ from a connected socket (within timeout_ms), let the
 * policy decide, answer AC or RJ. RS_OK with a live association; otherwise the association
 * was refused or failed (err says why) and the caller closes fd via assoc_close. stop (may be
 * NULL) becomes a->stop: once set, a peer that has not started its request is dropped at once.
 * tls (may be NULL): the connection's completed TLS session, owned by the association from here.
 */
int assoc_accept(assoc *a, int fd, struct net_tls *tls, int timeout_ms, const atomic_int *stop,
                 assoc_policy_fn policy, void *ctx, rs_err *err);

/* A proposed presentation context for assoc_request. */
typedef struct assoc_proposal {
    const char *abstract;
    const char **ts;
    unsigned n_ts;
    int want_scp_role;     /* propose SCP role too (C-GET receivers) */
} assoc_proposal;

/* Requestor: connect to host:port and negotiate; RS_OK with a live association. */
int assoc_request(assoc *a, const char *host, int port, const char *calling, const char *called,
                  const assoc_proposal *props, unsigned n_props, int timeout_ms, rs_err *err);

/* The accepted context for an abstract syntax (and transfer syntax if ts != NULL), or NULL. */
const assoc_pc *assoc_find_pc(const assoc *a, const char *abstract, const char *ts);
const assoc_pc *assoc_pc_by_id(const assoc *a, uint8_t id);

/*
 * Receive the next command set into cmd (replacing its content); *ctx_id is its presentation
 * context. Returns RS_OK, ASSOC_RELEASED, ASSOC_ABORTED, ASSOC_STOPPED (a->stop was set while
 * no message was under way) or an error (after which the association has been aborted).
 */
int assoc_recv_command(assoc *a, uint8_t *ctx_id, rs_buf *cmd, rs_err *err);

/* Receives one data-set fragment; nonzero return stops the transfer (the association is aborted). */
typedef int (*assoc_sink_fn)(void *ctx, const uint8_t *p, size_t n);

/* Receive the data set that follows a command, fragment by fragment, until its last PDV. */
int assoc_recv_data(assoc *a, uint8_t ctx_id, assoc_sink_fn sink, void *sink_ctx, rs_err *err);
/* The same into a buffer, with a size cap (C-FIND identifiers, small data sets). */
int assoc_recv_data_buf(assoc *a, uint8_t ctx_id, rs_buf *out, size_t cap, rs_err *err);

/* Send a command set, then (if data/fd given) the data set: from memory, or n bytes of fd at off. */
int assoc_send(assoc *a, uint8_t ctx_id, const rs_buf *cmd, const uint8_t *data, size_t n, rs_err *err);
int assoc_send_fd(assoc *a, uint8_t ctx_id, const rs_buf *cmd, int fd, uint64_t off, uint64_t n, rs_err *err);

/* Requestor side: A-RELEASE-RQ, wait for RP. */
int assoc_release(assoc *a, rs_err *err);
/* A-ABORT from the given source/reason (no wait). */
void assoc_abort(assoc *a, uint8_t source, uint8_t reason);
/* Close the socket and free buffers (no PDU sent). */
void assoc_close(assoc *a);

#endif
