/*
 * codec.c - the frame interface of codec.h: reads and checks the Image Pixel module, finds
 * each frame's bytes (native slice, or fragments via the Extended/Basic Offset Table, one
 * fragment per frame, or JPEG/J2K start markers) and hands them to the decoder of the transfer
 * syntax. All checks against the bytes present happen in codec_open, before any allocation
 * other than the frame table.
 */
#include "codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dicom/tag.h"
#include "decoders.h"

enum codec_kind { K_NATIVE, K_RLE, K_JPEG, K_JLS, K_J2K };

typedef struct codec_span {
    uint32_t first, count; /* fragment indexes (1-based: frags[0] is the offset table) */
} codec_span;

struct codec_image {
    dcm_file *f;
    dcm_elem *px;
    codec_desc d;
    codec_limits lim;
    int kind;
    const uint8_t *native;  /* native pixel data (maybe `owned`, byte order fixed) */
    size_t native_len;
    uint64_t frame_bits;    /* native bits per frame */
    uint8_t *owned;
    codec_span *spans;      /* encapsulated: fragments of each frame */
    uint8_t **joined;       /* encapsulated: frames of several fragments, joined on demand */
};

static const struct {
    const char *uid;
    int kind, lossy;
} syntaxes[] = {
    {"1.2.840.10008.1.2.4.50", K_JPEG, 1},  {"1.2.840.10008.1.2.4.51", K_JPEG, 1},
    {"1.2.840.10008.1.2.4.57", K_JPEG, 0},  {"1.2.840.10008.1.2.4.70", K_JPEG, 0},
    {"1.2.840.10008.1.2.4.80", K_JLS, 0},   {"1.2.840.10008.1.2.4.81", K_JLS, 1},
    {"1.2.840.10008.1.2.4.90", K_J2K, 0},   {"1.2.840.10008.1.2.4.91", K_J2K, 1},
    {"1.2.840.10008.1.2.4.201", K_J2K, 0},  {"1.2.840.10008.1.2.4.202", K_J2K, 0},
    {"1.2.840.10008.1.2.4.203", K_J2K, 1},  {"1.2.840.10008.1.2.5", K_RLE, 0},
};

/* ---- shared with the decoders ------------------------------------------------------------ */

static int sample_bytes(int bits_allocated) { return bits_allocated <= 8 ? 1 : bits_allocated <= 16 ? 2 : 4; }

int codec_frame_init(codec_frame *out, const codec_desc *d, int spp, const char *photometric, rs_err *err)
{
    int sb = sample_bytes(d->bits_allocated);
    static const codec_stype types[3][2] = {{CODEC_U8, CODEC_S8}, {CODEC_U16, CODEC_S16}, {CODEC_U32, CODEC_S32}};
    memset(out, 0, sizeof *out);
    size_t n = (size_t)d->rows * d->cols * (size_t)spp * (size_t)sb; /* bounded by codec_open */
    out->data = malloc(n ? n : 1);
    if (!out->data)
        return rs_err_set(err, RS_ENOMEM, "cannot allocate a frame of %zu bytes", n);
    out->rows = d->rows;
    out->cols = d->cols;
    out->spp = spp;
    out->type = types[sb == 1 ? 0 : sb == 2 ? 1 : 2][d->is_signed ? 1 : 0];
    out->bits_stored = d->bits_stored;
    out->size = n;
    snprintf(out->photometric, sizeof out->photometric, "%s", photometric);
    return RS_OK;
}

int codec_check_header(const codec_desc *d, const char *what, uint32_t w, uint32_t h, int comps,
                       int precision, rs_err *err)
{
    if (w != d->cols || h != d->rows)
        return rs_err_set(err, RS_EFORMAT, "%s is %ux%u but the dataset says %ux%u (columns x rows)", what, w, h,
                          d->cols, d->rows);
    if (comps != d->spp)
        return rs_err_set(err, RS_EFORMAT, "%s has %d components but SamplesPerPixel is %d", what, comps, d->spp);
    if (precision < 1 || precision > d->bits_allocated)
        return rs_err_set(err, RS_EFORMAT, "%s has %d-bit samples but BitsAllocated is %d", what, precision,
                          d->bits_allocated);
    return RS_OK;
}

