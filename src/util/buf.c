/* buf.c - see buf.h. */
#include "buf.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rs_buf_reserve(rs_buf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len - 1)
        return RS_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return RS_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return RS_ENOMEM;
    b->p = p;
    b->cap = cap;
    b->p[b->len] = 0; /* a reserved-but-empty buffer is still a valid C string */
    return RS_OK;
}

int rs_buf_append(rs_buf *b, const void *data, size_t n)
{
    int rc = rs_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
    return RS_OK;
}

int rs_buf_putc_slow(rs_buf *b, int c)
{
    uint8_t ch = (uint8_t)c;
    return rs_buf_append(b, &ch, 1);
}

int rs_buf_puts(rs_buf *b, const char *s)
{
    return rs_buf_append(b, s, strlen(s));
}

int rs_buf_printf(rs_buf *b, const char *fmt, ...)
{
    /* format straight into the spare room; only a result that does not fit is formatted twice */
    int rc = rs_buf_reserve(b, 64);
    if (rc)
        return rc;
    size_t room = b->cap - b->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf((char *)b->p + b->len, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return RS_EINVAL;
    if ((size_t)n >= room) {
        rc = rs_buf_reserve(b, (size_t)n);
        if (rc)
            return rc;
        va_start(ap, fmt);
        vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return RS_OK;
}

void rs_buf_reset(rs_buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = 0;
}

void rs_buf_free(rs_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
