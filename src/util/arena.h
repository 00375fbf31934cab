/*
 * arena.h - a bump allocator with a hard ceiling.
 *
 * A parsed DICOM object owns one arena: every element, item and value of it is
 * carved from there and freed at once with the object. The ceiling turns
 * "a hostile file claims a 4 GB element" into a clean RS_ELIMIT instead of an
 * unbounded allocation.
 */
#ifndef RS_ARENA_H
#define RS_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct rs_arena_chunk rs_arena_chunk;

typedef struct rs_arena {
    rs_arena_chunk *head;
    size_t used;   /* bytes handed out, all chunks */
    size_t limit;  /* 0 = no limit */
} rs_arena;

void rs_arena_init(rs_arena *a, size_t limit);
/* 16-byte aligned, uninitialised; NULL on failure or when the limit would be passed. */
void *rs_arena_alloc(rs_arena *a, size_t n);
void *rs_arena_zalloc(rs_arena *a, size_t n);
/* Grow the most recent allocation in place when possible, else copy. */
void *rs_arena_realloc(rs_arena *a, void *old, size_t old_n, size_t new_n);
char *rs_arena_strndup(rs_arena *a, const char *s, size_t n);
void rs_arena_free(rs_arena *a);

#endif
