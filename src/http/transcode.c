/*
 * transcode.c - Accept negotiation (PS3.18 8.7.3) and the decompression behind WADO-RS
 * transcoding: frames and pixel data to native little endian, instances to an uncompressed
 * Part 10 file through the writer. See transcode.h.
 */
#include "transcode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../dicom/tag.h"
#include "../dicom/writer.h"

#define OCTET "application/octet-stream"
#define MAX_RANGES 16

/* PS3.18 Table 8.7.3-5 (and -3 for application/octet-stream): media types of frames. */
static const struct {
    const char *type;
    const char *ts[4];
} media[] = {
    {"image/jpeg", {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"}},
    {"image/jls", {"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}},
    {"image/jp2", {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"}},
    {"image/jpx", {"1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93"}},
    {"image/jphc", {"1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"}},
    {"image/dicom-rle", {"1.2.840.10008.1.2.5"}},
    {"image/x-dicom-rle", {"1.2.840.10008.1.2.5"}},
};

/* One media range of an Accept header. */
typedef struct range {
    char type[72];   /* the part type: "multipart/related; type=X" -> X; "" for any */
    char ts[72];     /* transfer-syntax parameter; "" when absent */
    double q;
    int ok;          /* a multipart/related or * / * range (others are not offered) */
} range;

static void copy_token(char *dst, size_t cap, const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t' || *s == '"'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '"'))
        n--;
    snprintf(dst, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
}

/* Parse one media range s[0..n): "multipart/related; type=\"image/jpeg\"; transfer-syntax=..." */
static void parse_range(const char *s, size_t n, range *r)
{
    memset(r, 0, sizeof *r);
    r->q = 1;
    size_t i = 0, start = 0;
    int field = 0, quoted = 0;
    char mt[64] = "";
    for (; i <= n; i++) {
        if (i < n && s[i] == '"')
            quoted = !quoted;
        if (i < n && (quoted || s[i] != ';'))
            continue;
        const char *f = s + start;
        size_t fl = i - start;
        if (field == 0) {
            copy_token(mt, sizeof mt, f, fl);
        } else {
            const char *eq = memchr(f, '=', fl);
            if (eq) {
                char name[32], value[72];
                copy_token(name, sizeof name, f, (size_t)(eq - f));
                copy_token(value, sizeof value, eq + 1, fl - (size_t)(eq + 1 - f));
                if (!strcasecmp(name, "type"))
                    snprintf(r->type, sizeof r->type, "%s", value);
                else if (!strcasecmp(name, "transfer-syntax"))
                    snprintf(r->ts, sizeof r->ts, "%s", value);
                else if (!strcasecmp(name, "q"))
                    r->q = strtod(value, NULL);
            }
        }
        field++;
        start = i + 1;
    }
    if (!strcmp(mt, "*/*") || !strcmp(mt, "*") || !mt[0]) {
        r->ok = 1;
        r->type[0] = 0;
    } else {
        r->ok = !strcasecmp(mt, "multipart/related") || !strcasecmp(mt, "multipart/*");
    }
    if (!strcmp(r->type, "*/*"))
        r->type[0] = 0;
}

/* Accept -> ranges sorted by q (stable); an absent header is one "any" range. */
static size_t parse_accept(const char *a, range *out)
{
    size_t n = 0;
    if (!a || !*a) {
        parse_range("", 0, &out[n++]);
        return n;
    }
    const char *s = a;
    int quoted = 0;
    for (const char *p = a;; p++) {
        if (*p == '"')
            quoted = !quoted;
        if (*p && (quoted || *p != ','))
            continue;
        if (n < MAX_RANGES && p > s)
            parse_range(s, (size_t)(p - s), &out[n++]);
        if (!*p)
            break;
        s = p + 1;
    }
    for (size_t i = 1; i < n; i++) /* insertion sort, stable */
        for (size_t k = i; k > 0 && out[k].q > out[k - 1].q; k--) {
            range t = out[k];
            out[k] = out[k - 1];
            out[k - 1] = t;
        }
    return n;
}

/* The media type whose syntaxes include ts (NULL: none). */
static int media_has(const char *type, const char *ts)
{
    for (size_t i = 0; i < sizeof media / sizeof media[0]; i++)
        if (!strcasecmp(media[i].type, type))
            for (int k = 0; k < 4 && media[i].ts[k]; k++)
                if (!strcmp(media[i].ts[k], ts))
                    return 1;
    return 0;
}

static const char *media_of(const char *ts)
{
    for (size_t i = 0; i < sizeof media / sizeof media[0]; i++)
        if (media_has(media[i].type, ts))
            return media[i].type;
    return NULL;
}

static int is_native(const char *ts)
{
    const dcm_ts *t = dcm_ts_find(ts, strlen(ts));
    return t && !t->encapsulated; /* unknown UIDs are compressed ones (PS3.5 A.4) */
}

static void set(dw_tc *out, const char *ts, const char *type, int convert)
{
    snprintf(out->ts, sizeof out->ts, "%s", ts);
    snprintf(out->part_type, sizeof out->part_type, "%s", type);
    out->convert = convert;
}

/* Can one range be answered for frames of stored? */
static int fit_frames(const range *r, const char *stored, dw_tc *out)
{
    const char *type = r->type;
    int any_ts = !strcmp(r->ts, "*");
    if (!*type || !strcasecmp(type, OCTET)) {
        if (any_ts || !strcmp(r->ts, stored)) {
            /* native frames come from the codec in little endian, whatever the file's order */
            set(out, is_native(stored) ? DCM_TS_EXPLICIT_LE : stored, OCTET, 0);
            return 1;
        }
        if (!r->ts[0] || !strcmp(r->ts, DCM_TS_EXPLICIT_LE)) {
            set(out, DCM_TS_EXPLICIT_LE, OCTET, !is_native(stored)); /* native frames are little endian already */
            return 1;
        }
        return 0;
    }
    /* a compressed media type: the stored bytes if they are of that type (no encoder here) */
    if (media_has(type, stored) && (any_ts || !r->ts[0] || !strcmp(r->ts, stored))) {
        set(out, stored, type, 0);
        return 1;
    }
    return 0;
}

static int fit_objects(const range *r, const char *stored, dw_tc *out)
{
    if (*r->type && strcasecmp(r->type, "application/dicom"))
        return 0;
    if (!r->ts[0] || !strcmp(r->ts, "*") || !strcmp(r->ts, stored)) {
        set(out, stored, "application/dicom", 0);
        return 1;
    }
    if (!strcmp(r->ts, DCM_TS_EXPLICIT_LE) || !strcmp(r->ts, DCM_TS_IMPLICIT_LE)) {
        set(out, r->ts, "application/dicom", 1);
        return 1;
    }
    return 0;
}

int dw_tc_choose(const char *accept, dw_tc_what what, const char *stored_ts, dw_tc *out, char *msg, size_t cap)
{
    range r[MAX_RANGES];
    size_t n = parse_accept(accept, r);
    for (size_t i = 0; i < n; i++) {
        if (!r[i].ok || r[i].q <= 0)
            continue;
        if (what == DW_TC_FRAMES ? fit_frames(&r[i], stored_ts, out) : fit_objects(&r[i], stored_ts, out))
            return RS_OK;
    }
    const char *m = media_of(stored_ts);
    if (what == DW_TC_FRAMES)
        snprintf(msg, cap,
                 "stored in %s; frames are sent as multipart/related; type=\"application/octet-stream\" with "
                 "transfer-syntax=" DCM_TS_EXPLICIT_LE " (uncompressed, the default) or transfer-syntax=* (as stored)%s%s%s "
                 "(radshare decompresses; transcoding into another compressed syntax is not done)",
                 stored_ts, m ? ", or type=\"" : "", m ? m : "", m ? "\"" : "");
    else
        snprintf(msg, cap,
                 "stored in %s; instances are sent as multipart/related; type=\"application/dicom\" with "
                 "transfer-syntax=* (as stored), " DCM_TS_EXPLICIT_LE " or " DCM_TS_IMPLICIT_LE
                 " (uncompressed) (radshare decompresses; transcoding into a compressed syntax is not done)",
                 stored_ts);
    return RS_EUNSUPPORTED;
}

/* ---- decompression -------------------------------------------------------------------------- */

static size_t frame_size(const codec_desc *d)
{
    int sb = d->bits_allocated <= 8 ? 1 : d->bits_allocated <= 16 ? 2 : 4;
    return (size_t)d->rows * d->cols * (size_t)d->spp * (size_t)sb; /* bounded by codec_open */
}

/* Decode frame index into dst (frame_size bytes, little endian); photometric of the result. */
static int decode_into(codec_image *img, uint32_t index, uint8_t *dst, char photometric[17], rs_err *err)
{
    const codec_desc *d = codec_get_desc(img);
    codec_frame fr;
    int rc = codec_decode_frame(img, index, &fr, err);
    if (rc == RS_OK && fr.size != frame_size(d))
        rc = rs_err_set(err, RS_EFORMAT, "frame %u decoded to %zu bytes, expected %zu", index + 1, fr.size,
                        frame_size(d));
    if (rc == RS_OK) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(dst, fr.data, fr.size);
#else
        int sb = (int)(fr.size / ((size_t)fr.rows * fr.cols * (size_t)fr.spp));
        for (size_t i = 0; i < fr.size; i += (size_t)sb)
            for (int k = 0; k < sb; k++)
                dst[i + k] = ((const uint8_t *)fr.data)[i + (size_t)(sb - 1 - k)];
#endif
        if (photometric)
            snprintf(photometric, 17, "%s", fr.photometric);
    }
    codec_frame_free(&fr);
    return rc;
}

static int check_decodable(const codec_desc *d, uint64_t bytes, uint64_t max, const char *what, rs_err *err)
{
    if (d->bits_allocated == 1)
        return rs_err_set(err, RS_EUNSUPPORTED, "1-bit compressed pixel data is not decompressed");
    if (bytes > max)
        return rs_err_set(err, RS_ELIMIT,
                          "%s would be %llu bytes decompressed, above the %llu MiB radshare builds for one answer "
                          "(ask transfer-syntax=* for the stored bytes)",
                          what, (unsigned long long)bytes, (unsigned long long)(max >> 20));
    return RS_OK;
}

int dw_tc_frame_native(codec_image *img, uint32_t index, rs_buf *out, rs_err *err)
{
    const codec_desc *d = codec_get_desc(img);
    if (!d->encapsulated) {
        const uint8_t *p;
        size_t n;
        int rc = codec_frame_bytes(img, index, &p, &n, err);
        return rc ? rc : rs_buf_append(out, p, n);
    }
    size_t fb = frame_size(d);
    int rc = check_decodable(d, fb, DW_TC_MAX_FRAME, "a frame", err);
    rc = rc ? rc : rs_buf_reserve(out, fb);
    if (rc == RS_ENOMEM)
        return rs_err_set(err, rc, "out of memory for a %zu-byte frame", fb);
    rc = rc ? rc : decode_into(img, index, out->p + out->len, NULL, err);
    if (rc == RS_OK)
        out->len += fb;
    return rc;
}

/* What a decompressed lossy image must still say (PS3.3 C.7.6.1.1.5). */
static int keep_lossy(dcm_ds *ds, const char *ts)
{
    static const struct {
        const char *ts, *method;
    } methods[] = {{"1.2.840.10008.1.2.4.50", "ISO_10918_1"}, {"1.2.840.10008.1.2.4.51", "ISO_10918_1"},
                   {"1.2.840.10008.1.2.4.81", "ISO_14495_1"}, {"1.2.840.10008.1.2.4.91", "ISO_15444_1"},
                   {"1.2.840.10008.1.2.4.203", "ISO_15444_15"}};
    int rc = RS_OK;
    if (!dcm_ds_find(ds, DCM_TAG(0x0028, 0x2110)))
        rc = dcm_ds_set_str(ds, DCM_TAG(0x0028, 0x2110), DCM_VR_CS, "01");
    for (size_t i = 0; rc == RS_OK && i < sizeof methods / sizeof methods[0]; i++)
        if (!strcmp(ts, methods[i].ts) && !dcm_ds_find(ds, DCM_TAG(0x0028, 0x2114)))
            rc = dcm_ds_set_str(ds, DCM_TAG(0x0028, 0x2114), DCM_VR_CS, methods[i].method);
    return rc;
}

static int set_us(dcm_ds *ds, uint32_t tag, unsigned v)
{
    uint8_t b[2] = {(uint8_t)(v & 0xFF), (uint8_t)(v >> 8)};
    return dcm_ds_set_bytes(ds, tag, DCM_VR_US, b, 2);
}

/* Replace encapsulated pixel data by its native form; *pixels receives the buffer the element
   points to (freed by the caller after writing). */
static int decompress(dcm_file *f, uint8_t **pixels, rs_err *err)
{
    codec_image *img = NULL;
    int rc = codec_open(f, NULL, &img, err);
    if (rc)
        return rc;
    codec_desc d = *codec_get_desc(img);
    size_t fb = frame_size(&d);
    uint64_t total = (uint64_t)fb * d.frames;
    char photometric[17] = "";
    rc = check_decodable(&d, total, DW_TC_MAX_PIXELS, "the pixel data", err);
    uint8_t *buf = rc ? NULL : malloc((size_t)total + 2);
    if (rc == RS_OK && !buf)
        rc = rs_err_set(err, RS_ENOMEM, "out of memory for %llu bytes of pixel data", (unsigned long long)total);
    for (uint32_t k = 0; rc == RS_OK && k < d.frames; k++)
        rc = decode_into(img, k, buf + (size_t)k * fb, photometric, err);
    codec_close(img);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[total] = buf[total + 1] = 0; /* even length (PS3.5 7.1.1), and a NUL as the model keeps */
    *pixels = buf;
    dcm_ds *ds = f->ds;
    dcm_elem *px = dcm_ds_put(ds, DCM_TAG_PIXEL_DATA, d.bits_allocated > 8 ? DCM_VR_OW : DCM_VR_OB);
    if (!px)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    px->len = (uint32_t)(total + (total & 1));
    px->v.bytes = buf;
    if (strlen(photometric) % 2)
        strcat(photometric, " ");
    rc = dcm_ds_set_str(ds, DCM_TAG(0x0028, 0x0004), DCM_VR_CS, photometric);
    if (rc == RS_OK && d.spp > 1)
        rc = set_us(ds, DCM_TAG(0x0028, 0x0006), 0); /* decoders give interleaved samples */
    if (rc == RS_OK && d.high_bit != d.bits_stored - 1)
        rc = set_us(ds, DCM_TAG(0x0028, 0x0102), (unsigned)d.bits_stored - 1); /* samples are in the low bits */
    if (rc == RS_OK && d.lossy)
        rc = keep_lossy(ds, d.ts_uid);
    dcm_ds_remove(ds, DCM_TAG(0x7FE0, 0x0001)); /* offset tables of the fragments that are gone */
    dcm_ds_remove(ds, DCM_TAG(0x7FE0, 0x0002));
    return rc ? rs_err_set(err, rc, "cannot rebuild the image attributes") : RS_OK;
}

int dw_tc_instance(dcm_file *f, const char *ts_uid, rs_buf *out, rs_err *err)
{
    const dcm_ts *ts = dcm_ts_find(ts_uid, strlen(ts_uid));
    if (!ts || ts->encapsulated)
        return rs_err_set(err, RS_EUNSUPPORTED, "radshare does not encode %s", ts_uid);
    uint8_t *pixels = NULL;
    dcm_elem *px = dcm_ds_find(f->ds, DCM_TAG_PIXEL_DATA);
    int rc = px && (px->flags & DCM_EF_ENCAPS) ? decompress(f, &pixels, err) : RS_OK;
    if (rc == RS_OK) {
        /* this file is radshare's making: its implementation, not the original writer's */
        dcm_ds_remove(f->meta, DCM_TAG_IMPL_CLASS_UID);
        dcm_ds_remove(f->meta, DCM_TAG_IMPL_VERSION);
        f->ts = ts; /* the pixel data now matches it; the writer checks */
        dcm_write_opts wo = {.ts = ts};
        px = dcm_ds_find(f->ds, DCM_TAG_PIXEL_DATA);
        if (px && !(px->flags & DCM_EF_ENCAPS) && px->len != DCM_UNDEF_LEN &&
            rs_buf_reserve(out, (size_t)px->len + 65536)) /* the pixels once more, not a doubling */
            rc = rs_err_set(err, RS_ENOMEM, "out of memory for a %u-byte instance", px->len);
        rc = rc ? rc : dcm_write(f, &wo, out, err);
    }
    free(pixels);
    return rc;
}
