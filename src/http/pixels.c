/*
 * pixels.c - the WADO-RS resources that need pixels: /frames/{list} (the stored bytes of each
 * frame, via codec_frame_bytes), /rendered and /thumbnail (render_frame: window, viewport,
 * quality), and WADO-URI's image/jpeg and image/png. The instance file is parsed with its
 * bulk values left on disk, then the codec loads only the pixel data.
 *
 * Rendered images are immutable for a given instance and parameters: their ETag is the
 * content hash plus the parameters, and the encoded image is kept in a bounded LRU cache
 * (dicomweb.rendered) under the same, so a viewer asking again for a frame, or another viewer
 * asking for the same frame, costs an index lookup and a copy instead of read + decode + encode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../codec/codec.h"
#include "../dicom/reader.h"
#include "../dicom/tag.h"
#include "../render/render.h"
#include "../util/cache.h"
#include "dicomweb.h"

#define PIX_BOUNDARY "radshare-frames-5c2e9a71"
#define MAX_FRAMES_ASKED 4096
#define PARSE_MEMORY ((size_t)512 << 20)

typedef struct pix {
    store_instance_info info;
    dcm_file *f;
    codec_image *img;
    rs_err err;
} pix;

static void pix_close(pix *p)
{
    codec_close(p->img);
    dcm_file_free(p->f);
}

/* The current version of t->instance (checked against t's study/series, not trashed) into
 * p->info; RS_ENOTFOUND. Nothing is read yet. */
static int pix_find(dicomweb *dw, const dw_target *t, pix *p)
{
    memset(p, 0, sizeof *p);
    rs_err_clear(&p->err);
    int trashed = 0;
    int rc = store_find_instance(dw->st, t->instance, &p->info, &p->err);
    if (rc == RS_OK && ((t->study && strcmp(t->study, p->info.study_uid)) ||
                        (t->series && strcmp(t->series, p->info.series_uid))))
        rc = rs_err_set(&p->err, RS_ENOTFOUND, "no such instance in this study/series");
    rc = rc ? rc : store_is_trashed(dw->st, p->info.study_uid, &trashed, &p->err);
    if (rc == RS_OK && trashed)
        rc = rs_err_set(&p->err, RS_ENOTFOUND, "no such instance");
    return rc;
}

/* Parse the object pix_find found (bulk values left on disk) and open its pixel data. */
static int pix_load(dicomweb *dw, pix *p)
{
    char path[4096];
    int rc = store_get_instance_path(dw->st, p->info.sop_uid, path, sizeof path, &p->err);
    dcm_read_opts ro = {.bulk_min = 4096, .max_memory = PARSE_MEMORY};
    rc = rc ? rc : dcm_read_path(path, &ro, &p->f, &p->err);
    rc = rc ? rc : codec_open(p->f, NULL, &p->img, &p->err);
    if (rc)
        pix_close(p);
    return rc;
}

/* Open the current version of t->instance; RS_ENOTFOUND. */
static int pix_open(dicomweb *dw, const dw_target *t, pix *p)
{
    int rc = pix_find(dw, t, p);
    return rc ? rc : pix_load(dw, p);
}

static int reply_pix_error(http_req *rq, int rc, const rs_err *err)
{
    int status = rc == RS_ENOTFOUND ? 404 : rc == RS_EUNSUPPORTED ? 501 : rc == RS_EFORMAT ? 422 : http_status_for(rc);
    return http_reply_error(rq, status == 422 ? 400 : status, "%s", err->msg[0] ? err->msg : rs_strerror(rc));
}

/* "1,3,5" -> frame numbers (1-based) within n. */
static int parse_frames(const char *s, uint32_t n, uint32_t *out, size_t *count)
{
    *count = 0;
    while (*s) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v == 0 || v > n || *count == MAX_FRAMES_ASKED || (*end && *end != ','))
            return RS_EINVAL;
        out[(*count)++] = (uint32_t)v;
        s = *end ? end + 1 : end;
    }
    return *count ? RS_OK : RS_EINVAL;
}

