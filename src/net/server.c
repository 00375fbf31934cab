/* server.c - the DICOM listener (see server.h). One detached thread per association. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../util/addr.h"
#include "../util/log.h"
#include "assoc.h"
#include "scp.h"
#include "tls.h"

struct net_server {
    net_config cfg;
    struct store *store;
    int listen_fd;
    int tls_fd;                /* the TLS listener, -1 without */
    net_tls_ctx *tls;
    int stop_pipe[2];
    int port, tls_port;
    pthread_mutex_t mu;
    pthread_cond_t idle;
    unsigned active;           /* associations running */
    atomic_int stopping;       /* shutdown asked: idle associations end, running messages finish */
    unsigned long long served; /* associations accepted so far (for log ids) */
    struct conn *conns;        /* running connections (under mu) */
};

typedef struct conn {
    net_server *s;
    int fd;
    unsigned long long id;
    int over_limit;
    int over_addr_limit; /* too many associations from this (non-loopback) address */
    struct conn *prev, *next; /* the server's list of running connections */
    int tls;           /* came in on the TLS port: handshake before the association */
    unsigned services; /* what the peer may use: all on loopback, else its configuration */
    struct sockaddr_storage addr;
} conn;

const net_peer *net_config_peer(const net_config *cfg, const char *aet)
{
    for (unsigned i = 0; i < cfg->n_peers; i++)
        if (!strcmp(cfg->peers[i].aet, aet))
            return &cfg->peers[i];
    return NULL;
}

static const struct {
    const char *name;
    unsigned bit;
} services[] = {{"store", NET_SVC_STORE}, {"find", NET_SVC_FIND}, {"move", NET_SVC_MOVE}, {"get", NET_SVC_GET}};

static int parse_services(const char *s, unsigned *out)
{
    *out = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof services / sizeof services[0]; i++)
            if (strlen(services[i].name) == n && !strncmp(s, services[i].name, n))
                bit = services[i].bit;
        if (!bit)
            return RS_EINVAL;
        *out |= bit;
        s += n + (s[n] == ',');
    }
    return *out ? RS_OK : RS_EINVAL;
}

const char *net_services_str(unsigned svc, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++)
        if ((svc & services[i].bit) && len < cap)
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? "," : "", services[i].name);
    return buf;
}

int net_peer_parse(const char *spec, net_peer *p)
{
    char s[512];
    if (snprintf(s, sizeof s, "%s", spec) >= (int)sizeof s)
        return RS_EINVAL;
    memset(p, 0, sizeof *p);
    p->services = NET_SVC_ALL;
    char *slash = strchr(s, '/');
    if (slash) {
        *slash = 0;
        if (parse_services(slash + 1, &p->services))
            return RS_EINVAL;
    }
    char *eq = strchr(s, '=');
    char *colon = eq ? strrchr(eq + 1, ':') : NULL;
    if (!eq || !colon || eq == s || (size_t)(eq - s) > 16 || colon == eq + 1)
        return RS_EINVAL;
    memcpy(p->aet, s, (size_t)(eq - s));
    size_t hl = (size_t)(colon - eq - 1);
    if (hl >= sizeof p->host)
        return RS_EINVAL;
    memcpy(p->host, eq + 1, hl);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return RS_EINVAL;
    p->port = (int)port;
    if (p->host[0] == '[' && hl > 2 && p->host[hl - 1] == ']') {
        memmove(p->host, p->host + 1, hl - 2);
        p->host[hl - 2] = 0;
    }
    return RS_OK;
}

/* An IPv4 peer reaching our dual-stack socket shows up as ::ffff:a.b.c.d; compare it as IPv4,
 * or a peer configured as "10.1.2.3" would never match. */
static struct sockaddr_storage unmap_v4(const struct sockaddr_storage *in)
{
    struct sockaddr_storage out = *in;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)in)->sin6_addr;
    if (in->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(a)) {
        struct sockaddr_in v4 = {.sin_family = AF_INET};
        memcpy(&v4.sin_addr, &a->s6_addr[12], 4);
        memset(&out, 0, sizeof out);
        memcpy(&out, &v4, sizeof v4);
    }
    return out;
}

