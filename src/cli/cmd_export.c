/*
 * cmd_export.c - `radshare export`: a study as patient media (backup/export.h), into a folder
 * or a ZIP file. Reads without the lock: runs beside `radshare serve`.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../backup/export.h"
#include "../util/fdio.h"
#include "cli.h"

static void export_usage(FILE *to)
{
    fprintf(to,
            "usage: radshare export --data DIR --study UID --to OUTDIR|FILE.zip [--deflate] [--quiet]\n"
            "Writes IHE PDI-style media: DICOMDIR, DICOM/ST000001/SE000001/IM000001..., README.TXT, INDEX.HTM.\n"
            "OUTDIR must not exist or be empty; FILE.zip must not exist. --deflate: compress DICOM files in the ZIP.\n");
}

static int fd_sink(void *ctx, const void *p, size_t n)
{
    return rs_write_all(*(int *)ctx, p, n);
}

static int ends_with_zip(const char *s)
{
    size_t n = strlen(s);
    return n > 4 && !strcasecmp(s + n - 4, ".zip");
}

int cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, 0, 'd'}, {"study", required_argument, 0, 's'},
        {"to", required_argument, 0, 't'},   {"deflate", no_argument, 0, 'z'},
        {"quiet", no_argument, 0, 'q'},      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *data = NULL, *study = NULL, *to = NULL;
    export_opts o = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 's': study = optarg; break;
        case 't': to = optarg; break;
        case 'z': o.deflate_dicom = 1; break;
        case 'q': o.quiet = 1; break;
        case 'h': export_usage(stdout); return RS_EXIT_OK;
        default: export_usage(stderr); return RS_EXIT_ERROR;
        }
    }
    if (!data || !study || !to || optind != argc) {
        export_usage(stderr);
        return RS_EXIT_ERROR;
    }
    export_report rep;
    rs_err err = {0};
    int rc;
    if (ends_with_zip(to)) {
        int fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
            fprintf(stderr, "radshare export: cannot create %s: %s\n", to, strerror(errno));
            return RS_EXIT_ERROR;
        }
        rc = backup_export_zip(data, study, fd_sink, &fd, &o, &rep, &err);
        if (rc == RS_OK && fsync(fd) != 0)
            rc = rs_err_set(&err, RS_EIO, "fsync: %s", strerror(errno));
        close(fd);
        if (rc)
            unlink(to);
    } else {
        rc = backup_export_dir(data, study, to, &o, &rep, &err);
    }
    if (rc) {
        cli_report(to, &err);
        return RS_EXIT_ERROR;
    }
    printf("exported study %s: %llu series, %llu instances, %llu bytes to %s\n", study,
           (unsigned long long)rep.series, (unsigned long long)rep.instances, (unsigned long long)rep.bytes, to);
    return RS_EXIT_OK;
}
