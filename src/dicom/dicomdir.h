/*
 * dicomdir.h - a DICOMDIR (PS3.10 File-set, PS3.3 F.3 Basic Directory IOD) for a set of
 * instances written on media: PATIENT / STUDY / SERIES / IMAGE directory records with their
 * required keys, linked by byte offsets (next record at the same level, first record of the
 * level below) counted from the first byte of the file. Explicit VR little endian, defined-
 * length items in an undefined-length sequence, zeroed preamble.
 *
 * Entries are grouped as given: consecutive entries with the same PatientID share a PATIENT
 * record, then the same StudyInstanceUID a STUDY, then the same SeriesInstanceUID a SERIES.
 */
#ifndef DCM_DICOMDIR_H
#define DCM_DICOMDIR_H

#include <stddef.h>

#include "../util/buf.h"
#include "../util/err.h"

#define DICOMDIR_SOP_CLASS "1.2.840.10008.1.3.10"

typedef struct dicomdir_entry {
    char file_id[128];       /* ReferencedFileID, components separated by '\\', e.g. DICOM\ST000001\... */
    char sop_class[65], sop_uid[65], ts_uid[65];
    char charset[65];        /* SpecificCharacterSet of the text keys ("" = default repertoire) */
    char patient_id[65], patient_name[325];
    char study_uid[65], study_date[9], study_time[17], study_desc[65], study_id[17], accession[17];
    char series_uid[65], modality[17], series_number[13];
    char instance_number[13];
} dicomdir_entry;

/* Encode the DICOMDIR into out (appended). sop_instance: the DICOMDIR's own SOP Instance UID. */
int dicomdir_write(const dicomdir_entry *e, size_t n, const char *fileset_id, const char *sop_instance,
                   rs_buf *out, rs_err *err);

/* Fill *d (all but file_id) from the Part 10 file at path, read up to its pixel data. Text keys keep
 * their raw bytes, trailing padding dropped: the DICOMDIR carries the files' SpecificCharacterSet. */
int dicomdir_entry_read(const char *path, dicomdir_entry *d, rs_err *err);

#endif
