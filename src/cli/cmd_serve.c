/*
 * cmd_serve.c - `radshare serve`: the archive server. Opens the store in the data directory and
 * runs the DICOM listener and the HTTP server (DICOMweb, staff API, viewer; web_start) until
 * SIGTERM or SIGINT, after which in-flight stores finish and it exits cleanly.
 *
 * Configuration comes from the command line and/or a config file of `key = value` lines with
 * the same names as the long options (`peer` may repeat); the command line wins.
 * Signals are taken by a thread of their own with sigwait(), so no handler and no global.
 */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../http/api.h"
#include "../http/assets.h"
#include "../http/dicomweb.h"
#include "../http/http.h"
#include "../http/selfsigned.h"
#include "../net/server.h"
#include "../share/routes.h"
#include "../dicom/writer.h"
#include "../report/routes.h"
#include "../report/service.h"
#include "../store/store.h"
#include "../util/log.h"
#include "cli.h"

#define MAX_PEERS 256

typedef struct serve_opts {
    char data[4096];
    char aet[17];
    char bind[256];
    int dicom_port;
    int tls_port;
    char tls_cert[4096], tls_key[4096], tls_ca[4096];
    char https_cert[4096], https_key[4096];
    unsigned max_assocs;
    unsigned max_per_addr;
    int timeout_s;
    net_peer peers[MAX_PEERS];
    unsigned n_peers;
    int http_port;              /* 0: no HTTP server */
    int http_port_given;        /* set explicitly: failing to bind it is fatal */
    char http_bind[256];
    unsigned http_max_conns;
    unsigned http_per_addr, http_rate;   /* per-address HTTP connections, requests/s (0: none) */
    int https_self_signed;      /* no certificate given: make one in DATA/tls/ */
    uint64_t stow_max_bytes;
    char report_kv[5][1024];   /* public-url, smtp, mail-from, hl7, directory (report module) */
} serve_opts;

static void serve_usage(FILE *to)
{
    fprintf(to,
            "usage: radshare serve [options]\n"
            "  --data DIR              data directory (default ./radshare-data)\n"
            "  --aet AET               our AE title (default RADSHARE)\n"
            "  --dicom-port N          DICOM port (default 11112)\n"
            "  --bind ADDR             listen on this address only (default: all)\n"
            "  --peer AET=HOST:PORT[/SERVICES]\n"
            "                          a known DICOM peer (C-MOVE destination, remote access), repeatable;\n"
            "                          SERVICES limits what it may do from a remote address: store,find,move,get\n"
            "  --dicom-tls-port N      DICOM over TLS on this port too (default: none)\n"
            "  --tls-cert FILE         PEM certificate (chain) for DICOM TLS\n"
            "  --tls-key FILE          PEM private key for DICOM TLS\n"
            "  --tls-ca FILE           PEM CAs: DICOM TLS clients must present a certificate they signed\n"
            "  --max-associations N    concurrent associations (default 64)\n"
            "  --max-associations-per-address N\n"
            "                          of them from one remote address (default 16, 0: no own limit)\n"
            "  --timeout S             seconds to wait for a peer (default 60)\n"
            "  --http-port N           HTTP port: DICOMweb, API, viewer (default 8080; 0: no HTTP)\n"
            "  --http-bind ADDR        HTTP listen address (default 127.0.0.1)\n"
            "  --https-cert FILE --https-key FILE\n"
            "                          PEM certificate and key: the HTTP port speaks HTTPS only (with HSTS)\n"
            "  --https-self-signed     without --https-cert: HTTPS with a certificate made in DATA/tls/ on first start\n"
            "  --http-max-connections N  concurrent HTTP connections (default 256)\n"
            "  --http-max-connections-per-address N\n"
            "                          of them from one non-loopback address (default 32, 0: no own limit); 503\n"
            "  --http-rate-per-address N  requests per second from one non-loopback address, bursts of 4 s\n"
            "                          worth (default 200, 0: unlimited); 429 with Retry-After above it\n"
            "  --stow-max-bytes N      largest STOW-RS request body (default 4294967296)\n"
            "  --public-url URL        the address share links carry (https://... makes cookies Secure)\n"
            "  --smtp smtp://HOST:PORT --mail-from ADDR --hl7 HOST:PORT --directory FILE\n"
            "                          report delivery by e-mail and HL7 (docs/report.md)\n"
            "  --config FILE           read `key = value` lines with the names above\n");
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return RS_EINVAL;
    *out = v;
    return RS_OK;
}

