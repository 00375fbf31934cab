/*
 * http.c - the HTTP server (see http.h): libmicrohttpd's access handler turned into routed
 * requests with checked paths, access control, capped (and possibly inflated) bodies, and the
 * reply helpers.
 *
 * libmicrohttpd calls the access handler several times per request: once with the headers
 * (we route, authorise and check Content-Length then), once per body chunk, once at the end
 * (the handler runs). A refusal found in the first call is queued at once, so an oversized
 * upload is answered without reading it; one found later (an inflated body over its cap) is
 * remembered, the rest of the body is discarded without being kept, and answered at the end.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "../util/addr.h"
#include "../util/log.h"
#include "limits.h"

#define MAX_ROUTES 64
#define MAX_STATUSES 16
#define STREAM_BLOCK (256u << 10)
#define INFLATE_CHUNK (64u << 10)
#define DRAIN_MAX ((uint64_t)1 << 30)  /* body bytes discarded after a refusal before the connection is cut */

typedef struct status_count {
    int status;
    uint64_t n;
} status_count;

typedef struct route {
    char method[12];
    char *prefix;
    size_t plen;
    http_handler_fn fn;
    void *ctx;
    http_route_opts o;
    status_count counts[MAX_STATUSES];
} route;

struct http_server {
    http_config cfg;
    char bind[64];
    struct MHD_Daemon *d;
    int listen_fd;
    int port;
    route routes[MAX_ROUTES];
    size_t n_routes;
    route unrouted;               /* counts for requests no route took */
    pthread_mutex_t mu;           /* the counters */
    struct timespec started;
    rs_buf tls_cert, tls_key;     /* HTTPS: PEM text, kept for the daemon's lifetime */
    http_limits *limits;          /* per-address connections and request rate (limits.h) */
};

struct http_req {
    http_server *srv;
    struct MHD_Connection *c;
    char method[16];
    char *path;
    const char *sub;
    route *rt;
    int role;
    char peer[INET6_ADDRSTRLEN + 8];
    int peer_loopback;                 /* rs_addr_is_loopback of the client's address */
    char base[300];
    /* body */
    rs_buf body;
    uint64_t raw_in, decoded, cap;
    z_stream z;
    int zmode;            /* 0 none, 1 inflating, 2 inflate finished */
    int body_rc, body_status;
    char body_msg[200];
    /* reply */
    rs_buf hdrs;          /* name\0value\0 pairs */
    char etag[160];
    int replied, status;
    void *state;
    void (*state_free)(void *);
};

/* ---- small helpers ------------------------------------------------------------------------------- */

int http_json_str(rs_buf *b, const char *s)
{
    int rc = rs_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p && rc == RS_OK; p++) {
        if (*p == '"' || *p == '\\')
            rc = rs_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            rc = rs_buf_printf(b, "\\u%04x", *p);
        else
            rc = rs_buf_putc(b, *p);
    }
    return rc ? rc : rs_buf_putc(b, '"');
}

int http_split_path(char *path, char **seg, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == max)
            return -1;
        seg[n++] = t;
    }
    return n;
}

int http_status_for(int rs_code)
{
    switch (rs_code) {
    case RS_OK: return 200;
    case RS_ENOTFOUND: return 404;
    case RS_EINVAL:
    case RS_EFORMAT:
    case RS_ETRUNC: return 400;
    case RS_ELIMIT: return 413;
    case RS_EUNSUPPORTED: return 415;
    case RS_ENOMEM: return 503;
    default: return 500;
    }
}

static const char *reason(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return status >= 500 ? "Server Error" : "Error";
    }
}

/* ---- server ---------------------------------------------------------------------------------------- */

int http_server_new(const http_config *cfg, http_server **out, rs_err *err)
{
    http_server *s = calloc(1, sizeof *s);
    if (!s)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    s->cfg = *cfg;
    snprintf(s->bind, sizeof s->bind, "%s", cfg->bind_addr && *cfg->bind_addr ? cfg->bind_addr : "127.0.0.1");
    if (!s->cfg.max_conns)
        s->cfg.max_conns = 256;
    if (!s->cfg.timeout_s)
        s->cfg.timeout_s = 60;
    s->listen_fd = -1;
    snprintf(s->unrouted.method, sizeof s->unrouted.method, "-");
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return RS_OK;
}

