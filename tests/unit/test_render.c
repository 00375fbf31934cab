/*
 * test_render.c - the render pipeline on hand-built frames and datasets: every LUT stage
 * against the PS3.3 formulas written out again here, the size checks, resize arithmetic and
 * averaging, PNG (decoded back with libpng) and JPEG (decoded with libjpeg), and the time a
 * 512x512 16-bit frame takes to become a PNG.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <jpeglib.h>
#include <png.h>

#include "dicom/dataset.h"
#include "render/render.h"
#include "render/resize.h"
#include "t.h"

#define T_WC DCM_TAG(0x0028, 0x1050)
#define T_WW DCM_TAG(0x0028, 0x1051)
#define T_RI DCM_TAG(0x0028, 0x1052)
#define T_RS DCM_TAG(0x0028, 0x1053)
#define T_FN DCM_TAG(0x0028, 0x1056)
#define T_MLUT DCM_TAG(0x0028, 0x3000)

static codec_frame frame16(uint32_t rows, uint32_t cols, codec_stype type, const char *pi)
{
    codec_frame fr = {rows, cols, 1, type, 12, "", NULL, 0};
    snprintf(fr.photometric, sizeof fr.photometric, "%s", pi);
    fr.size = (size_t)rows * cols * 2;
    fr.data = calloc(1, fr.size);
    return fr;
}

/* the standard's LINEAR function, written independently of lut.c */
static double ref_linear(double x, double c, double w)
{
    if (x <= c - 0.5 - (w - 1) / 2)
        return 0;
    if (x > c - 0.5 + (w - 1) / 2)
        return 255;
    return ((x - (c - 0.5)) / (w - 1) + 0.5) * 255;
}

static int rnd(double y) { return (int)floor(y + 0.5); }

static void test_window_and_rescale(void)
{
    dcm_file *f = dcm_file_new(0);
    codec_frame fr = frame16(64, 64, CODEC_U16, "MONOCHROME2");
    uint16_t *s = fr.data;
    for (int i = 0; i < 64 * 64; i++)
        s[i] = (uint16_t)(i % 4096);
    dcm_ds_set_str(f->ds, T_RS, DCM_VR_DS, "2");
    dcm_ds_set_str(f->ds, T_RI, DCM_VR_DS, "-1000");
    dcm_ds_set_str(f->ds, T_WC, DCM_VR_DS, "300\\40");
    dcm_ds_set_str(f->ds, T_WW, DCM_VR_DS, "1500\\400");
    render_params p = RENDER_PARAMS_DEFAULT;
    render_image im;
    CHECK_EQ_INT(render_to_image(f, &fr, 0, &p, &im, NULL), RS_OK);
    int bad = 0;
    for (int i = 0; i < 64 * 64; i++)
        bad += ((uint8_t *)im.data)[i] != rnd(ref_linear(s[i] * 2.0 - 1000, 300, 1500));
    CHECK_EQ_INT(bad, 0);
    render_image_free(&im);

    /* explicit window, each function, 16-bit output */
    p.has_window = 1, p.center = 100, p.width = 801;
    for (int fn = RENDER_VOI_LINEAR; fn <= RENDER_VOI_SIGMOID; fn++) {
        p.voi_fn = fn;
        p.format = RENDER_PNG16;
        CHECK_EQ_INT(render_to_image(f, &fr, 0, &p, &im, NULL), RS_OK);
        CHECK_EQ_INT(im.depth, 16);
        bad = 0;
        for (int i = 0; i < 64 * 64; i++) {
            double x = s[i] * 2.0 - 1000, c = 100, w = 801, y;
            if (fn == RENDER_VOI_SIGMOID)
                y = 65535 / (1 + exp(-4 * (x - c) / w));
            else if (fn == RENDER_VOI_LINEAR_EXACT)
                y = x <= c - w / 2 ? 0 : x > c + w / 2 ? 65535 : ((x - c) / w + 0.5) * 65535;
            else
                y = ref_linear(x, c, w) / 255 * 65535;
            bad += abs(((uint16_t *)im.data)[i] - rnd(y)) > 0;
        }
        CHECK_EQ_INT(bad, 0);
        render_image_free(&im);
    }
    p.voi_fn = RENDER_VOI_LINEAR, p.width = 0.5;
    CHECK_EQ_INT(render_to_image(f, &fr, 0, &p, &im, NULL), RS_EINVAL);
    p.voi_fn = RENDER_VOI_LINEAR_EXACT;
    CHECK_EQ_INT(render_to_image(f, &fr, 0, &p, &im, NULL), RS_OK);
    render_image_free(&im);

    /* the frame must be exactly rows*cols*spp samples */
    fr.size -= 2;
    p = (render_params)RENDER_PARAMS_DEFAULT;
    CHECK_EQ_INT(render_to_image(f, &fr, 0, &p, &im, NULL), RS_EFORMAT);
    fr.size += 2;
    fr.spp = 3;
    CHECK_EQ_INT(render_to_image(f, &fr, 0, &p, &im, NULL), RS_EFORMAT);
    fr.spp = 1;
    fr.bits_stored = 17;
    CHECK_EQ_INT(render_to_image(f, &fr, 0, &p, &im, NULL), RS_EFORMAT);
    fr.bits_stored = 12;
    snprintf(fr.photometric, sizeof fr.photometric, "CMYK");
    CHECK_EQ_INT(render_to_image(f, &fr, 0, &p, &im, NULL), RS_EUNSUPPORTED);
    free(fr.data);
    dcm_file_free(f);
}

