/* arena.c - see arena.h. Chunks grow geometrically; big requests get a chunk of their own. */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

struct rs_arena_chunk {
    rs_arena_chunk *next;
    size_t size;
    size_t pos;
    size_t last;  /* offset of the most recent allocation, for in-place realloc */
    _Alignas(16) unsigned char data[];
};

#define ARENA_MIN_CHUNK (16u * 1024u)
#define ALIGN16(n) (((n) + 15u) & ~(size_t)15u)

void rs_arena_init(rs_arena *a, size_t limit)
{
    a->head = NULL;
    a->used = 0;
    a->limit = limit;
}

void *rs_arena_alloc(rs_arena *a, size_t n)
{
    if (n > SIZE_MAX / 2)
        return NULL;
    size_t need = ALIGN16(n ? n : 1);
    if (a->limit && a->used + need > a->limit)
        return NULL;
    rs_arena_chunk *c = a->head;
    if (!c || c->size - c->pos < need) {
        size_t sz = c ? c->size * 2 : ARENA_MIN_CHUNK;
        if (sz > 4u * 1024u * 1024u)
            sz = 4u * 1024u * 1024u;
        if (sz < need)
            sz = need;
        rs_arena_chunk *nc = malloc(sizeof *nc + sz);
        if (!nc)
            return NULL;
        nc->size = sz;
        nc->pos = 0;
        nc->last = 0;
        if (c && sz == need && c->size - c->pos >= 256) {
            /* a big one-off block: keep filling the current chunk afterwards */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
    }
    void *p = c->data + c->pos;
    c->last = c->pos;
    c->pos += need;
    a->used += need;
    return p;
}

void *rs_arena_zalloc(rs_arena *a, size_t n)
{
    void *p = rs_arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *rs_arena_realloc(rs_arena *a, void *old, size_t old_n, size_t new_n)
{
    if (!old)
        return rs_arena_alloc(a, new_n);
    rs_arena_chunk *c = a->head;
    if (c && (unsigned char *)old == c->data + c->last) {
        size_t need = ALIGN16(new_n ? new_n : 1);
        size_t have = c->pos - c->last;
        if (need <= have)
            return old;
        if (c->last + need <= c->size && !(a->limit && a->used + need - have > a->limit)) {
            c->pos = c->last + need;
            a->used += need - have;
            return old;
        }
    }
    void *p = rs_arena_alloc(a, new_n);
    if (p)
        memcpy(p, old, old_n < new_n ? old_n : new_n);
    return p;
}

char *rs_arena_strndup(rs_arena *a, const char *s, size_t n)
{
    char *p = rs_arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

void rs_arena_free(rs_arena *a)
{
    rs_arena_chunk *c = a->head;
    while (c) {
        rs_arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->used = 0;
}
