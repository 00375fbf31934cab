/*
 * blobstore.h - the object files: content-addressed, written once, never modified.
 *
 *   DATA/tmp/<random>.part       being received (hashed on the way)
 *   DATA/tmp/<sha256>.ready      complete and fdatasync'ed, waiting for its index row
 *   DATA/objects/ab/cd/<sha256>  indexed: the archive proper
 *
 * A file moves .part -> .ready (ingest thread) -> objects/ (committer, after the index row is
 * committed). Each step is a rename within one filesystem, so a crash leaves every file either
 * whole under its final name or in tmp/, where recovery (store_blob_recover) sorts it out.
 * This layer knows nothing about DICOM or the index: it moves bytes and names them.
 */
#ifndef STORE_BLOBSTORE_H
#define STORE_BLOBSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"

#define STORE_HASH_HEX 64 /* SHA-256 as lowercase hex */

typedef struct store_blobs store_blobs;
typedef struct store_blob store_blob;

/* What store_blob_finish learned about a complete file. */
typedef struct store_blob_info {
    char hash[STORE_HASH_HEX + 1];
    uint64_t size;
    int64_t mtime_ns;   /* the file's mtime: when its last byte was written */
} store_blob_info;

/* Directories touched by a batch of publishes, to be fsync'ed once each. */
typedef struct store_dirset {
    char (*dir)[6];  /* "", "ab" or "ab/cd" relative to objects/ */
    size_t n, cap;
} store_dirset;

/* Open (creating objects/ and tmp/ if needed) the blob area of datadir. */
int store_blobs_open(const char *datadir, uint64_t max_size, store_blobs **out, rs_err *err);
void store_blobs_close(store_blobs *b);

/* 1 when s is 64 lowercase hex digits (anything else never becomes a path). */
int store_hash_valid(const char *s);

/* ---- writing (one store_blob per thread; store_blobs is shared) ------------------------- */

/* A new tmp/<random>.part, O_EXCL, mode 0640. */
int store_blob_begin(store_blobs *b, store_blob **out, rs_err *err);
/* Append; RS_ELIMIT past the size cap (the blob is then unusable: abort it). */
int store_blob_write(store_blob *w, const void *data, size_t n, rs_err *err);
/*
 * Finish the hash, set the file's mtime to stamp_ns (0: leave it), fsync, stat. The file stays
 * at its .part path (store_blob_tmp_path). fsync rather than fdatasync because the mtime is
 * data here (the received time, see store.c); for a new file it costs the same, the inode has
 * to be written anyway since the size changed.
 */
int store_blob_finish(store_blob *w, int64_t stamp_ns, store_blob_info *info, rs_err *err);
const char *store_blob_tmp_path(const store_blob *w);
/* Rename the finished .part to tmp/<hash>.ready and free w (also on failure). */
int store_blob_seal(store_blob *w, rs_err *err);
/* Delete the .part and free w. NULL is fine. */
void store_blob_abort(store_blob *w);

/* ---- committing (the committer thread) -------------------------------------------------- */

/* fsync tmp/: makes every rename to .ready done so far durable. */
int store_blob_sync_tmp(store_blobs *b, rs_err *err);
/*
 * Move tmp/<hash>.ready into objects/ (mkdir -p), recording touched directories in dirs.
 * replace: the file becomes the object even if one exists (a new index row: its mtime is the
 * row's received time). Otherwise an existing object is kept and the .ready dropped (same bytes).
 * A missing .ready is fine when the object exists (an identical copy was published before).
 */
int store_blob_publish(store_blobs *b, const char *hash, int replace, store_dirset *dirs, rs_err *err);
/* fsync every directory in dirs, then empty it. */
int store_blob_sync_dirs(store_blobs *b, store_dirset *dirs, rs_err *err);
void store_dirset_free(store_dirset *d);

/* ---- reading (any thread) --------------------------------------------------------------- */

/* DATA/objects/ab/cd/<hash> into out (cap >= 256 is always enough). */
int store_blob_path(const store_blobs *b, const char *hash, char *out, size_t cap);
/* Open an object read-only: objects/, or tmp/<hash>.ready while its move is pending. */
int store_blob_open(store_blobs *b, const char *hash, int *fd, rs_err *err);
/* SHA-256 of an open file from its start (to verify objects). */
int store_blob_hash_fd(int fd, char hash[STORE_HASH_HEX + 1], uint64_t *size, rs_err *err);

/* ---- recovery and walking (no writer may be running) ------------------------------------ */

/* Answers "is this hash in the index?" for recovery. */
typedef int (*store_blob_indexed_fn)(void *ctx, const char *hash, int *yes, rs_err *err);

typedef struct store_blob_recovery {
    unsigned parts_deleted;   /* interrupted receptions */
    unsigned ready_published; /* committed, not yet moved: moved now */
    unsigned ready_deleted;   /* complete but never committed, so never acknowledged */
} store_blob_recovery;

/* Sort out tmp/ after a crash: see the top of this file. Ends with the directories synced. */
int store_blob_recover(store_blobs *b, store_blob_indexed_fn indexed, void *ctx,
                       store_blob_recovery *rep, rs_err *err);

/* Called for every object file (name, size and mtime as stored); nonzero stops the walk. */
typedef int (*store_blob_walk_fn)(void *ctx, const store_blob_info *info);
int store_blob_walk(store_blobs *b, store_blob_walk_fn fn, void *ctx, rs_err *err);

#endif
