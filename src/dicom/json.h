/*
 * json.h - the DICOM JSON model (PS3.18 Annex F), both directions.
 *
 * Writing: a dataset becomes {"GGGGEEEE": {"vr": .., "Value": [..]}} with text in UTF-8,
 * numbers as JSON numbers, person names as component objects, and binary values either
 * inline (base64) or as a BulkDataURI produced by the caller (a file offset for the CLI, a
 * WADO-RS URL for the web server).
 * Reading: the same text back into a dataset (UTF-8, Specific Character Set ISO_IR 192).
 */
#ifndef DCM_JSON_H
#define DCM_JSON_H

#include "../util/buf.h"
#include "dataset.h"

/* Called for a binary value written as BulkDataURI; append the URI (unquoted) to out. */
typedef int (*dcm_json_bulk_fn)(void *ctx, const dcm_ds *ds, const dcm_elem *e, rs_buf *out);

typedef struct dcm_json_opts {
    uint32_t inline_max;    /* binary values up to this many bytes go inline; larger ones bulk */
    dcm_json_bulk_fn bulk;  /* NULL: everything inline (bulk values are loaded first) */
    void *bulk_ctx;
    int pretty;             /* indent with two spaces per level */
} dcm_json_opts;

/* Append the JSON object for ds to out. */
int dcm_json_write(const dcm_ds *ds, const dcm_json_opts *o, rs_buf *out, rs_err *err);

/*
 * Parse DICOM JSON text into a new dcm_file (dataset only; no meta). Strings become UTF-8
 * values and (0008,0005) is set to ISO_IR 192 when any text value is not ASCII.
 * BulkDataURI values are kept as empty values with the URI recorded nowhere (they are
 * references the caller resolves); InlineBinary is decoded.
 */
int dcm_json_read(const char *text, size_t n, dcm_file **out, rs_err *err);

#endif
