/*
 * charset.c - Specific Character Set (0008,0005) handling: raw text values to UTF-8.
 *
 * The parser keeps text values (SH LO ST LT UC UT PN) as the bytes found in the file; whoever
 * needs text (JSON, dumps, the index) calls dcm_charset_parse once per dataset on the raw
 * (0008,0005) value and dcm_charset_decode per element.  Everything here is reentrant: no
 * global mutable state, iconv handles live only for the duration of one decode call.
 *
 * Reference behaviour is pydicom 2.3.1 (the toolkit users are most likely to compare our text
 * with); tests/data/charset_vectors.tsv, generated from pydicom's sample files by
 * tools/gen_charset_vectors.py, pins that down.  Where pydicom is plainly wrong we follow the
 * standard instead (see "Deliberate differences" below).
 *
 * Model (PS3.5 6.1.2.5, PS3.3 C.12.1.1.2).  Decoding is an ISO 2022 state machine with two
 * graphic sets: G0 for bytes 0x21-0x7E and G1 for bytes 0xA0-0xFF.  The first term of the
 * value selects the initial sets; escape sequences designate new ones; the state returns to
 * the initial sets at the delimiters (CR LF FF TAB and '\' for every VR, also '^' and '=' for
 * PN) because a conforming writer must switch back before them (PS3.5 6.1.2.5.3).  Runs of a
 * non-trivial set are gathered and converted with glibc iconv:
 *   - the ISO 8859 parts go to ISO-8859-n as they are;
 *   - JIS X 0208 / 0212 in G0 are 7-bit pairs; with the high bits set (and 0x8F in front
 *     for 0212) they are EUC-JP, which iconv knows;
 *   - KS X 1001 and GB2312 in G1 are EUC-KR and EUC-CN pairs already;
 *   - latin1, JIS X 0201 katakana and TIS-620 are plain arithmetic, no iconv needed.
 * The stand-alone sets (ISO_IR 192 = UTF-8, GB18030, GBK) have no code extensions: UTF-8 is
 * only validated, GB18030/GBK go through iconv in pieces cut only at '\' and '=' (below).
 *
 * Compatibility choices taken from pydicom (so that our text matches what it shows):
 *   - the default repertoire (no/empty value, ISO_IR 6, ISO 2022 IR 6, unknown terms) decodes
 *     bytes 0x80-0xFF as latin1 instead of rejecting them: pydicom's default codec is latin1,
 *     and files without (0008,0005) that contain latin1 names are common;
 *   - ISO_IR 13 high bytes that form a Shift-JIS double-byte character are decoded as such
 *     (pydicom decodes ISO_IR 13 with the shift_jis codec; Japanese devices really do write
 *     Shift-JIS under ISO_IR 13), and JIS X 0201 romaji decodes like ASCII (0x5C stays '\'
 *     since it is the value delimiter);
 *   - for GB18030/GBK the value is cut at '\' (multi-valued VRs) and '=' (PN) before decoding,
 *     as pydicom does; 0x5C can be a GBK trail byte but the standard delimiter wins;
 *   - misspelt terms ("ISO IR 100", "ISO-IR 100", "ISO_2022_IR_87") are accepted with a
 *     warning, stand-alone sets (ISO_IR 192, GB18030, GBK) ignore further terms.
 * Deliberate differences from pydicom:
 *   - JIS X 0208/0212 pairs are taken two bytes at a time even if a byte is '\', '=' or '^'
 *     (pydicom splits PN on '=' and multi-valued text on '\' before decoding, breaking e.g.
 *     "so" = 0x24 0x3D); delimiters only reset the state where they are characters;
 *   - ESC ( B switches only G0 back to ASCII (pydicom decodes the rest of that fragment as
 *     latin1, ignoring G1);
 *   - an escape sequence for a set that is not listed in (0008,0005) is still honoured, and
 *     an unknown escape sequence becomes one U+FFFD (pydicom copies the ESC into the text);
 *   - undecodable bytes cost one U+FFFD per character where they are; pydicom re-decodes the
 *     whole escape fragment with the first set and replacement characters instead;
 *   - CR LF FF TAB reset the state in PN too (pydicom resets PN only at '^'; PN may not
 *     contain control characters anyway);
 *   - ISO 2022 IR 58 output does not contain the escape sequence (pydicom 2.3.1 leaves it);
 *   - ISO_IR 203 / ISO 2022 IR 203 (latin9) are supported (pydicom 2.3.1 does not know them).
 * Bytes that cannot be decoded become U+FFFD and *lossy is set; text is never dropped.
 */
