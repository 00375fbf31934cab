/*
 * smtp.c - report e-mail building and sending (see smtp.h).
 *
 * base64 rather than quoted-printable for the bodies: it is one small loop, has no line-ending
 * or trailing-space rules to get wrong, and every mail client decodes it.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "smtp.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int base64(rs_buf *out, const unsigned char *p, size_t n)
{
    int rc = RS_OK;
    for (size_t i = 0; !rc && i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {b64[v >> 18 & 63], b64[v >> 12 & 63], i + 1 < n ? b64[v >> 6 & 63] : '=',
                     i + 2 < n ? b64[v & 63] : '='};
        rc = rs_buf_append(out, q, 4);
    }
    return rc;
}

/* A body part in base64, 76 characters a line. */
static int base64_lines(rs_buf *out, const char *s, size_t n)
{
    int rc = RS_OK;
    for (size_t i = 0; !rc && i < n; i += 57)
        rc = base64(out, (const unsigned char *)s + i, n - i < 57 ? n - i : 57) || rs_buf_puts(out, "\r\n");
    return rc ? RS_ENOMEM : RS_OK;
}

#define MAIL_MAX_ADDRESS 254
#define MAIL_MAX_QUOTED 200

static int is_ascii_plain(const char *s)
{
    if (strstr(s, "=?"))
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s >= 0x7f || (unsigned char)*s < 0x20)
            return 0;
    return 1;
}

/* s as RFC 2047 encoded words, one per folded line. */
static int encoded_words(rs_buf *out, const char *s)
{
    size_t n = strlen(s);
    /* encoded words of at most 45 bytes (60 base64 characters, 72 with the wrapper), cut on UTF-8
     * character boundaries, one per folded line */
    int rc = RS_OK;
    size_t i = 0;
    while (!rc && i < n) {
        size_t k = n - i < 45 ? n - i : 45;
        while (k > 1 && i + k < n && ((unsigned char)s[i + k] & 0xC0) == 0x80)
            k--;
        rc = rs_buf_puts(out, i ? "\r\n =?UTF-8?B?" : "=?UTF-8?B?") ||
             base64(out, (const unsigned char *)s + i, k) || rs_buf_puts(out, "?=");
        i += k;
    }
    return rc ? RS_ENOMEM : RS_OK;
}

int report_mail_encode_header(rs_buf *out, const char *s, size_t used)
{
    if (is_ascii_plain(s) && used + strlen(s) <= 998)
        return rs_buf_puts(out, s) ? RS_ENOMEM : RS_OK;
    return encoded_words(out, s);
}

int report_html_escape(rs_buf *out, const char *s)
{
    int rc = RS_OK;
    for (; !rc && s && *s; s++) {
        switch (*s) {
        case '&': rc = rs_buf_puts(out, "&amp;"); break;
        case '<': rc = rs_buf_puts(out, "&lt;"); break;
        case '>': rc = rs_buf_puts(out, "&gt;"); break;
        case '"': rc = rs_buf_puts(out, "&quot;"); break;
        case '\'': rc = rs_buf_puts(out, "&#39;"); break;
        case '\r': break;
        case '\n': rc = rs_buf_puts(out, "<br>\n"); break;
        default: rc = rs_buf_putc(out, *s); break;
        }
    }
    return rc ? RS_ENOMEM : RS_OK;
}

void report_pn_display(const char *pn, char *out, size_t cap)
{
    /* DICOM order: family, given, middle, prefix, suffix; shown: prefix given middle family suffix */
    static const int order[] = {3, 1, 2, 0, 4};
    const char *comp[5] = {0};
    size_t len[5] = {0};
    const char *p = pn ? pn : "", *end = strchr(p, '=');
    if (!end)
        end = p + strlen(p);
    for (int i = 0; i < 5 && p <= end; i++) {
        const char *c = memchr(p, '^', (size_t)(end - p));
        comp[i] = p;
        len[i] = (size_t)((c ? c : end) - p);
        p = c ? c + 1 : end + 1;
    }
    size_t o = 0;
    out[0] = 0;
    for (int k = 0; k < 5; k++) {
        int i = order[k];
        if (!comp[i] || !len[i])
            continue;
        int w = snprintf(out + o, cap - o, "%s%.*s", o ? " " : "", (int)len[i], comp[i]);
        if (w < 0 || (size_t)w >= cap - o)
            break;
        o += (size_t)w;
    }
}

