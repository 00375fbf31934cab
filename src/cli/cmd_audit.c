/*
 * cmd_audit.c - `radshare audit verify|list`: check the hash chain of DATA/audit, or print the
 * records of a study or a share (one JSON line each, as stored).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "../audit/audit.h"
#include "cli.h"

#define DEFAULT_DATA "./radshare-data"

static void audit_usage(FILE *to)
{
    fprintf(to, "usage: radshare audit verify [--data DIR]        exit 0: chain intact, 1: broken (line named)\n"
                "       radshare audit list (--study UID | --share ID) [--data DIR]\n");
}

static int print_record(const audit_record *r, void *ctx)
{
    fwrite(r->line, 1, r->len, stdout);
    putchar('\n');
    ++*(unsigned long *)ctx;
    return 0;
}

static int verify(const char *data)
{
    audit_report rep;
    rs_err err = {0};
    if (audit_verify(data, &rep, &err)) {
        cli_report(data, &err);
        return RS_EXIT_ERROR;
    }
    if (!rep.ok) {
        if (rep.line)
            printf("BROKEN %s:%llu: %s\n", rep.file, (unsigned long long)rep.line, rep.problem);
        else
            printf("BROKEN %s: %s\n", rep.file, rep.problem);
        printf("%llu records verified before it\n", (unsigned long long)rep.records);
        return RS_EXIT_PROBLEMS;
    }
    printf("ok: %llu records in %llu files, last seq %llu, hash %s\n", (unsigned long long)rep.records,
           (unsigned long long)rep.files, (unsigned long long)rep.last_seq, rep.last_hash);
    if (rep.torn_repairs)
        printf("note: %llu append(s) cut by a crash were removed on restart (audit.torn records)\n",
               (unsigned long long)rep.torn_repairs);
    return RS_EXIT_OK;
}

int cmd_audit(int argc, char **argv)
{
    static const struct option longs[] = {{"data", required_argument, NULL, 'd'},
                                          {"study", required_argument, NULL, 's'},
                                          {"share", required_argument, NULL, 'i'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    const char *data = DEFAULT_DATA, *study = NULL, *share = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 's')
            study = optarg;
        else if (c == 'i')
            share = optarg;
        else {
            audit_usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? RS_EXIT_OK : RS_EXIT_ERROR;
        }
    }
    const char *verb = optind < argc ? argv[optind] : "";
    if (optind + 1 == argc && !strcmp(verb, "verify"))
        return verify(data);
    if (optind + 1 == argc && !strcmp(verb, "list") && (study || share)) {
        unsigned long n = 0;
        rs_err err = {0};
        if (audit_query(data, study, share, print_record, &n, &err)) {
            cli_report(data, &err);
            return RS_EXIT_ERROR;
        }
        fprintf(stderr, "%lu records\n", n);
        return RS_EXIT_OK;
    }
    audit_usage(stderr);
    return RS_EXIT_ERROR;
}
