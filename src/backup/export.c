/*
 * export.c - see export.h.
 */
#include "export.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../dicom/dicomdir.h"
#include "../dicom/reader.h"
#include "../dicom/writer.h"
#include "../render/render.h"
#include "../util/buf.h"
#include "../util/fdio.h"
#include "../util/progress.h"
#include "catalog.h"
#include "files.h"

#define CHUNK (1u << 20)
#define THUMB_SIZE 192

/* Where the files go: a directory or a ZIP. */
typedef struct sink {
    int (*begin)(struct sink *s, const char *name, uint64_t size, int text, rs_err *err);
    int (*write)(struct sink *s, const void *p, size_t n, rs_err *err);
    int (*end)(struct sink *s, rs_err *err);
    const char *root;     /* directory sink */
    int fd;
    zip_writer *zip;      /* ZIP sink */
    int deflate_dicom;
} sink;

static int dir_begin(sink *s, const char *name, uint64_t size, int text, rs_err *err)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s/%s", s->root, name) >= (int)sizeof p)
        return rs_err_set(err, RS_EINVAL, "path too long");
    int rc = backup_mkdirs_for(p, err);
    if (rc)
        return rc;
    s->fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    return s->fd >= 0 ? RS_OK : rs_err_set(err, RS_EIO, "cannot create %s: %s", p, strerror(errno));
}

static int dir_write(sink *s, const void *p, size_t n, rs_err *err)
{
    return rs_write_all(s->fd, p, n) ? rs_err_set(err, RS_EIO, "write: %s", strerror(errno)) : RS_OK;
}

static int dir_end(sink *s, rs_err *err)
{
    int rc = close(s->fd) == 0 ? RS_OK : rs_err_set(err, RS_EIO, "close: %s", strerror(errno));
    s->fd = -1;
    return rc;
}

static int zip_begin(sink *s, const char *name, uint64_t size, int text, rs_err *err)
{
    return zip_entry_begin(s->zip, name, text || s->deflate_dicom ? ZIP_DEFLATE : ZIP_STORE, time(NULL), size, err);
}

static int zip_write(sink *s, const void *p, size_t n, rs_err *err)
{
    return zip_entry_write(s->zip, p, n, err);
}

static int zip_end(sink *s, rs_err *err)
{
    return zip_entry_end(s->zip, err);
}

static int put_whole(sink *s, const char *name, const void *p, size_t n, int text, rs_err *err)
{
    int rc = s->begin(s, name, n, text, err);
    rc = rc ? rc : s->write(s, p, n, err);
    return rc ? rc : s->end(s, err);
}

/* ---- the instances ---------------------------------------------------------------------- */

/* Copy an object with its preamble zeroed. Objects are Part 10 files (the store writes them). */
static int copy_instance(sink *s, const char *path, const char *name, uint64_t *bytes, rs_err *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int rc = rs_err_set(err, RS_EIO, "cannot open %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    uint8_t *buf = malloc(CHUNK);
    int rc = buf ? s->begin(s, name, (uint64_t)st.st_size, 0, err) : rs_err_set(err, RS_ENOMEM, "out of memory");
    uint64_t off = 0;
    while (rc == RS_OK && off < (uint64_t)st.st_size) {
        size_t want = (uint64_t)st.st_size - off < CHUNK ? (size_t)((uint64_t)st.st_size - off) : CHUNK;
        if (rs_pread_all(fd, buf, want, off)) {
            rc = rs_err_set(err, RS_EIO, "cannot read %s", path);
            break;
        }
        if (off == 0) {
            if (want < 132 || memcmp(buf + 128, "DICM", 4) != 0)
                rc = rs_err_set(err, RS_EFORMAT, "%s is not a Part 10 file", path);
            else
                memset(buf, 0, 128);
        }
        if (rc == RS_OK)
            rc = s->write(s, buf, want, err);
        off += want;
    }
    if (rc == RS_OK)
        rc = s->end(s, err);
    *bytes += off;
    free(buf);
    close(fd);
    return rc;
}

/* A series' thumbnail: its middle instance, first frame, default window, as JPEG. */
static int thumbnail(const char *path, rs_buf *out)
{
    dcm_read_opts ro = {.bulk_min = 4096};
    render_params p = RENDER_PARAMS_DEFAULT;
    p.viewport_w = p.viewport_h = THUMB_SIZE;
    p.format = RENDER_JPEG;
    p.quality = 85;
    dcm_file *f = NULL;
    codec_image *img = NULL;
    const char *mime;
    rs_err e = {0};
    int rc = dcm_read_path(path, &ro, &f, &e);
    rc = rc ? rc : codec_open(f, NULL, &img, &e);
    rc = rc ? rc : render_frame(f, img, 0, &p, out, &mime, &e);
    codec_close(img);
    dcm_file_free(f);
    return rc;
}

/* ---- the text files ----------------------------------------------------------------------- */

static void html_text(rs_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': rs_buf_puts(b, "&lt;"); break;
        case '>': rs_buf_puts(b, "&gt;"); break;
        case '&': rs_buf_puts(b, "&amp;"); break;
        case '"': rs_buf_puts(b, "&quot;"); break;
        case '^': rs_buf_putc(b, ' '); break;
        default: rs_buf_putc(b, *s);
        }
    }
}

