/*
 * test_pdu.c - the Upper Layer PDU codec (src/net/pdu.c):
 *   - real PDUs captured from DCMTK (tests/data/pdu/, made by tools/capture_pdus.py) decode to
 *     the expected fields, and re-encode to the same bytes;
 *   - every PDU type round-trips through encoder and decoder with rich content;
 *   - P-DATA-TF fragmentation honours the peer's maximum length;
 *   - malformed input is refused, never read out of bounds: truncation at every byte, every
 *     length field off by one, every item emptied, limits (129 contexts, 65-byte UIDs), bad
 *     context IDs and AE titles. Inputs are copied to exact-size heap blocks so that ASan
 *     (make SAN=1) sees any overread.
 * Runs from the repository root (tests/run.sh does).
 */
#include "net/pdu.h"
#include "t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA_DIR "tests/data/pdu/"
#define ARENA_LIMIT ((size_t)64 * 1024 * 1024)
#define UID_VERIFICATION "1.2.840.10008.1.1"
#define UID_MR_STORAGE "1.2.840.10008.5.1.4.1.1.4"
#define TS_IMPLICIT "1.2.840.10008.1.2"
#define TS_EXPLICIT "1.2.840.10008.1.2.1"
#define TS_EXPLICIT_BE "1.2.840.10008.1.2.2"
#define DCMTK_IMPL_UID "1.2.276.0.7230010.3.0.3.6.7"
#define DCMTK_VERSION "OFFIS_DCMTK_367"

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct blob {
    uint8_t *p;
    size_t n;
} blob;

static blob load(const char *name)
{
    char path[256];
    blob b = {NULL, 0};
    snprintf(path, sizeof path, DATA_DIR "%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s (run from the repository root)\n", path);
        return b;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    b.p = malloc(sz > 0 ? (size_t)sz : 1);
    if (b.p && sz > 0 && fread(b.p, 1, (size_t)sz, f) == (size_t)sz)
        b.n = (size_t)sz;
    fclose(f);
    return b;
}

static blob copy(const uint8_t *p, size_t n)
{
    blob b = {malloc(n ? n : 1), n};
    if (n)
        memcpy(b.p, p, n);
    return b;
}

/* A decoded PDU with what it points into. */
typedef struct decoded {
    rs_arena arena;
    pdu p;
    pdu_fault fault;
    rs_err err;
    int rc;
} decoded;

static void parse_into(decoded *d, const uint8_t *p, size_t n, uint32_t max_pdata)
{
    memset(d, 0, sizeof *d);
    rs_arena_init(&d->arena, ARENA_LIMIT);
    d->rc = pdu_parse(p, n, max_pdata, &d->p, &d->arena, &d->fault, &d->err);
}

/* Parse from an exact-size copy; returns the status, with fault and err if asked for. */
static int parse_status(const uint8_t *p, size_t n, uint32_t max_pdata, pdu_fault *fault, rs_err *err)
{
    blob b = copy(p, n);
    rs_arena a;
    pdu out;
    pdu_fault f = {0};
    rs_err e = {0};
    rs_arena_init(&a, ARENA_LIMIT);
    int rc = pdu_parse(b.p, b.n, max_pdata, &out, &a, &f, &e);
    rs_arena_free(&a);
    free(b.p);
    if (fault)
        *fault = f;
    if (err)
        *err = e;
    return rc;
}

