/*
 * dump.h - a human-readable listing of a DICOM file, in the spirit of DCMTK's dcmdump:
 * one line per element with tag, VR, value (text in UTF-8, long values cut), length, VM and
 * keyword; sequences and items indented.
 */
#ifndef DCM_DUMP_H
#define DCM_DUMP_H

#include "../util/buf.h"
#include "dataset.h"

typedef struct dcm_dump_opts {
    unsigned max_value_chars; /* cut printed values after this many characters (0 = 64) */
    int no_meta;              /* skip the file meta group */
} dcm_dump_opts;

int dcm_dump(const dcm_file *f, const dcm_dump_opts *o, rs_buf *out);

#endif