int http_server_route_opts(http_server *s, const char *method, const char *path_prefix, http_handler_fn fn,
                           void *ctx, const http_route_opts *o)
{
    if (s->n_routes == MAX_ROUTES || strlen(method) >= sizeof s->routes[0].method || path_prefix[0] != '/')
        return RS_ELIMIT;
    route *r = &s->routes[s->n_routes];
    memset(r, 0, sizeof *r);
    if (!(r->prefix = strdup(path_prefix)))
        return RS_ENOMEM;
    snprintf(r->method, sizeof r->method, "%s", method);
    r->plen = strlen(path_prefix);
    r->fn = fn;
    r->ctx = ctx;
    if (o)
        r->o = *o;
    if (!r->o.max_body)
        r->o.max_body = HTTP_DEFAULT_MAX_BODY;
    s->n_routes++;
    return RS_OK;
}

int http_server_route(http_server *s, const char *method, const char *path_prefix, http_handler_fn fn, void *ctx)
{
    return http_server_route_opts(s, method, path_prefix, fn, ctx, NULL);
}

static int prefix_match(const route *r, const char *path)
{
    if (strncmp(path, r->prefix, r->plen))
        return 0;
    char next = path[r->plen];
    return r->prefix[r->plen - 1] == '/' || next == 0 || next == '/' || next == '.';
}

/* Longest prefix with the right method; *other: some route of another method matched. */
static route *find_route(http_server *s, const char *method, const char *path, int *other)
{
    route *best = NULL;
    *other = 0;
    for (size_t i = 0; i < s->n_routes; i++) {
        route *r = &s->routes[i];
        if (!prefix_match(r, path))
            continue;
        int same = !strcmp(r->method, method) || (!strcmp(r->method, "GET") && !strcmp(method, "HEAD"));
        if (!same) {
            *other = 1;
            continue;
        }
        if (!best || r->plen > best->plen)
            best = r;
    }
    return best;
}

static void count_status(http_server *s, route *r, int status)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < MAX_STATUSES; i++) {
        status_count *c = &r->counts[i];
        if (c->status == status || c->status == 0 || i == MAX_STATUSES - 1) {
            c->status = c->status ? c->status : status;
            c->n++;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

static int route_metrics(const route *r, rs_buf *out)
{
    int rc = RS_OK;
    for (int i = 0; i < MAX_STATUSES && r->counts[i].status && rc == RS_OK; i++)
        rc = rs_buf_printf(out, "radshare_http_requests_total{route=\"%s %s\",status=\"%d\"} %llu\n", r->method,
                           r->prefix ? r->prefix : "(none)", r->counts[i].status,
                           (unsigned long long)r->counts[i].n);
    return rc;
}

int http_server_metrics(http_server *s, rs_buf *out)
{
    int rc = rs_buf_puts(out, "# HELP radshare_http_requests_total HTTP requests answered, by route and status.\n"
                              "# TYPE radshare_http_requests_total counter\n");
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_routes && rc == RS_OK; i++)
        rc = route_metrics(&s->routes[i], out);
    if (rc == RS_OK)
        rc = route_metrics(&s->unrouted, out);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

double http_server_uptime(const http_server *s)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - s->started.tv_sec) + (now.tv_nsec - s->started.tv_nsec) / 1e9;
}

int http_server_port(const http_server *s)
{
    return s->port;
}

/* ---- the request ------------------------------------------------------------------------------------ */

const char *http_req_method(const http_req *rq) { return rq->method; }
const char *http_req_path(const http_req *rq) { return rq->path; }
const char *http_req_subpath(const http_req *rq) { return rq->sub ? rq->sub : ""; }
const char *http_req_peer(const http_req *rq) { return rq->peer; }
const char *http_req_base_url(const http_req *rq) { return rq->base; }
int http_req_role(const http_req *rq) { return rq->role; }
void *http_req_state(const http_req *rq) { return rq->state; }

void http_req_set_state(http_req *rq, void *state, void (*free_fn)(void *))
{
    rq->state = state;
    rq->state_free = free_fn;
}

