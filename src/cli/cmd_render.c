/*
 * cmd_render.c - `radshare render`: one frame of a DICOM image as PNG or JPEG, through the
 * same render path WADO-RS /rendered and the viewer use (so it doubles as their test tool).
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../codec/codec.h"
#include "../dicom/reader.h"
#include "../render/render.h"
#include "../util/fdio.h"
#include "cli.h"

static void render_usage(FILE *to)
{
    fprintf(to,
            "usage: radshare render FILE --out OUT [options]\n"
            "  --frame N            frame to render, 0-based (default 0)\n"
            "  --window C,W         window center and width in modality units (default: the file's,\n"
            "                       else the frame's value range)\n"
            "  --voi-function F     linear | linear_exact | sigmoid (default: the file's, else linear)\n"
            "  --viewport W,H       fit inside W x H keeping the aspect, never enlarging\n"
            "  --format F           png (8-bit) | png16 (16-bit grey) | jpeg (default png)\n"
            "  --quality Q          JPEG quality 1..100 (default 90)\n"
            "  --out OUT            output file ('-' for stdout)\n");
}

static int parse_pair_d(const char *s, double *a, double *b)
{
    char *e;
    *a = strtod(s, &e);
    if (e == s || *e != ',')
        return -1;
    s = e + 1;
    *b = strtod(s, &e);
    return (e == s || *e) ? -1 : 0;
}

static int parse_pair_u(const char *s, uint32_t *a, uint32_t *b)
{
    double x, y;
    if (parse_pair_d(s, &x, &y) || x < 0 || y < 0 || x > 65535 || y > 65535 || x != (uint32_t)x || y != (uint32_t)y)
        return -1;
    *a = (uint32_t)x;
    *b = (uint32_t)y;
    return 0;
}

static int parse_opts(int argc, char **argv, render_params *p, long *frame, const char **outp)
{
    enum { O_FRAME = 1, O_WINDOW, O_VOI, O_VIEWPORT, O_FORMAT, O_QUALITY, O_OUT, O_HELP };
    static const struct option longopts[] = {
        {"frame", required_argument, 0, O_FRAME},     {"window", required_argument, 0, O_WINDOW},
        {"voi-function", required_argument, 0, O_VOI}, {"viewport", required_argument, 0, O_VIEWPORT},
        {"format", required_argument, 0, O_FORMAT},   {"quality", required_argument, 0, O_QUALITY},
        {"out", required_argument, 0, O_OUT},         {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    int c;
    char *e;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_FRAME:
            *frame = strtol(optarg, &e, 10);
            if (e == optarg || *e || *frame < 0 || *frame > 0x7fffffff)
                return fprintf(stderr, "radshare render: bad --frame '%s'\n", optarg), -1;
            break;
        case O_WINDOW:
            if (parse_pair_d(optarg, &p->center, &p->width) || !(p->width > 0))
                return fprintf(stderr, "radshare render: --window wants C,W with W > 0\n"), -1;
            p->has_window = 1;
            break;
        case O_VOI:
            if (!strcmp(optarg, "linear"))
                p->voi_fn = RENDER_VOI_LINEAR;
            else if (!strcmp(optarg, "linear_exact"))
                p->voi_fn = RENDER_VOI_LINEAR_EXACT;
            else if (!strcmp(optarg, "sigmoid"))
                p->voi_fn = RENDER_VOI_SIGMOID;
            else
                return fprintf(stderr, "radshare render: unknown --voi-function '%s'\n", optarg), -1;
            break;
        case O_VIEWPORT:
            if (parse_pair_u(optarg, &p->viewport_w, &p->viewport_h))
                return fprintf(stderr, "radshare render: --viewport wants W,H\n"), -1;
            break;
        case O_FORMAT:
            if (!strcmp(optarg, "png"))
                p->format = RENDER_PNG;
            else if (!strcmp(optarg, "png16"))
                p->format = RENDER_PNG16;
            else if (!strcmp(optarg, "jpeg"))
                p->format = RENDER_JPEG;
            else
                return fprintf(stderr, "radshare render: unknown --format '%s'\n", optarg), -1;
            break;
        case O_QUALITY:
            p->quality = (int)strtol(optarg, &e, 10);
            if (e == optarg || *e || p->quality < 1 || p->quality > 100)
                return fprintf(stderr, "radshare render: --quality wants 1..100\n"), -1;
            break;
        case O_OUT: *outp = optarg; break;
        case O_HELP: render_usage(stdout); return 1;
        default: render_usage(stderr); return -1;
        }
    }
    if (optind + 1 != argc || !*outp) {
        render_usage(stderr);
        return -1;
    }
    return 0;
}

static int write_out(const char *path, const rs_buf *b)
{
    int fd = strcmp(path, "-") ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : 1;
    if (fd < 0) {
        perror(path);
        return -1;
    }
    int rc = rs_write_all(fd, b->p, b->len);
    if (fd != 1 && close(fd) != 0)
        rc = -1;
    if (rc)
        perror(path);
    return rc ? -1 : 0;
}

int cmd_render(int argc, char **argv)
{
    render_params p = RENDER_PARAMS_DEFAULT;
    long frame = 0;
    const char *outp = NULL;
    int r = parse_opts(argc, argv, &p, &frame, &outp);
    if (r)
        return r > 0 ? RS_EXIT_OK : RS_EXIT_ERROR;
    const char *path = argv[optind];
    dcm_read_opts ro = {.bulk_min = 4096};
    dcm_file *f = NULL;
    codec_image *img = NULL;
    rs_buf out = RS_BUF_INIT;
    const char *mime = NULL;
    rs_err err;
    rs_err_clear(&err);
    int status = RS_EXIT_ERROR;
    if (dcm_read_path(path, &ro, &f, &err) || codec_open(f, NULL, &img, &err) ||
        render_frame(f, img, (uint32_t)frame, &p, &out, &mime, &err)) {
        cli_report(path, &err);
        goto out;
    }
    if (write_out(outp, &out) == 0)
        status = RS_EXIT_OK;
out:
    rs_buf_free(&out);
    codec_close(img);
    dcm_file_free(f);
    return status;
}
