/*
 * catalog.h - what verify, backup and export need from DATA/index.sqlite, read through a
 * read-only SQLite connection of their own. The store's API takes DATA/lock, which `radshare
 * serve` holds; these commands must run beside the server, and SQLite in WAL mode lets a reader
 * see a consistent snapshot while the server commits. Nothing is ever written here.
 */
#ifndef BACKUP_CATALOG_H
#define BACKUP_CATALOG_H

#include <stdint.h>

#include "../store/blobstore.h"
#include "../store/record.h"
#include "../util/err.h"

typedef struct backup_catalog backup_catalog;

/* RS_ENOTFOUND when DATA has no index (run reindex). */
int backup_catalog_open(const char *datadir, backup_catalog **out, rs_err *err);
void backup_catalog_close(backup_catalog *c);

/* Every distinct object hash the index names (all versions), sorted, as one array of hex names. */
int backup_catalog_hashes(backup_catalog *c, char (**hashes)[STORE_HASH_HEX + 1], size_t *n, rs_err *err);

/*
 * Every indexed version of every instance, in received order (the order that makes them
 * versions on the other side too): hash, SOP instance and class UID, stored transfer syntax.
 * fn returning nonzero stops the listing with that status.
 */
typedef int (*backup_catalog_fn)(void *ctx, const char *hash, const char *sop_uid, const char *sop_class,
                                 const char *ts_uid);
int backup_catalog_each_instance(backup_catalog *c, backup_catalog_fn fn, void *ctx, rs_err *err);

/* The current instances of a study, ordered by series then instance number. */
typedef struct backup_study_item {
    char hash[STORE_HASH_HEX + 1];
    char sop_uid[STORE_UID_MAX + 1];
    char series_uid[STORE_UID_MAX + 1];
    uint64_t size;
} backup_study_item;

int backup_catalog_study(backup_catalog *c, const char *study_uid, backup_study_item **items, size_t *n,
                         rs_err *err);

#endif
