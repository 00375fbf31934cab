/*
 * audit.h - the audit trail: an append-only, hash-chained log of everything that happens to a share
 * (created, delivered, opened, images viewed, downloaded, revoked, every refused access).
 *
 * Files: DATA/audit/000001.log, 000002.log, ... (a new file after max_file_bytes; the chain goes on
 * across files), one JSON object per line, members always in this order:
 *   {"seq":N,"time":"2026-12-04T13:23:56.123Z","event":"share.opened","share":"ID"|null,
 *    "study":"UID"|null,"addr":"..."|null,"ua":"..."|null,"detail":{...},"prev":"HEX","hash":"HEX"}
 * hash = SHA-256 (hex) of the line without its `,"hash":"..."` member (i.e. of `{..."prev":"HEX"}`);
 * prev = the previous record's hash (64 zeros for seq 1). seq starts at 1 and has no gaps.
 * DATA/audit/head holds "SEQ HASH" of the last record, so a log cut at a line boundary is noticed.
 *
 * Each append is one write() of the whole line then fdatasync, under a mutex (threads) and an
 * flock on the audit directory (other radshare processes: `serve` and the CLI both append).
 * Before each append the writer checks whether another process appended since, and re-reads the tail.
 * On open, a torn last line (a crash in the middle of a write) is cut off and the fact recorded as an
 * "audit.torn" record; a log shorter than its head is recorded as "audit.truncated" (verify fails).
 *
 * Tamper-evident, not tamper-proof: someone who can rewrite every file and the head can forge a
 * consistent chain. Copying the head elsewhere (backup, a print-out) makes that detectable too.
 */
#ifndef RS_AUDIT_H
#define RS_AUDIT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"

#define AUDIT_DIR "audit"
#define AUDIT_DEFAULT_FILE_BYTES (64ull << 20)
#define AUDIT_MAX_DETAIL 8192
#define AUDIT_MAX_LINE 32768
#define AUDIT_HASH_HEX 64

typedef struct audit_log audit_log;

/* Open (creating DATA/audit when missing) for appending. max_file_bytes 0: the default. */
int audit_open(const char *datadir, uint64_t max_file_bytes, audit_log **out, rs_err *err);
void audit_close(audit_log *a);

/* Append one record. event: [a-z0-9._]{1,63}; share_id, study, addr, ua may be NULL; detail_json a
 * JSON object built by the caller (NULL = {}), one line, at most AUDIT_MAX_DETAIL bytes. ua is cut to
 * 512 bytes. Returns once the record is on disk. *seq_out (may be NULL) gets its sequence number. */
int audit_append(audit_log *a, const char *event, const char *share_id, const char *study, const char *addr,
                 const char *ua, const char *detail_json, uint64_t *seq_out, rs_err *err);

/* s as a JSON string (quotes, \\ and control characters escaped, bytes >= 0x7f as \\u00XX so
 * the line stays valid whatever a client sent), at most max input bytes; NULL gives null. For callers
 * building detail_json from outside input. */
struct rs_buf;
int audit_json_string(struct rs_buf *b, const char *s, size_t max);

/* One parsed record as given to query callbacks. Strings are the raw JSON text between the quotes
 * (escapes left as written), NUL-terminated copies; absent members are "". line is the whole line
 * without its newline - valid JSON, what the API returns. */
typedef struct audit_record {
    uint64_t seq;
    char time[32];
    char event[64];
    char share[64];
    char study[80];
    const char *line;
    size_t len;
} audit_record;

typedef int (*audit_fn)(const audit_record *r, void *ctx); /* nonzero stops */

/* Every record of a study (study != NULL) and/or of a share (share_id != NULL), oldest first. */
int audit_query(const char *datadir, const char *study, const char *share_id, audit_fn fn, void *ctx,
                rs_err *err);

typedef struct audit_report {
    int ok;                     /* 1: the chain is intact */
    uint64_t records, files;
    uint64_t last_seq;
    char last_hash[AUDIT_HASH_HEX + 1];
    char file[PATH_MAX + 16];   /* where the first problem is (when !ok) */
    uint64_t line;              /* 1-based line in file; 0 when the problem is not a line's */
    char problem[256];
    uint64_t torn_repairs;      /* audit.torn records seen (crashes in the middle of an append) */
} audit_report;

/* Check the whole chain: every line well formed, hashes, seq without gaps, prev links, files
 * numbered without gaps, the head. RS_OK when the check ran (rep->ok tells the verdict). */
int audit_verify(const char *datadir, audit_report *rep, rs_err *err);

#endif