#include "charset.h"

#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vr.h"

/* Internal set codes, stored in dcm_charset.term[]. */
enum {
    CS_NONE = 0,   /* nothing designated (only as G1): GR bytes are undecodable */
    CS_ASCII,      /* ISO-IR 6; as a G1 stand-in it means "latin1", see the top comment */
    CS_LATIN1,     /* ISO-IR 100, ISO 8859-1 */
    CS_LATIN2,     /* ISO-IR 101 */
    CS_LATIN3,     /* ISO-IR 109 */
    CS_LATIN4,     /* ISO-IR 110 */
    CS_CYRILLIC,   /* ISO-IR 144, ISO 8859-5 */
    CS_ARABIC,     /* ISO-IR 127, ISO 8859-6 */
    CS_GREEK,      /* ISO-IR 126, ISO 8859-7 */
    CS_HEBREW,     /* ISO-IR 138, ISO 8859-8 */
    CS_LATIN5,     /* ISO-IR 148, ISO 8859-9 */
    CS_LATIN9,     /* ISO-IR 203, ISO 8859-15 */
    CS_THAI,       /* ISO-IR 166, TIS-620 */
    CS_JIS_X0201,  /* ISO-IR 13 katakana in G1 (ISO-IR 14 romaji in G0 decodes as ASCII) */
    CS_JIS_X0208,  /* ISO-IR 87, G0, 94x94 */
    CS_JIS_X0212,  /* ISO-IR 159, G0, 94x94 */
    CS_KS_X1001,   /* ISO-IR 149, G1, 94x94 */
    CS_GB2312,     /* ISO-IR 58, G1, 94x94 */
    CS_UTF8,       /* ISO_IR 192, stand-alone */
    CS_GB18030,    /* stand-alone */
    CS_GBK,        /* stand-alone */
    CS_SJIS,       /* not a term: Shift-JIS pairs met under ISO-IR 13, see the top comment */
    CS_COUNT
};

/* How each set is decoded.  iconv: the glibc converter for the bytes we hand it (for the
 * G0 94x94 sets that is the EUC form we build), NULL when done by arithmetic. */
static const struct set_info {
    const char *iconv;
    uint8_t unit;        /* bytes per non-ASCII character handed to iconv */
    uint8_t ascii_ok;    /* ASCII bytes may be mixed into the same iconv run */
} set_info[CS_COUNT] = {
    [CS_LATIN2] = {"ISO-8859-2", 1, 1},   [CS_LATIN3] = {"ISO-8859-3", 1, 1},
    [CS_LATIN4] = {"ISO-8859-4", 1, 1},   [CS_CYRILLIC] = {"ISO-8859-5", 1, 1},
    [CS_ARABIC] = {"ISO-8859-6", 1, 1},   [CS_GREEK] = {"ISO-8859-7", 1, 1},
    [CS_HEBREW] = {"ISO-8859-8", 1, 1},   [CS_LATIN5] = {"ISO-8859-9", 1, 1},
    [CS_LATIN9] = {"ISO-8859-15", 1, 1},  [CS_JIS_X0208] = {"EUC-JP", 2, 1},
    [CS_JIS_X0212] = {"EUC-JP", 3, 1},    [CS_KS_X1001] = {"EUC-KR", 2, 1},
    [CS_GB2312] = {"EUC-CN", 2, 1},       [CS_GB18030] = {"GB18030", 1, 1},
    [CS_GBK] = {"GBK", 1, 1},
    /* Shift-JIS maps 0x5C/0x7E to yen/overline in glibc: keep ASCII out of those runs */
    [CS_SJIS] = {"SHIFT_JIS", 2, 0},
};