static void test_auto_mono1_and_mlut(void)
{
    dcm_file *f = dcm_file_new(0);
    codec_frame fr = frame16(16, 16, CODEC_S16, "MONOCHROME1");
    int16_t *s = fr.data;
    for (int i = 0; i < 256; i++)
        s[i] = (int16_t)(i * 3 - 200); /* -200..565 */
    render_params p = RENDER_PARAMS_DEFAULT;
    render_image im;
    CHECK_EQ_INT(render_to_image(f, &fr, 0, &p, &im, NULL), RS_OK);
    uint8_t *o = im.data;
    CHECK_EQ_INT(o[0], 255);   /* lowest value: black, inverted */
    CHECK_EQ_INT(o[255], 0);   /* highest: white, inverted */
    int bad = 0;
    for (int i = 0; i < 256; i++)
        bad += o[i] != 255 - rnd(ref_linear(s[i], (-200 + 565 + 1) / 2.0, 565 + 200 + 1));
    CHECK_EQ_INT(bad, 0);
    render_image_free(&im);

    /* Modality LUT Sequence, 8-bit entries packed in bytes, signed first value mapped */
    dcm_ds *it = dcm_ds_add_item(f->ds, T_MLUT);
    uint16_t desc[3] = {100, (uint16_t)(int16_t)-50, 8};
    uint8_t lut[100];
    for (int i = 0; i < 100; i++)
        lut[i] = (uint8_t)(i * 2);
    dcm_ds_set_bytes(it, DCM_TAG(0x0028, 0x3002), DCM_VR_SS, desc, sizeof desc);
    dcm_ds_set_bytes(it, DCM_TAG(0x0028, 0x3006), DCM_VR_OW, lut, sizeof lut);
    snprintf(fr.photometric, sizeof fr.photometric, "MONOCHROME2");
    p.has_window = 1, p.center = 100.5, p.width = 199; /* maps 1..199 linearly */
    CHECK_EQ_INT(render_to_image(f, &fr, 0, &p, &im, NULL), RS_OK);
    o = im.data;
    bad = 0;
    for (int i = 0; i < 256; i++) {
        int idx = s[i] + 50;
        idx = idx < 0 ? 0 : idx > 99 ? 99 : idx;
        bad += o[i] != rnd(ref_linear(lut[idx], 100.5, 199));
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(o[0], 0);    /* below first mapped: entry 0 */
    CHECK_EQ_INT(o[255], o[254]); /* above the last: entry 99 for both */
    render_image_free(&im);
    free(fr.data);
    dcm_file_free(f);
}

static void test_colour(void)
{
    dcm_file *f = dcm_file_new(0);
    uint8_t px[6] = {128, 128, 128, 200, 50, 220};
    codec_frame fr = {1, 2, 3, CODEC_U8, 8, "YBR_FULL", px, 6};
    render_params p = RENDER_PARAMS_DEFAULT;
    render_image im;
    CHECK_EQ_INT(render_to_image(f, &fr, 0, &p, &im, NULL), RS_OK);
    uint8_t *o = im.data;
    CHECK(o[0] == 128 && o[1] == 128 && o[2] == 128);
    double y = 200, cb = 50 - 128.0, cr = 220 - 128.0;
    CHECK_EQ_INT(o[3], fmin(255, rnd(y + 1.402 * cr)));
    CHECK_EQ_INT(o[4], rnd(y - 0.344136 * cb - 0.714136 * cr));
    CHECK_EQ_INT(o[5], fmax(0, rnd(y + 1.772 * cb)));
    render_image_free(&im);
    dcm_file_free(f);
}

static void test_resize(void)
{
    uint32_t w, h;
    render_fit(100, 50, 40, 40, &w, &h);
    CHECK(w == 40 && h == 20);
    render_fit(100, 50, 400, 400, &w, &h);
    CHECK(w == 100 && h == 50);
    render_fit(100, 50, 0, 10, &w, &h);
    CHECK(w == 20 && h == 10);
    render_fit(3000, 2, 10, 10, &w, &h);
    CHECK(w == 10 && h == 1);

    uint8_t px[64 * 48 * 3];
    render_image in = {48, 64, 3, 8, px, sizeof px}, out;
    memset(px, 77, sizeof px);
    CHECK_EQ_INT(render_resize(&in, 37, 37, &out, NULL), RS_OK);
    CHECK(out.cols == 37 && out.rows == 28);
    int bad = 0;
    for (size_t i = 0; i < out.size; i++)
        bad += ((uint8_t *)out.data)[i] != 77;
    CHECK_EQ_INT(bad, 0); /* a constant image stays constant at fractional ratios */
    render_image_free(&out);

    uint16_t g[4 * 6];
    for (int i = 0; i < 24; i++)
        g[i] = (uint16_t)(i * 1000 + (i % 3) * 7);
    render_image gi = {4, 6, 1, 16, g, sizeof g};
    CHECK_EQ_INT(render_resize(&gi, 3, 0, &out, NULL), RS_OK);
    CHECK(out.cols == 3 && out.rows == 2);
    bad = 0;
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++) {
            double sum = g[2 * y * 6 + 2 * x] + g[2 * y * 6 + 2 * x + 1] + g[(2 * y + 1) * 6 + 2 * x] +
                         g[(2 * y + 1) * 6 + 2 * x + 1];
            bad += ((uint16_t *)out.data)[y * 3 + x] != rnd(sum / 4);
        }
    CHECK_EQ_INT(bad, 0); /* exact 2x2 averages */
    render_image_free(&out);
    gi.size--;
    CHECK_EQ_INT(render_resize(&gi, 3, 0, &out, NULL), RS_EINVAL);
}

