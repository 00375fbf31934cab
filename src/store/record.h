/*
 * record.h - what the index learns from one instance file: the catalogued attributes (attrs.h)
 * as UTF-8, their matching forms, and the header as DICOM JSON for /metadata.
 *
 * Everything here is computed from the file's bytes (plus the file's mtime, see store.h), which
 * is what makes the index rebuildable from objects/ alone. Reading stops before Pixel Data and
 * leaves big values on disk: ingest never touches pixels.
 */
#ifndef STORE_RECORD_H
#define STORE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "../util/arena.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "../dicom/dataset.h"
#include "attrs.h"
#include "blobstore.h"

#define STORE_UID_MAX 64

/* One catalogued value. */
typedef struct store_value {
    const char *s;    /* UTF-8 as received, padding removed; "" when absent */
    const char *norm; /* STORE_AK_PN: matching form (norm.h); else NULL */
    int64_t i;        /* STORE_AK_INT */
    uint8_t has_i;    /* the integer is present */
} store_value;

typedef struct store_record {
    char hash[STORE_HASH_HEX + 1]; /* SHA-256 of the file, lowercase hex */
    uint64_t size;                 /* file size in bytes */
    int64_t received_ns;           /* file mtime, ns since the epoch: ingest time */
    char ts_uid[STORE_UID_MAX + 1];
    const char *patient_key;       /* identity of the patient row, see record.c */
    store_value v[STORE_MAX_ATTRS]; /* by catalog index (store_attr_index) */
    rs_buf json;                   /* header as DICOM JSON; len 0 when over the size cap */
    int json_dropped;              /* the JSON was larger than the cap and is not kept */
    rs_arena arena;                /* owns the strings */
} store_record;

typedef struct store_record_opts {
    size_t max_memory;    /* ceiling for parsing one header; 0 = 256 MiB */
    size_t json_max;      /* largest header JSON kept in the index; 0 = 16 MiB */
    uint32_t inline_max;  /* binary values up to this size are inlined in the JSON; 0 = 1024 */
} store_record_opts;

/*
 * Parse the file at path and build its record (hash, size and received_ns are left for the
 * caller). RS_EFORMAT with a clear message when the file is not DICOM or lacks one of
 * SOPInstanceUID, SOPClassUID, StudyInstanceUID, SeriesInstanceUID; RS_ETRUNC when the header
 * is cut short.
 */
int store_record_read(const char *path, const store_record_opts *o, store_record **out, rs_err *err);
void store_record_free(store_record *r);

/*
 * Append the UTF-8 text of a string element of ds (all values, each trimmed of padding;
 * Specific Character Set applied) to out. Nothing for absent, binary and SQ elements.
 */
int store_elem_text(const dcm_ds *ds, dcm_elem *e, rs_buf *out, rs_err *err);

/* The value of a catalogued tag (NULL when the tag is not in the catalog). */
const store_value *store_record_get(const store_record *r, uint32_t tag);
/* Its text, "" when absent or not catalogued. */
const char *store_record_str(const store_record *r, uint32_t tag);

#endif
