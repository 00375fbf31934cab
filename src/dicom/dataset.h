/*
 * dataset.h - the in-memory model of a DICOM dataset.
 *
 * A dcm_file owns everything through one arena: the file meta group, the dataset, nested
 * sequence items and loaded values. Elements are kept sorted by tag. Values are raw bytes
 * as they were encoded, converted to little endian when the source was big endian (so every
 * consumer reads one byte order and the writer swaps back). Text stays in its Specific
 * Character Set until someone asks for UTF-8 (charset.h).
 *
 * A value too big to be worth loading (pixel data, any element above the reader's bulk
 * threshold) is not read at all: the element records where it lies in the source and the
 * value can be fetched later with dcm_file_load().
 */
#ifndef DCM_DATASET_H
#define DCM_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "../util/arena.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "charset.h"
#include "tag.h"
#include "ts.h"
#include "vr.h"

#define DCM_UNDEF_LEN 0xFFFFFFFFu

typedef struct dcm_ds dcm_ds;
typedef struct dcm_file dcm_file;

/* element flags */
enum {
    DCM_EF_UNDEF_LEN = 1 << 0,   /* encoded with undefined length (SQ, encapsulated pixels) */
    DCM_EF_BULK = 1 << 1,        /* value not loaded: lies at off..off+len in the source */
    DCM_EF_VR_IMPLICIT = 1 << 2, /* VR came from the dictionary, not the stream */
    DCM_EF_VR_WAS_UN = 1 << 3,   /* the stream said UN; VR replaced from the dictionary */
    DCM_EF_ENCAPS = 1 << 4,      /* encapsulated pixel data: value is a fragment list */
    DCM_EF_SWAPPED = 1 << 5,     /* loaded value was byte-swapped from big endian */
    DCM_EF_IMPLICIT_ITEMS = 1 << 6 /* sequence items encoded implicit VR LE (UN sequence, CP-246) */
};

/* One item of encapsulated pixel data (offset table or fragment). */
typedef struct dcm_frag {
    uint64_t off;      /* value offset in the source */
    uint32_t len;
    const uint8_t *bytes; /* NULL while not loaded */
} dcm_frag;

typedef struct dcm_elem {
    uint32_t tag;
    uint16_t vr;
    uint16_t flags;
    uint32_t len;      /* value length in bytes (DCM_UNDEF_LEN for undefined-length containers) */
    uint64_t off;      /* value offset in the source (the byte after the header) */
    union {
        uint8_t *bytes;                          /* plain values; NUL-terminated for convenience */
        struct { dcm_ds **items; uint32_t n; } sq; /* SQ */
        struct { dcm_frag *frags; uint32_t n; } px; /* encapsulated: frags[0] is the offset table */
    } v;
} dcm_elem;

struct dcm_ds {
    dcm_elem *e;
    uint32_t n, cap;
    uint32_t item_len;  /* as an item: declared length or DCM_UNDEF_LEN */
    uint64_t item_off;  /* as an item: offset of its first element */
    dcm_ds *parent;     /* enclosing dataset for items, NULL at top level */
    dcm_file *file;
};

/* A warning recorded while reading in best-effort mode. */
typedef struct dcm_warning {
    uint64_t offset;
    char msg[160];
} dcm_warning;

#define DCM_MAX_WARNINGS 16

struct dcm_file {
    rs_arena arena;
    dcm_ds *meta;          /* group 0002, possibly empty */
    dcm_ds *ds;            /* the dataset proper */
    uint8_t preamble[128];
    uint8_t has_preamble;  /* 128 bytes + "DICM" were present */
    uint8_t has_meta;      /* group 0002 was present */
    const dcm_ts *ts;      /* syntax of the dataset */
    const dcm_ts *source_ts; /* the syntax the bytes were in (differs from ts if meta lied) */
    char ts_uid[68];       /* transfer syntax UID as written in the meta group (or guessed) */
    uint64_t data_offset;  /* offset of the first dataset element in the source */
    uint64_t source_size;
    char *path;            /* source path when read from a file, for dcm_file_load() */
    unsigned n_warnings;   /* total, may exceed DCM_MAX_WARNINGS */
    dcm_warning warnings[DCM_MAX_WARNINGS];
};

/* ---- construction (also used by the JSON reader and by services building datasets) ------ */

/* A new empty file object (empty meta and dataset); NULL on allocation failure. */
dcm_file *dcm_file_new(size_t arena_limit);
void dcm_file_free(dcm_file *f);
dcm_ds *dcm_ds_new(dcm_file *f, dcm_ds *parent);

/* Insert (or replace) an element keeping tag order; returns the slot, NULL on failure. */
dcm_elem *dcm_ds_put(dcm_ds *ds, uint32_t tag, uint16_t vr);
/* Set a plain value (copied into the arena). */
int dcm_ds_set_bytes(dcm_ds *ds, uint32_t tag, uint16_t vr, const void *data, size_t n);
int dcm_ds_set_str(dcm_ds *ds, uint32_t tag, uint16_t vr, const char *s);
/* Append an item to an SQ element (creating the element if needed). */
dcm_ds *dcm_ds_add_item(dcm_ds *ds, uint32_t tag);
int dcm_ds_remove(dcm_ds *ds, uint32_t tag);

/* ---- access ------------------------------------------------------------------------------ */

dcm_elem *dcm_ds_find(const dcm_ds *ds, uint32_t tag);
/* Find searching enclosing datasets too (for attributes that items inherit). */
dcm_elem *dcm_ds_find_up(const dcm_ds *ds, uint32_t tag);

/*
 * String value number idx (0-based) of a string VR, with leading/trailing padding removed,
 * copied into out (NUL-terminated, truncated to cap). Returns the value's length or
 * RS_ENOTFOUND when the element or that value is absent. No charset conversion.
 */
int dcm_ds_get_str(const dcm_ds *ds, uint32_t tag, unsigned idx, char *out, size_t cap);
/* Numeric value number idx of US/SS/UL/SL/FL/FD/IS/DS..., as double / int64. */
int dcm_ds_get_f64(const dcm_ds *ds, uint32_t tag, unsigned idx, double *out);
int dcm_ds_get_i64(const dcm_ds *ds, uint32_t tag, unsigned idx, int64_t *out);

/* Number of values (VM) of an element as encoded. */
unsigned dcm_elem_vm(const dcm_elem *e);
/* Binary number value idx of a NUMBER/AT element (value bytes are little endian). */
int dcm_elem_num(const dcm_elem *e, unsigned idx, double *d, int64_t *i);

/* The Specific Character Set in force for ds (its own or an ancestor's). */
void dcm_ds_charset(const dcm_ds *ds, dcm_charset *cs);

/*
 * Make a bulk value available: reads it from the source path (byte-swapping if the source was
 * big endian) into the arena. RS_OK if already loaded.
 */
int dcm_file_load(dcm_file *f, dcm_elem *e, rs_err *err);

/* Record a warning (first DCM_MAX_WARNINGS kept, all counted). */
void dcm_file_warn(dcm_file *f, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Swap n bytes of value data in place for VR vr (no-op for byte VRs). */
void dcm_swap_value(uint16_t vr, uint8_t *p, size_t n);

#endif
