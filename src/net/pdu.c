/*
 * pdu.c - see pdu.h.
 *
 * Decoding walks the body with spans ([pos, end) of the container being read); a length is
 * compared with what is left of its container before it is believed, so no read can leave the
 * body. Arrays are sized by a counting pass over the same items (which also checks their
 * framing), so nothing is reallocated. Encoding writes length placeholders and patches them when
 * the content is known. The value rules (AE titles, UIDs, context IDs) are single functions used
 * both ways, so what the encoder accepts is exactly what the decoder accepts.
 */
#include "pdu.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum {
    ITEM_APP_CONTEXT = 0x10,
    ITEM_PC_RQ = 0x20,
    ITEM_PC_AC = 0x21,
    ITEM_ABSTRACT_SYNTAX = 0x30,
    ITEM_TS = 0x40,
    ITEM_USER_INFO = 0x50,
    SUB_MAX_LENGTH = 0x51,
    SUB_IMPL_CLASS = 0x52,
    SUB_ASYNC = 0x53,
    SUB_ROLE = 0x54,
    SUB_IMPL_VERSION = 0x55,
    SUB_EXT_NEG = 0x56,
    SUB_COMMON_EXT_NEG = 0x57,
    SUB_IDENTITY_RQ = 0x58,
    SUB_IDENTITY_AC = 0x59
};

#define ASSOC_FIXED 68  /* version, reserved, called AE, calling AE, 32 reserved */
#define FIXED_BODY 4    /* A-ASSOCIATE-RJ, A-RELEASE-RQ/RP, A-ABORT */
#define PDV_HEADER 6    /* item length (4), context ID, message control header */
#define TS_IMPLICIT_LE "1.2.840.10008.1.2"
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, (uint16_t)(v >> 16));
    wr16(p + 2, (uint16_t)v);
}

/* ---- value rules, shared by decoder and encoder ------------------------------------------ */

/* PS3.8 Annex F says UIDs in PDUs are not padded; some peers pad anyway (NUL or space). */
static size_t trim_pad(const uint8_t *s, size_t n)
{
    while (n && (s[n - 1] == 0 || s[n - 1] == ' '))
        n--;
    return n;
}

/*
 * Digits and dots without an empty component (PS3.5 9.1). Components with a leading zero,
 * also forbidden there, are let through: real peers send them, and they harm no one.
 */
static int uid_ok(const uint8_t *s, size_t n)
{
    if (n == 0 || n > PDU_UID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (i == 0 || i == n - 1 || s[i - 1] == '.')
                return 0;
        } else if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return 1;
}

/* ISO 646 G0 graphic characters and space: what names (version names) may hold. */
static int text_ok(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return 0;
    return 1;
}

/*
 * An AE title field: 16 bytes, leading and trailing spaces not significant (PS3.8 9.3.2). The
 * trimmed value goes to out, bytes outside ISO 646 shown as '?' so it can be logged. Valid (1)
 * when non-empty, printable and without backslash (PS3.5 AE); all spaces is explicitly invalid.
 * Trailing NULs are taken as padding: some old peers pad that way.
 */
static int ae_parse(const uint8_t raw[PDU_AE_MAX], char out[PDU_AE_MAX + 1])
{
    size_t b = 0, e = trim_pad(raw, PDU_AE_MAX), k = 0;
    while (b < e && raw[b] == ' ')
        b++;
    int ok = b < e;
    for (size_t i = b; i < e; i++) {
        uint8_t c = raw[i];
        int printable = c >= 0x20 && c <= 0x7e;
        ok &= printable && c != '\\';
        out[k++] = printable ? (char)c : '?';
    }
    out[k] = 0;
    return ok;
}

static int ctx_id_ok(unsigned id)
{
    return id & 1;  /* odd, 1..255 (PS3.8 9.3.2.2) */
}

static int pc_result_ok(unsigned r)
{
    return r <= PDU_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED;
}

static int fixed_body(unsigned type)
{
    return type == PDU_ASSOCIATE_RJ || type == PDU_RELEASE_RQ || type == PDU_RELEASE_RP ||
           type == PDU_ABORT;
}

/* ---- faults: what to tell the peer ------------------------------------------------------- */

static pdu_fault abort_fault(uint8_t reason)
{
    return (pdu_fault){PDU_ABORT, 0, PDU_ABORT_SOURCE_PROVIDER, reason};
}

static pdu_fault rj_fault(uint8_t result, uint8_t source, uint8_t reason)
{
    return (pdu_fault){PDU_ASSOCIATE_RJ, result, source, reason};
}

/* Out of our means: a request is rejected (transient, local limit), anything else aborted. */
static pdu_fault limit_fault(unsigned type)
{
    if (type == PDU_ASSOCIATE_RQ)
        return rj_fault(PDU_RJ_TRANSIENT, PDU_RJ_SOURCE_PRESENTATION, PDU_RJ_PRES_LOCAL_LIMIT);
    return abort_fault(PDU_ABORT_NOT_SPECIFIED);
}

static int vfault(pdu_fault *fault, pdu_fault f, rs_err *err, int code, uint64_t off, const char *fmt,
                  va_list ap)
{
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (fault)
        *fault = f;
    return rs_err_at(err, code, off, "%s", msg);
}

