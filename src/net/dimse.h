/*
 * dimse.h - DIMSE command sets (PS3.7 section 9 and 10): the group 0000 dataset that heads
 * every DICOM message, as a plain struct.
 *
 * A command set is always Implicit VR Little Endian (PS3.7 6.3.1). Encoding goes through the
 * dataset model and the writer (so the group length is computed like any other); decoding
 * through the reader. The association layer moves the bytes; the services read and fill
 * this struct.
 */
#ifndef DIMSE_H
#define DIMSE_H

#include <stdint.h>

#include "../util/buf.h"
#include "../util/err.h"

/* Command Field values (PS3.7 E.1). Responses have bit 15 set. */
enum dimse_command {
    DIMSE_C_STORE_RQ = 0x0001, DIMSE_C_STORE_RSP = 0x8001,
    DIMSE_C_GET_RQ = 0x0010, DIMSE_C_GET_RSP = 0x8010,
    DIMSE_C_FIND_RQ = 0x0020, DIMSE_C_FIND_RSP = 0x8020,
    DIMSE_C_MOVE_RQ = 0x0021, DIMSE_C_MOVE_RSP = 0x8021,
    DIMSE_C_ECHO_RQ = 0x0030, DIMSE_C_ECHO_RSP = 0x8030,
    DIMSE_C_CANCEL_RQ = 0x0FFF
};

/* Status codes used here (PS3.7 C, PS3.4 annexes). */
enum dimse_status {
    DIMSE_SUCCESS = 0x0000,
    DIMSE_PENDING = 0xFF00,
    DIMSE_PENDING_WARNING = 0xFF01,     /* C-FIND: optional keys not supported */
    DIMSE_CANCEL = 0xFE00,
    DIMSE_WARNING_SUBOPS = 0xB000,      /* C-MOVE/C-GET: some sub-operations failed */
    DIMSE_WARNING_COERCION = 0xB000,    /* C-STORE: coercion of data elements */
    DIMSE_WARNING_ELEMENTS_DISCARDED = 0xB006,
    DIMSE_REFUSED_NOT_AUTHORIZED = 0x0124,
    DIMSE_REFUSED_OUT_OF_RESOURCES = 0xA700,
    DIMSE_REFUSED_MOVE_DESTINATION = 0xA801,
    DIMSE_MOVE_OUT_OF_RESOURCES_SUBOPS = 0xA702,
    DIMSE_ERROR_DATASET_MISMATCH = 0xA900,
    DIMSE_ERROR_CANNOT_UNDERSTAND = 0xC000,
    DIMSE_UNABLE_TO_PROCESS = 0xC001,
    DIMSE_IDENTIFIER_MISMATCH = 0xA900,
    DIMSE_SOP_CLASS_NOT_SUPPORTED = 0x0122,
    DIMSE_DUPLICATE_INVOCATION = 0x0210,
    DIMSE_MISTYPED_ARGUMENT = 0x0212,
    DIMSE_UNRECOGNIZED_OPERATION = 0x0211,
    DIMSE_PROCESSING_FAILURE = 0x0110
};

#define DIMSE_NO_DATASET 0x0101 /* Command Data Set Type: no data set follows */

typedef struct dimse_cmd {
    uint16_t command;          /* (0000,0100) */
    uint16_t message_id;       /* (0000,0110) requests */
    uint16_t responded_id;     /* (0000,0120) responses */
    uint16_t priority;         /* (0000,0700) */
    uint16_t data_set_type;    /* (0000,0800): DIMSE_NO_DATASET or anything else = present */
    uint16_t status;           /* (0000,0900) responses */
    uint8_t has_status;
    char affected_sop_class[65];     /* (0000,0002) */
    char requested_sop_class[65];    /* (0000,0003) */
    char affected_sop_instance[65];  /* (0000,1000) */
    char move_destination[17];       /* (0000,0600) */
    char move_originator_ae[17];     /* (0000,1030) */
    uint16_t move_originator_id;     /* (0000,1031) */
    uint8_t has_move_originator;
    uint8_t has_counts;              /* the four sub-operation counters below are sent */
    uint16_t remaining, completed, failed, warning; /* (0000,1020..1023) */
    char error_comment[65];          /* (0000,0902) */
    uint32_t offending_element;      /* (0000,0901), 0 = none */
} dimse_cmd;

static inline int dimse_has_dataset(const dimse_cmd *c) { return c->data_set_type != DIMSE_NO_DATASET; }

/* Encode c as an Implicit VR Little Endian command set (with its group length) into out. */
int dimse_encode(const dimse_cmd *c, rs_buf *out, rs_err *err);
/* Decode command set bytes. RS_EFORMAT when it is not a command set or lacks Command Field. */
int dimse_decode(const uint8_t *p, size_t n, dimse_cmd *c, rs_err *err);

const char *dimse_command_str(uint16_t command);
/* Success, pending, warning, cancel, failure, as PS3.7 C classes them. */
const char *dimse_status_class(uint16_t status);

#endif
