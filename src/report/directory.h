/*
 * directory.h - the recipients directory: who a ReferringPhysicianName is, and how to reach them.
 *
 * A text file of blocks, one per practitioner (UTF-8, '#' comments):
 *
 *   [DUPONT^JEAN]                   # the ReferringPhysicianName as studies carry it
 *   name = Dr Jean Dupont           # shown in the e-mail
 *   email = jean.dupont@example.org
 *   hl7 = ris.example.org:2575      # MLLP endpoint
 *   hl7_application = GPNET         # MSH-5
 *   hl7_facility = CABINET-DUPONT   # MSH-6
 *
 * Matching is case-insensitive (ASCII letters) and ignores padding: spaces around components,
 * trailing empty components ("DUPONT^JEAN^^^" is "Dupont^Jean"). Only the first (alphabetic)
 * component group of a PN is compared.
 */
#ifndef REPORT_DIRECTORY_H
#define REPORT_DIRECTORY_H

#include <stddef.h>

#include "../util/err.h"
#include "report.h"

#define REPORT_DIR_MAX_BYTES (4 * 1024 * 1024)
#define REPORT_DIR_MAX_ENTRIES 20000

typedef struct report_directory report_directory;

/* Parse a directory from memory / from a file. Errors carry the line number in err->msg. */
int report_dir_parse(const char *text, size_t n, report_directory **out, rs_err *err);
int report_dir_load(const char *path, report_directory **out, rs_err *err);
void report_dir_free(report_directory *d);
size_t report_dir_count(const report_directory *d);

/* The recipient for a PN; RS_ENOTFOUND when the directory does not know it. */
int report_dir_lookup(const report_directory *d, const char *pn, report_recipient *out);

/* The comparison key of a PN (see above) into out. */
void report_pn_key(const char *pn, char *out, size_t cap);

#endif
