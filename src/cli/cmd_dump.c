/*
 * cmd_dump.c - `radshare dump`: look inside DICOM files, as people (dcmdump-like) or as DICOM
 * JSON for tools. Pixel data and other big values are never read: the JSON refers to them
 * with a BulkDataURI naming the file, offset and length.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dicom/dump.h"
#include "../dicom/json.h"
#include "../dicom/reader.h"
#include "cli.h"

static void dump_usage(FILE *to)
{
    fprintf(to,
            "usage: radshare dump [options] FILE...\n"
            "  --json               print the dataset as DICOM JSON (PS3.18 Annex F)\n"
            "  --pretty             indent the JSON\n"
            "  --inline-max N       binary values up to N bytes inline in JSON (default 1024)\n"
            "  --no-pixels          stop reading at Pixel Data\n"
            "  --strict             treat recoverable oddities as errors\n"
            "  --quiet              do not print warnings\n"
            "Exit status: 0 all files read, 2 a file could not be read (one line on stderr each).\n");
}

/* BulkDataURI for the CLI: where the bytes are in the file. */
static int file_bulk_uri(void *ctx, const dcm_ds *ds, const dcm_elem *e, rs_buf *out)
{
    const char *path = ctx;
    (void)ds;
    if (e->flags & DCM_EF_ENCAPS)
        return rs_buf_printf(out, "file://%s?offset=%llu&encapsulated=%u", path, (unsigned long long)e->off,
                             e->v.px.n);
    return rs_buf_printf(out, "file://%s?offset=%llu&length=%u", path, (unsigned long long)e->off, e->len);
}

int cmd_dump(int argc, char **argv)
{
    enum { O_JSON = 1, O_PRETTY, O_INLINE, O_NOPIX, O_STRICT, O_QUIET, O_HELP };
    static const struct option longopts[] = {
        {"json", no_argument, 0, O_JSON},     {"pretty", no_argument, 0, O_PRETTY},
        {"inline-max", required_argument, 0, O_INLINE}, {"no-pixels", no_argument, 0, O_NOPIX},
        {"strict", no_argument, 0, O_STRICT}, {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, O_HELP},     {0, 0, 0, 0}};
    int json = 0, pretty = 0, quiet = 0, c;
    long inline_max = 1024;
    dcm_read_opts ro = {.bulk_min = 4096};
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_JSON: json = 1; break;
        case O_PRETTY: pretty = 1; break;
        case O_INLINE:
            inline_max = strtol(optarg, NULL, 10);
            if (inline_max < 0) {
                fprintf(stderr, "radshare dump: --inline-max must be >= 0\n");
                return RS_EXIT_ERROR;
            }
            break;
        case O_NOPIX: ro.stop_tag = DCM_TAG_PIXEL_DATA; break;
        case O_STRICT: ro.strict = 1; break;
        case O_QUIET: quiet = 1; break;
        case O_HELP: dump_usage(stdout); return RS_EXIT_OK;
        default: dump_usage(stderr); return RS_EXIT_ERROR;
        }
    }
    if (optind >= argc) {
        dump_usage(stderr);
        return RS_EXIT_ERROR;
    }
    if ((unsigned long)inline_max >= ro.bulk_min)
        ro.bulk_min = (uint32_t)inline_max + 1;
    int status = RS_EXIT_OK;
    rs_buf out = RS_BUF_INIT;
    for (int i = optind; i < argc; i++) {
        const char *path = argv[i];
        rs_err err;
        rs_err_clear(&err);
        dcm_file *f = NULL;
        int rc = dcm_read_path(path, &ro, &f, &err);
        if (rc == RS_OK) {
            rs_buf_reset(&out);
            if (json) {
                char *abs = realpath(path, NULL);
                dcm_json_opts jo = {.inline_max = (uint32_t)inline_max, .bulk = file_bulk_uri,
                                    .bulk_ctx = abs ? abs : (char *)path, .pretty = pretty};
                rc = dcm_json_write(f->ds, &jo, &out, &err);
                if (rc == RS_OK)
                    rc = rs_buf_putc(&out, '\n');
                free(abs);
            } else {
                rc = dcm_dump(f, NULL, &out);
            }
            if (rc == RS_OK)
                fwrite(out.p, 1, out.len, stdout);
            if (!quiet)
                for (unsigned w = 0; w < f->n_warnings && w < DCM_MAX_WARNINGS; w++)
                    fprintf(stderr, "radshare: %s: warning: at byte %llu: %s\n", path,
                            (unsigned long long)f->warnings[w].offset, f->warnings[w].msg);
            if (rc != RS_OK && !err.msg[0])
                rs_err_set(&err, rc, "%s", rs_strerror(rc));
        }
        if (rc != RS_OK) {
            cli_report(path, &err);
            status = RS_EXIT_ERROR;
        }
        dcm_file_free(f);
    }
    rs_buf_free(&out);
    if (fflush(stdout) != 0) {
        perror("radshare dump: stdout");
        status = RS_EXIT_ERROR;
    }
    return status;
}
