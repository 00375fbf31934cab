/*
 * assets.h - the viewer's static files (src/web/), embedded in the binary at build time by
 * tools/gen_web_assets.py (build/gen/web_assets.c) and served under /viewer/.
 */
#ifndef HTTP_ASSETS_H
#define HTTP_ASSETS_H

#include <stddef.h>

#include "http.h"

typedef struct http_asset {
    const char *path;         /* relative to src/web/: "index.html", "js/viewer.js" */
    const char *mime;
    const unsigned char *data;
    size_t size;
    const char *etag;         /* 32 hex digits of the SHA-256 of data */
} http_asset;

extern const http_asset http_assets[];
extern const size_t http_n_assets;

/* NULL when there is no such file. */
const http_asset *http_asset_find(const char *path);
/*
 * Answer with an asset (404 when missing). cache_control NULL: "no-cache" plus its ETag
 * (revalidated, since a new build changes it); share pages pass "no-store".
 */
int http_reply_asset(http_req *rq, const char *path, const char *cache_control);
/* GET /viewer/ (index.html) and /viewer/<file>. */
int assets_register(http_server *srv, rs_err *err);

#endif