const char *http_req_query(const http_req *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->c, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_req_header(const http_req *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->c, MHD_HEADER_KIND, name);
}

typedef struct each_ctx {
    http_param_fn fn;
    void *ctx;
    int stopped;
} each_ctx;

static enum MHD_Result each_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    each_ctx *e = cls;
    if (e->fn(e->ctx, key, value ? value : ""))
        e->stopped = 1;
    return e->stopped ? MHD_NO : MHD_YES;
}

int http_req_query_each(const http_req *rq, http_param_fn fn, void *ctx)
{
    each_ctx e = {fn, ctx, 0};
    MHD_get_connection_values(rq->c, MHD_GET_ARGUMENT_KIND, each_param, &e);
    return e.stopped;
}

void http_req_body(const http_req *rq, const void **p, size_t *n)
{
    *p = rq->body.p ? rq->body.p : (const uint8_t *)"";
    *n = rq->body.len;
}

int http_req_body_error(const http_req *rq, int *status, const char **msg)
{
    if (status)
        *status = rq->body_status;
    if (msg)
        *msg = rq->body_msg;
    return rq->body_rc;
}

int http_req_peer_is_loopback(const http_req *rq)
{
    return rq->peer_loopback;
}

/* Is there an entry of the comma list hdr (its part before ';') that match() takes, with q not 0? */
static int list_find(const char *hdr, int (*match)(const char *e, size_t n, const char *arg), const char *arg)
{
    for (const char *p = hdr; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *next = p + strcspn(p, ",");
        size_t n = strcspn(p, ",;");
        while (n && p[n - 1] == ' ')
            n--;
        int zero = 0;
        for (const char *q = p + n; q < next; q++)
            if (q[0] == 'q' && q[1] == '=' && (q[-1] == ';' || q[-1] == ' '))
                zero = strtod(q + 2, NULL) == 0;
        if (n && !zero && match(p, n, arg))
            return 1;
        p = next;
    }
    return 0;
}

static int match_mime(const char *e, size_t n, const char *mime)
{
    size_t tlen = strcspn(mime, "/");
    return (n == 3 && !strncmp(e, "*/*", 3)) || (n == tlen + 2 && !strncasecmp(e, mime, tlen + 1) && e[tlen + 1] == '*') ||
           (n == strlen(mime) && !strncasecmp(e, mime, n));
}

static int match_token(const char *e, size_t n, const char *tok)
{
    return (n == 1 && e[0] == '*') || (n == strlen(tok) && !strncasecmp(e, tok, n));
}

/* The media range list of Accept allows mime? (q=0 entries do not count.) */
int http_req_accepts(const http_req *rq, const char *mime)
{
    const char *a = http_req_header(rq, "Accept");
    return !a || !*a || list_find(a, match_mime, mime);
}

static int accepts_gzip(const http_req *rq)
{
    const char *a = http_req_header(rq, "Accept-Encoding");
    return a && list_find(a, match_token, "gzip");
}

/* ---- replies ---------------------------------------------------------------------------------------- */

int http_set_header(http_req *rq, const char *name, const char *value)
{
    int rc = rs_buf_append(&rq->hdrs, name, strlen(name) + 1);
    return rc ? rc : rs_buf_append(&rq->hdrs, value, strlen(value) + 1);
}

static int etag_listed(const char *inm, const char *etag)
{
    if (!strcmp(inm, "*"))
        return 1;
    size_t n = strlen(etag);
    for (const char *p = inm; (p = strstr(p, etag)); p++)
        if (p > inm && p[-1] == '"' && (p[n] == '"' || !strncmp(p + n, "-gzip\"", 6)))
            return 1;
    return 0;
}

