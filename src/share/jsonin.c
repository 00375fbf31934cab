/* jsonin.c - see jsonin.h. A recursive-descent reader of RFC 8259 JSON, flattened as it goes. */
#include "jsonin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/buf.h"

typedef struct rd {
    const char *p;
    size_t n, i;
    jsonin *out;
    rs_err *err;
} rd;

static int fail(rd *r, const char *what)
{
    return rs_err_at(r->err, RS_EFORMAT, r->i, "JSON: %s", what);
}

/* c is one of set; NUL never is (strchr would find the terminator: NUL passed as whitespace) */
static int one_of(char c, const char *set)
{
    return c && strchr(set, c);
}

static void ws(rd *r)
{
    while (r->i < r->n && one_of(r->p[r->i], " \t\r\n"))
        r->i++;
}

static int add(rd *r, const char *path, const char *v, size_t vn, jsonin_type t)
{
    if (r->out->n == JSONIN_MAX_ITEMS)
        return rs_err_set(r->err, RS_ELIMIT, "JSON: more than %d values", JSONIN_MAX_ITEMS);
    jsonin_item *g = realloc(r->out->items, (r->out->n + 1) * sizeof *g);
    if (!g)
        return rs_err_set(r->err, RS_ENOMEM, "out of memory");
    r->out->items = g;
    jsonin_item *it = &g[r->out->n];
    it->path = strdup(path);
    it->value = malloc(vn + 1);
    it->type = t;
    if (!it->path || !it->value) {
        free(it->path);
        free(it->value);
        return rs_err_set(r->err, RS_ENOMEM, "out of memory");
    }
    memcpy(it->value, v, vn);
    it->value[vn] = 0;
    r->out->n++;
    return RS_OK;
}

static int hex4(rd *r, unsigned *u)
{
    *u = 0;
    for (int k = 0; k < 4; k++, r->i++) {
        char c = r->i < r->n ? r->p[r->i] : 0;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return fail(r, "bad \\u escape");
        *u = *u * 16 + (unsigned)d;
    }
    return RS_OK;
}

static int put_utf8(rs_buf *b, unsigned u)
{
    if (u < 0x80)
        return rs_buf_putc(b, (int)u);
    if (u < 0x800)
        return rs_buf_putc(b, 0xC0 | (u >> 6)) || rs_buf_putc(b, 0x80 | (u & 0x3F));
    if (u < 0x10000)
        return rs_buf_putc(b, 0xE0 | (u >> 12)) || rs_buf_putc(b, 0x80 | ((u >> 6) & 0x3F)) ||
               rs_buf_putc(b, 0x80 | (u & 0x3F));
    return rs_buf_putc(b, 0xF0 | (u >> 18)) || rs_buf_putc(b, 0x80 | ((u >> 12) & 0x3F)) ||
           rs_buf_putc(b, 0x80 | ((u >> 6) & 0x3F)) || rs_buf_putc(b, 0x80 | (u & 0x3F));
}

