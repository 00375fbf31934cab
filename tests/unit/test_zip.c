/*
 * test_zip.c - util/zip.c: archives written by the streaming writer (stored, deflated, ZIP64
 * forced, empty entries) read back by our reader, by `unzip -t` and by python's zipfile; the
 * reader's limits against a deflate bomb, too many entries and deep names.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t.h"
#include "util/zip.h"

static int buf_sink(void *ctx, const void *p, size_t n)
{
    return rs_buf_append(ctx, p, n);
}

typedef struct ent {
    const char *name;
    int method;
    size_t len;
    int zeros;
} ent;

static void content(const ent *e, rs_buf *b)
{
    rs_buf_reset(b);
    for (size_t i = 0; i < e->len; i++)
        rs_buf_putc(b, e->zeros ? 0 : (int)((i * 7919u) >> 3));
}

/* Write the entries (written in pieces, sizes announced or not) into a file. */
static void write_zip(const char *path, const ent *e, size_t n, int force64)
{
    rs_buf out = RS_BUF_INIT, c = RS_BUF_INIT;
    zip_writer *w;
    CHECK(zip_writer_new(buf_sink, &out, force64, &w, NULL) == RS_OK);
    for (size_t i = 0; i < n; i++) {
        content(&e[i], &c);
        CHECK(zip_entry_begin(w, e[i].name, e[i].method, 1700000000, i % 2 ? ZIP_SIZE_UNKNOWN : e[i].len, NULL) ==
              RS_OK);
        for (size_t off = 0; off < c.len; off += 1000)
            CHECK(zip_entry_write(w, c.p + off, c.len - off < 1000 ? c.len - off : 1000, NULL) == RS_OK);
        CHECK(zip_entry_end(w, NULL) == RS_OK);
    }
    CHECK(zip_writer_finish(w, NULL) == RS_OK);
    CHECK_EQ_INT(zip_writer_offset(w), out.len);
    zip_writer_free(w);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(out.p, 1, out.len, f) == out.len);
    fclose(f);
    rs_buf_free(&out);
    rs_buf_free(&c);
}

static void read_back(const char *path, const ent *e, size_t n, const zip_limits *lim)
{
    int fd = open(path, O_RDONLY);
    zip_reader *r = NULL;
    rs_err err = {0};
    rs_buf got = RS_BUF_INIT, want = RS_BUF_INIT;
    CHECK(zip_reader_open(fd, lim, &r, &err) == RS_OK);
    if (!r) {
        fprintf(stderr, "%s\n", err.msg);
        close(fd);
        return;
    }
    CHECK_EQ_INT(zip_reader_count(r), n);
    for (size_t i = 0; i < n && i < zip_reader_count(r); i++) {
        CHECK_EQ_STR(zip_reader_entry(r, i)->name, e[i].name);
        content(&e[i], &want);
        CHECK(zip_reader_extract(r, i, &got, &err) == RS_OK);
        CHECK(got.len == want.len && (!got.len || memcmp(got.p, want.p, got.len) == 0));
    }
    zip_reader_close(r);
    close(fd);
    rs_buf_free(&got);
    rs_buf_free(&want);
}

/* Overwrite the 32-bit field at offset field of the (last) central directory entry of path. */
static void patch_central(const char *path, long field, uint32_t v)
{
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    long at = -1;
    unsigned char buf[8192];
    size_t got = fread(buf, 1, sizeof buf, f);
    for (size_t i = 0; i + 4 < got; i++)
        if (!memcmp(buf + i, "PK\1\2", 4))
            at = (long)i + field;
    CHECK(at > 0);
    unsigned char le[4] = {v & 0xFF, v >> 8 & 0xFF, v >> 16 & 0xFF, v >> 24 & 0xFF};
    fseek(f, at, SEEK_SET);
    CHECK(fwrite(le, 1, 4, f) == 4);
    fclose(f);
}

static int sh(const char *fmt, const char *arg)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, fmt, arg, arg);
    return system(cmd);
}

static const char PY[] =
    "/usr/bin/python3 -c \"import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; "
    "i=z.infolist(); assert i[0].filename=='DICOM/ST000001/IM000001'; assert i[2].file_size==300000; "
    "assert z.read('empty')==b''; print('python-ok')\" %s >/dev/null";

