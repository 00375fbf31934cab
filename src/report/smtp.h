/*
 * smtp.h - the report e-mail: an RFC 5322 message built here, sent through the configured SMTP
 * relay with libcurl (STARTTLS whenever the relay offers it).
 *
 * The message is multipart/alternative, a text/plain and a text/html part, both UTF-8 in
 * base64, both carrying the link. In the HTML part everything that comes from outside (report
 * text, patient name, procedure, recipient name) is HTML-escaped; the link must be http(s).
 *
 * There is deliberately no way to pass a share's access code: report_mail has no field that
 * could hold one, so the code cannot travel in the same message as the link.
 */
#ifndef REPORT_SMTP_H
#define REPORT_SMTP_H

#include <stdatomic.h>
#include <stddef.h>

#include "../util/buf.h"
#include "../util/err.h"

typedef struct report_mail {
    const char *from;          /* addr-spec of the sender (--mail-from) */
    const char *from_name;     /* NULL: "radshare" */
    const char *to, *to_name;  /* to_name may be empty */
    const char *patient_name;  /* DICOM PN (shown as "Given Family") */
    const char *procedure;     /* StudyDescription, may be empty */
    const char *study_date;    /* YYYYMMDD, may be empty */
    const char *text;          /* the report as stored (it already holds the link sentence) */
    const char *link_url;
    const char *message_id;    /* local part of Message-ID: the same on every retry */
    long long date_s;          /* Date: header, seconds since the epoch */
} report_mail;

int report_mail_build(const report_mail *m, rs_buf *out, rs_err *err);

/* Append s as a header value: as is when plain ASCII, else RFC 2047 encoded words, folded. */
int report_mail_encode_header(rs_buf *out, const char *s, size_t first_line_used);
/* Append s HTML-escaped (& < > " ') */
int report_html_escape(rs_buf *out, const char *s);
/* "DUPONT^Jean^^Dr" -> "Dr Jean DUPONT" */
void report_pn_display(const char *pn, char *out, size_t cap);

typedef struct report_smtp {
    const char *url;           /* smtp://HOST:PORT or smtps://... */
    const char *ca_file;       /* CA certificates to verify the relay's (NULL: the system's) */
    int timeout_ms;
} report_smtp;

/*
 * Send one message. *permanent is set when the relay refused it for good (a 5xx answer): the
 * outbox stops retrying then. Needs curl_global_init (the outbox calls it).
 */
int report_smtp_send(const report_smtp *c, const char *from, const char *to, const void *msg, size_t n,
                     atomic_int *stop, int *permanent, rs_err *err);

#endif