/* The defined terms (PS3.3 table C.12-2..C.12-5) and the aliases pydicom accepts silently. */
static const struct term_info {
    const char *name;
    uint8_t set;
    uint8_t iso2022;
} terms[] = {
    {"ISO_IR 6", CS_ASCII, 0},          {"ISO_IR 100", CS_LATIN1, 0},
    {"ISO_IR 101", CS_LATIN2, 0},       {"ISO_IR 109", CS_LATIN3, 0},
    {"ISO_IR 110", CS_LATIN4, 0},       {"ISO_IR 144", CS_CYRILLIC, 0},
    {"ISO_IR 127", CS_ARABIC, 0},       {"ISO_IR 126", CS_GREEK, 0},
    {"ISO_IR 138", CS_HEBREW, 0},       {"ISO_IR 148", CS_LATIN5, 0},
    {"ISO_IR 203", CS_LATIN9, 0},       {"ISO_IR 13", CS_JIS_X0201, 0},
    {"ISO_IR 166", CS_THAI, 0},         {"ISO_IR 192", CS_UTF8, 0},
    {"GB18030", CS_GB18030, 0},         {"GBK", CS_GBK, 0},
    {"ISO 2022 IR 6", CS_ASCII, 1},     {"ISO 2022 IR 100", CS_LATIN1, 1},
    {"ISO 2022 IR 101", CS_LATIN2, 1},  {"ISO 2022 IR 109", CS_LATIN3, 1},
    {"ISO 2022 IR 110", CS_LATIN4, 1},  {"ISO 2022 IR 144", CS_CYRILLIC, 1},
    {"ISO 2022 IR 127", CS_ARABIC, 1},  {"ISO 2022 IR 126", CS_GREEK, 1},
    {"ISO 2022 IR 138", CS_HEBREW, 1},  {"ISO 2022 IR 148", CS_LATIN5, 1},
    {"ISO 2022 IR 203", CS_LATIN9, 1},  {"ISO 2022 IR 13", CS_JIS_X0201, 1},
    {"ISO 2022 IR 166", CS_THAI, 1},    {"ISO 2022 IR 87", CS_JIS_X0208, 1},
    {"ISO 2022 IR 159", CS_JIS_X0212, 1}, {"ISO 2022 IR 149", CS_KS_X1001, 1},
    {"ISO 2022 IR 58", CS_GB2312, 1},
    /* spellings from DICOM CP 1234 that pydicom also maps */
    {"ISO 2022 GBK", CS_GBK, 0},        {"ISO 2022 58", CS_GB2312, 1},
};

/* Escape sequences (the bytes after ESC) and what they designate (PS3.3 C.12-3, C.12-4). */
static const struct esc_info {
    const char *seq;
    uint8_t g;    /* 0: G0, 1: G1 */
    uint8_t set;
} escapes[] = {
    {"(B", 0, CS_ASCII},      {"(J", 0, CS_ASCII} /* ISO-IR 14 romaji, decoded as ASCII */,
    {"$B", 0, CS_JIS_X0208},  {"$(D", 0, CS_JIS_X0212},
    {"-A", 1, CS_LATIN1},     {"-B", 1, CS_LATIN2},    {"-C", 1, CS_LATIN3},
    {"-D", 1, CS_LATIN4},     {"-L", 1, CS_CYRILLIC},  {"-G", 1, CS_ARABIC},
    {"-F", 1, CS_GREEK},      {"-H", 1, CS_HEBREW},    {"-M", 1, CS_LATIN5},
    {"-b", 1, CS_LATIN9},     {"-T", 1, CS_THAI},      {")I", 1, CS_JIS_X0201},
    {"$)C", 1, CS_KS_X1001},  {"$)A", 1, CS_GB2312},
};

