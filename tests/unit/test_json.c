/*
 * test_json.c - dcm_json_read (DICOM JSON, PS3.18 F.2, into the dataset model).
 *
 * Part 1: hand-written JSON for every VR family (strings, DS/IS, PN groups, AT, binary numbers,
 *         nested sequences, empty values, null components, escapes and surrogate pairs,
 *         InlineBinary, BulkDataURI, encapsulated pixel data, file meta, character sets), checked
 *         byte for byte in the resulting dataset.
 * Part 2: malformed input: each case must fail with the expected code at the expected byte
 *         offset (and every proper prefix of a valid document must fail as truncated).
 * Part 3: write -> read -> write on pydicom's sample files (a list, then every file of the corpus
 *         radshare reads): the second JSON text must equal the first (for files whose text was
 *         not ASCII, after dropping (0008,0005), which becomes ISO_IR 192), be a fixed point,
 *         survive pretty printing; encapsulated pixel data must come back as the same fragments,
 *         and other datasets must encode to Part 10 and read back to the same JSON.
 *
 * In the hand-written JSON below a ' stands for a " (see J()). JSON_TEST_VERBOSE=1 prints the
 * error messages of part 2.
 */
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dataset.h"
#include "dicom/json.h"
#include "dicom/reader.h"
#include "dicom/tag.h"
#include "dicom/ts.h"
#include "dicom/writer.h"
#include "t.h"

#define PYDICOM_DATA "/usr/lib/python3/dist-packages/pydicom/data"

static int verbose;

/* ---- helpers -------------------------------------------------------------------------------- */

/* The JSON text with every ' replaced by " (a small ring of buffers: no frees needed). */
static const char *J(const char *s)
{
    static char ring[4][16384];
    static int k;
    char *o = ring[k++ & 3];
    size_t n = strlen(s);
    if (n >= sizeof ring[0]) {
        fprintf(stderr, "J(): test JSON too long\n");
        abort();
    }
    for (size_t i = 0; i <= n; i++)
        o[i] = s[i] == '\'' ? '"' : s[i];
    return o;
}

static dcm_file *parse_n(const char *json, size_t n, int line)
{
    dcm_file *f = NULL;
    rs_err err = {0};
    int rc = dcm_json_read(json, n, &f, &err);
    t_checks++;
    if (rc != RS_OK || !f) {
        t_failures++;
        fprintf(stderr, "%s:%d: dcm_json_read failed (%d) at byte %llu: %s\n  input: %.300s\n", __FILE__, line, rc,
                (unsigned long long)err.offset, err.msg, json);
        dcm_file_free(f);
        return NULL;
    }
    return f;
}
#define PARSE(json) parse_n((json), strlen(json), __LINE__)

static void hex(FILE *to, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n && i < 64; i++)
        fprintf(to, "%02X ", p[i]);
    if (n > 64)
        fprintf(to, "...");
}

/* Element tag of ds has VR vr and exactly the n bytes b. */
static void check_val(const dcm_ds *ds, uint32_t tag, uint16_t vr, const void *b, size_t n, int line)
{
    const dcm_elem *e = ds ? dcm_ds_find(ds, tag) : NULL;
    t_checks++;
    if (!e) {
        t_failures++;
        fprintf(stderr, "%s:%d: (%04X,%04X) missing\n", __FILE__, line, DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag));
        return;
    }
    if (e->vr != vr || e->len != n || (e->flags & (DCM_EF_BULK | DCM_EF_ENCAPS)) || !e->v.bytes ||
        (n && memcmp(e->v.bytes, b, n) != 0)) {
        t_failures++;
        char v1[3], v2[3];
        dcm_vr_str(e->vr, v1);
        dcm_vr_str(vr, v2);
        fprintf(stderr, "%s:%d: (%04X,%04X) %s len %u flags %#x:\n    got      ", __FILE__, line,
                DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag), v1, e->len, e->flags);
        if (e->v.bytes && e->len != DCM_UNDEF_LEN)
            hex(stderr, e->v.bytes, e->len);
        fprintf(stderr, "\n    expected %s len %zu: ", v2, n);
        hex(stderr, b, n);
        fprintf(stderr, "\n");
    }
}
#define CHECK_VAL(ds, tag, vr, lit) check_val((ds), (tag), (vr), (lit), sizeof(lit) - 1, __LINE__)
#define CHECK_STR(ds, tag, vr, s) check_val((ds), (tag), (vr), (s), strlen(s), __LINE__)

/* Item k of sequence tag in ds, NULL (and a failure) if absent. */
static dcm_ds *item(const dcm_ds *ds, uint32_t tag, uint32_t k, int line)
{
    const dcm_elem *e = ds ? dcm_ds_find(ds, tag) : NULL;
    t_checks++;
    if (!e || e->vr != DCM_VR_SQ || k >= e->v.sq.n) {
        t_failures++;
        fprintf(stderr, "%s:%d: no item %u in (%04X,%04X)\n", __FILE__, line, k, DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag));
        return NULL;
    }
    return e->v.sq.items[k];
}
#define ITEM(ds, tag, k) item((ds), (tag), (k), __LINE__)

static unsigned n_items(const dcm_ds *ds, uint32_t tag)
{
    const dcm_elem *e = ds ? dcm_ds_find(ds, tag) : NULL;
    return e && e->vr == DCM_VR_SQ ? e->v.sq.n : 9999;
}

/* dcm_json_read must fail with code at offset (SIZE_MAX: don't check the offset). */
static void expect_err_n(const char *json, size_t n, int code, size_t offset, int line)
{
    dcm_file *f = NULL;
    rs_err err = {0};
    int rc = dcm_json_read(json, n, &f, &err);
    t_checks++;
    if (rc != code || f || !err.msg[0] || !err.has_offset || (offset != SIZE_MAX && err.offset != offset)) {
        t_failures++;
        fprintf(stderr, "%s:%d: expected error %d at %lld, got %d at %llu%s: %s\n  input: %.300s\n", __FILE__,
                line, code, offset == SIZE_MAX ? -1LL : (long long)offset, rc, (unsigned long long)err.offset,
                err.has_offset ? "" : " (no offset)", err.msg, json);
    } else if (verbose) {
        printf("# at %llu: %s\n", (unsigned long long)err.offset, err.msg);
    }
    dcm_file_free(f);
}

/* Error expected where marker first occurs in json (marker NULL: at the end). */
static void expect_err(const char *json, int code, const char *marker, int line)
{
    const char *m = marker ? strstr(json, marker) : json + strlen(json);
    if (!m) {
        t_checks++;
        t_failures++;
        fprintf(stderr, "%s:%d: marker %s not in the test input\n", __FILE__, line, marker);
        return;
    }
    expect_err_n(json, strlen(json), code, (size_t)(m - json), line);
}
#define ERR(json, code, marker) expect_err(J(json), (code), (marker) ? J(marker) : NULL, __LINE__)

