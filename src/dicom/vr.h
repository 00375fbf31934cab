/*
 * vr.h - DICOM value representations (PS3.5 6.2).
 *
 * A VR is kept as its two ASCII letters packed in a uint16_t ('O'<<8 | 'B'), so it
 * costs nothing to read from an explicit-VR stream and prints as itself.
 */
#ifndef DCM_VR_H
#define DCM_VR_H

#include <stdint.h>

#define DCM_VR(a, b) ((uint16_t)(((a) << 8) | (b)))

enum {
    DCM_VR_AE = DCM_VR('A', 'E'), DCM_VR_AS = DCM_VR('A', 'S'), DCM_VR_AT = DCM_VR('A', 'T'),
    DCM_VR_CS = DCM_VR('C', 'S'), DCM_VR_DA = DCM_VR('D', 'A'), DCM_VR_DS = DCM_VR('D', 'S'),
    DCM_VR_DT = DCM_VR('D', 'T'), DCM_VR_FL = DCM_VR('F', 'L'), DCM_VR_FD = DCM_VR('F', 'D'),
    DCM_VR_IS = DCM_VR('I', 'S'), DCM_VR_LO = DCM_VR('L', 'O'), DCM_VR_LT = DCM_VR('L', 'T'),
    DCM_VR_OB = DCM_VR('O', 'B'), DCM_VR_OD = DCM_VR('O', 'D'), DCM_VR_OF = DCM_VR('O', 'F'),
    DCM_VR_OL = DCM_VR('O', 'L'), DCM_VR_OV = DCM_VR('O', 'V'), DCM_VR_OW = DCM_VR('O', 'W'),
    DCM_VR_PN = DCM_VR('P', 'N'), DCM_VR_SH = DCM_VR('S', 'H'), DCM_VR_SL = DCM_VR('S', 'L'),
    DCM_VR_SQ = DCM_VR('S', 'Q'), DCM_VR_SS = DCM_VR('S', 'S'), DCM_VR_ST = DCM_VR('S', 'T'),
    DCM_VR_SV = DCM_VR('S', 'V'), DCM_VR_TM = DCM_VR('T', 'M'), DCM_VR_UC = DCM_VR('U', 'C'),
    DCM_VR_UI = DCM_VR('U', 'I'), DCM_VR_UL = DCM_VR('U', 'L'), DCM_VR_UN = DCM_VR('U', 'N'),
    DCM_VR_UR = DCM_VR('U', 'R'), DCM_VR_US = DCM_VR('U', 'S'), DCM_VR_UT = DCM_VR('U', 'T'),
    DCM_VR_UV = DCM_VR('U', 'V'),
    DCM_VR_NONE = 0
};

/* Kinds of value, for code that must treat VRs by family. */
enum dcm_vr_kind {
    DCM_VK_UNKNOWN = 0,
    DCM_VK_STRING,  /* backslash-separated text values: AE AS CS DA DS DT IS LO PN SH TM UC UI */
    DCM_VK_TEXT,    /* one free-text value, backslash is literal: LT ST UT UR */
    DCM_VK_NUMBER,  /* binary numbers: FL FD SL SS UL US SV UV */
    DCM_VK_AT,      /* attribute tags */
    DCM_VK_BINARY,  /* opaque bytes: OB OD OF OL OV OW UN */
    DCM_VK_SQ
};

typedef struct dcm_vr_info {
    uint16_t vr;
    uint8_t kind;        /* enum dcm_vr_kind */
    uint8_t long_len;    /* explicit VR uses 2 reserved bytes + 32-bit length */
    uint8_t swap;        /* byte-swap unit for big endian: 0/1 none, 2, 4, 8 */
    uint8_t charset;     /* text is affected by Specific Character Set (SH LO ST LT UC UT PN) */
    uint8_t pad;         /* padding byte for odd lengths: ' ' or '\0' */
    uint16_t max_len;    /* maximum length of one value in bytes (0 = unbounded/not fixed) */
    uint8_t fixed_size;  /* size of one binary value (NUMBER/AT kinds), else 0 */
} dcm_vr_info;

/* NULL when vr is not one of the standard VRs. */
const dcm_vr_info *dcm_vr_info_get(uint16_t vr);
/* Accepts two bytes read from an explicit-VR stream; 1 if they are a known VR. */
int dcm_vr_is_valid(uint16_t vr);
/* Writes the two letters and a NUL into out[3]. Non-printable bytes become '?'. */
void dcm_vr_str(uint16_t vr, char out[3]);
uint16_t dcm_vr_from_str(const char *s);

#endif
