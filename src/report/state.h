/*
 * state.h - what report.c and outbox.c share inside the module: the connection to
 * DATA/state.sqlite and the clock. Not for other modules (they use report.h / outbox.h).
 */
#ifndef REPORT_STATE_H
#define REPORT_STATE_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "../util/err.h"

struct report_db {
    sqlite3 *db;
    pthread_mutex_t mu;   /* one transaction at a time on this connection */
};

/* Wall clock in milliseconds since the epoch (what next_attempt is compared with). */
int64_t report_now_ms(void);
/* "2026-12-04T13:23:55Z" */
void report_iso_time(int64_t ms, char out[32]);
/* Run SQL with no result rows; RS_EIO with sqlite's message. */
int report_sql_exec(sqlite3 *db, const char *sql, rs_err *err);
/* Prepare, or RS_EIO with sqlite's message. */
int report_sql_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, rs_err *err);
/* Fill n random bytes from the OS; RS_EIO when it cannot. */
int report_random(void *p, size_t n);

#endif