static int buf_eq(const rs_buf *a, const rs_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

static void report_diff(const char *what, const rs_buf *a, const rs_buf *b)
{
    size_t d = 0;
    while (d < a->len && d < b->len && a->p[d] == b->p[d])
        d++;
    size_t from = d > 80 ? d - 80 : 0;
    fprintf(stderr, "  %s: first difference at byte %zu (lengths %zu, %zu)\n    A: %.200s\n    B: %.200s\n", what, d,
            a->len, b->len, a->len > from ? (const char *)a->p + from : "", b->len > from ? (const char *)b->p + from : "");
}

/* ---- part 1: values ------------------------------------------------------------------------- */

static void test_strings(void)
{
    dcm_file *f = PARSE(J("{"
        "'00080008':{'vr':'CS','Value':['ORIGINAL','PRIMARY','M',null]},"
        "'00080016':{'vr':'UI','Value':['1.2.840.10008.5.1.4.1.1.4']},"
        "'00080020':{'vr':'DA','Value':['20240131']},"
        "'0008002A':{'vr':'DT','Value':['20240131120000.000000+0100']},"
        "'00080030':{'vr':'TM','Value':['120000.5',null,'1200']},"
        "'00080050':{'vr':'SH','Value':['ACC1']},"
        "'00080054':{'vr':'AE','Value':['STORE_SCP','B']},"
        "'00080081':{'vr':'ST','Value':['Main St. 1\\\\2']},"
        "'00080119':{'vr':'UC','Value':['x','y z']},"
        "'00080120':{'vr':'UR','Value':['http://example.com/a?b=c']},"
        "'00081030':{'vr':'LO','Value':[]},"
        "'0008103E':{'vr':'LO'},"
        "'00100020':{'vr':'LO','Value':[null,'ID 2',null]},"
        "'00101010':{'vr':'AS','Value':['045Y']},"
        "'00104000':{'vr':'LT','Value':['line1\\nline2 a\\\\b ']},"
        "'00181030':{'vr':'LO','Value':[null]},"
        "'0040A160':{'vr':'UT','Value':['free \\\\ text']},"
        "'00204000':{'vr':'LT','Value':[null]}"
        "}"));
    if (!f)
        return;
    dcm_ds *ds = f->ds;
    CHECK_STR(ds, DCM_TAG(0x0008, 0x0008), DCM_VR_CS, "ORIGINAL\\PRIMARY\\M\\");
    CHECK_STR(ds, DCM_TAG(0x0008, 0x0016), DCM_VR_UI, "1.2.840.10008.5.1.4.1.1.4");
    CHECK_STR(ds, DCM_TAG(0x0008, 0x0020), DCM_VR_DA, "20240131");
    CHECK_STR(ds, DCM_TAG(0x0008, 0x002A), DCM_VR_DT, "20240131120000.000000+0100");
    CHECK_STR(ds, DCM_TAG(0x0008, 0x0030), DCM_VR_TM, "120000.5\\\\1200");
    CHECK_STR(ds, DCM_TAG(0x0008, 0x0050), DCM_VR_SH, "ACC1");
    CHECK_STR(ds, DCM_TAG(0x0008, 0x0054), DCM_VR_AE, "STORE_SCP\\B");
    CHECK_STR(ds, DCM_TAG(0x0008, 0x0081), DCM_VR_ST, "Main St. 1\\2");
    CHECK_STR(ds, DCM_TAG(0x0008, 0x0119), DCM_VR_UC, "x\\y z");
    CHECK_STR(ds, DCM_TAG(0x0008, 0x0120), DCM_VR_UR, "http://example.com/a?b=c");
    CHECK_STR(ds, DCM_TAG(0x0008, 0x1030), DCM_VR_LO, "");
    CHECK_STR(ds, DCM_TAG(0x0008, 0x103E), DCM_VR_LO, "");
    CHECK_STR(ds, DCM_TAG(0x0010, 0x0020), DCM_VR_LO, "\\ID 2\\");
    CHECK_STR(ds, DCM_TAG(0x0010, 0x1010), DCM_VR_AS, "045Y");
    CHECK_STR(ds, DCM_TAG(0x0010, 0x4000), DCM_VR_LT, "line1\nline2 a\\b ");
    CHECK_STR(ds, DCM_TAG(0x0018, 0x1030), DCM_VR_LO, "");
    CHECK_STR(ds, DCM_TAG(0x0040, 0xA160), DCM_VR_UT, "free \\ text");
    CHECK_STR(ds, DCM_TAG(0x0020, 0x4000), DCM_VR_LT, "");
    CHECK_EQ_INT(ds->n, 18);
    for (uint32_t i = 1; i < ds->n; i++)
        CHECK(ds->e[i - 1].tag < ds->e[i].tag);
    CHECK(dcm_ds_find(ds, DCM_TAG_SPECIFIC_CHARSET) == NULL); /* all ASCII */
    CHECK(f->meta->n == 0 && !f->has_meta);
    CHECK(f->ts == dcm_ts_explicit_le());
    CHECK_EQ_INT(f->n_warnings, 0);
    dcm_file_free(f);
}

static void test_numbers_as_strings(void)
{
    dcm_file *f = PARSE(J("{"
        "'00180050':{'vr':'DS','Value':['  3.50 ']},"
        "'00200013':{'vr':'IS','Value':[7]},"
        "'00201041':{'vr':'DS','Value':[40,-0.25,1e3,12345678901234567890,0.1234567890123456789,null,1.50,-0.0]},"
        "'00280008':{'vr':'IS','Value':['12',1,-2,3.0,1e2,-0,2147483647,null]},"
        "'00280030':{'vr':'DS','Value':[0.5,0.5]},"
        "'00281050':{'vr':'DS','Value':[1234567890123456]},"
        "'00281051':{'vr':'DS','Value':[1.7976931348623157e308,5e-324,-1E-7]}"
        "}"));
    if (!f)
        return;
    dcm_ds *ds = f->ds;
    CHECK_STR(ds, DCM_TAG(0x0018, 0x0050), DCM_VR_DS, "  3.50 ");
    CHECK_STR(ds, DCM_TAG(0x0020, 0x0013), DCM_VR_IS, "7");
    /* JSON text kept when it fits 16 characters; longer ones re-formatted to fit */
    CHECK_STR(ds, DCM_TAG(0x0020, 0x1041), DCM_VR_DS, "40\\-0.25\\1e3\\1.2345678901e+19\\0.12345678901235\\\\1.50\\-0.0");
    CHECK_STR(ds, DCM_TAG(0x0028, 0x0008), DCM_VR_IS, "12\\1\\-2\\3\\100\\-0\\2147483647\\");
    CHECK_STR(ds, DCM_TAG(0x0028, 0x0030), DCM_VR_DS, "0.5\\0.5");
    CHECK_STR(ds, DCM_TAG(0x0028, 0x1050), DCM_VR_DS, "1234567890123456");
    /* the nearest 16-character texts of DBL_MAX round up to infinity: the next shorter one */
    CHECK_STR(ds, DCM_TAG(0x0028, 0x1051), DCM_VR_DS, "1.79769313e+308\\5e-324\\-1E-7");
    double d = 0;
    CHECK(dcm_ds_get_f64(ds, DCM_TAG(0x0028, 0x1051), 0, &d) == RS_OK && isfinite(d) && d > 1.79e308);
    CHECK_EQ_INT(f->n_warnings, 0);
    dcm_file_free(f);

    /* an IS that is not a 32-bit integer is kept as written, with a warning (as the Part 10 reader does) */
    f = PARSE(J("{'00200013':{'vr':'IS','Value':[99999999999,1.5,1234567890123,2147483648,1e12]}}"));
    if (f) {
        CHECK_STR(f->ds, DCM_TAG(0x0020, 0x0013), DCM_VR_IS, "99999999999\\1.5\\1234567890123\\2147483648\\1e12");
        CHECK_EQ_INT(f->n_warnings, 5);
    }
    dcm_file_free(f);
}

static void test_pn(void)
{
    dcm_file *f = PARSE(J("{"
        "'00100010':{'vr':'PN','Value':[{'Alphabetic':'Yamada^Tarou','Ideographic':'山田^太郎','Phonetic':'やまだ^たろう'}]},"
        "'00081060':{'vr':'PN','Value':[{'Alphabetic':'A^B'},null,{'Phonetic':'P'},{},"
        "{'Alphabetic':'C','Ideographic':'','Phonetic':null},{'Ideographic':'I'}]},"
        "'00081070':{'vr':'PN','Value':[{'Phonetic':'P','Alphabetic':'A','Ideographic':'I'}]},"
        "'00081050':{'vr':'PN','Value':[null]},"
        "'00081048':{'vr':'PN'}"
        "}"));
    if (!f)
        return;
    dcm_ds *ds = f->ds;
    CHECK_STR(ds, DCM_TAG(0x0010, 0x0010), DCM_VR_PN, "Yamada^Tarou=山田^太郎=やまだ^たろう");
    CHECK_STR(ds, DCM_TAG(0x0008, 0x1060), DCM_VR_PN, "A^B\\\\==P\\\\C\\=I");
    CHECK_STR(ds, DCM_TAG(0x0008, 0x1070), DCM_VR_PN, "A=I=P");
    CHECK_STR(ds, DCM_TAG(0x0008, 0x1050), DCM_VR_PN, "");
    CHECK_STR(ds, DCM_TAG(0x0008, 0x1048), DCM_VR_PN, "");
    /* non-ASCII text: the dataset declares UTF-8 */
    CHECK_STR(ds, DCM_TAG_SPECIFIC_CHARSET, DCM_VR_CS, "ISO_IR 192");
    dcm_file_free(f);
}

static void test_binary_numbers(void)
{
    dcm_file *f = PARSE(J("{"
        "'00280010':{'vr':'US','Value':[0,65535,1e2,2.0,-0]},"
        "'00280106':{'vr':'SS','Value':[-32768,32767,-1]},"
        "'00081161':{'vr':'UL','Value':[4294967295,0]},"
        "'00186020':{'vr':'SL','Value':[-2147483648,1]},"
        "'00660040':{'vr':'UV','Value':[18446744073709551615,1]},"
        "'00660041':{'vr':'SV','Value':[-9223372036854775808,9223372036854775807,-1]},"
        "'00189087':{'vr':'FD','Value':[3.141592653589793,-2.5e-300]},"
        "'00189089':{'vr':'FD','Value':[1.0,null]},"
        "'00720064':{'vr':'FL','Value':[1.5,-0.0,3.4028234663852886e38]},"
        "'00209165':{'vr':'AT','Value':['00100010','7fe00010']},"
        "'00209166':{'vr':'AT','Value':[]},"
        "'00280011':{'vr':'US'}"
        "}"));
    if (!f)
        return;
    dcm_ds *ds = f->ds;
    CHECK_VAL(ds, DCM_TAG(0x0028, 0x0010), DCM_VR_US, "\x00\x00\xFF\xFF\x64\x00\x02\x00\x00\x00");
    CHECK_VAL(ds, DCM_TAG(0x0028, 0x0106), DCM_VR_SS, "\x00\x80\xFF\x7F\xFF\xFF");
    CHECK_VAL(ds, DCM_TAG(0x0008, 0x1161), DCM_VR_UL, "\xFF\xFF\xFF\xFF\x00\x00\x00\x00");
    CHECK_VAL(ds, DCM_TAG(0x0018, 0x6020), DCM_VR_SL, "\x00\x00\x00\x80\x01\x00\x00\x00");
    CHECK_VAL(ds, DCM_TAG(0x0066, 0x0040), DCM_VR_UV,
              "\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x01\x00\x00\x00\x00\x00\x00\x00");
    CHECK_VAL(ds, DCM_TAG(0x0066, 0x0041), DCM_VR_SV,
              "\x00\x00\x00\x00\x00\x00\x00\x80\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x7F\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF");
    CHECK_VAL(ds, DCM_TAG(0x0018, 0x9087), DCM_VR_FD, "\x18\x2d\x44\x54\xfb\x21\x09\x40\x2f\x30\xb7\xb3\xa7\xc9\xba\x81");
    CHECK_VAL(ds, DCM_TAG(0x0072, 0x0064), DCM_VR_FL, "\x00\x00\xc0\x3f\x00\x00\x00\x80\xff\xff\x7f\x7f");
    CHECK_VAL(ds, DCM_TAG(0x0020, 0x9165), DCM_VR_AT, "\x10\x00\x10\x00\xE0\x7F\x10\x00");
    CHECK_VAL(ds, DCM_TAG(0x0020, 0x9166), DCM_VR_AT, "");
    CHECK_VAL(ds, DCM_TAG(0x0028, 0x0011), DCM_VR_US, "");
    /* null in FD is the writer's NaN/infinity: read as a NaN */
    const dcm_elem *e = dcm_ds_find(ds, DCM_TAG(0x0018, 0x9089));
    CHECK(e && e->len == 16);
    if (e && e->len == 16) {
        double a, b;
        memcpy(&a, e->v.bytes, 8);
        memcpy(&b, e->v.bytes + 8, 8);
        CHECK(a == 1.0 && isnan(b));
    }
    int64_t iv = 0;
    CHECK(dcm_ds_get_i64(ds, DCM_TAG(0x0028, 0x0106), 0, &iv) == RS_OK && iv == -32768);
    CHECK(dcm_ds_get_i64(ds, DCM_TAG(0x0066, 0x0041), 0, &iv) == RS_OK && iv == INT64_MIN);
    dcm_file_free(f);
}

static void test_sequences(void)
{
    dcm_file *f = PARSE(J("{"
        "'00400275':{'vr':'SQ','Value':["
        "  {'00400007':{'vr':'LO','Value':['level1 a']},"
        "   '00400008':{'vr':'SQ','Value':["
        "     {'00080100':{'vr':'SH','Value':['L2']},"
        "      '0040A730':{'vr':'SQ','Value':[{'0040A160':{'vr':'UT','Value':['level3']}},{}]},"
        "      '00080104':{'vr':'LO','Value':['level2']}}]}},"
        "  {'00400007':{'vr':'LO','Value':['level1 b']}}]},"
        "'00081140':{'vr':'SQ'},"
        "'00081115':{'vr':'SQ','Value':[]}"
        "}"));
    if (!f)
        return;
    dcm_ds *ds = f->ds;
    CHECK_EQ_INT(n_items(ds, DCM_TAG(0x0040, 0x0275)), 2);
    CHECK_EQ_INT(n_items(ds, DCM_TAG(0x0008, 0x1140)), 0);
    CHECK_EQ_INT(n_items(ds, DCM_TAG(0x0008, 0x1115)), 0);
    const dcm_elem *sq = dcm_ds_find(ds, DCM_TAG(0x0040, 0x0275));
    CHECK(sq && sq->len == DCM_UNDEF_LEN && (sq->flags & DCM_EF_UNDEF_LEN));
    dcm_ds *l1 = ITEM(ds, DCM_TAG(0x0040, 0x0275), 0);
    dcm_ds *l1b = ITEM(ds, DCM_TAG(0x0040, 0x0275), 1);
    CHECK_STR(l1, DCM_TAG(0x0040, 0x0007), DCM_VR_LO, "level1 a");
    CHECK_STR(l1b, DCM_TAG(0x0040, 0x0007), DCM_VR_LO, "level1 b");
    dcm_ds *l2 = ITEM(l1, DCM_TAG(0x0040, 0x0008), 0);
    CHECK_STR(l2, DCM_TAG(0x0008, 0x0100), DCM_VR_SH, "L2");
    CHECK_STR(l2, DCM_TAG(0x0008, 0x0104), DCM_VR_LO, "level2");
    CHECK(l2 && l2->n == 3 && l2->e[1].tag == DCM_TAG(0x0008, 0x0104)); /* sorted */
    CHECK_EQ_INT(n_items(l2, DCM_TAG(0x0040, 0xA730)), 2);
    dcm_ds *l3 = ITEM(l2, DCM_TAG(0x0040, 0xA730), 0);
    dcm_ds *l3b = ITEM(l2, DCM_TAG(0x0040, 0xA730), 1);
    CHECK_STR(l3, DCM_TAG(0x0040, 0xA160), DCM_VR_UT, "level3");
    CHECK(l3b && l3b->n == 0);
    CHECK(l1 && l1->parent == ds && l2 && l2->parent == l1 && l3 && l3->parent == l2 && l3->file == f);
    CHECK(l3 && l3->item_len == DCM_UNDEF_LEN);
    dcm_file_free(f);
}

/* Sequences nested n deep around one LO; JSON opening brackets are the only '{' '[' in it. */
static char *nested(int n)
{
    static const char open[] = "\"00400275\":{\"vr\":\"SQ\",\"Value\":[{";
    static const char mid[] = "\"00100020\":{\"vr\":\"LO\",\"Value\":[\"deep\"]}";
    size_t cap = (size_t)n * (sizeof open + 4) + sizeof mid + 4;
    char *s = malloc(cap), *p = s;
    *p++ = '{';
    for (int i = 0; i < n; i++)
        p += sprintf(p, "%s", open);
    p += sprintf(p, "%s", mid);
    for (int i = 0; i < n; i++)
        p += sprintf(p, "}]}");
    sprintf(p, "}");
    return s;
}

/* Offset of the k-th (1-based) '{' or '[' of s. */
static size_t nth_open(const char *s, int k)
{
    for (size_t i = 0; s[i]; i++)
        if ((s[i] == '{' || s[i] == '[') && --k == 0)
            return i;
    return SIZE_MAX;
}

static void test_depth(void)
{
    /* 64 nested sequences: as deep as the Part 10 reader goes */
    char *s = nested(64);
    dcm_file *f = PARSE(s);
    if (f) {
        dcm_ds *ds = f->ds;
        int depth = 0;
        while (ds && dcm_ds_find(ds, DCM_TAG(0x0040, 0x0275))) {
            ds = ITEM(ds, DCM_TAG(0x0040, 0x0275), 0);
            depth++;
        }
        CHECK_EQ_INT(depth, 64);
        CHECK_STR(ds, DCM_TAG(0x0010, 0x0020), DCM_VR_LO, "deep");
    }
    dcm_file_free(f);
    free(s);
    /* 65: the dataset step refuses at the Value array of the 65th sequence (the 3*65-th bracket) */
    s = nested(65);
    expect_err_n(s, strlen(s), RS_ELIMIT, nth_open(s, 3 * 65), __LINE__);
    free(s);
    /* 200 (a depth bomb): the parser stops at the first bracket past its limit */
    s = nested(200);
    expect_err_n(s, strlen(s), RS_ELIMIT, nth_open(s, 3 * 65 + 5), __LINE__);
    free(s);
    /* arrays nested 100000 deep inside a value */
    size_t n = 100000;
    s = malloc(n + 64);
    int k = sprintf(s, "{\"00100020\":{\"vr\":\"LO\",\"Value\":");
    memset(s + k, '[', n);
    s[k + n] = 0;
    expect_err_n(s, strlen(s), RS_ELIMIT, nth_open(s, 3 * 65 + 5), __LINE__);
    free(s);
}

static void test_text_encoding(void)
{
    /* every escape, \u in both cases, a surrogate pair (U+1D11E), raw UTF-8 */
    dcm_file *f = PARSE(J("{"
        "'00104000':{'vr':'LT','Value':['tab\\tq\\'bs\\\\sl\\/bsp\\bff\\fcr\\rnl\\n\\u0041\\u00e9\\u20AC\\ud834\\udd1e|\\u0000|']},"
        "'00100020':{'vr':'LO','Value':['caf\\u00E9','Müller','\\uD83D\\uDE00']}"
        "}"));
    if (f) {
        CHECK_VAL(f->ds, DCM_TAG(0x0010, 0x4000), DCM_VR_LT,
                  "tab\tq\"bs\\sl/bsp\bff\fcr\rnl\nA\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E|\x00|");
        CHECK_VAL(f->ds, DCM_TAG(0x0010, 0x0020), DCM_VR_LO, "caf\xC3\xA9\\M\xC3\xBCller\\\xF0\x9F\x98\x80");
        CHECK_STR(f->ds, DCM_TAG_SPECIFIC_CHARSET, DCM_VR_CS, "ISO_IR 192");
    }
    dcm_file_free(f);

    /* VRs outside Specific Character Set are ISO 8859-1, as the writer reads them; no charset change */
    f = PARSE(J("{'00080060':{'vr':'CS','Value':['\\u00e9t\\u00C9','\xc3\xbf']},"
                "'00080005':{'vr':'CS','Value':['ISO_IR 100']},'00100010':{'vr':'PN','Value':[{'Alphabetic':'Doe'}]}}"));
    if (f) {
        CHECK_VAL(f->ds, DCM_TAG(0x0008, 0x0060), DCM_VR_CS, "\xE9t\xC9\\\xFF");
        CHECK_STR(f->ds, DCM_TAG_SPECIFIC_CHARSET, DCM_VR_CS, "ISO_IR 100");
    }
    dcm_file_free(f);

    /* non-ASCII text: (0008,0005) becomes ISO_IR 192 at the top and in items that had their own */
    f = PARSE(J("{'00080005':{'vr':'CS','Value':[null,'ISO 2022 IR 87']},"
                "'00400275':{'vr':'SQ','Value':["
                "  {'00080005':{'vr':'CS','Value':['ISO 2022 IR 149']},'00400007':{'vr':'LO','Value':['x']}},"
                "  {'00400007':{'vr':'LO','Value':['y']},'00400008':{'vr':'SQ','Value':[{'00080005':{'vr':'CS','Value':['ISO_IR 100']},"
                "     '00400009':{'vr':'SH','Value':['\\u00e9']}}]}}]}}"));
    if (f) {
        CHECK_STR(f->ds, DCM_TAG_SPECIFIC_CHARSET, DCM_VR_CS, "ISO_IR 192");
        dcm_ds *i0 = ITEM(f->ds, DCM_TAG(0x0040, 0x0275), 0);
        dcm_ds *i1 = ITEM(f->ds, DCM_TAG(0x0040, 0x0275), 1);
        CHECK_STR(i0, DCM_TAG_SPECIFIC_CHARSET, DCM_VR_CS, "ISO_IR 192");
        CHECK(i1 && dcm_ds_find(i1, DCM_TAG_SPECIFIC_CHARSET) == NULL);
        dcm_ds *i2 = ITEM(i1, DCM_TAG(0x0040, 0x0008), 0);
        CHECK_STR(i2, DCM_TAG_SPECIFIC_CHARSET, DCM_VR_CS, "ISO_IR 192");
        CHECK_VAL(i2, DCM_TAG(0x0040, 0x0009), DCM_VR_SH, "\xC3\xA9");
    }
    dcm_file_free(f);

    /* ASCII only: the declared set is left alone */
    f = PARSE(J("{'00080005':{'vr':'CS','Value':['ISO_IR 100']},'00100010':{'vr':'PN','Value':[{'Alphabetic':'Doe'}]}}"));
    if (f)
        CHECK_STR(f->ds, DCM_TAG_SPECIFIC_CHARSET, DCM_VR_CS, "ISO_IR 100");
    dcm_file_free(f);

    /* whitespace everywhere, a byte order mark, lower-case hex keys, "vr" after "Value", any order */
    const char *ws = "\xEF\xBB\xBF \r\n\t{ \"7fe00010\" : { \"InlineBinary\" : \"AQI=\" , \"vr\" : \"OW\" } ,\n"
                     "  \"0010001a\":{\"Value\":[ { \"Alphabetic\" : \"Z\" } ],\"vr\":\"PN\"},\"00100010\":{\"vr\":\"PN\"}\n} \n";
    f = PARSE(ws);
    if (f) {
        CHECK_EQ_INT(f->ds->n, 3);
        CHECK(f->ds->n == 3 && f->ds->e[0].tag == DCM_TAG(0x0010, 0x0010) && f->ds->e[1].tag == DCM_TAG(0x0010, 0x001A) &&
              f->ds->e[2].tag == DCM_TAG_PIXEL_DATA);
        CHECK_VAL(f->ds, DCM_TAG(0x0010, 0x001A), DCM_VR_PN, "Z");
        CHECK_VAL(f->ds, DCM_TAG_PIXEL_DATA, DCM_VR_OW, "\x01\x02");
    }
    dcm_file_free(f);

    /* the smallest document */
    f = PARSE("{}");
    if (f)
        CHECK(f->ds->n == 0 && f->meta->n == 0);
    dcm_file_free(f);
}

static void test_binary(void)
{
    dcm_file *f = PARSE(J("{"
        "'00420011':{'vr':'OB','InlineBinary':'AAEC/w=='},"
        "'00282000':{'vr':'OB','InlineBinary':'AAEC\\/w=='},"
        "'00091010':{'vr':'OW','InlineBinary':'AQID'},"
        "'00091011':{'vr':'UN','InlineBinary':''},"
        "'00091012':{'vr':'OF','InlineBinary':'AACAPw=='},"
        "'00091013':{'vr':'OB','InlineBinary':'AA=='},"
        "'00091014':{'vr':'OD','InlineBinary':'AAAAAAAA8D8='},"
        "'00091015':{'vr':'OL','InlineBinary':'AQIDBA=='},"
        "'00091016':{'vr':'OV','InlineBinary':'AQIDBAUGBwg='},"
        "'00091017':{'vr':'UN','InlineBinary':'+/+/'},"
        "'00091018':{'vr':'OB','BulkDataURI':'http://example.com/bulk/1'},"
        "'00091019':{'vr':'OB'},"
        "'00091020':{'vr':'LO','BulkDataURI':'http://example.com/bulk/2'},"
        "'00091021':{'vr':'FL','BulkDataURI':'x'}"
        "}"));
    if (!f)
        return;
    dcm_ds *ds = f->ds;
    CHECK_VAL(ds, DCM_TAG(0x0042, 0x0011), DCM_VR_OB, "\x00\x01\x02\xFF");
    CHECK_VAL(ds, DCM_TAG(0x0028, 0x2000), DCM_VR_OB, "\x00\x01\x02\xFF");
    CHECK_VAL(ds, DCM_TAG(0x0009, 0x1010), DCM_VR_OW, "\x01\x02\x03");
    CHECK_VAL(ds, DCM_TAG(0x0009, 0x1011), DCM_VR_UN, "");
    CHECK_VAL(ds, DCM_TAG(0x0009, 0x1012), DCM_VR_OF, "\x00\x00\x80\x3F");
    CHECK_VAL(ds, DCM_TAG(0x0009, 0x1013), DCM_VR_OB, "\x00");
    CHECK_VAL(ds, DCM_TAG(0x0009, 0x1014), DCM_VR_OD, "\x00\x00\x00\x00\x00\x00\xF0\x3F");
    CHECK_VAL(ds, DCM_TAG(0x0009, 0x1015), DCM_VR_OL, "\x01\x02\x03\x04");
    CHECK_VAL(ds, DCM_TAG(0x0009, 0x1016), DCM_VR_OV, "\x01\x02\x03\x04\x05\x06\x07\x08");
    CHECK_VAL(ds, DCM_TAG(0x0009, 0x1017), DCM_VR_UN, "\xFB\xFF\xBF");
    /* bulk data references are not resolved: empty values */
    CHECK_VAL(ds, DCM_TAG(0x0009, 0x1018), DCM_VR_OB, "");
    CHECK_VAL(ds, DCM_TAG(0x0009, 0x1019), DCM_VR_OB, "");
    CHECK_VAL(ds, DCM_TAG(0x0009, 0x1020), DCM_VR_LO, "");
    CHECK_VAL(ds, DCM_TAG(0x0009, 0x1021), DCM_VR_FL, "");
    /* an OW of 3 bytes is kept, with a warning */
    CHECK_EQ_INT(f->n_warnings, 1);
    dcm_file_free(f);
}

static void test_pixel_data_and_meta(void)
{
    /* the writer inlines encapsulated pixel data as its item stream: it becomes fragments again */
    static const char items[] = "/v8A4AAAAAD+/wDgAwAAAAECAw=="; /* FFFE,E000 len 0; FFFE,E000 len 3: 01 02 03 */
    char buf[512];
    snprintf(buf, sizeof buf, "{\"7FE00010\":{\"vr\":\"OB\",\"InlineBinary\":\"%s\"}}", items);
    dcm_file *f = PARSE(buf);
    if (f) {
        const dcm_elem *e = dcm_ds_find(f->ds, DCM_TAG_PIXEL_DATA);
        CHECK(e && (e->flags & DCM_EF_ENCAPS) && (e->flags & DCM_EF_UNDEF_LEN) && e->len == DCM_UNDEF_LEN);
        if (e && (e->flags & DCM_EF_ENCAPS)) {
            CHECK_EQ_INT(e->v.px.n, 2);
            CHECK(e->v.px.n == 2 && e->v.px.frags[0].len == 0 && e->v.px.frags[1].len == 3 &&
                  memcmp(e->v.px.frags[1].bytes, "\x01\x02\x03", 3) == 0);
        }
        CHECK(f->ts == dcm_ts_generic_encapsulated());
        /* written again, it is the same JSON */
        rs_buf out = RS_BUF_INIT;
        rs_err err = {0};
        CHECK(dcm_json_write(f->ds, NULL, &out, &err) == RS_OK);
        CHECK(out.p && strcmp((char *)out.p, buf) == 0);
        rs_buf_free(&out);
    }
    dcm_file_free(f);

    /* with a transfer syntax in the file meta: group 0002 goes to the meta, the syntax is the file's */
    snprintf(buf, sizeof buf,
             "{\"00020010\":{\"vr\":\"UI\",\"Value\":[\"1.2.840.10008.1.2.4.50\"]},"
             "\"00080016\":{\"vr\":\"UI\",\"Value\":[\"1.2.3\"]},\"7FE00010\":{\"vr\":\"OB\",\"InlineBinary\":\"%s\"}}", items);
    f = PARSE(buf);
    if (f) {
        const dcm_elem *e = dcm_ds_find(f->ds, DCM_TAG_PIXEL_DATA);
        CHECK(e && (e->flags & DCM_EF_ENCAPS));
        CHECK(f->has_meta && f->meta->n == 1 && dcm_ds_find(f->meta, DCM_TAG_TRANSFER_SYNTAX));
        CHECK(f->ds->n == 2 && !dcm_ds_find(f->ds, DCM_TAG_TRANSFER_SYNTAX));
        CHECK(f->ts && strcmp(f->ts->uid, "1.2.840.10008.1.2.4.50") == 0);
        CHECK_EQ_STR(f->ts_uid, "1.2.840.10008.1.2.4.50");
    }
    dcm_file_free(f);

    /* a native transfer syntax: the same bytes stay one plain value */
    snprintf(buf, sizeof buf,
             "{\"00020010\":{\"vr\":\"UI\",\"Value\":[\"1.2.840.10008.1.2\"]},\"7FE00010\":{\"vr\":\"OB\",\"InlineBinary\":\"%s\"}}",
             items);
    f = PARSE(buf);
    if (f) {
        CHECK_VAL(f->ds, DCM_TAG_PIXEL_DATA, DCM_VR_OB, "\xFE\xFF\x00\xE0\x00\x00\x00\x00\xFE\xFF\x00\xE0\x03\x00\x00\x00\x01\x02\x03");
        CHECK(f->ts == dcm_ts_implicit_le());
    }
    dcm_file_free(f);

    /* a transfer syntax that is not text is not one (found by fuzzing) */
    f = PARSE("{\"00020010\":{\"vr\":\"SQ\",\"Value\":[{}]},\"00020011\":{\"vr\":\"OB\",\"InlineBinary\":\"AAAA\"}}");
    if (f)
        CHECK(f->meta->n == 2 && f->ds->n == 0 && f->ts == dcm_ts_explicit_le());
    dcm_file_free(f);

    /* bytes that are not an item stream stay plain, and the syntax stays explicit VR little endian */
    f = PARSE("{\"7FE00010\":{\"vr\":\"OW\",\"InlineBinary\":\"/v8A4AEAAAA=\"}}");
    if (f) {
        CHECK_VAL(f->ds, DCM_TAG_PIXEL_DATA, DCM_VR_OW, "\xFE\xFF\x00\xE0\x01\x00\x00\x00");
        CHECK(f->ts == dcm_ts_explicit_le());
        CHECK_EQ_STR(f->ts_uid, DCM_TS_EXPLICIT_LE);
    }
    dcm_file_free(f);
}

/* A dataset with every VR written by dcm_json_write, read back and written again. */
static void test_write_read_write(void)
{
    dcm_file *f = dcm_file_new(0);
    dcm_ds *ds = f->ds;
#define E(tag, vr, lit) {(tag), (vr), (lit), sizeof(lit) - 1}
    static const struct { uint32_t tag; uint16_t vr; const char *v; size_t n; } el[] = {
        E(DCM_TAG(0x0008, 0x0005), DCM_VR_CS, "ISO_IR 192"),
        E(DCM_TAG(0x0008, 0x0008), DCM_VR_CS, "ORIGINAL\\\\M "),
        E(DCM_TAG(0x0008, 0x0016), DCM_VR_UI, "1.2.3\0"),
        E(DCM_TAG(0x0008, 0x0020), DCM_VR_DA, "20240101"),
        E(DCM_TAG(0x0008, 0x002A), DCM_VR_DT, "20240101120000"),
        E(DCM_TAG(0x0008, 0x0030), DCM_VR_TM, "1200 "),
        E(DCM_TAG(0x0008, 0x0050), DCM_VR_SH, "A\"B"),
        E(DCM_TAG(0x0008, 0x0054), DCM_VR_AE, "AET"),
        E(DCM_TAG(0x0008, 0x0081), DCM_VR_ST, "a\\b\tc"),
        E(DCM_TAG(0x0008, 0x0119), DCM_VR_UC, "u\\c"),
        E(DCM_TAG(0x0008, 0x0120), DCM_VR_UR, "http://x/\\y "),
        E(DCM_TAG(0x0010, 0x0010), DCM_VR_PN, "Doe^J=\xE5\xB1\xB1=x\\\\=I"),
        E(DCM_TAG(0x0010, 0x0020), DCM_VR_LO, "\xC3\xA9\x01\x7F"),
        E(DCM_TAG(0x0010, 0x1010), DCM_VR_AS, "045Y"),
        E(DCM_TAG(0x0010, 0x4000), DCM_VR_LT, "line\r\nline"),
        E(DCM_TAG(0x0018, 0x0050), DCM_VR_DS, "+01.50\\.5\\-.5\\1.e5\\abc\\ 7 \\\\1E+02"),
        E(DCM_TAG(0x0020, 0x0013), DCM_VR_IS, "+0012\\-3\\\\x"),
        E(DCM_TAG(0x0020, 0x9165), DCM_VR_AT, "\x10\x00\x20\x00\xE0\x7F\x10\x00"),
        E(DCM_TAG(0x0028, 0x0010), DCM_VR_US, "\x00\x02\xFF\xFF"),
        E(DCM_TAG(0x0028, 0x0106), DCM_VR_SS, "\x00\x80"),
        E(DCM_TAG(0x0040, 0xA160), DCM_VR_UT, "\xE2\x82\xAC "),
        E(DCM_TAG(0x0066, 0x0040), DCM_VR_UV, "\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"),
        E(DCM_TAG(0x0066, 0x0041), DCM_VR_SV, "\x00\x00\x00\x00\x00\x00\x00\x80"),
        E(DCM_TAG(0x0018, 0x6020), DCM_VR_SL, "\xFF\xFF\xFF\xFF"),
        E(DCM_TAG(0x0008, 0x1161), DCM_VR_UL, "\x01\x00\x00\x00"),
        E(DCM_TAG(0x0018, 0x9087), DCM_VR_FD, "\x18\x2d\x44\x54\xfb\x21\x09\x40\x00\x00\x00\x00\x00\x00\x00\x80\x00\x00\x00\x00\x00\x00\xf0\x7f"), /* pi, -0, +inf */
        E(DCM_TAG(0x0072, 0x0064), DCM_VR_FL, "\xcd\xcc\xcc\x3d\x00\x00\x20\xc0"), /* 0.1f, -2.5f */
        E(DCM_TAG(0x0009, 0x1010), DCM_VR_OW, "\x01\x02\x03\x04"),
        E(DCM_TAG(0x0009, 0x1011), DCM_VR_UN, "\x00"),
        E(DCM_TAG(0x0009, 0x1012), DCM_VR_OD, "\x00\x00\x00\x00\x00\x00\xF0\x3F"),
        E(DCM_TAG(0x0009, 0x1013), DCM_VR_OF, "\x00\x00\x80\x3F"),
        E(DCM_TAG(0x0009, 0x1014), DCM_VR_OL, "\x01\x00\x00\x00"),
        E(DCM_TAG(0x0009, 0x1015), DCM_VR_OV, "\x01\x00\x00\x00\x00\x00\x00\x00"),
        E(DCM_TAG(0x0009, 0x1016), DCM_VR_OB, ""),
        E(DCM_TAG(0x0009, 0x1017), DCM_VR_LO, "   "),
    };
#undef E
    int ok = 1;
    for (size_t i = 0; i < sizeof el / sizeof el[0]; i++)
        ok &= dcm_ds_set_bytes(ds, el[i].tag, el[i].vr, el[i].v, el[i].n) == RS_OK;
    dcm_ds *it = dcm_ds_add_item(ds, DCM_TAG(0x0040, 0x0275));
    ok &= it && dcm_ds_set_str(it, DCM_TAG(0x0040, 0x0007), DCM_VR_LO, "item") == RS_OK;
    ok &= dcm_ds_add_item(ds, DCM_TAG(0x0040, 0x0275)) != NULL;
    dcm_ds *it2 = it ? dcm_ds_add_item(it, DCM_TAG(0x0040, 0x0008)) : NULL;
    ok &= it2 && dcm_ds_set_str(it2, DCM_TAG(0x0008, 0x0100), DCM_VR_SH, "nested") == RS_OK;
    ok &= dcm_ds_put(ds, DCM_TAG(0x0008, 0x1140), DCM_VR_SQ) != NULL;
    CHECK(ok);

    rs_buf j1 = RS_BUF_INIT, j2 = RS_BUF_INIT, jp = RS_BUF_INIT, j3 = RS_BUF_INIT;
    rs_err err = {0};
    CHECK(dcm_json_write(ds, NULL, &j1, &err) == RS_OK);
    dcm_file *g = parse_n((const char *)j1.p, j1.len, __LINE__);
    if (g) {
        CHECK(dcm_json_write(g->ds, NULL, &j2, &err) == RS_OK);
        CHECK(buf_eq(&j1, &j2));
        if (!buf_eq(&j1, &j2))
            report_diff("hand-built dataset", &j1, &j2);
        /* what the writer normalised (number text, padding) is read back as written */
        CHECK_STR(g->ds, DCM_TAG(0x0018, 0x0050), DCM_VR_DS, "1.50\\0.5\\-0.5\\1e5\\abc\\7\\\\1e+02");
        CHECK_STR(g->ds, DCM_TAG(0x0020, 0x0013), DCM_VR_IS, "12\\-3\\\\x");
        CHECK_VAL(g->ds, DCM_TAG(0x0010, 0x0020), DCM_VR_LO, "\xC3\xA9\x01\x7F");
        CHECK_VAL(g->ds, DCM_TAG(0x0008, 0x0016), DCM_VR_UI, "1.2.3");
        CHECK_VAL(g->ds, DCM_TAG(0x0008, 0x0120), DCM_VR_UR, "http://x/\\y");
        CHECK_VAL(g->ds, DCM_TAG(0x0010, 0x0010), DCM_VR_PN, "Doe^J=\xE5\xB1\xB1=x\\\\=I");
        CHECK_VAL(g->ds, DCM_TAG(0x0009, 0x1017), DCM_VR_LO, "");
        const dcm_elem *fl = dcm_ds_find(g->ds, DCM_TAG(0x0072, 0x0064));
        CHECK(fl && fl->len == 8 && memcmp(fl->v.bytes, "\xcd\xcc\xcc\x3d\x00\x00\x20\xc0", 8) == 0);
        const dcm_elem *fd = dcm_ds_find(g->ds, DCM_TAG(0x0018, 0x9087));
        double inf_back = 0;
        if (fd && fd->len == 24)
            memcpy(&inf_back, fd->v.bytes + 16, 8);
        CHECK(fd && fd->len == 24 && isnan(inf_back)); /* written as null */
    }
    /* pretty printed: same dataset */
    dcm_json_opts po = {.inline_max = UINT32_MAX, .pretty = 1};
    CHECK(dcm_json_write(ds, &po, &jp, &err) == RS_OK);
    dcm_file *h = parse_n((const char *)jp.p, jp.len, __LINE__);
    if (h) {
        CHECK(dcm_json_write(h->ds, NULL, &j3, &err) == RS_OK);
        CHECK(buf_eq(&j1, &j3));
    }
    rs_buf_free(&j1);
    rs_buf_free(&j2);
    rs_buf_free(&j3);
    rs_buf_free(&jp);
    dcm_file_free(f);
    dcm_file_free(g);
    dcm_file_free(h);
}

/* ---- part 2: errors ------------------------------------------------------------------------- */

static void test_errors(void)
{
    /* input that is not a DICOM JSON object */
    ERR("", RS_ETRUNC, NULL);
    ERR(" \n ", RS_ETRUNC, NULL);
    ERR("[]", RS_EFORMAT, "[");
    ERR("  'x'", RS_EFORMAT, "'x'");
    ERR("{'00100010':{'vr':'PN','Value':[{'Alphabetic':'A", RS_ETRUNC, NULL);
    ERR("{'00100010':{'vr':'PN'", RS_ETRUNC, NULL);
    ERR("{'00100010':{'vr':'US','Value':[1", RS_ETRUNC, NULL);
    ERR("{'00100010':{'vr':'US','Value':[-", RS_ETRUNC, NULL);
    ERR("{'00100010':{'vr':'US','Value':[1.", RS_ETRUNC, NULL);
    ERR("{'00100010':{'vr':'US','Value':[1e+", RS_ETRUNC, NULL);
    ERR("{'00100010':{'vr':'LO','Value':[nu", RS_ETRUNC, NULL);
    ERR("{'00100010':{'vr':'LO','Value':['a\\", RS_ETRUNC, NULL);

    /* JSON syntax */
    ERR("{} x", RS_EFORMAT, "x");
    expect_err_n("{}}", 3, RS_EFORMAT, 2, __LINE__);
    expect_err_n("{}{}", 4, RS_EFORMAT, 2, __LINE__);
    expect_err_n("{}\0", 3, RS_EFORMAT, 2, __LINE__);
    static const char nul_in_string[] = "{\"00100020\":{\"vr\":\"LO\",\"Value\":[\"a\0\"]}}";
    expect_err_n(nul_in_string, sizeof nul_in_string - 1, RS_EFORMAT, 34, __LINE__);
    ERR("{'00100020':{'vr':'LO',}}", RS_EFORMAT, "}}");
    ERR("{'00100020':{'vr':'LO','Value':['a',]}}", RS_EFORMAT, "]}}");
    ERR("{'00100020':{'vr':'LO','Value':['a' 'b']}}", RS_EFORMAT, "'b'");
    ERR("{'00100020' {'vr':'LO'}}", RS_EFORMAT, "{'vr'");
    ERR("{'00100020':{'vr':'LO'} '00100010':{}}", RS_EFORMAT, "'00100010'");
    ERR("{00100020:{'vr':'LO'}}", RS_EFORMAT, "00100020");
    ERR("{'00100020':{'vr':'US','Value':[01]}}", RS_EFORMAT, "01]");
    ERR("{'00100020':{'vr':'US','Value':[1.]}}", RS_EFORMAT, "]}}");
    ERR("{'00100020':{'vr':'US','Value':[+1]}}", RS_EFORMAT, "+1");
    ERR("{'00100020':{'vr':'US','Value':[.5]}}", RS_EFORMAT, ".5");
    ERR("{'00100020':{'vr':'US','Value':[1e]}}", RS_EFORMAT, "]}}");
    ERR("{'00100020':{'vr':'US','Value':[-x]}}", RS_EFORMAT, "-x");
    ERR("{'00100020':{'vr':'US','Value':[NaN]}}", RS_EFORMAT, "NaN");
    ERR("{'00100020':{'vr':'LO','Value':[nul]}}", RS_EFORMAT, "nul");
    ERR("{'00100020':{'vr':'LO','Value':[True]}}", RS_EFORMAT, "True");
    ERR("{'00100020':{'vr':'LO','Value':[nullx]}}", RS_EFORMAT, "x]");
    ERR("{'00100020':{'vr':'LO','Value':['a\\x']}}", RS_EFORMAT, "\\x");
    ERR("{'00100020':{'vr':'LO','Value':['a\\u12G4']}}", RS_EFORMAT, "\\u12");
    ERR("{'00100020':{'vr':'LO','Value':['a\tb']}}", RS_EFORMAT, "\t");
    ERR("{'00100020':{'vr':'LO','Value':['a\nb']}}", RS_EFORMAT, "\n");
    /* invalid UTF-8: a stray byte, an overlong form, an encoded surrogate, beyond U+10FFFF, cut short */
    ERR("{'00100020':{'vr':'LO','Value':['a\xff']}}", RS_EFORMAT, "\xff");
    ERR("{'00100020':{'vr':'LO','Value':['a\xc0\x80']}}", RS_EFORMAT, "\xc0");
    ERR("{'00100020':{'vr':'LO','Value':['a\xed\xa0\x80']}}", RS_EFORMAT, "\xed");
    ERR("{'00100020':{'vr':'LO','Value':['a\xf4\x90\x80\x80']}}", RS_EFORMAT, "\xf4");
    ERR("{'00100020':{'vr':'LO','Value':['a\xe2\x82']}}", RS_EFORMAT, "\xe2");
    ERR("{'00100020':{'vr':'LO','Value':['a\x80']}}", RS_EFORMAT, "\x80");
    /* lone surrogates */
    ERR("{'00100020':{'vr':'LO','Value':['a\\ud800']}}", RS_EFORMAT, "\\ud800");
    ERR("{'00100020':{'vr':'LO','Value':['a\\udc00b']}}", RS_EFORMAT, "\\udc00");
    ERR("{'00100020':{'vr':'LO','Value':['a\\ud800\\u0041']}}", RS_EFORMAT, "\\ud800");
    ERR("{'00100020':{'vr':'LO','Value':['a\\uD800\\uD800']}}", RS_EFORMAT, "\\uD800");
    ERR("{'00100020':{'vr':'LO','Value':['\\ud800x\\udc00']}}", RS_EFORMAT, "\\ud800");

    /* attribute keys */
    ERR("{'0010001G':{'vr':'LO'}}", RS_EFORMAT, "'0010001G'");
    ERR("{'001000100':{'vr':'LO'}}", RS_EFORMAT, "'001000100'");
    ERR("{'0010002':{'vr':'LO'}}", RS_EFORMAT, "'0010002'");
    ERR("{'':{'vr':'LO'}}", RS_EFORMAT, "''");
    ERR("{'(0010,0020)':{'vr':'LO'}}", RS_EFORMAT, "'(0010");
    ERR("{'00100010':{'vr':'PN'},' 0100020':{'vr':'LO'}}", RS_EFORMAT, "' 0100020'");
    ERR("{'0010001a':{'vr':'LO'},'0010001A':{'vr':'LO'}}", RS_EFORMAT, "'0010001A'");
    ERR("{'FFFEE000':{'vr':'OB'}}", RS_EFORMAT, "'FFFEE000'");
    ERR("{'00080005':{'vr':'SQ','Value':[{}]}}", RS_EFORMAT, "'SQ'"); /* found by fuzzing */
    ERR("{'00400275':{'vr':'SQ','Value':[{'00080005':{'vr':'OB','InlineBinary':'AA=='}}]}}", RS_EFORMAT, "'OB'");
    ERR("{'00400275':{'vr':'SQ','Value':[{'00020010':{'vr':'UI','Value':['1.2']}}]}}", RS_EFORMAT, "'00020010'");

    /* attribute objects */
    ERR("{'00100020':'x'}", RS_EFORMAT, "'x'");
    ERR("{'00100020':{}}", RS_EFORMAT, "{}");
    ERR("{'00100020':{'Value':['a']}}", RS_EFORMAT, "{'Value'");
    ERR("{'00100020':{'vr':'XX'}}", RS_EFORMAT, "'XX'");
    ERR("{'00100020':{'vr':'lo'}}", RS_EFORMAT, "'lo'");
    ERR("{'00100020':{'vr':'LOO'}}", RS_EFORMAT, "'LOO'");
    ERR("{'00100020':{'vr':''}}", RS_EFORMAT, "''");
    ERR("{'00100020':{'vr':5}}", RS_EFORMAT, "5}");
    ERR("{'00100020':{'vr':'LO','vr':'LO'}}", RS_EFORMAT, "'vr':'LO'}");
    ERR("{'00100020':{'vr':'LO','value':['a']}}", RS_EFORMAT, "'value'");
    ERR("{'00100020':{'vr':'LO','Value':['a'],'BulkDataURI':'x'}}", RS_EFORMAT, "'x'");
    ERR("{'00100020':{'vr':'OB','BulkDataURI':'x','InlineBinary':'AA=='}}", RS_EFORMAT, "'AA=='");
    ERR("{'00100020':{'vr':'LO','InlineBinary':'AA=='}}", RS_EFORMAT, "'AA=='");
    ERR("{'00100020':{'vr':'OB','Value':['AA==']}}", RS_EFORMAT, "['AA");
    ERR("{'00100020':{'vr':'OB','BulkDataURI':5}}", RS_EFORMAT, "5}");
    ERR("{'00100020':{'vr':'SQ','InlineBinary':'AA=='}}", RS_EFORMAT, "'AA=='");
    ERR("{'00100020':{'vr':'SQ','BulkDataURI':'x'}}", RS_EFORMAT, "'x'");

    /* values of the wrong type for the VR */
    ERR("{'00100020':{'vr':'LO','Value':'abc'}}", RS_EFORMAT, "'abc'");
    ERR("{'00100020':{'vr':'LO','Value':null}}", RS_EFORMAT, "null");
    ERR("{'00100020':{'vr':'LO','Value':['a',1]}}", RS_EFORMAT, "1]");
    ERR("{'00100020':{'vr':'LO','Value':[true]}}", RS_EFORMAT, "true");
    ERR("{'00100020':{'vr':'LO','Value':[['a']]}}", RS_EFORMAT, "['a']]");
    ERR("{'00280010':{'vr':'US','Value':['1']}}", RS_EFORMAT, "'1'");
    ERR("{'00280010':{'vr':'US','Value':[1,null]}}", RS_EFORMAT, "null");
    ERR("{'00280010':{'vr':'FL','Value':['1.0']}}", RS_EFORMAT, "'1.0'");
    ERR("{'00280010':{'vr':'DS','Value':[false]}}", RS_EFORMAT, "false");
    ERR("{'00280010':{'vr':'IS','Value':[1e999]}}", RS_EFORMAT, "1e999");
    ERR("{'00100010':{'vr':'PN','Value':['Doe^John']}}", RS_EFORMAT, "'Doe");
    ERR("{'00100010':{'vr':'PN','Value':[{'Alphabetic':1}]}}", RS_EFORMAT, "1}");
    ERR("{'00100010':{'vr':'PN','Value':[{'alphabetic':'A'}]}}", RS_EFORMAT, "'alphabetic'");
    ERR("{'00100010':{'vr':'PN','Value':[{'Phonetic':'A','Phonetic':'B'}]}}", RS_EFORMAT, "'Phonetic':'B'");
    ERR("{'00100010':{'vr':'PN','Value':[{'Alphabetic':'A=B'}]}}", RS_EFORMAT, "=B");
    ERR("{'00100010':{'vr':'PN','Value':[{'Alphabetic':'A\\\\B'}]}}", RS_EFORMAT, "'A\\\\B'");
    ERR("{'00209165':{'vr':'AT','Value':[1048592]}}", RS_EFORMAT, "1048592");
    ERR("{'00209165':{'vr':'AT','Value':['0010001']}}", RS_EFORMAT, "'0010001'");
    ERR("{'00209165':{'vr':'AT','Value':['0010001X']}}", RS_EFORMAT, "'0010001X'");
    ERR("{'00209165':{'vr':'AT','Value':[null]}}", RS_EFORMAT, "null");
    ERR("{'00400275':{'vr':'SQ','Value':[null]}}", RS_EFORMAT, "null");
    ERR("{'00400275':{'vr':'SQ','Value':[{},[]]}}", RS_EFORMAT, "[]]");
    ERR("{'00400275':{'vr':'SQ','Value':{}}}", RS_EFORMAT, "{}}");
    ERR("{'00400275':{'vr':'SQ','Value':[{'0040A160':{'vr':'UT','Value':[7]}}]}}", RS_EFORMAT, "7]");
    ERR("{'00400275':{'vr':'SQ','Value':[{'0040A160':{'vr':'UT'},'0040a160':{'vr':'UT'}}]}}", RS_EFORMAT, "'0040a160'");
    /* value separators inside a value, several values for single-valued VRs, outside ISO 8859-1 */
    ERR("{'00080060':{'vr':'CS','Value':['A\\\\B']}}", RS_EFORMAT, "'A\\\\B'");
    ERR("{'00100020':{'vr':'LO','Value':['x','A\\u005cB']}}", RS_EFORMAT, "'A\\u005c");
    ERR("{'00104000':{'vr':'LT','Value':['a','b']}}", RS_EFORMAT, "'b'");
    ERR("{'00080120':{'vr':'UR','Value':[null,null]}}", RS_EFORMAT, "null]");
    ERR("{'00080060':{'vr':'CS','Value':['A\\u4e00']}}", RS_EFORMAT, "'A\\u4e00");
    ERR("{'00080060':{'vr':'CS','Value':['A\xe4\xb8\x80']}}", RS_EFORMAT, "\xe4");

    /* integers and floats out of range for the VR */
    ERR("{'00280010':{'vr':'US','Value':[65536]}}", RS_EFORMAT, "65536");
    ERR("{'00280010':{'vr':'US','Value':[0,-1]}}", RS_EFORMAT, "-1");
    ERR("{'00280010':{'vr':'US','Value':[1e5]}}", RS_EFORMAT, "1e5");
    ERR("{'00280010':{'vr':'US','Value':[1.5]}}", RS_EFORMAT, "1.5");
    ERR("{'00280010':{'vr':'US','Value':[-0.5]}}", RS_EFORMAT, "-0.5");
    ERR("{'00280010':{'vr':'SS','Value':[-32769]}}", RS_EFORMAT, "-32769");
    ERR("{'00280010':{'vr':'SS','Value':[32768]}}", RS_EFORMAT, "32768");
    ERR("{'00280010':{'vr':'UL','Value':[4294967296]}}", RS_EFORMAT, "4294967296");
    ERR("{'00280010':{'vr':'SL','Value':[2147483648]}}", RS_EFORMAT, "2147483648");
    ERR("{'00280010':{'vr':'SL','Value':[-2147483649]}}", RS_EFORMAT, "-2147483649");
    ERR("{'00280010':{'vr':'UV','Value':[-1]}}", RS_EFORMAT, "-1");
    ERR("{'00280010':{'vr':'UV','Value':[18446744073709551616]}}", RS_EFORMAT, "18446744073709551616");
    ERR("{'00280010':{'vr':'UV','Value':[1e20]}}", RS_EFORMAT, "1e20");
    ERR("{'00280010':{'vr':'UV','Value':[99999999999999999999999]}}", RS_EFORMAT, "9999");
    ERR("{'00280010':{'vr':'SV','Value':[9223372036854775808]}}", RS_EFORMAT, "9223372036854775808");
    ERR("{'00280010':{'vr':'SV','Value':[-9223372036854775809]}}", RS_EFORMAT, "-9223372036854775809");
    ERR("{'00280010':{'vr':'FL','Value':[3.5e38]}}", RS_EFORMAT, "3.5e38");
    ERR("{'00280010':{'vr':'FL','Value':[-1e39]}}", RS_EFORMAT, "-1e39");
    ERR("{'00280010':{'vr':'FD','Value':[1e309]}}", RS_EFORMAT, "1e309");
    ERR("{'00280010':{'vr':'DS','Value':[1e309]}}", RS_EFORMAT, "1e309");

    /* base64 */
    ERR("{'00420011':{'vr':'OB','InlineBinary':'AAE'}}", RS_EFORMAT, "'AAE'");
    ERR("{'00420011':{'vr':'OB','InlineBinary':'AA*A'}}", RS_EFORMAT, "*");
    ERR("{'00420011':{'vr':'OB','InlineBinary':'AA A'}}", RS_EFORMAT, " A'");
    ERR("{'00420011':{'vr':'OB','InlineBinary':'AA-_'}}", RS_EFORMAT, "-_");
    ERR("{'00420011':{'vr':'OB','InlineBinary':'AB=='}}", RS_EFORMAT, "B==");
    ERR("{'00420011':{'vr':'OB','InlineBinary':'AAB='}}", RS_EFORMAT, "B=");
    ERR("{'00420011':{'vr':'OB','InlineBinary':'A==='}}", RS_EFORMAT, "===");
    ERR("{'00420011':{'vr':'OB','InlineBinary':'AA=A'}}", RS_EFORMAT, "=A");
    ERR("{'00420011':{'vr':'OB','InlineBinary':'AA==AAAA'}}", RS_EFORMAT, "==AAAA");
    ERR("{'00420011':{'vr':'OB','InlineBinary':'===='}}", RS_EFORMAT, "====");
    ERR("{'00420011':{'vr':'OB','InlineBinary':'AAAA\\nAAAA'}}", RS_EFORMAT, "'AAAA\\n");
    ERR("{'00420011':{'vr':'OB','InlineBinary':5}}", RS_EFORMAT, "5}");
    ERR("{'00420011':{'vr':'OB','InlineBinary':null}}", RS_EFORMAT, "null");

    /* pixel data that cannot be what the transfer syntax says */
    ERR("{'00020010':{'vr':'UI','Value':['1.2.840.10008.1.2.4.50']},'7FE00010':{'vr':'OB','InlineBinary':'AQID'}}",
        RS_EFORMAT, "'AQID'");
}

/* Every proper prefix of a valid document is a truncated document. */
static void test_prefixes(void)
{
    const char *doc = J("{'00080005':{'vr':'CS','Value':['ISO_IR 192']},"
                        "'00100010':{'vr':'PN','Value':[{'Alphabetic':'Doe^J','Ideographic':'\\u5c71'},null]},"
                        "'00280010':{'vr':'US','Value':[512,-0,1.5e2]},'00089999':{'vr':'FD','Value':[true,false,null]},"
                        "'00400275':{'vr':'SQ','Value':[{'0040A160':{'vr':'UT','Value':['\\ud834\\udd1e \\\\ \\'']}},{}]},"
                        "'00420011':{'vr':'OB','InlineBinary':'AAEC'} }  ");
    size_t n = strlen(doc), bad = 0;
    size_t end = n;
    while (end && doc[end - 1] == ' ')
        end--;
    for (size_t k = 0; k < end; k++) {
        dcm_file *f = NULL;
        rs_err err = {0};
        int rc = dcm_json_read(doc, k, &f, &err);
        if (rc != RS_ETRUNC || f || err.offset != k) {
            if (bad++ < 5)
                fprintf(stderr, "%s:%d: prefix of %zu bytes: rc %d at %llu: %s\n", __FILE__, __LINE__, k, rc,
                        (unsigned long long)err.offset, err.msg);
        }
        dcm_file_free(f);
    }
    CHECK_EQ_INT(bad, 0);
    /* the whole document is valid JSON; FD true/false is a type error at the 'true' */
    expect_err_n(doc, n, RS_EFORMAT, (size_t)(strstr(doc, "true") - doc), __LINE__);
}

/* ---- part 3: round trip through pydicom's sample files -------------------------------------- */

/*
 * Drop from compact JSON written by dcm_json_write every member whose key ends in suffix and
 * whose value is {"vr":"<vr>"...} without nested objects (true of CS and UL elements).
 */
static void strip_members(rs_buf *b, const char *suffix, const char *vr)
{
    char pat[64];
    int pl = snprintf(pat, sizeof pat, "%s\":{\"vr\":\"%s\"", suffix, vr);
    size_t sl = strlen(suffix), at = 0;
    for (;;) {
        uint8_t *p = at < b->len ? memmem(b->p + at, b->len - at, pat, (size_t)pl) : NULL;
        if (!p)
            break;
        size_t from = (size_t)(p - b->p);
        if (from < 9 - sl || b->p[from - (9 - sl)] != '"') { /* not a key of 8 characters */
            at = from + 1;
            continue;
        }
        from -= 9 - sl;
        uint8_t *q = memchr(p, '}', b->len - (size_t)(p - b->p));
        if (!q)
            break;
        size_t to = (size_t)(q - b->p) + 1;
        if (to < b->len && b->p[to] == ',')
            to++;
        else if (from && b->p[from - 1] == ',')
            from--;
        memmove(b->p + from, b->p + to, b->len - to);
        b->len -= to - from;
        at = from;
    }
}

static void strip_charset(rs_buf *b)
{
    strip_members(b, "00080005", "CS");
}

static int has_non_ascii(const rs_buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (b->p[i] >= 0x80)
            return 1;
    return 0;
}

static int same_fragments(const dcm_elem *a, const dcm_elem *b)
{
    if (!a || !b || !(a->flags & DCM_EF_ENCAPS) || !(b->flags & DCM_EF_ENCAPS) || a->v.px.n != b->v.px.n)
        return 0;
    for (uint32_t k = 0; k < a->v.px.n; k++) {
        const dcm_frag *x = &a->v.px.frags[k], *y = &b->v.px.frags[k];
        if (x->len != y->len || !x->bytes || !y->bytes || memcmp(x->bytes, y->bytes, x->len) != 0)
            return 0;
    }
    return 1;
}

static void round_trip(const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", PYDICOM_DATA, rel);
    dcm_file *f0 = NULL, *f1 = NULL, *f2 = NULL, *fp = NULL, *f3 = NULL;
    rs_buf j1 = RS_BUF_INIT, j2 = RS_BUF_INIT, j3 = RS_BUF_INIT, jp = RS_BUF_INIT, jpc = RS_BUF_INIT, p10 = RS_BUF_INIT,
           j4 = RS_BUF_INIT;
    rs_err err = {0};
    int fails = t_failures;
    int rc = dcm_read_path(path, NULL, &f0, &err);
    CHECK(rc == RS_OK);
    if (rc) {
        fprintf(stderr, "  %s: %s\n", path, err.msg);
        goto out;
    }
    CHECK(dcm_json_write(f0->ds, NULL, &j1, &err) == RS_OK);
    f1 = parse_n((const char *)j1.p, j1.len, __LINE__);
    if (!f1)
        goto out;
    CHECK(dcm_json_write(f1->ds, NULL, &j2, &err) == RS_OK);
    if (has_non_ascii(&j1)) {
        /* text is UTF-8 now, and the dataset says so; otherwise the same */
        CHECK_STR(f1->ds, DCM_TAG_SPECIFIC_CHARSET, DCM_VR_CS, "ISO_IR 192");
        rs_buf a = RS_BUF_INIT, b = RS_BUF_INIT;
        rs_buf_append(&a, j1.p, j1.len);
        rs_buf_append(&b, j2.p, j2.len);
        strip_charset(&a);
        strip_charset(&b);
        CHECK(buf_eq(&a, &b) && b.len < j2.len);
        if (!buf_eq(&a, &b))
            report_diff(rel, &a, &b);
        rs_buf_free(&a);
        rs_buf_free(&b);
    } else {
        CHECK(buf_eq(&j1, &j2));
        if (!buf_eq(&j1, &j2))
            report_diff(rel, &j1, &j2);
    }
    /* a fixed point from there on */
    f2 = parse_n((const char *)j2.p, j2.len, __LINE__);
    if (f2) {
        CHECK(dcm_json_write(f2->ds, NULL, &j3, &err) == RS_OK);
        CHECK(buf_eq(&j2, &j3));
    }
    /* pretty printed JSON reads back to the same dataset */
    dcm_json_opts po = {.inline_max = UINT32_MAX, .pretty = 1};
    CHECK(dcm_json_write(f0->ds, &po, &jp, &err) == RS_OK);
    fp = parse_n((const char *)jp.p, jp.len, __LINE__);
    if (fp) {
        CHECK(dcm_json_write(fp->ds, NULL, &jpc, &err) == RS_OK);
        CHECK(buf_eq(&j2, &jpc));
    }
    /* encapsulated pixel data comes back as the same fragments */
    const dcm_elem *px0 = dcm_ds_find(f0->ds, DCM_TAG_PIXEL_DATA);
    if (px0 && (px0->flags & DCM_EF_ENCAPS)) {
        CHECK(same_fragments(px0, dcm_ds_find(f1->ds, DCM_TAG_PIXEL_DATA)));
    } else if (f0->n_warnings) {
        /* e.g. odd value lengths: Part 10 pads them, so the JSON would differ for that reason */
        printf("# %s: not compared after Part 10 (the reader warned: %s)\n", rel, f0->warnings[0].msg);
    } else {
        /* the dataset encodes to Part 10 and reads back to the same JSON */
        rc = dcm_write(f1, NULL, &p10, &err);
        CHECK(rc == RS_OK);
        if (rc == RS_OK) {
            rc = dcm_read_mem(p10.p, p10.len, NULL, &f3, &err);
            CHECK(rc == RS_OK && f3->n_warnings == 0);
            if (rc == RS_OK) {
                CHECK(dcm_json_write(f3->ds, NULL, &j4, &err) == RS_OK);
                /* group lengths are recomputed by the writer (text re-encoded as UTF-8 changes them) */
                rs_buf a = RS_BUF_INIT;
                rs_buf_append(&a, j2.p, j2.len);
                strip_members(&a, "0000", "UL");
                strip_members(&j4, "0000", "UL");
                CHECK(buf_eq(&a, &j4));
                if (!buf_eq(&a, &j4))
                    report_diff("after Part 10", &a, &j4);
                rs_buf_free(&a);
            }
        }
        if (rc)
            fprintf(stderr, "  %s: %s\n", rel, err.msg);
    }
out:
    if (t_failures != fails)
        fprintf(stderr, "  ^ round trip of %s\n", rel);
    else
        printf("# round trip ok: %s (%zu bytes of JSON)\n", rel, j1.len);
    rs_buf_free(&j1);
    rs_buf_free(&j2);
    rs_buf_free(&j3);
    rs_buf_free(&jp);
    rs_buf_free(&jpc);
    rs_buf_free(&p10);
    rs_buf_free(&j4);
    dcm_file_free(f0);
    dcm_file_free(f1);
    dcm_file_free(f2);
    dcm_file_free(fp);
    dcm_file_free(f3);
}

static int corpus_files, corpus_skipped;

static int corpus_visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    size_t n = strlen(path);
    static const char *const skip[] = {".txt", ".json", ".dump", ".gz", ".py", "README"};
    if (type != FTW_F)
        return 0;
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (n >= strlen(skip[i]) && strcmp(path + n - strlen(skip[i]), skip[i]) == 0)
            return 0;
    dcm_file *f = NULL;
    if (dcm_read_path(path, NULL, &f, NULL) != RS_OK) {
        corpus_skipped++; /* not DICOM at all (no_meta.dcm is a bare dataset without a guessable start) */
        return 0;
    }
    dcm_file_free(f);
    corpus_files++;
    round_trip(path + strlen(PYDICOM_DATA) + 1);
    return 0;
}

