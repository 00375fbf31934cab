/*
 * ts.h - transfer syntaxes: how a dataset is encoded on the wire or on disk.
 *
 * The reader needs three facts (explicit VR? big endian? deflated?) and the renderer a
 * fourth (is the pixel data encapsulated, and with which codec); everything else about a
 * transfer syntax is its UID.
 */
#ifndef DCM_TS_H
#define DCM_TS_H

#include <stddef.h>
#include <stdint.h>

#define DCM_TS_IMPLICIT_LE "1.2.840.10008.1.2"
#define DCM_TS_EXPLICIT_LE "1.2.840.10008.1.2.1"
#define DCM_TS_DEFLATED_LE "1.2.840.10008.1.2.1.99"
#define DCM_TS_EXPLICIT_BE "1.2.840.10008.1.2.2"

typedef struct dcm_ts {
    const char *uid;
    const char *name;
    uint8_t explicit_vr;
    uint8_t big_endian;
    uint8_t deflated;
    uint8_t encapsulated; /* pixel data in fragments */
    uint8_t retired;
} dcm_ts;

/* Known transfer syntax for a UID (trailing NUL/space padding ignored); NULL when unknown. */
const dcm_ts *dcm_ts_find(const char *uid, size_t n);
/* The three uncompressed syntaxes, for readers that must guess and writers that default. */
const dcm_ts *dcm_ts_implicit_le(void);
const dcm_ts *dcm_ts_explicit_le(void);
const dcm_ts *dcm_ts_explicit_be(void);
/*
 * A syntax for an unknown UID: all DICOM transfer syntaxes other than the implicit and the
 * big-endian one are explicit VR little endian with encapsulated pixel data (PS3.5 A.4).
 */
const dcm_ts *dcm_ts_generic_encapsulated(void);

#endif
