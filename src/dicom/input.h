/*
 * input.h - the byte source the Part 10 reader pulls from.
 *
 * One small interface over three kinds of input: a memory buffer (zero copy), a file
 * descriptor (buffered reads; big values are skipped with a seek and never read), and a
 * zlib inflater stacked on another input (Deflated Explicit VR Little Endian). The reader
 * asks for "at least n bytes in the window" and advances; it never sees which kind it has.
 */
#ifndef DCM_INPUT_H
#define DCM_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"

typedef struct dcm_in dcm_in;

struct dcm_in {
    const uint8_t *p;  /* window start = current position */
    size_t avail;      /* bytes in the window */
    uint64_t pos;      /* stream offset of p[0] */
    uint64_t size;     /* total stream size when known, else UINT64_MAX */
    int seekable;      /* pos can be used later to pread a value back (bulk data) */
    int eof;           /* the underlying source has nothing more to give */
    /* kind-specific */
    int (*fill)(dcm_in *in, size_t need);  /* make avail >= need if possible; RS_OK or RS_EIO */
    int (*skip)(dcm_in *in, uint64_t n);   /* consume n bytes beyond the window */
    void (*close)(dcm_in *in);
    void *impl;
    int sys_errno;     /* errno of the last I/O failure */
};

/* A memory input: no copy, buffer must outlive the input. */
void dcm_in_mem(dcm_in *in, const uint8_t *data, size_t n);
/* A buffered fd input from the current file position (the fd is not closed by dcm_in_close). */
int dcm_in_fd(dcm_in *in, int fd, rs_err *err);
/* An inflater over base (raw deflate, no zlib header); stream offsets restart at 0. */
int dcm_in_inflate(dcm_in *in, dcm_in *base, rs_err *err);
void dcm_in_close(dcm_in *in);

/* Ensure n bytes are in the window: RS_OK, RS_ETRUNC at end of stream, RS_EIO on failure. */
static inline int dcm_in_need(dcm_in *in, size_t n)
{
    return in->avail >= n ? RS_OK : in->fill(in, n);
}

static inline void dcm_in_advance(dcm_in *in, size_t n)
{
    in->p += n;
    in->avail -= n;
    in->pos += n;
}

/* Consume n bytes, copying them to dst (which may be NULL to discard). */
int dcm_in_read(dcm_in *in, void *dst, uint64_t n);
/* 1 when no byte is left (may try to fill). */
int dcm_in_at_end(dcm_in *in);
/* Bytes known to remain, UINT64_MAX when unknown. */
static inline uint64_t dcm_in_remaining(const dcm_in *in)
{
    return in->size == UINT64_MAX ? UINT64_MAX : in->size - in->pos;
}

#endif
