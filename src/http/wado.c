/*
 * wado.c - WADO-RS (PS3.18 10.4) and WADO-URI (PS3.18 9) retrieval.
 *
 * Objects: the matching instances' (hash, size, syntax) are listed with one index query, then
 * streamed as multipart/related; type="application/dicom" straight from the object files, one
 * open file at a time: a whole study never sits in memory. A single instance carries its
 * content hash as ETag with Cache-Control: immutable (a stored object never changes; a new
 * version is another hash).
 *
 * Metadata: the header JSON the store kept at ingest (index), never the files: a study's or
 * series' metadata is one query whose rows are concatenated, BulkDataURIs ("bulk/<path>")
 * made absolute. Its ETag is the hash of the member hashes (it changes when an instance is
 * added), so it is revalidated, not immutable.
 *
 * Transcoding: the Accept header is negotiated per object (transcode.c); an object asked in
 * another (uncompressed) syntax is rewritten, decompressing its pixel data, when its turn in
 * the stream comes: only that one instance is in memory.
 *
 * Frames, rendered images, thumbnails and bulk data are in pixels.c.
 */
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../dicom/json.h"
#include "../dicom/reader.h"
#include "../dicom/tag.h"
#include "../render/render.h"
#include "../util/log.h"
#include "dicomweb.h"
#include "transcode.h"

#define MAX_OBJECTS 100000
#define BOUNDARY "radshare-7b1d3f0c9e2a4b58"
#define TRANSCODE_MEMORY ((size_t)512 << 20) /* header and compressed pixels of one instance */

typedef struct obj {
    char hash[STORE_HASH_HEX + 1];
    char ts[STORE_UID_MAX + 1];
    char sop[STORE_UID_MAX + 1];
    uint64_t size;
    dw_tc tc;           /* what it is sent as (retrieve_objects) */
    int refused;        /* transcode_object: no encoder takes this image as Accept asks */
} obj;

typedef struct obj_list {
    obj *v;
    size_t n, cap;
    int too_many;
} obj_list;

static int collect(void *ctx, const store_match *m)
{
    obj_list *l = ctx;
    if (l->n == MAX_OBJECTS) {
        l->too_many = 1;
        return 1;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        obj *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv)
            return RS_ENOMEM;
        l->v = nv;
        l->cap = cap;
    }
    obj *o = &l->v[l->n++];
    snprintf(o->hash, sizeof o->hash, "%s", m->hash);
    snprintf(o->ts, sizeof o->ts, "%s", m->ts_uid ? m->ts_uid : "");
    snprintf(o->sop, sizeof o->sop, "%s", m->sop_uid ? m->sop_uid : "");
    o->size = m->size;
    memset(&o->tc, 0, sizeof o->tc); /* as stored, until negotiated */
    return 0;
}

/* The IMAGE-level query for t's UIDs. */
static int query_target(dicomweb *dw, const dw_target *t, int with_metadata, store_match_fn fn, void *ctx, rs_err *err)
{
    store_keyset ks;
    store_keyset_init(&ks);
    const uint32_t tags[] = {DCM_TAG_STUDY_UID, DCM_TAG_SERIES_UID, DCM_TAG_SOP_INSTANCE_UID};
    const char *uids[] = {t->study, t->series, t->instance};
    int rc = RS_OK;
    for (int i = 0; i < 3 && rc == RS_OK; i++)
        if (uids[i])
            rc = store_keyset_add(&ks, tags[i], 0, uids[i], err);
    store_query q = {.level = STORE_LEVEL_IMAGE, .model = STORE_STUDY_ROOT, .keys = ks.key, .n_keys = ks.n,
                     .with_metadata = with_metadata};
    rc = rc ? rc : store_query_run(dw->st, &q, fn, ctx, err);
    store_keyset_free(&ks);
    return rc;
}

static const char *level_word(const dw_target *t)
{
    return t->instance ? "instance" : t->series ? "series" : "study";
}

/* ---- multipart/related streaming ------------------------------------------------------------- */

