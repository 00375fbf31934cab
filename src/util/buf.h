/*
 * buf.h - a growable byte buffer, the owner of any output built piecewise
 * (JSON text, encoded datasets, decoded strings). Always NUL-terminated after
 * a successful append so text users can treat p as a C string.
 */
#ifndef RS_BUF_H
#define RS_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct rs_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
} rs_buf;

#define RS_BUF_INIT {NULL, 0, 0}

int rs_buf_reserve(rs_buf *b, size_t extra);
int rs_buf_append(rs_buf *b, const void *data, size_t n);
int rs_buf_putc_slow(rs_buf *b, int c);
/* One byte; the common case (room available) stays inline. */
static inline int rs_buf_putc(rs_buf *b, int c)
{
    if (b->len + 1 < b->cap) {
        b->p[b->len++] = (uint8_t)c;
        b->p[b->len] = 0;
        return 0;
    }
    return rs_buf_putc_slow(b, c);
}
int rs_buf_puts(rs_buf *b, const char *s);
int rs_buf_printf(rs_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rs_buf_reset(rs_buf *b);  /* len = 0, keeps memory */
void rs_buf_free(rs_buf *b);

#endif
