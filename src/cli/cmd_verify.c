/*
 * cmd_verify.c - `radshare verify`: are the stored files still what the archive wrote?
 * One line per problem on stdout ("corrupt PATH (detail)"), a summary on stderr.
 */
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>

#include "../backup/verify.h"
#include "cli.h"

static void verify_usage(FILE *to)
{
    fprintf(to,
            "usage: radshare verify --data DIR [--full] [--quiet]\n"
            "  --full    re-hash every file (default: only files whose size or mtime changed since the last run)\n"
            "  --quiet   no progress output\n"
            "Prints one line per problem: missing|corrupt|orphan PATH (detail).\n"
            "Exit status: 0 clean, 1 problems found, 2 could not run.\n"
            "Runs while `radshare serve` uses DIR (it takes no lock and writes only DIR/verify.state).\n");
}

static void print_problem(void *ctx, backup_problem p, const char *path, const char *detail)
{
    printf("%s %s (%s)\n", backup_problem_name(p), path, detail);
    fflush(stdout);
}

int cmd_verify(int argc, char **argv)
{
    static const struct option longopts[] = {{"data", required_argument, 0, 'd'}, {"full", no_argument, 0, 'f'},
                                             {"quiet", no_argument, 0, 'q'},      {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    const char *data = NULL;
    backup_verify_opts o = {.problem = print_problem};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'f': o.full = 1; break;
        case 'q': o.quiet = 1; break;
        case 'h': verify_usage(stdout); return RS_EXIT_OK;
        default: verify_usage(stderr); return RS_EXIT_ERROR;
        }
    }
    struct stat st;
    if (!data || optind != argc) {
        verify_usage(stderr);
        return RS_EXIT_ERROR;
    }
    if (stat(data, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "radshare verify: %s is not a data directory\n", data);
        return RS_EXIT_ERROR;
    }
    backup_verify_report rep;
    rs_err err = {0};
    int rc = backup_verify(data, &o, &rep, &err);
    if (rc) {
        cli_report(data, &err);
        return RS_EXIT_ERROR;
    }
    fprintf(stderr,
            "verify: %llu files, %llu indexed objects; %llu hashed, %llu unchanged since the last run; "
            "%llu missing, %llu corrupt, %llu orphan\n",
            (unsigned long long)rep.objects, (unsigned long long)rep.indexed, (unsigned long long)rep.hashed,
            (unsigned long long)rep.skipped, (unsigned long long)rep.missing, (unsigned long long)rep.corrupt,
            (unsigned long long)rep.orphan);
    return rep.missing || rep.corrupt || rep.orphan ? RS_EXIT_PROBLEMS : RS_EXIT_OK;
}
