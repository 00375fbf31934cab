/*
 * parts.c - multipart/related answers pulled part by part through http_reply_stream (see
 * parts.h). A part's header lines, its body (sent from the buffer it was made in) and the CRLF
 * are handed out as libmicrohttpd asks; the next part is produced only when they are sent.
 */
#include "parts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/log.h"

#define PARTS_BOUNDARY "radshare-parts-5c2e9a71"

typedef struct parts {
    dw_part_fn next;
    void *ctx;
    void (*free_fn)(void *);
    size_t i;          /* next part to produce */
    rs_buf head;       /* the current part's delimiter and header lines (or the closing delimiter) */
    dw_part part;      /* the current part; its body is sent from where it was made, not copied */
    int seg;           /* being sent: 0 head, 1 body, 2 CRLF after the body */
    size_t off;        /* in that segment */
    int done;          /* head is the closing delimiter */
    rs_err err;
} parts;

static void parts_free(void *p)
{
    parts *s = p;
    if (s->free_fn)
        s->free_fn(s->ctx);
    rs_buf_free(&s->head);
    rs_buf_free(&s->part.body);
    free(s);
}

/* The next part (or the closing delimiter): its head and body. RS_OK, or an error. */
static int produce(parts *s)
{
    dw_part *p = &s->part;
    rs_buf_reset(&s->head);
    rs_buf_reset(&p->body);
    snprintf(p->ctype, sizeof p->ctype, "application/octet-stream");
    p->location[0] = 0;
    s->seg = 0;
    s->off = 0;
    int rc = s->next(s->ctx, s->i, p, &s->err);
    if (rc == 1) {
        s->done = 1;
        rs_buf_reset(&p->body);
        return rs_buf_puts(&s->head, "--" PARTS_BOUNDARY "--\r\n");
    }
    if (rc)
        return rc;
    s->i++;
    rc = rs_buf_printf(&s->head, "--" PARTS_BOUNDARY "\r\nContent-Type: %s\r\n", p->ctype);
    if (rc == RS_OK && p->location[0])
        rc = rs_buf_printf(&s->head, "Content-Location: %s\r\n", p->location);
    return rc ? rc : rs_buf_printf(&s->head, "Content-Length: %zu\r\n\r\n", p->body.len);
}

static ssize_t parts_read(void *p, uint8_t *buf, size_t max)
{
    parts *s = p;
    for (;;) {
        const uint8_t *src = s->seg == 0 ? s->head.p : s->seg == 1 ? s->part.body.p : (const uint8_t *)"\r\n";
        size_t len = s->seg == 0 ? s->head.len : s->seg == 1 ? s->part.body.len : s->done ? 0 : 2;
        if (s->off < len) {
            size_t k = len - s->off < max ? len - s->off : max;
            memcpy(buf, src + s->off, k);
            s->off += k;
            return (ssize_t)k;
        }
        s->off = 0;
        if (++s->seg < 3)
            continue;
        if (s->done)
            return 0;
        if (produce(s)) { /* the status is sent already: the client sees a cut multipart */
            rs_log(RS_LOG_WARN, "http: part %zu of a multipart answer failed: %s (answer cut)", s->i + 1,
                   s->err.msg[0] ? s->err.msg : "out of memory");
            return -1;
        }
    }
}

int dw_reply_parts(http_req *rq, const char *part_type, dw_part_fn next, void *ctx, void (*free_fn)(void *),
                   rs_err *err)
{
    parts *s = calloc(1, sizeof *s);
    if (!s)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    s->next = next;
    s->ctx = ctx;
    rs_err_clear(&s->err);
    int rc = produce(s);
    if (rc == RS_OK && s->done)
        rc = 1;
    if (rc) {
        *err = s->err;
        s->free_fn = NULL; /* ctx stays the caller's */
        parts_free(s);
        return rc;
    }
    s->free_fn = free_fn;
    char ct[160];
    snprintf(ct, sizeof ct, "multipart/related; type=\"%s\"; boundary=" PARTS_BOUNDARY, part_type);
    return http_reply_stream(rq, 200, ct, parts_read, s, parts_free);
}