static int queue(http_req *rq, int status, struct MHD_Response *r, int gz)
{
    if (!r)
        return RS_ENOMEM;
    const uint8_t *h = rq->hdrs.p;
    for (size_t off = 0; h && off < rq->hdrs.len;) {
        const char *name = (const char *)h + off, *value = name + strlen(name) + 1;
        MHD_add_response_header(r, name, value);
        off = (size_t)(value + strlen(value) + 1 - (const char *)h);
    }
    if (rq->etag[0]) {
        char tag[180];
        snprintf(tag, sizeof tag, "\"%s%s\"", rq->etag, gz ? "-gzip" : "");
        MHD_add_response_header(r, "ETag", tag);
    }
    if (gz)
        MHD_add_response_header(r, "Content-Encoding", "gzip");
    if (rq->srv->tls_cert.len) /* a browser that came once over HTTPS never falls back to plain HTTP */
        MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
    enum MHD_Result ok = MHD_queue_response(rq->c, (unsigned)status, r);
    MHD_destroy_response(r);
    if (ok != MHD_YES)
        return RS_EIO;
    rq->replied = 1;
    rq->status = status;
    count_status(rq->srv, rq->rt ? rq->rt : &rq->srv->unrouted, status);
    return RS_OK;
}

int http_etag_check(http_req *rq, const char *etag)
{
    snprintf(rq->etag, sizeof rq->etag, "%s", etag);
    const char *inm = http_req_header(rq, "If-None-Match");
    if (!inm || !etag_listed(inm, etag))
        return 0;
    queue(rq, 304, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT), 0);
    return 1;
}

static int compressible(const char *mime)
{
    return !strncmp(mime, "text/", 5) || strstr(mime, "json") || strstr(mime, "xml") || strstr(mime, "javascript") ||
           strstr(mime, "svg");
}

static int gzip_buf(const void *p, size_t n, rs_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return RS_ENOMEM;
    uLong bound = deflateBound(&z, (uLong)n);
    int rc = rs_buf_reserve(out, bound);
    if (rc == RS_OK) {
        z.next_in = (Bytef *)p;
        z.avail_in = (uInt)n;
        z.next_out = out->p;
        z.avail_out = (uInt)bound;
        rc = deflate(&z, Z_FINISH) == Z_STREAM_END ? RS_OK : RS_EIO;
        out->len = z.total_out;
    }
    deflateEnd(&z);
    return rc;
}

int http_reply_buf(http_req *rq, int status, const char *mime, const void *p, size_t n)
{
    rs_buf gz = RS_BUF_INIT;
    int zip = 0;
    if (n >= HTTP_GZIP_MIN && n <= UINT32_MAX && compressible(mime)) {
        http_set_header(rq, "Vary", "Accept-Encoding");
        zip = accepts_gzip(rq) && gzip_buf(p, n, &gz) == RS_OK;
    }
    struct MHD_Response *r = zip ? MHD_create_response_from_buffer(gz.len, gz.p, MHD_RESPMEM_MUST_COPY)
                                 : MHD_create_response_from_buffer(n, (void *)p, MHD_RESPMEM_MUST_COPY);
    rs_buf_free(&gz);
    if (r)
        MHD_add_response_header(r, "Content-Type", mime);
    return queue(rq, status, r, zip);
}

int http_reply_json(http_req *rq, int status, const rs_buf *json)
{
    return http_reply_buf(rq, status, "application/json", json->p ? json->p : (const uint8_t *)"", json->len);
}

int http_reply_error(http_req *rq, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rs_buf b = RS_BUF_INIT;
    int html = !http_req_accepts(rq, "application/json") && http_req_accepts(rq, "text/html");
    int rc;
    if (html) {
        rc = rs_buf_printf(&b, "<!doctype html><title>%d %s</title><h1>%d %s</h1><p>", status, reason(status), status,
                           reason(status));
        for (const char *c = msg; *c && rc == RS_OK; c++)
            rc = *c == '<' ? rs_buf_puts(&b, "&lt;") : *c == '&' ? rs_buf_puts(&b, "&amp;") : rs_buf_putc(&b, *c);
        rc = rc ? rc : rs_buf_puts(&b, "</p>\n");
    } else {
        rc = rs_buf_puts(&b, "{\"error\": ");
        rc = rc ? rc : http_json_str(&b, msg);
        rc = rc ? rc : rs_buf_printf(&b, ", \"status\": %d}\n", status);
    }
    rq->etag[0] = 0;
    http_set_header(rq, "Cache-Control", "no-store");
    rc = rc ? rc : http_reply_buf(rq, status, html ? "text/html; charset=utf-8" : "application/json", b.p, b.len);
    rs_buf_free(&b);
    return rc;
}