/* libjpeg's plain path: jpeg_write_scanlines, one 8-bit grey row at a time (the reference). */
static size_t plain_jpeg(const uint8_t *px, uint32_t w, uint32_t h, int quality, unsigned char **mem)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    unsigned long len = 0;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, mem, &len);
    c.image_width = w;
    c.image_height = h;
    c.input_components = 1;
    c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < h) {
        JSAMPROW r = (JSAMPROW)px + (size_t)c.next_scanline * w;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return len;
}

/* Grey images go to libjpeg as raw data with our own edge padding: the bytes must be exactly
 * those of the plain path, for sizes that are and are not whole 8x8 blocks, 8- and 16-bit. */
static void test_jpeg_raw_grey(void)
{
    static const uint32_t sizes[][2] = {{64, 48}, {37, 23}, {1, 1}, {9, 17}, {8, 1}, {512, 16}};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        uint32_t w = sizes[t][0], h = sizes[t][1];
        size_t n = (size_t)w * h;
        uint8_t *g8 = malloc(n);
        uint16_t *g16 = malloc(n * 2);
        for (size_t i = 0; i < n; i++) {
            uint32_t x = (uint32_t)(i % w), y = (uint32_t)(i / w);
            g16[i] = (uint16_t)((x * 977 + y * 3001 + (x * y) % 251 * 61) & 0xffff);
            g8[i] = (uint8_t)(((uint32_t)g16[i] * 255 + 32767) / 65535); /* what the encoder reduces 16 to */
        }
        unsigned char *ref = NULL;
        size_t ref_len = plain_jpeg(g8, w, h, 90, &ref);
        render_image i8 = {h, w, 1, 8, g8, n}, i16 = {h, w, 1, 16, g16, n * 2};
        rs_buf b8 = RS_BUF_INIT, b16 = RS_BUF_INIT;
        CHECK_EQ_INT(render_encode_jpeg(&i8, 90, &b8, NULL), RS_OK);
        CHECK_EQ_INT(render_encode_jpeg(&i16, 90, &b16, NULL), RS_OK);
        CHECK(b8.len == ref_len && memcmp(b8.p, ref, ref_len) == 0);
        CHECK(b16.len == ref_len && memcmp(b16.p, ref, ref_len) == 0);
        rs_buf_free(&b8);
        rs_buf_free(&b16);
        free(ref);
        free(g8);
        free(g16);
    }
}