static int index_html(const dicomdir_entry *e, size_t n, const unsigned char *thumbs, rs_buf *b)
{
    rs_buf_puts(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>DICOM media</title>\n"
                   "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}"
                   "tr:nth-child(even){background:#eee}</style></head><body>\n<h1>Patient: ");
    html_text(b, e[0].patient_name);
    rs_buf_puts(b, " (");
    html_text(b, e[0].patient_id);
    rs_buf_puts(b, ")</h1>\n<p>Study ");
    html_text(b, e[0].study_date);
    rs_buf_puts(b, " &mdash; ");
    html_text(b, e[0].study_desc);
    rs_buf_puts(b, " &mdash; accession ");
    html_text(b, e[0].accession);
    rs_buf_puts(b, "</p>\n<p>The images are in the DICOM/ folder, listed by DICOMDIR; open them with any DICOM "
                   "viewer. Each series is shown by a thumbnail of its middle image (IHE_PDI/).</p>\n"
                   "<table><tr><th>Series</th><th>Modality</th><th>Instance</th><th>File</th></tr>\n");
    unsigned series = 0;
    for (size_t i = 0; i < n; i++) {
        char path[160];
        if (i == 0 || strcmp(e[i].series_uid, e[i - 1].series_uid)) {
            series++;
            rs_buf_printf(b, "<tr><td colspan=\"4\"><h2>Series %u</h2>", series);
            if (thumbs[series - 1])
                rs_buf_printf(b, "<img src=\"IHE_PDI/SE%06u.JPG\" alt=\"series %u\">", series, series);
            else
                rs_buf_puts(b, "(no thumbnail: not an image this build renders)");
            rs_buf_puts(b, "</td></tr>\n");
        }
        snprintf(path, sizeof path, "%s", e[i].file_id);
        for (char *p = path; *p; p++)
            if (*p == '\\')
                *p = '/';
        rs_buf_puts(b, "<tr><td>");
        html_text(b, e[i].series_number);
        rs_buf_puts(b, "</td><td>");
        html_text(b, e[i].modality);
        rs_buf_puts(b, "</td><td>");
        html_text(b, e[i].instance_number);
        rs_buf_printf(b, "</td><td><a href=\"%s\">%s</a></td></tr>\n", path, path);
    }
    return rs_buf_puts(b, "</table>\n</body></html>\n");
}

static const char README[] =
    "This medium holds medical images in the DICOM format (IHE Portable Data for Imaging).\r\n"
    "DICOMDIR lists them; the images are in the DICOM folder. INDEX.HTM lists the series.\r\n"
    "Nothing on this medium needs to be installed or run.\r\n\r\n"
    "Ce support contient des images medicales au format DICOM. DICOMDIR les repertorie ; les images sont\r\n"
    "dans le dossier DICOM. INDEX.HTM liste les series. Rien n'est a installer ni a executer.\r\n\r\n"
    "Deze drager bevat medische beelden in DICOM-formaat. DICOMDIR somt ze op; de beelden staan in de map\r\n"
    "DICOM. INDEX.HTM toont de reeksen. Er hoeft niets geinstalleerd of uitgevoerd te worden.\r\n\r\n"
    "Dieser Datentraeger enthaelt medizinische Bilder im DICOM-Format. DICOMDIR verzeichnet sie; die Bilder\r\n"
    "liegen im Ordner DICOM. INDEX.HTM listet die Serien. Nichts muss installiert oder ausgefuehrt werden.\r\n";

/* ---- the whole medium --------------------------------------------------------------------- */

static void make_uid(char *out, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, cap, "1.2.826.0.1.3680043.10.1449.9.%lld.%ld.%ld", (long long)ts.tv_sec, (long)getpid(),
             ts.tv_nsec / 1000);
}

