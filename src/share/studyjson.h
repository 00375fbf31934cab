/*
 * studyjson.h - the viewer's description of a shared study (GET /s/{token}/study.json, format in
 * CONTRACTS.md), built from the store's index with the share's scope applied: only the share's
 * study, only its series when it names a subset. Series sorted by number, instances by
 * InstanceNumber then slice location.
 */
#ifndef RS_STUDYJSON_H
#define RS_STUDYJSON_H

#include "../store/store.h"
#include "../util/buf.h"
#include "share.h"

#define STUDYJSON_MAX_INSTANCES 100000

/* report_json: the report object as JSON text ({"text","author","date"}), or NULL for null.
 * RS_ENOTFOUND when the study is not (or no longer) in the archive. */
int share_study_json(store *st, const share *sh, const char *report_json, rs_buf *out, rs_err *err);

/* The image the viewer opens first: the middle item (frame) of the first series with images, in
 * study.json's order (read without the slice locations, so a tie of InstanceNumbers may be
 * broken otherwise: good enough for a preload hint). RS_ENOTFOUND when there is no image. */
typedef struct share_image {
    char series[65], sop[65];
    uint32_t frame, rows, cols;
} share_image;
int share_first_image(store *st, const share *sh, share_image *out, rs_err *err);

/* 1 if sop_uid is an instance of (study, series) in the archive. */
int share_instance_in(store *st, const char *study, const char *series, const char *sop_uid);

/* 1 if the study is in the archive (and not in the trash). */
int share_study_exists(store *st, const char *study);

#endif