static void test_png_jpeg(void)
{
    uint16_t g[33 * 17];
    for (int i = 0; i < 33 * 17; i++)
        g[i] = (uint16_t)(i * 113);
    render_image im = {17, 33, 1, 16, g, sizeof g};
    rs_buf b = RS_BUF_INIT;
    CHECK_EQ_INT(render_encode_png(&im, &b, NULL), RS_OK);
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    CHECK(png_image_begin_read_from_memory(&pi, b.p, b.len));
    CHECK(pi.width == 33 && pi.height == 17);
    pi.format = PNG_FORMAT_LINEAR_Y; /* 16-bit grey, as stored */
    uint16_t back[33 * 17];
    CHECK(png_image_finish_read(&pi, NULL, back, 0, NULL));
    CHECK(memcmp(back, g, sizeof g) == 0);
    rs_buf_reset(&b);

    uint8_t rgb[20 * 10 * 3];
    for (size_t i = 0; i < sizeof rgb; i++)
        rgb[i] = (uint8_t)(i * 7);
    render_image ci = {10, 20, 3, 8, rgb, sizeof rgb};
    CHECK_EQ_INT(render_encode_png(&ci, &b, NULL), RS_OK);
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    CHECK(png_image_begin_read_from_memory(&pi, b.p, b.len));
    pi.format = PNG_FORMAT_RGB;
    uint8_t rback[sizeof rgb];
    CHECK(png_image_finish_read(&pi, NULL, rback, 0, NULL));
    CHECK(memcmp(rback, rgb, sizeof rgb) == 0);
    rs_buf_reset(&b);

    memset(rgb, 90, sizeof rgb);
    CHECK_EQ_INT(render_encode_jpeg(&ci, 85, &b, NULL), RS_OK);
    struct jpeg_decompress_struct d;
    struct jpeg_error_mgr jerr;
    d.err = jpeg_std_error(&jerr);
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, b.p, b.len);
    CHECK_EQ_INT(jpeg_read_header(&d, TRUE), JPEG_HEADER_OK);
    jpeg_start_decompress(&d);
    CHECK(d.output_width == 20 && d.output_height == 10 && d.output_components == 3);
    uint8_t row[60];
    int bad = 0;
    while (d.output_scanline < d.output_height) {
        JSAMPROW r = row;
        jpeg_read_scanlines(&d, &r, 1);
        for (int x = 0; x < 60; x++)
            bad += abs(row[x] - 90) > 2;
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(render_encode_jpeg(&ci, 0, &b, NULL), RS_EINVAL);
    rs_buf_free(&b);
}

