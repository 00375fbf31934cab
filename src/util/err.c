/* err.c - see err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int err_vset(rs_err *e, int code, int has_off, uint64_t off, const char *fmt, va_list ap)
{
    if (!e)
        return code;
    e->code = code;
    e->has_offset = has_off;
    e->offset = off;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    return code;
}

int rs_err_set(rs_err *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = err_vset(e, code, 0, 0, fmt, ap);
    va_end(ap);
    return code;
}

int rs_err_at(rs_err *e, int code, uint64_t offset, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = err_vset(e, code, 1, offset, fmt, ap);
    va_end(ap);
    return code;
}

void rs_err_clear(rs_err *e)
{
    if (e)
        memset(e, 0, sizeof *e);
}

const char *rs_strerror(int code)
{
    switch (code) {
    case RS_OK: return "ok";
    case RS_EIO: return "I/O error";
    case RS_ENOMEM: return "out of memory";
    case RS_EFORMAT: return "malformed data";
    case RS_ETRUNC: return "truncated data";
    case RS_ELIMIT: return "limit exceeded";
    case RS_EINVAL: return "invalid argument";
    case RS_ENOTFOUND: return "not found";
    case RS_EUNSUPPORTED: return "unsupported";
    default: return "unknown error";
    }
}
