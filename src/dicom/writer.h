/*
 * writer.h - the dataset model back to bytes: Part 10 files or bare datasets, in any of the
 * uncompressed transfer syntaxes (and the original one for compressed pixel data, which is
 * copied, never transcoded here).
 *
 * Lengths of defined-length sequences, items and group lengths are recomputed from what is
 * written, so a dataset re-encoded in its own syntax comes out byte for byte as it went in
 * when it was well-formed, and one re-encoded in another syntax is consistent.
 * Every Part 10 file radshare writes gets a zeroed preamble unless told to keep the original
 * (a preamble can carry an executable header: CVE-2019-11687).
 */
#ifndef DCM_WRITER_H
#define DCM_WRITER_H

#include "../util/buf.h"
#include "dataset.h"

typedef struct dcm_write_opts {
    const dcm_ts *ts;     /* NULL: the file's own syntax */
    int no_preamble;      /* write the meta group without the 128-byte preamble and DICM */
    int no_meta;          /* write the bare dataset (no preamble, no meta group) */
    int keep_preamble;    /* copy the original preamble instead of zeros */
} dcm_write_opts;

/*
 * Encode f into out (appended). Bulk values are loaded from the source first. The meta group is
 * completed if needed (SOP class/instance from the dataset, transfer syntax, implementation).
 */
int dcm_write(dcm_file *f, const dcm_write_opts *o, rs_buf *out, rs_err *err);

/* Encode and write to path through a temporary file + rename (durable: fsync). */
int dcm_write_path(dcm_file *f, const dcm_write_opts *o, const char *path, rs_err *err);
/* Bytes already encoded (a whole file) written to path the same way. */
int dcm_write_bytes_path(const rs_buf *b, const char *path, rs_err *err);

/* Fill in the required meta elements for transfer syntax ts from the dataset. */
int dcm_meta_complete(dcm_file *f, const dcm_ts *ts, rs_err *err);

#define DCM_IMPL_CLASS_UID "1.2.826.0.1.3680043.10.1449.1"
#define DCM_IMPL_VERSION "RADSHARE_010"

#endif