/* Enhanced multi-frame: rescale and window from the shared functional groups, a per-frame
 * window overriding the shared one for frame 1 only. */
static void test_functional_groups(void)
{
    dcm_file *f = dcm_file_new(0);
    codec_frame fr = frame16(8, 8, CODEC_U16, "MONOCHROME2");
    uint16_t *s = fr.data;
    for (int i = 0; i < 64; i++)
        s[i] = (uint16_t)(i * 50);
    dcm_ds *sh = dcm_ds_add_item(f->ds, DCM_TAG(0x5200, 0x9229));
    dcm_ds *pv = dcm_ds_add_item(sh, DCM_TAG(0x0028, 0x9145));
    dcm_ds_set_str(pv, T_RS, DCM_VR_DS, "0.5");
    dcm_ds_set_str(pv, T_RI, DCM_VR_DS, "-100");
    dcm_ds *sv = dcm_ds_add_item(sh, DCM_TAG(0x0028, 0x9132));
    dcm_ds_set_str(sv, T_WC, DCM_VR_DS, "500");
    dcm_ds_set_str(sv, T_WW, DCM_VR_DS, "1000");
    dcm_ds_set_str(f->ds, T_WC, DCM_VR_DS, "0"); /* top level loses to the groups */
    dcm_ds_set_str(f->ds, T_WW, DCM_VR_DS, "10");
    dcm_ds_add_item(f->ds, DCM_TAG(0x5200, 0x9230)); /* frame 0: nothing of its own */
    dcm_ds *f1 = dcm_ds_add_item(f->ds, DCM_TAG(0x5200, 0x9230));
    dcm_ds *fv = dcm_ds_add_item(f1, DCM_TAG(0x0028, 0x9132));
    dcm_ds_set_str(fv, T_WC, DCM_VR_DS, "200");
    dcm_ds_set_str(fv, T_WW, DCM_VR_DS, "400");
    dcm_ds_set_str(fv, T_FN, DCM_VR_CS, "LINEAR_EXACT");
    render_params p = RENDER_PARAMS_DEFAULT;
    render_image im;
    for (uint32_t k = 0; k < 2; k++) {
        CHECK_EQ_INT(render_to_image(f, &fr, k, &p, &im, NULL), RS_OK);
        int bad = 0;
        for (int i = 0; i < 64; i++) {
            double x = s[i] * 0.5 - 100, y;
            if (k == 0)
                y = ref_linear(x, 500, 1000);
            else
                y = x <= 0 ? 0 : x > 400 ? 255 : ((x - 200) / 400 + 0.5) * 255;
            bad += ((uint8_t *)im.data)[i] != rnd(y);
        }
        CHECK_EQ_INT(bad, 0);
        render_image_free(&im);
    }
    free(fr.data);
    dcm_file_free(f);
}

