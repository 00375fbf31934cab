/*
 * pdu.h - the DICOM Upper Layer PDU codec (PS3.8 9.3): bytes <-> structs for the seven PDUs.
 *
 * Pure functions, no sockets. The association layer reads the 6-byte PDU header, asks
 * pdu_read_header how long the body is (and whether to refuse it), reads the body, and hands it
 * to pdu_decode. To send, it fills a `pdu` and calls pdu_encode, or, for P-DATA-TF, uses
 * pdu_pdata_header / pdu_frag_* so a large data set goes out from wherever it lies (writev of a
 * 12-byte header and the payload) without being copied into a PDU buffer first.
 *
 * Decoding is strict about lengths (each one checked against its container, nothing read out of
 * bounds, PS3.8 limits enforced) and lenient where PS3.8 asks for it: reserved fields are not
 * tested, unknown items and sub-items are skipped (and counted). A decoded `pdu` points into the
 * caller's arena (arrays, strings) and into the body itself (PDV payloads, opaque sub-item
 * fields): it lives as long as both. On failure the optional pdu_fault says what PS3.8 wants
 * sent back (which A-ABORT, or which A-ASSOCIATE-RJ, e.g. "called AE title not recognized").
 * Design notes: docs/net-pdu.md.
 */
#ifndef PDU_H
#define PDU_H

#include <stddef.h>
#include <stdint.h>

#include "../util/arena.h"
#include "../util/buf.h"
#include "../util/err.h"

enum pdu_type {
    PDU_ASSOCIATE_RQ = 1,
    PDU_ASSOCIATE_AC = 2,
    PDU_ASSOCIATE_RJ = 3,
    PDU_P_DATA_TF = 4,
    PDU_RELEASE_RQ = 5,
    PDU_RELEASE_RP = 6,
    PDU_ABORT = 7
};

#define PDU_HEADER_LEN 6        /* type, reserved, 32-bit big-endian length of the body */
#define PDU_PDATA_HEADER_LEN 12 /* PDU header + PDV length (4) + context ID + control header */
#define PDU_AE_MAX 16
#define PDU_UID_MAX 64
#define PDU_IMPL_VERSION_MAX 16
#define PDU_MAX_CONTEXTS 128    /* odd IDs 1..255 */
#define PDU_PROTOCOL_VERSION 1  /* bit 0 of the protocol-version field: the only version */
#define PDU_APP_CONTEXT "1.2.840.10008.3.1.1.1"
#define PDU_MAX_BODY (16u * 1024u * 1024u)  /* ceiling for any PDU body received or sent */
#define PDU_PDATA_SLACK 1024u               /* tolerance over our advertised maximum length */
#define PDU_UNLIMITED_SEND (128u * 1024u)   /* PDU size we send to a peer that says 0 = no limit */

/* A-ASSOCIATE-RJ fields (PS3.8 table 9-21). Reasons are per source, hence the duplicates. */
enum pdu_rj_result { PDU_RJ_PERMANENT = 1, PDU_RJ_TRANSIENT = 2 };
enum pdu_rj_source {
    PDU_RJ_SOURCE_USER = 1,         /* DICOM UL service-user */
    PDU_RJ_SOURCE_ACSE = 2,         /* DICOM UL service-provider, ACSE related function */
    PDU_RJ_SOURCE_PRESENTATION = 3  /* DICOM UL service-provider, presentation related function */
};
enum pdu_rj_reason {
    PDU_RJ_USER_NO_REASON = 1,
    PDU_RJ_USER_APP_CONTEXT = 2,      /* application-context-name-not-supported */
    PDU_RJ_USER_CALLING_AE = 3,       /* calling-AE-title-not-recognized */
    PDU_RJ_USER_CALLED_AE = 7,        /* called-AE-title-not-recognized */
    PDU_RJ_ACSE_NO_REASON = 1,
    PDU_RJ_ACSE_PROTOCOL_VERSION = 2, /* protocol-version-not-supported */
    PDU_RJ_PRES_CONGESTION = 1,       /* temporary-congestion */
    PDU_RJ_PRES_LOCAL_LIMIT = 2       /* local-limit-exceeded */
};