int main(void)
{
    char dir[] = "/tmp/rs-test-zip-XXXXXX", path[256], path64[256], bomb[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/a.zip", dir);
    snprintf(path64, sizeof path64, "%s/a64.zip", dir);
    snprintf(bomb, sizeof bomb, "%s/bomb.zip", dir);
    const ent e[] = {{"DICOM/ST000001/IM000001", ZIP_STORE, 70000, 0},
                     {"DICOM/ST000001/IM000002", ZIP_DEFLATE, 123457, 0},
                     {"big-zeros", ZIP_DEFLATE, 300000, 1},
                     {"empty", ZIP_DEFLATE, 0, 0},
                     {"README.TXT", ZIP_STORE, 17, 0}};
    size_t n = sizeof e / sizeof e[0];
    zip_limits lax = {.max_ratio = 100000};
    write_zip(path, e, n, 0);
    write_zip(path64, e, n, 1);
    read_back(path, e, n, &lax);
    read_back(path64, e, n, &lax);
    CHECK(sh("unzip -tq %s >/dev/null", path) == 0);
    CHECK(sh("unzip -tq %s >/dev/null", path64) == 0);
    CHECK(sh(PY, path) == 0);
    CHECK(sh(PY, path64) == 0);

    /* limits: the zeros entry is a 1000:1 deflate */
    int fd = open(path, O_RDONLY);
    zip_reader *r = NULL;
    rs_err err = {0};
    CHECK(zip_reader_open(fd, NULL, &r, &err) == RS_ELIMIT && strstr(err.msg, "ratio"));
    zip_limits few = {.max_entries = 4, .max_ratio = 100000};
    CHECK(zip_reader_open(fd, &few, &r, &err) == RS_ELIMIT);
    zip_limits small = {.max_total = 100000, .max_ratio = 100000};
    CHECK(zip_reader_open(fd, &small, &r, &err) == RS_ELIMIT);
    zip_limits shallow = {.max_depth = 2, .max_ratio = 100000};
    CHECK(zip_reader_open(fd, &shallow, &r, &err) == RS_ELIMIT && strstr(err.msg, "levels"));
    close(fd);

    /* a lying entry: declared small, inflates to more (the central size is patched down) */
    const ent liar[] = {{"x", ZIP_DEFLATE, 5000, 0}};
    write_zip(bomb, liar, 1, 0);
    patch_central(bomb, 24, 0x10);
    fd = open(bomb, O_RDONLY);
    r = NULL;
    CHECK(zip_reader_open(fd, &lax, &r, &err) == RS_OK);
    rs_buf out = RS_BUF_INIT;
    CHECK(r && zip_reader_extract(r, 0, &out, &err) == RS_ELIMIT && out.len <= 16);
    zip_reader_close(r);
    close(fd);

    /* a directory entry declaring 4 GiB (found by fuzz/fuzz_zip: the limits skipped directories
       and extracting one reserved the declared size) is refused like a file */
    const ent folder[] = {{"d/", ZIP_STORE, 0, 0}};
    write_zip(bomb, folder, 1, 0);
    patch_central(bomb, 24, 0xFFFFFFF0u);
    fd = open(bomb, O_RDONLY);
    r = NULL;
    CHECK(zip_reader_open(fd, NULL, &r, &err) == RS_ELIMIT && r == NULL);
    close(fd);

    /* two central entries over the same local data (the overlapping-file bomb) are refused */
    const ent twins[] = {{"a", ZIP_DEFLATE, 5000, 1}, {"b", ZIP_DEFLATE, 5000, 1}};
    write_zip(bomb, twins, 2, 0);
    patch_central(bomb, 42, 0); /* b's local header offset: a's */
    fd = open(bomb, O_RDONLY);
    CHECK(zip_reader_open(fd, &lax, &r, &err) == RS_ELIMIT && strstr(err.msg, "overlap") && r == NULL);
    close(fd);
    rs_buf_free(&out);
    sh("rm -rf %s", dir);
    return t_done();
}
