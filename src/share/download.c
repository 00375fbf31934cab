/*
 * download.c - see download.h. http_reply_stream pulls; the ZIP writer pushes. The reader
 * callback bridges them: while its buffer is empty it advances a small state machine by one
 * step (begin a file, copy one chunk, end it, the DICOMDIR, the README, the central directory),
 * the ZIP sink appending to that buffer, then hands out what is there.
 */
#include "download.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../backup/catalog.h"
#include "../backup/files.h"
#include "../dicom/dicomdir.h"
#include "../util/fdio.h"
#include "../util/log.h"
#include "../util/zip.h"

#define DL_CHUNK (256u << 10)

static const char README[] =
    "FRANCAIS\r\n"
    "Ce dossier contient des images medicales au format DICOM, envoyees par le service d'imagerie.\r\n"
    "Le fichier DICOMDIR en donne la liste ; les images sont dans le dossier DICOM. Ouvrez DICOMDIR\r\n"
    "avec une visionneuse DICOM (par exemple Weasis, Horos, MicroDicom ou RadiAnt). Rien n'est a installer\r\n"
    "depuis ce dossier. Ces donnees sont medicales et personnelles : ne les transmettez pas.\r\n\r\n"
    "NEDERLANDS\r\n"
    "Deze map bevat medische beelden in het DICOM-formaat, verstuurd door de afdeling radiologie.\r\n"
    "Het bestand DICOMDIR somt ze op; de beelden staan in de map DICOM. Open DICOMDIR met een\r\n"
    "DICOM-viewer (bijvoorbeeld Weasis, Horos, MicroDicom of RadiAnt). Er hoeft niets uit deze map\r\n"
    "geinstalleerd te worden. Dit zijn persoonlijke medische gegevens: geef ze niet door.\r\n\r\n"
    "DEUTSCH\r\n"
    "Dieser Ordner enthaelt medizinische Bilder im DICOM-Format, gesendet von der Radiologie.\r\n"
    "Die Datei DICOMDIR listet sie auf; die Bilder liegen im Ordner DICOM. Oeffnen Sie DICOMDIR mit\r\n"
    "einem DICOM-Betrachter (zum Beispiel Weasis, Horos, MicroDicom oder RadiAnt). Aus diesem Ordner\r\n"
    "muss nichts installiert werden. Es sind persoenliche medizinische Daten: nicht weitergeben.\r\n\r\n"
    "ENGLISH\r\n"
    "This folder holds medical images in the DICOM format, sent by the imaging department.\r\n"
    "DICOMDIR lists them; the images are in the DICOM folder. Open DICOMDIR with a DICOM viewer\r\n"
    "(for example Weasis, Horos, MicroDicom or RadiAnt). Nothing in this folder needs to be installed\r\n"
    "or run. This is personal medical data: do not pass it on.\r\n";

enum { PH_FILES, PH_DICOMDIR, PH_README, PH_FINISH, PH_DONE };

typedef struct dl {
    char datadir[PATH_MAX];
    backup_study_item *items;   /* the share's instances, by series then instance number */
    size_t n, i;
    dicomdir_entry *d;
    unsigned series_no, inst_no;
    int phase, fd, in_entry;
    uint64_t off, size;
    zip_writer *zw;
    rs_buf out;
    size_t out_off;
    uint8_t *chunk;
    char share_id[SHARE_ID_CHARS + 1];
} dl;

static int sink(void *ctx, const void *p, size_t n)
{
    dl *s = ctx;
    return rs_buf_append(&s->out, p, n);
}

static int put_whole(dl *s, const char *name, const void *p, size_t n, rs_err *err)
{
    int rc = zip_entry_begin(s->zw, name, ZIP_DEFLATE, time(NULL), n, err);
    rc = rc ? rc : zip_entry_write(s->zw, p, n, err);
    return rc ? rc : zip_entry_end(s->zw, err);
}