typedef struct stream_ctx {
    http_read_fn read;
    void *ctx;
    void (*free_fn)(void *);
} stream_ctx;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_ctx *sc = cls;
    ssize_t n = sc->read(sc->ctx, (uint8_t *)buf, max);
    return n > 0 ? n : n == 0 ? (ssize_t)MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
    stream_ctx *sc = cls;
    if (sc->free_fn)
        sc->free_fn(sc->ctx);
    free(sc);
}

int http_reply_stream(http_req *rq, int status, const char *mime, http_read_fn read, void *ctx,
                      void (*free_fn)(void *))
{
    stream_ctx *sc = malloc(sizeof *sc);
    if (!sc) {
        if (free_fn)
            free_fn(ctx);
        return RS_ENOMEM;
    }
    *sc = (stream_ctx){read, ctx, free_fn};
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, sc,
                                                               stream_free);
    if (!r) {
        stream_free(sc);
        return RS_ENOMEM;
    }
    MHD_add_response_header(r, "Content-Type", mime);
    return queue(rq, status, r, 0);
}

int http_reply_file(http_req *rq, int status, const char *mime, int fd, uint64_t off, uint64_t len)
{
    struct MHD_Response *r = MHD_create_response_from_fd_at_offset64(len, fd, off);
    if (!r) {
        close(fd);
        return RS_ENOMEM;
    }
    MHD_add_response_header(r, "Content-Type", mime);
    return queue(rq, status, r, 0);
}

/* ---- the access handler ------------------------------------------------------------------------------- */

static int path_ok(const char *p)
{
    if (p[0] != '/')
        return 0;
    for (const char *s = p + 1;; ) {
        size_t n = strcspn(s, "/");
        if ((n == 0 && s[n] == '/') || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return 0;
        if (!s[n])
            return 1;
        s += n + 1;
    }
}

static void set_peer(http_req *rq)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(rq->c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(rq->peer, sizeof rq->peer, "?");
    rq->peer_loopback = 0;
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    rq->peer_loopback = rs_addr_is_loopback(sa);
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, rq->peer, sizeof rq->peer);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, rq->peer, sizeof rq->peer);
}

static void set_base(http_req *rq)
{
    const char *h = http_req_header(rq, "Host");
    if (h && *h && strlen(h) < 256 && strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") == strlen(h))
        snprintf(rq->base, sizeof rq->base, "%s://%s", rq->srv->tls_cert.len ? "https" : "http", h);
    else
        snprintf(rq->base, sizeof rq->base, "%s://%s:%d", rq->srv->tls_cert.len ? "https" : "http", rq->srv->bind,
                 rq->srv->port);
}

static int default_auth(http_req *rq)
{
    return http_req_peer_is_loopback(rq) ? HTTP_ROLE_STAFF : -403;
}

/* Content-Encoding of the body: none, or an inflater set up. RS_EUNSUPPORTED for others. */
static int setup_encoding(http_req *rq)
{
    const char *ce = http_req_header(rq, "Content-Encoding");
    if (!ce || !*ce || !strcasecmp(ce, "identity"))
        return RS_OK;
    int wbits = !strcasecmp(ce, "gzip") || !strcasecmp(ce, "x-gzip") ? 15 + 16 : !strcasecmp(ce, "deflate") ? 15 + 32 : 0;
    if (!wbits)
        return RS_EUNSUPPORTED;
    if (inflateInit2(&rq->z, wbits) != Z_OK)
        return RS_ENOMEM;
    rq->zmode = 1;
    return RS_OK;
}

/* The per-address limits: an excess connection gets 503, a request over the rate 429. */
static int over_limits(http_req *rq)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(rq->c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    unsigned retry;
    int log;
    int status = http_limits_admit(rq->srv->limits, ci ? ci->socket_context : NULL, &retry, &log);
    if (!status)
        return 0;
    char v[16];
    snprintf(v, sizeof v, "%u", retry);
    http_set_header(rq, "Retry-After", v);
    if (status == 503)
        http_set_header(rq, "Connection", "close");
    if (log)
        rs_log(RS_LOG_WARN, "http: %s refused (%d): %s", rq->peer, status,
               status == 503 ? "too many connections from this address" : "too many requests from this address");
    http_reply_error(rq, status, "%s; retry in %u s",
                     status == 503 ? "too many connections from your address" : "too many requests from your address",
                     retry);
    return 1;
}

/* Routing, path, access, declared size, encoding: anything refused is answered now. */
static void admit(http_req *rq, const char *url)
{
    http_server *s = rq->srv;
    int other = 0;
    if (over_limits(rq))
        return;
    if (!path_ok(url)) {
        http_reply_error(rq, 400, "malformed path");
        return;
    }
    rq->rt = find_route(s, rq->method, url, &other);
    if (!rq->rt) {
        if (other)
            http_reply_error(rq, 405, "method %s not allowed on %s", rq->method, url);
        else
            http_reply_error(rq, 404, "no such resource: %s", url);
        return;
    }
    rq->sub = rq->path + rq->rt->plen;
    while (*rq->sub == '/')
        rq->sub++;
    if (rq->rt->o.flags & HTTP_ROUTE_STAFF) {
        int role = s->cfg.auth ? s->cfg.auth(rq, s->cfg.auth_ctx) : default_auth(rq);
        if (role < 0) {
            http_reply_error(rq, -role, role == -401 ? "authentication required" : "access refused from %s", rq->peer);
            return;
        }
        rq->role = role;
    }
    rq->cap = rq->rt->o.max_body;
    const char *cl = http_req_header(rq, "Content-Length");
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno || *end || v > rq->cap) {
            http_set_header(rq, "Connection", "close");
            http_reply_error(rq, 413, "request body of %s bytes is over this resource's limit of %llu bytes", cl,
                             (unsigned long long)rq->cap);
            return;
        }
    }
    int rc = setup_encoding(rq);
    if (rc)
        http_reply_error(rq, rc == RS_EUNSUPPORTED ? 415 : 503, "Content-Encoding \"%s\" is not supported (gzip, deflate are)",
                         http_req_header(rq, "Content-Encoding"));
}

