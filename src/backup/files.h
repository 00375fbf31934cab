/*
 * files.h - the file plumbing backup, restore, import and export share: copying while hashing
 * (SHA-256, the archive's object name), directories made on demand, a directory tree removed
 * (only trees this process created), the path of an object inside a data or backup directory,
 * lists of object descriptions.
 */
#ifndef BACKUP_FILES_H
#define BACKUP_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "../store/blobstore.h"
#include "../util/err.h"

/* dir/objects/ab/cd/<hash> */
int backup_object_path(const char *dir, const char *hash, char *out, size_t cap, rs_err *err);
/* mkdir -p of path's parent directories (mode 0750). */
int backup_mkdirs_for(const char *path, rs_err *err);
/*
 * Copy src to dst through dst.part-<pid> and link() (dst never exists half-written, and an
 * existing dst is never replaced: RS_EINVAL if it appears meanwhile), hashing on the way. Not
 * synced: callers make a whole run durable with one backup_sync_fs (an fsync per small file
 * made backup and restore 15x slower than cp). mtime_ns > 0: the copy's mtime. expect (may be NULL): the content must hash to it, or
 * nothing is created (RS_EFORMAT). hash/size (may be NULL) receive what was copied.
 */
int backup_copy_file(const char *src, const char *dst, int64_t mtime_ns, const char *expect,
                     char hash[STORE_HASH_HEX + 1], uint64_t *size, rs_err *err);
/*
 * The same into a directory that only this process writes and that is thrown away whole if
 * anything fails (restore's NEWDIR.restoring-PID): dst is created directly (O_EXCL), and
 * removed again on a mismatch. Two directory operations fewer per file than the .part + link.
 */
int backup_copy_new(const char *src, const char *dst, int64_t mtime_ns, const char *expect, uint64_t *size,
                    rs_err *err);
/* Hash a whole file (not following a symlink). */
int backup_hash_file(const char *path, char hash[STORE_HASH_HEX + 1], uint64_t *size, rs_err *err);
/* SHA-256 hex of a buffer. */
void backup_sha256_hex(const void *p, size_t n, char hash[STORE_HASH_HEX + 1]);
/* syncfs() of the filesystem holding path. */
int backup_sync_fs(const char *path, rs_err *err);
/* Remove a tree (never following symlinks). */
int backup_remove_tree(const char *path);
/* 1 when path does not exist or is an empty directory. */
int backup_dir_empty(const char *path);
/* Write a whole small file atomically (tmp + rename + fsync), with mode. */
int backup_write_file(const char *path, const void *p, size_t n, int mode, rs_err *err);
/* Read a whole small file (at most cap bytes: RS_ELIMIT above) into a malloc'ed buffer. */
int backup_read_file(const char *path, size_t cap, uint8_t **out, size_t *n, rs_err *err);

/* A growing list of object descriptions (a walk of objects/, a manifest's entries). */
typedef struct backup_objs {
    store_blob_info *v;
    size_t n, cap;
} backup_objs;
/* Append a copy of *info: RS_OK or RS_ENOMEM. The list owns v: free(l->v). */
int backup_objs_push(backup_objs *l, const store_blob_info *info);
/* store_blob_walk's callback appending to the backup_objs ctx. */
int backup_objs_collect(void *ctx, const store_blob_info *info);
/* qsort/bsearch comparison of two store_blob_info by hash. */
int backup_objs_cmp(const void *a, const void *b);

#endif