const char *codec_native_photometric(const codec_desc *d)
{
    if (!codec_is_422(d))
        return d->photometric;
    /* upsampled: full-resolution YCbCr, full or partial range */
    return !strcmp(d->photometric, "YBR_FULL_422") ? "YBR_FULL" : "YBR_PARTIAL";
}

void codec_frame_fix(codec_frame *fr, int shift)
{
    size_t n = (size_t)fr->rows * fr->cols * (size_t)fr->spp;
    for (size_t i = 0; i < n; i++) {
        uint32_t raw;
        switch (fr->type) {
        case CODEC_U8: case CODEC_S8: raw = ((uint8_t *)fr->data)[i]; break;
        case CODEC_U16: case CODEC_S16: raw = ((uint16_t *)fr->data)[i]; break;
        default: raw = ((uint32_t *)fr->data)[i]; break;
        }
        codec_put(fr, i, raw >> shift);
    }
}

/* ---- the Image Pixel module -------------------------------------------------------------- */

/* An unsigned integer attribute; `def` when absent (def < 0: required). */
static int get_uint(const dcm_ds *ds, uint32_t tag, const char *name, int64_t def, int64_t max, int64_t *v,
                    rs_err *err)
{
    int rc = dcm_ds_get_i64(ds, tag, 0, v);
    if (rc == RS_ENOTFOUND || (rc == RS_OK && dcm_ds_find(ds, tag)->len == 0)) {
        if (def < 0)
            return rs_err_set(err, RS_EFORMAT, "%s (%04X,%04X) is missing", name, DCM_TAG_GROUP(tag),
                              DCM_TAG_ELEM(tag));
        *v = def;
        return RS_OK;
    }
    if (rc != RS_OK)
        return rs_err_set(err, RS_EFORMAT, "%s (%04X,%04X) is not a number", name, DCM_TAG_GROUP(tag),
                          DCM_TAG_ELEM(tag));
    if (*v < 0 || *v > max)
        return rs_err_set(err, RS_EFORMAT, "%s is %lld, outside 0..%lld", name, (long long)*v, (long long)max);
    return RS_OK;
}

