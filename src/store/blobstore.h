/*
 * blobstore.h - the object files: content-addressed, written once, never modified.
 *
 *   DATA/tmp/<random>.part       a pool slot: created empty ahead of time, its name already
 *                                durable; then being received (hashed on the way); then
 *                                complete, fsync'ed and committed, waiting for its move
 *   DATA/tmp/<sha256>.ready      (data directories of earlier versions: complete, durable)
 *   DATA/objects/ab/cd/<sha256>  indexed: the archive proper
 *
 * A file is written in its pool slot and moved into objects/ by the committer once its index
 * row is committed (see commit.h for when its bytes are durable): a single rename, so a crash leaves every file
 * either whole under its final name or in tmp/, where recovery (store_blob_recover) sorts it
 * out by hashing it. This layer knows nothing about DICOM or the index: it moves bytes and
 * names them.
 */
#ifndef STORE_BLOBSTORE_H
#define STORE_BLOBSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"

#define STORE_HASH_HEX 64 /* SHA-256 as lowercase hex */
#define STORE_TMP_NAME 48 /* a tmp/ file name: 32 hex digits + ".part" */

typedef struct store_blobs store_blobs;
typedef struct store_blob store_blob;

/* What store_blob_finish learned about a complete file. */
typedef struct store_blob_info {
    char hash[STORE_HASH_HEX + 1];
    uint64_t size;
    int64_t mtime_ns;   /* the file's mtime: when its last byte was written */
} store_blob_info;

/*
 * Directories touched by a batch of publishes, to be fsync'ed once each, and the tmp/ names of
 * the published files, removed only once those fsyncs are done.
 */
typedef struct store_dirset {
    char (*dir)[6];  /* "", "ab" or "ab/cd" relative to objects/ */
    size_t n, cap;
    char (*gone)[STORE_HASH_HEX + 8]; /* tmp/ names (slots, <hash>.ready) to unlink after the sync */
    size_t n_gone, cap_gone;
} store_dirset;

/* Open (creating objects/ and tmp/ if needed) the blob area of datadir. */
int store_blobs_open(const char *datadir, uint64_t max_size, store_blobs **out, rs_err *err);
void store_blobs_close(store_blobs *b);

/* 1 when s is 64 lowercase hex digits (anything else never becomes a path). */
int store_hash_valid(const char *s);

/*
 * Create the 256 first-level directories objects/00 .. objects/ff if they are not there (once
 * per data directory): an ingest then makes at most one directory (objects/ab/cd) and never
 * dirties objects/ itself. The second level (65,536) is made as needed.
 */
int store_blobs_prepare(store_blobs *b, rs_err *err);

/*
 * Create pool slots (empty tmp/ files, then one fsync of tmp/) when fewer than a low mark are
 * left. Ingests take slots; the committer calls this after each batch, store_open at start.
 * Slots still unused at store_blobs_close are deleted.
 */
int store_blobs_refill(store_blobs *b, rs_err *err);

/* ---- writing (one store_blob per thread; store_blobs is shared) ------------------------- */

/* Take a pool slot (or create one, with its fsync of tmp/, when the pool is empty). */
int store_blob_begin(store_blobs *b, store_blob **out, rs_err *err);
/*
 * Append; RS_ELIMIT past the size cap (the blob is then unusable: abort it). Write-back of each
 * complete 256 KiB is started on the way (sync_file_range), so store_blob_sync waits for little.
 */
int store_blob_write(store_blob *w, const void *data, size_t n, rs_err *err);
/*
 * Finish the hash, set the file's mtime to stamp_ns (0: leave it), stat. Not yet durable: see
 * store_blob_sync. The file stays in its slot (store_blob_tmp_path, store_blob_name).
 */
int store_blob_finish(store_blob *w, int64_t stamp_ns, store_blob_info *info, rs_err *err);
/*
 * fsync the file: its bytes and inode (the mtime is data here: the received time, see store.c;
 * for a file that has just grown fdatasync would write the inode anyway). Its name needs no
 * directory fsync: the slot's name was made durable when the pool was filled.
 */
