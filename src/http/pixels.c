/*
 * pixels.c - the WADO-RS resources that read an instance file: /frames/{list} (each frame as
 * stored, codec_frame_bytes, or decoded, transcode.c, per the Accept negotiation), /rendered
 * and /thumbnail (render_frame: window, viewport, quality), study and series /rendered (every
 * frame, one part each), /bulk/{path} (the value a metadata BulkDataURI names), and WADO-URI's
 * image/jpeg and image/png. The instance file is parsed with its bulk values left on disk,
 * then only what is asked is loaded. Multipart answers are made part by part (parts.c).
 *
 * Frames, bulk values and rendered images are immutable for a given instance (and syntax, or
 * parameters): their ETag is the content hash plus those. The encoded rendered image is also
 * kept in a bounded LRU cache (dicomweb.rendered) under the same key, so a viewer asking again
 * for a frame, or another viewer asking for the same frame, costs an index lookup and a copy
 * instead of read + decode + encode.
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
#include "../util/log.h"
#include "../util/vec.h"
#include "dicomweb.h"
#include "parts.h"
#include "transcode.h"

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

/* Parse the object pix_find found (bulk values left on disk), and open its pixel data when
 * with_codec. */
static int pix_load(dicomweb *dw, pix *p, int with_codec)
{
    char path[4096];
    int rc = store_get_instance_path(dw->st, p->info.sop_uid, path, sizeof path, &p->err);
    dcm_read_opts ro = {.bulk_min = 4096, .max_memory = PARSE_MEMORY};
    rc = rc ? rc : dcm_read_path(path, &ro, &p->f, &p->err);
    if (rc == RS_OK && with_codec)
        rc = codec_open(p->f, NULL, &p->img, &p->err);
    if (rc)
        pix_close(p);
    return rc;
}

/* Open the current version of t->instance, and its pixel data when with_codec; RS_ENOTFOUND. */
static int pix_open_as(dicomweb *dw, const dw_target *t, int with_codec, pix *p)
{
    int rc = pix_find(dw, t, p);
    return rc ? rc : pix_load(dw, p, with_codec);
}

