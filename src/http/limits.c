/*
 * limits.c - see limits.h. One mutex over the table: it is held for a few comparisons per
 * connection and per request, far less than the work of any request.
 */
#include "limits.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../util/addr.h"

#define PROBES 64
#define BURST_SECONDS 4
#define NS 1000000000LL

typedef struct slot {
    uint8_t key[16];      /* IPv6, or IPv4 as ::ffff:a.b.c.d */
    int used;
    unsigned conns;
    double tokens;        /* at stamp */
    int64_t stamp, last_log;
} slot;

struct http_limits_conn {
    slot *s;
    int over;             /* opened while its address held max_conns already */
};

struct http_limits {
    http_limits_config cfg;
    pthread_mutex_t mu;
    uint64_t conn_refused, rate_refused, untracked;
    slot slots[HTTP_LIMITS_SLOTS];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

http_limits *http_limits_new(const http_limits_config *cfg)
{
    http_limits *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->cfg = *cfg;
    pthread_mutex_init(&l->mu, NULL);
    return l;
}

void http_limits_free(http_limits *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* The address as 16 bytes; 0 for loopback and unknown families (exempt). */
static int key_of(const struct sockaddr *sa, uint8_t key[16])
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!sa || rs_addr_is_loopback(sa))
        return 0;
    if (sa->sa_family == AF_INET) {
        memcpy(key, v4mapped, 12);
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else {
        return 0;
    }
    return 1;
}

static double burst(const http_limits *l)
{
    return (double)l->cfg.rate * BURST_SECONDS;
}

/* Bring the bucket to now. */
static void refill(const http_limits *l, slot *s, int64_t now)
{
    double t = s->tokens + (double)(now - s->stamp) / NS * l->cfg.rate;
    s->tokens = t > burst(l) ? burst(l) : t;
    s->stamp = now;
}

/* A slot that remembers nothing worth keeping: no connection, a full bucket. */
static int idle(const http_limits *l, slot *s, int64_t now)
{
    if (!s->used)
        return 1;
    if (s->conns)
        return 0;
    refill(l, s, now);
    return !l->cfg.rate || s->tokens >= burst(l);
}

static slot *find(http_limits *l, const uint8_t key[16], int64_t now)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    slot *spare = NULL;
    for (unsigned i = 0; i < PROBES; i++) {
        slot *s = &l->slots[(h + i) % HTTP_LIMITS_SLOTS];
        if (s->used && memcmp(s->key, key, 16) == 0)
            return s;
        if (!spare && idle(l, s, now))
            spare = s;
    }
    if (spare) {
        memset(spare, 0, sizeof *spare);
        memcpy(spare->key, key, 16);
        spare->used = 1;
        spare->tokens = burst(l);
        spare->stamp = now;
        spare->last_log = now - NS;
    }
    return spare;
}

http_limits_conn *http_limits_open(http_limits *l, const struct sockaddr *sa)
{
    uint8_t key[16];
    if (!l || (!l->cfg.max_conns && !l->cfg.rate) || !key_of(sa, key))
        return NULL;
    http_limits_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_lock(&l->mu);
    c->s = find(l, key, now_ns());
    if (c->s) {
        c->s->conns++;
        c->over = l->cfg.max_conns && c->s->conns > l->cfg.max_conns;
    } else {
        l->untracked++;
    }
    pthread_mutex_unlock(&l->mu);
    if (!c->s) {
        free(c);
        return NULL;
    }
    return c;
}

void http_limits_close(http_limits *l, http_limits_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&l->mu);
    c->s->conns--;
    pthread_mutex_unlock(&l->mu);
    free(c);
}

int http_limits_admit(http_limits *l, http_limits_conn *c, unsigned *retry_after, int *log)
{
    *retry_after = 0;
    *log = 0;
    if (!c)
        return 0;
    int64_t now = now_ns();
    int status = 0;
    pthread_mutex_lock(&l->mu);
    slot *s = c->s;
    if (c->over) {
        status = 503;
        *retry_after = 5;
        l->conn_refused++;
    } else if (l->cfg.rate) {
        refill(l, s, now);
        if (s->tokens >= 1) {
            s->tokens -= 1;
        } else {
            status = 429;
            *retry_after = (unsigned)((1 - s->tokens) / l->cfg.rate) + 1;
            l->rate_refused++;
        }
    }
    if (status && now - s->last_log >= NS) {
        s->last_log = now;
        *log = 1;
    }
    pthread_mutex_unlock(&l->mu);
    return status;
}

void http_limits_counts(http_limits *l, uint64_t *conn_refused, uint64_t *rate_refused, uint64_t *untracked)
{
    pthread_mutex_lock(&l->mu);
    *conn_refused = l->conn_refused;
    *rate_refused = l->rate_refused;
    *untracked = l->untracked;
    pthread_mutex_unlock(&l->mu);
}
