/*
 * progress.c - see progress.h. Time from CLOCK_MONOTONIC; nothing global.
 */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TTY_EVERY_NS 100000000LL   /* 10 redraws a second */
#define LOG_EVERY_NS 5000000000LL  /* one line every 5 s */
#define BAR_WIDTH 30

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void rs_progress_begin(rs_progress *p, const char *label, uint64_t total, int quiet)
{
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->quiet = quiet;
    p->tty = isatty(2);
    p->start_ns = p->last_ns = now_ns();
}

void rs_progress_set_total(rs_progress *p, uint64_t total)
{
    p->total = total;
}

static void fmt_duration(char *out, size_t cap, double s)
{
    unsigned long t = (unsigned long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, cap, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, cap, "%lu:%02lu", t / 60, t % 60);
}

static void draw(rs_progress *p, int64_t now)
{
    double secs = (double)(now - p->start_ns) / 1e9;
    double rate = secs > 0 ? (double)p->done / secs : 0;
    double mbs = secs > 0 ? (double)p->bytes / secs / 1e6 : 0;
    char eta[32] = "?";
    if (p->total && rate > 0 && p->done <= p->total)
        fmt_duration(eta, sizeof eta, (double)(p->total - p->done) / rate);
    if (!p->tty) {
        if (p->total)
            fprintf(stderr, "%s: %llu/%llu (%.0f%%), %.0f/s, %.1f MB/s, ETA %s\n", p->label,
                    (unsigned long long)p->done, (unsigned long long)p->total, 100.0 * p->done / p->total, rate,
                    mbs, eta);
        else
            fprintf(stderr, "%s: %llu, %.0f/s, %.1f MB/s\n", p->label, (unsigned long long)p->done, rate, mbs);
        return;
    }
    char bar[BAR_WIDTH + 1];
    unsigned fill = p->total ? (unsigned)(BAR_WIDTH * (p->done > p->total ? 1.0 : (double)p->done / p->total)) : 0;
    for (unsigned i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : (p->total ? '.' : ' ');
    bar[BAR_WIDTH] = 0;
    fprintf(stderr, "\r%s [%s] %llu/%llu %.0f/s %.1f MB/s ETA %s \033[K", p->label, bar,
            (unsigned long long)p->done, (unsigned long long)p->total, rate, mbs, eta);
}

void rs_progress_add(rs_progress *p, uint64_t n, uint64_t bytes)
{
    p->done += n;
    p->bytes += bytes;
    if (p->quiet)
        return;
    int64_t now = now_ns();
    if (now - p->last_ns < (p->tty ? TTY_EVERY_NS : LOG_EVERY_NS))
        return;
    p->last_ns = now;
    draw(p, now);
}

void rs_progress_end(rs_progress *p)
{
    if (p->quiet)
        return;
    double secs = (double)(now_ns() - p->start_ns) / 1e9;
    fprintf(stderr, "%s%s: %llu done, %.1f MB in %.2f s (%.0f/s)\n", p->tty ? "\r\033[K" : "", p->label,
            (unsigned long long)p->done, (double)p->bytes / 1e6, secs, secs > 0 ? (double)p->done / secs : 0.0);
}
