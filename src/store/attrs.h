/*
 * attrs.h - the catalog of attributes the index knows: which DICOM tag lives at which level of
 * the patient/study/series/instance hierarchy, in which column, and how it is matched.
 *
 * This one table drives everything that would otherwise be written four times: extracting
 * values on ingest (record.c), the index schema and its inserts (index_sqlite.c), matching
 * query keys and building answers (query.c). Adding a queryable attribute is adding a line
 * here (and running `radshare reindex`, since the schema changes).
 */
#ifndef STORE_ATTRS_H
#define STORE_ATTRS_H

#include <stddef.h>
#include <stdint.h>

/* Query/Retrieve levels (PS3.4 C.6), in hierarchy order. */
typedef enum store_level {
    STORE_LEVEL_PATIENT = 0,
    STORE_LEVEL_STUDY = 1,
    STORE_LEVEL_SERIES = 2,
    STORE_LEVEL_IMAGE = 3
} store_level;

#define STORE_N_LEVELS 4

/* How a value is stored and matched. */
typedef enum store_attr_kind {
    STORE_AK_TEXT,   /* string: single value and wildcard matching, case-sensitive */
    STORE_AK_PN,     /* person name: matched on a normal form (norm.h) in column "<column>_norm" */
    STORE_AK_UID,    /* UI: single value and list-of-UID matching */
    STORE_AK_DA,     /* date "YYYYMMDD": single value and range matching */
    STORE_AK_TM,     /* time: single value and range matching on the normalised time */
    STORE_AK_INT,    /* IS/US kept as an integer: single value and list matching */
    STORE_AK_COUNT,  /* derived count (Number of ... Related ...): returned, never matched */
    STORE_AK_LIST,   /* derived value list (ModalitiesInStudy...): matched if any value matches */
    STORE_AK_CONST   /* constant answer (InstanceAvailability): no column */
} store_attr_kind;

typedef struct store_attr {
    uint32_t tag;
    uint16_t vr;
    uint8_t level;      /* store_level */
    uint8_t kind;       /* store_attr_kind */
    const char *column; /* column in the level's table (NULL for STORE_AK_CONST) */
    uint32_t pair;      /* DA <-> TM partner for combined date-time matching, else 0 */
    const char *value;  /* STORE_AK_CONST: the answer */
} store_attr;

/* The whole catalog, and its size. */
extern const store_attr store_attrs[];
extern const size_t store_n_attrs;

/* Largest store_n_attrs can be (records size their value arrays with it). */
#define STORE_MAX_ATTRS 64

/* The catalog entry for tag, NULL when the index does not keep it. */
const store_attr *store_attr_find(uint32_t tag);
/* Index of a in store_attrs. */
static inline size_t store_attr_index(const store_attr *a) { return (size_t)(a - store_attrs); }
/* 1 when the value comes from the dataset (not derived by the index, not constant). */
int store_attr_from_dataset(const store_attr *a);
/* The unique key of a level (PatientID, StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID). */
const store_attr *store_attr_unique(store_level level);
/* "PATIENT", "STUDY", "SERIES", "IMAGE" (the QueryRetrieveLevel values). */
const char *store_level_name(store_level level);
/* Table holding a level's rows: "patients", "studies", "series", "instances". */
const char *store_level_table(store_level level);

#endif
