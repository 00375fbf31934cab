/* vec.c - see vec.h. */
#include "vec.h"

#include <stdint.h>
#include <stdlib.h>

#include "err.h"

int rs_grow(void **v, size_t *cap, size_t n, size_t size, size_t first)
{
    if (n < *cap)
        return RS_OK;
    size_t c = *cap ? *cap : first;
    while (c <= n) {
        if (c > SIZE_MAX / 2)
            return RS_ENOMEM;
        c *= 2;
    }
    if (c > SIZE_MAX / size)
        return RS_ENOMEM;
    void *nv = realloc(*v, c * size);
    if (!nv)
        return RS_ENOMEM;
    *v = nv;
    *cap = c;
    return RS_OK;
}
