/*
 * query.h - C-FIND / QIDO-RS queries over the index: keys in, matching datasets out.
 *
 * A query is a level, an information model and a list of keys as a C-FIND identifier gives
 * them (tag + value; an empty value is a return key). Matching follows PS3.4 C.2.2.2: single
 * value, wildcards * and ?, list of UIDs, DA/TM ranges (and combined date-time ranges,
 * C.2.2.2.5.1), universal matching. Person names match case-insensitively. A backslash in any
 * key is a list of alternatives (the standard only defines it for UIDs; it costs nothing to
 * accept it for the rest, which QIDO's comma lists need). Keys the index does not keep match
 * universally and are answered empty, as PS3.4 C.2.2.1.3 allows for optional keys.
 *
 * Each match is handed to a callback as a ready dataset (UTF-8, Specific Character Set
 * ISO_IR 192 when needed): the network code encodes it as a C-FIND response, the web code
 * writes it with dcm_json_write. A dataset rather than strings, because both consumers need
 * VRs, multi-values and person-name groups, which a dataset already models.
 *
 * This file also holds the "plan": the query compiled against the attribute catalog, which
 * index backends turn into their own SQL (index.h). Callers only need store_query.
 */
#ifndef STORE_QUERY_H
#define STORE_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "../dicom/dataset.h"
#include "../util/arena.h"
#include "../util/err.h"
#include "attrs.h"

#define STORE_MAX_KEYS 128

typedef enum store_model {
    STORE_PATIENT_ROOT = 0,
    STORE_STUDY_ROOT = 1
} store_model;

typedef struct store_key {
    uint32_t tag;
    uint16_t vr;        /* 0: the catalog's or the dictionary's */
    const char *value;  /* UTF-8; NULL or "" = universal matching (return key) */
} store_key;

typedef struct store_query {
    store_level level;
    store_model model;
    const store_key *keys;
    size_t n_keys;
    uint64_t limit;        /* at most this many matches; 0 = all */
    uint64_t offset;       /* skip this many first (QIDO paging) */
    int combine_datetime;  /* date and time keys form one date-time range (PS3.4 C.2.2.2.5.1) */
    int with_metadata;     /* IMAGE level: give each match's header JSON (store_match.metadata) */
    int trashed;           /* STUDY level and below: 0 hide trashed studies, 1 only them, 2 both */
    int newest_first;      /* STUDY level: by study date and time, newest first (stable for paging);
                              else in the order the studies were first stored */
} store_query;

/* One match. Everything points into memory valid during the callback only. */
typedef struct store_match {
    const dcm_ds *ds;         /* the answer: requested keys + unique keys from the root down */
    const char *study_uid;    /* NULL at PATIENT level */
    const char *series_uid;   /* NULL above SERIES */
    const char *sop_uid;      /* IMAGE only, and the rest too: */
    const char *sop_class;
    const char *hash;         /* content hash of the object (store_open_instance) */
    uint64_t size;
    const char *ts_uid;
    const char *metadata;     /* with_metadata: DICOM JSON of the header (NULL when not kept) */
    size_t metadata_len;
} store_match;

/* Return 0 to go on, 1 to stop (C-CANCEL, enough results), or a negative RS_E* to fail. */
typedef int (*store_match_fn)(void *ctx, const store_match *m);

/* ---- building key lists ------------------------------------------------------------------- */

/* Keys with their own storage (an identifier's values need somewhere to live). */
typedef struct store_keyset {
    store_key key[STORE_MAX_KEYS];
    size_t n;
    rs_arena arena;
} store_keyset;

void store_keyset_init(store_keyset *ks);
void store_keyset_free(store_keyset *ks);
/* Add a key (value copied; NULL allowed). RS_ELIMIT past STORE_MAX_KEYS. */
int store_keyset_add(store_keyset *ks, uint32_t tag, uint16_t vr, const char *value, rs_err *err);
/*
 * Add every top-level element of a C-FIND identifier, values decoded to UTF-8 with the
 * identifier's Specific Character Set. QueryRetrieveLevel (0008,0052) sets *level instead
 * (left alone when absent; RS_EINVAL when not one of PATIENT/STUDY/SERIES/IMAGE).
 */
int store_keyset_from_ds(store_keyset *ks, const dcm_ds *identifier, store_level *level, rs_err *err);

/* ---- the plan (for index backends) --------------------------------------------------------- */

typedef enum store_term_kind {
    STORE_TERM_EQ,        /* value equals (normal form for PN/DA; integer text for INT) */
    STORE_TERM_WILDCARD,  /* value is a pattern with * and ? (normal form for PN) */
    STORE_TERM_RANGE      /* lo <= value <= hi, either bound NULL = open; normal forms */
} store_term_kind;

typedef struct store_term {
    store_term_kind kind;
    const char *value;
    const char *lo, *hi;
} store_term;

/* One key that constrains: the attribute matches if any of its terms matches. */
typedef struct store_cond {
    const store_attr *attr;
    const store_attr *time;   /* combined date-time: attr is the DA, time its TM; bounds are
                                 "YYYYMMDD" + "HHMMSS.FFFFFF" */
    const store_term *terms;
    size_t n_terms;
} store_cond;

typedef struct store_plan {
    store_level level;
    store_cond cond[STORE_MAX_KEYS];
    size_t n_cond;
    const store_attr *ret[STORE_MAX_KEYS + STORE_N_LEVELS]; /* columns to fetch, in order */
    size_t n_ret;
    const store_query *q;
    rs_arena arena;
} store_plan;

/* Per row, what a backend fetched besides the ret[] columns (IMAGE level). */
typedef struct store_row_extra {
    const char *sop_class;
    const char *hash;
    uint64_t size;
    const char *ts_uid;
    const char *metadata;
    size_t metadata_len;
} store_row_extra;

/* Compile q. RS_EINVAL (with a message for the peer) for a level the model lacks or a bad key. */
int store_plan_build(const store_query *q, store_plan *p, rs_err *err);
void store_plan_free(store_plan *p);
/*
 * Build the answer for one row and call fn. vals[i] is the text of column ret[i] (NULL for
 * SQL NULL). Returns fn's answer, or a negative RS_E* of its own.
 */
int store_plan_emit(const store_plan *p, const char *const *vals, const store_row_extra *extra,
                    store_match_fn fn, void *ctx);

#endif