/* "name <addr>" with the name quoted or encoded as needed. */
static int address(rs_buf *out, const char *hdr, const char *name, const char *addr)
{
    int rc = rs_buf_printf(out, "%s: ", hdr);
    if (!rc && name && *name) {
        /* a long name as encoded words too: they fold, a quoted string would not (998-byte lines) */
        if (!is_ascii_plain(name) || strlen(name) > MAIL_MAX_QUOTED) {
            rc = encoded_words(out, name); /* never bare: a plain name may hold , < > " */
        } else {
            rc = rs_buf_putc(out, '"');
            for (const char *c = name; !rc && *c; c++)
                rc = (*c == '"' || *c == '\\') ? rs_buf_putc(out, '\\') || rs_buf_putc(out, *c) : rs_buf_putc(out, *c);
            if (!rc)
                rc = rs_buf_putc(out, '"');
        }
        if (!rc)
            rc = rs_buf_putc(out, ' ');
    }
    if (!rc)
        rc = rs_buf_printf(out, "<%s>\r\n", addr);
    return rc ? RS_ENOMEM : RS_OK;
}

/* Addresses and the message id go into header lines as they are: no line break, no bracket,
   and short enough that the line stays under RFC 5322's 998 bytes (254: RFC 5321's path limit). */
static int header_safe(const char *s)
{
    return s && !strpbrk(s, "\r\n<>") && strlen(s) <= MAIL_MAX_ADDRESS;
}

static int plain_part(rs_buf *b, const report_mail *m, const char *patient)
{
    int rc = rs_buf_printf(b, "Patient: %s\n", patient);
    if (!rc && m->procedure && *m->procedure)
        rc = rs_buf_printf(b, "Examination: %s\n", m->procedure);
    /* the date comes from imported DICOM: only a real YYYYMMDD is cut up (a shorter one was read
       past its end), anything else is shown as it is */
    if (!rc && m->study_date && *m->study_date)
        rc = strlen(m->study_date) == 8 && strspn(m->study_date, "0123456789") == 8
                 ? rs_buf_printf(b, "Date: %.4s-%.2s-%.2s\n", m->study_date, m->study_date + 4, m->study_date + 6)
                 : rs_buf_printf(b, "Date: %s\n", m->study_date);
    if (!rc)
        rc = rs_buf_printf(b, "\n%s\n-- \nImages: %s\n", m->text, m->link_url);
    return rc;
}

static int html_part(rs_buf *b, const report_mail *m, const char *patient)
{
    int rc = rs_buf_puts(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Radiology report</title>"
                            "</head>\n<body style=\"font-family:sans-serif\">\n<p><b>Patient:</b> ") ||
             report_html_escape(b, patient) || rs_buf_puts(b, "</p>\n");
    if (!rc && m->procedure && *m->procedure)
        rc = rs_buf_puts(b, "<p><b>Examination:</b> ") || report_html_escape(b, m->procedure) ||
             rs_buf_puts(b, "</p>\n");
    if (!rc)
        rc = rs_buf_puts(b, "<div style=\"white-space:pre-wrap\">") || report_html_escape(b, m->text) ||
             rs_buf_puts(b, "</div>\n<p><a href=\"") || report_html_escape(b, m->link_url) ||
             rs_buf_puts(b, "\">View the images</a></p>\n<p style=\"color:#555\">") ||
             report_html_escape(b, m->link_url) || rs_buf_puts(b, "</p>\n</body></html>\n");
    return rc;
}