int store_blob_sync(store_blob *w, rs_err *err);
const char *store_blob_tmp_path(const store_blob *w);
const char *store_blob_name(const store_blob *w);  /* relative to tmp/ */
/* Free w, leaving the file where it is (the committer has taken or removed it). */
void store_blob_close(store_blob *w);
/* Delete the file and free w. NULL is fine. */
void store_blob_abort(store_blob *w);

/* ---- committing (the committer thread) -------------------------------------------------- */

/* fsync tmp/. */
int store_blob_sync_tmp(store_blobs *b, rs_err *err);
/*
 * Say that the committed object `hash` is at tmp/<name> until its move (name NULL: no longer),
 * so that store_blob_open finds it in between. RS_ENOMEM when it cannot be recorded.
 */
int store_blob_pending(store_blobs *b, const char *hash, const char *name);
/*
 * Publish tmp/<src> (NULL: tmp/<hash>.ready) as objects/ab/cd/<hash> (mkdir -p): a hard link,
 * the directories touched and the tmp/ name recorded in dirs; store_blob_sync_dirs removes the
 * tmp/ name once the new one is durable, so that at every moment one of the two names is.
 * replace: the file becomes the object even if one exists (a new index row: its mtime is the
 * row's received time; then a rename). Otherwise an existing object is kept and the tmp/ file
 * dropped (same bytes). A missing source is fine when the object exists (an identical copy
 * was published before).
 */
int store_blob_publish(store_blobs *b, const char *hash, const char *src, int replace, store_dirset *dirs,
                       rs_err *err);
/* Delete objects/<hash> (a published file whose row was taken out again). */
void store_blob_remove(store_blobs *b, const char *hash);
/* 1 when objects/ has this hash. */
int store_blob_exists(store_blobs *b, const char *hash);
/* Add every directory of src to dst (RS_ENOMEM). */
int store_dirset_merge(store_dirset *dst, const store_dirset *src);
/* fsync every directory in dirs, then unlink its tmp/ names (not on failure) and empty it. */
int store_blob_sync_dirs(store_blobs *b, store_dirset *dirs, rs_err *err);
void store_dirset_free(store_dirset *d);

/* ---- reading (any thread) --------------------------------------------------------------- */

/* DATA/objects/ab/cd/<hash> into out (cap >= 256 is always enough). */
int store_blob_path(const store_blobs *b, const char *hash, char *out, size_t cap);
/* Open an object read-only: objects/, or its tmp/ file while its move is pending. */
int store_blob_open(store_blobs *b, const char *hash, int *fd, rs_err *err);
/* SHA-256 of an open file from its start (to verify objects). */
int store_blob_hash_fd(int fd, char hash[STORE_HASH_HEX + 1], uint64_t *size, rs_err *err);

/* ---- recovery and walking (no writer may be running) ------------------------------------ */

/* Answers "is this hash in the index?" for recovery. */
typedef int (*store_blob_indexed_fn)(void *ctx, const char *hash, int *yes, rs_err *err);

typedef struct store_blob_recovery {
    unsigned parts_deleted;   /* pool files with bytes that no row knows: interrupted receptions */
    unsigned ready_published; /* committed, not yet moved: moved now */
    unsigned ready_deleted;   /* .ready complete but never committed, so never acknowledged */
} store_blob_recovery;

/*
 * Sort out tmp/ after a crash: empty pool files go; a file with bytes is hashed and moved into
 * objects/ when indexed says its hash has a row, deleted otherwise. Ends with the directories
 * synced.
 */
int store_blob_recover(store_blobs *b, store_blob_indexed_fn indexed, void *ctx,
                       store_blob_recovery *rep, rs_err *err);

/* Called for every object file (name, size and mtime as stored); nonzero stops the walk. */
typedef int (*store_blob_walk_fn)(void *ctx, const store_blob_info *info);
int store_blob_walk(store_blobs *b, store_blob_walk_fn fn, void *ctx, rs_err *err);

#endif