static int export_study(const char *datadir, const char *study, sink *s, const export_opts *o,
                        export_report *rep, rs_err *err)
{
    backup_catalog *cat = NULL;
    backup_study_item *items = NULL;
    dicomdir_entry *d = NULL;
    size_t n = 0;
    rs_progress prog;
    memset(rep, 0, sizeof *rep);
    int rc = backup_catalog_open(datadir, &cat, err);
    if (rc == RS_OK)
        rc = backup_catalog_study(cat, study, &items, &n, err);
    backup_catalog_close(cat);
    if (rc == RS_OK && n > 999999)
        rc = rs_err_set(err, RS_ELIMIT, "%zu instances: more than a medium's file names allow", n);
    if (rc == RS_OK && !(d = calloc(n, sizeof *d)))
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
    rs_progress_begin(&prog, "export", n, o->quiet);
    unsigned series = 0, inst = 0;
    for (size_t i = 0; i < n && rc == RS_OK; i++) {
        char path[PATH_MAX], name[64];
        if (i == 0 || strcmp(items[i].series_uid, items[i - 1].series_uid)) {
            series++;
            inst = 0;
        }
        inst++;
        rc = backup_object_path(datadir, items[i].hash, path, sizeof path, err);
        rc = rc ? rc : dicomdir_entry_read(path, &d[i], err);
        if (rc)
            break;
        /* one patient and study record: the study's first instance speaks for all */
        if (i) {
            memcpy(d[i].patient_id, d[0].patient_id, sizeof d[i].patient_id);
            memcpy(d[i].study_uid, d[0].study_uid, sizeof d[i].study_uid);
        }
        snprintf(d[i].file_id, sizeof d[i].file_id, "DICOM\\ST000001\\SE%06u\\IM%06u", series, inst);
        snprintf(name, sizeof name, "DICOM/ST000001/SE%06u/IM%06u", series, inst);
        uint64_t before = rep->bytes;
        rc = copy_instance(s, path, name, &rep->bytes, err);
        rs_progress_add(&prog, 1, rep->bytes - before);
    }
    rs_progress_end(&prog);
    rep->instances = n;
    rep->series = series;
    rs_buf b = RS_BUF_INIT;
    unsigned char *thumbs = calloc(series + 1, 1);
    if (rc == RS_OK && !thumbs)
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
    for (size_t first = 0, k = 0; rc == RS_OK && first < n; k++) {
        size_t last = first + 1;
        while (last < n && !strcmp(items[last].series_uid, items[first].series_uid))
            last++;
        char path[PATH_MAX], name[64];
        rs_buf_reset(&b);
        rc = backup_object_path(datadir, items[(first + last - 1) / 2].hash, path, sizeof path, err);
        if (rc == RS_OK && thumbnail(path, &b) == RS_OK) {
            snprintf(name, sizeof name, "IHE_PDI/SE%06u.JPG", (unsigned)k + 1);
            rc = put_whole(s, name, b.p, b.len, 0, err);
            thumbs[k] = 1;
        }
        first = last;
    }
    rs_buf_reset(&b);
    char uid[65];
    make_uid(uid, sizeof uid);
    if (rc == RS_OK)
        rc = dicomdir_write(d, n, "RADSHARE", uid, &b, err);
    if (rc == RS_OK)
        rc = put_whole(s, "DICOMDIR", b.p, b.len, 1, err);
    if (rc == RS_OK)
        rc = put_whole(s, "README.TXT", README, sizeof README - 1, 1, err);
    rs_buf_reset(&b);
    if (rc == RS_OK && index_html(d, n, thumbs, &b))
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
    if (rc == RS_OK)
        rc = put_whole(s, "INDEX.HTM", b.p, b.len, 1, err);
    rs_buf_free(&b);
    free(thumbs);
    free(d);
    free(items);
    return rc;
}

int backup_export_dir(const char *datadir, const char *study_uid, const char *dir, const export_opts *o,
                      export_report *rep, rs_err *err)
{
    if (!backup_dir_empty(dir))
        return rs_err_set(err, RS_EINVAL, "%s exists and is not empty", dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return rs_err_set(err, RS_EIO, "cannot create %s: %s", dir, strerror(errno));
    sink s = {.begin = dir_begin, .write = dir_write, .end = dir_end, .root = dir, .fd = -1};
    int rc = export_study(datadir, study_uid, &s, o, rep, err);
    if (s.fd >= 0)
        close(s.fd);
    return rc;
}

int backup_export_zip(const char *datadir, const char *study_uid, zip_sink_fn fn, void *ctx, const export_opts *o,
                      export_report *rep, rs_err *err)
{
    sink s = {.begin = zip_begin, .write = zip_write, .end = zip_end, .fd = -1, .deflate_dicom = o->deflate_dicom};
    int rc = zip_writer_new(fn, ctx, 0, &s.zip, err);
    if (rc == RS_OK)
        rc = export_study(datadir, study_uid, &s, o, rep, err);
    if (rc == RS_OK)
        rc = zip_writer_finish(s.zip, err);
    zip_writer_free(s.zip);
    return rc;
}
