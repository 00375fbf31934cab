/*
 * cache.h - a bounded, thread-safe, least-recently-used cache of byte strings by string key.
 *
 * For results that are expensive to make and never change for a given key, such as a rendered
 * image of an immutable stored object (the key names the object's content hash and every
 * parameter). Each value carries a short note (e.g. its media type and ETag). The total of the
 * values' sizes stays under the cache's capacity: the least recently used entries go first, and
 * a value over an eighth of the capacity is not kept at all (one huge image must not flush every
 * small one). Values are copied in and out, so nothing handed out can be evicted under a reader.
 */
#ifndef RS_CACHE_H
#define RS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define RS_CACHE_NOTE_MAX 320   /* longest note kept, with its NUL */

typedef struct rs_cache rs_cache;

typedef struct rs_cache_stats {
    uint64_t hits, misses, evictions;
    size_t entries, bytes, capacity;
} rs_cache_stats;

/* capacity in bytes of values; 0 makes a cache that keeps nothing. RS_ENOMEM. */
int rs_cache_new(size_t capacity, rs_cache **out);
void rs_cache_free(rs_cache *c);
/* 1 and the value appended to out, its note in note (cap bytes), when key is there; 0 when not,
 * or when out could not grow (counted as a miss). */
int rs_cache_get(rs_cache *c, const char *key, rs_buf *out, char *note, size_t cap);
/* Keeps a copy of p[0..n) and note under key (replacing an older value). Silently keeps
 * nothing when the value is too large or memory is short: a cache may always forget. */
void rs_cache_put(rs_cache *c, const char *key, const void *p, size_t n, const char *note);
void rs_cache_get_stats(rs_cache *c, rs_cache_stats *st);

#endif