int wado_frames(dicomweb *dw, http_req *rq, const dw_target *t, const char *list)
{
    const char *a = http_req_header(rq, "Accept");
    if (a && *a && !strstr(a, "*/*") && !(strstr(a, "multipart/related") && (!strstr(a, "type=") || strstr(a, "application/octet-stream"))))
        return http_reply_error(rq, 406, "frames are sent as multipart/related; type=\"application/octet-stream\"");
    pix p;
    int rc = pix_open(dw, t, &p);
    if (rc)
        return reply_pix_error(rq, rc, &p.err);
    const codec_desc *d = codec_get_desc(p.img);
    uint32_t *want = malloc(MAX_FRAMES_ASKED * sizeof *want);
    size_t n = 0;
    rs_buf b = RS_BUF_INIT;
    if (!want || parse_frames(list, d->frames, want, &n)) {
        rc = http_reply_error(rq, want ? 400 : 503, "frame list \"%.64s\" is not 1..%u numbers separated by commas", list,
                              d->frames);
        goto out;
    }
    if (http_etag_check(rq, p.info.hash) && n == 1)
        goto out;
    for (size_t i = 0; i < n && rc == RS_OK; i++) {
        const uint8_t *fp;
        size_t fn;
        rc = codec_frame_bytes(p.img, want[i] - 1, &fp, &fn, &p.err);
        rc = rc ? rc : rs_buf_printf(&b, "--" PIX_BOUNDARY "\r\nContent-Type: application/octet-stream; transfer-syntax=%s\r\n"
                                         "Content-Length: %zu\r\n\r\n", d->ts_uid, fn);
        rc = rc ? rc : rs_buf_append(&b, fp, fn);
        rc = rc ? rc : rs_buf_puts(&b, "\r\n");
    }
    rc = rc ? rc : rs_buf_puts(&b, "--" PIX_BOUNDARY "--\r\n");
    if (rc) {
        rc = reply_pix_error(rq, rc, &p.err);
        goto out;
    }
    http_set_header(rq, "Cache-Control", "private, max-age=31536000, immutable");
    rc = http_reply_buf(rq, 200, "multipart/related; type=\"application/octet-stream\"; boundary=" PIX_BOUNDARY, b.p, b.len);
out:
    free(want);
    rs_buf_free(&b);
    pix_close(&p);
    return rc;
}

/* "a,b" -> two numbers. */
static int two_numbers(const char *s, double *x, double *y)
{
    char *end;
    *x = strtod(s, &end);
    if (end == s || *end != ',')
        return RS_EINVAL;
    const char *s2 = end + 1;
    *y = strtod(s2, &end);
    return end == s2 || (*end && *end != ',') ? RS_EINVAL : RS_OK;
}

/* window, viewport, quality (PS3.18 8.3.5) into p; a message in bad on error. */
static int render_opts(http_req *rq, int thumbnail, render_params *p, const char **bad)
{
    double x, y;
    const char *w = http_req_query(rq, "window"), *v = http_req_query(rq, "viewport"), *q = http_req_query(rq, "quality");
    if (w) {
        if (two_numbers(w, &x, &y) || y <= 0) {
            *bad = "window is center,width[,function] with width > 0";
            return RS_EINVAL;
        }
        p->has_window = 1;
        p->center = x;
        p->width = y;
        const char *fn = strchr(strchr(w, ',') + 1, ',');
        if (fn)
            p->voi_fn = !strcasecmp(fn + 1, "sigmoid") ? RENDER_VOI_SIGMOID : !strcasecmp(fn + 1, "linear-exact") ? RENDER_VOI_LINEAR_EXACT : RENDER_VOI_LINEAR;
    }
    if (v) {
        if (two_numbers(v, &x, &y) || x < 0 || y < 0 || x > 8192 || y > 8192) {
            *bad = "viewport is width,height (at most 8192)";
            return RS_EINVAL;
        }
        p->viewport_w = (uint32_t)x;
        p->viewport_h = (uint32_t)y;
    } else if (thumbnail) {
        p->viewport_w = p->viewport_h = 128;
    }
    if (q) {
        long qv = strtol(q, NULL, 10);
        if (qv < 1 || qv > 100) {
            *bad = "quality is 1..100";
            return RS_EINVAL;
        }
        p->quality = (int)qv;
    } else if (thumbnail) {
        p->quality = 75;
    }
    return RS_OK;
}

/* PNG when the client lists image/png before image/jpeg (or only it); JPEG otherwise. -1: neither. */
static int pick_format(http_req *rq, const char *forced)
{
    if (forced)
        return !strcmp(forced, "image/png") ? RENDER_PNG : RENDER_JPEG;
    const char *a = http_req_header(rq, "Accept");
    const char *png = a ? strstr(a, "image/png") : NULL, *jpg = a ? strstr(a, "image/jpeg") : NULL;
    if (png && (!jpg || png < jpg))
        return RENDER_PNG;
    if (http_req_accepts(rq, "image/jpeg"))
        return RENDER_JPEG;
    return http_req_accepts(rq, "image/png") ? RENDER_PNG : -1;
}

