/*
 * json_write.c - dataset -> DICOM JSON (PS3.18 F.2). The reverse lives in json_read.c.
 *
 * Empty values keep their "vr" and have no "Value" (F.2.5); empty components of a multi-valued
 * string are null; numbers in IS/DS strings are written as JSON numbers exactly as they were
 * written in DICOM, after normalising what JSON forbids (leading '+', leading zeros, a bare '.').
 */
#include "json.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

typedef struct jw {
    const dcm_json_opts *o;
    rs_buf *out;
    rs_err *err;
    rs_buf tmp;
} jw;

static int write_ds(jw *w, const dcm_ds *ds, int depth);

static int indent(jw *w, int depth)
{
    if (!w->o->pretty)
        return RS_OK;
    int rc = rs_buf_putc(w->out, '\n');
    for (int i = 0; rc == RS_OK && i < depth; i++)
        rc = rs_buf_puts(w->out, "  ");
    return rc;
}

/* Append s (UTF-8 or latin-1 bytes when latin1 is set) as a JSON string literal. */
static int put_json_str(rs_buf *b, const uint8_t *s, size_t n, int latin1)
{
    int rc = rs_buf_reserve(b, n + 2);
    if (rc)
        return rc;
    rs_buf_putc(b, '"');
    for (size_t i = 0; i < n && rc == RS_OK; i++) {
        uint8_t c = s[i];
        switch (c) {
        case '"': rc = rs_buf_puts(b, "\\\""); break;
        case '\\': rc = rs_buf_puts(b, "\\\\"); break;
        case '\n': rc = rs_buf_puts(b, "\\n"); break;
        case '\r': rc = rs_buf_puts(b, "\\r"); break;
        case '\t': rc = rs_buf_puts(b, "\\t"); break;
        case '\b': rc = rs_buf_puts(b, "\\b"); break;
        case '\f': rc = rs_buf_puts(b, "\\f"); break;
        default:
            if (c < 0x20 || c == 0x7f)
                rc = rs_buf_printf(b, "\\u%04x", c);
            else if (c >= 0x80 && latin1) {
                uint8_t u[2] = {(uint8_t)(0xC0 | (c >> 6)), (uint8_t)(0x80 | (c & 0x3F))};
                rc = rs_buf_append(b, u, 2);
            } else
                rc = rs_buf_putc(b, c);
        }
    }
    return rc ? rc : rs_buf_putc(b, '"');
}

