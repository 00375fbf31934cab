/*
 * jpeg_enc.c - JPEG baseline encoder (process 1, transfer syntax .50, lossy) through
 * libjpeg-turbo into memory: 8-bit samples only (encode.c checks), grey as one component,
 * colour as YCbCr with the chroma halved horizontally, so the frame is YBR_FULL_422 (PS3.5
 * 8.2.1), what dcmcjpeg writes: dciodvfy refuses YBR_FULL for JPEG baseline images, and every
 * viewer reads 4:2:2. RGB is converted by libjpeg; YBR_FULL input is taken as is. libjpeg's
 * errors longjmp back here.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "encoders.h"

typedef struct enc_fail {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
} enc_fail;

static void enc_error(j_common_ptr c) { longjmp(((enc_fail *)c->err)->jb, 1); }

/* Runs libjpeg; separate so that nothing the longjmp could clobber is live in the caller.
   *mem is libjpeg's output buffer, freed by the caller. */
static int run_encoder(const codec_frame *fr, int quality, unsigned char **mem, unsigned long *size, rs_err *err)
{
    struct jpeg_compress_struct ci;
    enc_fail jf;
    memset(&ci, 0, sizeof ci);
    ci.err = jpeg_std_error(&jf.pub);
    jf.pub.error_exit = enc_error;
    if (setjmp(jf.jb)) {
        char msg[JMSG_LENGTH_MAX];
        (*ci.err->format_message)((j_common_ptr)&ci, msg);
        jpeg_destroy_compress(&ci);
        return rs_err_set(err, RS_EFORMAT, "JPEG encoding: %s", msg);
    }
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, mem, size);
    ci.image_width = fr->cols;
    ci.image_height = fr->rows;
    ci.input_components = fr->spp;
    ci.in_color_space = fr->spp == 1 ? JCS_GRAYSCALE : strncmp(fr->photometric, "YBR_FULL", 8) ? JCS_RGB : JCS_YCbCr;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    for (int c = 0; c < ci.num_components; c++) /* 4:2:2: Y 2x1, Cb and Cr 1x1 */
        ci.comp_info[c].h_samp_factor = ci.comp_info[c].v_samp_factor = 1;
    if (ci.num_components == 3)
        ci.comp_info[0].h_samp_factor = 2;
    jpeg_start_compress(&ci, TRUE);
    size_t stride = (size_t)fr->cols * (size_t)fr->spp;
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)fr->data + (size_t)ci.next_scanline * stride; /* read only */
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    return RS_OK;
}

int codec_jpeg_encode(const codec_frame *fr, int quality, rs_buf *out, rs_err *err)
{
    if (codec_frame_sb(fr) != 1 || fr->bits_stored != 8 || fr->type != CODEC_U8)
        return rs_err_set(err, RS_EUNSUPPORTED, "JPEG baseline takes 8-bit unsigned samples");
    unsigned char *mem = NULL;
    unsigned long size = 0;
    int rc = run_encoder(fr, quality, &mem, &size, err);
    if (rc == RS_OK && rs_buf_append(out, mem, size))
        rc = rs_err_set(err, RS_ENOMEM, "out of memory for a %lu-byte JPEG frame", size);
    free(mem);
    return rc;
}
