/*
 * fuzz_reader.c - libFuzzer target for the Part 10 reader and its consumers.
 *
 * For every input:
 *   1. dcm_read_mem in best-effort mode under tight limits (64 MiB arena, 16 MiB per value);
 *   2. when that succeeds: dcm_json_write (everything inline), dcm_dump, dcm_write in the
 *      file's own syntax and in explicit VR little endian (errors are fine, crashes are not);
 *   3. the own-syntax bytes are read back (must not crash);
 *   4. invariant: the explicit-LE bytes E1 read back, and encoding that again in explicit LE
 *      gives E1 byte for byte (the writer's output is a fixed point of read + write);
 *   5. invariant: the same bytes read through a file (dcm_read_path on a memfd) with values of
 *      64 bytes or more left as bulk data and loaded on demand give the same JSON and E1;
 *   6. the input is read once more in strict mode stopping at Pixel Data (must not crash).
 * An invariant failure prints "INVARIANT: ..." and abort()s. Everything is freed, so
 * LeakSanitizer reports any leak on the error paths.
 *
 * Build (fuzz/run.sh does this):
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Isrc \
 *       fuzz/fuzz_reader.c <the .c files of src/dicom and src/util> -lz -lm -o build/fuzz/fuzz_reader
 * -DFUZZ_NO_INVARIANT reports invariant failures without aborting (to fuzz past a known one).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dicom/dataset.h"
#include "dicom/dump.h"
#include "dicom/json.h"
#include "dicom/reader.h"
#include "dicom/tag.h"
#include "dicom/ts.h"
#include "dicom/writer.h"
#include "util/buf.h"
#include "util/err.h"

#define FUZZ_MAX_MEMORY ((size_t)64 * 1024 * 1024)
#define FUZZ_MAX_VALUE (16u * 1024 * 1024)

static const dcm_read_opts read_opts = {
    .max_memory = FUZZ_MAX_MEMORY,
    .max_value = FUZZ_MAX_VALUE,
};

static int same(const rs_buf *a, const rs_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

/* Print where two outputs first differ, to make triage of an invariant failure quick. */
static void report_mismatch(const char *what, const rs_buf *a, const rs_buf *b)
{
    size_t n = a->len < b->len ? a->len : b->len, i = 0;
    while (i < n && a->p[i] == b->p[i])
        i++;
    fprintf(stderr, "fuzz_reader: INVARIANT: %s: %zu vs %zu bytes, first difference at offset %zu\n",
            what, a->len, b->len, i);
    size_t from = i > 16 ? i - 16 : 0;
    for (int k = 0; k < 2; k++) {
        const rs_buf *x = k ? b : a;
        fprintf(stderr, "  %c[%zu..]:", k ? 'B' : 'A', from);
        for (size_t j = from; j < from + 48 && j < x->len; j++)
            fprintf(stderr, " %02x", x->p[j]);
        fputc('\n', stderr);
    }
}

static void invariant_failed(void)
{
#ifndef FUZZ_NO_INVARIANT
    abort();
#endif
}

/* Read back bytes radshare wrote itself; returns the file or NULL (with err filled). */
static dcm_file *reread(const rs_buf *b, rs_err *err)
{
    dcm_file *f = NULL;
    if (dcm_read_mem(b->p, b->len, &read_opts, &f, err) != RS_OK)
        return NULL;
    return f;
}

/*
 * Step 4: E1 = f in explicit LE must read back, and re-encoding what was read must give E1.
 * Returns E1 in *e1 (empty when f cannot be written in explicit LE, which is not a bug: a value
 * too long for its VR, a change of pixel data encoding).
 */
static void check_explicit_roundtrip(dcm_file *f, rs_buf *e1)
{
    dcm_write_opts o = {.ts = dcm_ts_explicit_le()};
    rs_err err = {0};
    rs_buf e2 = RS_BUF_INIT;
    if (dcm_write(f, &o, e1, &err) != RS_OK) {
        rs_buf_reset(e1);
        return;
    }
    rs_err_clear(&err);
    dcm_file *g = reread(e1, &err);
    if (!g) {
        fprintf(stderr, "fuzz_reader: INVARIANT: radshare cannot read its own explicit-LE output (%zu bytes): "
                        "%s (at %llu)\n", e1->len, err.msg, (unsigned long long)err.offset);
        invariant_failed();
        return;
    }
    rs_err_clear(&err);
    if (dcm_write(g, &o, &e2, &err) != RS_OK) {
        fprintf(stderr, "fuzz_reader: INVARIANT: re-encoding the re-read dataset failed: %s\n", err.msg);
        invariant_failed();
    } else if (!same(e1, &e2)) {
        report_mismatch("explicit-LE re-encoding differs", e1, &e2);
        invariant_failed();
    }
    dcm_file_free(g);
    rs_buf_free(&e2);
}

