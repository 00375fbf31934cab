/*
 * export.h - a study as IHE PDI-style patient media: DICOMDIR at the root, the instances under
 * DICOM/ST000001/SE00000n/IM00000n (8-character upper-case names, PS3.10 8.2 / PS3.11 file IDs),
 * README.TXT, INDEX.HTM listing series and instances for a browser, with a JPEG thumbnail of each
 * series' middle image in IHE_PDI/ (src/render). Every DICOM file written has a zeroed preamble.
 *
 * Written through a sink: a directory, or a ZIP streamed to any callback (util/zip.h), which is
 * also how the share-link download sends a study over HTTP. Reads the archive without its lock
 * (catalog.h), so it runs beside `radshare serve`.
 */
#ifndef BACKUP_EXPORT_H
#define BACKUP_EXPORT_H

#include <stdint.h>

#include "../util/err.h"
#include "../util/zip.h"

typedef struct export_opts {
    int quiet;
    int deflate_dicom;   /* ZIP: deflate the DICOM files too (text files always are) */
} export_opts;

typedef struct export_report {
    uint64_t instances, series, bytes;
} export_report;

/* dir must not exist or be empty. */
int backup_export_dir(const char *datadir, const char *study_uid, const char *dir, const export_opts *o,
                      export_report *rep, rs_err *err);
/* The same layout as one ZIP, sent through sink as it is made. */
int backup_export_zip(const char *datadir, const char *study_uid, zip_sink_fn sink, void *ctx,
                      const export_opts *o, export_report *rep, rs_err *err);

#endif