/* Apply one option by name; used by both the command line and the config file. */
static int apply(serve_opts *o, const char *key, const char *val)
{
    long v;
    if (!strcmp(key, "data"))
        return snprintf(o->data, sizeof o->data, "%s", val) < (int)sizeof o->data ? RS_OK : RS_EINVAL;
    if (!strcmp(key, "aet")) {
        size_t n = strlen(val);
        if (n == 0 || n > 16)
            return RS_EINVAL;
        memcpy(o->aet, val, n + 1);
        return RS_OK;
    }
    if (!strcmp(key, "bind"))
        return snprintf(o->bind, sizeof o->bind, "%s", val) < (int)sizeof o->bind ? RS_OK : RS_EINVAL;
    if (!strcmp(key, "dicom-port")) {
        if (parse_int(val, 0, 65535, &v))
            return RS_EINVAL;
        o->dicom_port = (int)v;
        return RS_OK;
    }
    if (!strcmp(key, "dicom-tls-port")) {
        if (parse_int(val, 0, 65535, &v))
            return RS_EINVAL;
        o->tls_port = (int)v;
        return RS_OK;
    }
    struct {
        const char *key;
        char *dst;
    } paths[] = {{"tls-cert", o->tls_cert}, {"tls-key", o->tls_key}, {"tls-ca", o->tls_ca},
                 {"https-cert", o->https_cert}, {"https-key", o->https_key}};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (!strcmp(key, paths[i].key))
            return snprintf(paths[i].dst, sizeof o->tls_cert, "%s", val) < (int)sizeof o->tls_cert ? RS_OK : RS_EINVAL;
    if (!strcmp(key, "max-associations-per-address")) {
        if (parse_int(val, 0, 100000, &v))
            return RS_EINVAL;
        o->max_per_addr = (unsigned)v;
        return RS_OK;
    }
    if (!strcmp(key, "max-associations")) {
        if (parse_int(val, 1, 100000, &v))
            return RS_EINVAL;
        o->max_assocs = (unsigned)v;
        return RS_OK;
    }
    if (!strcmp(key, "timeout")) {
        if (parse_int(val, 1, 86400, &v))
            return RS_EINVAL;
        o->timeout_s = (int)v;
        return RS_OK;
    }
    if (!strcmp(key, "http-port")) {
        if (parse_int(val, 0, 65535, &v))
            return RS_EINVAL;
        o->http_port = (int)v;
        o->http_port_given = 1;
        return RS_OK;
    }
    if (!strcmp(key, "http-bind"))
        return snprintf(o->http_bind, sizeof o->http_bind, "%s", val) < (int)sizeof o->http_bind ? RS_OK : RS_EINVAL;
    if (!strcmp(key, "https-self-signed")) {
        o->https_self_signed = !val || !strcmp(val, "yes") || !strcmp(val, "true") || !strcmp(val, "1");
        return o->https_self_signed || !strcmp(val, "no") || !strcmp(val, "false") || !strcmp(val, "0") ? RS_OK
                                                                                                        : RS_EINVAL;
    }
    if (!strcmp(key, "http-max-connections-per-address") || !strcmp(key, "http-rate-per-address")) {
        if (parse_int(val, 0, 1000000, &v))
            return RS_EINVAL;
        *(!strcmp(key, "http-rate-per-address") ? &o->http_rate : &o->http_per_addr) = (unsigned)v;
        return RS_OK;
    }
    if (!strcmp(key, "http-max-connections")) {
        if (parse_int(val, 1, 100000, &v))
            return RS_EINVAL;
        o->http_max_conns = (unsigned)v;
        return RS_OK;
    }
    if (!strcmp(key, "stow-max-bytes")) {
        if (parse_int(val, 1, LONG_MAX, &v))
            return RS_EINVAL;
        o->stow_max_bytes = (uint64_t)v;
        return RS_OK;
    }
    if (!strcmp(key, "peer")) {
        if (o->n_peers == MAX_PEERS)
            return RS_ELIMIT;
        return net_peer_parse(val, &o->peers[o->n_peers++]);
    }
    static const char *const report_keys[5] = {"public-url", "smtp", "mail-from", "hl7", "directory"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(key, report_keys[i]))
            return snprintf(o->report_kv[i], sizeof o->report_kv[i], "%s", val) < (int)sizeof o->report_kv[i] ? RS_OK : RS_EINVAL;
    return RS_ENOTFOUND;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

static int read_config(serve_opts *o, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "radshare serve: %s: %s\n", path, strerror(errno));
        return RS_EIO;
    }
    char line[1024];
    int lineno = 0, rc = RS_OK;
    while (rc == RS_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *l = trim(line);
        if (!*l || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        if (!eq) {
            fprintf(stderr, "radshare serve: %s:%d: expected key = value\n", path, lineno);
            rc = RS_EINVAL;
            break;
        }
        *eq = 0;
        const char *key = trim(l), *val = trim(eq + 1);
        int r = apply(o, key, val);
        if (r) {
            fprintf(stderr, "radshare serve: %s:%d: %s '%s'\n", path, lineno,
                    r == RS_ENOTFOUND ? "unknown setting" : "bad value for", key);
            rc = RS_EINVAL;
        }
    }
    fclose(f);
    return rc;
}

