/*
 * cmd_reindex.c - `radshare reindex`: rebuild DATA/index.sqlite from the object files alone
 * (store_reindex). It needs DATA/lock: the server must be stopped first.
 */
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>

#include "../store/store.h"
#include "cli.h"

static void reindex_usage(FILE *to)
{
    fprintf(to,
            "usage: radshare reindex --data DIR [--verify]\n"
            "  --verify  re-hash every file against its name; mismatching files are left unindexed\n"
            "Needs DIR to itself: stop `radshare serve` first (the rebuilt index replaces the live one).\n");
}

int cmd_reindex(int argc, char **argv)
{
    static const struct option longopts[] = {{"data", required_argument, 0, 'd'}, {"verify", no_argument, 0, 'v'},
                                             {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
    const char *data = NULL;
    int verify = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'v': verify = 1; break;
        case 'h': reindex_usage(stdout); return RS_EXIT_OK;
        default: reindex_usage(stderr); return RS_EXIT_ERROR;
        }
    }
    struct stat st;
    if (!data || optind != argc) {
        reindex_usage(stderr);
        return RS_EXIT_ERROR;
    }
    if (stat(data, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "radshare reindex: %s is not a data directory\n", data);
        return RS_EXIT_ERROR;
    }
    store_reindex_report rep;
    rs_err err = {0};
    fprintf(stderr, "reindex: rebuilding %s/index.sqlite from %s/objects/\n", data, data);
    int rc = store_reindex(data, NULL, verify, &rep, &err);
    if (rc) {
        cli_report(data, &err);
        if (rc == RS_EINVAL)
            fprintf(stderr, "radshare reindex: stop `radshare serve` on %s first; the index is replaced whole\n", data);
        return RS_EXIT_ERROR;
    }
    fprintf(stderr, "reindex: %llu files, %llu indexed, %llu unreadable, %llu corrupt\n",
            (unsigned long long)rep.objects, (unsigned long long)rep.indexed, (unsigned long long)rep.unreadable,
            (unsigned long long)rep.corrupt);
    return rep.unreadable || rep.corrupt ? RS_EXIT_PROBLEMS : RS_EXIT_OK;
}
