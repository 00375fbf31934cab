/*
 * import.c - see import.h.
 */
#include "import.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../dicom/reader.h"
#include "../dicom/writer.h"
#include "../store/store.h"
#include "../util/buf.h"
#include "../util/fdio.h"
#include "../util/progress.h"
#include "../util/zip.h"
#include "files.h"

#define DICOMDIR_CLASS "1.2.840.10008.1.3.10"

typedef struct import_ctx {
    const import_opts *o;
    import_report *rep;
    store *st;
    rs_buf report;      /* the TSV */
    uint64_t walked;
    rs_progress prog;
} import_ctx;

/* One report line, kept and printed. Tabs/newlines in names would break the format. */
static void note(import_ctx *c, const char *outcome, const char *where, const char *before, const char *after,
                 const char *reason)
{
    char clean[PATH_MAX + 64];
    size_t k = 0;
    for (const char *s = where; *s && k + 1 < sizeof clean; s++)
        clean[k++] = (*s == '\t' || *s == '\n' || *s == '\r') ? '?' : *s;
    clean[k] = 0;
    size_t start = c->report.len;
    rs_buf_printf(&c->report, "%s\t%s\t%s\t%s\t%s\n", outcome, clean, before[0] ? before : "-",
                  after[0] ? after : "-", reason);
    fwrite(c->report.p + start, 1, c->report.len - start, stdout);
}

static void skip(import_ctx *c, const char *where, const char *before, const char *reason)
{
    c->rep->skipped++;
    note(c, "skipped", where, before, "", reason);
}

/* What a non-DICOM file looks like, from its first bytes only. */
static const char *looks_like(const uint8_t *b, size_t n)
{
    if (n >= 2 && b[0] == 'M' && b[1] == 'Z')
        return "Windows executable (MZ), not DICOM: not imported, never run";
    if (n >= 4 && !memcmp(b, "\x7f" "ELF", 4))
        return "ELF executable, not DICOM: not imported, never run";
    if (n >= 2 && b[0] == '#' && b[1] == '!')
        return "script, not DICOM: not imported, never run";
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        return "JPEG image, not DICOM";
    if (n >= 8 && !memcmp(b, "\x89PNG", 4))
        return "PNG image, not DICOM";
    if (n >= 4 && !memcmp(b, "%PDF", 4))
        return "PDF document, not DICOM";
    return "not DICOM (no DICM marker)";
}

static int is_dicom_start(const uint8_t *b, size_t n)
{
    if (n >= 132 && !memcmp(b + 128, "DICM", 4))
        return 1;
    /* a bare data set (old media): group 0002 or 0008, little endian, first */
    return n >= 8 && (b[1] == 0 && (b[0] == 0x02 || b[0] == 0x08)) && b[3] == 0;
}

/* Local patient identity in place of the outside one; the original kept in (0010,1002). */
static int reconcile(import_ctx *c, dcm_file *f, rs_err *err)
{
    if (!c->o->patient_id && !c->o->patient_name)
        return RS_OK;
    dcm_ds *ds = f->ds;
    char orig[80] = "", issuer[80] = "";
    dcm_ds_get_str(ds, DCM_TAG(0x0010, 0x0020), 0, orig, sizeof orig);
    dcm_ds_get_str(ds, DCM_TAG(0x0010, 0x0021), 0, issuer, sizeof issuer);
    if (c->o->patient_id && strcmp(orig, c->o->patient_id) != 0) {
        dcm_ds *item = dcm_ds_add_item(ds, DCM_TAG(0x0010, 0x1002));
        int rc = item ? dcm_ds_set_str(item, DCM_TAG(0x0010, 0x0020), DCM_VR_LO, orig) : RS_ENOMEM;
        if (rc == RS_OK && issuer[0])
            rc = dcm_ds_set_str(item, DCM_TAG(0x0010, 0x0021), DCM_VR_LO, issuer);
        if (rc == RS_OK)
            rc = dcm_ds_set_str(item, DCM_TAG(0x0010, 0x0022), DCM_VR_CS, "TEXT");
        if (rc == RS_OK)
            rc = dcm_ds_set_str(ds, DCM_TAG(0x0010, 0x0020), DCM_VR_LO, c->o->patient_id);
        if (rc == RS_OK && issuer[0])
            dcm_ds_remove(ds, DCM_TAG(0x0010, 0x0021)); /* the outside issuer is not ours */
        if (rc)
            return rs_err_set(err, rc, "cannot set the patient ID");
    }
    if (c->o->patient_name && dcm_ds_set_str(ds, DCM_TAG(0x0010, 0x0010), DCM_VR_PN, c->o->patient_name))
        return rs_err_set(err, RS_ENOMEM, "cannot set the patient name");
    return RS_OK;
}

