/*
 * jpeg.c - the JPEG family of DICOM: baseline and extended (processes 1, 2 and 4) through
 * libjpeg-turbo from memory, lossless process 14 through ljpeg.c.
 *
 * Before libjpeg sees a frame, its SOF header is found and compared with the dataset
 * (dimensions, components, precision), so that libjpeg only ever allocates for a frame the
 * dataset already accounts for. libjpeg errors longjmp back here; "premature end of JPEG
 * file" (a truncated fragment, which libjpeg would pad with grey) is an error too.
 *
 * Colour follows the DICOM photometric interpretation, not libjpeg's guess from JFIF/Adobe
 * markers (as DCMTK does): YBR_* data is converted to RGB and said to be "RGB"; RGB data is
 * passed through untouched. Debian's libjpeg-turbo 2.1 is built for 8-bit samples only, so
 * 12-bit extended JPEG goes to jpeg12.c; other 12-bit processes are RS_EUNSUPPORTED.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "decoders.h"
#include "ljpeg.h"

/* ---- the frame header, read without libjpeg ----------------------------------------------- */

typedef struct jpeg_sof {
    int marker; /* 0xC0..0xCF */
    int precision, comps;
    uint32_t width, height;
} jpeg_sof;

static int find_sof(const uint8_t *p, size_t n, jpeg_sof *sof, rs_err *err)
{
    if (n < 4 || p[0] != 0xFF || p[1] != 0xD8)
        return rs_err_set(err, RS_EFORMAT, "JPEG frame does not start with SOI");
    size_t i = 2;
    while (i + 4 <= n) {
        if (p[i] != 0xFF)
            return rs_err_set(err, RS_EFORMAT, "JPEG: expected a marker at byte %zu", i);
        int m = p[i + 1];
        if (m == 0xFF) { /* fill byte */
            i++;
            continue;
        }
        size_t len = (size_t)p[i + 2] << 8 | p[i + 3];
        if (len < 2 || len > n - i - 2)
            return rs_err_set(err, RS_EFORMAT, "JPEG: segment %02X at byte %zu overruns the frame", m, i);
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (len < 8)
                return rs_err_set(err, RS_EFORMAT, "JPEG: short frame header");
            const uint8_t *q = p + i + 4;
            sof->marker = m;
            sof->precision = q[0];
            sof->height = (uint32_t)q[1] << 8 | q[2];
            sof->width = (uint32_t)q[3] << 8 | q[4];
            sof->comps = q[5];
            return RS_OK;
        }
        if (m == 0xDA || m == 0xD9)
            break;
        i += 2 + len;
    }
    return rs_err_set(err, RS_EFORMAT, "JPEG frame has no frame header (SOF)");
}

/* ---- libjpeg ------------------------------------------------------------------------------- */

typedef struct jpeg_fail {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int truncated;
} jpeg_fail;

static void on_error(j_common_ptr c)
{
    jpeg_fail *f = (jpeg_fail *)c->err;
    longjmp(f->jb, 1);
}

static void on_message(j_common_ptr c, int level)
{
    jpeg_fail *f = (jpeg_fail *)c->err;
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF)
        f->truncated = 1;
}

/* Runs libjpeg on a checked frame; separate so that nothing the longjmp could clobber is
   live in the caller. */
