/* input.c - memory, fd and inflate inputs for the reader (see input.h). */
#include "input.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define FD_BUF_SIZE (64u * 1024u)
#define FD_FIRST_READ (8u * 1024u)

/* ---- memory ---------------------------------------------------------------------------- */

static int mem_fill(dcm_in *in, size_t need)
{
    (void)need;
    in->eof = 1;
    return RS_ETRUNC;
}

static int mem_skip(dcm_in *in, uint64_t n)
{
    (void)n;
    in->eof = 1;
    return RS_ETRUNC; /* everything is in the window: a skip past it is past the end */
}

static void noop_close(dcm_in *in) { (void)in; }

void dcm_in_mem(dcm_in *in, const uint8_t *data, size_t n)
{
    memset(in, 0, sizeof *in);
    in->p = data;
    in->avail = n;
    in->size = n;
    in->seekable = 1;
    in->eof = 1;
    in->fill = mem_fill;
    in->skip = mem_skip;
    in->close = noop_close;
}

/* ---- buffered inputs (fd, inflate) share their window handling ----------------------------- */

typedef struct window {
    uint8_t *buf;
    size_t cap;
} window;

/* Make room for need bytes: move the unread window to the buffer start, growing it if needed. */
static int window_prepare(dcm_in *in, window *w, size_t need)
{
    if (need > w->cap) {
        size_t cap = w->cap;
        while (cap < need)
            cap *= 2;
        uint8_t *nb = malloc(cap);
        if (!nb)
            return RS_ENOMEM;
        memcpy(nb, in->p, in->avail);
        free(w->buf);
        w->buf = nb;
        w->cap = cap;
        in->p = nb;
    } else if (in->p != w->buf) {
        memmove(w->buf, in->p, in->avail);
        in->p = w->buf;
    }
    return RS_OK;
}

/* Skip by filling and discarding: for inputs that cannot seek. */
static int skip_by_reading(dcm_in *in, uint64_t n)
{
    while (n > 0) {
        int rc = in->fill(in, 1);
        if (rc)
            return rc;
        size_t k = in->avail < n ? in->avail : (size_t)n;
        dcm_in_advance(in, k);
        n -= k;
    }
    return RS_OK;
}

/* ---- file descriptor -------------------------------------------------------------------- */

typedef struct fd_impl {
    int fd;
    int can_seek;
    size_t next_read; /* size of the next read() */
    window w;
} fd_impl;

/* Move the unread window to the buffer start and read more until need bytes or EOF. */
static int fd_fill(dcm_in *in, size_t need)
{
    fd_impl *f = in->impl;
    int rc = window_prepare(in, &f->w, need);
    if (rc)
        return rc;
    while (in->avail < need) {
        if (in->eof)
            return RS_ETRUNC;
        /* read a little at first and more as the file proves long: a header is a few KB and
           the bulk behind it is skipped with a seek, so big reads would copy bytes for nothing */
        size_t want = f->next_read > need - in->avail ? f->next_read : need - in->avail;
        if (want > f->w.cap - in->avail)
            want = f->w.cap - in->avail;
        if (f->next_read < f->w.cap)
            f->next_read *= 2;
        ssize_t r = read(f->fd, f->w.buf + in->avail, want);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            in->sys_errno = errno;
            return RS_EIO;
        }
        if (r == 0) {
            in->eof = 1;
            return RS_ETRUNC;
        }
        in->avail += (size_t)r;
    }
    return RS_OK;
}

static int fd_skip(dcm_in *in, uint64_t n)
{
    fd_impl *f = in->impl;
    if (f->can_seek && in->size != UINT64_MAX) {
        if (n > in->size - in->pos) {
            in->pos = in->size;
            in->eof = 1;
            return RS_ETRUNC;
        }
        if (lseek(f->fd, (off_t)n, SEEK_CUR) < 0) {
            in->sys_errno = errno;
            return RS_EIO;
        }
        in->pos += n;
        return RS_OK;
    }
    return skip_by_reading(in, n);
}

static void fd_close(dcm_in *in)
{
    fd_impl *f = in->impl;
    if (f) {
        free(f->w.buf);
        free(f);
    }
    in->impl = NULL;
}

