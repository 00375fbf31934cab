/*
 * cmd_convert.c - `radshare convert IN OUT`: re-encode a DICOM file (uncompressed syntaxes,
 * deflate, its own syntax, or a compressed one radshare encodes: RLE, JPEG-LS, JPEG 2000
 * lossless, JPEG baseline). Used to normalise odd files and in the round-trip tests. A change
 * of pixel data encoding (decompression, compression) goes through the same transcoder as
 * WADO-RS (http/transcode.h), so the file is what a WADO-RS client would get.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "../dicom/reader.h"
#include <stdlib.h>

#include "../dicom/writer.h"
#include "../http/transcode.h"
#include "cli.h"

static void convert_usage(FILE *to)
{
    fprintf(to,
            "usage: radshare convert [options] IN OUT\n"
            "  --ts SYNTAX       implicit-le | explicit-le | explicit-be | deflated | original |\n"
            "                    rle | jpeg-ls | jpeg-ls-near | j2k | jpeg (baseline, 8-bit, lossy) | a UID\n"
            "                    (default: explicit-le for uncompressed data, else original)\n"
            "  --near N          JPEG-LS near-lossless: largest error per sample (default 2)\n"
            "  --quality Q       JPEG baseline quality 1..100 (default 90)\n"
            "  --keep-preamble   copy the input's 128-byte preamble (default: zeroed)\n"
            "  --raw             write a bare dataset without preamble and meta group\n");
}

static const dcm_ts *ts_by_name(const char *s, const dcm_ts *orig)
{
    if (!strcmp(s, "original"))
        return orig;
    if (!strcmp(s, "implicit-le"))
        return dcm_ts_implicit_le();
    if (!strcmp(s, "explicit-le"))
        return dcm_ts_explicit_le();
    if (!strcmp(s, "explicit-be"))
        return dcm_ts_explicit_be();
    static const struct {
        const char *name, *uid;
    } names[] = {{"deflated", DCM_TS_DEFLATED_LE}, {"rle", CODEC_TS_RLE},    {"jpeg-ls", CODEC_TS_JLS},
                 {"jpeg-ls-near", CODEC_TS_JLS_NEAR}, {"j2k", CODEC_TS_J2K}, {"jpeg", CODEC_TS_JPEG_BASELINE}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i].name))
            s = names[i].uid;
    return dcm_ts_find(s, strlen(s));
}

int cmd_convert(int argc, char **argv)
{
    enum { O_TS = 1, O_KEEP, O_RAW, O_HELP, O_NEAR, O_QUALITY };
    static const struct option longopts[] = {{"ts", required_argument, 0, O_TS},
                                              {"near", required_argument, 0, O_NEAR},
                                              {"quality", required_argument, 0, O_QUALITY},
                                              {"keep-preamble", no_argument, 0, O_KEEP},
                                              {"raw", no_argument, 0, O_RAW},
                                              {"help", no_argument, 0, O_HELP},
                                              {0, 0, 0, 0}};
    const char *ts_name = NULL;
    dcm_write_opts wo = {0};
    codec_enc_opts eo = CODEC_ENC_OPTS_DEFAULT;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_TS: ts_name = optarg; break;
        case O_KEEP: wo.keep_preamble = 1; break;
        case O_RAW: wo.no_meta = 1; break;
        case O_NEAR: eo.near = atoi(optarg); break;
        case O_QUALITY: eo.quality = atoi(optarg); break;
        case O_HELP: convert_usage(stdout); return RS_EXIT_OK;
        default: convert_usage(stderr); return RS_EXIT_ERROR;
        }
    }
    if (argc - optind != 2) {
        convert_usage(stderr);
        return RS_EXIT_ERROR;
    }
    const char *in = argv[optind], *out = argv[optind + 1];
    rs_err err;
    rs_err_clear(&err);
    dcm_file *f = NULL;
    int rc = dcm_read_path(in, NULL, &f, &err);
    if (rc) {
        cli_report(in, &err);
        return RS_EXIT_ERROR;
    }
    if (ts_name) {
        wo.ts = ts_by_name(ts_name, f->ts);
        if (!wo.ts) {
            fprintf(stderr, "radshare convert: unknown transfer syntax '%s'\n", ts_name);
            dcm_file_free(f);
            return RS_EXIT_ERROR;
        }
    } else if (!f->ts->encapsulated) {
        wo.ts = dcm_ts_explicit_le();
    }
    if (wo.ts->encapsulated != f->ts->encapsulated || (wo.ts->encapsulated && wo.ts != f->ts)) {
        /* the pixel data changes encoding: decoded, and encoded when the target is compressed */
        rs_buf b = RS_BUF_INIT;
        if (wo.no_meta || wo.keep_preamble) {
            rc = rs_err_set(&err, RS_EINVAL, "--raw and --keep-preamble do not apply when the pixel data is transcoded");
        } else {
            rc = dw_tc_instance_opts(f, wo.ts->uid, &eo, &b, &err);
            rc = rc ? rc : dcm_write_bytes_path(&b, out, &err);
        }
        rs_buf_free(&b);
    } else {
        rc = dcm_write_path(f, &wo, out, &err);
    }
    if (rc)
        cli_report(out, &err);
    dcm_file_free(f);
    return rc ? RS_EXIT_ERROR : RS_EXIT_OK;
}