typedef struct mp_stream {
    dicomweb *dw;
    obj_list l;
    size_t i;           /* current object */
    int fd;
    uint64_t off;       /* in the current file, or in conv */
    rs_buf conv;        /* the current object, transcoded (tc.convert) */
    char *accept;       /* the request's Accept, for dw_tc_refine */
    int primed;         /* conv already holds object 0 */
    char head[512];     /* part header or closing delimiter being sent */
    size_t head_len, head_off;
    int phase;          /* 0: header, 1: body, 2: CRLF, 3: closing, 4: done */
} mp_stream;

static void mp_free(void *ctx)
{
    mp_stream *m = ctx;
    if (m->fd >= 0)
        close(m->fd);
    rs_buf_free(&m->conv);
    free(m->accept);
    free(m->l.v);
    free(m);
}

static size_t take_head(mp_stream *m, uint8_t *buf, size_t max)
{
    size_t k = m->head_len - m->head_off < max ? m->head_len - m->head_off : max;
    memcpy(buf, m->head + m->head_off, k);
    m->head_off += k;
    return k;
}

static void set_head(mp_stream *m, int len)
{
    m->head_len = len > 0 ? (size_t)len : 0;
    m->head_off = 0;
}

/* o rewritten in o->tc.ts (decompressed when its pixel data is compressed, encoded when that
 * syntax is compressed) into out. An encoding chosen from the index alone is checked against
 * the image first (dw_tc_refine with accept): o->tc may change to Accept's next choice, and
 * o->refused is set when there is none. */
static int transcode_object(dicomweb *dw, obj *o, const char *accept, rs_buf *out, rs_err *err)
{
    char path[4096], msg[512];
    dcm_file *f = NULL;
    dcm_read_opts ro = {.bulk_min = 4096, .max_memory = TRANSCODE_MEMORY};
    rs_err_clear(err);
    rs_buf_reset(out);
    int rc = store_get_instance_path(dw->st, o->sop, path, sizeof path, err);
    rc = rc ? rc : dcm_read_path(path, &ro, &f, err);
    if (rc == RS_OK && o->tc.convert == DW_TC_ENCODE &&
        (rc = dw_tc_refine(accept, DW_TC_OBJECTS, o->ts, f, &o->tc, msg, sizeof msg, err)) == RS_EUNSUPPORTED)
        o->refused = 1;
    if (rc == RS_OK && !o->tc.convert) /* the next choice is the stored syntax: the file rewritten in it */
        o->tc.convert = DW_TC_DECODE;
    rc = rc ? rc : dw_tc_instance(f, o->tc.ts, out, err);
    dcm_file_free(f);
    return rc;
}

static uint64_t obj_size(const mp_stream *m, const obj *o)
{
    return o->tc.convert ? m->conv.len : o->size;
}

static ssize_t mp_step(mp_stream *m, uint8_t *buf, size_t max)
{
    for (;;) {
        if (m->head_off < m->head_len)
            return (ssize_t)take_head(m, buf, max);
        switch (m->phase) {
        case 0: {
            if (m->i == m->l.n) {
                set_head(m, snprintf(m->head, sizeof m->head, "--" BOUNDARY "--\r\n"));
                m->phase = 4;
                continue;
            }
            obj *o = &m->l.v[m->i];
            if (o->tc.convert) {
                rs_err err;
                if (!m->primed && transcode_object(m->dw, o, m->accept, &m->conv, &err)) {
                    rs_log(RS_LOG_WARN, "WADO-RS: instance %s cannot be sent in %s: %s (answer cut)", o->sop, o->tc.ts,
                           err.msg);
                    return -1;
                }
                m->primed = 0;
            } else if (store_open_instance(m->dw->st, o->hash, &m->fd, NULL, NULL, NULL)) {
                return -1;
            }
            m->off = 0;
            set_head(m, snprintf(m->head, sizeof m->head,
                                 "--" BOUNDARY "\r\nContent-Type: application/dicom; transfer-syntax=%s\r\n"
                                 "Content-Length: %llu\r\n\r\n", o->tc.ts, (unsigned long long)obj_size(m, o)));
            m->phase = 1;
            continue;
        }
        case 1: {
            obj *o = &m->l.v[m->i];
            uint64_t size = obj_size(m, o);
            if (o->tc.convert && m->off < size) {
                size_t k = size - m->off < max ? (size_t)(size - m->off) : max;
                memcpy(buf, m->conv.p + m->off, k);
                m->off += k;
                return (ssize_t)k;
            }
            if (m->off == size) {
                if (m->fd >= 0)
                    close(m->fd);
                m->fd = -1;
                rs_buf_reset(&m->conv);
                atomic_fetch_add(&m->dw->n.retrieved_instances, 1);
                atomic_fetch_add(&m->dw->n.retrieved_bytes, size);
                set_head(m, snprintf(m->head, sizeof m->head, "\r\n"));
                m->i++;
                m->phase = 0;
                continue;
            }
            size_t k = o->size - m->off < max ? (size_t)(o->size - m->off) : max;
            ssize_t r = pread(m->fd, buf, k, (off_t)m->off);
            if (r <= 0)
                return -1; /* the client sees a cut body, never a wrong one */
            m->off += (uint64_t)r;
            return r;
        }
        default:
            return 0;
        }
    }
}