static void expect_refused(const uint8_t *p, size_t n, const char *what)
{
    rs_err e;
    int rc = parse_status(p, n, 0, NULL, &e);
    if (rc == RS_OK)
        fprintf(stderr, "  accepted but should not be: %s\n", what);
    CHECK(rc != RS_OK);
    CHECK(rc == RS_OK || e.msg[0] != 0);
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr_len(uint8_t *p, int width, uint32_t v)
{
    for (int i = width - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint32_t rd_len(const uint8_t *p, int width)
{
    return width == 4 ? rd32(p) : rd16(p);
}

static int bytes_are(const uint8_t *p, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

static int same_bytes(const rs_buf *b, const uint8_t *p, size_t n)
{
    return b->len == n && memcmp(b->p, p, n) == 0;
}

static const pdu_pc *find_pc(const pdu_assoc *a, unsigned id)
{
    for (uint32_t i = 0; i < a->n_pcs; i++)
        if (a->pcs[i].id == id)
            return &a->pcs[i];
    return NULL;
}

/* A US value of a command set (implicit VR little endian, group 0000), or -1. */
static long command_us(const uint8_t *c, size_t n, uint16_t elem)
{
    for (size_t pos = 0; pos + 8 <= n;) {
        uint16_t g = (uint16_t)(c[pos] | c[pos + 1] << 8), e = (uint16_t)(c[pos + 2] | c[pos + 3] << 8);
        uint32_t len = (uint32_t)c[pos + 4] | (uint32_t)c[pos + 5] << 8 | (uint32_t)c[pos + 6] << 16 |
                       (uint32_t)c[pos + 7] << 24;
        if (g == 0 && e == elem && len == 2 && pos + 10 <= n)
            return c[pos + 8] | c[pos + 9] << 8;
        pos += 8 + (size_t)len;
    }
    return -1;
}

/* ---- a map of a PDU's length fields, for the mutation tests -------------------------------- */

typedef struct lenref {
    size_t pos;
    int width;
} lenref;

/* An item, sub-item, 16-bit-prefixed field or PDV, with the length fields that enclose it. */
typedef struct field {
    lenref len;
    int kind;  /* item type; FIELD_PREFIXED, FIELD_PDV or FIELD_PDU */
    size_t content, n;
    lenref outer[4];
    int n_outer;
} field;

enum { FIELD_PREFIXED = 0x100, FIELD_PDV = 0x101, FIELD_PDU = 0x102 };

typedef struct fields {
    field f[4096];
    int n;
} fields;

static field *add_field(fields *fs, lenref len, int kind, size_t content, size_t n, const lenref *outer,
                        int n_outer)
{
    if (fs->n == (int)(sizeof fs->f / sizeof fs->f[0]))
        return NULL;
    field *f = &fs->f[fs->n++];
    *f = (field){len, kind, content, n, {{0, 0}}, n_outer};
    if (n_outer)
        memcpy(f->outer, outer, sizeof *outer * (size_t)n_outer);
    return f;
}

/* count consecutive 16-bit-prefixed fields from pos (count < 0: up to end) */
static void walk_prefixed(const uint8_t *p, size_t pos, size_t end, int count, const lenref *o, int n_o,
                          fields *fs)
{
    for (int i = 0; (count < 0 || i < count) && pos + 2 <= end; i++) {
        size_t len = rd16(p + pos);
        add_field(fs, (lenref){pos, 2}, FIELD_PREFIXED, pos + 2, len, o, n_o);
        pos += 2 + len;
    }
}

static void walk_sub_fields(const uint8_t *p, const field *f, const lenref *o, int n_o, fields *fs)
{
    size_t pos = f->content, end = f->content + f->n;
    if (f->kind == 0x54 || f->kind == 0x56 || f->kind == 0x59)
        walk_prefixed(p, pos, end, 1, o, n_o, fs);
    else if (f->kind == 0x58)
        walk_prefixed(p, pos + 2, end, 2, o, n_o, fs);
    else if (f->kind == 0x57 && pos + 4 <= end) {
        size_t rel = pos + 2 + rd16(p + pos);
        rel += 2 + (rel + 2 <= end ? rd16(p + rel) : 0);
        walk_prefixed(p, pos, end, 3, o, n_o, fs);
        if (rel + 2 <= end) {
            lenref o2[4];
            memcpy(o2, o, sizeof *o * (size_t)n_o);
            o2[n_o] = (lenref){rel, 2};
            walk_prefixed(p, rel + 2, rel + 2 + rd16(p + rel), -1, o2, n_o + 1, fs);
        }
    }
}

static void walk_items(const uint8_t *p, size_t pos, size_t end, const lenref *outer, int n_outer, fields *fs)
{
    while (pos + 4 <= end) {
        size_t len = rd16(p + pos + 2);
        field *f = add_field(fs, (lenref){pos + 2, 2}, p[pos], pos + 4, len, outer, n_outer);
        if (!f)
            return;
        lenref o[4];
        memcpy(o, outer, sizeof *outer * (size_t)n_outer);
        o[n_outer] = f->len;
        if (p[pos] == 0x20 || p[pos] == 0x21)
            walk_items(p, pos + 8, pos + 4 + len, o, n_outer + 1, fs);
        else if (p[pos] == 0x50)
            walk_items(p, pos + 4, pos + 4 + len, o, n_outer + 1, fs);
        else if (p[pos] >= 0x54 && p[pos] <= 0x59 && p[pos] != 0x55)
            walk_sub_fields(p, f, o, n_outer + 1, fs);
        pos += 4 + len;
    }
}

static void walk(const uint8_t *p, size_t n, fields *fs)
{
    lenref pdu_len = {2, 4};
    fs->n = 0;
    add_field(fs, pdu_len, FIELD_PDU, 6, n - 6, NULL, 0);
    if (p[0] == PDU_ASSOCIATE_RQ || p[0] == PDU_ASSOCIATE_AC)
        walk_items(p, 6 + 68, n, &pdu_len, 1, fs);
    if (p[0] == PDU_P_DATA_TF)
        for (size_t pos = 6; pos + 4 <= n; pos += 4 + rd32(p + pos))
            add_field(fs, (lenref){pos, 4}, FIELD_PDV, pos + 4, rd32(p + pos), &pdu_len, 1);
}

/* A copy of p with f's content replaced by k bytes of ins, every enclosing length adjusted. */
static blob with_content(const uint8_t *p, size_t n, const field *f, const uint8_t *ins, size_t k)
{
    blob b = {malloc(n - f->n + k + 1), n - f->n + k};
    memcpy(b.p, p, f->content);
    if (k)
        memcpy(b.p + f->content, ins, k);
    memcpy(b.p + f->content + k, p + f->content + f->n, n - f->content - f->n);
    wr_len(b.p + f->len.pos, f->len.width, (uint32_t)k);
    for (int i = 0; i < f->n_outer; i++) {
        const lenref *o = &f->outer[i];
        wr_len(b.p + o->pos, o->width, rd_len(b.p + o->pos, o->width) - (uint32_t)f->n + (uint32_t)k);
    }
    return b;
}

/* ---- DCMTK captures ------------------------------------------------------------------------- */

/*
 * Our encoding of a decoded capture is byte-identical to it, except that DCMTK sends 0xFF in
 * the third (reserved) byte of each presentation context RQ item: patch those, then compare.
 */
static void check_reencodes_to_capture(const pdu *p, const blob *cap)
{
    rs_buf out = RS_BUF_INIT;
    rs_err err = {0};
    CHECK_EQ_INT(pdu_encode(p, &out, &err), RS_OK);
    blob want = copy(cap->p, cap->n);
    static fields fs;
    walk(want.p, want.n, &fs);
    int patched = 0;
    for (int i = 0; i < fs.n; i++)
        if (fs.f[i].kind == 0x20 && want.p[fs.f[i].content + 2] == 0xff) {
            want.p[fs.f[i].content + 2] = 0;
            patched++;
        }
    if (p->type == PDU_ASSOCIATE_RQ)
        CHECK_EQ_INT(patched, p->u.assoc.n_pcs);  /* a DCMTK habit, on every context */
    CHECK(same_bytes(&out, want.p, want.n));
    free(want.p);
    rs_buf_free(&out);
}

static void check_dcmtk_user_info(const pdu_user_info *u)
{
    CHECK_EQ_INT(u->max_length, 16384);
    CHECK_EQ_STR(u->impl_class_uid, DCMTK_IMPL_UID);
    CHECK(u->impl_class_uid && strncmp(u->impl_class_uid, "1.2.276.0.7230010.3.", 20) == 0);
    CHECK_EQ_STR(u->impl_version, DCMTK_VERSION);
    CHECK_EQ_INT(u->has_async, 0);
}

static void test_echoscu(void)
{
    blob b = load("echoscu_assoc_rq.bin");
    decoded d;
    parse_into(&d, b.p, b.n, 0);
    CHECK_EQ_INT(d.rc, RS_OK);
    const pdu_assoc *a = &d.p.u.assoc;
    CHECK_EQ_INT(d.p.type, PDU_ASSOCIATE_RQ);
    CHECK_EQ_INT(a->protocol_version, 1);
    CHECK_EQ_STR(a->called_ae, "RADSHARE");
    CHECK_EQ_STR(a->calling_ae, "ECHO SCU");  /* an inner space is significant */
    CHECK_EQ_STR(a->app_context, PDU_APP_CONTEXT);
    CHECK_EQ_INT(a->n_pcs, 1);
    if (a->n_pcs == 1) {
        CHECK_EQ_INT(a->pcs[0].id, 1);
        CHECK_EQ_STR(a->pcs[0].abstract_syntax, UID_VERIFICATION);
        CHECK_EQ_INT(a->pcs[0].n_ts, 1);
        CHECK_EQ_STR(a->pcs[0].ts[0], TS_IMPLICIT);
    }
    check_dcmtk_user_info(&a->user);
    CHECK_EQ_INT(a->n_unknown, 0);
    if (d.rc == RS_OK)
        check_reencodes_to_capture(&d.p, &b);
    rs_arena_free(&d.arena);
    free(b.p);

    /* the C-ECHO-RQ command: one PDV, command + last fragment */
    b = load("echoscu_pdata_echo_rq.bin");
    parse_into(&d, b.p, b.n, 16384);
    CHECK_EQ_INT(d.rc, RS_OK);
    CHECK_EQ_INT(d.p.u.pdata.n, 1);
    if (d.rc == RS_OK && d.p.u.pdata.n == 1) {
        const pdu_pdv *v = &d.p.u.pdata.pdvs[0];
        CHECK_EQ_INT(v->ctx_id, 1);
        CHECK_EQ_INT(v->is_command, 1);
        CHECK_EQ_INT(v->is_last, 1);
        CHECK_EQ_INT(v->len, 68);
        CHECK(v->data == b.p + 12);  /* zero copy */
        CHECK_EQ_INT(command_us(v->data, v->len, 0x0100), 0x0030);  /* C-ECHO-RQ */
        CHECK_EQ_INT(command_us(v->data, v->len, 0x0800), 0x0101);  /* no data set */
        check_reencodes_to_capture(&d.p, &b);
    }
    rs_arena_free(&d.arena);
    free(b.p);

    b = load("echoscu_release_rq.bin");
    parse_into(&d, b.p, b.n, 0);
    CHECK_EQ_INT(d.rc, RS_OK);
    CHECK_EQ_INT(d.p.type, PDU_RELEASE_RQ);
    check_reencodes_to_capture(&d.p, &b);
    rs_arena_free(&d.arena);
    free(b.p);
}

static void test_findscu_getscu(void)
{
    blob b = load("findscu_assoc_rq.bin");
    decoded d;
    parse_into(&d, b.p, b.n, 0);
    CHECK_EQ_INT(d.rc, RS_OK);
    const pdu_assoc *a = &d.p.u.assoc;
    CHECK_EQ_STR(a->called_ae, "ANY-SCP");
    CHECK_EQ_STR(a->calling_ae, "FINDSCU");
    CHECK_EQ_INT(a->n_pcs, 1);
    if (a->n_pcs == 1 && a->pcs[0].n_ts == 3) {
        CHECK_EQ_STR(a->pcs[0].abstract_syntax, "1.2.840.10008.5.1.4.1.2.2.1");  /* Study Root FIND */
        CHECK_EQ_STR(a->pcs[0].ts[0], TS_EXPLICIT);
        CHECK_EQ_STR(a->pcs[0].ts[1], TS_EXPLICIT_BE);
        CHECK_EQ_STR(a->pcs[0].ts[2], TS_IMPLICIT);
    }
    check_dcmtk_user_info(&a->user);
    if (d.rc == RS_OK)
        check_reencodes_to_capture(&d.p, &b);
    rs_arena_free(&d.arena);
    free(b.p);

    /* getscu proposes its storage classes too, with SCP role selection for each */
    b = load("getscu_assoc_rq.bin");
    parse_into(&d, b.p, b.n, 0);
    CHECK_EQ_INT(d.rc, RS_OK);
    CHECK_EQ_STR(a->calling_ae, "GETSCU");
    CHECK_EQ_INT(a->n_pcs, 121);
    CHECK_EQ_STR(a->n_pcs ? a->pcs[0].abstract_syntax : NULL, "1.2.840.10008.5.1.4.1.2.2.3");  /* GET */
    CHECK_EQ_INT(a->user.n_roles, 120);
    int scp_only = 0, role_matches_pc = 0;
    for (uint32_t i = 0; i < a->user.n_roles; i++) {
        scp_only += a->user.roles[i].scu == 0 && a->user.roles[i].scp == 1;
        for (uint32_t j = 0; j < a->n_pcs; j++)
            if (strcmp(a->pcs[j].abstract_syntax, a->user.roles[i].sop_class) == 0) {
                role_matches_pc++;
                break;
            }
    }
    CHECK_EQ_INT(scp_only, 120);
    CHECK_EQ_INT(role_matches_pc, 120);
    for (uint32_t i = 0; i < a->n_pcs; i++)
        CHECK_EQ_INT(a->pcs[i].id, 2 * i + 1);
    if (d.rc == RS_OK)
        check_reencodes_to_capture(&d.p, &b);
    rs_arena_free(&d.arena);
    free(b.p);
}

static void test_storescu(void)
{
    blob b = load("storescu_assoc_rq.bin");
    decoded d;
    parse_into(&d, b.p, b.n, 0);
    CHECK_EQ_INT(d.rc, RS_OK);
    const pdu_assoc *a = &d.p.u.assoc;
    CHECK_EQ_STR(a->called_ae, "ARCHIVE");
    CHECK_EQ_STR(a->calling_ae, "RADSHARE_TEST");
    CHECK_EQ_INT(a->n_pcs, PDU_MAX_CONTEXTS);  /* DCMTK fills all 128, IDs 1..255 */
    CHECK_EQ_INT(a->n_pcs ? a->pcs[a->n_pcs - 1].id : 0, 255);
    /* each SOP class twice: explicit LE alone, then explicit BE + implicit */
    const pdu_pc *mr = find_pc(a, 113), *mr2 = find_pc(a, 115);
    CHECK_EQ_STR(mr ? mr->abstract_syntax : NULL, UID_MR_STORAGE);
    CHECK_EQ_INT(mr ? mr->n_ts : 0, 1);
    CHECK_EQ_STR(mr && mr->n_ts ? mr->ts[0] : NULL, TS_EXPLICIT);
    CHECK_EQ_STR(mr2 ? mr2->abstract_syntax : NULL, UID_MR_STORAGE);
    CHECK_EQ_INT(mr2 ? mr2->n_ts : 0, 2);
    check_dcmtk_user_info(&a->user);
    if (d.rc == RS_OK)
        check_reencodes_to_capture(&d.p, &b);
    rs_arena_free(&d.arena);
    free(b.p);

    b = load("storescu_identity_assoc_rq.bin");
    parse_into(&d, b.p, b.n, 0);
    CHECK_EQ_INT(d.rc, RS_OK);
    const pdu_identity *id = &a->user.identity;
    CHECK_EQ_INT(id->type, PDU_IDENTITY_USERNAME_PASSCODE);
    CHECK_EQ_INT(id->want_response, 1);
    CHECK(bytes_are(id->primary.p, id->primary.n, "radshare"));
    CHECK(bytes_are(id->secondary.p, id->secondary.n, "s3cret"));
    CHECK_EQ_INT(a->n_pcs, 2);  /* -R: only the file's class, two contexts */
    if (d.rc == RS_OK)
        check_reencodes_to_capture(&d.p, &b);
    rs_arena_free(&d.arena);
    free(b.p);
}

/* storescu sending MR_small after our AC said "max 4096": the stream of P-DATA-TF PDUs. */
static void test_storescu_pdata(void)
{
    blob b = load("storescu_pdata_stream.bin");
    rs_arena a;
    rs_arena_init(&a, ARENA_LIMIT);
    size_t pos = 0, cmd_len = 0, data_len = 0;
    int pdus = 0, lasts = 0, bad_order = 0;
    uint32_t max_seen = 0;
    const uint8_t *first_data = NULL;
    while (pos + PDU_HEADER_LEN <= b.n) {
        uint8_t type;
        uint32_t len;
        pdu p;
        rs_err err = {0};
        CHECK_EQ_INT(pdu_read_header(b.p + pos, 4096, &type, &len, NULL, &err), RS_OK);
        CHECK_EQ_INT(type, PDU_P_DATA_TF);
        if (len > b.n - pos - PDU_HEADER_LEN)
            break;
        CHECK_EQ_INT(pdu_decode(type, b.p + pos + PDU_HEADER_LEN, len, &p, &a, NULL, &err), RS_OK);
        max_seen = len > max_seen ? len : max_seen;
        for (uint32_t i = 0; i < p.u.pdata.n; i++) {
            const pdu_pdv *v = &p.u.pdata.pdvs[i];
            CHECK_EQ_INT(v->ctx_id, 113);
            bad_order += lasts > 0;  /* nothing after the data set's last fragment */
            if (v->is_command) {
                cmd_len += v->len;
                CHECK_EQ_INT(command_us(v->data, v->len, 0x0100), 0x0001);  /* C-STORE-RQ */
            } else {
                first_data = first_data ? first_data : v->data;
                data_len += v->len;
                lasts += v->is_last;
            }
        }
        pos += PDU_HEADER_LEN + len;
        pdus++;
    }
    CHECK_EQ_INT(pos, b.n);
    CHECK_EQ_INT(pdus, 4);
    CHECK_EQ_INT(max_seen, 4096 - 6);  /* DCMTK keeps the whole PDU, header included, in 4096 */
    CHECK_EQ_INT(cmd_len, 140);
    CHECK_EQ_INT(data_len, 9358);
    CHECK_EQ_INT(lasts, 1);
    CHECK_EQ_INT(bad_order, 0);
    /* the data set starts with (0008,0008) CS in explicit VR little endian */
    CHECK(first_data && memcmp(first_data, "\x08\x00\x08\x00" "CS", 6) == 0);

    /* the same PDUs are refused by a receiver that announced 1000 bytes */
    uint8_t type;
    uint32_t len;
    pdu_fault f = {0};
    CHECK_EQ_INT(pdu_read_header(b.p + 6 + 146, 1000, &type, &len, &f, NULL), RS_ELIMIT);
    CHECK_EQ_INT(len, 4090);
    CHECK_EQ_INT(f.reply, PDU_ABORT);
    rs_arena_free(&a);
    free(b.p);
}

static void test_storescp(void)
{
    blob b = load("storescp_assoc_ac.bin");
    decoded d;
    parse_into(&d, b.p, b.n, 0);
    CHECK_EQ_INT(d.rc, RS_OK);
    const pdu_assoc *a = &d.p.u.assoc;
    CHECK_EQ_INT(d.p.type, PDU_ASSOCIATE_AC);
    CHECK_EQ_STR(a->called_ae, "RADSHARE");  /* echoed from the RQ */
    CHECK_EQ_STR(a->calling_ae, "ECHO SCU");
    CHECK_EQ_INT(a->n_pcs, 1);
    CHECK_EQ_INT(a->n_pcs ? a->pcs[0].result : 99, PDU_PC_ACCEPTANCE);
    CHECK_EQ_STR(a->n_pcs && a->pcs[0].n_ts ? a->pcs[0].ts[0] : NULL, TS_IMPLICIT);
    check_dcmtk_user_info(&a->user);
    if (d.rc == RS_OK)
        check_reencodes_to_capture(&d.p, &b);
    rs_arena_free(&d.arena);
    free(b.p);

    /* answer to storescu's 128 contexts: all accepted, explicit LE or, where that was not
       proposed, explicit BE rather than implicit */
    b = load("storescp_assoc_ac_storage.bin");
    parse_into(&d, b.p, b.n, 0);
    CHECK_EQ_INT(d.rc, RS_OK);
    CHECK_EQ_INT(a->n_pcs, 128);
    int as_expected = 0;
    for (uint32_t i = 0; i < a->n_pcs; i++)
        as_expected += a->pcs[i].result == 0 && a->pcs[i].n_ts == 1 &&
                       strcmp(a->pcs[i].ts[0], i % 2 ? TS_EXPLICIT_BE : TS_EXPLICIT) == 0;
    CHECK_EQ_INT(as_expected, 128);
    if (d.rc == RS_OK)
        check_reencodes_to_capture(&d.p, &b);
    rs_arena_free(&d.arena);
    free(b.p);

    /* rejected contexts: DCMTK still sends a transfer syntax sub-item, implicit LE */
    b = load("storescp_assoc_ac_rejects.bin");
    parse_into(&d, b.p, b.n, 0);
    CHECK_EQ_INT(d.rc, RS_OK);
    CHECK_EQ_INT(a->n_pcs, 3);
    const pdu_pc *p1 = find_pc(a, 1), *p3 = find_pc(a, 3), *p5 = find_pc(a, 5);
    CHECK_EQ_INT(p1 ? p1->result : 99, PDU_PC_ACCEPTANCE);
    CHECK_EQ_INT(p3 ? p3->result : 99, PDU_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED);
    CHECK_EQ_INT(p5 ? p5->result : 99, PDU_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED);
    CHECK_EQ_INT(p3 ? p3->n_ts : 99, 0);  /* not significant, not read */
    CHECK_EQ_STR(pdu_pc_result_str(p5 ? p5->result : 99), "transfer-syntaxes-not-supported (provider rejection)");
    CHECK_EQ_STR(a->called_ae, "STORESCP");
    if (d.rc == RS_OK)
        check_reencodes_to_capture(&d.p, &b);
    rs_arena_free(&d.arena);
    free(b.p);

    b = load("storescp_pdata_echo_rsp.bin");
    parse_into(&d, b.p, b.n, 16384);
    CHECK_EQ_INT(d.rc, RS_OK);
    if (d.rc == RS_OK && d.p.u.pdata.n == 1) {
        const pdu_pdv *v = &d.p.u.pdata.pdvs[0];
        CHECK(v->is_command && v->is_last);
        CHECK_EQ_INT(command_us(v->data, v->len, 0x0100), 0x8030);  /* C-ECHO-RSP */
        CHECK_EQ_INT(command_us(v->data, v->len, 0x0900), 0);       /* success */
        check_reencodes_to_capture(&d.p, &b);
    }
    rs_arena_free(&d.arena);
    free(b.p);

    b = load("storescp_release_rp.bin");
    parse_into(&d, b.p, b.n, 0);
    CHECK_EQ_INT(d.p.type, PDU_RELEASE_RP);
    check_reencodes_to_capture(&d.p, &b);
    rs_arena_free(&d.arena);
    free(b.p);

    /* unknown application context name: rejected-permanent by the service-user, reason 2 */
    b = load("storescp_assoc_rj.bin");
    parse_into(&d, b.p, b.n, 0);
    CHECK_EQ_INT(d.rc, RS_OK);
    const pdu_reject *rj = &d.p.u.reject;
    CHECK_EQ_INT(rj->result, PDU_RJ_PERMANENT);
    CHECK_EQ_INT(rj->source, PDU_RJ_SOURCE_USER);
    CHECK_EQ_INT(rj->reason, PDU_RJ_USER_APP_CONTEXT);
    CHECK_EQ_STR(pdu_rj_reason_str(rj->source, rj->reason), "application-context-name-not-supported");
    check_reencodes_to_capture(&d.p, &b);
    rs_arena_free(&d.arena);
    free(b.p);

    /* an unknown PDU type: DCMTK aborts as service-user with no reason, not as provider */
    b = load("storescp_abort.bin");
    parse_into(&d, b.p, b.n, 0);
    CHECK_EQ_INT(d.rc, RS_OK);
    CHECK_EQ_INT(d.p.u.abort.source, PDU_ABORT_SOURCE_USER);
    CHECK_EQ_INT(d.p.u.abort.reason, PDU_ABORT_NOT_SPECIFIED);
    check_reencodes_to_capture(&d.p, &b);
    rs_arena_free(&d.arena);
    free(b.p);
}

/* ---- round trips -------------------------------------------------------------------------- */

/* encode p, decode it, compare; then re-encode the decoded one: same bytes. Returns the bytes. */
static void roundtrip(const pdu *p, rs_buf *out)
{
    rs_err err = {0};
    rs_buf_reset(out);
    int rc = pdu_encode(p, out, &err);
    if (rc)
        fprintf(stderr, "  (encode: %s)\n", err.msg);
    CHECK_EQ_INT(rc, RS_OK);
    decoded d;
    parse_into(&d, out->p, out->len, 0);
    CHECK_EQ_INT(d.rc, RS_OK);
    CHECK(d.rc == RS_OK && pdu_equal(p, &d.p));
    rs_buf again = RS_BUF_INIT;
    CHECK_EQ_INT(pdu_encode(&d.p, &again, &err), RS_OK);
    CHECK(same_bytes(&again, out->p, out->len));
    rs_buf_free(&again);
    rs_arena_free(&d.arena);
}

static const char *ts3[] = {TS_EXPLICIT, TS_EXPLICIT_BE, TS_IMPLICIT};
static const char *ts_jpeg[] = {"1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.50"};
static const char *ts_one[] = {TS_EXPLICIT};
static const char *related[] = {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1"};
static const uint8_t ext_info[] = {1, 0, 0xff, 0x7f};

/* An RQ that uses every item and sub-item. */
static pdu rich_rq(pdu_pc *pcs, pdu_role *roles, pdu_ext_neg *ext, pdu_common_ext_neg *cx)
{
    pcs[0] = (pdu_pc){.id = 1, .abstract_syntax = UID_VERIFICATION, .ts = ts_one, .n_ts = 1};
    pcs[1] = (pdu_pc){.id = 3, .abstract_syntax = UID_MR_STORAGE, .ts = ts3, .n_ts = 3};
    pcs[2] = (pdu_pc){.id = 255, .abstract_syntax = "1.2.840.10008.5.1.4.1.1.2", .ts = ts_jpeg, .n_ts = 2};
    roles[0] = (pdu_role){UID_MR_STORAGE, 0, 1};
    roles[1] = (pdu_role){"1.2.840.10008.5.1.4.1.1.2", 1, 1};
    ext[0] = (pdu_ext_neg){"1.2.840.10008.5.1.4.1.2.2.1", {ext_info, sizeof ext_info}};
    ext[1] = (pdu_ext_neg){UID_MR_STORAGE, {NULL, 0}};
    cx[0] = (pdu_common_ext_neg){"1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.4.2", related, 2};
    cx[1] = (pdu_common_ext_neg){UID_MR_STORAGE, "1.2.840.10008.4.2", NULL, 0};
    pdu p = {.type = PDU_ASSOCIATE_RQ};
    pdu_assoc *a = &p.u.assoc;
    a->protocol_version = 1;
    strcpy(a->called_ae, "ARCHIVE");
    strcpy(a->calling_ae, "CT SCANNER 2");
    a->app_context = PDU_APP_CONTEXT;
    a->pcs = pcs;
    a->n_pcs = 3;
    a->user = (pdu_user_info){
        .max_length = 0,
        .impl_class_uid = "2.25.94335839184327745367931316207461235523",
        .impl_version = "RADSHARE_0.1",
        .has_async = 1, .async_invoked = 5, .async_performed = 0,
        .roles = roles, .n_roles = 2,
        .ext_neg = ext, .n_ext_neg = 2,
        .common_ext_neg = cx, .n_common_ext_neg = 2,
        .identity = {PDU_IDENTITY_USERNAME_PASSCODE, 1, {(const uint8_t *)"doctor", 6},
                     {(const uint8_t *)"pa55", 4}},
    };
    return p;
}

static pdu rich_ac(pdu_pc *pcs)
{
    static const uint8_t token[] = "server-token";
    for (unsigned i = 0; i < 5; i++)  /* every result */
        pcs[i] = (pdu_pc){.id = (uint8_t)(2 * i + 1), .result = (uint8_t)i, .ts = i ? NULL : ts_one, .n_ts = i ? 0 : 1};
    pdu p = {.type = PDU_ASSOCIATE_AC};
    pdu_assoc *a = &p.u.assoc;
    strcpy(a->called_ae, "ARCHIVE");
    strcpy(a->calling_ae, "");  /* echoes are not tested */
    a->pcs = pcs;
    a->n_pcs = 5;
    a->user = (pdu_user_info){.max_length = 65536, .impl_class_uid = "1.2.3", .has_identity_response = 1,
                              .identity_response = {token, sizeof token - 1}};
    return p;
}

static void test_roundtrip_assoc(void)
{
    pdu_pc pcs[5];
    pdu_role roles[2];
    pdu_ext_neg ext[2];
    pdu_common_ext_neg cx[2];
    rs_buf out = RS_BUF_INIT;
    pdu rq = rich_rq(pcs, roles, ext, cx);
    roundtrip(&rq, &out);

    /* spot checks on the decoded request, beyond pdu_equal */
    decoded d;
    parse_into(&d, out.p, out.len, 0);
    const pdu_user_info *u = &d.p.u.assoc.user;
    CHECK_EQ_INT(d.rc, RS_OK);
    CHECK_EQ_STR(d.p.u.assoc.calling_ae, "CT SCANNER 2");
    CHECK_EQ_INT(u->async_invoked, 5);
    CHECK_EQ_INT(u->n_common_ext_neg, 2);
    CHECK_EQ_STR(u->n_common_ext_neg ? u->common_ext_neg[0].related[1] : NULL, "1.2.840.10008.5.1.4.1.1.2.1");
    CHECK(u->n_ext_neg == 2 && u->ext_neg[0].info.n == 4 && u->ext_neg[0].info.p[2] == 0xff);
    CHECK(u->n_ext_neg == 2 && u->ext_neg[0].info.p > out.p && u->ext_neg[0].info.p < out.p + out.len);
    CHECK_EQ_INT(d.p.u.assoc.pcs[2].id, 255);
    rs_arena_free(&d.arena);

    pdu_pc ac_pcs[5];
    pdu ac = rich_ac(ac_pcs);
    roundtrip(&ac, &out);

    /* protocol version 0 means "the one version" when encoding */
    rq.u.assoc.protocol_version = 0;
    roundtrip(&rq, &out);
    CHECK(out.len > 8 && rd16(out.p + 6) == 1);
    rs_buf_free(&out);
}

static void test_roundtrip_small(void)
{
    rs_buf out = RS_BUF_INIT;
    for (unsigned result = 1; result <= 2; result++)
        for (unsigned source = 1; source <= 3; source++)
            for (unsigned reason = 0; reason <= 7; reason++) {
                pdu p = {.type = PDU_ASSOCIATE_RJ, .u.reject = {(uint8_t)result, (uint8_t)source, (uint8_t)reason}};
                roundtrip(&p, &out);
                CHECK_EQ_INT(out.len, 10);
            }
    for (unsigned source = 0; source <= 2; source++)
        for (unsigned reason = 0; reason <= 6; reason++) {
            pdu p = {.type = PDU_ABORT, .u.abort = {(uint8_t)source, (uint8_t)reason}};
            roundtrip(&p, &out);
            CHECK(same_bytes(&out, (const uint8_t[]){7, 0, 0, 0, 0, 4, 0, 0, (uint8_t)source, (uint8_t)reason}, 10));
        }
    pdu rel = {.type = PDU_RELEASE_RQ};
    roundtrip(&rel, &out);
    CHECK(same_bytes(&out, (const uint8_t[]){5, 0, 0, 0, 0, 4, 0, 0, 0, 0}, 10));
    rel.type = PDU_RELEASE_RP;
    roundtrip(&rel, &out);
    CHECK(same_bytes(&out, (const uint8_t[]){6, 0, 0, 0, 0, 4, 0, 0, 0, 0}, 10));

    /* P-DATA-TF with a command and a data set fragment on two contexts, and an empty PDV */
    static const uint8_t cmd[] = {0, 0, 0, 0, 4, 0, 0, 0, 0x12, 0, 0, 0}, data[300] = {1, 2, 3};
    pdu_pdv pdvs[3] = {{cmd, sizeof cmd, 1, 1, 1}, {data, sizeof data, 3, 0, 0}, {data, 0, 255, 0, 1}};
    pdu pd = {.type = PDU_P_DATA_TF, .u.pdata = {pdvs, 3}};
    roundtrip(&pd, &out);
    CHECK_EQ_INT(out.len, 6 + 3 * 6 + sizeof cmd + sizeof data);
    CHECK(out.len > 12 && out.p[10] == 1 && out.p[11] == 3);
    rs_buf_free(&out);
}

/* ---- P-DATA-TF fragmentation -------------------------------------------------------------------- */

/* Encode a message for peer_max, decode the PDUs back, check sizes, flags and content. */
static void check_fragments(uint32_t peer_max, size_t n, int is_command)
{
    uint8_t *msg = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        msg[i] = (uint8_t)(i * 7 + 1);
    rs_buf out = RS_BUF_INIT;
    rs_err err = {0};
    CHECK_EQ_INT(pdu_encode_message(&out, peer_max, 7, is_command, msg, n, &err), RS_OK);
    uint32_t chunk = pdu_pdata_max_payload(peer_max);
    uint32_t limit = peer_max ? peer_max : PDU_UNLIMITED_SEND;
    size_t pos = 0, got = 0, frags = 0, lasts = 0, mismatches = 0, oversize = 0;
    rs_arena a;
    rs_arena_init(&a, ARENA_LIMIT);
    while (pos < out.len) {
        uint8_t type;
        uint32_t len;
        pdu p;
        if (pdu_read_header(out.p + pos, limit, &type, &len, NULL, &err) ||
            pdu_decode(type, out.p + pos + 6, len, &p, &a, NULL, &err) || p.u.pdata.n != 1)
            break;
        const pdu_pdv *v = &p.u.pdata.pdvs[0];
        oversize += 6 + len > limit;
        mismatches += v->ctx_id != 7 || v->is_command != is_command || (got + v->len > n) ||
                       (v->len && memcmp(v->data, msg + got, v->len) != 0);
        lasts += v->is_last;
        got += v->len;
        frags++;
        pos += 6 + len;
    }
    CHECK_EQ_INT(pos, out.len);
    CHECK_EQ_INT(got, n);
    CHECK_EQ_INT(frags, n ? (n + chunk - 1) / chunk : 1);
    CHECK_EQ_INT(lasts, 1);
    CHECK_EQ_INT(mismatches, 0);
    CHECK_EQ_INT(oversize, 0);
    rs_arena_free(&a);
    rs_buf_free(&out);
    free(msg);
}

static void test_fragments(void)
{
    CHECK_EQ_INT(pdu_pdata_max_payload(16384), 16384 - 12);
    CHECK_EQ_INT(pdu_pdata_max_payload(0), PDU_UNLIMITED_SEND - 12);
    CHECK_EQ_INT(pdu_pdata_max_payload(0xffffffffu), PDU_MAX_BODY - 12);
    CHECK_EQ_INT(pdu_pdata_max_payload(12), 0);
    CHECK_EQ_INT(pdu_pdata_max_payload(13), 1);

    check_fragments(16384, 40000, 0);
    check_fragments(16384, 16372, 0);  /* exactly one full PDU */
    check_fragments(16384, 16373, 1);  /* one byte over */
    check_fragments(4096, 0, 1);       /* empty message: one empty last fragment */
    check_fragments(0, 300000, 0);     /* unlimited peer */
    check_fragments(13, 50, 1);        /* absurd but legal: one byte per PDU */

    /* the 12-byte header for writev */
    uint8_t h[PDU_PDATA_HEADER_LEN];
    CHECK_EQ_INT(pdu_pdata_header(h, 5, 0, 1, 1000), RS_OK);
    CHECK(memcmp(h, (const uint8_t[]){4, 0, 0, 0, 0x03, 0xee, 0, 0, 0x03, 0xea, 5, 2}, 12) == 0);
    CHECK_EQ_INT(pdu_pdata_header(h, 5, 1, 0, 0), RS_OK);
    CHECK_EQ_INT(h[11], 1);
    CHECK_EQ_INT(pdu_pdata_header(h, 4, 0, 0, 10), RS_EINVAL);
    CHECK_EQ_INT(pdu_pdata_header(h, 5, 0, 0, PDU_MAX_BODY), RS_EINVAL);

    /* the iterator streams a message larger than 4 GiB without holding it */
    pdu_frag f;
    CHECK_EQ_INT(pdu_frag_init(&f, 0, 1, 0, (uint64_t)5 << 30), RS_OK);
    uint64_t total = 0, frags = 0;
    int last_seen = 0;
    while (!pdu_frag_done(&f)) {
        total += pdu_frag_next(&f, h);
        frags++;
        last_seen = h[11] & 2;
    }
    CHECK(total == (uint64_t)5 << 30);
    CHECK(frags == (((uint64_t)5 << 30) + PDU_UNLIMITED_SEND - 13) / (PDU_UNLIMITED_SEND - 12));
    CHECK(last_seen);
    CHECK_EQ_INT(pdu_frag_init(&f, 12, 1, 0, 10), RS_EINVAL);
    CHECK(pdu_frag_done(&f));  /* a failed init does not loop */
    CHECK_EQ_INT(pdu_frag_init(&f, 1000, 2, 0, 10), RS_EINVAL);

    rs_buf out = RS_BUF_INIT;
    CHECK_EQ_INT(pdu_encode_message(&out, 1000, 2, 0, (const uint8_t *)"x", 1, NULL), RS_EINVAL);
    CHECK_EQ_INT(out.len, 0);
    rs_buf_free(&out);
}

/* ---- malformed input ---------------------------------------------------------------------------- */

static const char *const captures[] = {
    "echoscu_assoc_rq.bin", "echoscu_pdata_echo_rq.bin", "echoscu_release_rq.bin", "findscu_assoc_rq.bin",
    "getscu_assoc_rq.bin", "storescu_identity_assoc_rq.bin", "storescu_assoc_rq.bin", "storescp_assoc_ac.bin",
    "storescp_pdata_echo_rsp.bin", "storescp_release_rp.bin", "storescp_assoc_ac_storage.bin",
    "storescp_assoc_ac_rejects.bin", "storescp_assoc_rj.bin", "storescp_abort.bin",
};

/* Every sample PDU, captured and our own, for the mutation tests. */
static int sample(int i, blob *b)
{
    int n_cap = (int)(sizeof captures / sizeof captures[0]);
    if (i < n_cap) {
        *b = load(captures[i]);
        return 1;
    }
    pdu_pc pcs[5];
    pdu_role roles[2];
    pdu_ext_neg ext[2];
    pdu_common_ext_neg cx[2];
    static const uint8_t data[40] = {9};
    pdu_pdv pdvs[2] = {{data, 20, 1, 1, 1}, {data, sizeof data, 3, 0, 1}};
    pdu p;
    if (i == n_cap)
        p = rich_rq(pcs, roles, ext, cx);
    else if (i == n_cap + 1)
        p = rich_ac(pcs);
    else if (i == n_cap + 2)
        p = (pdu){.type = PDU_P_DATA_TF, .u.pdata = {pdvs, 2}};
    else
        return 0;
    rs_buf out = RS_BUF_INIT;
    CHECK_EQ_INT(pdu_encode(&p, &out, NULL), RS_OK);
    *b = (blob){out.p, out.len};
    return 1;
}

static void test_truncation(void)
{
    blob b;
    static fields fs;
    for (int i = 0; sample(i, &b); i++) {
        int accepted = 0, wrong_code = 0;
        for (size_t k = 0; k < b.n; k++) {
            int rc = parse_status(b.p, k, 0, NULL, NULL);
            accepted += rc == RS_OK;
            wrong_code += rc != RS_ETRUNC;
        }
        CHECK_EQ_INT(accepted, 0);
        CHECK_EQ_INT(wrong_code, 0);
        /* the body alone cut short, with a header that agrees: still refused when the cut
           cannot fall between two complete PDVs */
        walk(b.p, b.n, &fs);
        int pdvs = 0;
        for (int j = 0; j < fs.n; j++)
            pdvs += fs.f[j].kind == FIELD_PDV;
        if (b.n > 6 && pdvs <= 1) {
            accepted = 0;
            for (size_t k = 6; k < b.n; k++) {
                blob c = copy(b.p, k);
                wr_len(c.p + 2, 4, (uint32_t)(k - 6));
                accepted += parse_status(c.p, c.n, 0, NULL, NULL) == RS_OK;
                free(c.p);
            }
            CHECK_EQ_INT(accepted, 0);
        }
        free(b.p);
    }
}

static void test_lengths_off_by_one(void)
{
    blob b;
    static fields fs;
    int total = 0;
    for (int i = 0; sample(i, &b); i++) {
        walk(b.p, b.n, &fs);
        for (int j = 0; j < fs.n; j++)
            for (int delta = -1; delta <= 1; delta += 2) {
                const lenref *r = &fs.f[j].len;
                blob c = copy(b.p, b.n);
                uint32_t v = rd_len(c.p + r->pos, r->width) + (uint32_t)delta;
                wr_len(c.p + r->pos, r->width, v);
                char what[160];
                snprintf(what, sizeof what, "%s: length of field %d (kind 0x%x at %zu) %+d", i < 14 ? captures[i] : "own",
                         j, fs.f[j].kind, r->pos, delta);
                expect_refused(c.p, c.n, what);
                free(c.p);
                total++;
            }
        free(b.p);
    }
    CHECK(total > 3000);  /* the walk found the fields */
}

/* The transfer syntax sub-item of a rejected context in an AC: "not tested when received". */
static int in_rejected_pc(const uint8_t *p, const field *f)
{
    if (f->kind != 0x40 || f->n_outer < 2)
        return 0;
    size_t parent_len = f->outer[f->n_outer - 1].pos;  /* type, reserved, length, then id, _, result */
    return p[parent_len - 2] == 0x21 && p[parent_len + 4] != PDU_PC_ACCEPTANCE;
}

/* Each item or sub-item emptied (zero length, enclosing lengths fixed) must be refused. */
static void test_zero_length_items(void)
{
    blob b;
    static fields fs;
    int total = 0;
    for (int i = 0; sample(i, &b); i++) {
        walk(b.p, b.n, &fs);
        for (int j = 0; j < fs.n; j++) {
            int k = fs.f[j].kind;
            /* an empty user information item, an empty identity field or the body of a
               release PDU are legal; unknown kinds do not occur here */
            if (k == 0x50 || k == FIELD_PREFIXED || k == FIELD_PDU || in_rejected_pc(b.p, &fs.f[j]))
                continue;
            blob c = with_content(b.p, b.n, &fs.f[j], NULL, 0);
            char what[160];
            snprintf(what, sizeof what, "%s: item 0x%x at %zu emptied", i < 14 ? captures[i] : "own", k,
                     fs.f[j].content);
            expect_refused(c.p, c.n, what);
            free(c.p);
            total++;
        }
        free(b.p);
    }
    CHECK(total > 1000);

    /* the identity's secondary field may be empty, its primary may not be missing */
    pdu_pc pcs[5];
    pdu_role roles[2];
    pdu_ext_neg ext[2];
    pdu_common_ext_neg cx[2];
    pdu p = rich_rq(pcs, roles, ext, cx);
    p.u.assoc.user.identity = (pdu_identity){PDU_IDENTITY_USERNAME, 0, {(const uint8_t *)"u", 1}, {NULL, 0}};
    rs_buf out = RS_BUF_INIT;
    roundtrip(&p, &out);
    rs_buf_free(&out);
}

/* An encoded RQ to mutate, with n_pcs contexts. */
static blob encoded_rq(uint32_t n_pcs, const char *abstract)
{
    static pdu_pc pcs[PDU_MAX_CONTEXTS];
    for (uint32_t i = 0; i < n_pcs; i++)
        pcs[i] = (pdu_pc){.id = (uint8_t)(2 * i + 1), .abstract_syntax = abstract, .ts = ts3, .n_ts = 3};
    pdu p = {.type = PDU_ASSOCIATE_RQ};
    strcpy(p.u.assoc.called_ae, "ARCHIVE");
    strcpy(p.u.assoc.calling_ae, "MODALITY");
    p.u.assoc.pcs = pcs;
    p.u.assoc.n_pcs = n_pcs;
    p.u.assoc.user.max_length = 16384;
    rs_buf out = RS_BUF_INIT;
    CHECK_EQ_INT(pdu_encode(&p, &out, NULL), RS_OK);
    return (blob){out.p, out.len};
}

static const field *find_kind(const fields *fs, int kind, int nth)
{
    for (int j = 0; j < fs->n; j++)
        if (fs->f[j].kind == kind && nth-- == 0)
            return &fs->f[j];
    return NULL;
}

static void test_limits(void)
{
    static fields fs;
    pdu_fault f;
    rs_err e;

    /* 128 contexts are fine; a 129th (a copy of the last, spliced in) is not */
    blob b = encoded_rq(128, UID_MR_STORAGE);
    CHECK_EQ_INT(parse_status(b.p, b.n, 0, NULL, NULL), RS_OK);
    walk(b.p, b.n, &fs);
    const field *last = find_kind(&fs, 0x20, 127);
    CHECK(last != NULL);
    if (last) {
        size_t item = last->content - 4, item_n = last->n + 4;
        blob c = {malloc(b.n + item_n), b.n + item_n};
        memcpy(c.p, b.p, item + item_n);
        memcpy(c.p + item + item_n, b.p + item, b.n - item);
        wr_len(c.p + 2, 4, (uint32_t)(c.n - 6));
        CHECK_EQ_INT(parse_status(c.p, c.n, 0, &f, &e), RS_ELIMIT);
        CHECK(strstr(e.msg, "129 presentation contexts") != NULL);
        free(c.p);
    }
    free(b.p);

    /* a 64-character UID is fine, 65 is not (nor a 64 + NUL pad) */
    const char *uid64 = "1.2.840.10008.5.1.4.1.1.4.1234567890123456789012345678901234.123";
    CHECK_EQ_INT(strlen(uid64), 64);
    b = encoded_rq(1, uid64);
    CHECK_EQ_INT(parse_status(b.p, b.n, 0, NULL, NULL), RS_OK);
    walk(b.p, b.n, &fs);
    const field *as = find_kind(&fs, 0x30, 0);
    CHECK(as != NULL);
    if (as) {
        uint8_t longer[65];
        memcpy(longer, b.p + as->content, 64);
        longer[64] = '7';
        blob c = with_content(b.p, b.n, as, longer, 65);
        CHECK_EQ_INT(parse_status(c.p, c.n, 0, &f, &e), RS_EFORMAT);
        CHECK(strstr(e.msg, "over the 64") != NULL);
        CHECK_EQ_INT(f.reply, PDU_ABORT);
        CHECK_EQ_INT(f.reason, PDU_ABORT_INVALID_PARAM);
        free(c.p);
        longer[64] = 0;
        c = with_content(b.p, b.n, as, longer, 65);
        CHECK_EQ_INT(parse_status(c.p, c.n, 0, NULL, NULL), RS_EFORMAT);
        free(c.p);
        /* a 63-character UID padded with a NUL is what some peers send: accepted */
        longer[63] = 0;
        c = with_content(b.p, b.n, as, longer, 64);
        CHECK_EQ_INT(parse_status(c.p, c.n, 0, NULL, NULL), RS_OK);
        free(c.p);
        /* not UIDs */
        static const char *const bad_uids[] = {"1..2", ".1.2", "1.2.", "1.2a", "1.2 3"};
        for (size_t i = 0; i < sizeof bad_uids / sizeof bad_uids[0]; i++) {
            c = with_content(b.p, b.n, as, (const uint8_t *)bad_uids[i], strlen(bad_uids[i]));
            expect_refused(c.p, c.n, bad_uids[i]);
            free(c.p);
        }
    }
    free(b.p);

    /* header caps */
    uint8_t h[6] = {PDU_P_DATA_TF, 0};
    uint8_t type;
    uint32_t len;
    wr_len(h + 2, 4, 16384 + PDU_PDATA_SLACK);
    CHECK_EQ_INT(pdu_read_header(h, 16384, &type, &len, NULL, NULL), RS_OK);
    wr_len(h + 2, 4, 16384 + PDU_PDATA_SLACK + 1);
    CHECK_EQ_INT(pdu_read_header(h, 16384, &type, &len, &f, NULL), RS_ELIMIT);
    CHECK_EQ_INT(f.reply, PDU_ABORT);
    wr_len(h + 2, 4, PDU_MAX_BODY);
    CHECK_EQ_INT(pdu_read_header(h, 0, &type, &len, NULL, NULL), RS_OK);
    wr_len(h + 2, 4, PDU_MAX_BODY + 1);
    CHECK_EQ_INT(pdu_read_header(h, 0, &type, &len, NULL, NULL), RS_ELIMIT);
    CHECK_EQ_INT(pdu_read_header(h, PDU_MAX_BODY, &type, &len, NULL, NULL), RS_ELIMIT);
    h[0] = PDU_ASSOCIATE_RQ;  /* too big a request: rejected, transient, local limit */
    CHECK_EQ_INT(pdu_read_header(h, 0, &type, &len, &f, &e), RS_ELIMIT);
    CHECK(f.reply == PDU_ASSOCIATE_RJ && f.result == PDU_RJ_TRANSIENT && f.source == PDU_RJ_SOURCE_PRESENTATION &&
          f.reason == PDU_RJ_PRES_LOCAL_LIMIT);
    CHECK_EQ_INT(len, PDU_MAX_BODY + 1);
    h[0] = PDU_ABORT;  /* fixed-size PDUs: 4 bytes exactly */
    for (uint32_t n = 0; n <= 8; n++) {
        wr_len(h + 2, 4, n);
        CHECK_EQ_INT(pdu_read_header(h, 0, &type, &len, NULL, NULL), n == 4 ? RS_OK : RS_EFORMAT);
    }
    for (unsigned t = 0; t < 256; t++) {
        h[0] = (uint8_t)t;
        wr_len(h + 2, 4, 4);
        int rc = pdu_read_header(h, 0, &type, &len, &f, NULL);
        CHECK_EQ_INT(rc, t >= 1 && t <= 7 ? RS_OK : RS_EFORMAT);
        CHECK(rc == RS_OK || (f.reply == PDU_ABORT && f.reason == PDU_ABORT_UNRECOGNIZED_PDU));
    }
    h[0] = PDU_ASSOCIATE_RQ;  /* the reserved byte is not tested */
    h[1] = 0xff;
    CHECK_EQ_INT(pdu_read_header(h, 0, &type, &len, NULL, NULL), RS_OK);
    /* bytes after the PDU */
    b = encoded_rq(1, UID_MR_STORAGE);
    blob c = copy(b.p, b.n);
    c.p = realloc(c.p, c.n + 1);
    c.p[c.n++] = 0;
    CHECK_EQ_INT(parse_status(c.p, c.n, 0, NULL, NULL), RS_EFORMAT);
    free(c.p);
    free(b.p);
}

/* Patch one byte of an encoded RQ at body offset off; parse; return the status. */
static int rq_with_byte(const blob *b, size_t off, uint8_t v, pdu_fault *f)
{
    blob c = copy(b->p, b->n);
    c.p[off] = v;
    int rc = parse_status(c.p, c.n, 0, f, NULL);
    free(c.p);
    return rc;
}

static void test_context_ids_and_titles(void)
{
    static fields fs;
    pdu_fault f;
    blob b = encoded_rq(3, UID_MR_STORAGE);
    walk(b.p, b.n, &fs);
    const field *pc = find_kind(&fs, 0x20, 1);
    CHECK(pc != NULL);
    if (pc) {
        CHECK_EQ_INT(rq_with_byte(&b, pc->content, 4, &f), RS_EFORMAT);  /* even */
        CHECK_EQ_INT(rq_with_byte(&b, pc->content, 0, &f), RS_EFORMAT);
        CHECK_EQ_INT(rq_with_byte(&b, pc->content, 1, &f), RS_EFORMAT);  /* the first one's ID again */
        CHECK_EQ_INT(rq_with_byte(&b, pc->content, 255, &f), RS_OK);
        CHECK_EQ_INT(rq_with_byte(&b, pc->content + 1, 0xff, &f), RS_OK);  /* reserved bytes */
        CHECK_EQ_INT(rq_with_byte(&b, pc->content + 2, 0xff, &f), RS_OK);
        CHECK_EQ_INT(rq_with_byte(&b, pc->content + 3, 0xff, &f), RS_OK);
        CHECK_EQ_INT(rq_with_byte(&b, pc->content - 4, 0x21, &f), RS_EFORMAT);  /* AC item in an RQ */
        CHECK_EQ_INT(f.reason, PDU_ABORT_UNEXPECTED_PARAM);
    }
    /* protocol version: bit 0 or an A-ASSOCIATE-RJ */
    CHECK_EQ_INT(rq_with_byte(&b, 7, 0, &f), RS_EFORMAT);
    CHECK(f.reply == PDU_ASSOCIATE_RJ && f.source == PDU_RJ_SOURCE_ACSE && f.reason == PDU_RJ_ACSE_PROTOCOL_VERSION);
    CHECK_EQ_INT(rq_with_byte(&b, 7, 3, &f), RS_OK);

    /* AE titles: the called one at body offset 4, the calling one at 20 */
    struct {
        const char *raw;  /* 16 bytes */
        int ok;
        const char *trimmed;
    } cases[] = {
        {"                ", 0, ""},        {"ARCHIVE         ", 1, "ARCHIVE"},
        {"  ARCHIVE       ", 1, "ARCHIVE"}, {"A B             ", 1, "A B"},
        {"ARCH\\IVE        ", 0, "ARCH\\IVE"}, {"ARCH\tIVE        ", 0, "ARCH?IVE"},
        {"0123456789ABCDEF", 1, "0123456789ABCDEF"},
        {"ARCHIVE\0\0\0\0\0\0\0\0\0", 1, "ARCHIVE"}, {"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 0, ""},
        {"\xc3\xa9t\xc3\xa9           ", 0, "??t??"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int which = 0; which < 2; which++) {
            blob c = copy(b.p, b.n);
            memcpy(c.p + 6 + (which ? 20 : 4), cases[i].raw, 16);
            decoded d;
            parse_into(&d, c.p, c.n, 0);
            CHECK_EQ_INT(d.rc, cases[i].ok ? RS_OK : RS_EFORMAT);
            CHECK_EQ_STR(which ? d.p.u.assoc.calling_ae : d.p.u.assoc.called_ae, cases[i].trimmed);
            if (!cases[i].ok) {
                /* the distinct outcome the association layer needs: reject, with the reason */
                CHECK_EQ_INT(d.fault.reply, PDU_ASSOCIATE_RJ);
                CHECK_EQ_INT(d.fault.result, PDU_RJ_PERMANENT);
                CHECK_EQ_INT(d.fault.source, PDU_RJ_SOURCE_USER);
                CHECK_EQ_INT(d.fault.reason, which ? PDU_RJ_USER_CALLING_AE : PDU_RJ_USER_CALLED_AE);
                CHECK_EQ_INT(d.err.offset, 6 + (which ? 20 : 4));
                /* decoded completely all the same, for the log line */
                CHECK_EQ_INT(d.p.u.assoc.n_pcs, 3);
                CHECK_EQ_STR(which ? d.p.u.assoc.called_ae : d.p.u.assoc.calling_ae, which ? "ARCHIVE" : "MODALITY");
            }
            rs_arena_free(&d.arena);
            free(c.p);
        }
    free(b.p);

    /* an AC does not test the echoed titles */
    blob ac = load("storescp_assoc_ac.bin");
    if (ac.n > 40) {
        memset(ac.p + 10, ' ', 16);
        ac.p[26] = 0x07;
        decoded d;
        parse_into(&d, ac.p, ac.n, 0);
        CHECK_EQ_INT(d.rc, RS_OK);
        CHECK_EQ_STR(d.p.u.assoc.called_ae, "");
        CHECK_EQ_STR(d.p.u.assoc.calling_ae, "?CHO SCU");
        rs_arena_free(&d.arena);
    }
    free(ac.p);

    /* P-DATA: an even context ID */
    blob pd = load("echoscu_pdata_echo_rq.bin");
    if (pd.n > 12) {
        pd.p[10] = 2;
        CHECK_EQ_INT(parse_status(pd.p, pd.n, 0, NULL, NULL), RS_EFORMAT);
        pd.p[10] = 1;
        pd.p[11] = 0xfc | 3;  /* reserved control bits are not tested */
        CHECK_EQ_INT(parse_status(pd.p, pd.n, 0, NULL, NULL), RS_OK);
    }
    free(pd.p);
}

/* Splice extra bytes into the item whose content starts at f (or at the top level), fixing lengths. */
static blob splice_into(const blob *b, const field *f, size_t at, const uint8_t *ins, size_t k)
{
    blob c = {malloc(b->n + k), b->n + k};
    memcpy(c.p, b->p, at);
    memcpy(c.p + at, ins, k);
    memcpy(c.p + at + k, b->p + at, b->n - at);
    wr_len(c.p + 2, 4, rd32(c.p + 2) + (uint32_t)k);
    if (f) {
        wr_len(c.p + f->len.pos, 2, rd16(c.p + f->len.pos) + (uint32_t)k);
        for (int i = 1; i < f->n_outer; i++)  /* outer[0] is the PDU length, done */
            wr_len(c.p + f->outer[i].pos, 2, rd16(c.p + f->outer[i].pos) + (uint32_t)k);
    }
    return c;
}

static void test_structure(void)
{
    static fields fs;
    blob b = encoded_rq(2, UID_MR_STORAGE);
    walk(b.p, b.n, &fs);
    const field *user = find_kind(&fs, 0x50, 0), *pc = find_kind(&fs, 0x20, 0), *app = find_kind(&fs, 0x10, 0);
    const field *maxlen = find_kind(&fs, 0x51, 0);
    CHECK(user && pc && app && maxlen);
    if (!(user && pc && app && maxlen)) {
        free(b.p);
        return;
    }

    /* unknown items and sub-items, anywhere, are skipped and counted */
    static const uint8_t unknown_item[] = {0x99, 0, 0, 3, 'a', 'b', 'c'}, empty_unknown[] = {0x5f, 0, 0, 0};
    blob c1 = splice_into(&b, NULL, user->content - 4, unknown_item, sizeof unknown_item);
    walk(c1.p, c1.n, &fs);
    user = find_kind(&fs, 0x50, 0);
    blob c2 = splice_into(&c1, user, user->content, empty_unknown, sizeof empty_unknown);
    walk(c2.p, c2.n, &fs);
    pc = find_kind(&fs, 0x20, 1);
    blob c3 = splice_into(&c2, pc, pc->content + pc->n, unknown_item, sizeof unknown_item);
    decoded d;
    parse_into(&d, c3.p, c3.n, 0);
    CHECK_EQ_INT(d.rc, RS_OK);
    CHECK_EQ_INT(d.p.u.assoc.n_unknown, 3);
    CHECK_EQ_INT(d.p.u.assoc.n_pcs, 2);
    CHECK_EQ_INT(d.p.u.assoc.user.max_length, 16384);
    rs_arena_free(&d.arena);
    free(c1.p);
    free(c2.p);
    free(c3.p);

    /* items that may appear once, twice */
    walk(b.p, b.n, &fs);
    user = find_kind(&fs, 0x50, 0);
    app = find_kind(&fs, 0x10, 0);
    maxlen = find_kind(&fs, 0x51, 0);
    blob c = splice_into(&b, NULL, app->content - 4, b.p + app->content - 4, app->n + 4);
    expect_refused(c.p, c.n, "second application context");
    free(c.p);
    c = splice_into(&b, NULL, b.n, b.p + user->content - 4, user->n + 4);
    expect_refused(c.p, c.n, "second user information item");
    free(c.p);
    c = splice_into(&b, user, user->content, b.p + maxlen->content - 4, maxlen->n + 4);
    expect_refused(c.p, c.n, "second maximum length");
    free(c.p);

    /* mandatory items missing: cut them out */
    const field *cuts[] = {app, user, find_kind(&fs, 0x30, 0)};
    for (size_t i = 0; i < 3; i++) {
        const field *f = cuts[i];
        size_t from = f->content - 4, k = f->n + 4;
        c = (blob){malloc(b.n - k), b.n - k};
        memcpy(c.p, b.p, from);
        memcpy(c.p + from, b.p + from + k, b.n - from - k);
        for (int j = 0; j < f->n_outer; j++)
            wr_len(c.p + f->outer[j].pos, f->outer[j].width, rd_len(c.p + f->outer[j].pos, f->outer[j].width) - (uint32_t)k);
        expect_refused(c.p, c.n, "mandatory item removed");
        free(c.p);
    }
    free(b.p);

    /* an AC: an accepted context needs its transfer syntax; results above 4 do not exist */
    blob ac = load("storescp_assoc_ac.bin");
    walk(ac.p, ac.n, &fs);
    const field *apc = find_kind(&fs, 0x21, 0);
    if (apc) {
        blob x = copy(ac.p, ac.n);
        x.p[apc->content + 2] = 5;
        expect_refused(x.p, x.n, "result 5");
        x.p[apc->content + 2] = 2;  /* rejected: the transfer syntax is not read */
        decoded dd;
        parse_into(&dd, x.p, x.n, 0);
        CHECK_EQ_INT(dd.rc, RS_OK);
        CHECK_EQ_INT(dd.p.u.assoc.pcs[0].n_ts, 0);
        rs_arena_free(&dd.arena);
        free(x.p);
        x = with_content(ac.p, ac.n, find_kind(&fs, 0x40, 0), (const uint8_t *)"x", 1);
        expect_refused(x.p, x.n, "accepted context with a bad transfer syntax");
        free(x.p);
    }
    free(ac.p);

    /* a P-DATA-TF without a PDV */
    static const uint8_t empty_pdata[] = {4, 0, 0, 0, 0, 0};
    expect_refused(empty_pdata, sizeof empty_pdata, "P-DATA-TF without PDV");
}

/* ---- the encoder refuses what the decoder would ---------------------------------------------- */

static void expect_encode_refused(const pdu *p, const char *what)
{
    rs_buf out = RS_BUF_INIT;
    rs_err e = {0};
    rs_buf_append(&out, "keep", 4);
    int rc = pdu_encode(p, &out, &e);
    if (rc != RS_EINVAL)
        fprintf(stderr, "  encoded but should not be: %s\n", what);
    CHECK_EQ_INT(rc, RS_EINVAL);
    CHECK(e.msg[0] != 0);
    CHECK(same_bytes(&out, (const uint8_t *)"keep", 4));  /* nothing half-written */
    rs_buf_free(&out);
}

static void test_encoder_validation(void)
{
    pdu_pc pcs[PDU_MAX_CONTEXTS + 1];
    pdu_role roles[2];
    pdu_ext_neg ext[2];
    pdu_common_ext_neg cx[2];
    pdu p = rich_rq(pcs, roles, ext, cx);
    pdu q = p;
    strcpy(q.u.assoc.called_ae, "  ");
    expect_encode_refused(&q, "called AE all spaces");
    q = p;
    strcpy(q.u.assoc.calling_ae, "A\\B");
    expect_encode_refused(&q, "calling AE with backslash");
    q = p;
    pcs[1].id = 4;
    expect_encode_refused(&q, "even context ID");
    pcs[1].id = 1;
    expect_encode_refused(&q, "duplicate context ID");
    pcs[1].id = 3;
    pcs[1].n_ts = 0;
    expect_encode_refused(&q, "no transfer syntax");
    pcs[1].n_ts = 3;
    pcs[1].abstract_syntax = "1.2.840.10008.5.1.4.1.1.4.1234567890123456789012345678901234.1234";
    expect_encode_refused(&q, "65-byte UID");
    pcs[1].abstract_syntax = NULL;
    expect_encode_refused(&q, "no abstract syntax");
    pcs[1].abstract_syntax = UID_MR_STORAGE;
    q.u.assoc.n_pcs = 0;
    expect_encode_refused(&q, "no context");
    for (unsigned i = 0; i <= PDU_MAX_CONTEXTS; i++)
        pcs[i] = (pdu_pc){.id = (uint8_t)(2 * i + 1), .abstract_syntax = UID_MR_STORAGE, .ts = ts3, .n_ts = 1};
    q.u.assoc.n_pcs = PDU_MAX_CONTEXTS + 1;
    expect_encode_refused(&q, "129 contexts");
    q = rich_rq(pcs, roles, ext, cx);
    q.u.assoc.user.impl_version = "A VERSION NAME TOO LONG";
    expect_encode_refused(&q, "long implementation version");
    q.u.assoc.user.impl_version = "TRAILING ";
    expect_encode_refused(&q, "implementation version with a trailing space");
    q = rich_rq(pcs, roles, ext, cx);
    q.u.assoc.protocol_version = 2;
    expect_encode_refused(&q, "protocol version without bit 0");

    pdu_pc acpcs[5];
    q = rich_ac(acpcs);
    acpcs[0].n_ts = 0;
    expect_encode_refused(&q, "accepted without transfer syntax");
    acpcs[0].n_ts = 1;
    acpcs[1].result = 9;
    expect_encode_refused(&q, "undefined result");

    pdu_pdv pdvs[1] = {{(const uint8_t *)"x", 1, 2, 0, 1}};
    q = (pdu){.type = PDU_P_DATA_TF, .u.pdata = {pdvs, 1}};
    expect_encode_refused(&q, "even PDV context");
    q.u.pdata.n = 0;
    expect_encode_refused(&q, "no PDV");
    q = (pdu){.type = 9};
    expect_encode_refused(&q, "unknown type");
}

static void test_names(void)
{
    CHECK_EQ_STR(pdu_type_str(PDU_ASSOCIATE_RQ), "A-ASSOCIATE-RQ");
    CHECK_EQ_STR(pdu_type_str(PDU_ABORT), "A-ABORT");
    CHECK_EQ_STR(pdu_type_str(0), "unknown PDU");
    CHECK_EQ_STR(pdu_rj_result_str(PDU_RJ_PERMANENT), "rejected-permanent");
    CHECK_EQ_STR(pdu_rj_result_str(PDU_RJ_TRANSIENT), "rejected-transient");
    CHECK_EQ_STR(pdu_rj_result_str(3), "reserved");
    CHECK_EQ_STR(pdu_rj_source_str(PDU_RJ_SOURCE_ACSE), "DICOM UL service-provider (ACSE related function)");
    CHECK_EQ_STR(pdu_rj_reason_str(PDU_RJ_SOURCE_USER, PDU_RJ_USER_CALLED_AE), "called-AE-title-not-recognized");
    CHECK_EQ_STR(pdu_rj_reason_str(PDU_RJ_SOURCE_USER, PDU_RJ_USER_CALLING_AE), "calling-AE-title-not-recognized");
    CHECK_EQ_STR(pdu_rj_reason_str(PDU_RJ_SOURCE_USER, 5), "reserved");
    CHECK_EQ_STR(pdu_rj_reason_str(PDU_RJ_SOURCE_ACSE, PDU_RJ_ACSE_PROTOCOL_VERSION), "protocol-version-not-supported");
    CHECK_EQ_STR(pdu_rj_reason_str(PDU_RJ_SOURCE_PRESENTATION, PDU_RJ_PRES_CONGESTION), "temporary-congestion");
    CHECK_EQ_STR(pdu_rj_reason_str(PDU_RJ_SOURCE_PRESENTATION, PDU_RJ_PRES_LOCAL_LIMIT), "local-limit-exceeded");
    CHECK_EQ_STR(pdu_rj_reason_str(9, 1), "reserved");
    CHECK_EQ_STR(pdu_abort_source_str(PDU_ABORT_SOURCE_USER), "DICOM UL service-user (initiated abort)");
    CHECK_EQ_STR(pdu_abort_source_str(1), "reserved");
    CHECK_EQ_STR(pdu_abort_reason_str(PDU_ABORT_INVALID_PARAM), "invalid-PDU-parameter value");
    CHECK_EQ_STR(pdu_abort_reason_str(3), "reserved");
    CHECK_EQ_STR(pdu_abort_reason_str(200), "reserved");
    CHECK_EQ_STR(pdu_pc_result_str(PDU_PC_ACCEPTANCE), "acceptance");
    CHECK_EQ_STR(pdu_pc_result_str(5), "reserved");
}

int main(void)
{
    test_echoscu();
    test_findscu_getscu();
    test_storescu();
    test_storescu_pdata();
    test_storescp();
    test_roundtrip_assoc();
    test_roundtrip_small();
    test_fragments();
    test_truncation();
    test_lengths_off_by_one();
    test_zero_length_items();
    test_limits();
    test_context_ids_and_titles();
    test_structure();
    test_encoder_validation();
    test_names();
    return t_done();
}