static int run_libjpeg(const codec_desc *d, const uint8_t *p, size_t n, codec_frame *out, JSAMPLE **row,
                       rs_err *err)
{
    struct jpeg_decompress_struct ci;
    jpeg_fail jf;
    memset(&ci, 0, sizeof ci);
    ci.err = jpeg_std_error(&jf.pub);
    jf.pub.error_exit = on_error;
    jf.pub.emit_message = on_message;
    jf.truncated = 0;
    if (setjmp(jf.jb)) {
        char msg[JMSG_LENGTH_MAX];
        (*ci.err->format_message)((j_common_ptr)&ci, msg);
        jpeg_destroy_decompress(&ci);
        return rs_err_set(err, RS_EFORMAT, "JPEG: %s", msg);
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, p, (unsigned long)n);
    jpeg_read_header(&ci, TRUE);
    if (d->spp == 3 && !strncmp(d->photometric, "YBR", 3)) {
        ci.jpeg_color_space = JCS_YCbCr;
        ci.out_color_space = JCS_RGB;
    } else if (d->spp == 3) {
        ci.jpeg_color_space = JCS_UNKNOWN;
        ci.out_color_space = JCS_UNKNOWN;
    } else {
        ci.out_color_space = JCS_GRAYSCALE;
    }
    jpeg_start_decompress(&ci);
    int rc = codec_check_header(d, "JPEG output", ci.output_width, ci.output_height, ci.output_components,
                                ci.data_precision, err);
    if (rc == RS_OK)
        rc = codec_frame_init(out, d, d->spp, d->spp == 3 && ci.out_color_space == JCS_RGB ? "RGB" : d->photometric,
                              err);
    if (rc == RS_OK) {
        size_t stride = (size_t)d->cols * (size_t)d->spp;
        *row = malloc(stride);
        if (!*row)
            rc = rs_err_set(err, RS_ENOMEM, "out of memory");
        while (rc == RS_OK && ci.output_scanline < ci.output_height) {
            size_t y = ci.output_scanline;
            if (jpeg_read_scanlines(&ci, row, 1) != 1)
                break;
            for (size_t x = 0; x < stride; x++)
                codec_put(out, y * stride + x, (*row)[x]);
        }
        if (rc == RS_OK && (jf.truncated || ci.output_scanline < ci.output_height))
            rc = rs_err_set(err, RS_EFORMAT, "JPEG data ends before the last line (truncated fragment?)");
    }
    if (rc == RS_OK)
        jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    return rc;
}

int codec_jpeg_decode(const codec_desc *d, const uint8_t *p, size_t n, codec_frame *out, rs_err *err)
{
    jpeg_sof sof = {0};
    int rc = find_sof(p, n, &sof, err);
    if (rc)
        return rc;
    if (sof.marker == 0xC3 || sof.marker == 0xC7 || sof.marker == 0xCB || sof.marker == 0xCF)
        return codec_ljpeg_decode(d, p, n, out, err);
    if ((rc = codec_check_header(d, "JPEG frame header", sof.width, sof.height, sof.comps, sof.precision, err)))
        return rc;
    if (sof.precision == 12 && sof.marker == 0xC1)
        return codec_jpeg12_decode(d, p, n, out, err);
    if (sof.precision != 8)
        return rs_err_set(err, RS_EUNSUPPORTED,
                          "%d-bit JPEG (SOF%d): the system's libjpeg-turbo decodes 8-bit samples only",
                          sof.precision, sof.marker - 0xC0);
    if (sof.marker > 0xC2 && sof.marker != 0xC9 && sof.marker != 0xCA)
        return rs_err_set(err, RS_EUNSUPPORTED, "JPEG process SOF%d", sof.marker - 0xC0);
    JSAMPLE *row = NULL;
    rc = run_libjpeg(d, p, n, out, &row, err);
    free(row);
    if (rc)
        codec_frame_free(out);
    return rc;
}

/* ---- lossless, process 14 ------------------------------------------------------------------ */

int codec_ljpeg_decode(const codec_desc *d, const uint8_t *p, size_t n, codec_frame *out, rs_err *err)
{
    ljpeg_info info;
    int rc = ljpeg_read_header(p, n, &info, err);
    if (rc)
        return rc;
    if ((rc = codec_check_header(d, "JPEG lossless frame header", info.width, info.height, info.components,
                                 info.precision, err)))
        return rc;
    ljpeg_limits lim = {d->cols, d->rows, (uint64_t)d->cols * d->rows * (uint64_t)d->spp};
    ljpeg_image li = {0};
    if ((rc = ljpeg_decode(p, n, &lim, &li, err)))
        return rc;
    if (li.width != d->cols || li.height != d->rows || li.components != d->spp)
        rc = rs_err_set(err, RS_EFORMAT, "JPEG lossless image disagrees with its frame header");
    if (rc == RS_OK)
        rc = codec_frame_init(out, d, d->spp, codec_native_photometric(d), err);
    if (rc == RS_OK) {
        size_t total = (size_t)d->rows * d->cols * (size_t)d->spp;
        for (size_t i = 0; i < total; i++)
            codec_put(out, i, li.samples[i]);
    }
    ljpeg_image_free(&li);
    return rc;
}