/*
 * Step 6: the same bytes read from a file descriptor with values of BULK_MIN bytes or more left
 * in the file (the path the CLI and ingest take), then loaded on demand by the JSON writer and
 * the encoder, must give the same JSON and the same explicit-LE encoding as the memory read.
 */
#define BULK_MIN 64

static void check_bulk_path(const uint8_t *data, size_t size, const rs_buf *json, const rs_buf *e1)
{
    int fd = memfd_create("fuzz_reader", MFD_CLOEXEC);
    if (fd < 0)
        return;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            close(fd);
            return;
        }
        done += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    dcm_read_opts o = read_opts;
    o.bulk_min = BULK_MIN;
    dcm_file *f = NULL;
    rs_err err = {0};
    if (dcm_read_path(path, &o, &f, &err) != RS_OK) {
        fprintf(stderr, "fuzz_reader: INVARIANT: read from memory but not from a file: %s\n", err.msg);
        invariant_failed();
        close(fd);
        return;
    }
    rs_buf out = RS_BUF_INIT;
    dcm_json_opts jo = {.inline_max = UINT32_MAX, .bulk = NULL, .pretty = (int)(size & 1)};
    rs_err_clear(&err);
    if (dcm_json_write(f->ds, &jo, &out, &err) == RS_OK && json->len && !same(json, &out)) {
        report_mismatch("JSON from the file (bulk values loaded later) differs from JSON from memory", json, &out);
        invariant_failed();
    }
    rs_buf_reset(&out);
    dcm_write_opts wo = {.ts = dcm_ts_explicit_le()};
    rs_err_clear(&err);
    int rc = dcm_write(f, &wo, &out, &err);
    if ((rc == RS_OK) != (e1->len > 0)) {
        fprintf(stderr, "fuzz_reader: INVARIANT: explicit-LE encoding %s from the file but %s from memory (%s)\n",
                rc == RS_OK ? "works" : "fails", e1->len ? "works" : "fails", err.msg);
        invariant_failed();
    } else if (rc == RS_OK && !same(e1, &out)) {
        report_mismatch("explicit-LE encoding from the file (bulk values) differs from the one from memory", e1, &out);
        invariant_failed();
    }
    rs_buf_free(&out);
    dcm_file_free(f);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dcm_file *f = NULL;
    rs_err err = {0};
    if (dcm_read_mem(data, size, &read_opts, &f, &err) == RS_OK) {
        rs_buf out = RS_BUF_INIT, json = RS_BUF_INIT, e1 = RS_BUF_INIT;

        dcm_json_opts jo = {.inline_max = UINT32_MAX, .bulk = NULL, .pretty = (int)(size & 1)};
        rs_err_clear(&err);
        if (dcm_json_write(f->ds, &jo, &json, &err) != RS_OK)
            rs_buf_reset(&json);
        dcm_json_write(f->meta, &jo, &out, &err);
        rs_buf_reset(&out);

        dcm_dump_opts dopt = {.max_value_chars = (unsigned)(size % 97)};
        dcm_dump(f, &dopt, &out);
        rs_buf_reset(&out);

        /* own syntax, then read that back (no invariant: the source syntax may be lossy) */
        rs_err_clear(&err);
        if (dcm_write(f, NULL, &out, &err) == RS_OK) {
            rs_err_clear(&err);
            dcm_file *g = reread(&out, &err);
            dcm_file_free(g);
        }
        rs_buf_free(&out);

        check_explicit_roundtrip(f, &e1);
        dcm_file_free(f);
        check_bulk_path(data, size, &json, &e1);
        rs_buf_free(&json);
        rs_buf_free(&e1);
    }

    /* strict mode, header only: the error paths warnings turn into */
    dcm_read_opts so = read_opts;
    so.strict = 1;
    so.stop_tag = DCM_TAG_PIXEL_DATA;
    rs_err_clear(&err);
    if (dcm_read_mem(data, size, &so, &f, &err) == RS_OK)
        dcm_file_free(f);
    return 0;
}