static int is_standalone(uint8_t set)
{
    return set == CS_UTF8 || set == CS_GB18030 || set == CS_GBK;
}

void dcm_charset_default(dcm_charset *cs)
{
    memset(cs, 0, sizeof *cs);
}

/* ---- parsing ------------------------------------------------------------------------ */

static const struct term_info *find_term(const char *s)
{
    for (size_t i = 0; i < sizeof terms / sizeof terms[0]; i++)
        if (strcmp(terms[i].name, s) == 0)
            return &terms[i];
    return NULL;
}

static int is_sep(char c)
{
    return c == ' ' || c == '_' || c == '-';
}

static int ieq(const char *s, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c != lit[i])
            return 0;
    }
    return 1;
}

/*
 * Common misspellings seen in the wild (and patched by pydicom): "ISO IR 100", "ISO-IR 100",
 * "iso_ir 100", "ISO_2022_IR_87".  Rewrites s into canonical form in out; 0 if it does not
 * look like one of those.
 */
static int normalize_term(const char *s, char *out, size_t outsz)
{
    size_t i = 0, len = strlen(s);
    int iso2022 = 0;
    if (len < 5 || !ieq(s, "ISO", 3))
        return 0;
    i = 3;
    if (i < len && is_sep(s[i]))
        i++;
    if (len - i >= 4 && memcmp(s + i, "2022", 4) == 0) {
        iso2022 = 1;
        i += 4;
        if (i < len && is_sep(s[i]))
            i++;
    }
    if (len - i < 2 || !ieq(s + i, "IR", 2))
        return 0;
    i += 2;
    if (i < len && is_sep(s[i]))
        i++;
    size_t d = i;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == d || i != len || i - d > 3)
        return 0;
    snprintf(out, outsz, "%s%s", iso2022 ? "ISO 2022 IR " : "ISO_IR ", s + d);
    return 1;
}

/* Warnings of one parse call, gathered into one message (rs_err holds one). */
typedef struct warnlog {
    char msg[400];
    size_t len;
    int code;
} warnlog;

