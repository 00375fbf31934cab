/*
 * attrs.c - the catalog of indexed attributes (see attrs.h).
 *
 * The set is what C-FIND (PS3.4 C.6.1.1 / C.6.2.1, required and common optional keys) and
 * QIDO-RS (PS3.18 10.6, required matching and return attributes) need, plus what radshare's
 * own screens filter on (ReferringPhysicianName, InstitutionName, BodyPartExamined...).
 */
#include "attrs.h"

#include "../dicom/tag.h"
#include "../dicom/vr.h"

#define A(g, e, vr, lvl, kind, col) {DCM_TAG(g, e), DCM_VR_##vr, lvl, kind, col, 0, NULL}
#define DT(g, e, vr, lvl, kind, col, pg, pe) {DCM_TAG(g, e), DCM_VR_##vr, lvl, kind, col, DCM_TAG(pg, pe), NULL}

const store_attr store_attrs[] = {
    /* patient */
    A(0x0010, 0x0020, LO, STORE_LEVEL_PATIENT, STORE_AK_TEXT, "patient_id"),
    A(0x0010, 0x0021, LO, STORE_LEVEL_PATIENT, STORE_AK_TEXT, "issuer"),
    A(0x0010, 0x0010, PN, STORE_LEVEL_PATIENT, STORE_AK_PN, "patient_name"),
    A(0x0010, 0x0030, DA, STORE_LEVEL_PATIENT, STORE_AK_DA, "birth_date"),
    A(0x0010, 0x0040, CS, STORE_LEVEL_PATIENT, STORE_AK_TEXT, "sex"),
    A(0x0020, 0x1200, IS, STORE_LEVEL_PATIENT, STORE_AK_COUNT, "n_studies"),
    A(0x0020, 0x1202, IS, STORE_LEVEL_PATIENT, STORE_AK_COUNT, "n_series"),
    A(0x0020, 0x1204, IS, STORE_LEVEL_PATIENT, STORE_AK_COUNT, "n_instances"),
    /* study */
    A(0x0020, 0x000D, UI, STORE_LEVEL_STUDY, STORE_AK_UID, "study_uid"),
    DT(0x0008, 0x0020, DA, STORE_LEVEL_STUDY, STORE_AK_DA, "study_date", 0x0008, 0x0030),
    DT(0x0008, 0x0030, TM, STORE_LEVEL_STUDY, STORE_AK_TM, "study_time", 0x0008, 0x0020),
    A(0x0008, 0x0050, SH, STORE_LEVEL_STUDY, STORE_AK_TEXT, "accession"),
    A(0x0020, 0x0010, SH, STORE_LEVEL_STUDY, STORE_AK_TEXT, "study_id"),
    A(0x0008, 0x1030, LO, STORE_LEVEL_STUDY, STORE_AK_TEXT, "study_description"),
    A(0x0008, 0x0090, PN, STORE_LEVEL_STUDY, STORE_AK_PN, "referring"),
    A(0x0008, 0x0080, LO, STORE_LEVEL_STUDY, STORE_AK_TEXT, "institution"),
    A(0x0008, 0x0201, SH, STORE_LEVEL_STUDY, STORE_AK_TEXT, "tz_offset"),
    A(0x0010, 0x1010, AS, STORE_LEVEL_STUDY, STORE_AK_TEXT, "patient_age"),
    A(0x0008, 0x0061, CS, STORE_LEVEL_STUDY, STORE_AK_LIST, "modalities"),
    A(0x0008, 0x0062, UI, STORE_LEVEL_STUDY, STORE_AK_LIST, "sop_classes"),
    A(0x0020, 0x1206, IS, STORE_LEVEL_STUDY, STORE_AK_COUNT, "n_series"),
    A(0x0020, 0x1208, IS, STORE_LEVEL_STUDY, STORE_AK_COUNT, "n_instances"),
    /* series */
    A(0x0020, 0x000E, UI, STORE_LEVEL_SERIES, STORE_AK_UID, "series_uid"),
    A(0x0008, 0x0060, CS, STORE_LEVEL_SERIES, STORE_AK_TEXT, "modality"),
    A(0x0020, 0x0011, IS, STORE_LEVEL_SERIES, STORE_AK_INT, "series_number"),
    A(0x0008, 0x103E, LO, STORE_LEVEL_SERIES, STORE_AK_TEXT, "series_description"),
    DT(0x0008, 0x0021, DA, STORE_LEVEL_SERIES, STORE_AK_DA, "series_date", 0x0008, 0x0031),
    DT(0x0008, 0x0031, TM, STORE_LEVEL_SERIES, STORE_AK_TM, "series_time", 0x0008, 0x0021),
    A(0x0018, 0x0015, CS, STORE_LEVEL_SERIES, STORE_AK_TEXT, "body_part"),
    DT(0x0040, 0x0244, DA, STORE_LEVEL_SERIES, STORE_AK_DA, "pps_start_date", 0x0040, 0x0245),
    DT(0x0040, 0x0245, TM, STORE_LEVEL_SERIES, STORE_AK_TM, "pps_start_time", 0x0040, 0x0244),
    A(0x0008, 0x1010, SH, STORE_LEVEL_SERIES, STORE_AK_TEXT, "station"),
    A(0x0008, 0x0070, LO, STORE_LEVEL_SERIES, STORE_AK_TEXT, "manufacturer"),
    A(0x0020, 0x1209, IS, STORE_LEVEL_SERIES, STORE_AK_COUNT, "n_instances"),
    /* instance */
    A(0x0008, 0x0018, UI, STORE_LEVEL_IMAGE, STORE_AK_UID, "sop_uid"),
    A(0x0008, 0x0016, UI, STORE_LEVEL_IMAGE, STORE_AK_UID, "sop_class"),
    A(0x0020, 0x0013, IS, STORE_LEVEL_IMAGE, STORE_AK_INT, "instance_number"),
    DT(0x0008, 0x0023, DA, STORE_LEVEL_IMAGE, STORE_AK_DA, "content_date", 0x0008, 0x0033),
    DT(0x0008, 0x0033, TM, STORE_LEVEL_IMAGE, STORE_AK_TM, "content_time", 0x0008, 0x0023),
    A(0x0028, 0x0010, US, STORE_LEVEL_IMAGE, STORE_AK_INT, "n_rows"),
    A(0x0028, 0x0011, US, STORE_LEVEL_IMAGE, STORE_AK_INT, "n_columns"),
    A(0x0028, 0x0008, IS, STORE_LEVEL_IMAGE, STORE_AK_INT, "n_frames"),
    A(0x0028, 0x0100, US, STORE_LEVEL_IMAGE, STORE_AK_INT, "bits_allocated"),
    {DCM_TAG(0x0008, 0x0056), DCM_VR_CS, STORE_LEVEL_STUDY, STORE_AK_CONST, NULL, 0, "ONLINE"},
};