/* A candidate in memory: parse, re-encode with a zeroed preamble, store. */
static void import_bytes(import_ctx *c, const char *where, const uint8_t *data, size_t n)
{
    char before[STORE_HASH_HEX + 1], cls[80] = "";
    backup_sha256_hex(data, n, before);
    dcm_read_opts ro = {.max_memory = (size_t)c->o->max_file * 2 + (64u << 20), .max_depth = 32};
    dcm_file *f = NULL;
    rs_err e = {0};
    rs_buf out = RS_BUF_INIT;
    char why[600];
    int rc = dcm_read_mem(data, n, &ro, &f, &e);
    if (rc) {
        snprintf(why, sizeof why, "does not parse as DICOM: %s", e.msg);
        skip(c, where, before, why);
        goto out;
    }
    dcm_ds_get_str(f->meta, DCM_TAG_MEDIA_SOP_CLASS, 0, cls, sizeof cls);
    if (!strcmp(cls, DICOMDIR_CLASS)) {
        skip(c, where, before, "DICOMDIR (a media directory, not an instance; the folder is walked instead)");
        goto out;
    }
    rc = reconcile(c, f, &e);
    if (rc == RS_OK)
        rc = dcm_write(f, NULL, &out, &e); /* zeroed preamble: writer.h */
    store_ingest_result res;
    if (rc == RS_OK)
        rc = store_put_mem(c->st, out.p, out.len, &res, &e);
    if (rc) {
        snprintf(why, sizeof why, "refused: %s", e.msg);
        c->rep->failed++;
        note(c, "refused", where, before, "", why);
        goto out;
    }
    c->rep->imported += !res.duplicate;
    c->rep->duplicates += res.duplicate;
    snprintf(why, sizeof why, "SOP %s%s%s", res.sop_uid, f->has_preamble && memcmp(f->preamble, (uint8_t[128]){0}, 128)
                                                              ? "; non-zero preamble removed"
                                                              : "",
             c->o->patient_id ? "; patient reconciled" : "");
    note(c, res.duplicate ? "duplicate" : res.new_version ? "new-version" : "imported", where, before, res.hash, why);
out:
    rs_buf_free(&out);
    dcm_file_free(f);
}

static void import_zip(import_ctx *c, int fd, const char *where)
{
    zip_limits lim = {.max_entry = c->o->max_file};
    zip_reader *z = NULL;
    rs_err e = {0};
    char name[PATH_MAX + 64], why[600];
    if (zip_reader_open(fd, &lim, &z, &e)) {
        snprintf(why, sizeof why, "ZIP refused, nothing extracted: %s", e.msg);
        skip(c, where, "", why);
        return;
    }
    rs_buf b = RS_BUF_INIT;
    for (size_t i = 0; i < zip_reader_count(z); i++) {
        const zip_entry_info *ze = zip_reader_entry(z, i);
        snprintf(name, sizeof name, "%s!/%s", where, ze->name);
        if (ze->is_dir)
            continue;
        c->rep->seen++;
        if (zip_reader_extract(z, i, &b, &e)) {
            snprintf(why, sizeof why, "not extracted: %s", e.msg);
            skip(c, name, "", why);
            continue;
        }
        if (b.len >= 4 && !memcmp(b.p, "PK\3\4", 4)) {
            char h[STORE_HASH_HEX + 1];
            backup_sha256_hex(b.p, b.len, h);
            skip(c, name, h, "archive inside an archive: not opened");
        } else if (!is_dicom_start(b.p, b.len)) {
            char h[STORE_HASH_HEX + 1];
            backup_sha256_hex(b.p, b.len, h);
            skip(c, name, h, looks_like(b.p, b.len));
        } else {
            import_bytes(c, name, b.p, b.len);
        }
        rs_progress_add(&c->prog, 1, b.len);
    }
    rs_buf_free(&b);
    zip_reader_close(z);
}

/* A regular file, opened by the walk: read 132 bytes, then decide. */
static void import_file(import_ctx *c, int fd, const char *where, uint64_t size)
{
    uint8_t head[132];
    size_t n = size < sizeof head ? (size_t)size : sizeof head;
    c->rep->seen++;
    if (size > c->o->max_file) {
        skip(c, where, "", "larger than the import size cap");
        return;
    }
    if (n && rs_pread_all(fd, head, n, 0) != RS_OK) {
        skip(c, where, "", "cannot be read");
        return;
    }
    if (n >= 4 && !memcmp(head, "PK\3\4", 4)) {
        import_zip(c, fd, where);
        return;
    }
    if (!is_dicom_start(head, n)) {
        skip(c, where, "", looks_like(head, n));
        return;
    }
    uint8_t *data = malloc(size ? (size_t)size : 1);
    if (!data || (size && rs_pread_all(fd, data, (size_t)size, 0) != RS_OK))
        skip(c, where, "", data ? "cannot be read" : "out of memory");
    else
        import_bytes(c, where, data, (size_t)size);
    free(data);
    rs_progress_add(&c->prog, 1, size);
}