static int begin_file(dl *s, rs_err *err)
{
    backup_study_item *it = &s->items[s->i];
    if (s->i == 0 || strcmp(it->series_uid, s->items[s->i - 1].series_uid)) {
        s->series_no++;
        s->inst_no = 0;
    }
    s->inst_no++;
    char path[PATH_MAX], name[64];
    dicomdir_entry *d = &s->d[s->i];
    int rc = backup_object_path(s->datadir, it->hash, path, sizeof path, err);
    rc = rc ? rc : dicomdir_entry_read(path, d, err);
    if (rc)
        return rc;
    if (s->i) { /* one PATIENT and STUDY record: the first instance speaks for all */
        memcpy(d->patient_id, s->d[0].patient_id, sizeof d->patient_id);
        memcpy(d->study_uid, s->d[0].study_uid, sizeof d->study_uid);
    }
    snprintf(d->file_id, sizeof d->file_id, "DICOM\\ST000001\\SE%06u\\IM%06u", s->series_no, s->inst_no);
    snprintf(name, sizeof name, "DICOM/ST000001/SE%06u/IM%06u", s->series_no, s->inst_no);
    struct stat st;
    s->fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (s->fd < 0 || fstat(s->fd, &st) != 0)
        return rs_err_set(err, RS_EIO, "cannot open %s: %s", path, strerror(errno));
    s->size = (uint64_t)st.st_size;
    s->off = 0;
    s->in_entry = 1;
    return zip_entry_begin(s->zw, name, ZIP_STORE, st.st_mtime, s->size, err);
}

/* One chunk of the current file; the preamble goes out zeroed (it may hold anything). */
static int copy_chunk(dl *s, rs_err *err)
{
    size_t want = s->size - s->off < DL_CHUNK ? (size_t)(s->size - s->off) : DL_CHUNK;
    if (want && rs_pread_all(s->fd, s->chunk, want, s->off))
        return rs_err_set(err, RS_EIO, "cannot read an object of share %s", s->share_id);
    if (s->off == 0) {
        if (want < 132 || memcmp(s->chunk + 128, "DICM", 4))
            return rs_err_set(err, RS_EFORMAT, "an object of share %s is not a Part 10 file", s->share_id);
        memset(s->chunk, 0, 128);
    }
    int rc = zip_entry_write(s->zw, s->chunk, want, err);
    s->off += want;
    if (rc == RS_OK && s->off == s->size) {
        close(s->fd);
        s->fd = -1;
        s->in_entry = 0;
        s->i++;
        rc = zip_entry_end(s->zw, err);
    }
    return rc;
}

static void make_uid(char *out, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, cap, "1.2.826.0.1.3680043.10.1449.8.%lld.%ld.%ld", (long long)ts.tv_sec, (long)getpid(),
             ts.tv_nsec / 1000);
}

static int step(dl *s, rs_err *err)
{
    switch (s->phase) {
    case PH_FILES:
        if (s->i == s->n) {
            s->phase = PH_DICOMDIR;
            return RS_OK;
        }
        return s->in_entry ? copy_chunk(s, err) : begin_file(s, err);
    case PH_DICOMDIR: {
        rs_buf b = RS_BUF_INIT;
        char uid[65];
        make_uid(uid, sizeof uid);
        int rc = dicomdir_write(s->d, s->n, "RADSHARE", uid, &b, err);
        rc = rc ? rc : put_whole(s, "DICOMDIR", b.p, b.len, err);
        rs_buf_free(&b);
        s->phase = PH_README;
        return rc;
    }
    case PH_README:
        s->phase = PH_FINISH;
        return put_whole(s, "README.TXT", README, sizeof README - 1, err);
    case PH_FINISH:
        s->phase = PH_DONE;
        return zip_writer_finish(s->zw, err);
    }
    return RS_OK;
}

static ssize_t dl_read(void *ctx, uint8_t *buf, size_t max)
{
    dl *s = ctx;
    rs_err err;
    rs_err_clear(&err);
    while (s->out_off == s->out.len && s->phase != PH_DONE) {
        rs_buf_reset(&s->out);
        s->out_off = 0;
        if (step(s, &err) != RS_OK) {
            rs_log(RS_LOG_ERROR, "download of share %s cut: %s", s->share_id, err.msg);
            return -1;
        }
    }
    size_t n = s->out.len - s->out_off < max ? s->out.len - s->out_off : max;
    memcpy(buf, s->out.p + s->out_off, n);
    s->out_off += n;
    return (ssize_t)n;
}