static int string(rd *r, rs_buf *b)
{
    rs_buf_reset(b);
    if (rs_buf_reserve(b, 1))
        return RS_ENOMEM;
    b->p[0] = 0;
    r->i++; /* the quote */
    while (r->i < r->n) {
        unsigned char c = (unsigned char)r->p[r->i++];
        if (c == '"')
            return RS_OK;
        if (c < 0x20)
            return fail(r, "control character in a string");
        if (c != '\\') {
            if (rs_buf_putc(b, c))
                return RS_ENOMEM;
            continue;
        }
        char e = r->i < r->n ? r->p[r->i++] : 0;
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *k = e ? strchr(from, e) : NULL;
        unsigned u;
        if (k) {
            if (rs_buf_putc(b, to[k - from]))
                return RS_ENOMEM;
        } else if (e == 'u') {
            if (hex4(r, &u))
                return RS_EFORMAT;
            if (u >= 0xD800 && u < 0xDC00 && r->i + 1 < r->n && r->p[r->i] == '\\' && r->p[r->i + 1] == 'u') {
                unsigned lo;
                r->i += 2;
                if (hex4(r, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return fail(r, "bad surrogate pair");
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            } else if (u >= 0xD800 && u < 0xE000) {
                return fail(r, "lone surrogate");
            }
            if (u == 0)
                return fail(r, "NUL in a string");
            if (put_utf8(b, u))
                return RS_ENOMEM;
        } else {
            return fail(r, "bad escape");
        }
    }
    return fail(r, "unterminated string");
}

static int value(rd *r, const char *path, int depth);

static int object(rd *r, const char *path, int depth)
{
    rs_buf key = RS_BUF_INIT, sub = RS_BUF_INIT;
    int rc = RS_OK;
    r->i++;
    ws(r);
    if (r->i < r->n && r->p[r->i] == '}') {
        r->i++;
        return RS_OK;
    }
    for (;;) {
        ws(r);
        if (r->i >= r->n || r->p[r->i] != '"') {
            rc = fail(r, "expected a member name");
            break;
        }
        if ((rc = string(r, &key)))
            break;
        ws(r);
        if (r->i >= r->n || r->p[r->i++] != ':') {
            rc = fail(r, "expected ':'");
            break;
        }
        rs_buf_reset(&sub);
        if (rs_buf_printf(&sub, "%s%s%s", path, path[0] ? "." : "", (const char *)key.p)) {
            rc = RS_ENOMEM;
            break;
        }
        if ((rc = value(r, (const char *)sub.p, depth + 1)))
            break;
        ws(r);
        if (r->i < r->n && r->p[r->i] == ',') {
            r->i++;
            continue;
        }
        if (r->i < r->n && r->p[r->i] == '}') {
            r->i++;
            break;
        }
        rc = fail(r, "expected ',' or '}'");
        break;
    }
    rs_buf_free(&key);
    rs_buf_free(&sub);
    return rc;
}

static int array(rd *r, const char *path, int depth)
{
    r->i++;
    ws(r);
    if (r->i < r->n && r->p[r->i] == ']') {
        r->i++;
        return RS_OK;
    }
    for (;;) {
        int rc = value(r, path, depth + 1);
        if (rc)
            return rc;
        ws(r);
        char c = r->i < r->n ? r->p[r->i++] : 0;
        if (c == ']')
            return RS_OK;
        if (c != ',')
            return fail(r, "expected ',' or ']'");
    }
}

static int value(rd *r, const char *path, int depth)
{
    ws(r);
    if (depth > 4)
        return rs_err_set(r->err, RS_ELIMIT, "JSON: nested too deep");
    if (r->i >= r->n)
        return fail(r, "value expected");
    char c = r->p[r->i];
    if (c == '{')
        return object(r, path, depth);
    if (c == '[')
        return array(r, path, depth);
    if (c == '"') {
        rs_buf b = RS_BUF_INIT;
        int rc = string(r, &b);
        rc = rc ? rc : add(r, path, (const char *)b.p, b.len, JSONIN_STRING);
        rs_buf_free(&b);
        return rc;
    }
    static const struct {
        const char *w;
        jsonin_type t;
    } lits[] = {{"true", JSONIN_BOOL}, {"false", JSONIN_BOOL}, {"null", JSONIN_NULL}};
    for (size_t k = 0; k < 3; k++) {
        size_t l = strlen(lits[k].w);
        if (r->n - r->i >= l && !memcmp(r->p + r->i, lits[k].w, l)) {
            r->i += l;
            return add(r, path, lits[k].w, l, lits[k].t);
        }
    }
    size_t s = r->i;
    while (r->i < r->n && one_of(r->p[r->i], "-+.eE0123456789"))
        r->i++;
    if (r->i == s || r->i - s > 40)
        return fail(r, "bad value");
    char num[48];
    memcpy(num, r->p + s, r->i - s);
    num[r->i - s] = 0;
    char *end;
    strtod(num, &end);
    if (*end)
        return fail(r, "bad number");
    return add(r, path, num, r->i - s, JSONIN_NUMBER);
}

int jsonin_parse(const char *text, size_t n, jsonin *out, rs_err *err)
{
    rd r = {text, n, 0, out, err};
    memset(out, 0, sizeof *out);
    ws(&r);
    if (r.i >= n || text[r.i] != '{')
        return fail(&r, "the body must be a JSON object");
    int rc = value(&r, "", 0);
    ws(&r);
    if (rc == RS_OK && r.i != n)
        rc = fail(&r, "text after the object");
    if (rc)
        jsonin_free(out);
    return rc;
}

void jsonin_free(jsonin *j)
{
    for (size_t i = 0; i < j->n; i++) {
        free(j->items[i].path);
        free(j->items[i].value);
    }
    free(j->items);
    memset(j, 0, sizeof *j);
}

const jsonin_item *jsonin_get(const jsonin *j, const char *path)
{
    for (size_t i = 0; i < j->n; i++)
        if (!strcmp(j->items[i].path, path))
            return &j->items[i];
    return NULL;
}

const char *jsonin_str(const jsonin *j, const char *path)
{
    const jsonin_item *it = jsonin_get(j, path);
    return it && it->type == JSONIN_STRING ? it->value : NULL;
}

int jsonin_true(const jsonin *j, const char *path)
{
    const jsonin_item *it = jsonin_get(j, path);
    return it && it->type == JSONIN_BOOL && !strcmp(it->value, "true");
}
