/*
 * http.h - radshare's HTTP server: libmicrohttpd underneath, a prefix router on top, and the
 * response helpers every web module uses (DICOMweb, the staff API, share links, the viewer).
 *
 * Model. One thread per connection (MHD_USE_THREAD_PER_CONNECTION) with a connection cap:
 * handlers may block (a STOW-RS commit waits for the group commit, a retrieve reads files)
 * without stalling other clients. HTTP/1.1 keep-alive is on.
 *
 * Routes. A module registers (method, path prefix, handler, ctx). The longest matching prefix
 * wins; a prefix ending in '/' matches everything below it, any other prefix matches exactly
 * or followed by '/' or '.'. "GET" routes also answer HEAD. A path matched by a route of
 * another method gets 405. Before a handler runs, the server has:
 *   - refused paths with "..", "." or empty segments, NUL or a missing leading '/' (400);
 *   - checked the route's access: HTTP_ROUTE_STAFF routes call the config's auth hook
 *     (without a hook: loopback peers only, 403 otherwise);
 *   - refused a Content-Length over the route's body cap (413, before reading any of it);
 *   - undone a Content-Encoding of gzip/deflate (capped: output at most max_body and at most
 *     HTTP_INFLATE_RATIO times the input, else 413), refused any other encoding (415);
 *   - read the body into memory (default routes), or fed it, chunk by chunk, to the route's
 *     body callback (HTTP_ROUTE_STREAM_BODY: STOW-RS uploads of any size, never buffered).
 * The handler then answers with exactly one http_reply_* call. Returning non-zero without
 * replying gives a 500. Handlers run on the connection's thread; ctx is shared by all threads.
 *
 * Responses. http_reply_json / http_reply_buf copy the bytes and gzip them when the client
 * accepts gzip, the type is textual (JSON, text, XML, JS, SVG) and the body is at least
 * HTTP_GZIP_MIN bytes. http_reply_stream pulls a body of unknown length through a reader
 * callback (chunked), so a whole study is never in memory. http_reply_file sends a file range
 * from an fd (sendfile where possible). Extra headers are set beforehand with http_set_header.
 * ETags: http_etag_check() answers 304 to a matching If-None-Match.
 */
#ifndef HTTP_HTTP_H
#define HTTP_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../util/buf.h"
#include "../util/err.h"

typedef struct http_server http_server;
typedef struct http_req http_req;

#define HTTP_GZIP_MIN 1024
#define HTTP_INFLATE_RATIO 200
#define HTTP_DEFAULT_MAX_BODY (1u << 20)

/* Roles the auth hook hands back (>= 0); a module may define more above HTTP_ROLE_STAFF. */
enum { HTTP_ROLE_PUBLIC = 0, HTTP_ROLE_STAFF = 1, HTTP_ROLE_ADMIN = 2 };

/*
 * Auth hook: called for HTTP_ROUTE_STAFF routes before the body is read. Return a role >= 0
 * to let the request through (http_req_role() gives it to the handler), or a refusal as a
 * negative HTTP status (-401, -403); for -401 the hook may set WWW-Authenticate with
 * http_set_header first.
 */
typedef int (*http_auth_fn)(http_req *rq, void *ctx);

typedef struct http_config {
    const char *bind_addr;   /* NULL: 127.0.0.1 */
    int port;                /* 0: pick a free one (http_server_port) */
    unsigned max_conns;      /* 0: 256 */
    unsigned timeout_s;      /* idle connection timeout; 0: 60 */
    http_auth_fn auth;       /* NULL: HTTP_ROLE_STAFF for loopback peers, 403 for others */
    void *auth_ctx;
    int log_requests;        /* one rs_log line per request */
    /* HTTPS: PEM files of the certificate (chain) and its key; both set = the port speaks TLS
       only, and every answer carries Strict-Transport-Security */
    const char *tls_cert, *tls_key;
    /* per non-loopback address (limits.h): connections (0: none of its own), requests per second
       (0: unlimited); the excess is answered 503 / 429 with Retry-After, and logged */
    unsigned max_conns_per_addr, rate_per_addr;
} http_config;

typedef int (*http_handler_fn)(http_req *rq, void *ctx);
/* Streamed request bodies: called for each chunk as it arrives (decoded if it was gzip'ed).
   Return RS_OK to go on; an error ends the upload: the rest is discarded and the handler
   runs with http_req_body_error() set. */
typedef int (*http_body_fn)(http_req *rq, const void *p, size_t n, void *ctx);

enum {
    HTTP_ROUTE_STAFF = 1,        /* needs the auth hook's approval */
    HTTP_ROUTE_STREAM_BODY = 2   /* body goes to opts.body, not into memory */
};

