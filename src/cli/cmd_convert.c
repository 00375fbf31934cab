/*
 * cmd_convert.c - `radshare convert IN OUT`: re-encode a DICOM file (uncompressed syntaxes,
 * deflate, or its own syntax). Used to normalise odd files and in the round-trip tests.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "../dicom/reader.h"
#include "../dicom/writer.h"
#include "cli.h"

static void convert_usage(FILE *to)
{
    fprintf(to,
            "usage: radshare convert [options] IN OUT\n"
            "  --ts SYNTAX       implicit-le | explicit-le | explicit-be | deflated | original | a UID\n"
            "                    (default: explicit-le for uncompressed data, else original)\n"
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
    if (!strcmp(s, "deflated"))
        return dcm_ts_find(DCM_TS_DEFLATED_LE, strlen(DCM_TS_DEFLATED_LE));
    return dcm_ts_find(s, strlen(s));
}

int cmd_convert(int argc, char **argv)
{
    enum { O_TS = 1, O_KEEP, O_RAW, O_HELP };
    static const struct option longopts[] = {{"ts", required_argument, 0, O_TS},
                                              {"keep-preamble", no_argument, 0, O_KEEP},
                                              {"raw", no_argument, 0, O_RAW},
                                              {"help", no_argument, 0, O_HELP},
                                              {0, 0, 0, 0}};
    const char *ts_name = NULL;
    dcm_write_opts wo = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_TS: ts_name = optarg; break;
        case O_KEEP: wo.keep_preamble = 1; break;
        case O_RAW: wo.no_meta = 1; break;
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
    rc = dcm_write_path(f, &wo, out, &err);
    if (rc)
        cli_report(out, &err);
    dcm_file_free(f);
    return rc ? RS_EXIT_ERROR : RS_EXIT_OK;
}