/* The web side: the HTTP server with DICOMweb, the staff API and the viewer's files. */
typedef struct web {
    http_server *http;
    dicomweb *dw;
    api_ctx api;
    share_web *sw;
    report_web *rw;
    http_selfsigned tls;   /* --https-self-signed: the paths the server's config points to */
} web;

/* /api/studies/{uid}/{sub}: the share and report modules' sub-resources of a study. */
static int study_sub(http_req *rq, void *ctx, const char *uid, const char *sub)
{
    web *w = ctx;
    if (!strcmp(sub, "reports"))
        return report_web_study(rq, w->rw, uid);
    if (!strcmp(sub, "audit") && !strcmp(http_req_method(rq), "GET"))
        return share_web_study_audit(rq, w->sw, uid);
    return http_reply_error(rq, 404, "no such resource: %s", http_req_path(rq));
}

static void web_stop(web *w)
{
    http_server_free(w->http); /* first: no handler runs after this */
    dicomweb_free(w->dw);
    report_web_free(w->rw);
    share_web_free(w->sw);
    w->http = NULL;
    w->dw = NULL;
    w->sw = NULL;
    w->rw = NULL;
}

static int web_start(const serve_opts *o, store *st, report_service *reports, web *w, rs_err *err)
{
    memset(w, 0, sizeof *w);
    if (!o->http_port)
        return RS_OK;
    http_config hc = {.bind_addr = o->http_bind, .port = o->http_port, .max_conns = o->http_max_conns,
                      .timeout_s = (unsigned)o->timeout_s, .log_requests = 1,
                      .tls_cert = o->https_cert[0] ? o->https_cert : NULL,
                      .tls_key = o->https_key[0] ? o->https_key : NULL,
                      .max_conns_per_addr = o->http_per_addr, .rate_per_addr = o->http_rate};
    if (o->https_self_signed && !hc.tls_cert && !hc.tls_key) {
        int rc = http_selfsigned_ensure(o->data, o->http_bind, &w->tls, err);
        if (rc)
            return rc;
        rs_log(RS_LOG_INFO, "HTTPS certificate %s (%s, self-signed), SHA-256 fingerprint %s", w->tls.cert,
               w->tls.created ? "made now" : "kept", w->tls.fingerprint);
        hc.tls_cert = w->tls.cert;
        hc.tls_key = w->tls.key;
    }
    dicomweb_opts dwo = {.max_upload = o->stow_max_bytes};
    share_web_opts swo = {.public_url = o->report_kv[0]}; /* public-url */
    int rc = share_web_open(o->data, &swo, st, &w->sw, err);
    hc.auth = share_web_auth;
    hc.auth_ctx = w->sw;
    rc = rc ? rc : http_server_new(&hc, &w->http, err);
    rc = rc ? rc : dicomweb_register(w->http, st, &dwo, &w->dw, err);
    if (rc == RS_OK)
        share_web_set_dicomweb(w->sw, w->dw);
    rc = rc ? rc : share_web_register(w->http, w->sw, err);
    rc = rc ? rc : report_web_open(o->data, reports, w->sw, st, &w->rw, err);
    if (rc == RS_OK)
        share_web_set_report_source(w->sw, report_web_share_report, w->rw);
    w->api = (api_ctx){.srv = w->http, .st = st, .dw = w->dw, .version = DCM_IMPL_VERSION,
                       .study_sub = study_sub, .study_sub_ctx = w};
    rc = rc ? rc : api_register(w->http, &w->api, err);
    rc = rc ? rc : assets_register(w->http, err);
    rc = rc ? rc : http_server_start(w->http, err);
    if (rc)
        web_stop(w);
    return rc;
}