/* Fill as much of buf as the objects allow: small instances share a chunk. */
static ssize_t mp_read(void *ctx, uint8_t *buf, size_t max)
{
    mp_stream *m = ctx;
    size_t total = 0;
    while (total < max) {
        ssize_t r = mp_step(m, buf + total, max - total);
        if (r < 0)
            return total ? (ssize_t)total : -1;
        if (r == 0)
            break;
        total += (size_t)r;
    }
    return (ssize_t)total;
}

/* Each object's answer syntax; a message for the 406 when one cannot be sent as asked. */
static int negotiate(http_req *rq, obj_list *l, char *msg, size_t cap)
{
    const char *accept = http_req_header(rq, "Accept");
    for (size_t i = 0; i < l->n; i++)
        if (dw_tc_choose(accept, DW_TC_OBJECTS, l->v[i].ts, NULL, &l->v[i].tc, msg, cap))
            return RS_EUNSUPPORTED;
    return RS_OK;
}

static int retrieve_objects(dicomweb *dw, http_req *rq, const dw_target *t)
{
    mp_stream *m = calloc(1, sizeof *m);
    if (!m)
        return http_reply_error(rq, 503, "out of memory");
    m->dw = dw;
    m->fd = -1;
    const char *accept = http_req_header(rq, "Accept");
    m->accept = strdup(accept ? accept : "");
    if (!m->accept) {
        free(m);
        return http_reply_error(rq, 503, "out of memory");
    }
    rs_err err;
    rs_err_clear(&err);
    char msg[512];
    int rc = query_target(dw, t, 0, collect, &m->l, &err);
    int refused = rc || m->l.n == 0 || m->l.too_many ? 0 : negotiate(rq, &m->l, msg, sizeof msg);
    /* a single instance is transcoded before answering, so that a failure gets its status */
    int prime = !rc && !refused && m->l.n == 1 && m->l.v[0].tc.convert;
    if (prime)
        rc = transcode_object(dw, &m->l.v[0], http_req_header(rq, "Accept"), &m->conv, &err);
    if (rc || m->l.n == 0 || m->l.too_many || refused) {
        rc = prime && m->l.v[0].refused ? http_reply_error(rq, 406, "%s", err.msg)
             : rc == RS_EUNSUPPORTED ? http_reply_error(rq, 501, "%s", err.msg)
             : rc ? http_reply_error(rq, http_status_for(rc), "%s", err.msg)
             : m->l.too_many ? http_reply_error(rq, 413, "more than %d instances: retrieve by series", MAX_OBJECTS)
             : refused ? http_reply_error(rq, 406, "%s", msg)
                       : http_reply_error(rq, 404, "no such %s", level_word(t));
        mp_free(m);
        return rc;
    }
    m->primed = prime;
    if (t->instance) {
        char etag[160];
        snprintf(etag, sizeof etag, "%s%s%s", m->l.v[0].hash, m->l.v[0].tc.convert ? "-" : "",
                 m->l.v[0].tc.convert ? m->l.v[0].tc.ts : "");
        if (http_etag_check(rq, etag)) {
            mp_free(m);
            return RS_OK;
        }
        http_set_header(rq, "Cache-Control", "private, max-age=31536000, immutable");
        http_set_header(rq, "Vary", "Accept"); /* the syntax, so the bytes, depend on it */
    }
    return http_reply_stream(rq, 200, "multipart/related; type=\"application/dicom\"; boundary=" BOUNDARY, mp_read, m,
                             mp_free);
}

