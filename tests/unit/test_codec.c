/*
 * test_codec.c - hostile input for the frame interface (src/codec/codec.c and its decoders).
 *
 * Real files from python3-pydicom's corpus (one per decoder) are read, then their Image Pixel
 * module or their fragments are altered in memory: dimensions, frame counts and bit depths
 * that overflow or disagree with the bytes, bitstream headers (JPEG, JPEG-LS, J2K, RLE) whose
 * dimensions/components/precision disagree with the dataset, fragments cut short (copied into
 * exact-size buffers so ASan sees any read past the end), RLE segment tables that lie, basic
 * and extended offset tables that do not land on fragments, and random byte flips. Every
 * refusal must be RS_EFORMAT (RS_ELIMIT/RS_EUNSUPPORTED where the case says so); nothing may
 * crash or read outside a buffer (run under SAN=1).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "dicom/reader.h"
#include "dicom/tag.h"
#include "t.h"

#define CORPUS "/usr/lib/python3/dist-packages/pydicom/data/test_files/"
#define TAG_FRAMES DCM_TAG(0x0028, 0x0008)
#define TAG_BITS_STORED DCM_TAG(0x0028, 0x0101)
#define TAG_HIGH_BIT DCM_TAG(0x0028, 0x0102)
#define TAG_EOT DCM_TAG(0x7FE0, 0x0001)

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* buffers handed to a dcm_file by the tests, freed at the end */
static void *owned[4096];
static size_t n_owned;
static void *keep(void *p)
{
    if (n_owned < sizeof owned / sizeof owned[0])
        owned[n_owned++] = p;
    return p;
}

static dcm_file *load(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, CORPUS "%s", name);
    dcm_file *f = NULL;
    rs_err err;
    dcm_read_opts ro = {0};
    if (dcm_read_path(path, &ro, &f, &err) != RS_OK) {
        fprintf(stderr, "cannot read %s: %s\n", path, err.msg);
        return NULL;
    }
    return f;
}

static void set_us(dcm_file *f, uint32_t tag, unsigned v)
{
    uint16_t x = (uint16_t)v;
    dcm_ds_set_bytes(f->ds, tag, DCM_VR_US, &x, 2);
}

static void set_is(dcm_file *f, uint32_t tag, const char *s) { dcm_ds_set_str(f->ds, tag, DCM_VR_IS, s); }

/* Rows, Columns, SamplesPerPixel and BitsAllocated/Stored/HighBit in one go. */
static void set_module(dcm_file *f, unsigned rows, unsigned cols, unsigned spp, unsigned ba, unsigned bs, unsigned hb)
{
    set_us(f, DCM_TAG_ROWS, rows);
    set_us(f, DCM_TAG_COLUMNS, cols);
    set_us(f, DCM_TAG_SAMPLES_PER_PIXEL, spp);
    set_us(f, DCM_TAG_BITS_ALLOCATED, ba);
    set_us(f, TAG_BITS_STORED, bs);
    set_us(f, TAG_HIGH_BIT, hb);
}

static dcm_elem *pixels(dcm_file *f) { return dcm_ds_find(f->ds, DCM_TAG_PIXEL_DATA); }

/* Opens and decodes every frame; the first failure's code, checking the frame contract on success. */
static int try_decode(dcm_file *f, const codec_limits *lim)
{
    codec_image *img = NULL;
    rs_err err;
    rs_err_clear(&err);
    int rc = codec_open(f, lim, &img, &err);
    if (rc != RS_OK) {
        CHECK(img == NULL);
        CHECK(err.msg[0] != 0);
        return rc;
    }
    const codec_desc *d = codec_get_desc(img);
    for (uint32_t k = 0; k < d->frames && rc == RS_OK; k++) {
        codec_frame fr;
        rc = codec_decode_frame(img, k, &fr, &err);
        if (rc == RS_OK) {
            size_t sb = d->bits_allocated <= 8 ? 1 : d->bits_allocated <= 16 ? 2 : 4;
            CHECK(fr.rows == d->rows && fr.cols == d->cols && fr.spp == d->spp);
            CHECK(fr.size == (size_t)d->rows * d->cols * d->spp * sb);
        } else {
            CHECK(fr.data == NULL);
            CHECK(err.msg[0] != 0);
        }
        codec_frame_free(&fr);
    }
    codec_close(img);
    return rc;
}

