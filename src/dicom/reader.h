/*
 * reader.h - DICOM Part 10 files and raw datasets into the dataset model.
 *
 * Streams through the input once. Values at or above a size threshold (pixel data, large
 * private blobs) are skipped, not read, and can be loaded later; the reader can also stop
 * at a tag (usually Pixel Data) when only the header matters, which is what ingest does.
 * Every length is checked against what remains and against hard caps before anything is
 * allocated, so a hostile file costs at most the configured memory.
 *
 * Malformed input: errors carry the byte offset and a one-line reason. Recoverable oddities
 * (missing meta, a meta group that lies about the transfer syntax, trailing padding, stray
 * delimiters) are accepted with a warning recorded in dcm_file.warnings.
 */
#ifndef DCM_READER_H
#define DCM_READER_H

#include "dataset.h"
#include "input.h"

typedef struct dcm_read_opts {
    uint32_t stop_tag;     /* stop before this top-level tag (e.g. DCM_TAG_PIXEL_DATA); 0 = read all */
    uint32_t bulk_min;     /* don't load values of this many bytes or more (seekable inputs); 0 = load all */
    uint32_t max_value;    /* largest single value accepted; 0 = default (1 GiB) */
    size_t max_memory;     /* memory ceiling for the parsed object; 0 = default (2 GiB) */
    uint16_t max_depth;    /* sequence nesting limit; 0 = default (64) */
    uint8_t strict;        /* treat warnings as errors */
} dcm_read_opts;

/* Read a whole file by path (bulk values can be loaded later from the same path). */
int dcm_read_path(const char *path, const dcm_read_opts *o, dcm_file **out, rs_err *err);
/* Read from a memory buffer; the buffer need not outlive the result (values are copied). */
int dcm_read_mem(const uint8_t *data, size_t n, const dcm_read_opts *o, dcm_file **out, rs_err *err);
/* Read from any input (the caller keeps ownership of in). */
int dcm_read_input(dcm_in *in, const dcm_read_opts *o, dcm_file **out, rs_err *err);

#endif