static int read_desc(codec_image *img, rs_err *err)
{
    const dcm_ds *ds = img->f->ds;
    codec_desc *d = &img->d;
    int64_t rows, cols, frames, spp, ba, bs, hb, pr, pc;
    int rc;
    if ((rc = get_uint(ds, DCM_TAG_ROWS, "Rows", -1, 65535, &rows, err)) ||
        (rc = get_uint(ds, DCM_TAG_COLUMNS, "Columns", -1, 65535, &cols, err)) ||
        (rc = get_uint(ds, DCM_TAG(0x0028, 0x0008), "NumberOfFrames", 1, UINT32_MAX, &frames, err)) ||
        (rc = get_uint(ds, DCM_TAG_SAMPLES_PER_PIXEL, "SamplesPerPixel", 1, 65535, &spp, err)) ||
        (rc = get_uint(ds, DCM_TAG_BITS_ALLOCATED, "BitsAllocated", -1, 65535, &ba, err)) ||
        (rc = get_uint(ds, DCM_TAG(0x0028, 0x0101), "BitsStored", ba, 65535, &bs, err)) ||
        (rc = get_uint(ds, DCM_TAG(0x0028, 0x0102), "HighBit", bs - 1 < 0 ? 0 : bs - 1, 65535, &hb, err)) ||
        (rc = get_uint(ds, DCM_TAG_PIXEL_REPRESENTATION, "PixelRepresentation", 0, 1, &pr, err)) ||
        (rc = get_uint(ds, DCM_TAG(0x0028, 0x0006), "PlanarConfiguration", 0, 1, &pc, err)))
        return rc;
    if (rows == 0 || cols == 0 || frames == 0)
        return rs_err_set(err, RS_EFORMAT, "empty image: %lld rows, %lld columns, %lld frames", (long long)rows,
                          (long long)cols, (long long)frames);
    if (rows > img->lim.max_rows || cols > img->lim.max_cols || frames > img->lim.max_frames)
        return rs_err_set(err, RS_ELIMIT, "%lldx%lld pixels x %lld frames is above the limits", (long long)cols,
                          (long long)rows, (long long)frames);
    if (spp != 1 && spp != 3)
        return rs_err_set(err, RS_EUNSUPPORTED, "SamplesPerPixel %lld (only 1 and 3 are handled)", (long long)spp);
    if (ba != 1 && ba != 8 && ba != 16 && ba != 32)
        return rs_err_set(err, RS_EUNSUPPORTED, "BitsAllocated %lld (only 1, 8, 16 and 32 are handled)",
                          (long long)ba);
    if (bs < 1 || bs > ba || hb >= ba || hb + 1 < bs)
        return rs_err_set(err, RS_EFORMAT, "BitsStored %lld / HighBit %lld do not fit BitsAllocated %lld",
                          (long long)bs, (long long)hb, (long long)ba);
    d->rows = (uint32_t)rows;
    d->cols = (uint32_t)cols;
    d->frames = (uint32_t)frames;
    d->spp = (int)spp;
    d->bits_allocated = (int)ba;
    d->bits_stored = (int)bs;
    d->high_bit = (int)hb;
    d->is_signed = (int)pr;
    d->planar = spp > 1 ? (int)pc : 0;
    if (dcm_ds_get_str(ds, DCM_TAG(0x0028, 0x0004), 0, d->photometric, sizeof d->photometric) < 0)
        snprintf(d->photometric, sizeof d->photometric, "%s", spp == 1 ? "MONOCHROME2" : "RGB");
    uint64_t frame_bytes = (uint64_t)rows * (uint64_t)cols * (uint64_t)spp * (uint64_t)sample_bytes(d->bits_allocated);
    if (frame_bytes > img->lim.max_frame_bytes)
        return rs_err_set(err, RS_ELIMIT, "a decoded frame would be %llu bytes, above the %llu-byte limit",
                          (unsigned long long)frame_bytes, (unsigned long long)img->lim.max_frame_bytes);
    return RS_OK;
}

static int pick_syntax(codec_image *img, rs_err *err)
{
    const dcm_file *f = img->f;
    codec_desc *d = &img->d;
    const char *uid = f->ts && f->ts->uid[0] && !f->ts->encapsulated ? f->ts->uid : f->ts_uid;
    snprintf(d->ts_uid, sizeof d->ts_uid, "%.64s", uid);
    d->encapsulated = (img->px->flags & DCM_EF_ENCAPS) != 0;
    if (!d->encapsulated) {
        if (f->ts && f->ts->encapsulated)
            return rs_err_set(err, RS_EFORMAT, "transfer syntax %s needs encapsulated pixel data, found native", uid);
        img->kind = K_NATIVE;
        return RS_OK;
    }
    for (size_t i = 0; i < sizeof syntaxes / sizeof syntaxes[0]; i++)
        if (!strcmp(uid, syntaxes[i].uid)) {
            img->kind = syntaxes[i].kind;
            d->lossy = syntaxes[i].lossy;
            return RS_OK;
        }
    return rs_err_set(err, RS_EUNSUPPORTED, "no decoder for transfer syntax %s", uid[0] ? uid : "(none)");
}

/* ---- native layout ------------------------------------------------------------------------ */