/* Replaces fragment k by an exact-size copy of its first n bytes (optionally altered later). */
static uint8_t *cut_fragment(dcm_file *f, uint32_t k, const uint8_t *orig, size_t n)
{
    dcm_elem *px = pixels(f);
    uint8_t *p = keep(malloc(n ? n : 1));
    memcpy(p, orig, n);
    px->v.px.frags[k].bytes = p;
    px->v.px.frags[k].len = (uint32_t)n;
    return p;
}

/* ---- native ------------------------------------------------------------------------------- */

static void test_native(void)
{
    static const codec_limits wide = {65535, 65535, UINT32_MAX, UINT64_MAX};
    dcm_file *f = load("MR_small.dcm");
    if (!f)
        return;
    CHECK_EQ_INT(try_decode(f, NULL), RS_OK);

    set_us(f, DCM_TAG_ROWS, 65);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    set_us(f, DCM_TAG_ROWS, 64);
    set_is(f, TAG_FRAMES, "2");
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    set_is(f, TAG_FRAMES, "4294967295"); /* 64x64x16 bits x 2^32 frames: far beyond 8192 bytes */
    CHECK_EQ_INT(try_decode(f, &wide), RS_EFORMAT);
    CHECK_EQ_INT(try_decode(f, NULL), RS_ELIMIT);
    set_is(f, TAG_FRAMES, "0");
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    set_is(f, TAG_FRAMES, "1");

    /* 65535 x 65535 x 3 x 32 bits x 2^32 frames overflows 64 bits */
    set_module(f, 65535, 65535, 3, 32, 32, 31);
    set_is(f, TAG_FRAMES, "4294967295");
    CHECK_EQ_INT(try_decode(f, &wide), RS_EFORMAT);
    set_is(f, TAG_FRAMES, "1");
    CHECK_EQ_INT(try_decode(f, &wide), RS_EFORMAT); /* 51 GB asked of 8 KB */
    CHECK_EQ_INT(try_decode(f, NULL), RS_ELIMIT);   /* above the 1 GiB frame limit */
    set_module(f, 64, 64, 1, 16, 16, 15);
    CHECK_EQ_INT(try_decode(f, NULL), RS_OK);

    set_us(f, DCM_TAG_ROWS, 0);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    set_us(f, DCM_TAG_ROWS, 64);
    codec_limits small = {32, 65535, 10, 1 << 20};
    CHECK_EQ_INT(try_decode(f, &small), RS_ELIMIT);
    set_us(f, TAG_BITS_STORED, 17);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    set_us(f, TAG_BITS_STORED, 12);
    set_us(f, TAG_HIGH_BIT, 12); /* HighBit + 1 - BitsStored = 1: allowed */
    CHECK_EQ_INT(try_decode(f, NULL), RS_OK);
    set_us(f, TAG_HIGH_BIT, 16);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    set_us(f, TAG_HIGH_BIT, 10); /* below BitsStored - 1 */
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    set_us(f, TAG_BITS_STORED, 16);
    set_us(f, TAG_HIGH_BIT, 15);
    set_us(f, DCM_TAG_SAMPLES_PER_PIXEL, 4);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EUNSUPPORTED);
    set_us(f, DCM_TAG_SAMPLES_PER_PIXEL, 1);
    set_us(f, DCM_TAG_BITS_ALLOCATED, 12);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EUNSUPPORTED);
    set_us(f, DCM_TAG_BITS_ALLOCATED, 16);
    set_us(f, DCM_TAG_PIXEL_REPRESENTATION, 2);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    set_us(f, DCM_TAG_PIXEL_REPRESENTATION, 1);

    /* masking and sign extension: 12 bits stored at bits 4..15 */
    codec_image *img = NULL;
    codec_frame fr;
    rs_err err;
    const uint8_t *raw = pixels(f)->v.bytes;
    set_us(f, TAG_BITS_STORED, 12);
    set_us(f, TAG_HIGH_BIT, 15);
    CHECK_EQ_INT(codec_open(f, NULL, &img, &err), RS_OK);
    if (img && codec_decode_frame(img, 0, &fr, &err) == RS_OK) {
        int bad = 0;
        for (size_t i = 0; i < 64 * 64; i++) {
            int32_t v = (int32_t)((raw[2 * i] | raw[2 * i + 1] << 8) >> 4);
            if (v & 0x800)
                v -= 0x1000;
            bad += ((int16_t *)fr.data)[i] != v;
        }
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(fr.type, CODEC_S16);
        CHECK_EQ_INT(fr.bits_stored, 12);
        codec_frame_free(&fr);
        const uint8_t *p;
        size_t n;
        CHECK_EQ_INT(codec_frame_bytes(img, 0, &p, &n, &err), RS_OK);
        CHECK(p == raw && n == 8192);
        CHECK_EQ_INT(codec_frame_bytes(img, 1, &p, &n, &err), RS_ENOTFOUND);
        CHECK_EQ_INT(codec_decode_frame(img, 1, &fr, &err), RS_ENOTFOUND);
        CHECK(fr.data == NULL);
    }
    codec_close(img);
    set_us(f, TAG_BITS_STORED, 16);

    /* pixel data shorter than the module says */
    pixels(f)->len = 8190;
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    pixels(f)->len = 8192;
    dcm_ds_remove(f->ds, DCM_TAG_COLUMNS);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    set_us(f, DCM_TAG_COLUMNS, 64);
    dcm_ds_remove(f->ds, DCM_TAG_PIXEL_DATA);
    CHECK_EQ_INT(try_decode(f, NULL), RS_ENOTFOUND);
    dcm_file_free(f);

    /* 1-bit frames that do not start on a byte: decodable, not sliceable */
    f = load("liver_1frame.dcm");
    if (f) {
        set_us(f, DCM_TAG_ROWS, 3);
        set_us(f, DCM_TAG_COLUMNS, 3);
        set_is(f, TAG_FRAMES, "2");
        CHECK_EQ_INT(try_decode(f, NULL), RS_OK);
        img = NULL;
        const uint8_t *p;
        size_t n;
        if (codec_open(f, NULL, &img, &err) == RS_OK)
            CHECK_EQ_INT(codec_frame_bytes(img, 1, &p, &n, &err), RS_EUNSUPPORTED);
        codec_close(img);
        dcm_file_free(f);
    }
}

