/*
 * cache.c - the LRU byte cache of cache.h: a chained hash table (FNV-1a of the key, table
 * doubled when it holds more entries than buckets) for lookup, and a doubly linked list in use
 * order for eviction, both under one mutex. Lookups copy the value out while holding the lock;
 * the values it is meant for (rendered images, tens to hundreds of KB) copy in microseconds.
 */
#include "cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

typedef struct entry {
    struct entry *next_in_bucket;
    struct entry *newer, *older;    /* use order */
    uint64_t hash;
    char *key;
    char note[RS_CACHE_NOTE_MAX];
    uint8_t *data;
    size_t n;
} entry;

struct rs_cache {
    pthread_mutex_t mu;
    entry **buckets;
    size_t n_buckets;
    entry *newest, *oldest;
    rs_cache_stats st;
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

int rs_cache_new(size_t capacity, rs_cache **out)
{
    rs_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->buckets = calloc(64, sizeof *c->buckets))) {
        free(c);
        return RS_ENOMEM;
    }
    c->n_buckets = 64;
    c->st.capacity = capacity;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return RS_OK;
}

static void entry_free(entry *e)
{
    free(e->key);
    free(e->data);
    free(e);
}

void rs_cache_free(rs_cache *c)
{
    if (!c)
        return;
    for (entry *e = c->newest, *older; e; e = older) {
        older = e->older;
        entry_free(e);
    }
    pthread_mutex_destroy(&c->mu);
    free(c->buckets);
    free(c);
}

static entry **slot_of(rs_cache *c, uint64_t hash, const char *key)
{
    entry **s = &c->buckets[hash & (c->n_buckets - 1)];
    while (*s && ((*s)->hash != hash || strcmp((*s)->key, key)))
        s = &(*s)->next_in_bucket;
    return s;
}

static void unlink_use(rs_cache *c, entry *e)
{
    *(e->newer ? &e->newer->older : &c->newest) = e->older;
    *(e->older ? &e->older->newer : &c->oldest) = e->newer;
    e->newer = e->older = NULL;
}

static void link_newest(rs_cache *c, entry *e)
{
    e->older = c->newest;
    e->newer = NULL;
    *(c->newest ? &c->newest->newer : &c->oldest) = e;
    c->newest = e;
}

/* Takes e out of both structures and frees it. */
static void drop(rs_cache *c, entry *e)
{
    entry **s = slot_of(c, e->hash, e->key);
    *s = e->next_in_bucket;
    unlink_use(c, e);
    c->st.entries--;
    c->st.bytes -= e->n;
    entry_free(e);
}

int rs_cache_get(rs_cache *c, const char *key, rs_buf *out, char *note, size_t cap)
{
    uint64_t h = fnv1a(key);
    int found = 0;
    pthread_mutex_lock(&c->mu);
    entry *e = *slot_of(c, h, key);
    if (e && rs_buf_append(out, e->data, e->n) == RS_OK) {
        unlink_use(c, e);
        link_newest(c, e);
        if (cap) {
            size_t k = strlen(e->note) < cap ? strlen(e->note) : cap - 1;
            memcpy(note, e->note, k);
            note[k] = 0;
        }
        found = 1;
        c->st.hits++;
    } else {
        c->st.misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return found;
}

/* More entries than buckets: double the table (a failed allocation keeps the old one). */
static void maybe_grow(rs_cache *c)
{
    if (c->st.entries < c->n_buckets)
        return;
    size_t nb = c->n_buckets * 2;
    entry **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < c->n_buckets; i++)
        for (entry *e = c->buckets[i], *next; e; e = next) {
            next = e->next_in_bucket;
            e->next_in_bucket = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    free(c->buckets);
    c->buckets = b;
    c->n_buckets = nb;
}

void rs_cache_put(rs_cache *c, const char *key, const void *p, size_t n, const char *note)
{
    if (!c->st.capacity || n > c->st.capacity / 8 || strlen(note) >= RS_CACHE_NOTE_MAX)
        return;
    entry *e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key)) || !(e->data = malloc(n ? n : 1))) {
        if (e)
            entry_free(e);
        return;
    }
    memcpy(e->data, p, n);
    e->n = n;
    e->hash = fnv1a(key);
    strcpy(e->note, note);
    pthread_mutex_lock(&c->mu);
    entry *old = *slot_of(c, e->hash, key);
    if (old)
        drop(c, old);
    while (c->oldest && c->st.bytes + n > c->st.capacity) {
        drop(c, c->oldest);
        c->st.evictions++;
    }
    maybe_grow(c);
    entry **s = slot_of(c, e->hash, key);
    *s = e;
    link_newest(c, e);
    c->st.entries++;
    c->st.bytes += n;
    pthread_mutex_unlock(&c->mu);
}

void rs_cache_get_stats(rs_cache *c, rs_cache_stats *st)
{
    pthread_mutex_lock(&c->mu);
    *st = c->st;
    pthread_mutex_unlock(&c->mu);
}
