/*
 * parts.h - a multipart/related answer made of parts produced one at a time (frames decoded,
 * images rendered, bulk values): only the part being sent is in memory, whatever the number
 * of parts. Used by /frames, study and series /rendered and /bulk (pixels.c).
 */
#ifndef HTTP_PARTS_H
#define HTTP_PARTS_H

#include <stddef.h>

#include "../util/buf.h"
#include "../util/err.h"
#include "http.h"

/* One part being made: its body and header values (location: Content-Location, "" for none). */
typedef struct dw_part {
    rs_buf body;
    char ctype[256];
    char location[640];
} dw_part;

/* Produce part i (0-based) into p (empty on entry; ctype defaults to application/octet-stream).
   RS_OK, 1 when there are no more parts, or an RS_E* code. */
typedef int (*dw_part_fn)(void *ctx, size_t i, dw_part *p, rs_err *err);

/*
 * Answer 200 multipart/related; type="part_type" with the parts of next. The first part is made
 * before answering: if that fails, nothing is sent, the code is returned (1: no part at all)
 * with the message in err, and ctx is still the caller's. Otherwise ctx belongs to the stream
 * (free_fn at the end) and a later failure cuts the body (the client sees an incomplete
 * multipart, never a wrong one).
 */
int dw_reply_parts(http_req *rq, const char *part_type, dw_part_fn next, void *ctx, void (*free_fn)(void *),
                   rs_err *err);

#endif