__attribute__((format(printf, 3, 4))) static void warn_add(warnlog *w, int code,
                                                            const char *fmt, ...)
{
    if (!w->code || code == RS_EUNSUPPORTED)
        w->code = code;  /* an unknown term is the more important news */
    if (w->len + 3 >= sizeof w->msg)
        return;
    if (w->len) {
        memcpy(w->msg + w->len, "; ", 2);
        w->len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(w->msg + w->len, sizeof w->msg - w->len, fmt, ap);
    va_end(ap);
    if (k > 0)
        w->len += (size_t)k < sizeof w->msg - w->len ? (size_t)k : sizeof w->msg - w->len - 1;
}

int dcm_charset_parse(const char *value, size_t n, dcm_charset *cs, rs_err *warn)
{
    warnlog w = {.len = 0, .code = 0};
    w.msg[0] = 0;
    dcm_charset_default(cs);
    if (!value)
        n = 0;

    uint8_t nterms = 0, dropped = 0, any_text = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && value[i] != '\\')
            continue;
        /* one term: value[start, i); leading/trailing blanks (and NUL padding) are not
         * significant in a CS value */
        size_t a = start, b = i;
        start = i + 1;
        while (a < b && (value[a] == ' ' || value[a] == '\0'))
            a++;
        while (b > a && (value[b - 1] == ' ' || value[b - 1] == '\0'))
            b--;
        if (nterms == DCM_CHARSET_MAX_TERMS) {
            dropped++;
            continue;
        }
        char term[40];
        size_t tl = b - a;
        uint8_t set = CS_ASCII, ext = 0;
        if (tl)
            any_text = 1;
        if (tl == 0) {
            /* an empty first term means ISO-IR 6 (PS3.3 C.12.1.1.2); elsewhere it is noise */
        } else if (tl >= sizeof term) {
            warn_add(&w, RS_EUNSUPPORTED, "unknown Specific Character Set term '%.*s...'", 32,
                     value + a);
        } else {
            memcpy(term, value + a, tl);
            term[tl] = 0;
            const struct term_info *t = find_term(term);
            char fixed[48];
            if (!t && normalize_term(term, fixed, sizeof fixed) && (t = find_term(fixed)))
                warn_add(&w, RS_EFORMAT,
                         "incorrect Specific Character Set '%s', assuming '%s'", term, t->name);
            if (t) {
                set = t->set;
                ext = t->iso2022;
            } else {
                warn_add(&w, RS_EUNSUPPORTED,
                         "unknown Specific Character Set term '%s', using the default repertoire",
                         term);
            }
        }
        cs->term[nterms++] = set;
        cs->iso2022 |= ext;
    }
    if (dropped)
        warn_add(&w, RS_ELIMIT, "Specific Character Set: %u terms beyond %d ignored",
                 (unsigned)dropped, DCM_CHARSET_MAX_TERMS);
    cs->n = any_text ? nterms : 0;

    /* UTF-8, GB18030 and GBK cannot be combined with code extensions (PS3.3 table C.12-5):
     * first place wins alone, elsewhere they are dropped (as pydicom does). */
    if (cs->n > 1 && is_standalone(cs->term[0])) {
        warn_add(&w, RS_EFORMAT,
                 "Specific Character Set: a stand-alone set allows no code extensions, "
                 "ignoring %u further term(s)", (unsigned)(cs->n - 1));
        cs->n = 1;
        cs->iso2022 = 0;
    } else if (cs->n > 1) {
        uint8_t k = 1;
        for (uint8_t j = 1; j < cs->n; j++) {
            if (is_standalone(cs->term[j])) {
                warn_add(&w, RS_EFORMAT,
                         "Specific Character Set: a stand-alone set cannot be a code extension, "
                         "ignoring term %u", (unsigned)j + 1);
                continue;
            }
            cs->term[k++] = cs->term[j];
        }
        cs->n = k;
    }
    if (cs->n > 1)
        cs->iso2022 = 1;  /* several terms only make sense with code extensions */
    for (uint8_t j = cs->n; j < DCM_CHARSET_MAX_TERMS; j++)
        cs->term[j] = 0;

    if (w.code)
        rs_err_set(warn, w.code, "%s", w.msg);
    return RS_OK;
}

/* ---- decoding ------------------------------------------------------------------------- */

#define PEND_MAX 256

typedef struct dec {
    rs_buf *out;
    int rc;         /* first RS_ENOMEM, sticky */
    int lossy;
    iconv_t cd[CS_COUNT];  /* opened lazily, closed at the end of the call */
    uint8_t tried[CS_COUNT];
    /* a run of bytes for one iconv set, gathered so iconv is called per run, not per char */
    uint8_t pend_set;
    size_t pend_len;
    uint8_t pend[PEND_MAX];
} dec;

static void put(dec *d, const void *p, size_t n)
{
    if (!d->rc && n)
        d->rc = rs_buf_append(d->out, p, n);
}

static void put_cp(dec *d, uint32_t cp)
{
    uint8_t u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t)(0xC0 | (cp >> 6));
        u[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else {
        /* everything we produce by arithmetic is in the BMP */
        u[0] = (uint8_t)(0xE0 | (cp >> 12));
        u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    }
    put(d, u, n);
}

static void put_bad(dec *d)
{
    d->lossy = 1;
    put_cp(d, 0xFFFD);
}

static iconv_t get_cd(dec *d, uint8_t set)
{
    if (!d->tried[set]) {
        d->tried[set] = 1;
        d->cd[set] = iconv_open("UTF-8", set_info[set].iconv);
    }
    return d->cd[set];
}

/*
 * Convert p[0, n) from set to UTF-8.  p holds ASCII bytes and whole characters of the set
 * (the callers only gather complete units), so when iconv refuses a byte >= 0x80 it is the
 * start of an unmappable character of set_info[set].unit bytes: that becomes one U+FFFD.
 */