/* A-ABORT fields (PS3.8 table 9-26). The reason is significant only from the service-provider. */
enum pdu_abort_source { PDU_ABORT_SOURCE_USER = 0, PDU_ABORT_SOURCE_PROVIDER = 2 };
enum pdu_abort_reason {
    PDU_ABORT_NOT_SPECIFIED = 0,
    PDU_ABORT_UNRECOGNIZED_PDU = 1,
    PDU_ABORT_UNEXPECTED_PDU = 2,
    PDU_ABORT_UNRECOGNIZED_PARAM = 4,
    PDU_ABORT_UNEXPECTED_PARAM = 5,
    PDU_ABORT_INVALID_PARAM = 6
};

/* Presentation context result/reason in an A-ASSOCIATE-AC (PS3.8 table 9-18). */
enum pdu_pc_result {
    PDU_PC_ACCEPTANCE = 0,
    PDU_PC_USER_REJECTION = 1,
    PDU_PC_NO_REASON = 2,
    PDU_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED = 3,
    PDU_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED = 4
};

/* User Identity types (PS3.7 D.3.3.7). */
enum pdu_identity_type {
    PDU_IDENTITY_USERNAME = 1,
    PDU_IDENTITY_USERNAME_PASSCODE = 2,
    PDU_IDENTITY_KERBEROS = 3,
    PDU_IDENTITY_SAML = 4,
    PDU_IDENTITY_JWT = 5
};

/* Opaque bytes; after decoding they point into the PDU body. */
typedef struct pdu_bytes {
    const uint8_t *p;
    size_t n;
} pdu_bytes;

/*
 * One presentation context: item 0x20 in an RQ, 0x21 in an AC.
 * RQ: abstract_syntax and the proposed transfer syntaxes (n_ts >= 1); result unused.
 * AC: result; when accepted, the one transfer syntax (n_ts == 1). For a rejected context the
 * transfer syntax "shall not be tested" (PS3.8 9.3.3.2): decoding leaves n_ts 0, encoding sends
 * ts[0] if given, else Implicit VR Little Endian as DCMTK does.
 */
typedef struct pdu_pc {
    uint8_t id;      /* odd, 1..255 */
    uint8_t result;  /* AC: enum pdu_pc_result */
    const char *abstract_syntax;
    const char **ts;
    uint32_t n_ts;
} pdu_pc;

typedef struct pdu_role {  /* 0x54 SCP/SCU Role Selection */
    const char *sop_class;
    uint8_t scu;  /* 0 or 1 as sent */
    uint8_t scp;
} pdu_role;

typedef struct pdu_ext_neg {  /* 0x56 SOP Class Extended Negotiation */
    const char *sop_class;
    pdu_bytes info;  /* service-class-application-information, opaque here */
} pdu_ext_neg;

typedef struct pdu_common_ext_neg {  /* 0x57 SOP Class Common Extended Negotiation */
    const char *sop_class;
    const char *service_class;
    const char **related;  /* related general SOP classes */
    uint32_t n_related;
} pdu_common_ext_neg;

typedef struct pdu_identity {  /* 0x58 User Identity (RQ) */
    uint8_t type;              /* enum pdu_identity_type; 0 = no such sub-item */
    uint8_t want_response;
    pdu_bytes primary;         /* username, Kerberos ticket, SAML assertion, JWT */
    pdu_bytes secondary;       /* passcode (type 2 only) */
} pdu_identity;

