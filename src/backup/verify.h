/*
 * verify.h - `radshare verify`: the object files against their names and against the index.
 *
 *   missing   an index row names a hash with no file (deleted, or renamed by ransomware)
 *   corrupt   a file whose content no longer hashes to its name (overwritten, encrypted)
 *   orphan    a file in objects/ no index row names (reindex would index it again)
 *
 * Incremental by default: a file whose size and mtime are those it had when it last hashed
 * clean (DATA/verify.state) is not read again. Objects are written once, so any write changes
 * the mtime unless whoever wrote it set it back on purpose; --full re-hashes everything and is
 * what a scheduled weekly run should use. Runs beside `radshare serve` (no lock taken; the
 * index is read through its own read-only connection, after the walk, so a file published
 * meanwhile is never taken for an orphan).
 */
#ifndef BACKUP_VERIFY_H
#define BACKUP_VERIFY_H

#include <stdint.h>

#include "../util/err.h"

typedef enum { BACKUP_MISSING, BACKUP_CORRUPT, BACKUP_ORPHAN } backup_problem;

const char *backup_problem_name(backup_problem p);

/* One problem: kind, the file's path, a detail. */
typedef void (*backup_problem_fn)(void *ctx, backup_problem p, const char *path, const char *detail);

typedef struct backup_verify_opts {
    int full;                 /* re-hash every file */
    int quiet;                /* no progress output */
    backup_problem_fn problem;
    void *ctx;
} backup_verify_opts;

typedef struct backup_verify_report {
    uint64_t objects;   /* files in objects/ */
    uint64_t indexed;   /* distinct hashes in the index */
    uint64_t hashed;    /* files read and hashed this run */
    uint64_t skipped;   /* unchanged since they last hashed clean */
    uint64_t bytes;     /* bytes hashed */
    uint64_t missing, corrupt, orphan;
} backup_verify_report;

int backup_verify(const char *datadir, const backup_verify_opts *o, backup_verify_report *rep, rs_err *err);

#endif