static int open_native(codec_image *img, rs_err *err)
{
    codec_desc *d = &img->d;
    dcm_elem *px = img->px;
    uint64_t per_pixel = codec_is_422(d) ? 2 : (uint64_t)d->spp; /* YBR_*_422: Y Y Cb Cr per two pixels */
    if (codec_is_422(d) && d->cols % 2)
        return rs_err_set(err, RS_EFORMAT, "%s with an odd number of columns (%u)", d->photometric, d->cols);
    /* rows, cols <= 65535, spp <= 3, bits <= 32, frames <= 2^32: the product stays below 2^75 only
       in theory, so check each step */
    uint64_t bits = (uint64_t)d->rows * d->cols * per_pixel * (uint64_t)d->bits_allocated;
    if (d->frames > UINT64_MAX / bits)
        return rs_err_set(err, RS_EFORMAT, "Rows x Columns x frames x bits overflows");
    uint64_t need = (bits * d->frames + 7) / 8;
    if (px->len == DCM_UNDEF_LEN || need > px->len)
        return rs_err_set(err, RS_EFORMAT,
                          "pixel data holds %u bytes but %u x %u x %u frames x %d samples x %d bits need %llu",
                          px->len == DCM_UNDEF_LEN ? 0 : px->len, d->rows, d->cols, d->frames, d->spp,
                          d->bits_allocated, (unsigned long long)need);
    int rc = dcm_file_load(img->f, px, err);
    if (rc)
        return rc;
    img->frame_bits = bits;
    img->native = px->v.bytes;
    img->native_len = px->len;
    /* The reader swapped big-endian values per their VR: OW by 16 bits. 32-bit samples in OW
       still have their two halves in big-endian order, and 16-bit samples in OB were not
       swapped at all; fix a private copy so every decoder reads little endian. */
    int big = img->f->source_ts && img->f->source_ts->big_endian;
    int swap_halves = big && d->bits_allocated == 32 && px->vr == DCM_VR_OW;
    int swap_bytes = big && d->bits_allocated == 16 && px->vr == DCM_VR_OB;
    if (swap_halves || swap_bytes) {
        img->owned = malloc(img->native_len ? img->native_len : 1);
        if (!img->owned)
            return rs_err_set(err, RS_ENOMEM, "cannot copy %zu bytes of pixel data", img->native_len);
        const uint8_t *s = img->native;
        size_t n = img->native_len, step = swap_halves ? 4 : 2;
        for (size_t i = 0; i + step <= n; i += step)
            for (size_t k = 0; k < step; k++)
                img->owned[i + k] = swap_halves ? s[i + (k ^ 2)] : s[i + (k ^ 1)];
        memcpy(img->owned + n - n % step, s + n - n % step, n % step);
        img->native = img->owned;
    }
    return RS_OK;
}

/* ---- encapsulated layout ------------------------------------------------------------------ */

