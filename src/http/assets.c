/*
 * assets.c - serving the embedded viewer files (see assets.h).
 */
#include "assets.h"

#include <string.h>

const http_asset *http_asset_find(const char *path)
{
    for (size_t i = 0; i < http_n_assets; i++)
        if (!strcmp(http_assets[i].path, path))
            return &http_assets[i];
    return NULL;
}

int http_reply_asset(http_req *rq, const char *path, const char *cache_control)
{
    const http_asset *a = http_asset_find(path);
    if (!a)
        return http_reply_error(rq, 404, "no such file: %s", path);
    http_set_header(rq, "X-Content-Type-Options", "nosniff");
    if (cache_control) {
        http_set_header(rq, "Cache-Control", cache_control);
    } else {
        http_set_header(rq, "Cache-Control", "no-cache");
        if (http_etag_check(rq, a->etag))
            return RS_OK;
    }
    return http_reply_buf(rq, 200, a->mime, a->data, a->size);
}

static int viewer(http_req *rq, void *ctx)
{
    const char *sub = http_req_subpath(rq);
    return http_reply_asset(rq, *sub ? sub : "index.html", NULL);
}

int assets_register(http_server *srv, rs_err *err)
{
    int rc = http_server_route(srv, "GET", "/viewer", viewer, NULL);
    return rc ? rs_err_set(err, rc, "cannot register /viewer") : RS_OK;
}