static void body_fail(http_req *rq, int rc, int status, const char *msg)
{
    if (rq->body_rc)
        return;
    rq->body_rc = rc;
    rq->body_status = status;
    snprintf(rq->body_msg, sizeof rq->body_msg, "%s", msg);
}

/* Decoded body bytes: to the route's body callback or into memory, within the cap. */
static void deliver(http_req *rq, const void *p, size_t n)
{
    rq->decoded += n;
    if (rq->decoded > rq->cap) {
        body_fail(rq, RS_ELIMIT, 413, "request body is over this resource's limit");
        return;
    }
    int rc;
    if (rq->rt->o.flags & HTTP_ROUTE_STREAM_BODY) {
        rc = rq->rt->o.body(rq, p, n, rq->rt->ctx);
        if (rc)
            body_fail(rq, rc, http_status_for(rc), "upload refused");
    } else if (rs_buf_append(&rq->body, p, n)) {
        body_fail(rq, RS_ENOMEM, 503, "out of memory");
    }
}

static void inflate_some(http_req *rq, const void *p, size_t n)
{
    uint8_t out[INFLATE_CHUNK];
    rq->z.next_in = (Bytef *)p;
    rq->z.avail_in = (uInt)n;
    while (!rq->body_rc && rq->z.avail_in && rq->zmode == 1) {
        rq->z.next_out = out;
        rq->z.avail_out = sizeof out;
        int zr = inflate(&rq->z, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            body_fail(rq, RS_EFORMAT, 400, "request body is not valid gzip/deflate data");
            return;
        }
        size_t got = sizeof out - rq->z.avail_out;
        if (rq->decoded + got > (uint64_t)HTTP_INFLATE_RATIO * rq->raw_in + INFLATE_CHUNK) {
            body_fail(rq, RS_ELIMIT, 413, "compressed request body expands more than the allowed ratio (a bomb?)");
            return;
        }
        if (got)
            deliver(rq, out, got);
        if (zr == Z_STREAM_END)
            rq->zmode = 2;
        else if (zr == Z_BUF_ERROR && !got)
            break;
    }
    if (rq->zmode == 2 && rq->z.avail_in)
        body_fail(rq, RS_EFORMAT, 400, "data after the end of the compressed body");
}