/* Same peer host (ports aside), an IPv4 peer on the dual-stack socket counted as IPv4. */
static int same_host(const struct sockaddr_storage *x, const struct sockaddr_storage *y)
{
    struct sockaddr_storage a = unmap_v4(x), b = unmap_v4(y);
    if (a.ss_family != b.ss_family)
        return 0;
    if (a.ss_family == AF_INET)
        return ((struct sockaddr_in *)&a)->sin_addr.s_addr == ((struct sockaddr_in *)&b)->sin_addr.s_addr;
    return a.ss_family == AF_INET6 && !memcmp(&((struct sockaddr_in6 *)&a)->sin6_addr,
                                              &((struct sockaddr_in6 *)&b)->sin6_addr, sizeof(struct in6_addr));
}

/* Does host (a name or literal address of a configured peer) resolve to the connection's address? */
static int host_matches(const char *host, const struct sockaddr_storage *peer)
{
    struct sockaddr_storage v = unmap_v4(peer);
    const struct sockaddr_storage *ss = &v;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return 0;
    int match = 0;
    for (struct addrinfo *ai = res; ai && !match; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET && ss->ss_family == AF_INET)
            match = ((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr ==
                    ((const struct sockaddr_in *)ss)->sin_addr.s_addr;
        else if (ai->ai_family == AF_INET6 && ss->ss_family == AF_INET6)
            match = !memcmp(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
                            &((const struct sockaddr_in6 *)ss)->sin6_addr, sizeof(struct in6_addr));
    }
    freeaddrinfo(res);
    return match;
}

typedef struct policy_ctx {
    conn *c;
    const char *why; /* reason of a rejection, for the log */
} policy_ctx;

static void reject(assoc_decision *d, uint8_t result, uint8_t source, uint8_t reason)
{
    d->reject = 1;
    d->result = result;
    d->source = source;
    d->reason = reason;
}

/* Decide on an A-ASSOCIATE-RQ: limits, then who is calling, then the presentation contexts. */
static void policy(void *vctx, assoc *a, const pdu_assoc *rq, assoc_decision *d)
{
    policy_ctx *pc = vctx;
    conn *c = pc->c;
    const net_config *cfg = &c->s->cfg;
    if (c->over_limit || c->over_addr_limit) {
        pc->why = c->over_limit ? "too many associations" : "too many associations from this address";
        reject(d, PDU_RJ_TRANSIENT, PDU_RJ_SOURCE_PRESENTATION, PDU_RJ_PRES_LOCAL_LIMIT);
        return;
    }
    if (strcmp(rq->app_context ? rq->app_context : "", PDU_APP_CONTEXT) != 0) {
        pc->why = "unsupported application context";
        reject(d, PDU_RJ_PERMANENT, PDU_RJ_SOURCE_USER, PDU_RJ_USER_APP_CONTEXT);
        return;
    }
    if (!rs_addr_is_loopback((const struct sockaddr *)&c->addr)) {
        const net_peer *p = net_config_peer(cfg, rq->calling_ae);
        if (!p || !host_matches(p->host, &c->addr)) {
            pc->why = p ? "calling AE title configured for another address" : "calling AE title not configured";
            reject(d, PDU_RJ_PERMANENT, PDU_RJ_SOURCE_USER, PDU_RJ_USER_CALLING_AE);
            return;
        }
        if (strcmp(rq->called_ae, cfg->aet) != 0) {
            pc->why = "called AE title is not ours";
            reject(d, PDU_RJ_PERMANENT, PDU_RJ_SOURCE_USER, PDU_RJ_USER_CALLED_AE);
            return;
        }
        c->services = p->services;
    }
    scp_negotiate(a, rq);
}

/* A failed TLS handshake: there is no association to name the peer, so its address does. */
static int tls_handshake(conn *c, net_tls **tls)
{
    net_server *s = c->s;
    rs_err err;
    rs_err_clear(&err);
    if (net_tls_accept(s->tls, c->fd, s->cfg.timeout_ms, tls, &err) == RS_OK) {
        char how[384];
        net_tls_describe(*tls, how, sizeof how);
        rs_log(RS_LOG_INFO, "assoc #%llu: %s", c->id, how);
        return RS_OK;
    }
    char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?";
    getnameinfo((const struct sockaddr *)&c->addr, sizeof c->addr, host, sizeof host, serv, sizeof serv,
                NI_NUMERICHOST | NI_NUMERICSERV);
    rs_log(RS_LOG_WARN, "assoc #%llu %s:%s: refused: %s", c->id, host, serv, err.msg);
    return err.code;
}

static void *conn_thread(void *arg)
{
    conn *c = arg;
    net_server *s = c->s;
    net_tls *tls = NULL;
    if (c->tls && tls_handshake(c, &tls) != RS_OK) {
        close(c->fd);
        goto done;
    }
    assoc a;
    rs_err err;
    rs_err_clear(&err);
    policy_ctx pc = {c, NULL};
    int rc = assoc_accept(&a, c->fd, tls, s->cfg.timeout_ms, &s->stopping, policy, &pc, &err);
    if (rc) {
        rs_log(RS_LOG_WARN, "assoc #%llu %s: refused: %s%s%s", c->id, a.peer_addr, err.msg, pc.why ? ": " : "",
               pc.why ? pc.why : "");
    } else {
        unsigned accepted = 0;
        for (unsigned i = 0; i < a.n_pcs; i++)
            accepted += a.pcs[i].result == PDU_PC_ACCEPTANCE;
        rs_log(RS_LOG_INFO, "assoc #%llu %s: %s -> %s accepted (%u of %u presentation contexts, peer %s %s)%s", c->id,
               a.peer_addr, a.calling, a.called, accepted, a.n_pcs, a.peer_impl_class, a.peer_impl_version,
               tls ? " over TLS" : "");
        scp_ctx sc = {.store = s->store, .cfg = &s->cfg, .assoc_id = c->id, .services = c->services};
        scp_serve(&sc, &a);
    }
    assoc_close(&a);
done:
    pthread_mutex_lock(&s->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->active--;
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
    free(c);
    return NULL;
}

/* Bind and listen on one port (the plain or the TLS one); *bound receives the port number. */
static int listen_on(const char *bind_addr, int port, int *out_fd, int *bound, rs_err *err)
{
    char serv[16];
    snprintf(serv, sizeof serv, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    int gr = getaddrinfo(bind_addr, serv, &hints, &res);
    if (gr)
        return rs_err_set(err, RS_EINVAL, "cannot listen on %s:%d: %s", bind_addr ? bind_addr : "*", port,
                          gai_strerror(gr));
    /* prefer an IPv6 wildcard socket that also takes IPv4, else the first address */
    struct addrinfo *pick = res;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if (!bind_addr && ai->ai_family == AF_INET6)
            pick = ai;
    int fd = socket(pick->ai_family, pick->ai_socktype | SOCK_CLOEXEC, pick->ai_protocol);
    int one = 1, zero = 0;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (pick->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    if (fd < 0 || bind(fd, pick->ai_addr, pick->ai_addrlen) != 0 || listen(fd, 256) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return rs_err_set(err, RS_EIO, "cannot listen on DICOM port %d: %s", port, strerror(e));
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    *out_fd = fd;
    return RS_OK;
}

int net_server_start(const net_config *cfg, struct store *st, net_server **out, rs_err *err)
{
    *out = NULL;
    net_server *s = calloc(1, sizeof *s);
    if (!s)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    s->cfg = *cfg;
    s->store = st;
    s->listen_fd = s->tls_fd = -1;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    int rc = RS_OK;
    if (pipe2(s->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = rs_err_set(err, RS_EIO, "pipe: %s", strerror(errno));
        goto out;
    }
    if (cfg->tls_port && (!cfg->tls_cert || !cfg->tls_key)) {
        rc = rs_err_set(err, RS_EINVAL, "DICOM TLS needs a certificate and a key (--tls-cert, --tls-key)");
        goto out;
    }
    if (cfg->tls_port && (rc = net_tls_ctx_new(cfg->tls_cert, cfg->tls_key, cfg->tls_ca, &s->tls, err)) != RS_OK)
        goto out;
    rc = listen_on(cfg->bind_addr, cfg->port, &s->listen_fd, &s->port, err);
    if (rc == RS_OK && cfg->tls_port)
        rc = listen_on(cfg->bind_addr, cfg->tls_port, &s->tls_fd, &s->tls_port, err);
out:
    if (rc) {
        net_server_free(s);
        return rc;
    }
    *out = s;
    return RS_OK;
}

int net_server_port(const net_server *s) { return s->port; }
int net_server_tls_port(const net_server *s) { return s->tls_port; }

void net_server_stop(net_server *s)
{
    char b = 1;
    ssize_t w = write(s->stop_pipe[1], &b, 1);
    (void)w;
}

static void spawn(net_server *s, int fd, const struct sockaddr_storage *addr, int tls)
{
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->s = s;
    c->fd = fd;
    c->tls = tls;
    c->addr = *addr;
    c->services = NET_SVC_ALL;
    pthread_mutex_lock(&s->mu);
    c->id = ++s->served;
    /* over the limit the thread still runs, to send a proper A-ASSOCIATE-RJ and log it */
    c->over_limit = s->active >= s->cfg.max_assocs;
    if (s->cfg.max_per_addr && !rs_addr_is_loopback((const struct sockaddr *)addr)) {
        unsigned same = 0;
        for (conn *o = s->conns; o; o = o->next)
            same += !o->over_limit && !o->over_addr_limit && same_host(&o->addr, addr);
        c->over_addr_limit = same >= s->cfg.max_per_addr;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->active++;
    pthread_mutex_unlock(&s->mu);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 256 * 1024);
    pthread_t t;
    if (pthread_create(&t, &at, conn_thread, c) != 0) {
        rs_log(RS_LOG_ERROR, "cannot start a thread for a new association: %s", strerror(errno));
        close(fd);
        pthread_mutex_lock(&s->mu);
        s->conns = c->next; /* c is still the list's head: nothing ran since */
        if (c->next)
            c->next->prev = NULL;
        s->active--;
        pthread_mutex_unlock(&s->mu);
        free(c);
    }
    pthread_attr_destroy(&at);
}

int net_server_run(net_server *s)
{
    if (s->tls_fd >= 0)
        rs_log(RS_LOG_INFO, "DICOM: listening on port %d, TLS on port %d%s, as %s (up to %u associations)", s->port,
               s->tls_port, s->cfg.tls_ca ? " (client certificates required)" : "", s->cfg.aet, s->cfg.max_assocs);
    else
        rs_log(RS_LOG_INFO, "DICOM: listening on port %d as %s (up to %u associations)", s->port, s->cfg.aet,
               s->cfg.max_assocs);
    for (;;) {
        struct pollfd p[3] = {{.fd = s->stop_pipe[0], .events = POLLIN},
                              {.fd = s->listen_fd, .events = POLLIN},
                              {.fd = s->tls_fd, .events = POLLIN}}; /* fd -1: ignored by poll */
        int r = poll(p, 3, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rs_log(RS_LOG_ERROR, "poll: %s", strerror(errno));
            break;
        }
        if (p[0].revents)
            break;
        for (int i = 1; i < 3; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            struct sockaddr_storage addr;
            socklen_t al = sizeof addr;
            int fd = accept4(p[i].fd, (struct sockaddr *)&addr, &al, SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
                    rs_log(RS_LOG_WARN, "accept: %s", strerror(errno));
                if (errno == EMFILE || errno == ENFILE)
                    usleep(100 * 1000); /* let running associations release descriptors */
                continue;
            }
            spawn(s, fd, &addr, i == 2);
        }
    }
    /* stop taking new work; in-flight associations finish their current message */
    atomic_store(&s->stopping, 1);
    close(s->listen_fd);
    s->listen_fd = -1;
    if (s->tls_fd >= 0)
        close(s->tls_fd);
    s->tls_fd = -1;
    pthread_mutex_lock(&s->mu);
    if (s->active)
        rs_log(RS_LOG_INFO, "DICOM: waiting for %u association(s) to finish", s->active);
    while (s->active)
        pthread_cond_wait(&s->idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
    return RS_OK;
}

void net_server_free(net_server *s)
{
    if (!s)
        return;
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->tls_fd >= 0)
        close(s->tls_fd);
    net_tls_ctx_free(s->tls);
    for (int i = 0; i < 2; i++)
        if (s->stop_pipe[i] >= 0)
            close(s->stop_pipe[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->idle);
    free(s);
}
