/*
 * json_read.c - DICOM JSON (PS3.18 F.2) -> dataset. The reverse of json_write.c.
 *
 * Two steps. A strict RFC 8259 parser builds a small tree of the whole text in a scratch arena
 * (member order in JSON is free, so "vr" may come after "Value"); strings without escapes point
 * into the input, others are decoded (\uXXXX surrogate pairs -> UTF-8); raw text must be valid
 * UTF-8. Then the tree becomes the dataset, elements inserted in tag order.
 *
 * Limits: JSON nesting is bounded (enough for 64 nested sequences, the Part 10 reader's limit),
 * so neither step can exhaust the stack; memory is linear in the input (the caller bounds that).
 *
 * Choices that mirror json_write.c (so that write -> read -> write is a fixed point):
 *  - text of the VRs affected by Specific Character Set (SH LO ST LT UC UT PN) is stored as UTF-8
 *    and, when any of it is not ASCII, (0008,0005) becomes "ISO_IR 192" at the top level and in
 *    every item that had its own (the text is all UTF-8 now); the other string VRs (AE AS CS DA
 *    DS DT IS TM UI UR) are stored as ISO 8859-1 because the writer reads them as such - a
 *    character above U+00FF there is refused;
 *  - DS/IS given as JSON numbers keep the number's text when it is a valid DICOM value (so
 *    1.50 stays "1.50"); a DS longer than 16 characters is re-formatted (shortest text that
 *    reads back as the same double, else the most precise one that fits); an IS written as
 *    2.0 or 1e2 becomes "2" / "100"; an IS that is no 32-bit integer (1.5, 1e12) is kept as
 *    written with a warning in dcm_file.warnings, like the Part 10 reader keeps such strings;
 *  - FL/FD null (the writer's NaN/infinity) becomes a NaN;
 *  - InlineBinary of Pixel Data that is a sequence of items (FFFE,E000) - how the writer inlines
 *    encapsulated pixel data - becomes encapsulated fragments again, unless a Transfer Syntax
 *    UID in the JSON says the pixel data is native;
 *  - BulkDataURI leaves an empty value (the reference is not resolved here).
 * Top-level group 0002 elements (STOW-RS metadata may carry a Transfer Syntax UID) go to the
 * file meta and set the file's transfer syntax when it is known.
 * Refused: unknown VRs and members, duplicate tags or members, more than one of Value /
 * InlineBinary / BulkDataURI, values of the wrong JSON type for the VR, integers out of range,
 * non-canonical base64, backslashes inside a value of a multi-valued VR ('=' inside a PN group),
 * several values for a single-valued text VR (LT ST UT UR), null items, keys of group FFFE, group
 * 0002 inside items, a Specific Character Set that is not text (consumers read it as text).
 */
#include "json.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_SQ_DEPTH 64
/*
 * A dataset at sequence depth d is at JSON depth 3d+1, its elements, Value arrays and PN objects
 * below. The parser allows one level more than the datasets may use so that too deep a sequence
 * is reported as such; anything deeper is refused while parsing.
 */
#define JSON_MAX_DEPTH (3 * (JSON_MAX_SQ_DEPTH + 1) + 4)
#define JSON_MAX_MEMORY ((size_t)2 * 1024 * 1024 * 1024)
#define JSON_MAX_ITEMS 10000000u

/* ---- the JSON tree ------------------------------------------------------------------------ */

enum { JV_NULL, JV_FALSE, JV_TRUE, JV_NUM, JV_STR, JV_ARR, JV_OBJ };

typedef struct jv jv;
typedef struct jm jm;

struct jv {
    uint8_t type;
    uint8_t nonascii; /* JV_STR: some byte >= 0x80 */
    uint8_t escaped;  /* JV_STR: had escapes, so s is a decoded copy (else it points into the input) */
    size_t n;         /* bytes of a string or number, elements of an array or object */
    size_t off;       /* offset of the value's first byte in the input */
    union {
        const char *s; /* JV_STR, JV_NUM (the number's text) */
        jv *a;         /* JV_ARR */
        jm *o;         /* JV_OBJ */
    } u;
};

struct jm {
    const char *key;
    size_t klen;
    size_t koff;
    jv v;
};

typedef struct jp {
    const uint8_t *s;
    size_t n, pos;
    rs_arena *a;
    rs_err *err;
    jm *stk; /* children of the open containers */
    size_t sn, scap;
    unsigned depth;
} jp;

