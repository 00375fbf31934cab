/*
 * multipart.c - streaming multipart parser (see multipart.h).
 *
 * The delimiter is CRLF "--" boundary. A boundary cannot contain CR (RFC 2046 5.1.1), so the
 * only place a failed partial match can restart is a CR: the scan holds at most the matched
 * prefix of the delimiter, and on a mismatch gives those bytes back as data. The body is
 * treated as if preceded by CRLF, so a delimiter at the very start is found too.
 */
#include "multipart.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../util/err.h"

enum { S_PREAMBLE, S_AFTER_DELIM, S_HEADERS, S_BODY, S_DONE, S_ERROR };

struct mp_parser {
    mp_callbacks cb;
    void *ctx;
    char delim[MP_MAX_BOUNDARY + 5];
    size_t dlen, matched;
    int state;
    char tail[2];
    size_t ntail;
    char hdr[MP_MAX_HEADERS + 1];
    size_t nhdr;
};

int mp_parser_new(const char *boundary, const mp_callbacks *cb, void *ctx, mp_parser **out)
{
    size_t n = strlen(boundary);
    if (n == 0 || n > MP_MAX_BOUNDARY || strchr(boundary, '\r'))
        return RS_EINVAL;
    mp_parser *m = calloc(1, sizeof *m);
    if (!m)
        return RS_ENOMEM;
    m->cb = *cb;
    m->ctx = ctx;
    memcpy(m->delim, "\r\n--", 4);
    memcpy(m->delim + 4, boundary, n);
    m->dlen = n + 4;
    m->matched = 2; /* the virtual CRLF before the body */
    m->state = S_PREAMBLE;
    *out = m;
    return RS_OK;
}

void mp_parser_free(mp_parser *m)
{
    free(m);
}

int mp_parser_done(const mp_parser *m)
{
    return m->state == S_DONE;
}

int mp_parser_in_part(const mp_parser *m)
{
    return m->state == S_BODY;
}

static int emit(mp_parser *m, const uint8_t *p, size_t n)
{
    return m->state == S_BODY && n ? m->cb.part_data(m->ctx, p, n) : RS_OK;
}

/* Scan for the delimiter; data before it goes out. *found set when it ended at p[*used - 1]. */
static int scan(mp_parser *m, const uint8_t *p, size_t n, size_t *used, int *found)
{
    size_t i = 0, span = 0;
    int rc = RS_OK;
    *found = 0;
    while (i < n && rc == RS_OK) {
        if (m->matched == 0) {
            const uint8_t *cr = memchr(p + i, '\r', n - i);
            if (!cr) {
                i = n;
                break;
            }
            i = (size_t)(cr - p);
            rc = emit(m, p + span, i - span);
            m->matched = 1;
            span = ++i;
        } else if (p[i] == (uint8_t)m->delim[m->matched]) {
            span = ++i;
            if (++m->matched == m->dlen) {
                m->matched = 0;
                *used = i;
                *found = 1;
                return RS_OK;
            }
        } else {
            rc = emit(m, (const uint8_t *)m->delim, m->matched);
            m->matched = 0;
            span = i;
        }
    }
    if (rc == RS_OK)
        rc = emit(m, p + span, n - span);
    *used = n;
    return rc;
}

/* After a delimiter: "--" ends the body, CRLF (after optional blanks) starts a part. */
static int after_delim(mp_parser *m, uint8_t c)
{
    if (m->ntail == 0 && (c == ' ' || c == '\t'))
        return RS_OK;
    m->tail[m->ntail++] = (char)c;
    if (m->ntail < 2)
        return RS_OK;
    m->ntail = 0;
    if (m->tail[0] == '-' && m->tail[1] == '-') {
        m->state = S_DONE;
        return RS_OK;
    }
    if (m->tail[0] != '\r' || m->tail[1] != '\n')
        return RS_EFORMAT;
    m->state = S_HEADERS;
    m->nhdr = 0;
    return RS_OK;
}

static int header_byte(mp_parser *m, uint8_t c)
{
    if (m->nhdr == MP_MAX_HEADERS)
        return RS_EFORMAT;
    m->hdr[m->nhdr++] = (char)c;
    int empty = m->nhdr == 2 && !memcmp(m->hdr, "\r\n", 2);
    if (!empty && !(m->nhdr >= 4 && !memcmp(m->hdr + m->nhdr - 4, "\r\n\r\n", 4)))
        return RS_OK;
    m->hdr[empty ? 0 : m->nhdr - 2] = 0;
    m->state = S_BODY;
    m->matched = 0;
    return m->cb.part_begin(m->ctx, m->hdr);
}

int mp_parser_feed(mp_parser *m, const uint8_t *p, size_t n)
{
    size_t i = 0;
    int rc = RS_OK;
    while (i < n && rc == RS_OK) {
        switch (m->state) {
        case S_PREAMBLE:
        case S_BODY: {
            size_t used;
            int found;
            rc = scan(m, p + i, n - i, &used, &found);
            i += used;
            if (rc == RS_OK && found) {
                if (m->state == S_BODY)
                    rc = m->cb.part_end(m->ctx);
                m->state = S_AFTER_DELIM;
                m->ntail = 0;
            }
            break;
        }
        case S_AFTER_DELIM:
            rc = after_delim(m, p[i++]);
            break;
        case S_HEADERS:
            rc = header_byte(m, p[i++]);
            break;
        case S_DONE:
            return RS_OK; /* epilogue */
        default:
            return RS_EFORMAT;
        }
    }
    if (rc)
        m->state = S_ERROR;
    return rc;
}

int mp_param(const char *value, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = strchr(value, ';'); p; p = strchr(p + 1, ';')) {
        const char *k = p + 1 + strspn(p + 1, " \t");
        if (strncasecmp(k, name, nl) || k[nl] != '=')
            continue;
        const char *v = k + nl + 1;
        size_t n = *v == '"' ? strcspn(++v, "\"") : strcspn(v, "; \t");
        if (n >= cap)
            return RS_EINVAL;
        memcpy(out, v, n);
        out[n] = 0;
        return RS_OK;
    }
    return RS_ENOTFOUND;
}

int mp_boundary(const char *content_type, char *out, size_t cap)
{
    int rc = mp_param(content_type, "boundary", out, cap);
    return rc == RS_OK && *out && strlen(out) <= MP_MAX_BOUNDARY ? RS_OK : RS_EINVAL;
}