/* A refused body is answered at once when libmicrohttpd lets us (it then closes the connection). */
static void answer_early(http_req *rq)
{
    if (rq->rt->o.flags & HTTP_ROUTE_STREAM_BODY)
        rq->rt->fn(rq, rq->rt->ctx); /* the handler reports what was done before the refusal */
    else
        http_reply_error(rq, rq->body_status, "%s", rq->body_msg);
}

static enum MHD_Result feed(http_req *rq, const char *p, size_t n)
{
    rq->raw_in += n;
    if (!rq->body_rc && rq->raw_in > rq->cap)
        body_fail(rq, RS_ELIMIT, 413, "request body is over this resource's limit");
    if (rq->body_rc)
        return rq->raw_in > rq->cap + DRAIN_MAX ? MHD_NO : MHD_YES; /* discard; cut a flood */
    if (rq->zmode)
        inflate_some(rq, p, n);
    else
        deliver(rq, p, n);
    if (rq->body_rc)
        answer_early(rq);
    return MHD_YES;
}

/* The path as logs may show it: a share link's token is a secret (issue 5), "/s/TOKEN/x" -> "/s/-/x". */
static const char *log_path(const char *path, char *out, size_t cap)
{
    if (strncmp(path, "/s/", 3))
        return path;
    const char *rest = strchr(path + 3, '/');
    snprintf(out, cap, "/s/-%s", rest ? rest : "");
    return out;
}

static void finish(http_req *rq)
{
    if (rq->zmode == 1 && !rq->body_rc && rq->raw_in)
        body_fail(rq, RS_ETRUNC, 400, "compressed request body is truncated");
    if (rq->body_rc && !(rq->rt->o.flags & HTTP_ROUTE_STREAM_BODY)) {
        http_reply_error(rq, rq->body_status, "%s", rq->body_msg);
        return;
    }
    int rc = rq->rt->fn(rq, rq->rt->ctx);
    if (!rq->replied) {
        char lp[512];
        rs_log(RS_LOG_WARN, "http: %s %s: handler %s", rq->method, log_path(rq->path, lp, sizeof lp),
               rc ? rs_strerror(rc) : "gave no reply");
        http_reply_error(rq, 500, "internal error");
    }
}

static http_req *req_new(http_server *s, struct MHD_Connection *c, const char *url, const char *method)
{
    http_req *rq = calloc(1, sizeof *rq);
    if (!rq || !(rq->path = strdup(url))) {
        free(rq);
        return NULL;
    }
    rq->srv = s;
    rq->c = c;
    snprintf(rq->method, sizeof rq->method, "%s", method);
    set_peer(rq);
    set_base(rq);
    return rq;
}

static void req_free(http_req *rq)
{
    if (rq->state_free)
        rq->state_free(rq->state);
    if (rq->zmode)
        inflateEnd(&rq->z);
    rs_buf_free(&rq->body);
    rs_buf_free(&rq->hdrs);
    free(rq->path);
    free(rq);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
    http_server *s = cls;
    http_req *rq = *con_cls;
    if (!rq) {
        if (!(rq = req_new(s, c, url, method)))
            return MHD_NO;
        *con_cls = rq;
        admit(rq, url);
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (!rq->replied)
            return feed(rq, upload_data, n);
        rq->raw_in += n; /* answered already: discarded, a flood is cut */
        return rq->raw_in > rq->cap + DRAIN_MAX ? MHD_NO : MHD_YES;
    }
    if (!rq->replied)
        finish(rq);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    http_server *s = cls;
    http_req *rq = *con_cls;
    if (!rq)
        return;
    char lp[512];
    if (s->cfg.log_requests)
        rs_log(RS_LOG_INFO, "http: %s %s %s -> %d%s", rq->peer, rq->method, log_path(rq->path, lp, sizeof lp), rq->status,
               toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (cut)");
    req_free(rq);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        *socket_context = http_limits_open(s->limits, ci ? ci->client_addr : NULL);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        http_limits_close(s->limits, *socket_context);
        *socket_context = NULL;
    }
}