/* User Information item (0x50). Absent optional sub-items are 0 / NULL. */
typedef struct pdu_user_info {
    uint32_t max_length;          /* 0x51; 0 = no maximum (also when the sub-item is absent) */
    const char *impl_class_uid;   /* 0x52 */
    const char *impl_version;     /* 0x55, 1..16 characters */
    uint8_t has_async;            /* 0x53 Asynchronous Operations Window */
    uint16_t async_invoked;
    uint16_t async_performed;
    pdu_role *roles;
    uint32_t n_roles;
    pdu_ext_neg *ext_neg;
    uint32_t n_ext_neg;
    pdu_common_ext_neg *common_ext_neg;
    uint32_t n_common_ext_neg;
    pdu_identity identity;        /* 0x58 */
    uint8_t has_identity_response;
    pdu_bytes identity_response;  /* 0x59 server response (AC) */
} pdu_user_info;

/* A-ASSOCIATE-RQ and -AC share one layout (PS3.8 9.3.2, 9.3.3). */
typedef struct pdu_assoc {
    uint16_t protocol_version;  /* bit field; encoding 0 sends PDU_PROTOCOL_VERSION */
    char called_ae[PDU_AE_MAX + 1];   /* leading/trailing spaces removed; in an AC not tested, */
    char calling_ae[PDU_AE_MAX + 1];  /* and bytes outside ISO 646 are shown as '?' */
    const char *app_context;
    pdu_pc *pcs;
    uint32_t n_pcs;
    pdu_user_info user;
    uint32_t n_unknown;  /* unknown items and sub-items skipped (decoding only) */
} pdu_assoc;

typedef struct pdu_reject {
    uint8_t result;  /* enum pdu_rj_result */
    uint8_t source;  /* enum pdu_rj_source */
    uint8_t reason;  /* enum pdu_rj_reason, per source */
} pdu_reject;

typedef struct pdu_abort {
    uint8_t source;  /* enum pdu_abort_source */
    uint8_t reason;  /* enum pdu_abort_reason */
} pdu_abort;

/* One presentation data value: a fragment of a command or data set, zero copy. */
typedef struct pdu_pdv {
    const uint8_t *data;
    uint32_t len;
    uint8_t ctx_id;
    uint8_t is_command;  /* message control header bit 0 */
    uint8_t is_last;     /* bit 1 */
} pdu_pdv;

typedef struct pdu_pdata {
    pdu_pdv *pdvs;
    uint32_t n;
} pdu_pdata;

typedef struct pdu {
    uint8_t type;  /* enum pdu_type */
    union {
        pdu_assoc assoc;    /* RQ, AC */
        pdu_reject reject;  /* RJ */
        pdu_pdata pdata;    /* P-DATA-TF */
        pdu_abort abort;    /* A-ABORT; the release PDUs carry nothing */
    } u;
} pdu;

/*
 * What to answer a peer whose PDU could not be accepted: an A-ABORT (source, reason) or, for an
 * A-ASSOCIATE-RQ that is well formed but unacceptable to the codec (AE titles, protocol
 * version, too big), an A-ASSOCIATE-RJ (result, source, reason).
 */
typedef struct pdu_fault {
    uint8_t reply;  /* PDU_ABORT or PDU_ASSOCIATE_RJ */
    uint8_t result;
    uint8_t source;
    uint8_t reason;
} pdu_fault;

/* ---- decoding ---------------------------------------------------------------------------- */

/*
 * The PDU header: type and body length, set even on failure (for logs). Refuses unknown types
 * (RS_EFORMAT), bodies of the fixed-size PDUs other than 4 bytes (RS_EFORMAT), and bodies over
 * the cap (RS_ELIMIT): PDU_MAX_BODY for an association PDU; for P-DATA-TF, max_pdata (the
 * maximum length we advertised) + PDU_PDATA_SLACK, or PDU_MAX_BODY when max_pdata is 0.
 * fault (may be NULL) is filled on failure.
 */
int pdu_read_header(const uint8_t hdr[PDU_HEADER_LEN], uint32_t max_pdata, uint8_t *type,
                    uint32_t *len, pdu_fault *fault, rs_err *err);

