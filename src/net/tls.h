/*
 * tls.h - DICOM over TLS (PS3.15 Annex B, the BCP 195 profiles DCMTK uses by default): the
 * server side of a TLS connection under an association.
 *
 * assoc.c reads and writes through these functions when an association runs over TLS and
 * straight on the socket otherwise; nothing above assoc.c knows the difference. A TLS
 * association is a DICOM association like any other: the same peer policy applies, plus, when
 * a CA is configured, a client certificate that chains to it (mutual authentication, what
 * PS3.15 B.1 asks of nodes that exchange patient data).
 *
 * The socket stays blocking with SO_RCVTIMEO/SO_SNDTIMEO set to the association timeout, so a
 * peer that stops in the middle of a TLS record cannot hold a thread forever.
 */
#ifndef NET_TLS_H
#define NET_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "../util/err.h"

typedef struct net_tls_ctx net_tls_ctx; /* certificate, key, trust: one per listener */
typedef struct net_tls net_tls;         /* one connection */

/*
 * cert/key: PEM files of our certificate (chain) and private key. ca: PEM file of the CAs
 * whose client certificates are accepted; NULL accepts clients without a certificate.
 * TLS 1.2 or later only.
 */
int net_tls_ctx_new(const char *cert, const char *key, const char *ca, net_tls_ctx **out, rs_err *err);
void net_tls_ctx_free(net_tls_ctx *c);

/* Server handshake on a connected socket, bounded by timeout_ms. */
int net_tls_accept(net_tls_ctx *c, int fd, int timeout_ms, net_tls **out, rs_err *err);
/* What the handshake agreed, and who the client is ("-" without a certificate), for logs. */
void net_tls_describe(const net_tls *t, char *buf, size_t cap);

/* Like recv/send: bytes moved, 0 for a closed connection (read), -1 with errno on failure. */
ssize_t net_tls_read(net_tls *t, void *p, size_t n);
ssize_t net_tls_write(net_tls *t, const void *p, size_t n);
/* Bytes already decrypted and waiting: poll() on the socket would not see them. */
int net_tls_pending(const net_tls *t);
/* Send close_notify (without waiting for the peer's) and free. NULL is fine. */
void net_tls_close(net_tls *t);

#endif
