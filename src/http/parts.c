/*
 * parts.c - multipart/related answers pulled part by part through http_reply_stream (see
 * parts.h). The part header, body and CRLF of one part are kept in one buffer and handed out
 * as libmicrohttpd asks; the next part is produced only when that buffer is empty.
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
    rs_buf out;        /* what is being sent */
    size_t off;
    int done;
    dw_part part;
    rs_err err;
} parts;

static void parts_free(void *p)
{
    parts *s = p;
    if (s->free_fn)
        s->free_fn(s->ctx);
    rs_buf_free(&s->out);
    rs_buf_free(&s->part.body);
    free(s);
}

/* The next part (or the closing delimiter) into s->out. RS_OK, or an error. */
static int produce(parts *s)
{
    dw_part *p = &s->part;
    rs_buf_reset(&s->out);
    rs_buf_reset(&p->body);
    snprintf(p->ctype, sizeof p->ctype, "application/octet-stream");
    p->location[0] = 0;
    s->off = 0;
    int rc = s->next(s->ctx, s->i, p, &s->err);
    if (rc == 1) {
        s->done = 1;
        return rs_buf_puts(&s->out, "--" PARTS_BOUNDARY "--\r\n");
    }
    if (rc)
        return rc;
    s->i++;
    rc = rs_buf_printf(&s->out, "--" PARTS_BOUNDARY "\r\nContent-Type: %s\r\n", p->ctype);
    if (rc == RS_OK && p->location[0])
        rc = rs_buf_printf(&s->out, "Content-Location: %s\r\n", p->location);
    rc = rc ? rc : rs_buf_printf(&s->out, "Content-Length: %zu\r\n\r\n", p->body.len);
    rc = rc ? rc : rs_buf_append(&s->out, p->body.p, p->body.len);
    return rc ? rc : rs_buf_puts(&s->out, "\r\n");
}

static ssize_t parts_read(void *p, uint8_t *buf, size_t max)
{
    parts *s = p;
    if (s->off == s->out.len) {
        if (s->done)
            return 0;
        if (produce(s)) { /* the status is sent already: the client sees a cut multipart */
            rs_log(RS_LOG_WARN, "http: part %zu of a multipart answer failed: %s (answer cut)", s->i + 1,
                   s->err.msg[0] ? s->err.msg : "out of memory");
            return -1;
        }
    }
    size_t k = s->out.len - s->off < max ? s->out.len - s->off : max;
    memcpy(buf, s->out.p + s->off, k);
    s->off += k;
    return (ssize_t)k;
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
