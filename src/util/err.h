/*
 * err.h - the one error convention of radshare.
 *
 * Every fallible function returns an int status: RS_OK (0) or a negative RS_E* code.
 * Details travel in an rs_err the caller owns (may be NULL when the caller does not care):
 * a message, and for parsers the byte offset where the problem was found.
 */
#ifndef RS_ERR_H
#define RS_ERR_H

#include <stdint.h>

enum {
    RS_OK = 0,
    RS_EIO = -1,          /* operating system I/O error */
    RS_ENOMEM = -2,       /* allocation failed */
    RS_EFORMAT = -3,      /* malformed input */
    RS_ETRUNC = -4,       /* input ended early */
    RS_ELIMIT = -5,       /* a configured size/depth/count limit was exceeded */
    RS_EINVAL = -6,       /* bad argument */
    RS_ENOTFOUND = -7,    /* no such thing */
    RS_EUNSUPPORTED = -8  /* valid but not handled */
};

typedef struct rs_err {
    int code;
    int has_offset;
    uint64_t offset;
    char msg[512];
} rs_err;

/* Record an error (if e is not NULL) and return code, so callers can write `return rs_err_set(...)`. */
int rs_err_set(rs_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, with the byte offset in the input where the problem lies. */
int rs_err_at(rs_err *e, int code, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void rs_err_clear(rs_err *e);
const char *rs_strerror(int code);

#endif