static void convert(dec *d, uint8_t set, const uint8_t *p, size_t n, size_t unit)
{
    iconv_t cd = get_cd(d, set);
    if (cd == (iconv_t)-1) {
        /* the converter is not installed (e.g. missing gconv modules): keep what we can */
        for (size_t i = 0; i < n;) {
            if (p[i] < 0x80) {
                put(d, p + i, 1);
                i++;
            } else {
                put_bad(d);
                i += unit < n - i ? unit : n - i;
            }
        }
        return;
    }
    iconv(cd, NULL, NULL, NULL, NULL);
    char *ip = (char *)(uintptr_t)p;
    size_t il = n;
    while (il > 0 && !d->rc) {
        d->rc = rs_buf_reserve(d->out, il * 4 + 8);
        if (d->rc)
            return;
        char *op = (char *)d->out->p + d->out->len;
        size_t room = d->out->cap - d->out->len - 1, ol = room;
        size_t r = iconv(cd, &ip, &il, &op, &ol);
        int e = errno;
        d->out->len += room - ol;
        d->out->p[d->out->len] = 0;
        if (r != (size_t)-1)
            break;
        if (e == E2BIG)
            continue;
        /* EILSEQ (unmappable / invalid) or EINVAL (incomplete at the end) */
        size_t skip = ((uint8_t)*ip < 0x80) ? 1 : unit;
        if (skip > il || e == EINVAL)
            skip = il;
        put_bad(d);
        ip += skip;
        il -= skip;
        iconv(cd, NULL, NULL, NULL, NULL);
    }
}

static void flush(dec *d)
{
    if (d->pend_len)
        convert(d, d->pend_set, d->pend, d->pend_len, set_info[d->pend_set].unit);
    d->pend_len = 0;
}

/* Queue one character (or ASCII byte) of set for conversion. */
static void pend(dec *d, uint8_t set, const uint8_t *p, size_t n)
{
    if (d->pend_len && (d->pend_set != set || d->pend_len + n > PEND_MAX))
        flush(d);
    d->pend_set = set;
    memcpy(d->pend + d->pend_len, p, n);
    d->pend_len += n;
}

/* An ASCII byte: joins the pending run when that is harmless, saving a flush. */
static void put_ascii(dec *d, uint8_t b)
{
    if (d->pend_len && set_info[d->pend_set].ascii_ok && d->pend_len < PEND_MAX) {
        d->pend[d->pend_len++] = b;
        return;
    }
    flush(d);
    put(d, &b, 1);
}

/* ISO_IR 192: copy valid UTF-8, replace each maximal invalid subpart by U+FFFD (the
 * Unicode-recommended practice, which is also what Python's decoder does). */
static void decode_utf8(dec *d, const uint8_t *in, size_t n)
{
    size_t run = 0, i = 0;
    while (i < n) {
        uint8_t b = in[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            if (b == 0xE0)
                lo = 0xA0;
            else if (b == 0xED)
                hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            if (b == 0xF0)
                lo = 0x90;
            else if (b == 0xF4)
                hi = 0x8F;
        } else {
            need = 0;
        }
        size_t k = 0;
        if (need) {
            /* second byte has the tighter range, the others are plain continuations */
            if (i + 1 < n && in[i + 1] >= lo && in[i + 1] <= hi) {
                k = 1;
                while (k < need && i + 1 + k < n && (in[i + 1 + k] & 0xC0) == 0x80)
                    k++;
            }
        }
        if (need && k == need) {
            i += need + 1;
            continue;
        }
        put(d, in + run, i - run);
        put_bad(d);
        i += 1 + k;
        run = i;
    }
    put(d, in + run, n - run);
}

