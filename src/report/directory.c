/*
 * directory.c - recipients directory parser and lookup (see directory.h). A linear scan: a
 * directory is a few thousand practitioners at most, read once at start.
 */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/fdio.h"
#include "directory.h"

typedef struct dir_entry {
    char key[324];
    report_recipient r;
} dir_entry;

struct report_directory {
    dir_entry *e;
    size_t n, cap;
};

void report_pn_key(const char *pn, char *out, size_t cap)
{
    size_t o = 0, keep = 0;   /* keep: length up to the last non-empty component */
    const char *p = pn ? pn : "";
    const char *end = strchr(p, '=');
    if (!end)
        end = p + strlen(p);
    while (p < end && o + 1 < cap) {
        const char *c = memchr(p, '^', (size_t)(end - p));
        const char *ce = c ? c : end;
        while (p < ce && *p == ' ')
            p++;
        const char *te = ce, *cs = p;
        while (te > p && te[-1] == ' ')
            te--;
        for (; p < te && o + 1 < cap; p++)
            out[o++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        if (te > cs)   /* a non-empty component ends here */
            keep = o;
        if (!c)
            break;
        if (o + 1 < cap)
            out[o++] = '^';
        p = c + 1;
    }
    out[keep] = 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

static int set_field(report_recipient *r, const char *key, const char *val)
{
    struct { const char *name; char *dst; size_t cap; } f[] = {
        {"name", r->name, sizeof r->name},         {"email", r->email, sizeof r->email},
        {"hl7", r->hl7, sizeof r->hl7},            {"hl7_application", r->hl7_app, sizeof r->hl7_app},
        {"hl7_facility", r->hl7_facility, sizeof r->hl7_facility}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (strcmp(key, f[i].name))
            continue;
        size_t n = strlen(val);
        if (n >= f[i].cap)
            return RS_ELIMIT;
        memcpy(f[i].dst, val, n + 1);
        return RS_OK;
    }
    return RS_ENOTFOUND;
}

static int add_entry(report_directory *d, const char *pn, rs_err *err, int lineno)
{
    if (d->n == REPORT_DIR_MAX_ENTRIES)
        return rs_err_set(err, RS_ELIMIT, "line %d: more than %d entries", lineno, REPORT_DIR_MAX_ENTRIES);
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        dir_entry *e = realloc(d->e, cap * sizeof *e);
        if (!e)
            return rs_err_set(err, RS_ENOMEM, "out of memory");
        d->e = e;
        d->cap = cap;
    }
    dir_entry *e = &d->e[d->n++];
    memset(e, 0, sizeof *e);
    report_pn_key(pn, e->key, sizeof e->key);
    if (!e->key[0])
        return rs_err_set(err, RS_EFORMAT, "line %d: empty name in [ ]", lineno);
    return RS_OK;
}

int report_dir_parse(const char *text, size_t n, report_directory **out, rs_err *err)
{
    *out = NULL;
    if (n > REPORT_DIR_MAX_BYTES)
        return rs_err_set(err, RS_ELIMIT, "directory larger than %d bytes", REPORT_DIR_MAX_BYTES);
    report_directory *d = calloc(1, sizeof *d);
    char *copy = malloc(n + 1);
    int rc = RS_OK, lineno = 0;
    if (!d || !copy) {
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(copy, text, n);
    copy[n] = 0;
    for (char *line = copy, *next; !rc && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        lineno++;
        char *hash = strchr(line, '#');
        if (hash && line[0] != '[')   /* in a [PN] header '#' is not special */
            *hash = 0;
        char *l = trim(line);
        if (!*l)
            continue;
        if (*l == '[') {
            char *close = strrchr(l, ']');
            const char *rest = close ? trim(close + 1) : NULL;
            if (!rest || (*rest && *rest != '#')) {
                rc = rs_err_set(err, RS_EFORMAT, "line %d: expected [NAME]", lineno);
                break;
            }
            *close = 0;
            rc = add_entry(d, l + 1, err, lineno);
            continue;
        }
        char *eq = strchr(l, '=');
        if (!eq || !d->n) {
            rc = rs_err_set(err, RS_EFORMAT, "line %d: expected key = value inside a [NAME] block", lineno);
            break;
        }
        *eq = 0;
        int r = set_field(&d->e[d->n - 1].r, trim(l), trim(eq + 1));
        if (r == RS_ENOTFOUND)
            rc = rs_err_set(err, RS_EFORMAT, "line %d: unknown key '%s'", lineno, trim(l));
        else if (r)
            rc = rs_err_set(err, RS_ELIMIT, "line %d: value too long", lineno);
    }
    for (size_t i = 0; !rc && i < d->n; i++)
        if (!d->e[i].r.email[0] && !d->e[i].r.hl7[0])
            rc = rs_err_set(err, RS_EFORMAT, "entry [%s] has neither email nor hl7", d->e[i].key);
out:
    free(copy);
    if (rc) {
        report_dir_free(d);
        d = NULL;
    }
    *out = d;
    return rc;
}

int report_dir_load(const char *path, report_directory **out, rs_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rs_err_set(err, RS_EIO, "%s: %s", path, strerror(errno));
    struct stat sb;
    int rc = RS_OK;
    char *text = NULL;
    if (fstat(fd, &sb) < 0) {
        rc = rs_err_set(err, RS_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (sb.st_size > REPORT_DIR_MAX_BYTES) {
        rc = rs_err_set(err, RS_ELIMIT, "%s: larger than %d bytes", path, REPORT_DIR_MAX_BYTES);
        goto out;
    }
    text = malloc((size_t)sb.st_size + 1);
    if (!text) {
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
        goto out;
    }
    if (rs_pread_all(fd, text, (size_t)sb.st_size, 0)) {
        rc = rs_err_set(err, RS_EIO, "%s: read failed", path);
        goto out;
    }
    rc = report_dir_parse(text, (size_t)sb.st_size, out, err);
    if (rc) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
        rs_err_set(err, rc, "%s: %s", path, msg);
    }
out:
    free(text);
    close(fd);
    return rc;
}

void report_dir_free(report_directory *d)
{
    if (!d)
        return;
    free(d->e);
    free(d);
}

size_t report_dir_count(const report_directory *d)
{
    return d ? d->n : 0;
}

int report_dir_lookup(const report_directory *d, const char *pn, report_recipient *out)
{
    char key[324];
    report_pn_key(pn, key, sizeof key);
    if (!d || !key[0])
        return RS_ENOTFOUND;
    for (size_t i = 0; i < d->n; i++)
        if (!strcmp(d->e[i].key, key)) {
            *out = d->e[i].r;
            return RS_OK;
        }
    return RS_ENOTFOUND;
}
