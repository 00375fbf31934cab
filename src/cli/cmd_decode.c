/*
 * cmd_decode.c - `radshare decode`: a frame of a DICOM file as raw samples, through the same
 * codec_open/codec_decode_frame path the server renders with. For users who want the pixels
 * and for the codec tests, which compare the output with pydicom/DCMTK/GDCM.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../codec/codec.h"
#include "../dicom/reader.h"
#include "../dicom/tag.h"
#include "cli.h"

static void decode_usage(FILE *to)
{
    fprintf(to,
            "usage: radshare decode [options] FILE\n"
            "  --frame N     frame to decode, 0-based (default 0)\n"
            "  --all         decode every frame, written one after the other\n"
            "  --out FILE    write the samples there (raw, little endian, interleaved) instead of stdout\n"
            "  --info        print the pixel description as key=value lines (no samples unless --out)\n"
            "Exit status: 0 decoded, 2 the file or its pixel data could not be read (reason on stderr).\n");
}

static const char *stype_name(codec_stype t)
{
    static const char *names[] = {"u8", "s8", "u16", "s16", "u32", "s32"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static void print_info(const codec_desc *d, const codec_frame *fr, uint32_t index)
{
    printf("rows=%u\ncols=%u\nspp=%d\ntype=%s\nbits_stored=%d\nphotometric=%s\nframes=%u\nframe=%u\n"
           "bits_allocated=%d\nhigh_bit=%d\nsigned=%d\nplanar=%d\nstored_photometric=%s\ntransfer_syntax=%s\n"
           "encapsulated=%d\nlossy=%d\nbytes=%zu\n",
           fr->rows, fr->cols, fr->spp, stype_name(fr->type), fr->bits_stored, fr->photometric, d->frames, index,
           d->bits_allocated, d->high_bit, d->is_signed, d->planar, d->photometric, d->ts_uid, d->encapsulated,
           d->lossy, fr->size);
}

int cmd_decode(int argc, char **argv)
{
    enum { O_FRAME = 1, O_ALL, O_OUT, O_INFO, O_HELP };
    static const struct option longopts[] = {{"frame", required_argument, 0, O_FRAME}, {"all", no_argument, 0, O_ALL},
                                             {"out", required_argument, 0, O_OUT},     {"info", no_argument, 0, O_INFO},
                                             {"help", no_argument, 0, O_HELP},         {0, 0, 0, 0}};
    long frame = 0;
    int all = 0, info = 0, c;
    const char *outpath = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_FRAME: {
            char *end;
            frame = strtol(optarg, &end, 10);
            if (*end || frame < 0 || frame > UINT32_MAX) {
                fprintf(stderr, "radshare decode: --frame wants a frame number from 0\n");
                return RS_EXIT_ERROR;
            }
            break;
        }
        case O_ALL: all = 1; break;
        case O_OUT: outpath = optarg; break;
        case O_INFO: info = 1; break;
        case O_HELP: decode_usage(stdout); return RS_EXIT_OK;
        default: decode_usage(stderr); return RS_EXIT_ERROR;
        }
    }
    if (optind != argc - 1) {
        decode_usage(stderr);
        return RS_EXIT_ERROR;
    }
    const char *path = argv[optind];
    rs_err err;
    rs_err_clear(&err);
    dcm_file *f = NULL;
    codec_image *img = NULL;
    codec_frame fr = {0};
    FILE *out = NULL;
    int status = RS_EXIT_ERROR;
    dcm_read_opts ro = {.bulk_min = 65536};
    int rc = dcm_read_path(path, &ro, &f, &err);
    if (rc == RS_OK)
        rc = codec_open(f, NULL, &img, &err);
    if (rc != RS_OK)
        goto out;
    const codec_desc *d = codec_get_desc(img);
    uint32_t first = all ? 0 : (uint32_t)frame, last = all ? d->frames : (uint32_t)frame + 1;
    if (outpath) {
        out = fopen(outpath, "wb");
        if (!out) {
            perror(outpath);
            goto out;
        }
    } else if (!info) {
        out = stdout;
    }
    for (uint32_t k = first; k < last; k++) {
        rc = codec_decode_frame(img, k, &fr, &err);
        if (rc != RS_OK)
            goto out;
        if (info && k == first)
            print_info(d, &fr, k);
        if (out && fwrite(fr.data, 1, fr.size, out) != fr.size) {
            perror(outpath ? outpath : "stdout");
            goto out;
        }
        codec_frame_free(&fr);
    }
    status = RS_EXIT_OK;
out:
    if (rc != RS_OK) {
        if (!err.msg[0])
            rs_err_set(&err, rc, "%s", rs_strerror(rc));
        cli_report(path, &err);
    }
    if (out && out != stdout && fclose(out) != 0 && status == RS_EXIT_OK) {
        perror(outpath);
        status = RS_EXIT_ERROR;
    }
    if (out == stdout && fflush(stdout) != 0)
        status = RS_EXIT_ERROR;
    codec_frame_free(&fr);
    codec_close(img);
    dcm_file_free(f);
    return status;
}
