/*
 * norm.h - normal forms of attribute values, so that stored values and query keys compare.
 *
 * The index keeps values as received (UTF-8) for answering, and a normal form where matching
 * needs one: person names case-folded (C-FIND PN matching is case-insensitive here, as in most
 * archives), dates without ACR-NEMA dots, times padded to full precision for range matching.
 * Query keys go through the same functions, so both sides always agree.
 */
#ifndef STORE_NORM_H
#define STORE_NORM_H

#include <stddef.h>

#include "../util/buf.h"

/* Length of a normalised time "HHMMSS.FFFFFF" (without the NUL). */
#define STORE_TM_LEN 13
/* Length of a normalised date "YYYYMMDD". */
#define STORE_DA_LEN 8

/*
 * Append s (UTF-8, n bytes) to out with letters upper-cased: ASCII, Latin-1, Latin Extended-A,
 * Greek and Cyrillic. Other characters (and invalid bytes) are copied unchanged.
 */
int store_norm_upper(const char *s, size_t n, rs_buf *out);

/*
 * The matching form of a person name (whole value, UTF-8): upper-cased, spaces at both ends
 * of each component group removed, empty trailing components ("^^") and empty trailing groups
 * ("==") dropped. Wildcards are ordinary characters here, so patterns normalise the same way.
 */
int store_norm_pn(const char *s, rs_buf *out);

/* "YYYYMMDD" from "YYYYMMDD" or "YYYY.MM.DD" into out[9]; -1 when s is not such a date. */
int store_norm_da(const char *s, char out[STORE_DA_LEN + 1]);

/*
 * "HHMMSS.FFFFFF" from a DICOM time ("HH", "HHMM", "HHMMSS", "HHMMSS.F..."; ACR-NEMA colons
 * accepted) into out[14]. Missing parts are filled with the smallest value, or with the largest
 * when upper is set ("10" as an upper bound means up to 10:59:59.999999). -1 when not a time.
 */
int store_norm_tm(const char *s, int upper, char out[STORE_TM_LEN + 1]);

#endif