/* Segmented palette: discrete + linear expand as C.7.9.2 says; a short one is refused. */
static void test_segmented_palette(void)
{
    dcm_file *f = dcm_file_new(0);
    uint8_t px[4] = {0, 1, 3, 9};
    codec_frame fr = {1, 4, 1, CODEC_U8, 8, "PALETTE COLOR", px, 4};
    uint16_t desc[3] = {5, 0, 16};
    uint16_t seg[] = {0, 1, 0, 1, 4, 40000}; /* 0, then linear to 40000 over 4 entries */
    for (int c = 0; c < 3; c++) {
        dcm_ds_set_bytes(f->ds, DCM_TAG(0x0028, 0x1101 + c), DCM_VR_US, desc, sizeof desc);
        dcm_ds_set_bytes(f->ds, DCM_TAG(0x0028, 0x1221 + c), DCM_VR_OW, seg, sizeof seg);
    }
    render_params p = RENDER_PARAMS_DEFAULT;
    render_image im;
    CHECK_EQ_INT(render_to_image(f, &fr, 0, &p, &im, NULL), RS_OK);
    uint8_t *o = im.data;
    CHECK_EQ_INT(o[0], 0);
    CHECK_EQ_INT(o[3], (10000 * 255 + 32767) / 65535);
    CHECK_EQ_INT(o[6], (30000 * 255 + 32767) / 65535);
    CHECK_EQ_INT(o[9], (40000 * 255 + 32767) / 65535); /* 9 is past the table: last entry */
    CHECK(o[9] == o[10] && o[10] == o[11]);
    render_image_free(&im);
    seg[4] = 9; /* expands to 10 entries, not 5 */
    for (int c = 0; c < 3; c++)
        dcm_ds_set_bytes(f->ds, DCM_TAG(0x0028, 0x1221 + c), DCM_VR_OW, seg, sizeof seg);
    CHECK_EQ_INT(render_to_image(f, &fr, 0, &p, &im, NULL), RS_EFORMAT);
    CHECK(im.data == NULL);
    dcm_file_free(f);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_speed(void)
{
    dcm_file *f = dcm_file_new(0);
    codec_frame fr = frame16(512, 512, CODEC_U16, "MONOCHROME2");
    uint16_t *s = fr.data;
    for (int y = 0; y < 512; y++)
        for (int x = 0; x < 512; x++) /* an MR-like smooth blob with noise */
            s[y * 512 + x] = (uint16_t)(fmax(0, 3000 - hypot(x - 256, y - 230) * 12) + (x * 7 + y * 13) % 37);
    dcm_ds_set_str(f->ds, T_WC, DCM_VR_DS, "1500");
    dcm_ds_set_str(f->ds, T_WW, DCM_VR_DS, "3000");
    render_params p = RENDER_PARAMS_DEFAULT;
    rs_buf b = RS_BUF_INIT;
    double best = 1e9, best_thumb = 1e9;
    size_t png_len = 0;
    for (int k = 0; k < 5; k++) {
        render_image im, th;
        double t0 = now_ms();
        CHECK_EQ_INT(render_to_image(f, &fr, 0, &p, &im, NULL), RS_OK);
        rs_buf_reset(&b);
        CHECK_EQ_INT(render_encode_png(&im, &b, NULL), RS_OK);
        double t1 = now_ms();
        png_len = b.len;
        CHECK_EQ_INT(render_resize(&im, 128, 128, &th, NULL), RS_OK);
        CHECK_EQ_INT(render_encode_jpeg(&th, 90, &b, NULL), RS_OK);
        double t2 = now_ms();
        best = fmin(best, t1 - t0);
        best_thumb = fmin(best_thumb, t2 - t1);
        render_image_free(&im);
        render_image_free(&th);
    }
    fprintf(stderr, "512x512 16-bit -> 8-bit PNG (%zu bytes): %.2f ms; -> 128x128 JPEG thumbnail: %.2f ms more\n", png_len, best,
            best_thumb);
    CHECK(best < 50); /* generous for a loaded 2-core machine and sanitizers; a few ms normally */
    rs_buf_free(&b);
    free(fr.data);
    dcm_file_free(f);
}

int main(void)
{
    test_window_and_rescale();
    test_auto_mono1_and_mlut();
    test_colour();
    test_functional_groups();
    test_segmented_palette();
    test_resize();
    test_png_jpeg();
    test_jpeg_raw_grey();
    test_speed();
    return t_done();
}
