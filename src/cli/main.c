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
    {"render", cmd_render, "render a frame of a DICOM image as PNG or JPEG"},
    {"decode", cmd_decode, "decode a frame of a DICOM file to raw samples (--info describes it)"},
    {"verify", cmd_verify, "check the stored files against their names and the index"},
    {"reindex", cmd_reindex, "rebuild the index from the stored files alone"},
    {"backup", cmd_backup, "incremental signed backup of a data directory"},
    {"restore", cmd_restore, "restore a verified backup into a new data directory"},
    {"import", cmd_import, "import DICOM files from untrusted media (folder, USB key, CD, ZIP)"},
    {"export", cmd_export, "write a study as IHE PDI media (DICOMDIR, folder or ZIP)"},
    {"user", cmd_user, "staff accounts: add (password on stdin), list, disable"},
    {"audit", cmd_audit, "the audit trail: verify the hash chain, list a study's records"},
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
