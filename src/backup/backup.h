/*
 * backup.h - incremental, content-addressed, signed backups of a data directory, and their
 * restore into a new one.
 *
 *   BACKUP/objects/ab/cd/<sha256>      each object once, copied only when new, never rewritten
 *   BACKUP/runs/<RUN>/state.sqlite     DATA/state.sqlite as of the run (SQLite online backup)
 *   BACKUP/runs/<RUN>/index.sqlite     DATA/index.sqlite the same way (see below)
 *   BACKUP/runs/<RUN>/audit/<name>     the files of DATA/audit as of the run
 *   BACKUP/runs/<RUN>/trash/<uid>      the store's trash marks (DATA/trash)
 *   BACKUP/runs/<RUN>/backup-key.pub   the signer's public key (a convenience, not a trust anchor)
 *   BACKUP/runs/<RUN>/manifest         every object (hash, size, mtime) and file (hash, size)
 *   BACKUP/runs/<RUN>/manifest.sig     ed25519 signature of manifest, hex; written last
 *
 * Nothing that exists in BACKUP is ever modified or deleted (new names are made with link(),
 * which refuses to replace), so BACKUP may live on write-once storage. A run is complete when
 * its manifest.sig exists. BACKUP/runs/<RUN>/index.sqlite, a snapshot of the index, is there when
 * every object it names is in the run: restore uses it instead of rebuilding the index.
 */
#ifndef BACKUP_BACKUP_H
#define BACKUP_BACKUP_H

#include <stdint.h>

#include "../store/blobstore.h"
#include "../util/err.h"

typedef struct backup_opts {
    int quiet;             /* no progress output */
    int no_index;          /* no index snapshot in the run (restore rebuilds the index) */
} backup_opts;

typedef struct backup_report {
    char run[64];
    char fingerprint[STORE_HASH_HEX + 1];
    int key_created;
    uint64_t objects;      /* listed in the manifest */
    uint64_t copied;       /* new this run */
    uint64_t bytes_copied;
    uint64_t corrupt;      /* source files that no longer match their name: not backed up */
    uint64_t files;        /* state + audit files */
    int index_snapshot;    /* the run holds a snapshot of the index that restore can use */
} backup_report;

int backup_run(const char *datadir, const char *to, const backup_opts *o, backup_report *rep, rs_err *err);

typedef struct restore_opts {
    const char *run;            /* NULL: the latest complete run */
    const char *trust_file;     /* PEM public key to trust, or */
    const char *fingerprint;    /* the SHA-256 hex of the raw public key (as backup prints it) */
    int quiet;
} restore_opts;

typedef struct restore_report {
    char run[64];
    uint64_t objects, bytes, files, indexed;
    int index_from_snapshot;    /* the run's index snapshot was used (else: rebuilt from the objects) */
} restore_report;

/*
 * Check the run's signature against the trusted key, copy every object (each re-hashed against
 * its name) and file (against the manifest) into a fresh directory beside `data`, rebuild the
 * index, and only then give it the name `data` (which must not exist or be empty). Any
 * mismatch: RS_EFORMAT, and nothing is left behind.
 */
int backup_restore(const char *from, const char *data, const restore_opts *o, restore_report *rep, rs_err *err);

#endif