int report_mail_build(const report_mail *m, rs_buf *out, rs_err *err)
{
    if (!header_safe(m->from) || !header_safe(m->to) || !header_safe(m->message_id) || !strchr(m->from, '@') ||
        !strchr(m->to, '@'))
        return rs_err_set(err, RS_EINVAL, "bad sender or recipient address");
    if (strncmp(m->link_url, "https://", 8) && strncmp(m->link_url, "http://", 7))
        return rs_err_set(err, RS_EINVAL, "the link must be an http(s) URL");
    char patient[400], date[64], subject[600];
    report_pn_display(m->patient_name, patient, sizeof patient);
    time_t t = (time_t)m->date_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    snprintf(subject, sizeof subject, "Radiology report%s%s%s%s", patient[0] ? ": " : "", patient,
             m->procedure && *m->procedure ? " - " : "", m->procedure ? m->procedure : "");
    for (char *c = subject; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = ' ';
    const char *domain = strchr(m->from, '@') + 1;
    rs_buf body = RS_BUF_INIT;
    int rc = rs_buf_printf(out, "Date: %s\r\n", date) ? RS_ENOMEM : RS_OK;
    if (!rc)
        rc = address(out, "From", m->from_name ? m->from_name : "radshare", m->from);
    if (!rc)
        rc = address(out, "To", m->to_name, m->to);
    if (!rc)
        rc = rs_buf_puts(out, "Subject: ") || report_mail_encode_header(out, subject, 9) ||
                     rs_buf_printf(out, "\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n"
                                        "Content-Type: multipart/alternative; boundary=\"=_rs_%s\"\r\n"
                                        "Auto-Submitted: auto-generated\r\n\r\n"
                                        "This is a MIME message.\r\n",
                                   m->message_id, domain, m->message_id)
                 ? RS_ENOMEM : RS_OK;
    for (int part = 0; !rc && part < 2; part++) {
        rs_buf_reset(&body);
        rc = part ? html_part(&body, m, patient) : plain_part(&body, m, patient);
        if (!rc)
            rc = rs_buf_printf(out, "\r\n--=_rs_%s\r\nContent-Type: text/%s; charset=utf-8\r\n"
                                    "Content-Transfer-Encoding: base64\r\n\r\n",
                               m->message_id, part ? "html" : "plain") ||
                 base64_lines(out, (const char *)body.p, body.len);
    }
    if (!rc)
        rc = rs_buf_printf(out, "\r\n--=_rs_%s--\r\n", m->message_id);
    rs_buf_free(&body);
    return rc ? rs_err_set(err, RS_ENOMEM, "out of memory") : RS_OK;
}

/* ---- sending ------------------------------------------------------------------------------ */

typedef struct upload {
    const char *p;
    size_t left;
    atomic_int *stop;
} upload;

static size_t read_cb(char *dst, size_t size, size_t nmemb, void *arg)
{
    upload *u = arg;
    size_t n = size * nmemb < u->left ? size * nmemb : u->left;
    memcpy(dst, u->p, n);
    u->p += n;
    u->left -= n;
    return n;
}

static int progress_cb(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    upload *u = arg;
    return u->stop && atomic_load(u->stop);   /* nonzero aborts the transfer */
}

int report_smtp_send(const report_smtp *c, const char *from, const char *to, const void *msg, size_t n,
                     atomic_int *stop, int *permanent, rs_err *err)
{
    *permanent = 0;
    if (!c->url || !*c->url)
        return rs_err_set(err, RS_EINVAL, "no SMTP relay configured (--smtp)");
    CURL *h = curl_easy_init();
    if (!h)
        return rs_err_set(err, RS_ENOMEM, "curl_easy_init failed");
    char addr_from[300], addr_to[300], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(addr_from, sizeof addr_from, "<%s>", from);
    snprintf(addr_to, sizeof addr_to, "<%s>", to);
    struct curl_slist *rcpt = curl_slist_append(NULL, addr_to);
    upload u = {msg, n, stop};
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    if (c->ca_file && *c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, addr_from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(h, CURLOPT_READDATA, &u);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->timeout_ms < 10000 ? c->timeout_ms : 10000));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &u);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    int rc = RS_OK;
    CURLcode cc = rcpt ? curl_easy_perform(h) : CURLE_OUT_OF_MEMORY;
    if (cc != CURLE_OK) {
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        *permanent = code >= 500 && code < 600;
        char reply[32] = "";
        if (code)
            snprintf(reply, sizeof reply, " (reply %ld)", code);
        rc = rs_err_set(err, RS_EIO, "SMTP%s%s: %s", *permanent ? " refused" : "", reply,
                        errbuf[0] ? errbuf : curl_easy_strerror(cc));
    }
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(h);
    return rc;
}
