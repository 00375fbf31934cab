/*
 * dicomweb.c - the /dicom-web/ routes: the path is taken apart into its UIDs and what follows
 * them, then QIDO-RS (qido.c), WADO-RS (wado.c) or STOW-RS (stow.c) answer.
 */
#include "dicomweb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEGS 12

int dw_uid_ok(const char *uid)
{
    size_t n = strlen(uid);
    return n > 0 && n <= 64 && strspn(uid, "0123456789.") == n;
}

static int bad_uid(http_req *rq, const char *uid)
{
    return http_reply_error(rq, 400, "invalid UID \"%.80s\" (digits and dots, at most 64 characters)", uid);
}

/* Join seg[from..n) into t->rest; -1 when it does not fit (never cut: a cut frame list is
   another frame list). */
static int set_rest(dw_target *t, char **seg, int from, int n)
{
    size_t len = 0;
    t->rest[0] = 0;
    for (int i = from; i < n; i++)
        len += (size_t)snprintf(t->rest + len, len < sizeof t->rest ? sizeof t->rest - len : 0, "%s%s",
                                i > from ? "/" : "", seg[i]);
    return len < sizeof t->rest ? 0 : -1;
}

/* studies/{s}[/series/{se}[/instances/{i}]][/rest] -> t; returns the level a search would be at, or -1. */
static int parse_target(char **seg, int n, dw_target *t, int *search)
{
    static const char *const names[] = {"studies", "series", "instances"};
    memset(t, 0, sizeof *t);
    const char **uids[] = {&t->study, &t->series, &t->instance};
    int i = 0, depth = 0;
    *search = -1;
    for (; depth < 3 && i < n && !strcmp(seg[i], names[depth]); depth++) {
        if (i + 1 == n) {
            *search = depth + 1; /* STORE_LEVEL_STUDY + depth */
            return 0;
        }
        *uids[depth] = seg[i + 1];
        i += 2;
    }
    /* relational: /studies/{s}/instances, /series, /instances */
    if (i + 1 == n && ((depth == 1 && !strcmp(seg[i], "instances")) ||
                       (depth == 0 && (!strcmp(seg[i], "series") || !strcmp(seg[i], "instances"))))) {
        *search = !strcmp(seg[i], "series") ? STORE_LEVEL_SERIES : STORE_LEVEL_IMAGE;
        return 0;
    }
    if (depth == 0)
        return -1;
    return set_rest(t, seg, i, n);
}

static int dw_get(http_req *rq, void *ctx)
{
    dicomweb *dw = ctx;
    char path[4096], *seg[MAX_SEGS]; /* a frame list of ~1000 numbers fits */
    if (snprintf(path, sizeof path, "%s", http_req_subpath(rq)) >= (int)sizeof path)
        return http_reply_error(rq, 414, "path too long");
    int n = http_split_path(path, seg, MAX_SEGS), search;
    dw_target t;
    if (n <= 0 || parse_target(seg, n, &t, &search))
        return http_reply_error(rq, 404, "no such DICOMweb resource: %s", http_req_path(rq));
    const char *uids[] = {t.study, t.series, t.instance};
    for (int i = 0; i < 3; i++)
        if (uids[i] && !dw_uid_ok(uids[i]))
            return bad_uid(rq, uids[i]);
    if (search >= 0)
        return qido_search(dw, rq, (store_level)search, &t);
    return wado_retrieve(dw, rq, &t);
}

int dicomweb_register(http_server *srv, store *st, const dicomweb_opts *o, dicomweb **out, rs_err *err)
{
    dicomweb *dw = calloc(1, sizeof *dw);
    if (!dw)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    dw->st = st;
    if (o)
        dw->o = *o;
    if (!dw->o.max_upload)
        dw->o.max_upload = DICOMWEB_DEFAULT_MAX_UPLOAD;
    http_route_opts staff = {.flags = HTTP_ROUTE_STAFF};
    http_route_opts up = {.flags = HTTP_ROUTE_STAFF | HTTP_ROUTE_STREAM_BODY, .max_body = dw->o.max_upload,
                          .body = stow_body};
    int rc = http_server_route_opts(srv, "GET", DICOMWEB_PREFIX "/", dw_get, dw, &staff);
    rc = rc ? rc : http_server_route_opts(srv, "POST", DICOMWEB_PREFIX "/studies", stow_finish, dw, &up);
    rc = rc ? rc : http_server_route_opts(srv, "GET", "/wado", wado_uri, dw, &staff);
    if (rc) {
        free(dw);
        return rs_err_set(err, rc, "cannot register the DICOMweb routes");
    }
    *out = dw;
    return RS_OK;
}

void dicomweb_free(dicomweb *dw)
{
    free(dw);
}

int dicomweb_metrics(dicomweb *dw, rs_buf *out)
{
    return rs_buf_printf(out,
                         "# TYPE radshare_stow_instances_total counter\nradshare_stow_instances_total %llu\n"
                         "# TYPE radshare_stow_failed_total counter\nradshare_stow_failed_total %llu\n"
                         "# TYPE radshare_stow_bytes_total counter\nradshare_stow_bytes_total %llu\n"
                         "# TYPE radshare_wado_instances_total counter\nradshare_wado_instances_total %llu\n"
                         "# TYPE radshare_wado_bytes_total counter\nradshare_wado_bytes_total %llu\n"
                         "# TYPE radshare_qido_searches_total counter\nradshare_qido_searches_total %llu\n",
                         (unsigned long long)dw->n.stow_instances, (unsigned long long)dw->n.stow_failed,
                         (unsigned long long)dw->n.stow_bytes, (unsigned long long)dw->n.retrieved_instances,
                         (unsigned long long)dw->n.retrieved_bytes, (unsigned long long)dw->n.qido);
}
