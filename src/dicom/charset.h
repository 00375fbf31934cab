/*
 * charset.h - Specific Character Set (0008,0005) to UTF-8 (PS3.5 section 6.1, PS3.3 C.12.1.1.2).
 *
 * Text VRs affected by the character set (SH LO ST LT UC UT PN) are kept raw in a parsed
 * dataset; they are decoded here when someone needs text (JSON, dump, index). Single-byte
 * sets, UTF-8, GB18030/GBK and the ISO 2022 code extensions with escape sequences
 * (Japanese JIS X 0201/0208/0212, Korean KS X 1001, Chinese GB2312) are handled through iconv.
 */
#ifndef DCM_CHARSET_H
#define DCM_CHARSET_H

#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"
#include "../util/err.h"

#define DCM_CHARSET_MAX_TERMS 8

/* One parsed (0008,0005) value: the defined terms in order, resolved to internal codes. */
typedef struct dcm_charset {
    uint8_t n;                           /* number of terms (0 = default repertoire) */
    uint8_t term[DCM_CHARSET_MAX_TERMS]; /* internal code of each term, see charset.c */
    uint8_t iso2022;                     /* uses code extensions (any "ISO 2022 ..." term) */
} dcm_charset;

/* The default repertoire (ISO-IR 6, ASCII). */
void dcm_charset_default(dcm_charset *cs);

/*
 * Parse the raw bytes of a Specific Character Set value (backslash-separated, padded, may be
 * empty). Unknown terms are reported through warn (if not NULL) and behave like ISO-IR 6;
 * the return is RS_OK unless value is unusable in a way the caller must know (never for now).
 */
int dcm_charset_parse(const char *value, size_t n, dcm_charset *cs, rs_err *warn);

/*
 * Decode n raw bytes of a value of VR vr to UTF-8, appended to out (the whole value, backslash
 * separators included, padding untouched). For PN the ISO 2022 state resets at '^' and '=',
 * for all VRs at CR, LF, FF, TAB and '\\'. Bytes that cannot be decoded become U+FFFD; the
 * return is RS_OK then too (check *lossy if not NULL) - text is never dropped.
 */
int dcm_charset_decode(const dcm_charset *cs, uint16_t vr, const uint8_t *in, size_t n,
                       rs_buf *out, int *lossy);

#endif
