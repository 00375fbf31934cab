/*
 * api.h - the staff REST API under /api/ (JSON) and /metrics (Prometheus text), for the
 * viewer's staff screens and the admin:
 *   GET    /api/studies?name=&patient_id=&from=YYYYMMDD&to=YYYYMMDD&modality=&accession=
 *                      &limit=&offset=&trashed=1     search (trashed=1: the trash instead)
 *   GET    /api/studies/{uid}             details with series and counts
 *   DELETE /api/studies/{uid}             to the trash (recoverable; objects kept)
 *   POST   /api/studies/{uid}/restore     out of the trash
 *   GET    /api/status                    version, uptime, counts, sizes, commit stats
 *   GET    /metrics                       requests by route/status, ingest counters, sizes
 * All are HTTP_ROUTE_STAFF: the server's auth hook decides (default: loopback peers only).
 */
#ifndef HTTP_API_H
#define HTTP_API_H

#include "../store/store.h"
#include "dicomweb.h"
#include "http.h"

typedef struct api_ctx {
    http_server *srv;
    store *st;
    dicomweb *dw;      /* its counters go into /metrics (may be NULL) */
    const char *version;
    /* /api/studies/{uid}/{sub} other modules serve (reports, audit); NULL: 404 */
    int (*study_sub)(http_req *rq, void *ctx, const char *study_uid, const char *sub);
    void *study_sub_ctx;
} api_ctx;

/* ctx must outlive the server. */
int api_register(http_server *srv, api_ctx *ctx, rs_err *err);

#endif
