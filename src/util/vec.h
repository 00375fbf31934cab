/*
 * vec.h - room for one more element in a realloc-grown array: the doubling every module that
 * collects rows (query matches, object lists, id sets) would otherwise write again.
 */
#ifndef RS_VEC_H
#define RS_VEC_H

#include <stddef.h>

/*
 * Make *v (of *cap elements of `size` bytes, n in use) hold at least n + 1, doubling from
 * `first`. RS_OK, or RS_ENOMEM with *v untouched (still owned by the caller).
 */
int rs_grow(void **v, size_t *cap, size_t n, size_t size, size_t first);

#endif
