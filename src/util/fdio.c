/* fdio.c - see fdio.h. */
#include "fdio.h"

#include <errno.h>
#include <unistd.h>

#include "err.h"

int rs_write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return RS_EIO;
        }
        p += r;
        n -= (size_t)r;
    }
    return RS_OK;
}

int rs_pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return RS_EIO;
        if (r == 0)
            return RS_ETRUNC;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return RS_OK;
}
