/*
 * hl7.h - the HL7 v2.5 messages a report travels in: ORU^R01 out, ACK in.
 *
 * Pure functions (no I/O, no clock): the caller gives the timestamp and the control id, so the
 * message for a delivery is the same on every retry and the tests can compare exact bytes.
 *
 * ORU^R01 layout (segments end with CR):
 *   MSH|^~\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|TS||ORU^R01^ORU_R01|CTRLID|P|2.5|||AL|NE||UNICODE UTF-8
 *   PID|1||PATIENTID||FAMILY^GIVEN^MIDDLE^SUFFIX^PREFIX||BIRTHDATE|SEX
 *   OBR|1|ACCESSION|STUDYUID|^PROCEDURE|||STUDYDATE||||||||||||ACCESSION|||TS|||F
 *   OBX|1|TX|REPORT^Report^L|1|<one line of the report>||||||F      (one OBX per line)
 *   OBX|n|RP|LINK^Images^L|1|URL^RADSHARE^TEXT^HTML||||||F
 *   OBX|n+1|ST|113014^Study Instance UID^DCM|1|STUDYUID||||||F
 * Every value is escaped (\F\ \S\ \T\ \R\ \E\); other control characters become spaces.
 */
#ifndef REPORT_HL7_H
#define REPORT_HL7_H

#include <stddef.h>

#include "../util/buf.h"
#include "../util/err.h"

typedef struct report_hl7_oru {
    const char *sending_app, *sending_facility;
    const char *receiving_app, *receiving_facility;
    const char *timestamp;    /* YYYYMMDDHHMMSS (MSH-7, OBR-22) */
    const char *control_id;   /* MSH-10, echoed by the ACK in MSA-2 */
    const char *patient_id, *patient_name /* DICOM PN */, *birth_date, *sex;
    const char *accession, *study_uid, *procedure, *study_date;
    const char *author;       /* OBX-16 responsible observer (may be NULL) */
    const char *text;         /* report text, lines split on LF / CRLF */
    const char *link_url;
} report_hl7_oru;

/* Append s escaped for an HL7 field (standard delimiters). */
int report_hl7_escape(rs_buf *out, const char *s);
/* Append a DICOM PN (Family^Given^Middle^Prefix^Suffix) as an HL7 XPN (Family^Given^Middle^Suffix^Prefix). */
int report_hl7_xpn(rs_buf *out, const char *pn);
/* Build the whole message (segments separated by CR, no MLLP framing). */
int report_hl7_build_oru(const report_hl7_oru *m, rs_buf *out);

/* What an ACK said. */
typedef struct report_hl7_ack {
    char code[3];             /* MSA-1: AA CA AE CE AR CR */
    char control_id[200];     /* MSA-2 */
    char text[200];           /* MSA-3 or ERR, for last_error */
} report_hl7_ack;

/* Parse an ACK (MSH + MSA at least). RS_EFORMAT when it is not one. */
int report_hl7_parse_ack(const char *msg, size_t n, report_hl7_ack *ack, rs_err *err);

#endif
