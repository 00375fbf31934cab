/*
 * fuzz_multipart.c - libFuzzer target for the streaming multipart parser (src/http/multipart.c)
 * that reads STOW-RS upload bodies as they arrive from the socket.
 *
 * Input layout: byte 0 picks the boundary length L (1..70), the next L bytes are the boundary
 * (CR replaced, a boundary cannot hold one), the next 2 bytes seed the chunk sizes, the rest is
 * the body. Too short an input is fed whole as a Content-Type to mp_boundary/mp_param.
 *
 * For every input the body is parsed three times: in one piece, in pseudo-random chunks of
 * 1..64 bytes (seeded by the 2 bytes), and one byte at a time. Each run records what the
 * callbacks saw (part headers, data merged per part, part ends), the status and done/in_part.
 * Invariants (otherwise abort()):
 *   1. the three transcripts are identical: how the socket cut the body changes nothing;
 *   2. no part's data contains the delimiter CRLF "--" boundary;
 *   3. after a failing feed the parser calls nothing and fails again;
 *   4. a part whose header block contains "X-Fail" makes part_begin fail: that code comes out.
 * mp_boundary on the body's first line must give a boundary of at most 70 bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/multipart.h"
#include "util/buf.h"
#include "util/err.h"

#define FAIL_CODE RS_EIO

static void invariant(int ok, const char *what)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_multipart: INVARIANT: %s\n", what);
#ifndef FUZZ_NO_INVARIANT
    abort();
#endif
}

typedef struct run {
    rs_buf log;          /* 'B' len headers | 'D' len data (merged) | 'E' */
    size_t data_at;      /* offset of the open 'D' record's length, or 0 */
    rs_buf part;         /* the current part's data, to look for the delimiter */
    const char *delim;   /* CRLF "--" boundary */
    size_t dlen;
    int after_error;     /* the parser failed: no callback may come */
    int failed;          /* part_begin returned FAIL_CODE */
} run;

static int put_record(run *r, char kind, const void *p, size_t n)
{
    uint64_t len = n;
    r->data_at = 0;
    if (rs_buf_putc(&r->log, kind))
        return RS_ENOMEM;
    if (kind == 'D')
        r->data_at = r->log.len;
    return rs_buf_append(&r->log, &len, sizeof len) || rs_buf_append(&r->log, p, n) ? RS_ENOMEM : RS_OK;
}

static int on_begin(void *ctx, const char *headers)
{
    run *r = ctx;
    invariant(!r->after_error, "part_begin called after an error");
    rs_buf_reset(&r->part);
    if (put_record(r, 'B', headers, strlen(headers)))
        return RS_ENOMEM;
    r->failed = strstr(headers, "X-Fail") != NULL;
    return r->failed ? FAIL_CODE : RS_OK;
}

static int on_data(void *ctx, const uint8_t *p, size_t n)
{
    run *r = ctx;
    invariant(!r->after_error, "part_data called after an error");
    invariant(n > 0, "part_data with no bytes");
    if (rs_buf_append(&r->part, p, n))
        return RS_ENOMEM;
    if (!r->data_at)
        return put_record(r, 'D', p, n);
    uint64_t len;
    memcpy(&len, r->log.p + r->data_at, sizeof len);
    len += n;
    memcpy(r->log.p + r->data_at, &len, sizeof len);
    return rs_buf_append(&r->log, p, n) ? RS_ENOMEM : RS_OK;
}

static int contains(const rs_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; b->len >= n && i <= b->len - n; i++)
        if (!memcmp(b->p + i, s, n))
            return 1;
    return 0;
}

static int on_end(void *ctx)
{
    run *r = ctx;
    invariant(!r->after_error, "part_end called after an error");
    invariant(!contains(&r->part, r->delim, r->dlen), "a part's data holds the delimiter");
    rs_buf_reset(&r->part);
    return put_record(r, 'E', "", 0);
}

/* chunk: 0 whole, 1 one byte at a time, else the seed of the chunk sizes */
static void parse(const char *boundary, const uint8_t *body, size_t n, unsigned chunk, rs_buf *transcript)
{
    char delim[MP_MAX_BOUNDARY + 8];
    snprintf(delim, sizeof delim, "\r\n--%s", boundary);
    run r = {.log = RS_BUF_INIT, .part = RS_BUF_INIT, .delim = delim, .dlen = strlen(delim)};
    const mp_callbacks cb = {on_begin, on_data, on_end};
    mp_parser *m = NULL;
    if (mp_parser_new(boundary, &cb, &r, &m) != RS_OK)
        abort(); /* the harness only makes valid boundaries */
    int rc = RS_OK;
    uint32_t state = chunk * 2654435761u + 1;
    for (size_t off = 0; off < n;) {
        size_t step = n - off;
        if (chunk == 1)
            step = 1;
        else if (chunk) {
            state = state * 1103515245u + 12345u;
            size_t want = 1 + (state >> 16) % 64;
            step = want < step ? want : step;
        }
        int frc = mp_parser_feed(m, body + off, step);
        if (rc != RS_OK)
            invariant(frc != RS_OK, "a feed after an error succeeded");
        else
            rc = frc;
        r.after_error = rc != RS_OK;
        off += step;
    }
    if (r.failed)
        invariant(rc == FAIL_CODE || rc == RS_ENOMEM, "a failing callback's code was lost");
    rs_buf_printf(&r.log, "|rc=%d done=%d in_part=%d", rc, mp_parser_done(m), mp_parser_in_part(m));
    mp_parser_free(m);
    rs_buf_free(&r.part);
    *transcript = r.log;
}

static void content_type(const uint8_t *data, size_t size)
{
    char ct[256], out[MP_MAX_BOUNDARY + 2], ty[64];
    size_t n = size < sizeof ct - 1 ? size : sizeof ct - 1;
    memcpy(ct, data, n);
    ct[n] = 0;
    if (mp_boundary(ct, out, sizeof out) == RS_OK)
        invariant(strlen(out) >= 1 && strlen(out) <= MP_MAX_BOUNDARY, "mp_boundary gave a bad boundary");
    if (mp_param(ct, "type", ty, sizeof ty) == RS_OK)
        invariant(strlen(ty) < sizeof ty, "mp_param overflowed");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    content_type(data, size);
    if (size < 1)
        return 0;
    size_t bl = 1 + data[0] % MP_MAX_BOUNDARY;
    if (size < 1 + bl + 2)
        return 0;
    char boundary[MP_MAX_BOUNDARY + 1];
    for (size_t i = 0; i < bl; i++) {
        char c = (char)data[1 + i];
        boundary[i] = c == '\r' || c == 0 ? 'x' : c;
    }
    boundary[bl] = 0;
    unsigned seed = 2u + (unsigned)(data[1 + bl] | data[2 + bl] << 8);
    const uint8_t *body = data + 3 + bl;
    size_t n = size - 3 - bl;
    rs_buf whole, chunks, bytes;
    parse(boundary, body, n, 0, &whole);
    parse(boundary, body, n, seed, &chunks);
    parse(boundary, body, n, 1, &bytes);
    invariant(whole.len == chunks.len && !memcmp(whole.p, chunks.p, whole.len), "chunked parse differs from whole");
    invariant(whole.len == bytes.len && !memcmp(whole.p, bytes.p, whole.len), "bytewise parse differs from whole");
    rs_buf_free(&whole);
    rs_buf_free(&chunks);
    rs_buf_free(&bytes);
    return 0;
}
