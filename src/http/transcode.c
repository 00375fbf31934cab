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

/* Can ts be produced by an encoder for img (NULL: not known yet, assumed)? why: the reason not. */
static int can_encode(const char *ts, const codec_desc *img, char *why, size_t cap)
{
    if (!codec_enc_known(ts))
        return 0;
    rs_err e;
    rs_err_clear(&e);
    if (img && codec_enc_check(ts, img, &e)) {
        snprintf(why, cap, "%.*s", (int)cap - 1, e.msg);
        return 0;
    }
    return 1;
}

/* Can one range be answered for frames of stored? */
static int fit_frames(const range *r, const char *stored, const codec_desc *img, dw_tc *out, char *why, size_t cap)
{
    const char *type = r->type;
    int any_ts = !strcmp(r->ts, "*");
    if (!*type || !strcasecmp(type, OCTET)) {
        if (any_ts || !strcmp(r->ts, stored)) {
            /* native frames come from the codec in little endian, whatever the file's order */
            set(out, is_native(stored) ? DCM_TS_EXPLICIT_LE : stored, OCTET, DW_TC_STORED);
            return 1;
        }
        if (!r->ts[0] || !strcmp(r->ts, DCM_TS_EXPLICIT_LE)) {
            /* native frames are little endian already */
            set(out, DCM_TS_EXPLICIT_LE, OCTET, is_native(stored) ? DW_TC_STORED : DW_TC_DECODE);
            return 1;
        }
        return 0;
    }
    /* a compressed media type: the stored bytes if they are of that type, else an encoder's */
    if (media_has(type, stored) && (any_ts || !r->ts[0] || !strcmp(r->ts, stored))) {
        set(out, stored, type, DW_TC_STORED);
        return 1;
    }
    for (size_t i = 0; i < sizeof media / sizeof media[0]; i++)
        if (!strcasecmp(media[i].type, type))
            for (int k = 0; k < 4 && media[i].ts[k]; k++) {
                const char *ts = media[i].ts[k];
                /* without a syntax named, the first one of the type radshare encodes (lossless first) */
                if ((any_ts || !r->ts[0] || !strcmp(r->ts, ts)) && can_encode(ts, img, why, cap)) {
                    set(out, ts, media[i].type, DW_TC_ENCODE);
                    return 1;
                }
            }
    return 0;
}

static int fit_objects(const range *r, const char *stored, const codec_desc *img, dw_tc *out, char *why, size_t cap)
{
    if (*r->type && strcasecmp(r->type, "application/dicom"))
        return 0;
    if (!r->ts[0] || !strcmp(r->ts, "*") || !strcmp(r->ts, stored)) {
        set(out, stored, "application/dicom", DW_TC_STORED);
        return 1;
    }
    if (!strcmp(r->ts, DCM_TS_EXPLICIT_LE) || !strcmp(r->ts, DCM_TS_IMPLICIT_LE)) {
        set(out, r->ts, "application/dicom", DW_TC_DECODE);
        return 1;
    }
    if (can_encode(r->ts, img, why, cap)) {
        set(out, r->ts, "application/dicom", DW_TC_ENCODE);
        return 1;
    }
    return 0;
}

#define ENCODED "RLE " CODEC_TS_RLE ", JPEG-LS " CODEC_TS_JLS " and " CODEC_TS_JLS_NEAR ", JPEG 2000 " CODEC_TS_J2K \
                " and JPEG baseline " CODEC_TS_JPEG_BASELINE " (8-bit data only)"

int dw_tc_choose(const char *accept, dw_tc_what what, const char *stored_ts, const codec_desc *img, dw_tc *out,
                 char *msg, size_t cap)
{
    range r[MAX_RANGES];
    char why[200] = "";
    size_t n = parse_accept(accept, r);
    for (size_t i = 0; i < n; i++) {
        if (!r[i].ok || r[i].q <= 0)
            continue;
        if (what == DW_TC_FRAMES ? fit_frames(&r[i], stored_ts, img, out, why, sizeof why)
                                 : fit_objects(&r[i], stored_ts, img, out, why, sizeof why))
            return RS_OK;
    }
    const char *m = media_of(stored_ts);
    if (what == DW_TC_FRAMES)
        snprintf(msg, cap,
                 "stored in %s; frames are sent as multipart/related; type=\"application/octet-stream\" with "
                 "transfer-syntax=" DCM_TS_EXPLICIT_LE " (uncompressed, the default) or transfer-syntax=* (as stored)%s%s%s, "
                 "or encoded: type=\"image/x-dicom-rle\", \"image/jls\", \"image/jp2\", \"image/jpeg\" (" ENCODED ")%s%s",
                 stored_ts, m ? ", type=\"" : "", m ? m : "", m ? "\" as stored" : "", why[0] ? "; not for this image: " : "",
                 why);
    else
        snprintf(msg, cap,
                 "stored in %s; instances are sent as multipart/related; type=\"application/dicom\" with "
                 "transfer-syntax=* (as stored), " DCM_TS_EXPLICIT_LE " or " DCM_TS_IMPLICIT_LE
                 " (uncompressed), or encoded in " ENCODED "%s%s",
                 stored_ts, why[0] ? "; not for this image: " : "", why);
    return RS_EUNSUPPORTED;
}