/* ---- compressed: one file per decoder ------------------------------------------------------ */

static void test_compressed(const char *name, int mono16)
{
    dcm_file *f = load(name);
    if (!f)
        return;
    CHECK_EQ_INT(try_decode(f, NULL), RS_OK);
    int64_t rows = 0, cols = 0, spp = 0;
    dcm_ds_get_i64(f->ds, DCM_TAG_ROWS, 0, &rows);
    dcm_ds_get_i64(f->ds, DCM_TAG_COLUMNS, 0, &cols);
    dcm_ds_get_i64(f->ds, DCM_TAG_SAMPLES_PER_PIXEL, 0, &spp);

    /* the bitstream says one thing, the dataset another */
    set_us(f, DCM_TAG_ROWS, (unsigned)rows + 1);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    set_us(f, DCM_TAG_ROWS, (unsigned)rows - 1);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    set_us(f, DCM_TAG_ROWS, (unsigned)rows);
    set_us(f, DCM_TAG_COLUMNS, (unsigned)cols * 2);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    set_us(f, DCM_TAG_COLUMNS, (unsigned)cols);
    set_us(f, DCM_TAG_SAMPLES_PER_PIXEL, spp == 1 ? 3 : 1);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    set_us(f, DCM_TAG_SAMPLES_PER_PIXEL, (unsigned)spp);
    if (mono16) { /* 16-bit samples in a dataset that says 8 */
        set_module(f, (unsigned)rows, (unsigned)cols, (unsigned)spp, 8, 8, 7);
        CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
        set_module(f, (unsigned)rows, (unsigned)cols, (unsigned)spp, 16, 16, 15);
    }
    CHECK_EQ_INT(try_decode(f, NULL), RS_OK);
    set_is(f, TAG_FRAMES, "2"); /* one fragment cannot hold two frames */
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    set_is(f, TAG_FRAMES, "1");

    /* cut short, in exact-size buffers */
    dcm_elem *px = pixels(f);
    uint32_t last = px->v.px.n - 1;
    size_t n = px->v.px.frags[last].len;
    uint8_t *orig = keep(malloc(n));
    memcpy(orig, px->v.px.frags[last].bytes, n);
    int refused = 0, cuts = 0;
    for (int k = 0; k < 16; k++) {
        size_t at = n * (size_t)k / 16;
        cut_fragment(f, last, orig, at);
        int rc = try_decode(f, NULL);
        cuts++;
        refused += rc == RS_EFORMAT;
        if (rc != RS_EFORMAT)
            fprintf(stderr, "%s cut at %zu of %zu: rc %d\n", name, at, n, rc);
    }
    CHECK_EQ_INT(refused, cuts);

    /* random damage: any outcome but a crash or an out-of-bounds read; success keeps the contract */
    int ok = 0;
    for (int k = 0; k < 300; k++) {
        uint8_t *p = cut_fragment(f, last, orig, n);
        int flips = 1 + (int)(rnd() % 4);
        for (int j = 0; j < flips; j++) {
            size_t at = k % 2 ? rnd() % (n < 256 ? n : 256) : rnd() % n; /* headers half the time */
            p[at] ^= (uint8_t)(1 + rnd() % 255);
        }
        int rc = try_decode(f, NULL);
        CHECK(rc == RS_OK || rc == RS_EFORMAT || rc == RS_EUNSUPPORTED);
        ok += rc == RS_OK;
    }
    fprintf(stderr, "%s: %d of 300 damaged copies still decoded\n", name, ok);
    cut_fragment(f, last, orig, n);
    CHECK_EQ_INT(try_decode(f, NULL), RS_OK);
    dcm_file_free(f);
}