int wado_render(dicomweb *dw, http_req *rq, const dw_target *t, uint32_t frame, int thumbnail, const char *forced_mime,
                const render_params *given)
{
    render_params rp = RENDER_PARAMS_DEFAULT;
    const char *bad = NULL;
    if (given)
        rp = *given;
    else if (render_opts(rq, thumbnail, &rp, &bad))
        return http_reply_error(rq, 400, "%s", bad);
    int fmt = pick_format(rq, forced_mime);
    if (fmt < 0)
        return http_reply_error(rq, 406, "rendered images are image/jpeg or image/png");
    rp.format = (render_format)fmt;
    pix p;
    int rc = pix_find(dw, t, &p);
    if (rc)
        return reply_pix_error(rq, rc, &p.err);
    /* The object is immutable: the same content hash and parameters give the same bytes, so a
     * render is kept (dw->rendered) under everything that determines it, exactly (%a). */
    char key[512], note[RS_CACHE_NOTE_MAX];
    snprintf(key, sizeof key, "%s/%u/%d/%d/%a/%a/%d/%u/%u/%d/%d", p.info.hash, frame, thumbnail, rp.has_window, rp.center,
             rp.width, (int)rp.voi_fn, rp.viewport_w, rp.viewport_h, rp.quality, fmt);
    rs_buf out = RS_BUF_INIT;
    if (dw->rendered && rs_cache_get(dw->rendered, key, &out, note, sizeof note)) {
        char *etag = strchr(note, ' '); /* note: "mime etag", as put below */
        if (etag)
            *etag++ = 0;
        else
            etag = note + strlen(note);
        if (!http_etag_check(rq, etag)) {
            http_set_header(rq, "Cache-Control", "private, max-age=31536000, immutable");
            rc = http_reply_buf(rq, 200, note, out.p, out.len);
        }
        rs_buf_free(&out);
        return rc;
    }
    if ((rc = pix_load(dw, &p)))
        return reply_pix_error(rq, rc, &p.err);
    const codec_desc *d = codec_get_desc(p.img);
    if (frame == 0)
        frame = thumbnail ? (d->frames + 1) / 2 : 1;
    const char *mime = NULL;
    char etag[256];
    snprintf(etag, sizeof etag, "%.32s-r%u-%d-%g-%g-%d-%u-%u-%d-%d", p.info.hash, frame, rp.has_window, rp.center, rp.width,
             (int)rp.voi_fn, rp.viewport_w, rp.viewport_h, rp.quality, fmt);
    if (frame > d->frames) {
        rc = http_reply_error(rq, 400, "frame %u: the instance has %u", frame, d->frames);
    } else if (!http_etag_check(rq, etag)) {
        rc = render_frame(p.f, p.img, frame - 1, &rp, &out, &mime, &p.err);
        if (rc) {
            rc = reply_pix_error(rq, rc, &p.err);
        } else {
            http_set_header(rq, "Cache-Control", "private, max-age=31536000, immutable");
            rc = http_reply_buf(rq, 200, mime, out.p, out.len);
            if (dw->rendered && snprintf(note, sizeof note, "%s %s", mime, etag) < (int)sizeof note)
                rs_cache_put(dw->rendered, key, out.p, out.len, note);
        }
    }
    rs_buf_free(&out);
    pix_close(&p);
    return rc;
}

typedef struct first_ctx {
    char sop[STORE_UID_MAX + 1];
} first_ctx;

static int take_first(void *ctx, const store_match *m)
{
    snprintf(((first_ctx *)ctx)->sop, sizeof ((first_ctx *)ctx)->sop, "%s", m->sop_uid);
    return 1;
}

/* Study or series /thumbnail: the first instance's. */
int wado_thumbnail_of(dicomweb *dw, http_req *rq, const dw_target *t)
{
    store_keyset ks;
    store_keyset_init(&ks);
    first_ctx fc = {{0}};
    rs_err err;
    rs_err_clear(&err);
    int rc = store_keyset_add(&ks, DCM_TAG_STUDY_UID, 0, t->study, &err);
    if (rc == RS_OK && t->series)
        rc = store_keyset_add(&ks, DCM_TAG_SERIES_UID, 0, t->series, &err);
    store_query q = {.level = STORE_LEVEL_IMAGE, .model = STORE_STUDY_ROOT, .keys = ks.key, .n_keys = ks.n};
    rc = rc ? rc : store_query_run(dw->st, &q, take_first, &fc, &err);
    store_keyset_free(&ks);
    if (rc)
        return http_reply_error(rq, http_status_for(rc), "%s", err.msg);
    if (!fc.sop[0])
        return http_reply_error(rq, 404, "no such %s", t->series ? "series" : "study");
    dw_target one = *t;
    one.instance = fc.sop;
    return wado_render(dw, rq, &one, 0, 1, NULL, NULL);
}