/* ---- metadata ----------------------------------------------------------------------------------- */

typedef struct meta_ctx {
    http_req *rq;
    rs_buf out;
    unsigned long n;
    EVP_MD_CTX *md;
    rs_err err;
} meta_ctx;

/* Header JSON with its relative "bulk/..." URIs made absolute. */
static int put_metadata(meta_ctx *mc, const char *json, size_t n, const char *study, const char *series, const char *sop)
{
    static const char key[] = "\"BulkDataURI\":\"bulk/";
    const char *p = json, *end = json + n;
    int rc = RS_OK;
    while (rc == RS_OK) {
        const char *hit = memmem(p, (size_t)(end - p), key, sizeof key - 1);
        if (!hit)
            break;
        rc = rs_buf_append(&mc->out, p, (size_t)(hit - p));
        rc = rc ? rc : rs_buf_printf(&mc->out, "\"BulkDataURI\":\"%s" DICOMWEB_PREFIX "/studies/%s/series/%s/instances/%s/bulk/",
                                     http_req_base_url(mc->rq), study, series, sop);
        p = hit + sizeof key - 1;
    }
    return rc ? rc : rs_buf_append(&mc->out, p, (size_t)(end - p));
}

/*
 * The store keeps headers up to the pixel data; an image (it has Rows) gets its Pixel Data as a
 * BulkDataURI (PS3.18 F.2.6), spliced before the object's closing brace. OB when compressed or
 * 8-bit, OW otherwise (PS3.5 8.2).
 */
static int add_pixel_uri(meta_ctx *mc, size_t from, const store_match *m)
{
    static const char ba_key[] = "\"00280100\":{\"vr\":\"US\",\"Value\":[";
    const char *js = (const char *)mc->out.p + from;
    size_t n = mc->out.len - from;
    if (!memmem(js, n, "\"00280010\"", 10)) /* the header JSON never holds the top-level Pixel Data */
        return RS_OK;
    while (mc->out.len > from && mc->out.p[mc->out.len - 1] != '}')
        mc->out.len--;
    if (mc->out.len == from)
        return RS_OK;
    const char *ba = memmem(js, n, ba_key, sizeof ba_key - 1);
    const dcm_ts *ts = m->ts_uid ? dcm_ts_find(m->ts_uid, strlen(m->ts_uid)) : NULL;
    int ow = (!ts || !ts->encapsulated) && ba && atoi(ba + sizeof ba_key - 1) > 8;
    mc->out.len--; /* the closing brace */
    return rs_buf_printf(&mc->out, ",\"7FE00010\":{\"vr\":\"%s\",\"BulkDataURI\":\"%s" DICOMWEB_PREFIX
                         "/studies/%s/series/%s/instances/%s/bulk/7FE00010\"}}", ow ? "OW" : "OB",
                         http_req_base_url(mc->rq), m->study_uid, m->series_uid, m->sop_uid);
}

static int on_meta(void *ctx, const store_match *m)
{
    meta_ctx *mc = ctx;
    int rc = rs_buf_puts(&mc->out, mc->n++ ? ",\n" : "\n");
    size_t start = mc->out.len;
    if (rc == RS_OK && m->metadata)
        rc = put_metadata(mc, m->metadata, m->metadata_len, m->study_uid, m->series_uid, m->sop_uid);
    else if (rc == RS_OK) { /* header over the index's cap: what the index has */
        dcm_json_opts jo = {.inline_max = UINT32_MAX};
        rc = dcm_json_write(m->ds, &jo, &mc->out, &mc->err);
    }
    if (rc == RS_OK)
        rc = add_pixel_uri(mc, start, m);
    if (rc == RS_OK && EVP_DigestUpdate(mc->md, m->hash, strlen(m->hash)) != 1)
        rc = RS_ENOMEM;
    return rc;
}