/* GB18030 / GBK: iconv over pieces cut at the hard delimiters (see the top comment). */
static void decode_gb(dec *d, uint8_t set, const uint8_t *in, size_t n, int multi, int pn)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && !((multi && in[i] == '\\') || (pn && in[i] == '=')))
            continue;
        int ascii = 1;
        for (size_t j = start; j < i && ascii; j++)
            ascii = in[j] < 0x80;
        if (ascii)
            put(d, in + start, i - start);
        else
            convert(d, set, in + start, i - start, 1);
        if (i < n)
            put(d, in + i, 1);
        start = i + 1;
    }
}

/* G1 at the start of a value (and after each delimiter) for a first term. */
static uint8_t initial_g1(uint8_t first)
{
    switch (first) {
    case CS_ASCII: return CS_LATIN1;  /* pydicom compatibility, see the top comment */
    case CS_JIS_X0208:
    case CS_JIS_X0212: return CS_NONE;  /* a G0 set: nothing in G1 */
    default: return first;
    }
}

static int sjis_lead(uint8_t b)
{
    return (b >= 0x81 && b <= 0x9F) || (b >= 0xE0 && b <= 0xFC);
}

static int sjis_trail(uint8_t b)
{
    return (b >= 0x40 && b <= 0x7E) || (b >= 0x80 && b <= 0xFC);
}

/* Length of the escape sequence at in[0] == ESC (ESC, intermediates 0x20-0x2F, final
 * 0x30-0x7E), 0 if it is malformed or cut off. */
static size_t esc_len(const uint8_t *in, size_t n)
{
    size_t j = 1;
    while (j < n && in[j] >= 0x20 && in[j] <= 0x2F)
        j++;
    if (j == 1 || j >= n || in[j] < 0x30 || in[j] > 0x7E)
        return 0;
    return j + 1;
}

static void decode_2022(dec *d, uint8_t first, const uint8_t *in, size_t n, int multi, int pn)
{
    const uint8_t g1_init = initial_g1(first);
    uint8_t g0 = CS_ASCII, g1 = g1_init;

    size_t i = 0;
    while (i < n && !d->rc) {
        uint8_t b = in[i];
        if (b == 0x1B) {
            flush(d);
            size_t len = esc_len(in + i, n - i);
            if (!len) {
                put_bad(d);
                i++;
                continue;
            }
            const struct esc_info *e = NULL;
            for (size_t k = 0; k < sizeof escapes / sizeof escapes[0]; k++) {
                if (strlen(escapes[k].seq) == len - 1 &&
                    memcmp(escapes[k].seq, in + i + 1, len - 1) == 0) {
                    e = &escapes[k];
                    break;
                }
            }
            if (!e)
                put_bad(d);
            else if (e->g == 0)
                g0 = e->set;
            else
                g1 = e->set;
            i += len;
            continue;
        }
        if (b < 0x80) {
            if ((g0 == CS_JIS_X0208 || g0 == CS_JIS_X0212) && b >= 0x21 && b <= 0x7E) {
                /* a 94x94 set in G0: pairs of 7-bit bytes, delimiter bytes included (the
                 * writer switches back to ASCII before real delimiters) */
                if (i + 1 < n && in[i + 1] >= 0x21 && in[i + 1] <= 0x7E) {
                    uint8_t u[3];
                    size_t k = 0;
                    if (g0 == CS_JIS_X0212)
                        u[k++] = 0x8F;  /* EUC-JP SS3: JIS X 0212 follows */
                    u[k++] = (uint8_t)(b | 0x80);
                    u[k++] = (uint8_t)(in[i + 1] | 0x80);
                    pend(d, g0, u, k);
                    i += 2;
                } else {
                    flush(d);
                    put_bad(d);
                    i++;
                }
                continue;
            }
            int delim = b == '\r' || b == '\n' || b == '\f' || b == '\t' || b == '\\' ||
                        (pn && (b == '^' || b == '='));
            put_ascii(d, b);
            if (delim) {
                g0 = CS_ASCII;
                g1 = g1_init;
            }
            i++;
            continue;
        }

        /* GR byte: whatever G1 holds */
        switch (g1) {
        case CS_NONE:
            flush(d);
            put_bad(d);
            i++;
            break;
        case CS_ASCII:
        case CS_LATIN1:
            flush(d);
            put_cp(d, b);
            i++;
            break;
        case CS_THAI:
            /* TIS-620 is ISO 8859-11 without NBSP; C1 passes as in Python's codec */
            flush(d);
            if (b < 0xA0)
                put_cp(d, b);
            else if ((b >= 0xA1 && b <= 0xDA) || (b >= 0xDF && b <= 0xFB))
                put_cp(d, 0x0E00u + (b - 0xA0u));
            else
                put_bad(d);
            i++;
            break;
        case CS_JIS_X0201:
            if (b >= 0xA1 && b <= 0xDF) {
                flush(d);
                put_cp(d, 0xFF61u + (b - 0xA1u));  /* half-width katakana */
                i++;
            } else if (sjis_lead(b) && i + 1 < n && sjis_trail(in[i + 1]) &&
                       !(multi && in[i + 1] == '\\')) {
                pend(d, CS_SJIS, in + i, 2);
                i += 2;
            } else {
                flush(d);
                put_bad(d);
                i++;
            }
            break;
        case CS_KS_X1001:
        case CS_GB2312:
            if (b >= 0xA1 && b <= 0xFE && i + 1 < n && in[i + 1] >= 0xA1 && in[i + 1] <= 0xFE) {
                pend(d, g1, in + i, 2);
                i += 2;
            } else {
                flush(d);
                put_bad(d);
                i++;
            }
            break;
        default:
            if (g1 < CS_COUNT && set_info[g1].iconv && set_info[g1].unit == 1) {
                pend(d, g1, in + i, 1);  /* an ISO 8859 part */
            } else {
                flush(d);
                put_bad(d);
            }
            i++;
            break;
        }
    }
    flush(d);
}