const size_t store_n_attrs = sizeof store_attrs / sizeof store_attrs[0];

_Static_assert(sizeof store_attrs / sizeof store_attrs[0] <= STORE_MAX_ATTRS, "raise STORE_MAX_ATTRS");

const store_attr *store_attr_find(uint32_t tag)
{
    for (size_t i = 0; i < store_n_attrs; i++)
        if (store_attrs[i].tag == tag)
            return &store_attrs[i];
    return NULL;
}

int store_attr_from_dataset(const store_attr *a)
{
    return a->kind != STORE_AK_COUNT && a->kind != STORE_AK_LIST && a->kind != STORE_AK_CONST;
}

const store_attr *store_attr_unique(store_level level)
{
    static const uint32_t keys[STORE_N_LEVELS] = {
        DCM_TAG(0x0010, 0x0020), DCM_TAG_STUDY_UID, DCM_TAG_SERIES_UID, DCM_TAG_SOP_INSTANCE_UID};
    return store_attr_find(keys[level]);
}

const char *store_level_name(store_level level)
{
    static const char *const names[STORE_N_LEVELS] = {"PATIENT", "STUDY", "SERIES", "IMAGE"};
    return (unsigned)level < STORE_N_LEVELS ? names[level] : "?";
}

const char *store_level_table(store_level level)
{
    static const char *const tables[STORE_N_LEVELS] = {"patients", "studies", "series", "instances"};
    return tables[level];
}