typedef struct sig_ctx {
    sigset_t set;
    net_server *srv;
} sig_ctx;

static void *signal_thread(void *arg)
{
    sig_ctx *sc = arg;
    int sig = 0;
    if (sigwait(&sc->set, &sig) == 0) {
        rs_log(RS_LOG_INFO, "%s received: finishing in-flight work, then exiting", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        net_server_stop(sc->srv);
    }
    return NULL;
}

int cmd_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, 0, 'd'},       {"aet", required_argument, 0, 'a'},
        {"dicom-port", required_argument, 0, 'p'}, {"bind", required_argument, 0, 'b'},
        {"peer", required_argument, 0, 'P'},       {"max-associations", required_argument, 0, 'm'},
        {"timeout", required_argument, 0, 't'},    {"config", required_argument, 0, 'c'},
        {"dicom-tls-port", required_argument, 0, 1001}, {"tls-cert", required_argument, 0, 1002},
        {"tls-key", required_argument, 0, 1003},    {"tls-ca", required_argument, 0, 1004},
        {"max-associations-per-address", required_argument, 0, 1005},
        {"https-cert", required_argument, 0, 1006}, {"https-key", required_argument, 0, 1007},
        {"http-port", required_argument, 0, 'H'},  {"http-bind", required_argument, 0, 'B'},
        {"http-max-connections", required_argument, 0, 'C'}, {"stow-max-bytes", required_argument, 0, 'S'},
        {"https-self-signed", no_argument, 0, 1008},
        {"http-max-connections-per-address", required_argument, 0, 1009},
        {"http-rate-per-address", required_argument, 0, 1010},
        {"public-url", required_argument, 0, 1101}, {"smtp", required_argument, 0, 1102},
        {"mail-from", required_argument, 0, 1103},  {"hl7", required_argument, 0, 1104},
        {"directory", required_argument, 0, 1105},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    /* A request that renders a frame allocates a few buffers of 0.25-2 MB and frees them. With
     * glibc's adaptive defaults those are mmapped or trimmed away each time and the kernel
     * zero-fills fresh pages for every request (a third of an uncached 512x512 render): keep
     * them in the heap, and up to 16 MB free at its top. */
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    serve_opts *o = calloc(1, sizeof *o);
    if (!o)
        return RS_EXIT_ERROR;
    snprintf(o->data, sizeof o->data, "radshare-data");
    snprintf(o->aet, sizeof o->aet, "RADSHARE");
    o->dicom_port = 11112;
    o->max_assocs = 64;
    o->max_per_addr = 16;
    o->http_per_addr = 32;
    o->http_rate = 200;
    o->timeout_s = 60;
    o->http_port = 8080;
    snprintf(o->http_bind, sizeof o->http_bind, "127.0.0.1");
    int status = RS_EXIT_ERROR, c;
    /* the config file first, so the command line overrides it */
    for (int i = 1; i < argc - 1; i++)
        if (!strcmp(argv[i], "--config") && read_config(o, argv[i + 1]) != RS_OK)
            goto out;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        const char *key = NULL;
        for (const struct option *lo = longopts; lo->name; lo++)
            if (lo->val == c)
                key = lo->name;
        if (c == 'h') {
            serve_usage(stdout);
            status = RS_EXIT_OK;
            goto out;
        }
        if (c == 'c')
            continue;
        if (!key || apply(o, key, optarg) != RS_OK) {
            if (key)
                fprintf(stderr, "radshare serve: bad value for --%s: '%s'\n", key, optarg);
            serve_usage(stderr);
            goto out;
        }
    }
    if (optind < argc) {
        serve_usage(stderr);
        goto out;
    }

    /* signals go to the signal thread only: block them before any other thread exists */
    sig_ctx sc;
    sigemptyset(&sc.set);
    sigaddset(&sc.set, SIGTERM);
    sigaddset(&sc.set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sc.set, NULL);
    signal(SIGPIPE, SIG_IGN);

    rs_err err;
    rs_err_clear(&err);
    store *st = NULL;
    if (store_open(o->data, NULL, &st, &err) != RS_OK) {
        fprintf(stderr, "radshare serve: %s: %s\n", o->data, err.msg);
        goto out;
    }
    net_config cfg = {.bind_addr = o->bind[0] ? o->bind : NULL, .port = o->dicom_port,
                      .max_assocs = o->max_assocs, .max_per_addr = o->max_per_addr, .timeout_ms = o->timeout_s * 1000, .peers = o->peers,
                      .n_peers = o->n_peers, .log_level = RS_LOG_INFO, .tls_port = o->tls_port,
                      .tls_cert = o->tls_cert[0] ? o->tls_cert : NULL, .tls_key = o->tls_key[0] ? o->tls_key : NULL,
                      .tls_ca = o->tls_ca[0] ? o->tls_ca : NULL};
    memcpy(cfg.aet, o->aet, sizeof cfg.aet);
    net_server *srv = NULL;
    web w;
    if (net_server_start(&cfg, st, &srv, &err) != RS_OK) {
        fprintf(stderr, "radshare serve: %s\n", err.msg);
        store_close(st);
        goto out;
    }
    report_service *reports = NULL;
    report_service_config rcfg = {.datadir = o->data, .public_url = o->report_kv[0], .hl7 = o->report_kv[3],
                                  .directory = o->report_kv[4],
                                  .outbox = {.smtp_url = o->report_kv[1], .mail_from = o->report_kv[2]}};
    if (report_service_start(&rcfg, &reports, &err) != RS_OK) {
        fprintf(stderr, "radshare serve: reports: %s\n", err.msg);
        net_server_free(srv);
        store_close(st);
        goto out;
    }
    if (web_start(o, st, reports, &w, &err) != RS_OK) {
        /* the default port may be taken (another archive on this host): then DICOM alone */
        if (o->http_port_given || o->https_cert[0] || o->https_key[0] || o->https_self_signed) {
            fprintf(stderr, "radshare serve: %s\n", err.msg);
            report_service_stop(reports);
            net_server_free(srv);
            store_close(st);
            goto out;
        }
        rs_log(RS_LOG_WARN, "%s: no HTTP server (give --http-port to make this fatal, 0 to silence it)", err.msg);
    }
    rs_log(RS_LOG_INFO, "radshare serving data directory %s", o->data);
    sc.srv = srv;
    pthread_t sig_thr;
    pthread_create(&sig_thr, NULL, signal_thread, &sc);
    net_server_run(srv);
    /* the signal thread has returned if a signal stopped us; otherwise wake it */
    pthread_cancel(sig_thr);
    pthread_join(sig_thr, NULL);
    web_stop(&w);
    report_service_stop(reports);
    net_server_free(srv);
    store_close(st);
    rs_log(RS_LOG_INFO, "radshare stopped");
    status = RS_EXIT_OK;
out:
    free(o);
    return status;
}
