/*
 * main.c - radshare's entry point: dispatches to the subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "../util/err.h"
#include "cli.h"

#define RS_VERSION "0.1.0"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"dump", cmd_dump, "print a DICOM file (human dump, or DICOM JSON with --json)"},
    {"convert", cmd_convert, "re-encode a DICOM file in another transfer syntax"},
    {"serve", cmd_serve, "run the archive: DICOM store, query and retrieve"},
    {"report", cmd_report, "send a report with its share link by e-mail / HL7, see deliveries"},
};

static void usage(FILE *to)
{
    fprintf(to, "usage: radshare <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(to, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(to, "\n'radshare <command> --help' tells more.\n");
}

void cli_report(const char *path, const rs_err *err)
{
    if (err->has_offset)
        fprintf(stderr, "radshare: %s: at byte %llu: %s\n", path, (unsigned long long)err->offset, err->msg);
    else
        fprintf(stderr, "radshare: %s: %s\n", path, err->msg[0] ? err->msg : rs_strerror(err->code));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return RS_EXIT_ERROR;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return RS_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("radshare %s\n", RS_VERSION);
        return RS_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "radshare: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return RS_EXIT_ERROR;
}
