/*
 * encode.c - rendered images to PNG (libpng) and JPEG (libjpeg-turbo), both into memory.
 * PNG uses the UP filter on every row and zlib's run-length strategy (Z_RLE): medical images
 * are smooth, so after UP most bytes are small differences and runs of zeros (background),
 * which Huffman coding of literals and runs packs about as well as LZ77 does; on the bench's
 * 512x512 MR frame this is 10 % smaller than level 2 with SUB|UP chosen per row, and a third fewer
 * instructions (no per-row filter trial, no match search).
 * Both libraries report errors by longjmp; every resource lives outside the jump so it is
 * freed on the single exit path.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "render.h"

static int image_ok(const render_image *im)
{
    return im && im->data && im->rows && im->cols && (im->channels == 1 || im->channels == 3) &&
           (im->depth == 8 || im->depth == 16) &&
           im->size == (size_t)im->rows * im->cols * (size_t)im->channels * (size_t)(im->depth / 8);
}

typedef struct png_out {
    rs_buf *buf;
    int failed;
} png_out;

static void png_write_cb(png_structp png, png_bytep data, size_t n)
{
    png_out *po = png_get_io_ptr(png);
    if (rs_buf_append(po->buf, data, n)) {
        po->failed = 1;
        png_error(png, "out of memory");
    }
}

static void png_flush_cb(png_structp png) { (void)png; }

static void png_error_cb(png_structp png, png_const_charp msg)
{
    (void)msg;
    png_longjmp(png, 1);
}

static void png_warn_cb(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

int render_encode_png(const render_image *im, rs_buf *out, rs_err *err)
{
    if (!image_ok(im))
        return rs_err_set(err, RS_EINVAL, "not a rendered image");
    png_out po = {out, 0};
    size_t start = out->len;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_error_cb, png_warn_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    }
    size_t stride = (size_t)im->cols * im->channels * (im->depth / 8);
    volatile int rc = RS_OK;
    if (setjmp(png_jmpbuf(png))) {
        rc = rs_err_set(err, po.failed ? RS_ENOMEM : RS_EFORMAT, "PNG encoding failed");
        goto out;
    }
    png_set_write_fn(png, &po, png_write_cb, png_flush_cb);
    png_set_compression_level(png, 1);
    png_set_compression_strategy(png, Z_RLE);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_UP);
    png_set_IHDR(png, info, im->cols, im->rows, im->depth, im->channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_BASE, PNG_FILTER_TYPE_BASE);
    png_write_info(png, info);
    if (im->depth == 16) {
        uint16_t probe = 1;
        if (*(uint8_t *)&probe == 1)
            png_set_swap(png); /* PNG samples are big endian */
    }
    for (uint32_t y = 0; y < im->rows; y++)
        png_write_row(png, (png_const_bytep)im->data + (size_t)y * stride);
    png_write_end(png, NULL);
out:
    png_destroy_write_struct(&png, &info);
    if (rc)
        out->len = start;
    return rc;
}

typedef struct jpeg_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_error_exit(j_common_ptr cinfo)
{
    jpeg_err *je = (jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, je->msg);
    longjmp(je->jb, 1);
}

/* Row y as 8-bit samples: in the image when it is 8-bit, else reduced into buf (JPEG is 8-bit
 * here: the high byte, rounded). */
static const uint8_t *row_8bit(const render_image *im, uint32_t y, uint8_t *buf)
{
    size_t stride = (size_t)im->cols * im->channels;
    if (im->depth == 8)
        return (const uint8_t *)im->data + (size_t)y * stride;
    const uint16_t *s = (const uint16_t *)im->data + (size_t)y * stride;
    for (size_t x = 0; x < stride; x++)
        buf[x] = (uint8_t)(((uint32_t)s[x] * 255 + 32767) / 65535);
    return buf;
}

/*
 * Grey images go in as raw data, 8 rows at a time straight into the DCT: libjpeg's colour
 * "conversion" of grey (a byte-by-byte copy) and its downsampler (another copy) were a quarter
 * of the encoder's time. The padding they did is done here the same way - the last column
 * repeated out to whole 8x8 blocks, the last row repeated below the image - so the output is
 * byte for byte what jpeg_write_scanlines makes. buf: 8 rows of width_in_blocks * 8 samples,
 * unused (NULL) when the image is 8-bit and already a whole number of blocks wide.
 */
static void jpeg_grey_rows(j_compress_ptr ci, const render_image *im, uint8_t *buf)
{
    size_t padw = (size_t)ci->comp_info[0].width_in_blocks * DCTSIZE;
    JSAMPROW rows[DCTSIZE];
    JSAMPARRAY planes[1] = {rows};
    for (uint32_t y = 0; y < im->rows; y += DCTSIZE) {
        for (uint32_t k = 0; k < DCTSIZE; k++) {
            uint32_t r = y + k < im->rows ? y + k : im->rows - 1;
            if (!buf) {
                rows[k] = (JSAMPROW)row_8bit(im, r, NULL);
                continue;
            }
            uint8_t *dst = buf + k * padw;
            const uint8_t *src = row_8bit(im, r, dst);
            if (src != dst)
                memcpy(dst, src, im->cols);
            memset(dst + im->cols, dst[im->cols - 1], padw - im->cols);
            rows[k] = dst;
        }
        jpeg_write_raw_data(ci, planes, DCTSIZE);
    }
}

int render_encode_jpeg(const render_image *im, int quality, rs_buf *out, rs_err *err)
{
    if (!image_ok(im))
        return rs_err_set(err, RS_EINVAL, "not a rendered image");
    if (quality < 1 || quality > 100)
        return rs_err_set(err, RS_EINVAL, "JPEG quality %d is not 1..100", quality);
    struct jpeg_compress_struct ci;
    jpeg_err je;
    unsigned char *mem = NULL;
    unsigned long memlen = 0;
    uint8_t *volatile buf = NULL;
    volatile int rc = RS_OK;
    memset(&ci, 0, sizeof ci);
    ci.err = jpeg_std_error(&je.mgr);
    je.mgr.error_exit = jpeg_error_exit;
    if (setjmp(je.jb)) {
        rc = rs_err_set(err, RS_EFORMAT, "JPEG encoding failed: %s", je.msg);
        goto out;
    }
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &mem, &memlen);
    ci.image_width = im->cols;
    ci.image_height = im->rows;
    ci.input_components = im->channels;
    ci.in_color_space = im->channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    ci.raw_data_in = im->channels == 1;
    jpeg_start_compress(&ci, TRUE);
    size_t stride = (size_t)im->cols * im->channels;
    size_t padw = (size_t)ci.comp_info[0].width_in_blocks * DCTSIZE;
    size_t need = ci.raw_data_in ? (im->depth == 8 && padw == im->cols ? 0 : DCTSIZE * padw) : im->depth == 16 ? stride : 0;
    if (need && !(buf = malloc(need))) {
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
        goto out;
    }
    if (ci.raw_data_in) {
        jpeg_grey_rows(&ci, im, buf);
    } else {
        while (ci.next_scanline < ci.image_height) {
            JSAMPROW row = (JSAMPROW)row_8bit(im, ci.next_scanline, buf);
            jpeg_write_scanlines(&ci, &row, 1);
        }
    }
    jpeg_finish_compress(&ci);
    if (rs_buf_append(out, mem, memlen))
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
out:
    jpeg_destroy_compress(&ci);
    free(mem);
    free(buf);
    return rc;
}