static uint64_t rd_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Frames from a table of byte offsets (relative to the first fragment's item tag). Each offset
   must be the start of a fragment, increasing, the first 0. */
static int spans_from_offsets(codec_image *img, const uint8_t *tab, int width, const char *what, rs_err *err)
{
    const dcm_elem *px = img->px;
    uint32_t nf = px->v.px.n, frag = 1;
    uint64_t at = 0; /* item offset of fragment `frag` */
    for (uint32_t k = 0; k < img->d.frames; k++) {
        uint64_t want = rd_le(tab + (size_t)k * width, width);
        while (frag < nf && at < want) {
            at += 8 + (uint64_t)px->v.px.frags[frag].len;
            frag++;
        }
        if (frag >= nf || at != want || (k == 0 && want != 0) || (k > 0 && frag <= img->spans[k - 1].first))
            return rs_err_set(err, RS_EFORMAT, "%s entry %u (offset %llu) is not the start of a fragment", what, k,
                              (unsigned long long)want);
        img->spans[k].first = frag;
        if (k > 0)
            img->spans[k - 1].count = frag - img->spans[k - 1].first;
    }
    img->spans[img->d.frames - 1].count = nf - img->spans[img->d.frames - 1].first;
    return RS_OK;
}

/* Does a fragment start a JPEG (SOI), J2K codestream (SOC SIZ) or JP2 file? */
static int starts_image(const dcm_frag *fr)
{
    const uint8_t *p = fr->bytes;
    if (fr->len >= 2 && p[0] == 0xFF && p[1] == 0xD8)
        return 1;
    if (fr->len >= 4 && p[0] == 0xFF && p[1] == 0x4F && p[2] == 0xFF && p[3] == 0x51)
        return 1;
    return fr->len >= 12 && !memcmp(p, "\0\0\0\x0CjP  \r\n\x87\n", 12);
}

static int open_encapsulated(codec_image *img, rs_err *err)
{
    codec_desc *d = &img->d;
    dcm_elem *px = img->px;
    uint32_t nf = px->v.px.n; /* including the offset table */
    if (nf < 2)
        return rs_err_set(err, RS_EFORMAT, "encapsulated pixel data has no fragments");
    if (nf - 1 < d->frames)
        return rs_err_set(err, RS_EFORMAT, "%u fragments for %u frames", nf - 1, d->frames);
    int rc = dcm_file_load(img->f, px, err);
    if (rc)
        return rc;
    img->spans = calloc(d->frames, sizeof *img->spans);
    img->joined = calloc(d->frames, sizeof *img->joined);
    if (!img->spans || !img->joined)
        return rs_err_set(err, RS_ENOMEM, "cannot allocate the frame table");
    dcm_elem *eot = dcm_ds_find(img->f->ds, DCM_TAG(0x7FE0, 0x0001));
    const dcm_frag *bot = &px->v.px.frags[0];
    if (eot && !(eot->flags & DCM_EF_ENCAPS) && eot->len) {
        if ((rc = dcm_file_load(img->f, eot, err)))
            return rc;
        if (eot->len != (uint64_t)d->frames * 8)
            return rs_err_set(err, RS_EFORMAT, "extended offset table has %u bytes for %u frames", eot->len,
                              d->frames);
        return spans_from_offsets(img, eot->v.bytes, 8, "extended offset table", err);
    }
    if (bot->len) {
        if (bot->len != (uint64_t)d->frames * 4)
            return rs_err_set(err, RS_EFORMAT, "basic offset table has %u entries for %u frames", bot->len / 4,
                              d->frames);
        return spans_from_offsets(img, bot->bytes, 4, "basic offset table", err);
    }
    if (d->frames == 1) {
        img->spans[0] = (codec_span){1, nf - 1};
        return RS_OK;
    }
    if (nf - 1 == d->frames) {
        for (uint32_t k = 0; k < d->frames; k++)
            img->spans[k] = (codec_span){k + 1, 1};
        return RS_OK;
    }
    /* several fragments per frame and no table: a frame starts at each image start marker */
    uint32_t k = 0;
    for (uint32_t i = 1; i < nf; i++) {
        if (i > 1 && !starts_image(&px->v.px.frags[i]))
            continue;
        if (k == d->frames || (i == 1 && !starts_image(&px->v.px.frags[i])))
            return rs_err_set(err, RS_EFORMAT, "%u fragments without an offset table do not split into %u frames",
                              nf - 1, d->frames);
        img->spans[k++].first = i;
    }
    if (k != d->frames)
        return rs_err_set(err, RS_EFORMAT, "found %u frame starts in %u fragments for %u frames", k, nf - 1,
                          d->frames);
    for (k = 0; k < d->frames; k++)
        img->spans[k].count = (k + 1 < d->frames ? img->spans[k + 1].first : nf) - img->spans[k].first;
    return RS_OK;
}

/* ---- public ------------------------------------------------------------------------------- */

int codec_open(dcm_file *f, const codec_limits *lim, codec_image **out, rs_err *err)
{
    static const codec_limits def = CODEC_LIMITS_DEFAULT;
    *out = NULL;
    dcm_elem *px = dcm_ds_find(f->ds, DCM_TAG_PIXEL_DATA);
    if (!px)
        return rs_err_set(err, RS_ENOTFOUND, "no pixel data");
    codec_image *img = calloc(1, sizeof *img);
    if (!img)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    img->f = f;
    img->px = px;
    img->lim = lim ? *lim : def;
    int rc = read_desc(img, err);
    if (rc == RS_OK)
        rc = pick_syntax(img, err);
    if (rc == RS_OK)
        rc = img->kind == K_NATIVE ? open_native(img, err) : open_encapsulated(img, err);
    if (rc != RS_OK) {
        codec_close(img);
        return rc;
    }
    *out = img;
    return RS_OK;
}

const codec_desc *codec_get_desc(const codec_image *img) { return &img->d; }

int codec_frame_bytes(codec_image *img, uint32_t index, const uint8_t **p, size_t *n, rs_err *err)
{
    if (index >= img->d.frames)
        return rs_err_set(err, RS_ENOTFOUND, "frame %u of %u", index + 1, img->d.frames);
    if (img->kind == K_NATIVE) {
        uint64_t bit = img->frame_bits * index;
        if (bit % 8 || img->frame_bits % 8)
            return rs_err_set(err, RS_EUNSUPPORTED, "1-bit frame %u does not start on a byte", index + 1);
        *p = img->native + bit / 8;
        *n = (size_t)(img->frame_bits / 8);
        return RS_OK;
    }
    const codec_span *s = &img->spans[index];
    const dcm_frag *fr = img->px->v.px.frags;
    if (s->count == 1) {
        *p = fr[s->first].bytes;
        *n = fr[s->first].len;
        return RS_OK;
    }
    size_t total = 0;
    for (uint32_t i = 0; i < s->count; i++)
        total += fr[s->first + i].len;
    if (!img->joined[index]) {
        uint8_t *j = malloc(total ? total : 1);
        if (!j)
            return rs_err_set(err, RS_ENOMEM, "cannot join %zu bytes of fragments", total);
        size_t at = 0;
        for (uint32_t i = 0; i < s->count; i++) {
            memcpy(j + at, fr[s->first + i].bytes, fr[s->first + i].len);
            at += fr[s->first + i].len;
        }
        img->joined[index] = j;
    }
    *p = img->joined[index];
    *n = total;
    return RS_OK;
}

int codec_decode_frame(codec_image *img, uint32_t index, codec_frame *out, rs_err *err)
{
    memset(out, 0, sizeof *out);
    const codec_desc *d = &img->d;
    if (index >= d->frames)
        return rs_err_set(err, RS_ENOTFOUND, "frame %u of %u", index + 1, d->frames);
    if (img->kind == K_NATIVE) {
        uint64_t bit = img->frame_bits * index;
        return codec_native_decode(d, img->native + bit / 8, img->native_len - (size_t)(bit / 8), bit % 8, out, err);
    }
    const uint8_t *p;
    size_t n;
    int rc = codec_frame_bytes(img, index, &p, &n, err);
    if (rc)
        return rc;
    switch (img->kind) {
    case K_RLE: rc = codec_rle_decode(d, p, n, out, err); break;
    case K_JPEG: rc = codec_jpeg_decode(d, p, n, out, err); break;
    case K_JLS: rc = codec_jls_decode(d, p, n, out, err); break;
    default: rc = codec_j2k_decode(d, p, n, out, err); break;
    }
    if (rc == RS_ETRUNC) /* a frame cut short is a damaged instance, like any other */
        rc = RS_EFORMAT;
    if (rc != RS_OK)
        codec_frame_free(out);
    else if (out->rows != d->rows || out->cols != d->cols || out->size != (size_t)d->rows * d->cols * out->spp *
             (size_t)sample_bytes(d->bits_allocated)) {
        codec_frame_free(out);
        rc = rs_err_set(err, RS_EFORMAT, "decoded frame %u does not match the dataset's dimensions", index + 1);
    }
    return rc;
}

void codec_frame_free(codec_frame *fr)
{
    if (!fr)
        return;
    free(fr->data);
    memset(fr, 0, sizeof *fr);
}

void codec_close(codec_image *img)
{
    if (!img)
        return;
    if (img->joined)
        for (uint32_t k = 0; k < img->d.frames; k++)
            free(img->joined[k]);
    free(img->joined);
    free(img->spans);
    free(img->owned);
    free(img);
}