/* ---- RLE segment tables -------------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void test_rle_header(void)
{
    dcm_file *f = load("MR_small_RLE.dcm"); /* 16-bit: two segments */
    if (!f)
        return;
    dcm_elem *px = pixels(f);
    size_t n = px->v.px.frags[1].len;
    uint8_t *orig = keep(malloc(n));
    memcpy(orig, px->v.px.frags[1].bytes, n);
    uint32_t off1 = orig[8] | orig[9] << 8 | orig[10] << 16 | (uint32_t)orig[11] << 24;
    struct { int slot; uint32_t v; } cases[] = {
        {0, 1}, {0, 3}, {0, 16}, {0, 0xFFFFFFFF}, /* segment count */
        {1, 0}, {1, 63}, {1, 65}, {1, (uint32_t)n + 1}, {1, 0xFFFFFFF0}, /* first offset */
        {2, 64}, {2, 10}, {2, (uint32_t)n + 1}, {2, 0xFFFFFFFF}, /* second offset */
        {2, off1 + 1}, {2, off1 - 1}, /* segment boundaries moved: lengths no longer add up */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t *p = cut_fragment(f, 1, orig, n);
        put32(p + 4 * cases[c].slot, cases[c].v);
        int rc = try_decode(f, NULL);
        CHECK_EQ_INT(rc, RS_EFORMAT);
        if (rc != RS_EFORMAT)
            fprintf(stderr, "RLE case %zu (slot %d = %u) gave %d\n", c, cases[c].slot, cases[c].v, rc);
    }
    cut_fragment(f, 1, orig, 63);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    /* a replicate run that would write past the segment's rows x columns */
    uint8_t *p = cut_fragment(f, 1, orig, n);
    p[64] = 0x81; /* replicate 128 */
    for (size_t i = 65; i + 1 < off1; i += 2)
        p[i] = 0x81;
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    dcm_file_free(f);
}

