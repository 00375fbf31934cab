/*
 * log.h - the one log function: a line on stderr with a UTC timestamp and a level, written with a
 * single write() so lines from concurrent associations never interleave. No state: the level
 * filter is the caller's (a field of its context).
 */
#ifndef RS_LOG_H
#define RS_LOG_H

enum rs_log_level { RS_LOG_ERROR = 0, RS_LOG_WARN = 1, RS_LOG_INFO = 2, RS_LOG_DEBUG = 3 };

void rs_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