int dw_tc_refine(const char *accept, dw_tc_what what, const char *stored_ts, dcm_file *f, dw_tc *out, char *msg,
                 size_t cap, rs_err *err)
{
    codec_image *img = NULL;
    int rc = codec_open(f, NULL, &img, err);
    if (rc == RS_ENOTFOUND) /* no pixel data: nothing to encode, the syntax is only a label */
        return RS_OK;
    if (rc)
        return rc;
    rc = dw_tc_choose(accept, what, stored_ts, codec_get_desc(img), out, msg, cap);
    codec_close(img);
    if (rc)
        rs_err_set(err, rc, "%s", msg);
    return rc;
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

/* Buffers the rewritten Pixel Data points into, freed after the file is written. */
typedef struct px_owned {
    uint8_t *pixels;     /* native pixel data */
    rs_buf frames;       /* encoded frames, one after the other */
    uint8_t *bot;        /* Basic Offset Table */
    dcm_frag *frags;
} px_owned;

static void px_owned_free(px_owned *o)
{
    free(o->pixels);
    rs_buf_free(&o->frames);
    free(o->bot);
    free(o->frags);
}

/* Value `v` added after the values of a string element (PS3.3 C.7.6.1.1.5: each lossy step
   appends its ratio and method). */
static int append_value(dcm_ds *ds, uint32_t tag, uint16_t vr, const char *v)
{
    const dcm_elem *e = dcm_ds_find(ds, tag);
    char all[256] = "";
    if (e && !(e->flags & (DCM_EF_BULK | DCM_EF_ENCAPS)) && e->v.bytes && e->len && e->len < 200) {
        snprintf(all, sizeof all, "%.*s", (int)e->len, (const char *)e->v.bytes);
        size_t n = strlen(all);
        while (n && (all[n - 1] == ' ' || all[n - 1] == 0))
            all[--n] = 0;
        if (n)
            strcat(all, "\\");
    }
    size_t n = strlen(all);
    snprintf(all + n, sizeof all - n, "%s", v);
    if (strlen(all) % 2)
        strcat(all, " ");
    return dcm_ds_set_str(ds, tag, vr, all);
}

/* The image attributes of frames now `photometric`, interleaved, in the low bits; lossy
   attributes for a lossy source (kept) and a lossy target (added, with its ratio). */
static int set_image_attrs(dcm_ds *ds, const codec_desc *d, const char *photometric, const char *target_ts,
                           double ratio)
{
    char pi[18];
    snprintf(pi, sizeof pi, "%s%s", photometric, strlen(photometric) % 2 ? " " : "");
    int rc = dcm_ds_set_str(ds, DCM_TAG(0x0028, 0x0004), DCM_VR_CS, pi);
    if (rc == RS_OK && d->spp > 1)
        rc = set_us(ds, DCM_TAG(0x0028, 0x0006), 0); /* decoders give interleaved samples */
    if (rc == RS_OK && d->high_bit != d->bits_stored - 1)
        rc = set_us(ds, DCM_TAG(0x0028, 0x0102), (unsigned)d->bits_stored - 1); /* samples are in the low bits */
    if (rc == RS_OK && d->lossy)
        rc = keep_lossy(ds, d->ts_uid);
    const char *method = codec_enc_lossy_method(target_ts);
    if (rc == RS_OK && method) {
        char r[17];
        snprintf(r, sizeof r, "%.2f", ratio);
        rc = dcm_ds_set_str(ds, DCM_TAG(0x0028, 0x2110), DCM_VR_CS, "01");
        rc = rc ? rc : append_value(ds, DCM_TAG(0x0028, 0x2112), DCM_VR_DS, r);
        rc = rc ? rc : append_value(ds, DCM_TAG(0x0028, 0x2114), DCM_VR_CS, method);
    }
    dcm_ds_remove(ds, DCM_TAG(0x7FE0, 0x0001)); /* offset tables of the fragments that are gone */
    dcm_ds_remove(ds, DCM_TAG(0x7FE0, 0x0002));
    return rc;
}

/* Every frame of img decoded into one native buffer (own->pixels) made f's Pixel Data. */
static int to_native(dcm_file *f, codec_image *img, px_owned *own, char photometric[17], rs_err *err)
{
    const codec_desc *d = codec_get_desc(img);
    size_t fb = frame_size(d);
    uint64_t total = (uint64_t)fb * d->frames;
    uint8_t *buf = malloc((size_t)total + 2);
    if (!buf)
        return rs_err_set(err, RS_ENOMEM, "out of memory for %llu bytes of pixel data", (unsigned long long)total);
    own->pixels = buf;
    int rc = RS_OK;
    for (uint32_t k = 0; rc == RS_OK && k < d->frames; k++)
        rc = decode_into(img, k, buf + (size_t)k * fb, photometric, err);
    if (rc)
        return rc;
    buf[total] = buf[total + 1] = 0; /* even length (PS3.5 7.1.1), and a NUL as the model keeps */
    dcm_elem *px = dcm_ds_put(f->ds, DCM_TAG_PIXEL_DATA, d->bits_allocated > 8 ? DCM_VR_OW : DCM_VR_OB);
    if (!px)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    px->len = (uint32_t)(total + (total & 1));
    px->v.bytes = buf;
    return RS_OK;
}

/* Every frame of img decoded and encoded in ts, one fragment each after a Basic Offset Table,
   made f's (encapsulated) Pixel Data; *ratio: native bytes / encoded bytes. One decoded frame
   at a time; the encoded frames are bounded by DW_TC_MAX_PIXELS too. */
static int to_encoded(dcm_file *f, codec_image *img, const char *ts, const codec_enc_opts *eo, px_owned *own,
                      char photometric[17], double *ratio, rs_err *err)
{
    const codec_desc *d = codec_get_desc(img);
    uint32_t nf = d->frames;
    size_t *at = malloc(((size_t)nf + 1) * sizeof *at);
    own->bot = malloc((size_t)nf * 4);
    own->frags = calloc((size_t)nf + 1, sizeof *own->frags);
    int rc = at && own->bot && own->frags ? RS_OK : rs_err_set(err, RS_ENOMEM, "out of memory for the frame table");
    for (uint32_t k = 0; rc == RS_OK && k < nf; k++) {
        codec_frame fr = {0};
        at[k] = own->frames.len;
        rc = codec_decode_frame(img, k, &fr, err);
        rc = rc ? rc : codec_encode_frame(ts, &fr, eo, &own->frames, err);
        if (rc == RS_OK && k == 0)
            snprintf(photometric, 17, "%s", fr.photometric);
        codec_frame_free(&fr);
        if (rc == RS_OK && own->frames.len > DW_TC_MAX_PIXELS)
            rc = rs_err_set(err, RS_ELIMIT, "the encoded pixel data passes the %llu MiB radshare builds for one answer",
                            (unsigned long long)(DW_TC_MAX_PIXELS >> 20));
    }
    if (rc == RS_OK) {
        at[nf] = own->frames.len;
        uint64_t off = 0; /* item offsets: 8-byte item header + the fragment padded to even */
        for (uint32_t k = 0; k < nf; k++) {
            size_t len = at[k + 1] - at[k];
            for (int b = 0; b < 4; b++)
                own->bot[4 * k + b] = (uint8_t)(off >> (8 * b));
            own->frags[k + 1] = (dcm_frag){0, (uint32_t)len, own->frames.p + at[k]};
            off += 8 + len + (len & 1);
        }
        own->frags[0] = (dcm_frag){0, nf * 4, own->bot};
        *ratio = own->frames.len ? (double)frame_size(d) * nf / (double)own->frames.len : 0;
        dcm_elem *px = dcm_ds_put(f->ds, DCM_TAG_PIXEL_DATA, DCM_VR_OB);
        if (!px)
            rc = rs_err_set(err, RS_ENOMEM, "out of memory");
        else {
            px->flags = DCM_EF_ENCAPS | DCM_EF_UNDEF_LEN;
            px->len = DCM_UNDEF_LEN;
            px->v.px.frags = own->frags;
            px->v.px.n = nf + 1;
        }
    }
    free(at);
    return rc;
}

/* f's pixel data rewritten for ts: decoded (ts native) or decoded and encoded (ts compressed). */
static int convert_pixels(dcm_file *f, const dcm_ts *ts, const codec_enc_opts *eo, px_owned *own, rs_err *err)
{
    codec_image *img = NULL;
    int rc = codec_open(f, NULL, &img, err);
    if (rc)
        return rc;
    codec_desc d = *codec_get_desc(img);
    char photometric[17] = "";
    double ratio = 0;
    rc = check_decodable(&d, (uint64_t)frame_size(&d) * d.frames, DW_TC_MAX_PIXELS, "the pixel data", err);
    if (rc == RS_OK && ts->encapsulated)
        rc = codec_enc_check(ts->uid, &d, err);
    if (rc == RS_OK)
        rc = ts->encapsulated ? to_encoded(f, img, ts->uid, eo, own, photometric, &ratio, err)
                              : to_native(f, img, own, photometric, err);
    codec_close(img);
    if (rc == RS_OK) {
        const char *pi = ts->encapsulated ? codec_enc_photometric(ts->uid, photometric) : photometric;
        if (set_image_attrs(f->ds, &d, pi, ts->uid, ratio))
            rc = rs_err_set(err, RS_ENOMEM, "cannot rebuild the image attributes");
    }
    return rc;
}

int dw_tc_instance(dcm_file *f, const char *ts_uid, rs_buf *out, rs_err *err)
{
    return dw_tc_instance_opts(f, ts_uid, NULL, out, err);
}

int dw_tc_instance_opts(dcm_file *f, const char *ts_uid, const codec_enc_opts *eo, rs_buf *out, rs_err *err)
{
    const dcm_ts *ts = dcm_ts_find(ts_uid, strlen(ts_uid));
    if (!ts || (ts->encapsulated && !codec_enc_known(ts_uid)))
        return rs_err_set(err, RS_EUNSUPPORTED, "radshare does not encode %s", ts_uid);
    px_owned own = {0};
    dcm_elem *px = dcm_ds_find(f->ds, DCM_TAG_PIXEL_DATA);
    int encaps = px && (px->flags & DCM_EF_ENCAPS);
    /* compressed to native, anything to another compressed syntax (same syntax: not here) */
    int rc = px && (encaps || ts->encapsulated) && strcmp(f->ts->uid, ts->uid) ? convert_pixels(f, ts, eo, &own, err)
                                                                                : RS_OK;
    if (rc == RS_OK) {
        /* this file is radshare's making: its implementation, not the original writer's */
        dcm_ds_remove(f->meta, DCM_TAG_IMPL_CLASS_UID);
        dcm_ds_remove(f->meta, DCM_TAG_IMPL_VERSION);
        f->ts = ts; /* the pixel data now matches it; the writer checks */
        dcm_write_opts wo = {.ts = ts};
        px = dcm_ds_find(f->ds, DCM_TAG_PIXEL_DATA);
        size_t want = !px ? 0 : (px->flags & DCM_EF_ENCAPS) ? own.frames.len : px->len == DCM_UNDEF_LEN ? 0 : px->len;
        if (want && rs_buf_reserve(out, want + 65536)) /* the pixels once more, not a doubling */
            rc = rs_err_set(err, RS_ENOMEM, "out of memory for a %zu-byte instance", want);
        rc = rc ? rc : dcm_write(f, &wo, out, err);
    }
    px_owned_free(&own);
    return rc;
}

int dw_tc_frame_encoded(codec_image *img, uint32_t index, const char *ts, rs_buf *out, rs_err *err)
{
    const codec_desc *d = codec_get_desc(img);
    codec_frame fr = {0};
    int rc = check_decodable(d, frame_size(d), DW_TC_MAX_FRAME, "a frame", err);
    rc = rc ? rc : codec_enc_check(ts, d, err);
    rc = rc ? rc : codec_decode_frame(img, index, &fr, err);
    rc = rc ? rc : codec_encode_frame(ts, &fr, NULL, out, err);
    codec_frame_free(&fr);
    return rc;
}
