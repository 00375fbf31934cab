/*
 * progress.h - progress of a long command (verify, reindex, backup, restore, import, export) on
 * stderr: a bar redrawn in place with rate and ETA when stderr is a terminal, a plain log line
 * every few seconds otherwise (cron, CI logs), and one closing line either way.
 */
#ifndef RS_PROGRESS_H
#define RS_PROGRESS_H

#include <stdint.h>

typedef struct rs_progress {
    char label[32];
    uint64_t total;        /* items expected; 0 = unknown (no bar, no ETA) */
    uint64_t done;
    uint64_t bytes;
    int64_t start_ns, last_ns;
    int tty;               /* stderr is a terminal */
    int quiet;             /* print nothing */
} rs_progress;

void rs_progress_begin(rs_progress *p, const char *label, uint64_t total, int quiet);
/* Count n more items of `bytes` bytes; redraws at most 10 times a second (every 5 s off a tty). */
void rs_progress_add(rs_progress *p, uint64_t n, uint64_t bytes);
void rs_progress_set_total(rs_progress *p, uint64_t total);
/* The closing line: count, bytes, elapsed time, rate. */
void rs_progress_end(rs_progress *p);

#endif
