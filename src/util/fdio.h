/*
 * fdio.h - whole-buffer reads and writes on file descriptors, retried across EINTR and short
 * transfers: the loops every module that touches files would otherwise write again.
 */
#ifndef RS_FDIO_H
#define RS_FDIO_H

#include <stddef.h>
#include <stdint.h>

/* Write all n bytes. RS_OK or RS_EIO (errno says why). */
int rs_write_all(int fd, const void *p, size_t n);
/* Read exactly n bytes at offset off. RS_OK, RS_EIO (errno), or RS_ETRUNC at end of file. */
int rs_pread_all(int fd, void *p, size_t n, uint64_t off);

#endif
