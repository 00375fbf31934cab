/*
 * import.h - `radshare import --untrusted`: DICOM instances from media of unknown origin (a
 * folder, a mounted USB key or CD with or without DICOMDIR, a ZIP), and nothing else.
 *
 * The walk opens every directory and file relative to its parent (openat, O_NOFOLLOW), never
 * follows a symbolic link, never opens a device, FIFO or socket, and stops at depth and count
 * limits. A file is read only if it starts like DICOM ("DICM" after a 128-byte preamble, or a
 * bare data set starting with group 0002/0008); everything else is listed with what it looks
 * like and left alone. ZIP archives (at the top or in the folder) are read in memory through
 * util/zip.h with bomb limits; archives inside archives are not opened. Entry names are never
 * used as paths.
 *
 * Each accepted instance is re-encoded by dicom/writer.h before it is stored, which writes a
 * zeroed 128-byte preamble: a preamble may hold a Windows executable header (the DICOM/PE
 * polyglot, CVE-2019-11687). Optional patient reconciliation replaces PatientID (and name) with
 * the local ones, keeping the original ID in OtherPatientIDsSequence.
 *
 * The report (DATA/imports/<time>.tsv, and the same lines on stdout): outcome, original path,
 * SHA-256 of the bytes as found, SHA-256 of the stored object, reason.
 */
#ifndef BACKUP_IMPORT_H
#define BACKUP_IMPORT_H

#include <stdint.h>

#include "../util/err.h"

typedef struct import_opts {
    const char *patient_id;     /* reconcile to this local PatientID (NULL: keep) */
    const char *patient_name;   /* and this PatientName (NULL: keep) */
    int quiet;
    uint32_t max_depth;         /* folder depth; 0: 16 */
    uint32_t max_files;         /* entries walked; 0: 100000 */
    uint64_t max_file;          /* largest file read; 0: 1 GiB */
} import_opts;

typedef struct import_report {
    uint64_t seen, imported, duplicates, skipped, failed;
    char report_path[4096];
} import_report;

int backup_import(const char *path, const char *datadir, const import_opts *o, import_report *rep, rs_err *err);

#endif
