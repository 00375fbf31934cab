/*
 * outbox.h - the worker that delivers queued reports (table report_outbox, see report.h).
 *
 * One thread. It takes due rows one at a time (claiming each with a lease, so two processes on
 * the same data directory never send the same row at once), sends by e-mail or HL7/MLLP, and
 * records the outcome: sent; or a retry at now + back-off (exponential from retry_base, capped
 * at retry_cap, with jitter: a random 50-100 % of the step, so many queued messages to a relay
 * that comes back do not all retry in the same second); or failed when the receiver refused the
 * message for good (SMTP 5xx, HL7 AR/CR) or max_attempts is reached. A cancelled row is never
 * sent again. Rows are the state: after a crash or restart, pending rows are simply picked up
 * (a claim whose process died expires after its lease).
 *
 * Delivery is at least once: a crash between the relay's acceptance and the row's update sends
 * the message again on restart, with the same Message-ID / MSH-10 so the receiver can tell.
 */
#ifndef REPORT_OUTBOX_H
#define REPORT_OUTBOX_H

#include <stdint.h>

#include "../util/err.h"

typedef struct report_outbox_config {
    const char *datadir;
    const char *smtp_url;             /* smtp://HOST:PORT; NULL: e-mail deliveries wait */
    const char *mail_from;            /* sender address */
    const char *smtp_ca_file;         /* CA file for the relay's STARTTLS certificate; NULL: system CAs */
    const char *hl7_sending_app;      /* MSH-3; NULL: RADSHARE */
    const char *hl7_sending_facility; /* MSH-4; NULL: RADSHARE */
    int timeout_ms;                   /* one attempt; 0: 30 s */
    int retry_base_ms;                /* first back-off; 0: 30 s */
    int retry_cap_ms;                 /* longest back-off; 0: 1 h */
    int max_attempts;                 /* 0: until sent or cancelled */
    int poll_ms;                      /* how often to look for rows queued by other processes; 0: 5 s */
} report_outbox_config;

typedef struct report_outbox report_outbox;

/* Open the state database and start the worker thread. */
int report_outbox_start(const report_outbox_config *c, report_outbox **out, rs_err *err);
/* A report was just queued: look now rather than at the next poll. */
void report_outbox_kick(report_outbox *ob);
/* Stop: an exchange in progress is abandoned (its row stays pending, not counted as an attempt),
 * the thread is joined, everything freed. NULL is fine. */
void report_outbox_stop(report_outbox *ob);

/* The delay before attempt number `attempt` + 1 (attempt >= 1 failures so far); r in [0, 1). */
int64_t report_outbox_backoff_ms(int base_ms, int cap_ms, int attempt, double r);

#endif
