/*
 * multipart.h - a streaming multipart (RFC 2046) parser: bytes go in as they arrive, parts come
 * out through callbacks, nothing but the current part's header block (capped) is kept.
 * Used by STOW-RS uploads; usable by any route with a streamed body.
 */
#ifndef HTTP_MULTIPART_H
#define HTTP_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#define MP_MAX_BOUNDARY 70   /* RFC 2046 */
#define MP_MAX_HEADERS 16384 /* one part's header block */

typedef struct mp_callbacks {
    /* A part starts; headers is its raw header block (NUL-terminated, may be empty). */
    int (*part_begin)(void *ctx, const char *headers);
    int (*part_data)(void *ctx, const uint8_t *p, size_t n);
    /* The part's closing delimiter was seen: the part is complete. */
    int (*part_end)(void *ctx);
} mp_callbacks;

typedef struct mp_parser mp_parser;

/* RS_EINVAL for an empty or over-long boundary. */
int mp_parser_new(const char *boundary, const mp_callbacks *cb, void *ctx, mp_parser **out);
/* RS_EFORMAT for a malformed body (header block over the cap, junk after a delimiter);
   a callback's error is passed on. After an error the parser takes nothing more. */
int mp_parser_feed(mp_parser *m, const uint8_t *p, size_t n);
/* The closing delimiter has been seen. */
int mp_parser_done(const mp_parser *m);
/* Inside a part (begun, not ended): what a cut body leaves. */
int mp_parser_in_part(const mp_parser *m);
void mp_parser_free(mp_parser *m);

/* The boundary parameter of a Content-Type (quoted or not) into out. RS_EINVAL when absent. */
int mp_boundary(const char *content_type, char *out, size_t cap);
/* The value of parameter name ("type") of a header value into out, unquoted; RS_ENOTFOUND. */
int mp_param(const char *value, const char *name, char *out, size_t cap);

#endif
