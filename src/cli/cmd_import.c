/*
 * cmd_import.c - `radshare import --untrusted PATH`: DICOM instances from outside media
 * (backup/import.h). It stores through the store, which takes DATA/lock.
 */
#include <getopt.h>
#include <stdio.h>

#include "../backup/import.h"
#include "cli.h"

static void import_usage(FILE *to)
{
    fprintf(to,
            "usage: radshare import --untrusted PATH --data DIR [--patient-id ID [--patient-name NAME]] [--quiet]\n"
            "PATH: a folder, a mounted USB key or CD (with or without DICOMDIR), or a .zip. Only files that parse\n"
            "as DICOM are imported, re-encoded with a zeroed preamble; everything else is listed with the reason.\n"
            "--patient-id/--patient-name: the local patient; the outside ID is kept in OtherPatientIDsSequence.\n"
            "The report (one line per file: outcome, path, sha256 before, sha256 stored, reason) is printed and\n"
            "written to DIR/imports/. Needs DIR to itself (stop `radshare serve`, or send with storescu).\n"
            "Exit status: 0 done (even if files were skipped), 1 some DICOM files were refused, 2 could not run.\n");
}

int cmd_import(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"untrusted", required_argument, 0, 'u'}, {"data", required_argument, 0, 'd'},
        {"patient-id", required_argument, 0, 'i'}, {"patient-name", required_argument, 0, 'n'},
        {"quiet", no_argument, 0, 'q'},           {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *path = NULL, *data = NULL;
    import_opts o = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'u': path = optarg; break;
        case 'd': data = optarg; break;
        case 'i': o.patient_id = optarg; break;
        case 'n': o.patient_name = optarg; break;
        case 'q': o.quiet = 1; break;
        case 'h': import_usage(stdout); return RS_EXIT_OK;
        default: import_usage(stderr); return RS_EXIT_ERROR;
        }
    }
    if (!path || !data || optind != argc || (o.patient_name && !o.patient_id)) {
        import_usage(stderr);
        return RS_EXIT_ERROR;
    }
    import_report rep;
    rs_err err = {0};
    int rc = backup_import(path, data, &o, &rep, &err);
    fflush(stdout);
    if (rc) {
        cli_report(path, &err);
        return RS_EXIT_ERROR;
    }
    fprintf(stderr, "import: %llu files looked at: %llu imported, %llu already stored, %llu skipped, %llu refused; "
                    "report %s\n",
            (unsigned long long)rep.seen, (unsigned long long)rep.imported, (unsigned long long)rep.duplicates,
            (unsigned long long)rep.skipped, (unsigned long long)rep.failed, rep.report_path);
    return rep.failed ? RS_EXIT_PROBLEMS : RS_EXIT_OK;
}
