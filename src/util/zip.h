/*
 * zip.h - ZIP archives: a streaming writer (export media, the share-link download over HTTP)
 * and a reader with limits for untrusted archives (import).
 *
 * Writer: every byte goes out through a callback as it is produced, nothing is seeked back to,
 * so the sink may be a socket. Entries are stored or deflated (zlib), sizes and CRC-32 follow
 * each entry in a data descriptor, ZIP64 structures are used whenever a size or offset needs
 * them (or always, with force_zip64, which is how the tests exercise them).
 *
 * Reader: works from the central directory of a seekable file. Entry names are only ever
 * reported, never used as paths. Limits refuse an archive before anything is inflated (entry
 * count, declared total size, declared ratio, name depth) and bound what inflation may produce
 * (actual size <= declared size, running total <= the cap), so a bomb costs at most the caps;
 * entries whose data overlap (one stream reused by many entries) are refused.
 */
#ifndef RS_ZIP_H
#define RS_ZIP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "err.h"

/* ---- writer --------------------------------------------------------------------------------- */

typedef int (*zip_sink_fn)(void *ctx, const void *p, size_t n); /* RS_OK or an RS_E* code */
typedef struct zip_writer zip_writer;

enum { ZIP_STORE = 0, ZIP_DEFLATE = 8 };
#define ZIP_SIZE_UNKNOWN UINT64_MAX

int zip_writer_new(zip_sink_fn sink, void *ctx, int force_zip64, zip_writer **out, rs_err *err);
/* size_hint: the entry's size if known (decides ZIP64 up front), else ZIP_SIZE_UNKNOWN. */
int zip_entry_begin(zip_writer *w, const char *name, int method, time_t mtime, uint64_t size_hint, rs_err *err);
int zip_entry_write(zip_writer *w, const void *p, size_t n, rs_err *err);
int zip_entry_end(zip_writer *w, rs_err *err);
/* The central directory and end records. The writer is still to be freed. */
int zip_writer_finish(zip_writer *w, rs_err *err);
void zip_writer_free(zip_writer *w);
/* Bytes sent to the sink so far. */
uint64_t zip_writer_offset(const zip_writer *w);

/* ---- reader --------------------------------------------------------------------------------- */

typedef struct zip_limits {
    uint32_t max_entries;     /* 0: 10000 */
    uint64_t max_total;       /* sum of uncompressed sizes; 0: 4 GiB */
    uint64_t max_entry;       /* one entry's uncompressed size; 0: 1 GiB */
    uint32_t max_ratio;       /* uncompressed / compressed; 0: 200 */
    uint32_t max_depth;       /* path components in a name; 0: 16 */
} zip_limits;

typedef struct zip_entry_info {
    char name[1024];          /* as stored (only for reports) */
    uint64_t csize, usize, local_off;
    uint32_t crc;
    uint16_t method, flags;
    int is_dir;
} zip_entry_info;

typedef struct zip_reader zip_reader;

/* fd: a regular file, kept open by the caller for the reader's lifetime. */
int zip_reader_open(int fd, const zip_limits *lim, zip_reader **out, rs_err *err);
size_t zip_reader_count(const zip_reader *r);
const zip_entry_info *zip_reader_entry(const zip_reader *r, size_t i);
/* Inflate entry i into out (reset first), checking sizes, CRC and the running total. */
int zip_reader_extract(zip_reader *r, size_t i, rs_buf *out, rs_err *err);
void zip_reader_close(zip_reader *r);

#endif