static int listen_on(http_server *s, rs_err *err)
{
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", s->cfg.port);
    int g = getaddrinfo(s->bind, port, &hints, &ai);
    if (g)
        return rs_err_set(err, RS_EINVAL, "HTTP bind address %s: %s", s->bind, gai_strerror(g));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    int rc = RS_OK;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) || bind(fd, ai->ai_addr, ai->ai_addrlen) ||
        listen(fd, 128))
        rc = rs_err_set(err, RS_EIO, "HTTP listen on %s port %d: %s", s->bind, s->cfg.port, strerror(errno));
    int family = ai->ai_family;
    freeaddrinfo(ai);
    if (rc) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    s->port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    s->listen_fd = fd;
    return family == AF_INET6 ? 1 : RS_OK;
}

/* A PEM file into memory (libmicrohttpd takes certificates as text), NUL-terminated. */
static int read_pem(const char *path, const char *what, rs_buf *out, rs_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rs_err_set(err, RS_EIO, "HTTPS %s %s: %s", what, path, strerror(errno));
    char chunk[4096];
    size_t n;
    int rc = RS_OK;
    while (rc == RS_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = out->len + n > (1u << 20) ? rs_err_set(err, RS_ELIMIT, "HTTPS %s %s: over 1 MiB", what, path)
             : rs_buf_append(out, chunk, n) ? rs_err_set(err, RS_ENOMEM, "out of memory") : RS_OK;
    fclose(f);
    if (rc == RS_OK && (!out->len || !strstr((const char *)out->p, "-----BEGIN ")))
        rc = rs_err_set(err, RS_EINVAL, "HTTPS %s %s: not a PEM file", what, path);
    return rc;
}

int http_server_start(http_server *s, rs_err *err)
{
    int tls = s->cfg.tls_cert || s->cfg.tls_key;
    if (tls && (!s->cfg.tls_cert || !s->cfg.tls_key))
        return rs_err_set(err, RS_EINVAL, "HTTPS needs both a certificate and a key (--https-cert, --https-key)");
    if (tls && !MHD_is_feature_supported(MHD_FEATURE_TLS))
        return rs_err_set(err, RS_EUNSUPPORTED, "this libmicrohttpd was built without TLS");
    int rc = tls ? read_pem(s->cfg.tls_cert, "certificate", &s->tls_cert, err) : RS_OK;
    rc = rc ? rc : tls ? read_pem(s->cfg.tls_key, "key", &s->tls_key, err) : RS_OK;
    if (rc)
        return rc;
    http_limits_config lc = {.max_conns = s->cfg.max_conns_per_addr, .rate = s->cfg.rate_per_addr};
    if (!(s->limits = http_limits_new(&lc)))
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    int v6 = listen_on(s, err);
    if (v6 < 0)
        return v6;
    clock_gettime(CLOCK_MONOTONIC, &s->started);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0) | (tls ? MHD_USE_TLS : 0);
    struct MHD_OptionItem opts[4] = {{MHD_OPTION_END, 0, NULL}}, *o = opts;
    if (tls) {
        *o++ = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert.p};
        *o++ = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key.p};
    }
    *o = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                            MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->listen_fd,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->cfg.max_conns,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg.timeout_s,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256u << 10),
                            MHD_OPTION_END);
    if (!s->d) {
        close(s->listen_fd);
        s->listen_fd = -1;
        return rs_err_set(err, RS_EIO, "cannot start the HTTP%s server on %s port %d%s", tls ? "S" : "", s->bind,
                          s->port, tls ? " (is the key the certificate's?)" : "");
    }
    rs_log(RS_LOG_INFO, "HTTP%s listening on %s port %d", tls ? "S" : "", s->bind, s->port);
    return RS_OK;
}

void http_server_free(http_server *s)
{
    if (!s)
        return;
    if (s->d)
        MHD_stop_daemon(s->d); /* closes the listening socket too */
    else if (s->listen_fd >= 0)
        close(s->listen_fd);
    for (size_t i = 0; i < s->n_routes; i++)
        free(s->routes[i].prefix);
    http_limits_free(s->limits);
    rs_buf_free(&s->tls_cert);
    if (s->tls_key.p)
        explicit_bzero(s->tls_key.p, s->tls_key.cap); /* the private key */
    rs_buf_free(&s->tls_key);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
