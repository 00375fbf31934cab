/*
 * server.h - the DICOM listener of `radshare serve`: accepts connections, applies the peer
 * policy, and runs each association on a thread of its own (scp.c serves the messages).
 *
 * Who may talk to it: a peer on a loopback address may use every service under any AE title (so
 * the stock tools work out of the box); a peer from any other address must be configured with
 * its AE title and an address that matches, and must call our AE title. Refusals are logged
 * and answered with the A-ASSOCIATE-RJ codes of PS3.8. A configured peer may further be limited
 * to some services (a modality that stores but must not query): a request for another one is
 * answered "Refused: Not Authorized" (0124H) on the accepted association, and logged.
 */
#ifndef NET_SERVER_H
#define NET_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"

struct store;

/* Services a remote peer may use (C-ECHO is always allowed once associated). */
enum {
    NET_SVC_STORE = 1u << 0,
    NET_SVC_FIND = 1u << 1,
    NET_SVC_MOVE = 1u << 2,
    NET_SVC_GET = 1u << 3,
    NET_SVC_ALL = (1u << 4) - 1,
};

typedef struct net_peer {
    char aet[17];
    char host[256];
    int port;
    unsigned services; /* NET_SVC_* */
} net_peer;

typedef struct net_config {
    char aet[17];              /* our AE title */
    const char *bind_addr;     /* NULL = all addresses */
    int port;
    unsigned max_assocs;       /* concurrent associations; the excess is rejected (transient) */
    unsigned max_per_addr;     /* of them from one non-loopback address (0: no limit of its own) */
    int timeout_ms;            /* ARTIM and DIMSE idle timeout */
    const net_peer *peers;
    unsigned n_peers;
    int log_level;
    /* DICOM over TLS on a port of its own (0: none), same policy; tls_ca set = client
       certificates required and checked against it (tls.h) */
    int tls_port;
    const char *tls_cert, *tls_key, *tls_ca;
} net_config;

typedef struct net_server net_server;

/* Bind and listen. The store must outlive the server. */
int net_server_start(const net_config *cfg, struct store *st, net_server **out, rs_err *err);
/* Accept until net_server_stop (or a fatal error); then waits for running associations. */
int net_server_run(net_server *s);
/* Ask the loop to stop: async-signal-safe (writes to a pipe). */
void net_server_stop(net_server *s);
void net_server_free(net_server *s);
/* The bound ports (useful with port 0); the TLS one is 0 when there is none. */
int net_server_port(const net_server *s);
int net_server_tls_port(const net_server *s);

/* A configured peer by AE title, NULL if unknown. */
const net_peer *net_config_peer(const net_config *cfg, const char *aet);

/* "AET=HOST:PORT[/SERVICES]" where SERVICES is a comma list of store, find, move, get
 * (default: all), as given to --peer and in the config file. "[::1]" hosts are accepted. */
int net_peer_parse(const char *spec, net_peer *p);
/* "store,find" for a NET_SVC_* mask (for logs). */
const char *net_services_str(unsigned services, char *buf, size_t cap);

#endif