/* ---- offset tables ----------------------------------------------------------------------- */

static void test_offset_tables(void)
{
    dcm_file *f = load("SC_rgb_rle_2frame.dcm"); /* BOT [0, 672], two fragments */
    if (!f)
        return;
    dcm_elem *px = pixels(f);
    CHECK_EQ_INT(px->v.px.n, 3);
    CHECK_EQ_INT(try_decode(f, NULL), RS_OK);
    uint32_t len1 = px->v.px.frags[1].len;

    codec_image *img = NULL;
    rs_err err;
    const uint8_t *p;
    size_t n;
    if (codec_open(f, NULL, &img, &err) == RS_OK) {
        CHECK_EQ_INT(codec_frame_bytes(img, 1, &p, &n, &err), RS_OK);
        CHECK(p == px->v.px.frags[2].bytes && n == px->v.px.frags[2].len);
    }
    codec_close(img);

    uint8_t *bot = keep(malloc(8));
    put32(bot, 0);
    put32(bot + 4, len1 + 8 - 1);
    px->v.px.frags[0].bytes = bot;
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT); /* not a fragment start */
    put32(bot + 4, 0);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT); /* not increasing */
    put32(bot, 8);
    put32(bot + 4, len1 + 8);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT); /* first is not 0 */
    put32(bot, 0);
    put32(bot + 4, 0xFFFFFFFF);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT); /* past the end */
    px->v.px.frags[0].len = 4;
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT); /* one entry for two frames */
    px->v.px.frags[0].len = 0;
    CHECK_EQ_INT(try_decode(f, NULL), RS_OK); /* no table: one fragment per frame */
    set_is(f, TAG_FRAMES, "3");
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT); /* two fragments, three frames */
    set_is(f, TAG_FRAMES, "2");

    /* Extended Offset Table (7FE0,0001), 64-bit offsets */
    uint8_t eot[16] = {0};
    eot[8] = (uint8_t)((len1 + 8) & 0xFF);
    eot[9] = (uint8_t)((len1 + 8) >> 8);
    eot[10] = (uint8_t)((len1 + 8) >> 16);
    dcm_ds_set_bytes(f->ds, TAG_EOT, DCM_VR_OV, eot, 16);
    CHECK_EQ_INT(try_decode(f, NULL), RS_OK);
    eot[8] ^= 1;
    dcm_ds_set_bytes(f->ds, TAG_EOT, DCM_VR_OV, eot, 16);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    eot[8] ^= 1;
    eot[15] = 0x80; /* an offset near 2^63 */
    dcm_ds_set_bytes(f->ds, TAG_EOT, DCM_VR_OV, eot, 16);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    dcm_ds_set_bytes(f->ds, TAG_EOT, DCM_VR_OV, eot, 8);
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT); /* one entry for two frames */
    dcm_ds_remove(f->ds, TAG_EOT);

    /* every fragment removed */
    px->v.px.n = 1;
    CHECK_EQ_INT(try_decode(f, NULL), RS_EFORMAT);
    px->v.px.n = 3;
    CHECK_EQ_INT(try_decode(f, NULL), RS_OK);
    dcm_file_free(f);
}

int main(void)
{
    test_native();
    test_compressed("SC_rgb_jpeg_dcmtk.dcm", 0);        /* JPEG baseline, YBR_FULL */
    test_compressed("SC_rgb_jpeg_gdcm.dcm", 0);         /* JPEG lossless SV1, RGB */
    test_compressed("MR_small_jpeg_ls_lossless.dcm", 1); /* JPEG-LS */
    test_compressed("MR_small_jp2klossless.dcm", 1);     /* J2K codestream */
    test_compressed("GDCMJ2K_TextGBR.dcm", 0);           /* J2K, YBR_RCT */
    test_compressed("MR_small_RLE.dcm", 1);              /* RLE */
    test_rle_header();
    test_offset_tables();
    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    return t_done();
}