/*
 * Decode a PDU body of n bytes (without its 6-byte header) into out, allocating from a.
 * Errors: RS_EFORMAT (malformed, or unacceptable field values), RS_ELIMIT (a PS3.8 count or
 * size limit), RS_ENOMEM (the arena refused), each with the byte offset in the PDU (header
 * included) in err and the reply to send in fault. A request with a bad called or calling AE
 * title is decoded completely before RS_EFORMAT is returned with an A-ASSOCIATE-RJ fault whose
 * reason is PDU_RJ_USER_CALLED_AE or PDU_RJ_USER_CALLING_AE.
 */
int pdu_decode(uint8_t type, const uint8_t *body, size_t n, pdu *out, rs_arena *a, pdu_fault *fault,
               rs_err *err);

/* Header and body at once: p holds exactly one PDU (RS_ETRUNC if it is cut short). */
int pdu_parse(const uint8_t *p, size_t n, uint32_t max_pdata, pdu *out, rs_arena *a, pdu_fault *fault,
              rs_err *err);

/* ---- encoding ---------------------------------------------------------------------------- */

/*
 * Append one PDU to out. Values are validated as the decoder would (AE titles, UIDs, context
 * IDs and counts, item sizes): RS_EINVAL for a struct that does not make a valid PDU, and then
 * out is left as it was.
 */
int pdu_encode(const pdu *p, rs_buf *out, rs_err *err);

/*
 * The 12 bytes that precede a PDU holding a single PDV of payload_len bytes: PDU header, PDV
 * length, context ID, message control header. The payload follows on the wire (writev).
 * RS_EINVAL for an even context ID or a payload over PDU_MAX_BODY - 6.
 */
int pdu_pdata_header(uint8_t hdr[PDU_PDATA_HEADER_LEN], uint8_t ctx_id, int is_command, int is_last,
                     uint32_t payload_len);

/*
 * Payload bytes per P-DATA-TF PDU to a peer that announced peer_max (its Maximum Length
 * sub-item; 0 = unlimited, sent as PDU_UNLIMITED_SEND). The whole PDU, header included, stays
 * within peer_max, as DCMTK does it; 0 when peer_max is too small to carry any payload.
 */
uint32_t pdu_pdata_max_payload(uint32_t peer_max);

/*
 * Splitting one message (a command or a data set of known length) into PDUs:
 *     pdu_frag f;
 *     pdu_frag_init(&f, peer_max, ctx_id, is_command, total_len);
 *     while (!pdu_frag_done(&f)) {
 *         uint32_t n = pdu_frag_next(&f, hdr);   // write hdr, then the next n payload bytes
 *     }
 * An empty message still yields one (empty, last) fragment.
 */
typedef struct pdu_frag {
    uint64_t left;   /* payload bytes not yet framed */
    uint32_t chunk;  /* payload bytes per PDU */
    uint8_t ctx_id;
    uint8_t is_command;
    uint8_t started;
} pdu_frag;

int pdu_frag_init(pdu_frag *f, uint32_t peer_max, uint8_t ctx_id, int is_command, uint64_t total_len);
int pdu_frag_done(const pdu_frag *f);
uint32_t pdu_frag_next(pdu_frag *f, uint8_t hdr[PDU_PDATA_HEADER_LEN]);

/* A whole in-memory message as P-DATA-TF PDUs appended to out (small commands, tests). */
int pdu_encode_message(rs_buf *out, uint32_t peer_max, uint8_t ctx_id, int is_command,
                       const uint8_t *msg, size_t n, rs_err *err);

/* ---- for logs and tests ------------------------------------------------------------------ */

const char *pdu_type_str(unsigned type);
const char *pdu_rj_result_str(unsigned result);
const char *pdu_rj_source_str(unsigned source);
const char *pdu_rj_reason_str(unsigned source, unsigned reason);
const char *pdu_abort_source_str(unsigned source);
const char *pdu_abort_reason_str(unsigned reason);
const char *pdu_pc_result_str(unsigned result);

/*
 * Same content as PS3.8 sees it: skip counters and the transfer syntax of rejected contexts
 * (not significant) are ignored. For round-trip tests and the fuzzer.
 */
int pdu_equal(const pdu *a, const pdu *b);

#endif