int dcm_in_fd(dcm_in *in, int fd, rs_err *err)
{
    memset(in, 0, sizeof *in);
    fd_impl *f = calloc(1, sizeof *f);
    if (!f || !(f->w.buf = malloc(FD_BUF_SIZE))) {
        free(f);
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    }
    f->fd = fd;
    f->w.cap = FD_BUF_SIZE;
    f->next_read = FD_FIRST_READ;
    in->impl = f;
    in->p = f->w.buf;
    in->size = UINT64_MAX;
    struct stat st;
    off_t cur = lseek(fd, 0, SEEK_CUR);
    if (cur >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        f->can_seek = 1;
        in->seekable = 1;
        in->pos = (uint64_t)cur;
        in->size = (uint64_t)st.st_size;
    }
    in->fill = fd_fill;
    in->skip = fd_skip;
    in->close = fd_close;
    return RS_OK;
}

/* ---- inflate ------------------------------------------------------------------------------ */

typedef struct inf_impl {
    z_stream zs;
    dcm_in *base;
    window w;
    int done;
} inf_impl;

static int inf_fill(dcm_in *in, size_t need)
{
    inf_impl *z = in->impl;
    int rc = window_prepare(in, &z->w, need);
    if (rc)
        return rc;
    while (in->avail < need) {
        if (z->done) {
            in->eof = 1;
            return RS_ETRUNC;
        }
        dcm_in *b = z->base;
        if (b->avail == 0) {
            rc = b->fill(b, 1);
            if (rc == RS_ETRUNC) {
                /* deflate stream ended without its final block: treat as end of data */
                z->done = 1;
                continue;
            }
            if (rc)
                return rc;
        }
        z->zs.next_in = (Bytef *)b->p;
        z->zs.avail_in = b->avail > UINT32_MAX ? UINT32_MAX : (uInt)b->avail;
        z->zs.next_out = z->w.buf + in->avail;
        z->zs.avail_out = (uInt)(z->w.cap - in->avail);
        int zr = inflate(&z->zs, Z_NO_FLUSH);
        size_t used = (size_t)((const uint8_t *)z->zs.next_in - b->p);
        dcm_in_advance(b, used);
        in->avail = (size_t)(z->zs.next_out - z->w.buf);
        if (zr == Z_STREAM_END)
            z->done = 1;
        else if (zr != Z_OK && zr != Z_BUF_ERROR)
            return RS_EFORMAT;
    }
    return RS_OK;
}

static void inf_close(dcm_in *in)
{
    inf_impl *z = in->impl;
    if (z) {
        inflateEnd(&z->zs);
        free(z->w.buf);
        free(z);
    }
    in->impl = NULL;
}

int dcm_in_inflate(dcm_in *in, dcm_in *base, rs_err *err)
{
    memset(in, 0, sizeof *in);
    inf_impl *z = calloc(1, sizeof *z);
    if (!z || !(z->w.buf = malloc(FD_BUF_SIZE))) {
        free(z);
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    }
    if (inflateInit2(&z->zs, -MAX_WBITS) != Z_OK) {
        free(z->w.buf);
        free(z);
        return rs_err_set(err, RS_ENOMEM, "cannot start zlib inflater");
    }
    z->base = base;
    z->w.cap = FD_BUF_SIZE;
    in->impl = z;
    in->p = z->w.buf;
    in->size = UINT64_MAX;
    in->fill = inf_fill;
    in->skip = skip_by_reading;
    in->close = inf_close;
    return RS_OK;
}

/* ---- common ------------------------------------------------------------------------------- */

int dcm_in_read(dcm_in *in, void *dst, uint64_t n)
{
    uint8_t *d = dst;
    size_t k = in->avail < n ? in->avail : (size_t)n;
    if (d && k)
        memcpy(d, in->p, k);
    dcm_in_advance(in, k);
    n -= k;
    if (d)
        d += k;
    if (n == 0)
        return RS_OK;
    if (!d)
        return in->skip(in, n);
    while (n > 0) {
        int rc = in->fill(in, 1);
        if (rc)
            return rc;
        k = in->avail < n ? in->avail : (size_t)n;
        memcpy(d, in->p, k);
        d += k;
        dcm_in_advance(in, k);
        n -= k;
    }
    return RS_OK;
}

int dcm_in_at_end(dcm_in *in)
{
    if (in->avail > 0)
        return 0;
    return in->fill(in, 1) != RS_OK;
}

void dcm_in_close(dcm_in *in)
{
    if (in->close)
        in->close(in);
}