typedef struct http_route_opts {
    unsigned flags;
    uint64_t max_body;       /* 0: HTTP_DEFAULT_MAX_BODY */
    http_body_fn body;       /* HTTP_ROUTE_STREAM_BODY */
} http_route_opts;

int http_server_new(const http_config *cfg, http_server **out, rs_err *err);
/* Public route, body buffered up to HTTP_DEFAULT_MAX_BODY. Register before http_server_start. */
int http_server_route(http_server *s, const char *method, const char *path_prefix, http_handler_fn fn, void *ctx);
int http_server_route_opts(http_server *s, const char *method, const char *path_prefix, http_handler_fn fn,
                           void *ctx, const http_route_opts *o);
/* Bind and start serving (threads of its own). */
int http_server_start(http_server *s, rs_err *err);
int http_server_port(const http_server *s);
/* Stop accepting, end connections, join threads, free. NULL is fine. */
void http_server_free(http_server *s);
/* Prometheus lines for the HTTP side: requests by route and status, bytes out. */
int http_server_metrics(http_server *s, rs_buf *out);
/* Seconds since start. */
double http_server_uptime(const http_server *s);

/* ---- the request ------------------------------------------------------------------------------ */

const char *http_req_method(const http_req *rq);
/* Decoded path without the query ("/dicom-web/studies/1.2.3"). */
const char *http_req_path(const http_req *rq);
/* The part of the path after the route's prefix (no leading '/'). */
const char *http_req_subpath(const http_req *rq);
/* First value of a query parameter (decoded), NULL when absent. */
const char *http_req_query(const http_req *rq, const char *name);
/* Every query parameter in order (repeated names included); fn returns non-zero to stop. */
typedef int (*http_param_fn)(void *ctx, const char *name, const char *value);
int http_req_query_each(const http_req *rq, http_param_fn fn, void *ctx);
const char *http_req_header(const http_req *rq, const char *name);
/* Peer address as text ("127.0.0.1", "::1"). */
const char *http_req_peer(const http_req *rq);
int http_req_peer_is_loopback(const http_req *rq);
/* "http://host:port" as the client addressed us (Host header), for absolute URLs. */
const char *http_req_base_url(const http_req *rq);
/* Buffered body (default routes; decoded). */
void http_req_body(const http_req *rq, const void **p, size_t *n);
/* Streamed routes: the error that ended the upload (RS_OK if none), its HTTP status and text. */
int http_req_body_error(const http_req *rq, int *status, const char **msg);
/* What the auth hook answered (HTTP_ROLE_PUBLIC on public routes). */
int http_req_role(const http_req *rq);
/* Per-request state for streamed-body routes: set by the body callback, freed after the reply. */
void http_req_set_state(http_req *rq, void *state, void (*free_fn)(void *));
void *http_req_state(const http_req *rq);
/* Does Accept allow mime ("image/png")? No Accept, * / *, type/ * count as yes. */
int http_req_accepts(const http_req *rq, const char *mime);

/* ---- replies (exactly one per request) ------------------------------------------------------------ */

/* Added to the next reply. name and value are copied. */
int http_set_header(http_req *rq, const char *name, const char *value);
/* If-None-Match matches etag (given without quotes): answers 304 and returns 1; else sets ETag, returns 0. */
int http_etag_check(http_req *rq, const char *etag);

int http_reply_buf(http_req *rq, int status, const char *mime, const void *p, size_t n);
int http_reply_json(http_req *rq, int status, const rs_buf *json);
/* JSON {"error": "...", "status": N} (HTML for a browser that prefers it). */
int http_reply_error(http_req *rq, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The status that fits an RS_E* code (RS_ENOTFOUND 404, RS_EINVAL/RS_EFORMAT 400, RS_ELIMIT 413, ...). */
int http_status_for(int rs_code);

/*
 * Streamed body: read(ctx, buf, max) fills up to max bytes and returns how many, 0 at the end,
 * negative on error (the connection is then cut: the client sees a truncated body, not a
 * valid one). free_fn(ctx) runs when the response is done (NULL: nothing).
 */
typedef ssize_t (*http_read_fn)(void *ctx, uint8_t *buf, size_t max);
int http_reply_stream(http_req *rq, int status, const char *mime, http_read_fn read, void *ctx,
                      void (*free_fn)(void *));
/* len bytes of fd from off; the fd is taken over (closed when done, or now on failure). */
int http_reply_file(http_req *rq, int status, const char *mime, int fd, uint64_t off, uint64_t len);

/* ---- small shared helpers --------------------------------------------------------------------------- */

/* Append s as a JSON string literal (quotes included). */
int http_json_str(rs_buf *b, const char *s);
/* Split path into at most max segments at '/', in place; returns the count or -1 when more. */
int http_split_path(char *path, char **seg, int max);

#endif