static int retrieve_metadata(dicomweb *dw, http_req *rq, const dw_target *t)
{
    if (!http_req_accepts(rq, "application/dicom+json") && !http_req_accepts(rq, "application/json"))
        return http_reply_error(rq, 406, "metadata is application/dicom+json");
    meta_ctx mc = {.rq = rq, .md = EVP_MD_CTX_new()};
    rs_err_clear(&mc.err);
    int rc = mc.md && EVP_DigestInit_ex(mc.md, EVP_sha256(), NULL) == 1 ? RS_OK : RS_ENOMEM;
    rc = rc ? rc : rs_buf_putc(&mc.out, '[');
    rc = rc ? rc : query_target(dw, t, 1, on_meta, &mc, &mc.err);
    rc = rc ? rc : rs_buf_puts(&mc.out, "\n]\n");
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dn = 0;
    char etag[2 * EVP_MAX_MD_SIZE + 2] = "m";
    if (rc == RS_OK && EVP_DigestFinal_ex(mc.md, d, &dn) == 1)
        for (unsigned i = 0; i < dn && i < 16; i++)
            snprintf(etag + 1 + 2 * i, 3, "%02x", d[i]);
    if (rc)
        rc = http_reply_error(rq, http_status_for(rc), "%s", mc.err.msg[0] ? mc.err.msg : rs_strerror(rc));
    else if (mc.n == 0)
        rc = http_reply_error(rq, 404, "no such %s", level_word(t));
    else if (!http_etag_check(rq, etag)) {
        http_set_header(rq, "Cache-Control", t->instance ? "private, max-age=31536000, immutable" : "private, no-cache");
        rc = http_reply_buf(rq, 200, "application/dicom+json", mc.out.p, mc.out.len);
    }
    EVP_MD_CTX_free(mc.md);
    rs_buf_free(&mc.out);
    return rc;
}

int wado_retrieve(dicomweb *dw, http_req *rq, const dw_target *t)
{
    if (!t->rest[0])
        return retrieve_objects(dw, rq, t);
    if (!strcmp(t->rest, "metadata"))
        return retrieve_metadata(dw, rq, t);
    const char *r = t->rest;
    if (!t->instance && !strcmp(r, "rendered"))
        return wado_rendered_of(dw, rq, t);
    if (!strcmp(r, "thumbnail"))
        return t->instance ? wado_render(dw, rq, t, 0, 1, NULL, NULL) : wado_thumbnail_of(dw, rq, t);
    if (t->instance && !strcmp(r, "rendered"))
        return wado_render(dw, rq, t, 0, 0, NULL, NULL);
    if (t->instance && !strncmp(r, "frames/", 7)) {
        const char *list = r + 7, *slash = strchr(list, '/');
        if (!slash)
            return wado_frames(dw, rq, t, list);
        char *end;
        unsigned long f = strtoul(list, &end, 10);
        int thumb = !strcmp(slash, "/thumbnail");
        if (end != slash || f == 0 || f > UINT32_MAX || (!thumb && strcmp(slash, "/rendered")))
            return http_reply_error(rq, 400, "expected frames/{n}/rendered or frames/{n}/thumbnail");
        return wado_render(dw, rq, t, (uint32_t)f, thumb, NULL, NULL);
    }
    if (!strncmp(r, "bulk/", 5))
        return wado_bulk(dw, rq, t, r + 5);
    return http_reply_error(rq, 404, "no such DICOMweb resource: %s", http_req_path(rq));
}

/* ---- WADO-URI ------------------------------------------------------------------------------------ */

/* rows/columns -> viewport, windowCenter/windowWidth, frameNumber, imageQuality (PS3.18 9.1.2). */
static int wado_uri_image(dicomweb *dw, http_req *rq, const dw_target *t, const char *ct)
{
    render_params p = RENDER_PARAMS_DEFAULT;
    const char *names[] = {"rows", "columns", "windowCenter", "windowWidth", "frameNumber", "imageQuality"};
    double v[6] = {0, 0, 0, 0, 1, 0};
    for (int i = 0; i < 6; i++) {
        const char *s = http_req_query(rq, names[i]);
        char *end;
        if (!s)
            continue;
        v[i] = strtod(s, &end);
        if (end == s || *end || (i != 2 && v[i] < 0) || (i < 2 && v[i] > 8192) || (i == 4 && (v[i] < 1 || v[i] > 1e6)) ||
            (i == 5 && v[i] > 100))
            return http_reply_error(rq, 400, "bad %s \"%.32s\"", names[i], s);
    }
    int has_c = http_req_query(rq, "windowCenter") != NULL, has_w = http_req_query(rq, "windowWidth") != NULL;
    if (has_c != has_w || (has_w && v[3] <= 0))
        return http_reply_error(rq, 400, "windowCenter and windowWidth go together, width > 0");
    p.viewport_h = (uint32_t)v[0];
    p.viewport_w = (uint32_t)v[1];
    p.has_window = has_w;
    p.center = v[2];
    p.width = v[3];
    p.quality = (int)v[5];
    return wado_render(dw, rq, t, (uint32_t)v[4], 0, ct, &p);
}