int dcm_charset_decode(const dcm_charset *cs, uint16_t vr, const uint8_t *in, size_t n,
                       rs_buf *out, int *lossy)
{
    if (lossy)
        *lossy = 0;
    if (!out || (!in && n))
        return RS_EINVAL;

    dcm_charset def;
    const dcm_vr_info *vi = dcm_vr_info_get(vr);
    if (!cs || (vi && !vi->charset)) {
        /* no (0008,0005), or a VR it does not apply to (CS, AE, ...): default repertoire */
        dcm_charset_default(&def);
        cs = &def;
    }
    /* '\' separates values in SH LO PN UC (and the other string VRs), not in ST LT UT */
    int multi = vi && vi->kind == DCM_VK_STRING;
    int pn = vr == DCM_VR_PN;

    /* Fast path, most values: pure ASCII without escapes reads the same in every set. */
    size_t k = 0;
    while (k < n && in[k] < 0x80 && in[k] != 0x1B)
        k++;
    if (k == n) {
        int rc = rs_buf_append(out, in ? (const void *)in : "", n);
        return rc;
    }

    dec d;
    d.out = out;
    d.rc = RS_OK;
    d.lossy = 0;
    d.pend_set = CS_NONE;
    d.pend_len = 0;
    for (int s = 0; s < CS_COUNT; s++) {
        d.cd[s] = (iconv_t)-1;
        d.tried[s] = 0;
    }

    uint8_t first = cs->n ? cs->term[0] : CS_ASCII;
    if (first >= CS_SJIS || first == CS_NONE)
        first = CS_ASCII;  /* not a term code: a struct not made by dcm_charset_parse */
    if (first == CS_UTF8)
        decode_utf8(&d, in, n);
    else if (first == CS_GB18030 || first == CS_GBK)
        decode_gb(&d, first, in, n, multi, pn);
    else
        decode_2022(&d, first, in, n, multi, pn);

    for (int s = 0; s < CS_COUNT; s++)
        if (d.cd[s] != (iconv_t)-1)
            iconv_close(d.cd[s]);
    if (lossy)
        *lossy = d.lossy;
    return d.rc;
}
