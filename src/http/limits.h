/*
 * limits.h - per-address admission for the HTTP server: how many connections one client
 * address may hold, and how many requests per second it may make (a token bucket: a burst of
 * 4 s worth, refilled at the rate). One host that opens hundreds of connections or hammers the
 * share links must not take the server from everyone else; its excess gets a clear answer (503
 * or 429 with Retry-After) instead of a reset, and the rest keep being served.
 *
 * Loopback is exempt, as from the DICOM per-address limit: on the server itself are the
 * operator's tools and a local reverse proxy (which then applies its own limits per client).
 * Addresses are tracked in a fixed table (HTTP_LIMITS_SLOTS); an address that finds no slot
 * is admitted (fail open: the global connection limit still holds) and counted.
 */
#ifndef HTTP_LIMITS_H
#define HTTP_LIMITS_H

#include <stdint.h>

struct sockaddr;

#define HTTP_LIMITS_SLOTS 4096

typedef struct http_limits_config {
    unsigned max_conns;   /* per address; 0: no limit */
    unsigned rate;        /* requests per second per address; 0: no limit */
} http_limits_config;

typedef struct http_limits http_limits;
typedef struct http_limits_conn http_limits_conn;

http_limits *http_limits_new(const http_limits_config *cfg);
void http_limits_free(http_limits *l);

/* A connection opened / closed; NULL (exempt, untracked) is a valid handle. */
http_limits_conn *http_limits_open(http_limits *l, const struct sockaddr *sa);
void http_limits_close(http_limits *l, http_limits_conn *c);

/*
 * May this connection make a request now? 0 yes; 503 the address holds too many connections and
 * this is one of the excess; 429 it is over its request rate. *retry_after: seconds to wait.
 * *log: this refusal should be logged (at most one line a second per address).
 */
int http_limits_admit(http_limits *l, http_limits_conn *c, unsigned *retry_after, int *log);

/* Refusals so far (metrics): connections over the per-address count, requests over the rate. */
void http_limits_counts(http_limits *l, uint64_t *conn_refused, uint64_t *rate_refused, uint64_t *untracked);

#endif