/* A DICOM DS/IS string as a JSON number; 0 when it is not a number at all. */
static int put_json_number(rs_buf *b, const char *s, size_t n)
{
    char tmp[80];
    while (n && (*s == ' '))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\0'))
        n--;
    if (n == 0 || n >= sizeof tmp)
        return 0;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end;
    double v = strtod(tmp, &end);
    if (*end || !isfinite(v))
        return 0;
    /* rebuild in JSON grammar: -?int(.frac)?(e[+-]?digits)? */
    const char *p = tmp;
    char o[96];
    size_t k = 0;
    if (*p == '+' || *p == '-') {
        if (*p == '-')
            o[k++] = '-';
        p++;
    }
    while (*p == '0' && p[1] >= '0' && p[1] <= '9')
        p++;
    if (*p == '.')
        o[k++] = '0';
    while (*p >= '0' && *p <= '9')
        o[k++] = *p++;
    if (*p == '.') {
        p++;
        if (*p >= '0' && *p <= '9') {
            o[k++] = '.';
            while (*p >= '0' && *p <= '9')
                o[k++] = *p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        o[k++] = 'e';
        p++;
        if (*p == '+' || *p == '-')
            o[k++] = *p++;
        while (*p >= '0' && *p <= '9')
            o[k++] = *p++;
    }
    if (*p || k == 0 || o[k - 1] == 'e' || o[k - 1] == '-' || o[k - 1] == '+')
        return 0;
    return rs_buf_append(b, o, k) == RS_OK;
}

static int put_double(rs_buf *b, double d)
{
    if (!isfinite(d))
        return rs_buf_puts(b, "null"); /* JSON has no NaN or infinity */
    if (d == floor(d) && fabs(d) < 1e15)
        return rs_buf_printf(b, "%.1f", d);
    return rs_buf_printf(b, "%.17g", d);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int put_base64(rs_buf *b, const uint8_t *p, size_t n)
{
    int rc = rs_buf_reserve(b, (n + 2) / 3 * 4 + 2);
    if (rc)
        return rc;
    rs_buf_putc(b, '"');
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        char q[4] = {b64[v >> 18], b64[(v >> 12) & 63], b64[(v >> 6) & 63], b64[v & 63]};
        rs_buf_append(b, q, 4);
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        char q[4] = {b64[v >> 18], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=', '='};
        rs_buf_append(b, q, 4);
    }
    return rs_buf_putc(b, '"');
}

/* Text of a string value in UTF-8 (charset VRs decoded, others read as latin-1 like pydicom). */
static int text_of(jw *w, const dcm_ds *ds, const dcm_elem *e, const uint8_t **s, size_t *n, int *latin1)
{
    const dcm_vr_info *vi = dcm_vr_info_get(e->vr);
    *latin1 = 0;
    if (vi && vi->charset) {
        dcm_charset cs;
        dcm_ds_charset(ds, &cs);
        rs_buf_reset(&w->tmp);
        int rc = dcm_charset_decode(&cs, e->vr, e->v.bytes, e->len, &w->tmp, NULL);
        if (rc)
            return rc;
        *s = w->tmp.p ? w->tmp.p : (const uint8_t *)"";
        *n = w->tmp.len;
    } else {
        *s = e->v.bytes;
        *n = e->len;
        *latin1 = 1;
    }
    return RS_OK;
}

static int is_space_or_nul(uint8_t c) { return c == ' ' || c == '\0'; }

/* A name made only of group separators and padding ("==") has no component to write. */
static int pn_is_empty(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '=' && s[i] != ' ')
            return 0;
    return 1;
}

/* An IS value must be an integer to be written as a JSON number. */
static int is_integer_text(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    size_t digits = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    while (i < n && s[i] == ' ')
        i++;
    return digits > 0 && i == n;
}

/* Write the "Value" array of a string VR: split on backslash (except free text), trim padding. */
static int write_strings(jw *w, const dcm_ds *ds, const dcm_elem *e)
{
    const uint8_t *s;
    size_t n;
    int latin1, rc = text_of(w, ds, e, &s, &n, &latin1);
    if (rc)
        return rc;
    const dcm_vr_info *vi = dcm_vr_info_get(e->vr);
    int multi = vi && vi->kind == DCM_VK_STRING;
    while (n && is_space_or_nul(s[n - 1]))
        n--;
    if (n == 0)
        return 1; /* empty: no Value */
    rs_buf *b = w->out;
    rc = rs_buf_puts(b, ",\"Value\":[");
    const uint8_t *p = s, *end = s + n;
    int first = 1;
    while (rc == RS_OK) {
        const uint8_t *q = multi ? memchr(p, '\\', (size_t)(end - p)) : NULL;
        const uint8_t *ve = q ? q : end;
        const uint8_t *vs = p;
        size_t vn = (size_t)(ve - vs);
        while (vn && is_space_or_nul(vs[vn - 1]))
            vn--;
        if (!first)
            rs_buf_putc(b, ',');
        first = 0;
        if (e->vr == DCM_VR_DS || e->vr == DCM_VR_IS) {
            if (vn == 0 || (e->vr == DCM_VR_IS && !is_integer_text(vs, vn)) ||
                !put_json_number(b, (const char *)vs, vn))
                rc = vn == 0 ? rs_buf_puts(b, "null") : put_json_str(b, vs, vn, latin1);
        } else if (e->vr == DCM_VR_PN) {
            if (vn == 0 || pn_is_empty(vs, vn)) {
                rc = rs_buf_puts(b, "null");
            } else {
                static const char *const groups[] = {"Alphabetic", "Ideographic", "Phonetic"};
                rc = rs_buf_putc(b, '{');
                const uint8_t *gp = vs, *gend = vs + vn;
                int gfirst = 1;
                for (int g = 0; g < 3 && rc == RS_OK; g++) {
                    const uint8_t *eq = memchr(gp, '=', (size_t)(gend - gp));
                    const uint8_t *ge = eq ? eq : gend;
                    size_t gn = (size_t)(ge - gp);
                    while (gn && is_space_or_nul(gp[gn - 1]))
                        gn--;
                    if (gn) {
                        rc = rs_buf_printf(b, "%s\"%s\":", gfirst ? "" : ",", groups[g]);
                        if (rc == RS_OK)
                            rc = put_json_str(b, gp, gn, latin1);
                        gfirst = 0;
                    }
                    if (!eq)
                        break;
                    gp = eq + 1;
                }
                if (rc == RS_OK)
                    rc = rs_buf_putc(b, '}');
            }
        } else {
            rc = vn == 0 ? rs_buf_puts(b, "null") : put_json_str(b, vs, vn, latin1);
        }
        if (!q)
            break;
        p = q + 1;
    }
    return rc ? rc : rs_buf_putc(b, ']');
}

static int write_numbers(jw *w, const dcm_elem *e)
{
    unsigned vm = dcm_elem_vm(e);
    if (vm == 0)
        return 1;
    int rc = rs_buf_puts(w->out, ",\"Value\":[");
    for (unsigned i = 0; i < vm && rc == RS_OK; i++) {
        double d;
        int64_t iv;
        if (i)
            rs_buf_putc(w->out, ',');
        dcm_elem_num(e, i, &d, &iv);
        if (e->vr == DCM_VR_AT)
            rc = rs_buf_printf(w->out, "\"%08llX\"", (unsigned long long)(uint32_t)iv);
        else if (e->vr == DCM_VR_FL || e->vr == DCM_VR_FD)
            rc = put_double(w->out, d);
        else if (e->vr == DCM_VR_UV)
            rc = rs_buf_printf(w->out, "%llu", (unsigned long long)iv);
        else
            rc = rs_buf_printf(w->out, "%lld", (long long)iv);
    }
    return rc ? rc : rs_buf_putc(w->out, ']');
}

static int write_binary(jw *w, const dcm_ds *ds, const dcm_elem *e)
{
    int encaps = (e->flags & DCM_EF_ENCAPS) != 0;
    if (!encaps && e->len == 0)
        return 1;
    uint64_t size = e->len;
    if (encaps) {
        size = 0;
        for (uint32_t k = 0; k < e->v.px.n; k++)
            size += 8 + (uint64_t)e->v.px.frags[k].len;
    }
    if (w->o->bulk && size > w->o->inline_max) {
        int rc = rs_buf_puts(w->out, ",\"BulkDataURI\":\"");
        if (rc == RS_OK)
            rc = w->o->bulk(w->o->bulk_ctx, ds, e, w->out);
        return rc ? rc : rs_buf_putc(w->out, '"');
    }
    int rc = (e->flags & DCM_EF_BULK) ? dcm_file_load(ds->file, (dcm_elem *)e, w->err) : RS_OK;
    if (rc == RS_OK)
        rc = rs_buf_puts(w->out, ",\"InlineBinary\":");
    if (rc)
        return rc;
    if (!encaps)
        return put_base64(w->out, e->v.bytes, e->len);
    /* inline encapsulated data: the item stream as encoded, up to the delimiter (as pydicom and DCMTK do) */
    rs_buf raw = RS_BUF_INIT;
    for (uint32_t k = 0; k < e->v.px.n && rc == RS_OK; k++) {
        const dcm_frag *fr = &e->v.px.frags[k];
        uint8_t hdr[8] = {0xFE, 0xFF, 0x00, 0xE0, (uint8_t)fr->len, (uint8_t)(fr->len >> 8),
                          (uint8_t)(fr->len >> 16), (uint8_t)(fr->len >> 24)};
        rc = rs_buf_append(&raw, hdr, 8);
        if (rc == RS_OK)
            rc = rs_buf_append(&raw, fr->bytes ? fr->bytes : (const uint8_t *)"", fr->bytes ? fr->len : 0);
    }
    if (rc == RS_OK)
        rc = put_base64(w->out, raw.p, raw.len);
    rs_buf_free(&raw);
    return rc;
}

static int write_elem(jw *w, const dcm_ds *ds, const dcm_elem *e, int depth)
{
    char vr[3];
    dcm_vr_str(e->vr, vr);
    int rc = rs_buf_printf(w->out, "\"%08X\":{\"vr\":\"%s\"", e->tag, vr);
    if (rc)
        return rc;
    if (e->vr == DCM_VR_SQ) {
        if (e->v.sq.n) {
            rc = rs_buf_puts(w->out, ",\"Value\":[");
            for (uint32_t k = 0; k < e->v.sq.n && rc == RS_OK; k++) {
                if (k)
                    rs_buf_putc(w->out, ',');
                rc = indent(w, depth + 2);
                if (rc == RS_OK)
                    rc = write_ds(w, e->v.sq.items[k], depth + 2);
            }
            if (rc == RS_OK)
                rc = rs_buf_putc(w->out, ']');
        }
        return rc ? rc : rs_buf_putc(w->out, '}');
    }
    const dcm_vr_info *vi = dcm_vr_info_get(e->vr);
    int kind = vi ? vi->kind : DCM_VK_BINARY;
    if ((e->flags & DCM_EF_BULK) && kind != DCM_VK_BINARY) {
        rc = dcm_file_load(ds->file, (dcm_elem *)e, w->err);
        if (rc)
            return rc;
    }
    switch (kind) {
    case DCM_VK_STRING:
    case DCM_VK_TEXT: rc = write_strings(w, ds, e); break;
    case DCM_VK_NUMBER:
    case DCM_VK_AT: rc = write_numbers(w, e); break;
    default: rc = write_binary(w, ds, e); break;
    }
    if (rc < 0)
        return rc;
    return rs_buf_putc(w->out, '}');
}

static int write_ds(jw *w, const dcm_ds *ds, int depth)
{
    int rc = rs_buf_putc(w->out, '{');
    for (uint32_t i = 0; i < ds->n && rc == RS_OK; i++) {
        if (i)
            rs_buf_putc(w->out, ',');
        rc = indent(w, depth + 1);
        if (rc == RS_OK)
            rc = write_elem(w, ds, &ds->e[i], depth + 1);
    }
    if (rc == RS_OK && ds->n)
        rc = indent(w, depth);
    return rc ? rc : rs_buf_putc(w->out, '}');
}

int dcm_json_write(const dcm_ds *ds, const dcm_json_opts *o, rs_buf *out, rs_err *err)
{
    static const dcm_json_opts defaults = {.inline_max = UINT32_MAX};
    jw w = {.o = o ? o : &defaults, .out = out, .err = err, .tmp = RS_BUF_INIT};
    int rc = write_ds(&w, ds, 0);
    rs_buf_free(&w.tmp);
    if (rc == RS_ENOMEM)
        rs_err_set(err, rc, "out of memory writing JSON");
    return rc;
}