static int jerr(jp *p, int code, size_t off, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int jerr(jp *p, int code, size_t off, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rs_err_at(p->err, code, off, "invalid JSON: %s", msg);
}

static int jtrunc(jp *p, const char *what)
{
    return rs_err_at(p->err, RS_ETRUNC, p->n, "JSON ends early: %s", what);
}

static int jnomem(jp *p)
{
    return rs_err_at(p->err, RS_ENOMEM, p->pos, "out of memory parsing JSON");
}

/* A printable description of the byte at off, for messages. */
static const char *byte_desc(const jp *p, size_t off, char buf[16])
{
    uint8_t c = p->s[off];
    if (c > 0x20 && c < 0x7f)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02X", c);
    return buf;
}

static void skip_ws(jp *p)
{
    while (p->pos < p->n) {
        uint8_t c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int push(jp *p, const jm *m)
{
    if (p->sn == p->scap) {
        size_t cap = p->scap ? p->scap * 2 : 64;
        jm *ns = realloc(p->stk, cap * sizeof *ns);
        if (!ns)
            return jnomem(p);
        p->stk = ns;
        p->scap = cap;
    }
    p->stk[p->sn++] = *m;
    return RS_OK;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at s[at]; -1 if they are not. */
static long hex4(const jp *p, size_t at)
{
    if (at + 4 > p->n)
        return -2;
    long v = 0;
    for (size_t i = 0; i < 4; i++) {
        int h = hexval(p->s[at + i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

static size_t put_utf8(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at s[i] (lead byte >= 0x80), 0 if invalid (RFC 3629). */
static size_t utf8_len(const uint8_t *s, size_t i, size_t end)
{
    uint8_t c = s[i];
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlongs */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else
        return 0;
    if (i + n > end)
        return 0;
    if (s[i + 1] < lo || s[i + 1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if (s[i + k] < 0x80 || s[i + k] > 0xBF)
            return 0;
    return n;
}

/* The string starting at the '"' at p->pos. */
static int parse_string(jp *p, jv *out)
{
    size_t start = ++p->pos, i = start;
    int esc = 0;
    /* find the closing quote: escapes are two bytes at least, UTF-8 continuations never '"' or '\\' */
    for (;;) {
        if (i >= p->n)
            return jtrunc(p, "unterminated string");
        uint8_t c = p->s[i];
        if (c == '"')
            break;
        if (c < 0x20)
            return jerr(p, RS_EFORMAT, i, "control character 0x%02X inside a string (must be escaped)", c);
        if (c == '\\') {
            esc = 1;
            i++;
        }
        i++;
    }
    size_t end = i;
    uint8_t *o = NULL;
    size_t k = 0;
    if (esc) {
        o = rs_arena_alloc(p->a, end - start + 1);
        if (!o)
            return jnomem(p);
    }
    out->type = JV_STR;
    out->nonascii = 0;
    out->escaped = (uint8_t)esc;
    for (i = start; i < end;) {
        uint8_t c = p->s[i];
        if (c >= 0x80) {
            size_t l = utf8_len(p->s, i, end);
            if (!l)
                return jerr(p, RS_EFORMAT, i, "invalid UTF-8 in a string");
            out->nonascii = 1;
            if (o)
                memcpy(o + k, p->s + i, l), k += l;
            i += l;
            continue;
        }
        if (c != '\\') {
            if (o)
                o[k++] = c;
            i++;
            continue;
        }
        uint8_t e = p->s[i + 1]; /* i + 1 < end: the scan above skipped it */
        uint32_t cp;
        switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u': {
            long u = hex4(p, i + 2);
            if (u < 0 || i + 6 > end)
                return jerr(p, RS_EFORMAT, i, "\\u must be followed by four hexadecimal digits");
            if (u >= 0xDC00 && u <= 0xDFFF)
                return jerr(p, RS_EFORMAT, i, "lone low surrogate \\u%04lX", u);
            if (u >= 0xD800 && u <= 0xDBFF) {
                long lo = (i + 12 <= end && p->s[i + 6] == '\\' && p->s[i + 7] == 'u') ? hex4(p, i + 8) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return jerr(p, RS_EFORMAT, i, "high surrogate \\u%04lX not followed by a low surrogate", u);
                cp = 0x10000 + (((uint32_t)u - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                i += 6;
            } else {
                cp = (uint32_t)u;
            }
            i += 4;
            break;
        }
        default:
            if (e > 0x20 && e < 0x7f)
                return jerr(p, RS_EFORMAT, i, "invalid escape \\%c in a string", e);
            return jerr(p, RS_EFORMAT, i, "invalid escape: backslash followed by byte 0x%02X", e);
        }
        i += 2;
        if (cp >= 0x80)
            out->nonascii = 1;
        k += put_utf8(o + k, cp);
    }
    if (o) {
        o[k] = 0;
        out->u.s = (const char *)o;
        out->n = k;
    } else {
        out->u.s = (const char *)p->s + start;
        out->n = end - start;
    }
    p->pos = end + 1;
    return RS_OK;
}

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(jp *p, jv *out)
{
    const uint8_t *s = p->s;
    size_t i = p->pos, n = p->n;
    if (s[i] == '-')
        i++;
    if (i >= n)
        return jtrunc(p, "incomplete number");
    if (s[i] == '0') {
        i++;
        if (i < n && is_digit(s[i]))
            return jerr(p, RS_EFORMAT, p->pos, "number with a leading zero");
    } else if (is_digit(s[i])) {
        while (i < n && is_digit(s[i]))
            i++;
    } else {
        return jerr(p, RS_EFORMAT, p->pos, "'-' not followed by a digit");
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n)
            return jtrunc(p, "incomplete number");
        if (!is_digit(s[i]))
            return jerr(p, RS_EFORMAT, i, "digit expected after the decimal point");
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n)
            return jtrunc(p, "incomplete number");
        if (!is_digit(s[i]))
            return jerr(p, RS_EFORMAT, i, "digit expected in the exponent");
        while (i < n && is_digit(s[i]))
            i++;
    }
    out->type = JV_NUM;
    out->u.s = (const char *)s + p->pos;
    out->n = i - p->pos;
    p->pos = i;
    return RS_OK;
}

static int parse_value(jp *p, jv *out);

static int enter(jp *p)
{
    if (++p->depth > JSON_MAX_DEPTH)
        return rs_err_at(p->err, RS_ELIMIT, p->pos,
                         "JSON nested deeper than %d levels (sequences deeper than %d)", JSON_MAX_DEPTH,
                         JSON_MAX_SQ_DEPTH);
    return RS_OK;
}

/* Move the children pushed since base into the arena. */
static int pop_children(jp *p, size_t base, jv *out, int obj)
{
    size_t k = p->sn - base;
    out->n = k;
    if (obj) {
        jm *m = k ? rs_arena_alloc(p->a, k * sizeof *m) : NULL;
        if (k && !m)
            return jnomem(p);
        if (k)
            memcpy(m, p->stk + base, k * sizeof *m);
        out->u.o = m;
    } else {
        jv *a = k ? rs_arena_alloc(p->a, k * sizeof *a) : NULL;
        if (k && !a)
            return jnomem(p);
        for (size_t i = 0; i < k; i++)
            a[i] = p->stk[base + i].v;
        out->u.a = a;
    }
    p->sn = base;
    p->depth--;
    return RS_OK;
}

/* What parse_object and parse_array share: the bracket, the separators, the error words. */
typedef struct jcont {
    size_t base;        /* stack depth where this container's children start */
    uint8_t close;      /* '}' or ']' */
    int is_obj;
    const char *unterminated, *expected;
} jcont;

/* After the opening bracket. *done when the container was empty (it is then complete). */
static int container_open(jp *p, jv *out, jcont *c, int *done)
{
    int rc = enter(p);
    if (rc)
        return rc;
    out->type = c->is_obj ? JV_OBJ : JV_ARR;
    c->base = p->sn;
    p->pos++;
    skip_ws(p);
    if (p->pos >= p->n)
        return jtrunc(p, c->unterminated);
    *done = p->s[p->pos] == c->close;
    if (!*done)
        return RS_OK;
    p->pos++;
    return pop_children(p, c->base, out, c->is_obj);
}

/* After a member or element: ',' goes on, the closing bracket completes the container. */
static int container_next(jp *p, jv *out, const jcont *c, int *done)
{
    char d[16];
    skip_ws(p);
    if (p->pos >= p->n)
        return jtrunc(p, c->unterminated);
    uint8_t ch = p->s[p->pos++];
    *done = ch == c->close;
    if (*done)
        return pop_children(p, c->base, out, c->is_obj);
    if (ch != ',')
        return jerr(p, RS_EFORMAT, p->pos - 1, "%s, found %s", c->expected, byte_desc(p, p->pos - 1, d));
    return RS_OK;
}

static int parse_object(jp *p, jv *out)
{
    jcont c = {.close = '}', .is_obj = 1, .unterminated = "unterminated object",
               .expected = "expected ',' or '}' in an object"};
    int done = 0;
    int rc = container_open(p, out, &c, &done);
    while (rc == RS_OK && !done) {
        jm m;
        char d[16];
        skip_ws(p);
        if (p->pos >= p->n)
            return jtrunc(p, c.unterminated);
        if (p->s[p->pos] != '"')
            return jerr(p, RS_EFORMAT, p->pos, "expected a member name (a string), found %s", byte_desc(p, p->pos, d));
        m.koff = p->pos;
        rc = parse_string(p, &m.v);
        if (rc)
            return rc;
        m.key = m.v.u.s;
        m.klen = m.v.n;
        skip_ws(p);
        if (p->pos >= p->n)
            return jtrunc(p, c.unterminated);
        if (p->s[p->pos] != ':')
            return jerr(p, RS_EFORMAT, p->pos, "expected ':' after a member name, found %s", byte_desc(p, p->pos, d));
        p->pos++;
        rc = parse_value(p, &m.v);
        if (rc == RS_OK)
            rc = push(p, &m);
        if (rc == RS_OK)
            rc = container_next(p, out, &c, &done);
    }
    return rc;
}

static int parse_array(jp *p, jv *out)
{
    jcont c = {.close = ']', .is_obj = 0, .unterminated = "unterminated array",
               .expected = "expected ',' or ']' in an array"};
    int done = 0;
    int rc = container_open(p, out, &c, &done);
    while (rc == RS_OK && !done) {
        jm m = {0};
        rc = parse_value(p, &m.v);
        if (rc == RS_OK)
            rc = push(p, &m);
        if (rc == RS_OK)
            rc = container_next(p, out, &c, &done);
    }
    return rc;
}

static int parse_literal(jp *p, jv *out, const char *word, int type)
{
    size_t l = strlen(word);
    for (size_t i = 0; i < l; i++) {
        if (p->pos + i >= p->n)
            return jtrunc(p, "incomplete literal");
        if (p->s[p->pos + i] != (uint8_t)word[i])
            return jerr(p, RS_EFORMAT, p->pos, "invalid literal (expected %s)", word);
    }
    out->type = (uint8_t)type;
    p->pos += l;
    return RS_OK;
}

static int parse_value(jp *p, jv *out)
{
    skip_ws(p);
    if (p->pos >= p->n)
        return jtrunc(p, "a value is missing");
    memset(out, 0, sizeof *out);
    out->off = p->pos;
    uint8_t c = p->s[p->pos];
    switch (c) {
    case '{': return parse_object(p, out);
    case '[': return parse_array(p, out);
    case '"': return parse_string(p, out);
    case 't': return parse_literal(p, out, "true", JV_TRUE);
    case 'f': return parse_literal(p, out, "false", JV_FALSE);
    case 'n': return parse_literal(p, out, "null", JV_NULL);
    default:
        if (c == '-' || is_digit(c))
            return parse_number(p, out);
        char d[16];
        return jerr(p, RS_EFORMAT, p->pos, "unexpected %s where a value should be", byte_desc(p, p->pos, d));
    }
}

/* ---- tree -> dataset ---------------------------------------------------------------------- */

typedef struct jr {
    dcm_file *f;
    rs_err *err;
    rs_buf val;             /* the value being built */
    rs_buf num;             /* a number's text, NUL-terminated */
    int nonascii;           /* some charset-affected text is not ASCII */
    const dcm_ts *meta_ts;  /* transfer syntax named by (0002,0010), if known */
    int encaps;             /* some pixel data became encapsulated fragments */
} jr;

static int bad(jr *r, size_t off, uint32_t tag, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int bad(jr *r, size_t off, uint32_t tag, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rs_err_at(r->err, RS_EFORMAT, off, "DICOM JSON (%04X,%04X): %s", DCM_TAG_GROUP(tag),
                     DCM_TAG_ELEM(tag), msg);
}

static int nomem(jr *r, size_t off)
{
    return rs_err_at(r->err, RS_ENOMEM, off, "out of memory (or over the memory limit) building the dataset");
}

/* Printable copy of a key or short string for messages. */
static const char *show(const char *s, size_t n, char *buf, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < cap; i++)
        buf[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (n && k < n && k + 4 >= cap)
        buf[k++] = '.', buf[k++] = '.', buf[k++] = '.';
    buf[k] = 0;
    return buf;
}

static const char *vr_name(uint16_t vr, char b[3])
{
    dcm_vr_str(vr, b);
    return b;
}

static int matches(const jm *m, const char *key)
{
    size_t l = strlen(key);
    return m->klen == l && memcmp(m->key, key, l) == 0;
}

/* Offset of byte i of a string value in the input (exact when it had no escapes). */
static size_t str_off(const jv *v, size_t i)
{
    return v->escaped ? v->off : v->off + 1 + i;
}

/* Append string text for VR vr: UTF-8 for charset-affected VRs, else ISO 8859-1. */
static int put_text(jr *r, uint32_t tag, uint16_t vr, const jv *v, const char *forbid)
{
    const dcm_vr_info *vi = dcm_vr_info_get(vr);
    const uint8_t *s = (const uint8_t *)v->u.s;
    char b[3];
    for (size_t i = 0; i < v->n; i++)
        if (s[i] < 0x80 && s[i] && strchr(forbid, s[i]))
            return bad(r, str_off(v, i), tag, "'%c' inside a value of VR %s (it separates %s)", s[i],
                       vr_name(vr, b), s[i] == '\\' ? "values" : "name groups");
    if (!v->nonascii || vi->charset) {
        if (v->nonascii)
            r->nonascii = 1;
        return rs_buf_append(&r->val, s, v->n) ? nomem(r, v->off) : RS_OK;
    }
    if (rs_buf_reserve(&r->val, v->n))
        return nomem(r, v->off);
    for (size_t i = 0; i < v->n; i++) {
        uint32_t c = s[i];
        if (c >= 0x80) { /* valid UTF-8: checked by the parser */
            c = c >= 0xC0 && c < 0xC4 ? (c & 0x1F) << 6 | (s[i + 1] & 0x3F) : 0x100;
            if (c > 0xFF)
                return bad(r, str_off(v, i), tag,
                           "VR %s is not affected by Specific Character Set; only ISO 8859-1 characters can be stored",
                           vr_name(vr, b));
            i++;
        }
        rs_buf_putc(&r->val, (int)c);
    }
    return RS_OK;
}

/* Copy a number's text, NUL-terminated, into r->num. */
static const char *num_text(jr *r, const jv *v)
{
    rs_buf_reset(&r->num);
    if (rs_buf_append(&r->num, v->u.s, v->n))
        return NULL;
    return (const char *)r->num.p;
}

static int is_int_text(const jv *v)
{
    return !memchr(v->u.s, '.', v->n) && !memchr(v->u.s, 'e', v->n) && !memchr(v->u.s, 'E', v->n);
}

/* DS from a double: the shortest %g text reading back the same, else the most precise that fits. */
static void format_ds(double d, char out[32])
{
    char best[32] = "0";
    for (int prec = 1; prec <= 17; prec++) {
        char t[32];
        int l = snprintf(t, sizeof t, "%.*g", prec, d);
        double back = strtod(t, NULL);
        if (l < 0 || l > 16 || !isfinite(back)) /* rounding up near DBL_MAX overflows */
            continue;
        memcpy(best, t, (size_t)l + 1);
        if (back == d)
            break;
    }
    memcpy(out, best, strlen(best) + 1);
}

/* A JSON number in a DS or IS value. */
static int put_dsis(jr *r, uint32_t tag, uint16_t vr, const jv *v)
{
    const char *t = num_text(r, v);
    if (!t)
        return nomem(r, v->off);
    double d = strtod(t, NULL);
    if (!isfinite(d))
        return bad(r, v->off, tag, "number %.40s is out of range", t);
    char buf[32];
    if (vr == DCM_VR_IS) {
        /* integral values in another form become integers; anything else is kept, as the Part 10 reader does */
        if (!is_int_text(v) && d == floor(d) && fabs(d) <= 99999999999.0) {
            snprintf(buf, sizeof buf, "%.0f", d == 0 ? 0.0 : d);
            t = buf;
        }
        if ((!is_int_text(v) && t != buf) || d < -2147483648.0 || d > 2147483647.0 || strlen(t) > 12)
            dcm_file_warn(r->f, v->off, "(%04X,%04X): IS value %.40s is not a 32-bit integer of at most 12 characters",
                          DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag), t);
    } else if (v->n > 16) {
        format_ds(d, buf);
        t = buf;
    }
    return rs_buf_puts(&r->val, t) ? nomem(r, v->off) : RS_OK;
}

static int put_pn(jr *r, uint32_t tag, const jv *v)
{
    static const char *const names[3] = {"Alphabetic", "Ideographic", "Phonetic"};
    const jv *g[3] = {NULL, NULL, NULL};
    char kb[40];
    if (v->type != JV_OBJ)
        return bad(r, v->off, tag, "a PN value must be an object with Alphabetic, Ideographic or Phonetic (or null)");
    for (size_t i = 0; i < v->n; i++) {
        const jm *m = &v->u.o[i];
        int k = 0;
        while (k < 3 && !matches(m, names[k]))
            k++;
        if (k == 3)
            return bad(r, m->koff, tag, "unknown PN component group \"%s\"", show(m->key, m->klen, kb, sizeof kb));
        if (g[k])
            return bad(r, m->koff, tag, "duplicate PN component group \"%s\"", names[k]);
        if (m->v.type != JV_STR && m->v.type != JV_NULL)
            return bad(r, m->v.off, tag, "PN component group %s must be a string", names[k]);
        g[k] = &m->v;
    }
    int last = -1;
    for (int k = 0; k < 3; k++)
        if (g[k] && g[k]->type == JV_STR && g[k]->n)
            last = k;
    for (int k = 0; k <= last; k++) {
        if (k && rs_buf_putc(&r->val, '='))
            return nomem(r, v->off);
        if (g[k] && g[k]->type == JV_STR) {
            int rc = put_text(r, tag, DCM_VR_PN, g[k], "\\=");
            if (rc)
                return rc;
        }
    }
    return RS_OK;
}

static int put_strings(jr *r, uint32_t tag, uint16_t vr, const dcm_vr_info *vi, const jv *arr)
{
    int multi = vi->kind == DCM_VK_STRING;
    char b[3];
    if (!multi && arr->n > 1)
        return bad(r, arr->u.a[1].off, tag, "VR %s holds a single value; found %zu", vr_name(vr, b), arr->n);
    for (size_t i = 0; i < arr->n; i++) {
        const jv *c = &arr->u.a[i];
        int rc = RS_OK;
        if (i && rs_buf_putc(&r->val, '\\'))
            return nomem(r, c->off);
        if (c->type == JV_NULL)
            continue;
        if (vr == DCM_VR_PN)
            rc = put_pn(r, tag, c);
        else if (c->type == JV_NUM && (vr == DCM_VR_DS || vr == DCM_VR_IS))
            rc = put_dsis(r, tag, vr, c);
        else if (c->type == JV_STR)
            rc = put_text(r, tag, vr, c, multi ? "\\" : "");
        else
            rc = bad(r, c->off, tag, "values of VR %s must be strings%s or null", vr_name(vr, b),
                     vr == DCM_VR_DS || vr == DCM_VR_IS ? " or numbers" : "");
        if (rc)
            return rc;
    }
    return RS_OK;
}

static void put_le(uint8_t *o, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++, v >>= 8)
        o[i] = (uint8_t)v;
}

/* An integer JSON number in [lo, hi] as its two's complement bits. */
static int get_int(jr *r, uint32_t tag, uint16_t vr, const jv *v, int64_t lo, uint64_t hi, uint64_t *out)
{
    char b[3];
    const char *t = num_text(r, v);
    if (!t)
        return nomem(r, v->off);
    if (is_int_text(v)) {
        int neg = t[0] == '-';
        uint64_t mag = 0;
        for (const char *q = t + neg; *q; q++) {
            unsigned dgt = (unsigned)(*q - '0');
            if (mag > (UINT64_MAX - dgt) / 10)
                goto range;
            mag = mag * 10 + dgt;
        }
        if (neg) {
            if (mag > (uint64_t)0 - (uint64_t)lo) /* lo <= 0: its magnitude */
                goto range;
            *out = (uint64_t)0 - mag;
        } else {
            if (mag > hi)
                goto range;
            *out = mag;
        }
        return RS_OK;
    }
    double d = strtod(t, NULL);
    if (!isfinite(d) || d != floor(d))
        return bad(r, v->off, tag, "%.40s is not an integer (VR %s)", t, vr_name(vr, b));
    if (d < 0) {
        if (d < (double)lo)
            goto range;
        *out = (uint64_t)(int64_t)d;
    } else {
        if (d >= 18446744073709551616.0 || (uint64_t)d > hi)
            goto range;
        *out = (uint64_t)d;
    }
    return RS_OK;
range:
    return rs_err_at(r->err, RS_EFORMAT, v->off, "DICOM JSON (%04X,%04X): %.40s is out of range for VR %s",
                     DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag), t, vr_name(vr, b));
}

static int put_numbers(jr *r, uint32_t tag, uint16_t vr, const dcm_vr_info *vi, const jv *arr)
{
    char b[3];
    unsigned size = vi->fixed_size;
    if (rs_buf_reserve(&r->val, arr->n * size))
        return nomem(r, arr->off);
    for (size_t i = 0; i < arr->n; i++) {
        const jv *c = &arr->u.a[i];
        uint8_t o[8];
        uint64_t bits = 0;
        int rc = RS_OK;
        if (vr == DCM_VR_FL || vr == DCM_VR_FD) {
            double d;
            if (c->type == JV_NULL) {
                d = NAN; /* the writer's NaN or infinity */
            } else if (c->type == JV_NUM) {
                const char *t = num_text(r, c);
                if (!t)
                    return nomem(r, c->off);
                d = strtod(t, NULL);
                if (!isfinite(d) || (vr == DCM_VR_FL && fabs(d) > FLT_MAX))
                    return bad(r, c->off, tag, "%.40s is out of range for VR %s", t, vr_name(vr, b));
            } else {
                return bad(r, c->off, tag, "values of VR %s must be numbers (or null)", vr_name(vr, b));
            }
            if (vr == DCM_VR_FL) {
                float fv = (float)d;
                uint32_t w;
                memcpy(&w, &fv, 4);
                bits = w;
            } else {
                memcpy(&bits, &d, 8);
            }
        } else {
            if (c->type != JV_NUM)
                return bad(r, c->off, tag, "values of VR %s must be numbers%s", vr_name(vr, b),
                           c->type == JV_NULL ? " (null has no binary encoding)" : "");
            switch (vr) {
            case DCM_VR_US: rc = get_int(r, tag, vr, c, 0, UINT16_MAX, &bits); break;
            case DCM_VR_SS: rc = get_int(r, tag, vr, c, INT16_MIN, INT16_MAX, &bits); break;
            case DCM_VR_UL: rc = get_int(r, tag, vr, c, 0, UINT32_MAX, &bits); break;
            case DCM_VR_SL: rc = get_int(r, tag, vr, c, INT32_MIN, INT32_MAX, &bits); break;
            case DCM_VR_UV: rc = get_int(r, tag, vr, c, 0, UINT64_MAX, &bits); break;
            default: rc = get_int(r, tag, vr, c, INT64_MIN, INT64_MAX, &bits); break; /* SV */
            }
            if (rc)
                return rc;
        }
        put_le(o, bits, size);
        rs_buf_append(&r->val, o, size);
    }
    return RS_OK;
}

static int put_tags(jr *r, uint32_t tag, const jv *arr)
{
    if (rs_buf_reserve(&r->val, arr->n * 4))
        return nomem(r, arr->off);
    for (size_t i = 0; i < arr->n; i++) {
        const jv *c = &arr->u.a[i];
        uint32_t t = 0;
        int ok = c->type == JV_STR && c->n == 8;
        for (size_t k = 0; ok && k < 8; k++) {
            int h = hexval((uint8_t)c->u.s[k]);
            ok = h >= 0;
            t = t << 4 | (uint32_t)(h & 15);
        }
        if (!ok)
            return bad(r, c->off, tag, "an AT value must be a string of 8 hexadecimal digits (\"GGGGEEEE\")");
        uint8_t o[4];
        put_le(o, DCM_TAG_GROUP(t), 2);
        put_le(o + 2, DCM_TAG_ELEM(t), 2);
        rs_buf_append(&r->val, o, 4);
    }
    return RS_OK;
}

static const int8_t *b64_table(void)
{
    static int8_t t[256];
    static int init;
    if (!init) {
        static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        memset(t, -1, sizeof t);
        for (int i = 0; i < 64; i++)
            t[(uint8_t)a[i]] = (int8_t)i;
        init = 1;
    }
    return t;
}

/* Strict base64 (RFC 4648 section 4, padded, no whitespace, zero pad bits). */
static int b64_decode(jr *r, uint32_t tag, const jv *v, uint8_t **out, size_t *outn)
{
    const int8_t *t = b64_table();
    const uint8_t *s = (const uint8_t *)v->u.s;
    size_t n = v->n;
    if (n % 4)
        return bad(r, v->off, tag, "InlineBinary: %zu characters is not a multiple of 4 (base64 must be padded)", n);
    size_t pad = n && s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    size_t len = n / 4 * 3 - pad;
    uint8_t *o = rs_arena_alloc(&r->f->arena, len + 1);
    if (!o)
        return nomem(r, v->off);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t q = 0;
        int last = i + 4 == n;
        for (size_t j = 0; j < 4; j++) {
            uint8_t c = s[i + j];
            int x = t[c];
            if (x < 0 && !(c == '=' && last && j >= 4 - pad))
                return bad(r, str_off(v, i + j), tag, "InlineBinary: %s 0x%02X is not base64",
                           c == '=' ? "misplaced padding" : "byte", c);
            q = q << 6 | (uint32_t)(x < 0 ? 0 : x);
        }
        uint8_t b3[3] = {(uint8_t)(q >> 16), (uint8_t)(q >> 8), (uint8_t)q};
        size_t m = last ? 3 - pad : 3;
        if (last && pad && b3[m]) /* the bits of the last character below the data must be zero */
            return bad(r, str_off(v, n - pad - 1), tag, "InlineBinary: non-zero bits before the padding");
        memcpy(o + k, b3, m);
        k += m;
    }
    o[k] = 0;
    *out = o;
    *outn = k;
    return RS_OK;
}

/* Inline encapsulated pixel data: a sequence of items (FFFE,E000) covering all the bytes. */
static int make_fragments(jr *r, dcm_elem *e, uint8_t *p, size_t n)
{
    uint32_t k = 0;
    for (size_t at = 0; at < n; k++) {
        if (n - at < 8 || p[at] != 0xFE || p[at + 1] != 0xFF || p[at + 2] != 0x00 || p[at + 3] != 0xE0)
            return 0;
        uint32_t l = (uint32_t)p[at + 4] | (uint32_t)p[at + 5] << 8 | (uint32_t)p[at + 6] << 16 |
                     (uint32_t)p[at + 7] << 24;
        if (l > n - at - 8 || k == JSON_MAX_ITEMS)
            return 0;
        at += 8 + (size_t)l;
    }
    if (k == 0)
        return 0;
    dcm_frag *fr = rs_arena_zalloc(&r->f->arena, k * sizeof *fr);
    if (!fr)
        return -1;
    size_t at = 0;
    for (uint32_t i = 0; i < k; i++) {
        fr[i].len = (uint32_t)p[at + 4] | (uint32_t)p[at + 5] << 8 | (uint32_t)p[at + 6] << 16 |
                    (uint32_t)p[at + 7] << 24;
        fr[i].bytes = p + at + 8;
        at += 8 + (size_t)fr[i].len;
    }
    e->flags = DCM_EF_ENCAPS | DCM_EF_UNDEF_LEN;
    e->len = DCM_UNDEF_LEN;
    e->v.px.frags = fr;
    e->v.px.n = k;
    r->encaps = 1;
    return 1;
}

static int put_inline(jr *r, dcm_ds *ds, uint32_t tag, uint16_t vr, const dcm_vr_info *vi, const jv *v)
{
    char b[3];
    if (v->type != JV_STR)
        return bad(r, v->off, tag, "InlineBinary must be a string");
    uint8_t *p = NULL;
    size_t n = 0;
    int rc = b64_decode(r, tag, v, &p, &n);
    if (rc)
        return rc;
    if (n >= DCM_UNDEF_LEN)
        return rs_err_at(r->err, RS_ELIMIT, v->off, "DICOM JSON (%04X,%04X): value too long", DCM_TAG_GROUP(tag),
                         DCM_TAG_ELEM(tag));
    dcm_elem *e = dcm_ds_put(ds, tag, vr);
    if (!e)
        return nomem(r, v->off);
    e->len = (uint32_t)n;
    e->v.bytes = p;
    if (tag == DCM_TAG_PIXEL_DATA && (vr == DCM_VR_OB || vr == DCM_VR_OW) &&
        (!r->meta_ts || r->meta_ts->encapsulated)) {
        rc = make_fragments(r, e, p, n);
        if (rc < 0)
            return nomem(r, v->off);
        if (rc > 0)
            return RS_OK;
    }
    if (r->meta_ts && r->meta_ts->encapsulated && tag == DCM_TAG_PIXEL_DATA && ds == r->f->ds)
        return bad(r, v->off, tag, "the transfer syntax is %s but Pixel Data is not a sequence of fragments",
                   r->meta_ts->name);
    if (vi->swap > 1 && n % vi->swap)
        dcm_file_warn(r->f, v->off, "(%04X,%04X): %s value of %zu bytes is not a multiple of %u",
                      DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag), vr_name(vr, b), n, vi->swap);
    return RS_OK;
}

static int conv_ds(jr *r, const jv *obj, dcm_ds *ds, unsigned depth);

static int put_sq(jr *r, dcm_ds *ds, uint32_t tag, const jv *val, unsigned depth)
{
    size_t n = 0;
    if (val) {
        if (val->type != JV_ARR)
            return bad(r, val->off, tag, "\"Value\" must be an array");
        n = val->n;
        for (size_t k = 0; k < n; k++)
            if (val->u.a[k].type != JV_OBJ)
                return bad(r, val->u.a[k].off, tag, "a sequence item must be an object%s",
                           val->u.a[k].type == JV_NULL ? " (null is not an item)" : "");
    }
    if (n && depth + 1 > JSON_MAX_SQ_DEPTH)
        return rs_err_at(r->err, RS_ELIMIT, val->off, "DICOM JSON (%04X,%04X): sequences nested deeper than %d",
                         DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag), JSON_MAX_SQ_DEPTH);
    if (n > JSON_MAX_ITEMS)
        return rs_err_at(r->err, RS_ELIMIT, val->off, "DICOM JSON (%04X,%04X): more than %u items",
                         DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag), JSON_MAX_ITEMS);
    dcm_ds **items = n ? rs_arena_alloc(&r->f->arena, n * sizeof *items) : NULL;
    if (n && !items)
        return nomem(r, val->off);
    for (size_t k = 0; k < n; k++)
        if (!(items[k] = dcm_ds_new(r->f, ds)))
            return nomem(r, val->u.a[k].off);
    dcm_elem *e = dcm_ds_put(ds, tag, DCM_VR_SQ);
    if (!e)
        return nomem(r, val ? val->off : 0);
    e->len = DCM_UNDEF_LEN;
    e->flags = DCM_EF_UNDEF_LEN;
    e->v.sq.items = items;
    e->v.sq.n = (uint32_t)n;
    /* e may move when ds grows, but nothing is added to ds before the next element */
    for (size_t k = 0; k < n; k++) {
        int rc = conv_ds(r, &val->u.a[k], items[k], depth + 1);
        if (rc)
            return rc;
    }
    return RS_OK;
}

static int conv_elem(jr *r, dcm_ds *ds, uint32_t tag, const jv *v, unsigned depth)
{
    const jv *jvr = NULL, *val = NULL, *inl = NULL, *bulk = NULL;
    char b[3], kb[40];
    if (v->type != JV_OBJ)
        return bad(r, v->off, tag, "an attribute must be an object with \"vr\"");
    for (size_t i = 0; i < v->n; i++) {
        const jm *m = &v->u.o[i];
        const jv **slot = matches(m, "vr") ? &jvr : matches(m, "Value") ? &val
                        : matches(m, "InlineBinary") ? &inl : matches(m, "BulkDataURI") ? &bulk : NULL;
        if (!slot)
            return bad(r, m->koff, tag, "unknown member \"%s\" (expected vr, Value, InlineBinary or BulkDataURI)",
                       show(m->key, m->klen, kb, sizeof kb));
        if (*slot)
            return bad(r, m->koff, tag, "duplicate member \"%s\"", show(m->key, m->klen, kb, sizeof kb));
        *slot = &m->v;
    }
    if (!jvr)
        return bad(r, v->off, tag, "\"vr\" is missing");
    if (jvr->type != JV_STR)
        return bad(r, jvr->off, tag, "\"vr\" must be a string");
    uint16_t vr = jvr->n == 2 ? DCM_VR((uint8_t)jvr->u.s[0], (uint8_t)jvr->u.s[1]) : DCM_VR_NONE;
    const dcm_vr_info *vi = dcm_vr_info_get(vr);
    if (!vi)
        return bad(r, jvr->off, tag, "unknown VR \"%s\"", show(jvr->u.s, jvr->n, kb, sizeof kb));
    if (tag == DCM_TAG_SPECIFIC_CHARSET && vi->kind != DCM_VK_STRING && vi->kind != DCM_VK_TEXT)
        return bad(r, jvr->off, tag, "Specific Character Set must be text (CS), not %s", vr_name(vr, b));
    if (!!val + !!inl + !!bulk > 1) {
        const jv *all[3] = {val, inl, bulk};
        size_t at = 0; /* the one that comes last */
        for (int k = 0; k < 3; k++)
            if (all[k] && all[k]->off > at)
                at = all[k]->off;
        return bad(r, at, tag, "only one of Value, InlineBinary and BulkDataURI may be present");
    }
    if (bulk && bulk->type != JV_STR)
        return bad(r, bulk->off, tag, "BulkDataURI must be a string");
    if (vr == DCM_VR_SQ) {
        if (inl || bulk)
            return bad(r, (inl ? inl : bulk)->off, tag, "a sequence takes \"Value\" (items), not %s",
                       inl ? "InlineBinary" : "BulkDataURI");
        return put_sq(r, ds, tag, val, depth);
    }
    if (vi->kind == DCM_VK_BINARY) {
        if (val)
            return bad(r, val->off, tag, "VR %s takes InlineBinary or BulkDataURI, not Value", vr_name(vr, b));
        if (inl)
            return put_inline(r, ds, tag, vr, vi, inl);
    } else if (inl) {
        return bad(r, inl->off, tag, "InlineBinary is only for VRs OB OD OF OL OV OW UN, not %s", vr_name(vr, b));
    }
    rs_buf_reset(&r->val);
    if (val) {
        int rc;
        if (val->type != JV_ARR)
            return bad(r, val->off, tag, "\"Value\" must be an array");
        switch (vi->kind) {
        case DCM_VK_STRING:
        case DCM_VK_TEXT: rc = put_strings(r, tag, vr, vi, val); break;
        case DCM_VK_NUMBER: rc = put_numbers(r, tag, vr, vi, val); break;
        default: rc = put_tags(r, tag, val); break; /* AT */
        }
        if (rc)
            return rc;
    }
    int rc = dcm_ds_set_bytes(ds, tag, vr, r->val.p ? r->val.p : (const uint8_t *)"", r->val.len);
    if (rc == RS_ELIMIT)
        return rs_err_at(r->err, rc, v->off, "DICOM JSON (%04X,%04X): value too long", DCM_TAG_GROUP(tag),
                         DCM_TAG_ELEM(tag));
    return rc ? nomem(r, v->off) : RS_OK;
}

typedef struct tag_ix {
    uint32_t tag;
    uint32_t ix;
} tag_ix;

static int cmp_tag_ix(const void *a, const void *b)
{
    const tag_ix *x = a, *y = b;
    if (x->tag != y->tag)
        return x->tag < y->tag ? -1 : 1;
    return x->ix < y->ix ? -1 : x->ix > y->ix;
}

static int conv_ds(jr *r, const jv *obj, dcm_ds *ds, unsigned depth)
{
    char kb[40];
    if (obj->type != JV_OBJ)
        return rs_err_at(r->err, RS_EFORMAT, obj->off, "DICOM JSON: a dataset must be an object");
    if (obj->n == 0)
        return RS_OK;
    if (obj->n > UINT32_MAX)
        return rs_err_at(r->err, RS_ELIMIT, obj->off, "DICOM JSON: too many attributes");
    tag_ix *ix = malloc(obj->n * sizeof *ix);
    if (!ix)
        return nomem(r, obj->off);
    int rc = RS_OK;
    for (size_t i = 0; i < obj->n && rc == RS_OK; i++) {
        const jm *m = &obj->u.o[i];
        uint32_t t = 0;
        int ok = m->klen == 8;
        for (size_t k = 0; ok && k < 8; k++) {
            int h = hexval((uint8_t)m->key[k]);
            ok = h >= 0;
            t = t << 4 | (uint32_t)(h & 15);
        }
        if (!ok)
            rc = rs_err_at(r->err, RS_EFORMAT, m->koff, "DICOM JSON: attribute key \"%s\" is not 8 hexadecimal digits",
                           show(m->key, m->klen, kb, sizeof kb));
        else if (DCM_TAG_GROUP(t) == 0xFFFE)
            rc = bad(r, m->koff, t, "item and delimiter tags are not attributes");
        else if (DCM_TAG_GROUP(t) == 0x0002 && depth > 0)
            rc = bad(r, m->koff, t, "file meta information inside a sequence item");
        ix[i].tag = t;
        ix[i].ix = (uint32_t)i;
    }
    if (rc == RS_OK)
        qsort(ix, obj->n, sizeof *ix, cmp_tag_ix);
    for (size_t i = 0; i < obj->n && rc == RS_OK; i++) {
        const jm *m = &obj->u.o[ix[i].ix];
        uint32_t t = ix[i].tag;
        if (i && ix[i - 1].tag == t) {
            rc = bad(r, m->koff, t, "duplicate attribute");
            break;
        }
        int meta = DCM_TAG_GROUP(t) == 0x0002;
        rc = conv_elem(r, meta ? r->f->meta : ds, t, &m->v, depth);
        if (rc == RS_OK && t == DCM_TAG_TRANSFER_SYNTAX && meta) {
            const dcm_elem *e = dcm_ds_find(r->f->meta, t);
            const dcm_vr_info *vi = e ? dcm_vr_info_get(e->vr) : NULL;
            size_t l = vi && (vi->kind == DCM_VK_STRING || vi->kind == DCM_VK_TEXT) ? e->len : 0;
            while (l && (e->v.bytes[l - 1] == ' ' || e->v.bytes[l - 1] == '\0'))
                l--;
            if (l && l < sizeof r->f->ts_uid) { /* as the Part 10 reader does */
                r->meta_ts = dcm_ts_find((const char *)e->v.bytes, l);
                if (!r->meta_ts)
                    r->meta_ts = dcm_ts_generic_encapsulated();
                memcpy(r->f->ts_uid, e->v.bytes, l);
                r->f->ts_uid[l] = 0;
            }
        }
    }
    free(ix);
    return rc;
}

/* All text is UTF-8 now: every (0008,0005) below the top level says so too. */
static int set_utf8_items(dcm_ds *ds)
{
    for (uint32_t i = 0; i < ds->n; i++) {
        const dcm_elem *e = &ds->e[i];
        if (e->vr != DCM_VR_SQ)
            continue;
        for (uint32_t k = 0; k < e->v.sq.n; k++) {
            dcm_ds *it = e->v.sq.items[k];
            int rc = dcm_ds_find(it, DCM_TAG_SPECIFIC_CHARSET)
                         ? dcm_ds_set_str(it, DCM_TAG_SPECIFIC_CHARSET, DCM_VR_CS, "ISO_IR 192")
                         : RS_OK;
            if (rc == RS_OK)
                rc = set_utf8_items(it);
            if (rc)
                return rc;
        }
    }
    return RS_OK;
}

int dcm_json_read(const char *text, size_t n, dcm_file **out, rs_err *err)
{
    *out = NULL;
    rs_arena tree;
    rs_arena_init(&tree, JSON_MAX_MEMORY);
    jp p = {.s = (const uint8_t *)text, .n = n, .a = &tree, .err = err};
    jv root;
    int rc = RS_OK;
    if (n >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        p.pos = 3; /* a byte order mark may be ignored (RFC 8259 section 8.1) */
    skip_ws(&p);
    if (p.pos >= n)
        rc = jtrunc(&p, "no JSON object");
    else if (p.s[p.pos] != '{')
        rc = rs_err_at(err, RS_EFORMAT, p.pos, "DICOM JSON must be an object of attributes");
    if (rc == RS_OK)
        rc = parse_value(&p, &root);
    if (rc == RS_OK) {
        skip_ws(&p);
        if (p.pos < n)
            rc = jerr(&p, RS_EFORMAT, p.pos, "unexpected data after the end of the object");
    }
    free(p.stk);
    jr r = {.err = err, .val = RS_BUF_INIT, .num = RS_BUF_INIT};
    if (rc == RS_OK && !(r.f = dcm_file_new(JSON_MAX_MEMORY)))
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
    if (rc == RS_OK)
        rc = conv_ds(&r, &root, r.f->ds, 0);
    if (rc == RS_OK && r.nonascii) {
        rc = dcm_ds_set_str(r.f->ds, DCM_TAG_SPECIFIC_CHARSET, DCM_VR_CS, "ISO_IR 192");
        if (rc == RS_OK)
            rc = set_utf8_items(r.f->ds);
        if (rc)
            rc = rs_err_set(err, rc, "out of memory");
    }
    if (rc == RS_OK) {
        r.f->has_meta = r.f->meta->n > 0;
        if (r.meta_ts) {
            r.f->ts = r.f->source_ts = r.meta_ts; /* ts_uid is set */
        } else if (r.encaps) {
            r.f->ts = r.f->source_ts = dcm_ts_generic_encapsulated();
            r.f->ts_uid[0] = 0;
        } else {
            snprintf(r.f->ts_uid, sizeof r.f->ts_uid, "%s", r.f->ts->uid);
        }
    }
    rs_buf_free(&r.val);
    rs_buf_free(&r.num);
    rs_arena_free(&tree);
    if (rc) {
        dcm_file_free(r.f);
        return rc;
    }
    *out = r.f;
    return RS_OK;
}
