/*
 * dicomweb.h - DICOMweb (PS3.18) under /dicom-web/ on top of the store: QIDO-RS searches
 * (qido.c), WADO-RS and WADO-URI retrieval (wado.c), STOW-RS uploads (stow.c). dicomweb.c
 * parses the path and hands each request to one of them.
 *
 * Every DICOMweb route is HTTP_ROUTE_STAFF (the auth hook decides; without one, loopback only).
 */
#ifndef HTTP_DICOMWEB_H
#define HTTP_DICOMWEB_H

#include <stdatomic.h>
#include <stdint.h>

#include "../store/store.h"
#include "http.h"

#define DICOMWEB_PREFIX "/dicom-web"
#define DICOMWEB_MAX_LIMIT 1000       /* QIDO limit above this is clamped */
#define DICOMWEB_DEFAULT_MAX_UPLOAD ((uint64_t)4 << 30)

#define DICOMWEB_DEFAULT_RENDER_CACHE ((size_t)64 << 20)

typedef struct dicomweb_opts {
    uint64_t max_upload;    /* STOW-RS request body (decoded); 0: DICOMWEB_DEFAULT_MAX_UPLOAD */
    size_t render_cache;    /* bytes of rendered images kept; 0: DICOMWEB_DEFAULT_RENDER_CACHE */
} dicomweb_opts;

typedef struct dicomweb_counters {
    _Atomic uint64_t stow_instances, stow_failed, stow_bytes;
    _Atomic uint64_t retrieved_instances, retrieved_bytes;
    _Atomic uint64_t qido;
} dicomweb_counters;

struct rs_cache;

typedef struct dicomweb {
    store *st;
    dicomweb_opts o;
    dicomweb_counters n;
    struct rs_cache *rendered;  /* encoded /rendered and /thumbnail images by hash + parameters */
} dicomweb;

int dicomweb_register(http_server *srv, store *st, const dicomweb_opts *o, dicomweb **out, rs_err *err);
void dicomweb_free(dicomweb *dw);
/* Prometheus lines for the counters. */
int dicomweb_metrics(dicomweb *dw, rs_buf *out);

/* ---- between the files of this module ---------------------------------------------------------- */

/* A request's place in the hierarchy, from the path. */
typedef struct dw_target {
    const char *study, *series, *instance;  /* NULL when not in the path */
    char rest[4096];                        /* what follows the last UID ("metadata", "frames/1,2,...") */
    int no_store;                           /* the caller sent Cache-Control: no-store (share links:
                                               a revoked link must not be served from a cache) */
} dw_target;

/* Digits and dots, 1..64 characters. */
int dw_uid_ok(const char *uid);
/* QIDO-RS at level, constrained by t's UIDs. */
int qido_search(dicomweb *dw, http_req *rq, store_level level, const dw_target *t);
/* WADO-RS: t->rest "" (the objects), "metadata", "frames/...", "rendered", "thumbnail", "bulk/...". */
int wado_retrieve(dicomweb *dw, http_req *rq, const dw_target *t);
/* pixels.c: /frames/{list} of t->instance. */
int wado_frames(dicomweb *dw, http_req *rq, const dw_target *t, const char *list);
/*
 * A rendered frame of t->instance (1-based; 0: the first, or the middle one for a thumbnail)
 * as JPEG or PNG. params NULL: window/viewport/quality from the query (PS3.18 8.3.5), a
 * thumbnail defaulting to 128x128; forced_mime NULL: from Accept. For share links too.
 */
struct render_params;
int wado_render(dicomweb *dw, http_req *rq, const dw_target *t, uint32_t frame, int thumbnail, const char *forced_mime,
                const struct render_params *params);
/* Study or series /rendered: every frame of every instance (series, then instance number order). */
int wado_rendered_of(dicomweb *dw, http_req *rq, const dw_target *t);
/* /instances/{uid}/bulk/{path}: the bulk value the metadata's BulkDataURI names. */
int wado_bulk(dicomweb *dw, http_req *rq, const dw_target *t, const char *path);
/*
 * Several rendered frames of t->series in one answer, for a viewer that prefetches a series
 * (fewer requests: a browser spends more on each request than on decoding the image). list is
 * "SOP[:FRAME],..." (frame 1 when omitted, at most WADO_BATCH_MAX items); window, viewport,
 * quality from the query as for /rendered. multipart/related; type="image/jpeg" (or png by
 * Accept), one part per item in list order, each with Content-Location "SOP/FRAME". Any item
 * not in t's study/series: 404 for the whole request. Each rendering goes through the render
 * cache like /rendered's (the same frame and parameters share one entry).
 */
#define WADO_BATCH_MAX 32
int wado_render_batch(dicomweb *dw, http_req *rq, const dw_target *t, const char *list);
/* Study or series thumbnail: its first instance's. */
int wado_thumbnail_of(dicomweb *dw, http_req *rq, const dw_target *t);
/* WADO-URI: /wado?requestType=WADO&... */
int wado_uri(http_req *rq, void *ctx);
/* STOW-RS: the body callback and the handler (POST /dicom-web/studies[/{study}]). */
int stow_body(http_req *rq, const void *p, size_t n, void *ctx);
int stow_finish(http_req *rq, void *ctx);

#endif