static void test_round_trips(void)
{
    static const char *const files[] = {
        "test_files/CT_small.dcm", "test_files/MR_small.dcm", "test_files/rtplan.dcm",
        "test_files/rtdose.dcm", "test_files/test-SR.dcm", "test_files/nested_priv_SQ.dcm",
        "test_files/reportsi.dcm", "charset_files/chrH31.dcm", "charset_files/chrSQEncoding.dcm",
        "charset_files/chrX1.dcm", "charset_files/chrJapMulti.dcm",
        /* and: encapsulated pixel data, big endian, UN sequences, waveforms, more character sets */
        "test_files/JPEG2000.dcm", "test_files/SC_rgb_rle_2frame.dcm", "test_files/MR_small_bigendian.dcm",
        "test_files/UN_sequence.dcm", "test_files/waveform_ecg.dcm", "test_files/rtstruct.dcm",
        "test_files/reportsi_with_empty_number_tags.dcm", "charset_files/chrSQEncoding1.dcm",
        "charset_files/chrKoreanMulti.dcm", "charset_files/chrFrenMulti.dcm", "charset_files/chrI2.dcm",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        round_trip(files[i]);
    /* and every other file of the corpus that radshare reads */
    nftw(PYDICOM_DATA "/test_files", corpus_visit, 16, FTW_PHYS);
    nftw(PYDICOM_DATA "/charset_files", corpus_visit, 16, FTW_PHYS);
    printf("# whole corpus: %d files round-tripped, %d not readable as DICOM\n", corpus_files, corpus_skipped);
    CHECK(corpus_files >= 150);
}

int main(void)
{
    const char *v = getenv("JSON_TEST_VERBOSE");
    verbose = v && *v && *v != '0';
    test_strings();
    test_numbers_as_strings();
    test_pn();
    test_binary_numbers();
    test_sequences();
    test_depth();
    test_text_encoding();
    test_binary();
    test_pixel_data_and_meta();
    test_write_read_write();
    test_errors();
    test_prefixes();
    test_round_trips();
    fflush(stdout);
    return t_done();
}