static void dl_free(void *ctx)
{
    dl *s = ctx;
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    zip_writer_free(s->zw);
    rs_buf_free(&s->out);
    free(s->items);
    free(s->d);
    free(s->chunk);
    free(s);
}

/* The share's instances, in catalog order. */
static int load_items(dl *s, const share *sh, rs_err *err)
{
    backup_catalog *cat = NULL;
    size_t n = 0, k = 0;
    int rc = backup_catalog_open(s->datadir, &cat, err);
    rc = rc ? rc : backup_catalog_study(cat, sh->study_uid, &s->items, &n, err);
    backup_catalog_close(cat);
    if (rc == RS_OK && n > SHARE_DOWNLOAD_MAX_INSTANCES)
        rc = rs_err_set(err, RS_ELIMIT, "%zu instances: too many for one download", n);
    for (size_t i = 0; rc == RS_OK && i < n; i++)
        if (share_check_scope(sh, sh->study_uid, s->items[i].series_uid))
            s->items[k++] = s->items[i];
    s->n = k;
    if (rc == RS_OK && k == 0)
        rc = rs_err_set(err, RS_ENOTFOUND, "the shared study is no longer in the archive");
    if (rc == RS_OK && !(s->d = calloc(k, sizeof *s->d)))
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
    return rc;
}

static void audit_rq(audit_log *a, http_req *rq, const char *event, const share *sh, const char *detail)
{
    rs_err err;
    rs_err_clear(&err);
    if (audit_append(a, event, sh->id, sh->study_uid, http_req_peer(rq), http_req_header(rq, "User-Agent"), detail,
                     NULL, &err))
        rs_log(RS_LOG_ERROR, "audit: %s: %s", event, err.msg);
}

int share_download_reply(http_req *rq, const char *datadir, audit_log *audit, const share *sh)
{
    http_set_header(rq, "Referrer-Policy", "no-referrer");
    http_set_header(rq, "Cache-Control", "no-store");
    http_set_header(rq, "X-Content-Type-Options", "nosniff");
    if (!sh->download) {
        audit_rq(audit, rq, "access.refused", sh, "{\"reason\":\"download not allowed\",\"what\":\"download\"}");
        return http_reply_error(rq, 403,
                                "This link lets you view the images but not download them. Ask the department "
                                "that sent it for a copy.");
    }
    rs_err err;
    rs_err_clear(&err);
    dl *s = calloc(1, sizeof *s);
    int rc = s ? RS_OK : rs_err_set(&err, RS_ENOMEM, "out of memory");
    if (rc == RS_OK) {
        s->fd = -1;
        memcpy(s->share_id, sh->id, sizeof s->share_id);
        if (snprintf(s->datadir, sizeof s->datadir, "%s", datadir) >= (int)sizeof s->datadir)
            rc = rs_err_set(&err, RS_EINVAL, "data directory path too long");
    }
    rc = rc ? rc : load_items(s, sh, &err);
    if (rc == RS_OK && !(s->chunk = malloc(DL_CHUNK)))
        rc = rs_err_set(&err, RS_ENOMEM, "out of memory");
    rc = rc ? rc : zip_writer_new(sink, s, 0, &s->zw, &err);
    if (rc) {
        dl_free(s);
        return http_reply_error(rq, http_status_for(rc), "%s", err.msg);
    }
    char d[96], cd[96];
    snprintf(d, sizeof d, "{\"instances\":%zu}", s->n);
    audit_rq(audit, rq, "share.downloaded", sh, d);
    snprintf(cd, sizeof cd, "attachment; filename=\"study-%s.zip\"", sh->id);
    http_set_header(rq, "Content-Disposition", cd);
    return http_reply_stream(rq, 200, "application/zip", dl_read, s, dl_free);
}