static int pix_open(dicomweb *dw, const dw_target *t, pix *p)
{
    return pix_open_as(dw, t, 1, p);
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

/* ---- frames: one part per frame, decoded only when it is its turn ---------------------------------- */

typedef struct frames_ctx {
    pix p;
    dw_tc tc;
    uint32_t *want;     /* 1-based frame numbers */
    size_t n;
    int whole;          /* one part: every frame, native (bulk Pixel Data in an uncompressed syntax) */
} frames_ctx;

static void frames_free(void *c)
{
    frames_ctx *fc = c;
    free(fc->want);
    pix_close(&fc->p);
    free(fc);
}

static int frame_part(void *c, size_t i, dw_part *part, rs_err *err)
{
    frames_ctx *fc = c;
    rs_buf *body = &part->body;
    if (i == (fc->whole ? 1 : fc->n))
        return 1;
    snprintf(part->ctype, sizeof part->ctype, "%s; transfer-syntax=%s", fc->tc.part_type, fc->tc.ts);
    int rc = RS_OK;
    if (fc->whole) { /* size checked by reply_frames; reserved at once, not doubled on the way */
        const codec_desc *d = codec_get_desc(fc->p.img);
        rc = rs_buf_reserve(body, (size_t)d->rows * d->cols * (size_t)d->spp * (size_t)((d->bits_allocated + 7) / 8) *
                                      d->frames);
        for (uint32_t k = 0; k < d->frames && rc == RS_OK; k++)
            rc = dw_tc_frame_native(fc->p.img, k, body, err);
        return rc == RS_ENOMEM ? rs_err_set(err, rc, "out of memory for the pixel data") : rc;
    }
    if (fc->tc.convert == DW_TC_ENCODE)
        return dw_tc_frame_encoded(fc->p.img, fc->want[i] - 1, fc->tc.ts, body, err);
    if (fc->tc.convert)
        return dw_tc_frame_native(fc->p.img, fc->want[i] - 1, body, err);
    const uint8_t *fp;
    size_t fn;
    rc = codec_frame_bytes(fc->p.img, fc->want[i] - 1, &fp, &fn, err);
    return rc ? rc : rs_buf_append(body, fp, fn);
}

/*
 * Negotiate, then stream fc's frames; fc is consumed. bulk: the Pixel Data value (all frames):
 * in an uncompressed syntax one part (the native value), else one part per frame as stored.
 */
static int reply_frames(http_req *rq, frames_ctx *fc, const char *etag_list, int bulk)
{
    const codec_desc *d = codec_get_desc(fc->p.img);
    char msg[512], etag[160];
    int rc = dw_tc_choose(http_req_header(rq, "Accept"), DW_TC_FRAMES, d->ts_uid, d, &fc->tc, msg, sizeof msg);
    if (rc) {
        frames_free(fc);
        return http_reply_error(rq, 406, "%s", msg);
    }
    /* one native part, or one part per frame (stored or encoded) */
    fc->whole = bulk && fc->tc.convert != DW_TC_ENCODE && (fc->tc.convert || !d->encapsulated);
    uint64_t native = (uint64_t)d->rows * d->cols * (uint64_t)d->spp * (uint64_t)((d->bits_allocated + 7) / 8) * d->frames;
    if (fc->whole && d->encapsulated && native > DW_TC_MAX_PIXELS) {
        frames_free(fc);
        return http_reply_error(rq, 413, "the pixel data would be %llu bytes decompressed, above the %llu MiB radshare "
                                "builds for one answer: ask transfer-syntax=* or use /frames",
                                (unsigned long long)native, (unsigned long long)(DW_TC_MAX_PIXELS >> 20));
    }
    if (etag_list && snprintf(etag, sizeof etag, "%.32s-%s-%s-%s", fc->p.info.hash, fc->tc.part_type, fc->tc.ts, etag_list) <
                         (int)sizeof etag &&
        http_etag_check(rq, etag)) {
        frames_free(fc);
        return RS_OK;
    }
    http_set_header(rq, "Cache-Control", "private, max-age=31536000, immutable");
    http_set_header(rq, "Vary", "Accept"); /* the syntax, so the bytes, depend on it */
    rs_err err;
    rs_err_clear(&err);
    rc = dw_reply_parts(rq, fc->tc.part_type, frame_part, fc, frames_free, &err);
    if (rc) {
        rc = reply_pix_error(rq, rc, &err);
        frames_free(fc);
    }
    return rc;
}

int wado_frames(dicomweb *dw, http_req *rq, const dw_target *t, const char *list)
{
    frames_ctx *fc = calloc(1, sizeof *fc);
    uint32_t *want = malloc(MAX_FRAMES_ASKED * sizeof *want);
    if (!fc || !want) {
        free(fc);
        free(want);
        return http_reply_error(rq, 503, "out of memory");
    }
    int rc = pix_open(dw, t, &fc->p);
    if (rc) {
        rc = reply_pix_error(rq, rc, &fc->p.err);
        free(fc);
        free(want);
        return rc;
    }
    fc->want = want;
    const codec_desc *d = codec_get_desc(fc->p.img);
    if (parse_frames(list, d->frames, want, &fc->n)) {
        rc = http_reply_error(rq, 400, "frame list \"%.64s\" is not 1..%u numbers separated by commas", list, d->frames);
        frames_free(fc);
        return rc;
    }
    return reply_frames(rq, fc, list, 0);
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
    if (jpg || http_req_accepts(rq, "image/jpeg")) /* also inside multipart/related; type="image/jpeg" */
        return RENDER_JPEG;
    return http_req_accepts(rq, "image/png") ? RENDER_PNG : -1;
}

/*
 * The render cache (dw->rendered). An object is immutable: the same content hash and parameters
 * give the same bytes, so a rendering is kept under everything that determines it, exactly
 * (%a), with "mime etag" as its note. frame as asked (0: the default frame, or the thumbnail's).
 */
static void render_key(const pix *p, uint32_t frame, int thumbnail, const render_params *rp, char *key, size_t cap)
{
    snprintf(key, cap, "%s/%u/%d/%d/%a/%a/%d/%u/%u/%d/%d", p->info.hash, frame, thumbnail, rp->has_window, rp->center,
             rp->width, (int)rp->voi_fn, rp->viewport_w, rp->viewport_h, rp->quality, (int)rp->format);
}

/* The rendered image's ETag: its content hash and every parameter (frame resolved). */
static void render_etag(const pix *p, uint32_t frame, const render_params *rp, char *etag, size_t cap)
{
    snprintf(etag, cap, "%.32s-r%u-%d-%.17g-%.17g-%d-%u-%u-%d-%d", p->info.hash, frame, rp->has_window, rp->center,
             rp->width, (int)rp->voi_fn, rp->viewport_w, rp->viewport_h, rp->quality, (int)rp->format);
}

/* A kept rendering: 1 with its bytes in out, note split into its type (note) and *etag. */
static int cache_take(dicomweb *dw, const char *key, rs_buf *out, char note[RS_CACHE_NOTE_MAX], const char **etag)
{
    if (!dw->rendered || !rs_cache_get(dw->rendered, key, out, note, RS_CACHE_NOTE_MAX))
        return 0;
    char *sp = strchr(note, ' ');
    if (sp)
        *sp++ = 0;
    *etag = sp ? sp : note + strlen(note);
    return 1;
}

static void cache_keep(dicomweb *dw, const char *key, const rs_buf *img, const char *mime, const char *etag)
{
    char note[RS_CACHE_NOTE_MAX];
    if (dw->rendered && snprintf(note, sizeof note, "%s %s", mime, etag) < (int)sizeof note)
        rs_cache_put(dw->rendered, key, img->p, img->len, note);
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
    char key[512], note[RS_CACHE_NOTE_MAX];
    const char *kept_etag;
    render_key(&p, frame, thumbnail, &rp, key, sizeof key);
    rs_buf out = RS_BUF_INIT;
    if (cache_take(dw, key, &out, note, &kept_etag)) {
        if (!http_etag_check(rq, kept_etag)) {
            if (!t->no_store)
                http_set_header(rq, "Cache-Control", "private, max-age=31536000, immutable");
            rc = http_reply_buf(rq, 200, note, out.p, out.len);
        }
        rs_buf_free(&out);
        return rc;
    }
    if ((rc = pix_load(dw, &p, 1)))
        return reply_pix_error(rq, rc, &p.err);
    const codec_desc *d = codec_get_desc(p.img);
    if (frame == 0)
        frame = thumbnail ? (d->frames + 1) / 2 : 1;
    const char *mime = NULL;
    char etag[256];
    render_etag(&p, frame, &rp, etag, sizeof etag);
    if (frame > d->frames) {
        rc = http_reply_error(rq, 400, "frame %u: the instance has %u", frame, d->frames);
    } else if (!http_etag_check(rq, etag)) {
        rc = render_frame(p.f, p.img, frame - 1, &rp, &out, &mime, &p.err);
        if (rc) {
            rc = reply_pix_error(rq, rc, &p.err);
        } else {
            if (!t->no_store)
                http_set_header(rq, "Cache-Control", "private, max-age=31536000, immutable");
            rc = http_reply_buf(rq, 200, mime, out.p, out.len);
            cache_keep(dw, key, &out, mime, etag);
        }
    }
    rs_buf_free(&out);
    pix_close(&p);
    return rc;
}

#define BATCH_BOUNDARY "radshare-rendered-3f81c0d2"

int wado_render_batch(dicomweb *dw, http_req *rq, const dw_target *t, const char *list)
{
    render_params rp = RENDER_PARAMS_DEFAULT;
    const char *bad = NULL;
    if (render_opts(rq, 0, &rp, &bad))
        return http_reply_error(rq, 400, "%s", bad);
    int fmt = pick_format(rq, NULL);
    if (fmt < 0)
        return http_reply_error(rq, 406, "rendered images are image/jpeg or image/png");
    rp.format = (render_format)fmt;
    char items[WADO_BATCH_MAX * (STORE_UID_MAX + 12)], *save = NULL;
    if (!list || !list[0] || snprintf(items, sizeof items, "%s", list) >= (int)sizeof items)
        return http_reply_error(rq, 400, "instances is SOP[:FRAME],... (at most %d)", WADO_BATCH_MAX);
    rs_buf out = RS_BUF_INIT, img = RS_BUF_INIT;
    int rc = RS_OK, n = 0, answered = 0; /* answered: an error reply is queued, rc is its status */
    for (char *it = strtok_r(items, ",", &save); it && !answered; it = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(it, ':'), *end = NULL;
        unsigned long frame = 1;
        if (colon) {
            *colon = 0;
            frame = strtoul(colon + 1, &end, 10);
        }
        answered = 1;
        if (++n > WADO_BATCH_MAX || !dw_uid_ok(it) || (colon && (*end || frame == 0 || frame > UINT32_MAX))) {
            rc = http_reply_error(rq, 400, "instances is SOP[:FRAME],... (at most %d)", WADO_BATCH_MAX);
            break;
        }
        dw_target one = *t;
        one.instance = it;
        pix p;
        const char *mime = NULL, *kept_etag;
        char key[512], note[RS_CACHE_NOTE_MAX], etag[256];
        if ((rc = pix_find(dw, &one, &p))) {
            rc = reply_pix_error(rq, rc, &p.err);
            break;
        }
        render_key(&p, (uint32_t)frame, 0, &rp, key, sizeof key);
        int have = cache_take(dw, key, &img, note, &kept_etag);
        if (have) {
            mime = note;
        } else if ((rc = pix_load(dw, &p, 1))) {
            rc = reply_pix_error(rq, rc, &p.err);
            break;
        } else if (frame > codec_get_desc(p.img)->frames) {
            rc = http_reply_error(rq, 400, "%s: frame %lu, the instance has %u", it, frame, codec_get_desc(p.img)->frames);
        } else if ((rc = render_frame(p.f, p.img, (uint32_t)frame - 1, &rp, &img, &mime, &p.err))) {
            rc = reply_pix_error(rq, rc, &p.err);
        } else {
            have = 1;
            render_etag(&p, (uint32_t)frame, &rp, etag, sizeof etag);
            cache_keep(dw, key, &img, mime, etag);
        }
        if (have && (rs_buf_printf(&out, "--" BATCH_BOUNDARY "\r\nContent-Type: %s\r\nContent-Location: %s/%lu\r\n"
                                         "Content-Length: %zu\r\n\r\n", mime, it, frame, img.len) ||
                     rs_buf_append(&out, img.p, img.len) || rs_buf_puts(&out, "\r\n")))
            rc = http_reply_error(rq, 503, "out of memory");
        else if (have)
            answered = 0; /* otherwise an error reply is queued */
        rs_buf_reset(&img);
        pix_close(&p);
    }
    if (!answered && rs_buf_puts(&out, "--" BATCH_BOUNDARY "--\r\n"))
        rc = http_reply_error(rq, 503, "out of memory");
    else if (!answered) {
        if (!t->no_store)
            http_set_header(rq, "Cache-Control", "private, max-age=31536000, immutable");
        rc = http_reply_buf(rq, 200, fmt == RENDER_PNG ? "multipart/related; type=\"image/png\"; boundary=" BATCH_BOUNDARY
                                                      : "multipart/related; type=\"image/jpeg\"; boundary=" BATCH_BOUNDARY,
                            out.p, out.len);
    }
    rs_buf_free(&out);
    rs_buf_free(&img);
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

/* ---- bulk data: /instances/{sop}/bulk/{GGGGEEEE}[/{item}/{GGGGEEEE}]... (record.c's BulkDataURIs) ---- */

/* The element a bulk path names (items 0-based), or NULL. */
static dcm_elem *bulk_find(dcm_ds *ds, const char *path)
{
    char buf[256], *save = NULL;
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return NULL;
    for (char *tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        if (strlen(tok) != 8 || strspn(tok, "0123456789abcdefABCDEF") != 8)
            return NULL;
        dcm_elem *e = dcm_ds_find(ds, (uint32_t)strtoul(tok, NULL, 16));
        char *item = strtok_r(NULL, "/", &save);
        if (!e || !item)
            return e;
        char *end;
        unsigned long k = strtoul(item, &end, 10);
        if (*end || end == item || e->vr != DCM_VR_SQ || k >= e->v.sq.n)
            return NULL;
        ds = e->v.sq.items[k];
    }
    return NULL;
}

/* The VRs the metadata gives as BulkDataURIs (dcm_json_write's binary ones). */
static int bulk_vr(uint16_t vr)
{
    return vr == DCM_VR_OB || vr == DCM_VR_OW || vr == DCM_VR_OF || vr == DCM_VR_OD || vr == DCM_VR_OL ||
           vr == DCM_VR_OV || vr == DCM_VR_UN;
}

typedef struct blob_ctx {
    pix p;
    dcm_elem *e;
} blob_ctx;

static void blob_free(void *c)
{
    pix_close(&((blob_ctx *)c)->p);
    free(c);
}

static int blob_part(void *c, size_t i, dw_part *part, rs_err *err)
{
    blob_ctx *b = c;
    if (i == 1)
        return 1;
    snprintf(part->ctype, sizeof part->ctype, "application/octet-stream; transfer-syntax=" DCM_TS_EXPLICIT_LE);
    return rs_buf_append(&part->body, b->e->v.bytes, b->e->len);
}

int wado_bulk(dicomweb *dw, http_req *rq, const dw_target *t, const char *path)
{
    if (!t->instance)
        return http_reply_error(rq, 404, "bulk data is under an instance: .../instances/{uid}/bulk/{tag}");
    int pixels = !strcasecmp(path, "7FE00010");
    blob_ctx *b = pixels ? NULL : calloc(1, sizeof *b);
    frames_ctx *fc = pixels ? calloc(1, sizeof *fc) : NULL;
    if (!b && !fc)
        return http_reply_error(rq, 503, "out of memory");
    pix *p = pixels ? &fc->p : &b->p;
    int rc = pix_open_as(dw, t, pixels, p);
    if (rc) {
        rc = reply_pix_error(rq, rc, &p->err);
        free(b);
        free(fc);
        return rc;
    }
    if (pixels) { /* every frame, in order */
        const codec_desc *d = codec_get_desc(fc->p.img);
        fc->n = d->frames;
        fc->want = malloc((size_t)d->frames * sizeof *fc->want);
        if (!fc->want) {
            frames_free(fc);
            return http_reply_error(rq, 503, "out of memory");
        }
        for (uint32_t k = 0; k < d->frames; k++)
            fc->want[k] = k + 1;
        return reply_frames(rq, fc, "bulk", 1);
    }
    dw_tc tc;
    char msg[512], etag[160];
    b->e = bulk_find(b->p.f->ds, path);
    if (!b->e || !bulk_vr(b->e->vr) || (b->e->flags & DCM_EF_ENCAPS)) {
        rc = http_reply_error(rq, 404, "no bulk value %.80s in this instance", path);
    } else if (dw_tc_choose(http_req_header(rq, "Accept"), DW_TC_FRAMES, DCM_TS_EXPLICIT_LE, NULL, &tc, msg, sizeof msg) ||
               tc.convert || strcmp(tc.part_type, "application/octet-stream")) {
        rc = http_reply_error(rq, 406, "bulk data is sent as multipart/related; type=\"application/octet-stream\"");
    } else if ((rc = dcm_file_load(b->p.f, b->e, &b->p.err))) {
        rc = reply_pix_error(rq, rc, &b->p.err);
    } else {
        snprintf(etag, sizeof etag, "%.32s-b-%.100s", b->p.info.hash, path);
        if (http_etag_check(rq, etag)) {
            blob_free(b);
            return RS_OK;
        }
        http_set_header(rq, "Cache-Control", "private, max-age=31536000, immutable");
        rs_err err;
        rs_err_clear(&err);
        rc = dw_reply_parts(rq, "application/octet-stream", blob_part, b, blob_free, &err);
        if (rc == RS_OK)
            return RS_OK;
        rc = reply_pix_error(rq, rc, &err);
    }
    blob_free(b);
    return rc;
}

/* ---- study and series /rendered: every frame of every instance, one image per part --------------- */

typedef struct sop_entry {
    char sop[STORE_UID_MAX + 1], series[STORE_UID_MAX + 1];
    int64_t series_number, number;
} sop_entry;

typedef struct rendered_ctx {
    dicomweb *dw;
    dw_target t;            /* its UIDs point into study/series below: the request's die with the handler */
    char study[STORE_UID_MAX + 1], series[STORE_UID_MAX + 1];
    char base[256];         /* the request's base URL, for each part's Content-Location */
    render_params rp;
    sop_entry *v;
    size_t n, cap, next;    /* next: instance to open */
    int open;
    uint32_t frame;         /* next frame of the open instance */
    pix p;
} rendered_ctx;

static void rendered_free(void *c)
{
    rendered_ctx *r = c;
    if (r->open)
        pix_close(&r->p);
    free(r->v);
    free(r);
}

static int collect_sop(void *ctx, const store_match *m)
{
    rendered_ctx *r = ctx;
    if (r->n == 100000)
        return RS_ELIMIT;
    if (rs_grow((void **)&r->v, &r->cap, r->n, sizeof *r->v, 64))
        return RS_ENOMEM;
    sop_entry *e = &r->v[r->n++];
    snprintf(e->sop, sizeof e->sop, "%s", m->sop_uid);
    snprintf(e->series, sizeof e->series, "%s", m->series_uid ? m->series_uid : "");
    if (dcm_ds_get_i64(m->ds, DCM_TAG(0x0020, 0x0011), 0, &e->series_number))
        e->series_number = INT64_MAX;
    if (dcm_ds_get_i64(m->ds, DCM_TAG(0x0020, 0x0013), 0, &e->number))
        e->number = INT64_MAX;
    return 0;
}

/* Series by number (then UID), instances by InstanceNumber (then UID): the order a viewer shows. */
static int sop_cmp(const void *a, const void *b)
{
    const sop_entry *x = a, *y = b;
    if (x->series_number != y->series_number)
        return x->series_number < y->series_number ? -1 : 1;
    int c = strcmp(x->series, y->series);
    if (c)
        return c;
    if (x->number != y->number)
        return x->number < y->number ? -1 : 1;
    return strcmp(x->sop, y->sop);
}

static int rendered_part(void *c, size_t i, dw_part *part, rs_err *err)
{
    rendered_ctx *r = c;
    for (;;) {
        if (!r->open) {
            if (r->next == r->n)
                return 1;
            dw_target one = r->t;
            one.instance = r->v[r->next++].sop;
            int rc = pix_open(r->dw, &one, &r->p);
            if (rc == RS_ENOTFOUND)
                continue; /* no pixel data (a report, a key object): nothing to render */
            if (rc == RS_EUNSUPPORTED) { /* one odd instance does not take the study's images away */
                rs_log(RS_LOG_WARN, "WADO-RS rendered: instance %s skipped: %s", one.instance, r->p.err.msg);
                continue;
            }
            if (rc) {
                *err = r->p.err;
                return rc;
            }
            r->open = 1;
            r->frame = 0;
        }
        if (r->frame < codec_get_desc(r->p.img)->frames)
            break;
        pix_close(&r->p);
        r->open = 0;
    }
    const char *mime = NULL;
    int rc = render_frame(r->p.f, r->p.img, r->frame++, &r->rp, &part->body, &mime, err);
    if (rc == RS_OK) {
        const sop_entry *e = &r->v[r->next - 1];
        snprintf(part->ctype, sizeof part->ctype, "%s", mime);
        snprintf(part->location, sizeof part->location, "%s" DICOMWEB_PREFIX "/studies/%s/series/%s/instances/%s/frames/%u/rendered",
                 r->base, r->study, e->series, e->sop, r->frame);
    }
    return rc;
}

int wado_rendered_of(dicomweb *dw, http_req *rq, const dw_target *t)
{
    rendered_ctx *r = calloc(1, sizeof *r);
    if (!r)
        return http_reply_error(rq, 503, "out of memory");
    r->dw = dw;
    r->t = *t;
    snprintf(r->study, sizeof r->study, "%s", t->study);
    snprintf(r->series, sizeof r->series, "%s", t->series ? t->series : "");
    snprintf(r->base, sizeof r->base, "%s", http_req_base_url(rq));
    r->t.study = r->study;
    r->t.series = t->series ? r->series : NULL;
    r->rp = (render_params)RENDER_PARAMS_DEFAULT;
    const char *bad = NULL;
    int fmt = pick_format(rq, NULL), rc;
    if (render_opts(rq, 0, &r->rp, &bad)) {
        rendered_free(r);
        return http_reply_error(rq, 400, "%s", bad);
    }
    if (fmt < 0) {
        rendered_free(r);
        return http_reply_error(rq, 406, "rendered images are multipart/related; type=\"image/jpeg\" or \"image/png\"");
    }
    r->rp.format = (render_format)fmt;
    store_keyset ks;
    store_keyset_init(&ks);
    rs_err err;
    rs_err_clear(&err);
    rc = store_keyset_add(&ks, DCM_TAG_STUDY_UID, 0, t->study, &err);
    if (rc == RS_OK && t->series)
        rc = store_keyset_add(&ks, DCM_TAG_SERIES_UID, 0, t->series, &err);
    rc = rc ? rc : store_keyset_add(&ks, DCM_TAG(0x0020, 0x0011), 0, NULL, &err);
    rc = rc ? rc : store_keyset_add(&ks, DCM_TAG(0x0020, 0x0013), 0, NULL, &err);
    store_query q = {.level = STORE_LEVEL_IMAGE, .model = STORE_STUDY_ROOT, .keys = ks.key, .n_keys = ks.n};
    rc = rc ? rc : store_query_run(dw->st, &q, collect_sop, r, &err);
    store_keyset_free(&ks);
    if (rc) {
        rendered_free(r);
        return rc == RS_ELIMIT ? http_reply_error(rq, 413, "more than 100000 instances: ask per series")
                               : http_reply_error(rq, http_status_for(rc), "%s", err.msg[0] ? err.msg : rs_strerror(rc));
    }
    if (r->n)
        qsort(r->v, r->n, sizeof *r->v, sop_cmp);
    http_set_header(rq, "Cache-Control", "private, no-cache");
    rc = dw_reply_parts(rq, fmt == RENDER_JPEG ? "image/jpeg" : "image/png", rendered_part, r, rendered_free, &err);
    if (rc == RS_OK)
        return RS_OK;
    rendered_free(r); /* not taken by the stream */
    return rc == 1 ? http_reply_error(rq, 404, "no such %s, or nothing in it to render", t->series ? "series" : "study")
                   : reply_pix_error(rq, rc, &err);
}