static void walk(import_ctx *c, int dfd, const char *rel, unsigned depth);

static void visit(import_ctx *c, int dfd, const char *name, const char *where, unsigned depth)
{
    struct stat st;
    if (++c->walked > c->o->max_files) {
        if (c->walked == c->o->max_files + 1)
            skip(c, where, "", "entry count limit reached: the rest is not looked at");
        return;
    }
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        skip(c, where, "", strerror(errno));
    } else if (S_ISLNK(st.st_mode)) {
        skip(c, where, "", "symbolic link: not followed");
    } else if (S_ISDIR(st.st_mode)) {
        if (depth + 1 > c->o->max_depth) {
            skip(c, where, "", "folder too deep: not entered");
            return;
        }
        int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
            skip(c, where, "", strerror(errno));
        else
            walk(c, sub, where, depth + 1); /* closes sub */
    } else if (!S_ISREG(st.st_mode)) {
        skip(c, where, "", "device, FIFO or socket: not opened");
    } else {
        /* O_NONBLOCK: should it have become a FIFO since the lstat, opening must not hang */
        int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat now;
        if (fd < 0 || fstat(fd, &now) != 0 || !S_ISREG(now.st_mode) || now.st_ino != st.st_ino)
            skip(c, where, "", "changed while being looked at: not read");
        else
            import_file(c, fd, where, (uint64_t)now.st_size);
        if (fd >= 0)
            close(fd);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Entries in name order, so reports are reproducible. Takes dfd. */
static void walk(import_ctx *c, int dfd, const char *rel, unsigned depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < c->o->max_files + 1) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nv = realloc(names, nc * sizeof *nv);
            if (!nv)
                break;
            names = nv;
            cap = nc;
        }
        if (!(names[n] = strdup(de->d_name)))
            break;
        n++;
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char where[PATH_MAX];
        snprintf(where, sizeof where, "%s%s%s", rel, rel[0] ? "/" : "", names[i]);
        visit(c, dirfd(d), names[i], where, depth);
        free(names[i]);
    }
    free(names);
    closedir(d);
}

static int write_report(import_ctx *c, const char *datadir, rs_err *err)
{
    char dir[PATH_MAX], name[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(name, sizeof name, "%Y%m%dT%H%M%SZ", &tm);
    if (snprintf(dir, sizeof dir, "%s/imports", datadir) >= (int)sizeof dir)
        return rs_err_set(err, RS_EINVAL, "path too long");
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return rs_err_set(err, RS_EIO, "cannot create %s: %s", dir, strerror(errno));
    if (snprintf(c->rep->report_path, sizeof c->rep->report_path, "%.3900s/%s-%ld.tsv", dir, name, (long)getpid()) >=
        (int)sizeof c->rep->report_path)
        return rs_err_set(err, RS_EINVAL, "path too long");
    return backup_write_file(c->rep->report_path, c->report.p, c->report.len, 0640, err);
}

int backup_import(const char *path, const char *datadir, const import_opts *o, import_report *rep, rs_err *err)
{
    memset(rep, 0, sizeof *rep);
    import_opts opts = *o;
    if (!opts.max_depth) opts.max_depth = 16;
    if (!opts.max_files) opts.max_files = 100000;
    if (!opts.max_file) opts.max_file = 1ull << 30;
    import_ctx c = {.o = &opts, .rep = rep, .report = RS_BUF_INIT};
    int rc = rs_buf_printf(&c.report, "# source %s\n# outcome\tpath\tsha256-before\tsha256-stored\treason\n", path);
    fwrite(c.report.p, 1, c.report.len, stdout);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = rs_err_set(err, RS_EIO, "cannot open %s: %s%s", path, strerror(errno),
                        errno == ELOOP ? " (a symbolic link: name the media itself)" : "");
        if (fd >= 0)
            close(fd);
        rs_buf_free(&c.report);
        return rc;
    }
    rc = store_open(datadir, NULL, &c.st, err);
    if (rc) {
        if (rc == RS_EINVAL)
            fprintf(stderr, "radshare import: %s is in use (radshare serve?): stop it first, or send the files "
                            "to the server with storescu\n", datadir);
        close(fd);
        rs_buf_free(&c.report);
        return rc;
    }
    rs_progress_begin(&c.prog, "import", 0, opts.quiet);
    if (S_ISDIR(st.st_mode))
        walk(&c, fd, "", 0); /* closes fd */
    else {
        if (S_ISREG(st.st_mode))
            import_file(&c, fd, path, (uint64_t)st.st_size);
        else
            skip(&c, path, "", "device, FIFO or socket: not opened");
        close(fd);
    }
    rs_progress_end(&c.prog);
    store_close(c.st);
    rc = write_report(&c, datadir, err);
    rs_buf_free(&c.report);
    return rc;
}