int wado_uri(http_req *rq, void *ctx)
{
    dicomweb *dw = ctx;
    const char *type = http_req_query(rq, "requestType");
    const char *uids[3] = {http_req_query(rq, "studyUID"), http_req_query(rq, "seriesUID"),
                           http_req_query(rq, "objectUID")};
    if (!type || strcmp(type, "WADO"))
        return http_reply_error(rq, 400, "requestType=WADO is required");
    for (int i = 0; i < 3; i++)
        if (!uids[i] || !dw_uid_ok(uids[i]))
            return http_reply_error(rq, 400, "studyUID, seriesUID and objectUID must be valid UIDs");
    const char *ct = http_req_query(rq, "contentType");
    if (!ct)
        ct = "image/jpeg";
    if (strcmp(ct, "application/dicom") && strcmp(ct, "image/jpeg") && strcmp(ct, "image/png"))
        return http_reply_error(rq, 406, "contentType %.64s is not offered (application/dicom, image/jpeg, image/png)", ct);
    dw_target t = {.study = uids[0], .series = uids[1], .instance = uids[2]};
    if (strcmp(ct, "application/dicom"))
        return wado_uri_image(dw, rq, &t, ct);
    obj_list l = {0};
    rs_err err;
    rs_err_clear(&err);
    int rc = query_target(dw, &t, 0, collect, &l, &err);
    int fd = -1;
    const char *ts = http_req_query(rq, "transferSyntax");
    char accept[160] = "";
    if (rc == RS_OK && l.n == 1 && ts) { /* PS3.18 9.1.2.2.4: the same choices as WADO-RS */
        char msg[512];
        snprintf(accept, sizeof accept, "multipart/related; type=\"application/dicom\"; transfer-syntax=%.64s", ts);
        if (dw_tc_choose(accept, DW_TC_OBJECTS, l.v[0].ts, NULL, &l.v[0].tc, msg, sizeof msg)) {
            free(l.v);
            return http_reply_error(rq, 406, "%s", msg);
        }
    }
    if (rc == RS_OK && l.n == 1 && l.v[0].tc.convert) {
        rs_buf b = RS_BUF_INIT;
        char etag[160];
        snprintf(etag, sizeof etag, "%s-%s", l.v[0].hash, l.v[0].tc.ts);
        if (!http_etag_check(rq, etag) && (rc = transcode_object(dw, &l.v[0], accept, &b, &err)) == RS_OK) {
            http_set_header(rq, "Cache-Control", "private, max-age=31536000, immutable");
            atomic_fetch_add(&dw->n.retrieved_instances, 1);
            atomic_fetch_add(&dw->n.retrieved_bytes, b.len);
            rc = http_reply_buf(rq, 200, "application/dicom", b.p, b.len);
        } else if (l.v[0].refused) {
            rc = http_reply_error(rq, 406, "%s", err.msg);
        } else if (rc == RS_EUNSUPPORTED) {
            rc = http_reply_error(rq, 501, "%s", err.msg);
        }
        rs_buf_free(&b);
    } else if (rc == RS_OK && l.n == 1 && !http_etag_check(rq, l.v[0].hash)) {
        rc = store_open_instance(dw->st, l.v[0].hash, &fd, NULL, NULL, &err);
        if (rc == RS_OK) {
            http_set_header(rq, "Cache-Control", "private, max-age=31536000, immutable");
            atomic_fetch_add(&dw->n.retrieved_instances, 1);
            atomic_fetch_add(&dw->n.retrieved_bytes, l.v[0].size);
            rc = http_reply_file(rq, 200, "application/dicom", fd, 0, l.v[0].size);
        }
    } else if (rc == RS_OK && l.n == 0) {
        rc = http_reply_error(rq, 404, "no such instance");
    }
    if (rc < 0)
        rc = http_reply_error(rq, http_status_for(rc), "%s", err.msg);
    free(l.v);
    return rc;
}