__attribute__((format(printf, 6, 7)))
static int header_fail(pdu_fault *fault, pdu_fault f, rs_err *err, int code, uint64_t off,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = vfault(fault, f, err, code, off, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- decoding ---------------------------------------------------------------------------- */

typedef struct dec {
    const uint8_t *body;
    uint8_t type;
    rs_arena *arena;
    pdu_fault *fault;
    rs_err *err;
    uint32_t *n_unknown;  /* where skipped items are counted */
} dec;

typedef struct span {
    size_t pos, end;  /* offsets into the body */
} span;

static size_t left(span s)
{
    return s.end - s.pos;
}

/* Error at body offset off; err->offset counts from the start of the PDU, header included. */
__attribute__((format(printf, 5, 6)))
static int fail_with(const dec *d, pdu_fault f, int code, size_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = vfault(d->fault, f, d->err, code, (uint64_t)off + PDU_HEADER_LEN, fmt, ap);
    va_end(ap);
    return code;
}

/* The common case: a malformed field, answered with "invalid PDU parameter value". */
#define fail(d, code, off, ...) fail_with((d), abort_fault(PDU_ABORT_INVALID_PARAM), (code), (off), __VA_ARGS__)
#define fail_unexpected(d, off, ...) \
    fail_with((d), abort_fault(PDU_ABORT_UNEXPECTED_PARAM), RS_EFORMAT, (off), __VA_ARGS__)

static int nomem(const dec *d, size_t off)
{
    return fail_with(d, limit_fault(d->type), RS_ENOMEM, off, "out of memory decoding %s",
                     pdu_type_str(d->type));
}

/* Zeroed array of n elements from the arena; NULL for n == 0 (callers test n first). */
static void *zalloc_n(const dec *d, size_t n, size_t size)
{
    return n ? rs_arena_zalloc(d->arena, n * size) : NULL;
}

static void skipped(const dec *d)
{
    if (d->n_unknown)
        (*d->n_unknown)++;
}

/* The item at s->pos (type, reserved, 16-bit length): its type and content; s moves past it. */
static int next_item(const dec *d, span *s, uint8_t *type, span *content)
{
    if (left(*s) < 4)
        return fail(d, RS_EFORMAT, s->pos, "%zu stray bytes where an item header should be", left(*s));
    const uint8_t *h = d->body + s->pos;
    size_t len = rd16(h + 2);
    if (len > left(*s) - 4)
        return fail(d, RS_EFORMAT, s->pos, "item 0x%02x of length %zu overruns its container (%zu bytes left)",
                    h[0], len, left(*s) - 4);
    *type = h[0];
    content->pos = s->pos + 4;
    content->end = content->pos + len;
    s->pos = content->end;
    return RS_OK;
}

/* How many items of one type s holds; checks the framing of all of them on the way. */
static int count_items(const dec *d, span s, uint8_t type, uint32_t *n)
{
    *n = 0;
    while (s.pos < s.end) {
        uint8_t t;
        span c;
        int rc = next_item(d, &s, &t, &c);
        if (rc)
            return rc;
        *n += t == type;
    }
    return RS_OK;
}

/* A field with a 16-bit length prefix inside a sub-item (role, extended negotiation, identity). */
static int take_field(const dec *d, span *s, span *field, const char *what)
{
    if (left(*s) < 2)
        return fail(d, RS_EFORMAT, s->pos, "%s: length field missing", what);
    size_t len = rd16(d->body + s->pos);
    if (len > left(*s) - 2)
        return fail(d, RS_EFORMAT, s->pos, "%s of length %zu overruns its sub-item (%zu bytes left)", what,
                    len, left(*s) - 2);
    field->pos = s->pos + 2;
    field->end = field->pos + len;
    s->pos = field->end;
    return RS_OK;
}

static int expect_len(const dec *d, span s, size_t n, const char *what)
{
    if (left(s) != n)
        return fail(d, RS_EFORMAT, s.pos, "%s of %zu bytes, not %zu", what, left(s), n);
    return RS_OK;
}

static pdu_bytes bytes_of(const dec *d, span s)
{
    return (pdu_bytes){d->body + s.pos, left(s)};
}

static int read_uid(const dec *d, span s, const char **out, const char *what)
{
    const uint8_t *p = d->body + s.pos;
    if (left(s) > PDU_UID_MAX)
        return fail(d, RS_EFORMAT, s.pos, "%s of %zu bytes, over the %d of a UID", what, left(s), PDU_UID_MAX);
    size_t n = trim_pad(p, left(s));
    if (!uid_ok(p, n))
        return fail(d, RS_EFORMAT, s.pos, n ? "%s is not a UID" : "%s is empty", what);
    if (!(*out = rs_arena_strndup(d->arena, (const char *)p, n)))
        return nomem(d, s.pos);
    return RS_OK;
}

static int read_ctx_id(const dec *d, size_t at, uint8_t *id)
{
    *id = d->body[at];
    if (!ctx_id_ok(*id))
        return fail(d, RS_EFORMAT, at, "presentation context ID %u is not odd", *id);
    return RS_OK;
}

static int decode_pc_rq(const dec *d, span s, pdu_pc *pc)
{
    if (left(s) < 4)
        return fail(d, RS_EFORMAT, s.pos, "presentation context item of %zu bytes, under its 4 fixed", left(s));
    int rc = read_ctx_id(d, s.pos, &pc->id);
    span subs = {s.pos + 4, s.end};
    uint32_t n_ts;
    if (rc || (rc = count_items(d, subs, ITEM_TS, &n_ts)))
        return rc;
    if (n_ts == 0)
        return fail(d, RS_EFORMAT, s.pos, "presentation context %u proposes no transfer syntax", pc->id);
    if (!(pc->ts = zalloc_n(d, n_ts, sizeof *pc->ts)))
        return nomem(d, s.pos);
    while (subs.pos < subs.end) {
        uint8_t t;
        span c;
        if ((rc = next_item(d, &subs, &t, &c)))
            return rc;
        if (t == ITEM_ABSTRACT_SYNTAX && pc->abstract_syntax)
            return fail_unexpected(d, c.pos - 4, "presentation context %u: second abstract syntax", pc->id);
        if (t == ITEM_ABSTRACT_SYNTAX)
            rc = read_uid(d, c, &pc->abstract_syntax, "abstract syntax");
        else if (t == ITEM_TS)
            rc = read_uid(d, c, &pc->ts[pc->n_ts++], "transfer syntax");
        else
            skipped(d);
        if (rc)
            return rc;
    }
    if (!pc->abstract_syntax)
        return fail(d, RS_EFORMAT, s.pos, "presentation context %u has no abstract syntax", pc->id);
    return RS_OK;
}

/* For a rejected context the transfer syntax is not significant (PS3.8 9.3.3.2): not read. */
static int decode_pc_ac(const dec *d, span s, pdu_pc *pc)
{
    if (left(s) < 4)
        return fail(d, RS_EFORMAT, s.pos, "presentation context item of %zu bytes, under its 4 fixed", left(s));
    int rc = read_ctx_id(d, s.pos, &pc->id);
    if (rc)
        return rc;
    pc->result = d->body[s.pos + 2];
    if (!pc_result_ok(pc->result))
        return fail(d, RS_EFORMAT, s.pos + 2, "presentation context %u: result %u is not defined", pc->id,
                    pc->result);
    int seen_ts = 0;
    span subs = {s.pos + 4, s.end};
    while (subs.pos < subs.end) {
        uint8_t t;
        span c;
        if ((rc = next_item(d, &subs, &t, &c)))
            return rc;
        if (t != ITEM_TS) {
            skipped(d);
            continue;
        }
        if (seen_ts++)
            return fail_unexpected(d, c.pos - 4, "presentation context %u: second transfer syntax", pc->id);
        if (pc->result != PDU_PC_ACCEPTANCE)
            continue;
        if (!(pc->ts = zalloc_n(d, 1, sizeof *pc->ts)))
            return nomem(d, c.pos);
        pc->n_ts = 1;
        if ((rc = read_uid(d, c, &pc->ts[0], "transfer syntax")))
            return rc;
    }
    if (pc->result == PDU_PC_ACCEPTANCE && !seen_ts)
        return fail(d, RS_EFORMAT, s.pos, "accepted presentation context %u has no transfer syntax", pc->id);
    return RS_OK;
}

static int decode_role(const dec *d, span s, pdu_role *r)
{
    span uid;
    int rc = take_field(d, &s, &uid, "role selection SOP class UID");
    if (rc || (rc = read_uid(d, uid, &r->sop_class, "role selection SOP class UID")) ||
        (rc = expect_len(d, s, 2, "role selection SCU/SCP fields")))
        return rc;
    r->scu = d->body[s.pos];
    r->scp = d->body[s.pos + 1];
    return RS_OK;
}

static int decode_ext_neg(const dec *d, span s, pdu_ext_neg *x)
{
    span uid;
    int rc = take_field(d, &s, &uid, "extended negotiation SOP class UID");
    if (rc || (rc = read_uid(d, uid, &x->sop_class, "extended negotiation SOP class UID")))
        return rc;
    x->info = bytes_of(d, s);
    return RS_OK;
}

static int decode_related(const dec *d, span s, pdu_common_ext_neg *x)
{
    span f, walk = s;
    uint32_t n = 0;
    while (walk.pos < walk.end) {  /* count, checking the framing */
        int rc = take_field(d, &walk, &f, "related general SOP class UID");
        if (rc)
            return rc;
        n++;
    }
    if (n && !(x->related = zalloc_n(d, n, sizeof *x->related)))
        return nomem(d, s.pos);
    for (; x->n_related < n; x->n_related++) {
        int rc = take_field(d, &s, &f, "related general SOP class UID");
        if (rc || (rc = read_uid(d, f, &x->related[x->n_related], "related general SOP class UID")))
            return rc;
    }
    return RS_OK;
}

static int decode_common_ext_neg(const dec *d, span s, pdu_common_ext_neg *x)
{
    span sop, svc, rel;
    int rc = take_field(d, &s, &sop, "common extended negotiation SOP class UID");
    if (rc || (rc = read_uid(d, sop, &x->sop_class, "common extended negotiation SOP class UID")) ||
        (rc = take_field(d, &s, &svc, "service class UID")) ||
        (rc = read_uid(d, svc, &x->service_class, "service class UID")) ||
        (rc = take_field(d, &s, &rel, "related general SOP class list")) ||
        (rc = expect_len(d, s, 0, "bytes after the related general SOP class list")))
        return rc;
    return decode_related(d, rel, x);
}

static int decode_identity(const dec *d, span s, pdu_identity *id)
{
    if (left(s) < 2)
        return fail(d, RS_EFORMAT, s.pos, "user identity sub-item of %zu bytes", left(s));
    id->type = d->body[s.pos];
    id->want_response = d->body[s.pos + 1];
    if (id->type == 0)
        return fail(d, RS_EFORMAT, s.pos, "user identity type 0");
    s.pos += 2;
    span f1, f2;
    int rc = take_field(d, &s, &f1, "user identity primary field");
    if (rc || (rc = take_field(d, &s, &f2, "user identity secondary field")) ||
        (rc = expect_len(d, s, 0, "bytes after the user identity secondary field")))
        return rc;
    id->primary = bytes_of(d, f1);
    id->secondary = bytes_of(d, f2);
    return RS_OK;
}

static int decode_identity_response(const dec *d, span s, pdu_user_info *u)
{
    span f;
    int rc = take_field(d, &s, &f, "user identity server response");
    if (rc || (rc = expect_len(d, s, 0, "bytes after the user identity server response")))
        return rc;
    u->has_identity_response = 1;
    u->identity_response = bytes_of(d, f);
    return RS_OK;
}

/* Trailing NUL/space padding is dropped, as for UIDs (so the encoder refuses a trailing space). */
static int decode_impl_version(const dec *d, span s, const char **out)
{
    const uint8_t *p = d->body + s.pos;
    size_t n = trim_pad(p, left(s));
    if (n == 0 || left(s) > PDU_IMPL_VERSION_MAX || !text_ok(p, n))
        return fail(d, RS_EFORMAT, s.pos, "implementation version name of %zu bytes is not 1 to %d ISO 646 "
                    "characters", left(s), PDU_IMPL_VERSION_MAX);
    if (!(*out = rs_arena_strndup(d->arena, (const char *)p, n)))
        return nomem(d, s.pos);
    return RS_OK;
}

/* One sub-item of the user information item. */
static int decode_user_sub(const dec *d, uint8_t t, span c, pdu_user_info *u)
{
    switch (t) {
    case SUB_MAX_LENGTH: {
        int rc = expect_len(d, c, 4, "maximum length sub-item");
        if (!rc)
            u->max_length = rd32(d->body + c.pos);
        return rc;
    }
    case SUB_IMPL_CLASS:
        return read_uid(d, c, &u->impl_class_uid, "implementation class UID");
    case SUB_ASYNC: {
        int rc = expect_len(d, c, 4, "asynchronous operations window sub-item");
        if (!rc) {
            u->has_async = 1;
            u->async_invoked = rd16(d->body + c.pos);
            u->async_performed = rd16(d->body + c.pos + 2);
        }
        return rc;
    }
    case SUB_ROLE:
        return decode_role(d, c, &u->roles[u->n_roles++]);
    case SUB_IMPL_VERSION:
        return decode_impl_version(d, c, &u->impl_version);
    case SUB_EXT_NEG:
        return decode_ext_neg(d, c, &u->ext_neg[u->n_ext_neg++]);
    case SUB_COMMON_EXT_NEG:
        return decode_common_ext_neg(d, c, &u->common_ext_neg[u->n_common_ext_neg++]);
    case SUB_IDENTITY_RQ:
        return decode_identity(d, c, &u->identity);
    case SUB_IDENTITY_AC:
        return decode_identity_response(d, c, u);
    default:
        skipped(d);
        return RS_OK;
    }
}

static int decode_user_info(const dec *d, span s, pdu_user_info *u)
{
    uint32_t n_roles, n_ext, n_common;
    int rc;
    if ((rc = count_items(d, s, SUB_ROLE, &n_roles)) || (rc = count_items(d, s, SUB_EXT_NEG, &n_ext)) ||
        (rc = count_items(d, s, SUB_COMMON_EXT_NEG, &n_common)))
        return rc;
    if ((n_roles && !(u->roles = zalloc_n(d, n_roles, sizeof *u->roles))) ||
        (n_ext && !(u->ext_neg = zalloc_n(d, n_ext, sizeof *u->ext_neg))) ||
        (n_common && !(u->common_ext_neg = zalloc_n(d, n_common, sizeof *u->common_ext_neg))))
        return nomem(d, s.pos);
    uint32_t seen = 0;  /* the sub-items that may appear once, one bit per type 0x50..0x5f */
    while (s.pos < s.end) {
        uint8_t t;
        span c;
        if ((rc = next_item(d, &s, &t, &c)))
            return rc;
        int once = t == SUB_MAX_LENGTH || t == SUB_IMPL_CLASS || t == SUB_ASYNC || t == SUB_IMPL_VERSION ||
                   t == SUB_IDENTITY_RQ || t == SUB_IDENTITY_AC;
        if (once && (seen & 1u << (t - 0x50)))
            return fail_unexpected(d, c.pos - 4, "second user information sub-item 0x%02x", t);
        if (once)
            seen |= 1u << (t - 0x50);
        if ((rc = decode_user_sub(d, t, c, u)))
            return rc;
    }
    return RS_OK;
}

/* Protocol version and AE titles of an A-ASSOCIATE-RQ/AC: checked, not just copied. */
static int decode_assoc_fixed(const dec *d, pdu_assoc *a)
{
    a->protocol_version = rd16(d->body);
    if (a->protocol_version & 1)
        return RS_OK;
    if (d->type == PDU_ASSOCIATE_RQ)
        return fail_with(d, rj_fault(PDU_RJ_PERMANENT, PDU_RJ_SOURCE_ACSE, PDU_RJ_ACSE_PROTOCOL_VERSION),
                         RS_EFORMAT, 0, "protocol version 0x%04x does not include version 1", a->protocol_version);
    return fail(d, RS_EFORMAT, 0, "protocol version 0x%04x does not include version 1", a->protocol_version);
}

/*
 * Checked last, so the association layer has the whole request to log when it rejects it. In an
 * AC the AE titles are echoes, "not tested when received" (PS3.8 9.3.3): just copied.
 */
static int check_ae_titles(const dec *d, pdu_assoc *a)
{
    int called_ok = ae_parse(d->body + 4, a->called_ae);
    int calling_ok = ae_parse(d->body + 20, a->calling_ae);
    if (d->type != PDU_ASSOCIATE_RQ)
        return RS_OK;
    if (!called_ok)
        return fail_with(d, rj_fault(PDU_RJ_PERMANENT, PDU_RJ_SOURCE_USER, PDU_RJ_USER_CALLED_AE), RS_EFORMAT, 4,
                         "called AE title \"%s\" is not a valid AE title", a->called_ae);
    if (!calling_ok)
        return fail_with(d, rj_fault(PDU_RJ_PERMANENT, PDU_RJ_SOURCE_USER, PDU_RJ_USER_CALLING_AE), RS_EFORMAT,
                         20, "calling AE title \"%s\" is not a valid AE title", a->calling_ae);
    return RS_OK;
}

static int decode_pc(const dec *d, uint8_t t, span c, pdu_assoc *a, uint8_t seen[32])
{
    uint8_t want = d->type == PDU_ASSOCIATE_RQ ? ITEM_PC_RQ : ITEM_PC_AC;
    if (t != want)
        return fail_unexpected(d, c.pos - 4, "presentation context item 0x%02x in an %s", t,
                               pdu_type_str(d->type));
    pdu_pc *pc = &a->pcs[a->n_pcs];
    int rc = t == ITEM_PC_RQ ? decode_pc_rq(d, c, pc) : decode_pc_ac(d, c, pc);
    if (rc)
        return rc;
    if (seen[pc->id >> 3] & 1u << (pc->id & 7))
        return fail(d, RS_EFORMAT, c.pos, "presentation context ID %u used twice", pc->id);
    seen[pc->id >> 3] |= (uint8_t)(1u << (pc->id & 7));
    a->n_pcs++;
    return RS_OK;
}

static int decode_assoc(const dec *d, span s, pdu_assoc *a)
{
    if (left(s) < ASSOC_FIXED)
        return fail(d, RS_EFORMAT, 0, "%s body of %zu bytes, under its %d fixed", pdu_type_str(d->type), left(s),
                    ASSOC_FIXED);
    int rc = decode_assoc_fixed(d, a);
    span items = {ASSOC_FIXED, s.end};
    uint32_t n_pcs;
    if (rc || (rc = count_items(d, items, d->type == PDU_ASSOCIATE_RQ ? ITEM_PC_RQ : ITEM_PC_AC, &n_pcs)))
        return rc;
    if (n_pcs > PDU_MAX_CONTEXTS)
        return fail(d, RS_ELIMIT, ASSOC_FIXED, "%u presentation contexts, over the %d PS3.8 allows", n_pcs,
                    PDU_MAX_CONTEXTS);
    if (n_pcs == 0)
        return fail(d, RS_EFORMAT, ASSOC_FIXED, "no presentation context item");
    if (!(a->pcs = zalloc_n(d, n_pcs, sizeof *a->pcs)))
        return nomem(d, ASSOC_FIXED);
    uint8_t seen[32] = {0};
    int have_user = 0;
    while (items.pos < items.end) {
        uint8_t t;
        span c;
        if ((rc = next_item(d, &items, &t, &c)))
            return rc;
        if ((t == ITEM_APP_CONTEXT && a->app_context) || (t == ITEM_USER_INFO && have_user))
            return fail_unexpected(d, c.pos - 4, "second item of type 0x%02x", t);
        if (t == ITEM_APP_CONTEXT) {
            rc = read_uid(d, c, &a->app_context, "application context name");
        } else if (t == ITEM_PC_RQ || t == ITEM_PC_AC) {
            rc = decode_pc(d, t, c, a, seen);
        } else if (t == ITEM_USER_INFO) {
            have_user = 1;
            rc = decode_user_info(d, c, &a->user);
        } else {
            skipped(d);
        }
        if (rc)
            return rc;
    }
    if (!a->app_context)
        return fail(d, RS_EFORMAT, ASSOC_FIXED, "no application context item");
    if (!have_user)
        return fail(d, RS_EFORMAT, ASSOC_FIXED, "no user information item");
    return check_ae_titles(d, a);
}

/* The PDV item at s->pos; s moves past it. */
static int next_pdv(const dec *d, span *s, pdu_pdv *v)
{
    if (left(*s) < 4)
        return fail(d, RS_EFORMAT, s->pos, "%zu stray bytes where a PDV item should be", left(*s));
    const uint8_t *p = d->body + s->pos;
    uint32_t len = rd32(p);
    if (len < 2)
        return fail(d, RS_EFORMAT, s->pos, "PDV item of length %u, under the 2 of its header", len);
    if (len > left(*s) - 4)
        return fail(d, RS_EFORMAT, s->pos, "PDV item of length %u overruns the PDU (%zu bytes left)", len,
                    left(*s) - 4);
    int rc = read_ctx_id(d, s->pos + 4, &v->ctx_id);
    if (rc)
        return rc;
    v->is_command = p[5] & 1;  /* bits 2-7 are reserved: not tested */
    v->is_last = (p[5] >> 1) & 1;
    v->data = p + PDV_HEADER;
    v->len = len - 2;
    s->pos += 4 + (size_t)len;
    return RS_OK;
}

static int decode_pdata(const dec *d, span s, pdu_pdata *pd)
{
    uint32_t n = 0;
    pdu_pdv v;
    for (span walk = s; walk.pos < walk.end; n++) {
        int rc = next_pdv(d, &walk, &v);
        if (rc)
            return rc;
    }
    if (n == 0)
        return fail(d, RS_EFORMAT, 0, "P-DATA-TF without any PDV");
    if (!(pd->pdvs = zalloc_n(d, n, sizeof *pd->pdvs)))
        return nomem(d, 0);
    for (; pd->n < n; pd->n++)
        next_pdv(d, &s, &pd->pdvs[pd->n]);  /* cannot fail: the same bytes passed above */
    return RS_OK;
}

static int decode_fixed(const dec *d, size_t n, pdu *out)
{
    if (n != FIXED_BODY)
        return fail(d, RS_EFORMAT, 0, "%s body of %zu bytes, not %d", pdu_type_str(d->type), n, FIXED_BODY);
    const uint8_t *b = d->body;
    if (d->type == PDU_ASSOCIATE_RJ)
        out->u.reject = (pdu_reject){b[1], b[2], b[3]};
    else if (d->type == PDU_ABORT)
        out->u.abort = (pdu_abort){b[2], b[3]};
    return RS_OK;  /* A-RELEASE-RQ/RP: four reserved bytes */
}

int pdu_decode(uint8_t type, const uint8_t *body, size_t n, pdu *out, rs_arena *a, pdu_fault *fault,
               rs_err *err)
{
    dec d = {body, type, a, fault, err, NULL};
    memset(out, 0, sizeof *out);
    out->type = type;
    if (!body && n)
        return rs_err_set(err, RS_EINVAL, "no body");
    span s = {0, n};
    switch (type) {
    case PDU_ASSOCIATE_RQ:
    case PDU_ASSOCIATE_AC:
        d.n_unknown = &out->u.assoc.n_unknown;
        return decode_assoc(&d, s, &out->u.assoc);
    case PDU_P_DATA_TF:
        return decode_pdata(&d, s, &out->u.pdata);
    case PDU_ASSOCIATE_RJ:
    case PDU_RELEASE_RQ:
    case PDU_RELEASE_RP:
    case PDU_ABORT:
        return decode_fixed(&d, n, out);
    default:
        return header_fail(fault, abort_fault(PDU_ABORT_UNRECOGNIZED_PDU), err, RS_EFORMAT, 0,
                           "unknown PDU type 0x%02x", type);
    }
}

/* Largest body accepted for a PDU type: see pdu_read_header. */
static uint32_t body_cap(unsigned type, uint32_t max_pdata)
{
    if (type != PDU_P_DATA_TF || max_pdata == 0 || max_pdata > PDU_MAX_BODY - PDU_PDATA_SLACK)
        return PDU_MAX_BODY;
    return max_pdata + PDU_PDATA_SLACK;
}

int pdu_read_header(const uint8_t hdr[PDU_HEADER_LEN], uint32_t max_pdata, uint8_t *type, uint32_t *len,
                    pdu_fault *fault, rs_err *err)
{
    uint8_t t = hdr[0];  /* hdr[1] is reserved: not tested */
    uint32_t n = rd32(hdr + 2);
    *type = t;
    *len = n;
    if (t < PDU_ASSOCIATE_RQ || t > PDU_ABORT)
        return header_fail(fault, abort_fault(PDU_ABORT_UNRECOGNIZED_PDU), err, RS_EFORMAT, 0,
                           "unknown PDU type 0x%02x", t);
    if (fixed_body(t) && n != FIXED_BODY)
        return header_fail(fault, abort_fault(PDU_ABORT_INVALID_PARAM), err, RS_EFORMAT, 2,
                           "%s of length %u, not %d", pdu_type_str(t), n, FIXED_BODY);
    uint32_t cap = body_cap(t, max_pdata);
    if (n > cap)
        return header_fail(fault, limit_fault(t), err, RS_ELIMIT, 2, "%s of length %u, over the %u accepted",
                           pdu_type_str(t), n, cap);
    return RS_OK;
}

int pdu_parse(const uint8_t *p, size_t n, uint32_t max_pdata, pdu *out, rs_arena *a, pdu_fault *fault,
              rs_err *err)
{
    pdu_fault cut = abort_fault(PDU_ABORT_NOT_SPECIFIED);
    if (n < PDU_HEADER_LEN)
        return header_fail(fault, cut, err, RS_ETRUNC, n, "PDU header cut short: %zu of %d bytes", n,
                           PDU_HEADER_LEN);
    uint8_t type;
    uint32_t len;
    int rc = pdu_read_header(p, max_pdata, &type, &len, fault, err);
    if (rc)
        return rc;
    if (n - PDU_HEADER_LEN < len)
        return header_fail(fault, cut, err, RS_ETRUNC, n, "%s cut short: %zu of %u body bytes",
                           pdu_type_str(type), n - PDU_HEADER_LEN, len);
    if (n - PDU_HEADER_LEN > len)
        return header_fail(fault, abort_fault(PDU_ABORT_INVALID_PARAM), err, RS_EFORMAT, PDU_HEADER_LEN + len,
                           "%zu bytes after the %s", n - PDU_HEADER_LEN - len, pdu_type_str(type));
    return pdu_decode(type, p + PDU_HEADER_LEN, len, out, a, fault, err);
}

/* ---- encoding ---------------------------------------------------------------------------- */

typedef struct enc {
    rs_buf *b;
    rs_err *err;
} enc;

__attribute__((format(printf, 2, 3)))
static int bad(const enc *e, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rs_err_set(e->err, RS_EINVAL, "%s", msg);
}

static int put(const enc *e, const void *p, size_t n)
{
    if (rs_buf_append(e->b, p, n) != RS_OK)
        return rs_err_set(e->err, RS_ENOMEM, "out of memory encoding a PDU");
    return RS_OK;
}

static int put8(const enc *e, uint8_t v)
{
    return put(e, &v, 1);
}

static int put16(const enc *e, uint16_t v)
{
    uint8_t b[2];
    wr16(b, v);
    return put(e, b, 2);
}

static int put32(const enc *e, uint32_t v)
{
    uint8_t b[4];
    wr32(b, v);
    return put(e, b, 4);
}

/* A 16-bit length to be patched by len16_end once what it measures is written. */
static int len16_begin(const enc *e, size_t *mark)
{
    *mark = e->b->len;
    return put16(e, 0);
}

static int len16_end(const enc *e, size_t mark, const char *what)
{
    size_t n = e->b->len - mark - 2;
    if (n > 0xffff)
        return bad(e, "%s of %zu bytes does not fit a 16-bit length", what, n);
    wr16(e->b->p + mark, (uint16_t)n);
    return RS_OK;
}

static int item_begin(const enc *e, uint8_t type, size_t *mark)
{
    int rc = put8(e, type);
    if (rc || (rc = put8(e, 0)))
        return rc;
    return len16_begin(e, mark);
}

static int check_uid(const enc *e, const char *uid, const char *what)
{
    if (!uid || !uid_ok((const uint8_t *)uid, strlen(uid)))
        return bad(e, "%s \"%s\" is not a UID of 1 to %d characters", what, uid ? uid : "(null)", PDU_UID_MAX);
    return RS_OK;
}

static int put_uid_item(const enc *e, uint8_t type, const char *uid, const char *what)
{
    size_t mark;
    int rc = check_uid(e, uid, what);
    if (rc || (rc = item_begin(e, type, &mark)) || (rc = put(e, uid, strlen(uid))))
        return rc;
    return len16_end(e, mark, what);
}

/* A 16-bit-length-prefixed field inside a sub-item. */
static int put_field(const enc *e, const void *p, size_t n, const char *what)
{
    if (n > 0xffff)
        return bad(e, "%s of %zu bytes does not fit a 16-bit length", what, n);
    int rc = put16(e, (uint16_t)n);
    return rc ? rc : put(e, p, n);
}

static int put_uid_field(const enc *e, const char *uid, const char *what)
{
    int rc = check_uid(e, uid, what);
    return rc ? rc : put_field(e, uid, strlen(uid), what);
}

/* In a request both AE titles must be valid; in an AC they are echoes, any 16 bytes will do. */
static int put_ae(const enc *e, const char *ae, int must_be_valid, const char *what)
{
    size_t n = ae ? strlen(ae) : 0;
    uint8_t raw[PDU_AE_MAX];
    char norm[PDU_AE_MAX + 1];
    if (n > PDU_AE_MAX)
        return bad(e, "%s \"%s\" is longer than %d characters", what, ae, PDU_AE_MAX);
    memset(raw, ' ', sizeof raw);
    if (n)
        memcpy(raw, ae, n);
    if (must_be_valid && !ae_parse(raw, norm))
        return bad(e, "%s \"%s\" is not a valid AE title", what, ae ? ae : "");
    return put(e, raw, sizeof raw);
}

static int encode_pc_rq(const enc *e, const pdu_pc *pc)
{
    size_t mark;
    int rc;
    if (pc->n_ts == 0)
        return bad(e, "presentation context %u proposes no transfer syntax", pc->id);
    if ((rc = item_begin(e, ITEM_PC_RQ, &mark)) || (rc = put(e, (uint8_t[4]){pc->id, 0, 0, 0}, 4)) ||
        (rc = put_uid_item(e, ITEM_ABSTRACT_SYNTAX, pc->abstract_syntax, "abstract syntax")))
        return rc;
    for (uint32_t i = 0; i < pc->n_ts; i++)
        if ((rc = put_uid_item(e, ITEM_TS, pc->ts[i], "transfer syntax")))
            return rc;
    return len16_end(e, mark, "presentation context item");
}

static int encode_pc_ac(const enc *e, const pdu_pc *pc)
{
    size_t mark;
    int rc;
    if (!pc_result_ok(pc->result))
        return bad(e, "presentation context %u: result %u is not defined", pc->id, pc->result);
    if (pc->result == PDU_PC_ACCEPTANCE && pc->n_ts != 1)
        return bad(e, "accepted presentation context %u needs exactly one transfer syntax", pc->id);
    /* a rejected context still carries a transfer syntax sub-item; DCMTK puts implicit LE there */
    const char *ts = pc->n_ts ? pc->ts[0] : TS_IMPLICIT_LE;
    if ((rc = item_begin(e, ITEM_PC_AC, &mark)) || (rc = put(e, (uint8_t[4]){pc->id, 0, pc->result, 0}, 4)) ||
        (rc = put_uid_item(e, ITEM_TS, ts, "transfer syntax")))
        return rc;
    return len16_end(e, mark, "presentation context item");
}

static int encode_pcs(const enc *e, uint8_t type, const pdu_assoc *a)
{
    uint8_t seen[32] = {0};
    if (a->n_pcs == 0 || a->n_pcs > PDU_MAX_CONTEXTS || !a->pcs)
        return bad(e, "%u presentation contexts: 1 to %d needed", a->n_pcs, PDU_MAX_CONTEXTS);
    for (uint32_t i = 0; i < a->n_pcs; i++) {
        const pdu_pc *pc = &a->pcs[i];
        if (!ctx_id_ok(pc->id) || (seen[pc->id >> 3] & 1u << (pc->id & 7)))
            return bad(e, "presentation context ID %u is even or used twice", pc->id);
        seen[pc->id >> 3] |= (uint8_t)(1u << (pc->id & 7));
        int rc = type == PDU_ASSOCIATE_RQ ? encode_pc_rq(e, pc) : encode_pc_ac(e, pc);
        if (rc)
            return rc;
    }
    return RS_OK;
}

static int encode_role(const enc *e, const pdu_role *r)
{
    size_t mark;
    int rc;
    if ((rc = item_begin(e, SUB_ROLE, &mark)) || (rc = put_uid_field(e, r->sop_class, "role selection SOP class")) ||
        (rc = put8(e, r->scu)) || (rc = put8(e, r->scp)))
        return rc;
    return len16_end(e, mark, "role selection sub-item");
}

static int encode_ext_neg(const enc *e, const pdu_ext_neg *x)
{
    size_t mark;
    int rc;
    if ((rc = item_begin(e, SUB_EXT_NEG, &mark)) ||
        (rc = put_uid_field(e, x->sop_class, "extended negotiation SOP class")) ||
        (rc = put(e, x->info.p, x->info.n)))
        return rc;
    return len16_end(e, mark, "extended negotiation sub-item");
}

static int encode_common_ext_neg(const enc *e, const pdu_common_ext_neg *x)
{
    size_t mark, rel;
    int rc;
    if ((rc = item_begin(e, SUB_COMMON_EXT_NEG, &mark)) ||
        (rc = put_uid_field(e, x->sop_class, "common extended negotiation SOP class")) ||
        (rc = put_uid_field(e, x->service_class, "service class")) || (rc = len16_begin(e, &rel)))
        return rc;
    for (uint32_t i = 0; i < x->n_related; i++)
        if ((rc = put_uid_field(e, x->related[i], "related general SOP class")))
            return rc;
    if ((rc = len16_end(e, rel, "related general SOP class list")))
        return rc;
    return len16_end(e, mark, "common extended negotiation sub-item");
}

static int encode_identity(const enc *e, const pdu_identity *id)
{
    size_t mark;
    int rc;
    if ((rc = item_begin(e, SUB_IDENTITY_RQ, &mark)) || (rc = put8(e, id->type)) ||
        (rc = put8(e, id->want_response)) ||
        (rc = put_field(e, id->primary.p, id->primary.n, "user identity primary field")) ||
        (rc = put_field(e, id->secondary.p, id->secondary.n, "user identity secondary field")))
        return rc;
    return len16_end(e, mark, "user identity sub-item");
}

static int encode_identity_response(const enc *e, pdu_bytes r)
{
    size_t mark;
    int rc;
    if ((rc = item_begin(e, SUB_IDENTITY_AC, &mark)) || (rc = put_field(e, r.p, r.n, "user identity response")))
        return rc;
    return len16_end(e, mark, "user identity response sub-item");
}

static int encode_impl_version(const enc *e, const char *v)
{
    size_t n = strlen(v), mark;
    int rc;
    if (n == 0 || n > PDU_IMPL_VERSION_MAX || !text_ok((const uint8_t *)v, n) || v[n - 1] == ' ')
        return bad(e, "implementation version name \"%s\" is not 1 to %d ISO 646 characters", v,
                   PDU_IMPL_VERSION_MAX);
    if ((rc = item_begin(e, SUB_IMPL_VERSION, &mark)) || (rc = put(e, v, n)))
        return rc;
    return len16_end(e, mark, "implementation version name");
}

/* The optional sub-items that repeat: roles, extended negotiations. */
static int encode_user_lists(const enc *e, const pdu_user_info *u)
{
    int rc = RS_OK;
    for (uint32_t i = 0; i < u->n_roles && !rc; i++)
        rc = encode_role(e, &u->roles[i]);
    for (uint32_t i = 0; i < u->n_ext_neg && !rc; i++)
        rc = encode_ext_neg(e, &u->ext_neg[i]);
    for (uint32_t i = 0; i < u->n_common_ext_neg && !rc; i++)
        rc = encode_common_ext_neg(e, &u->common_ext_neg[i]);
    return rc;
}

/* Sub-items in the order of PS3.7 D.3.3; the maximum length is always sent (it is mandatory). */
static int encode_user_info(const enc *e, const pdu_user_info *u)
{
    size_t mark, sub;
    int rc;
    if ((rc = item_begin(e, ITEM_USER_INFO, &mark)) || (rc = item_begin(e, SUB_MAX_LENGTH, &sub)) ||
        (rc = put32(e, u->max_length)) || (rc = len16_end(e, sub, "maximum length")))
        return rc;
    if (u->impl_class_uid && (rc = put_uid_item(e, SUB_IMPL_CLASS, u->impl_class_uid, "implementation class UID")))
        return rc;
    if (u->has_async && ((rc = item_begin(e, SUB_ASYNC, &sub)) || (rc = put16(e, u->async_invoked)) ||
                         (rc = put16(e, u->async_performed)) || (rc = len16_end(e, sub, "async window"))))
        return rc;
    if ((rc = encode_user_lists(e, u)))
        return rc;
    if (u->impl_version && (rc = encode_impl_version(e, u->impl_version)))
        return rc;
    if (u->identity.type && (rc = encode_identity(e, &u->identity)))
        return rc;
    if (u->has_identity_response && (rc = encode_identity_response(e, u->identity_response)))
        return rc;
    return len16_end(e, mark, "user information item");
}

static int encode_assoc(const enc *e, uint8_t type, const pdu_assoc *a)
{
    uint16_t version = a->protocol_version ? a->protocol_version : PDU_PROTOCOL_VERSION;
    int rq = type == PDU_ASSOCIATE_RQ, rc;
    if (!(version & 1))
        return bad(e, "protocol version 0x%04x does not include version 1", version);
    static const uint8_t reserved[32];
    if ((rc = put16(e, version)) || (rc = put16(e, 0)) || (rc = put_ae(e, a->called_ae, rq, "called AE title")) ||
        (rc = put_ae(e, a->calling_ae, rq, "calling AE title")) || (rc = put(e, reserved, sizeof reserved)) ||
        (rc = put_uid_item(e, ITEM_APP_CONTEXT, a->app_context ? a->app_context : PDU_APP_CONTEXT,
                           "application context name")) ||
        (rc = encode_pcs(e, type, a)))
        return rc;
    return encode_user_info(e, &a->user);
}

/* Item length, context ID and message control header of one PDV. */
static void pdv_header(uint8_t h[PDV_HEADER], uint8_t ctx_id, int is_command, int is_last, uint32_t len)
{
    wr32(h, len + 2);
    h[4] = ctx_id;
    h[5] = (uint8_t)((is_command ? 1 : 0) | (is_last ? 2 : 0));
}

static int encode_pdata(const enc *e, const pdu_pdata *pd)
{
    if (pd->n == 0 || !pd->pdvs)
        return bad(e, "P-DATA-TF without any PDV");
    for (uint32_t i = 0; i < pd->n; i++) {
        const pdu_pdv *v = &pd->pdvs[i];
        uint8_t h[PDV_HEADER];
        if (!ctx_id_ok(v->ctx_id) || v->len > PDU_MAX_BODY)
            return bad(e, "PDV %u: context ID %u is even or %u bytes is too long", i, v->ctx_id, v->len);
        pdv_header(h, v->ctx_id, v->is_command, v->is_last, v->len);
        int rc = put(e, h, sizeof h);
        if (rc || (rc = put(e, v->data, v->len)))
            return rc;
    }
    return RS_OK;
}

static int encode_body(const enc *e, const pdu *p)
{
    switch (p->type) {
    case PDU_ASSOCIATE_RQ:
    case PDU_ASSOCIATE_AC:
        return encode_assoc(e, p->type, &p->u.assoc);
    case PDU_ASSOCIATE_RJ:
        return put(e, (uint8_t[4]){0, p->u.reject.result, p->u.reject.source, p->u.reject.reason}, 4);
    case PDU_P_DATA_TF:
        return encode_pdata(e, &p->u.pdata);
    case PDU_RELEASE_RQ:
    case PDU_RELEASE_RP:
        return put32(e, 0);
    case PDU_ABORT:
        return put(e, (uint8_t[4]){0, 0, p->u.abort.source, p->u.abort.reason}, 4);
    default:
        return bad(e, "unknown PDU type %u", p->type);
    }
}

static void rollback(rs_buf *b, size_t len)
{
    b->len = len;
    if (b->p)
        b->p[len] = 0;
}

int pdu_encode(const pdu *p, rs_buf *out, rs_err *err)
{
    enc e = {out, err};
    size_t start = out->len;
    int rc = put8(&e, p->type);
    if (!rc && !(rc = put8(&e, 0)) && !(rc = put32(&e, 0)) && !(rc = encode_body(&e, p))) {
        size_t n = out->len - start - PDU_HEADER_LEN;
        if (n > PDU_MAX_BODY)
            rc = bad(&e, "%s of %zu bytes, over the %u sent", pdu_type_str(p->type), n, PDU_MAX_BODY);
        else
            wr32(out->p + start + 2, (uint32_t)n);
    }
    if (rc)
        rollback(out, start);
    return rc;
}

int pdu_pdata_header(uint8_t hdr[PDU_PDATA_HEADER_LEN], uint8_t ctx_id, int is_command, int is_last,
                     uint32_t payload_len)
{
    if (!ctx_id_ok(ctx_id) || payload_len > PDU_MAX_BODY - PDV_HEADER)
        return RS_EINVAL;
    hdr[0] = PDU_P_DATA_TF;
    hdr[1] = 0;
    wr32(hdr + 2, payload_len + PDV_HEADER);
    pdv_header(hdr + PDU_HEADER_LEN, ctx_id, is_command, is_last, payload_len);
    return RS_OK;
}

uint32_t pdu_pdata_max_payload(uint32_t peer_max)
{
    uint32_t m = peer_max ? peer_max : PDU_UNLIMITED_SEND;
    if (m > PDU_MAX_BODY)
        m = PDU_MAX_BODY;
    return m > PDU_PDATA_HEADER_LEN ? m - PDU_PDATA_HEADER_LEN : 0;
}

int pdu_frag_init(pdu_frag *f, uint32_t peer_max, uint8_t ctx_id, int is_command, uint64_t total_len)
{
    memset(f, 0, sizeof *f);
    f->chunk = pdu_pdata_max_payload(peer_max);
    if (!f->chunk || !ctx_id_ok(ctx_id)) {
        f->started = 1;  /* done: a caller that ignores the error does not loop forever */
        return RS_EINVAL;
    }
    f->left = total_len;
    f->ctx_id = ctx_id;
    f->is_command = is_command != 0;
    return RS_OK;
}

int pdu_frag_done(const pdu_frag *f)
{
    return f->started && f->left == 0;
}

uint32_t pdu_frag_next(pdu_frag *f, uint8_t hdr[PDU_PDATA_HEADER_LEN])
{
    uint32_t n = f->left < f->chunk ? (uint32_t)f->left : f->chunk;
    f->left -= n;
    f->started = 1;
    pdu_pdata_header(hdr, f->ctx_id, f->is_command, f->left == 0, n);  /* valid by pdu_frag_init */
    return n;
}

int pdu_encode_message(rs_buf *out, uint32_t peer_max, uint8_t ctx_id, int is_command, const uint8_t *msg,
                       size_t n, rs_err *err)
{
    enc e = {out, err};
    pdu_frag f;
    if (pdu_frag_init(&f, peer_max, ctx_id, is_command, n) != RS_OK)
        return bad(&e, "cannot fragment for context ID %u and peer maximum length %u", ctx_id, peer_max);
    size_t start = out->len, done = 0;
    while (!pdu_frag_done(&f)) {
        uint8_t hdr[PDU_PDATA_HEADER_LEN];
        uint32_t k = pdu_frag_next(&f, hdr);
        int rc = put(&e, hdr, sizeof hdr);
        if (rc || (rc = put(&e, msg + done, k))) {
            rollback(out, start);
            return rc;
        }
        done += k;
    }
    return RS_OK;
}

/* ---- names for logs ---------------------------------------------------------------------- */

static const char *pick(const char *const *names, size_t n, unsigned i, const char *otherwise)
{
    return i < n && names[i] ? names[i] : otherwise;
}

const char *pdu_type_str(unsigned type)
{
    static const char *const names[] = {NULL, "A-ASSOCIATE-RQ", "A-ASSOCIATE-AC", "A-ASSOCIATE-RJ",
                                        "P-DATA-TF", "A-RELEASE-RQ", "A-RELEASE-RP", "A-ABORT"};
    return pick(names, COUNT(names), type, "unknown PDU");
}

const char *pdu_rj_result_str(unsigned result)
{
    static const char *const names[] = {NULL, "rejected-permanent", "rejected-transient"};
    return pick(names, COUNT(names), result, "reserved");
}

const char *pdu_rj_source_str(unsigned source)
{
    static const char *const names[] = {NULL, "DICOM UL service-user",
                                        "DICOM UL service-provider (ACSE related function)",
                                        "DICOM UL service-provider (Presentation related function)"};
    return pick(names, COUNT(names), source, "reserved");
}

const char *pdu_rj_reason_str(unsigned source, unsigned reason)
{
    static const char *const user[] = {NULL, "no-reason-given", "application-context-name-not-supported",
                                       "calling-AE-title-not-recognized", NULL, NULL, NULL,
                                       "called-AE-title-not-recognized"};
    static const char *const acse[] = {NULL, "no-reason-given", "protocol-version-not-supported"};
    static const char *const pres[] = {NULL, "temporary-congestion", "local-limit-exceeded"};
    if (source == PDU_RJ_SOURCE_USER)
        return pick(user, COUNT(user), reason, "reserved");
    if (source == PDU_RJ_SOURCE_ACSE)
        return pick(acse, COUNT(acse), reason, "reserved");
    if (source == PDU_RJ_SOURCE_PRESENTATION)
        return pick(pres, COUNT(pres), reason, "reserved");
    return "reserved";
}

const char *pdu_abort_source_str(unsigned source)
{
    static const char *const names[] = {"DICOM UL service-user (initiated abort)", NULL,
                                        "DICOM UL service-provider (initiated abort)"};
    return pick(names, COUNT(names), source, "reserved");
}

const char *pdu_abort_reason_str(unsigned reason)
{
    static const char *const names[] = {"reason-not-specified", "unrecognized-PDU", "unexpected-PDU", NULL,
                                        "unrecognized-PDU parameter", "unexpected-PDU parameter",
                                        "invalid-PDU-parameter value"};
    return pick(names, COUNT(names), reason, "reserved");
}

const char *pdu_pc_result_str(unsigned result)
{
    static const char *const names[] = {"acceptance", "user-rejection", "no-reason (provider rejection)",
                                        "abstract-syntax-not-supported (provider rejection)",
                                        "transfer-syntaxes-not-supported (provider rejection)"};
    return pick(names, COUNT(names), result, "reserved");
}

/* ---- equality ---------------------------------------------------------------------------- */

static int str_eq(const char *a, const char *b)
{
    return a && b ? strcmp(a, b) == 0 : a == b;
}

static int strs_eq(const char *const *a, const char *const *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!str_eq(a[i], b[i]))
            return 0;
    return 1;
}

static int bytes_eq(pdu_bytes a, pdu_bytes b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static int pc_eq(const pdu_pc *a, const pdu_pc *b, uint8_t type)
{
    if (a->id != b->id)
        return 0;
    if (type == PDU_ASSOCIATE_RQ)
        return str_eq(a->abstract_syntax, b->abstract_syntax) && a->n_ts == b->n_ts && strs_eq(a->ts, b->ts, a->n_ts);
    if (a->result != b->result)
        return 0;
    return a->result != PDU_PC_ACCEPTANCE || (a->n_ts == b->n_ts && strs_eq(a->ts, b->ts, a->n_ts));
}

static int ext_eq(const pdu_user_info *a, const pdu_user_info *b)
{
    if (a->n_roles != b->n_roles || a->n_ext_neg != b->n_ext_neg || a->n_common_ext_neg != b->n_common_ext_neg)
        return 0;
    for (uint32_t i = 0; i < a->n_roles; i++)
        if (!str_eq(a->roles[i].sop_class, b->roles[i].sop_class) || a->roles[i].scu != b->roles[i].scu ||
            a->roles[i].scp != b->roles[i].scp)
            return 0;
    for (uint32_t i = 0; i < a->n_ext_neg; i++)
        if (!str_eq(a->ext_neg[i].sop_class, b->ext_neg[i].sop_class) ||
            !bytes_eq(a->ext_neg[i].info, b->ext_neg[i].info))
            return 0;
    for (uint32_t i = 0; i < a->n_common_ext_neg; i++) {
        const pdu_common_ext_neg *x = &a->common_ext_neg[i], *y = &b->common_ext_neg[i];
        if (!str_eq(x->sop_class, y->sop_class) || !str_eq(x->service_class, y->service_class) ||
            x->n_related != y->n_related || !strs_eq(x->related, y->related, x->n_related))
            return 0;
    }
    return 1;
}

static int user_eq(const pdu_user_info *a, const pdu_user_info *b)
{
    const pdu_identity *x = &a->identity, *y = &b->identity;
    if (a->max_length != b->max_length || !str_eq(a->impl_class_uid, b->impl_class_uid) ||
        !str_eq(a->impl_version, b->impl_version) || a->has_async != b->has_async ||
        (a->has_async && (a->async_invoked != b->async_invoked || a->async_performed != b->async_performed)))
        return 0;
    if (x->type != y->type || (x->type && (x->want_response != y->want_response ||
                                           !bytes_eq(x->primary, y->primary) || !bytes_eq(x->secondary, y->secondary))))
        return 0;
    if (a->has_identity_response != b->has_identity_response ||
        (a->has_identity_response && !bytes_eq(a->identity_response, b->identity_response)))
        return 0;
    return ext_eq(a, b);
}

static int assoc_eq(const pdu_assoc *a, const pdu_assoc *b, uint8_t type)
{
    uint16_t va = a->protocol_version ? a->protocol_version : PDU_PROTOCOL_VERSION;
    uint16_t vb = b->protocol_version ? b->protocol_version : PDU_PROTOCOL_VERSION;
    if (va != vb || strcmp(a->called_ae, b->called_ae) || strcmp(a->calling_ae, b->calling_ae) ||
        !str_eq(a->app_context ? a->app_context : PDU_APP_CONTEXT, b->app_context ? b->app_context : PDU_APP_CONTEXT) ||
        a->n_pcs != b->n_pcs)
        return 0;
    for (uint32_t i = 0; i < a->n_pcs; i++)
        if (!pc_eq(&a->pcs[i], &b->pcs[i], type))
            return 0;
    return user_eq(&a->user, &b->user);
}

static int pdata_eq(const pdu_pdata *a, const pdu_pdata *b)
{
    if (a->n != b->n)
        return 0;
    for (uint32_t i = 0; i < a->n; i++) {
        const pdu_pdv *x = &a->pdvs[i], *y = &b->pdvs[i];
        if (x->ctx_id != y->ctx_id || !x->is_command != !y->is_command || !x->is_last != !y->is_last ||
            !bytes_eq((pdu_bytes){x->data, x->len}, (pdu_bytes){y->data, y->len}))
            return 0;
    }
    return 1;
}

int pdu_equal(const pdu *a, const pdu *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case PDU_ASSOCIATE_RQ:
    case PDU_ASSOCIATE_AC:
        return assoc_eq(&a->u.assoc, &b->u.assoc, a->type);
    case PDU_ASSOCIATE_RJ:
        return a->u.reject.result == b->u.reject.result && a->u.reject.source == b->u.reject.source &&
               a->u.reject.reason == b->u.reject.reason;
    case PDU_P_DATA_TF:
        return pdata_eq(&a->u.pdata, &b->u.pdata);
    case PDU_ABORT:
        return a->u.abort.source == b->u.abort.source && a->u.abort.reason == b->u.abort.reason;
    default:
        return 1;  /* the release PDUs carry nothing */
    }
}
