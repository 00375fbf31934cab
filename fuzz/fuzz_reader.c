/*
 * fuzz_reader.c - libFuzzer target for the Part 10 reader and its consumers.
 *
 * For every input:
 *   1. dcm_read_mem in best-effort mode under tight limits (64 MiB arena, 16 MiB per value);
 *   2. when that succeeds: dcm_json_write (everything inline), dcm_dump, dcm_write in the
 *      file's own syntax and in explicit VR little endian (errors are fine, crashes are not);
 *   3. the own-syntax bytes are read back (must not crash);
 *   4. the explicit-LE bytes E1 are read back and encoded again in explicit LE as E2:
 *      E1 != E2 is a bug (the writer's output is not a fixed point of read+write) -> abort();
 *      failing to read E1 back at all is a bug too (radshare rejects its own output) -> abort();
 *   5. the input is read once more in strict mode stopping at Pixel Data (must not crash).
 * Everything is freed, so LeakSanitizer reports any leak on the error paths.
 *
 * Build (fuzz/run.sh does this):
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Isrc \
 *       fuzz/fuzz_reader.c <every src .c file outside src/cli> -lz -o build/fuzz/fuzz_reader
 * Defining FUZZ_NO_INVARIANT skips step 4's abort (to fuzz past a known invariant bug).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Print where E1 and E2 first differ, to make triage of an invariant failure quick. */
static void report_mismatch(const rs_buf *a, const rs_buf *b)
{
    size_t n = a->len < b->len ? a->len : b->len, i = 0;
    while (i < n && a->p[i] == b->p[i])
        i++;
    fprintf(stderr, "fuzz_reader: INVARIANT: explicit-LE re-encoding differs: E1 %zu bytes, E2 %zu bytes, "
                    "first difference at offset %zu\n", a->len, b->len, i);
    size_t from = i > 16 ? i - 16 : 0;
    for (int k = 0; k < 2; k++) {
        const rs_buf *x = k ? b : a;
        fprintf(stderr, "  E%d[%zu..]:", k + 1, from);
        for (size_t j = from; j < from + 48 && j < x->len; j++)
            fprintf(stderr, " %02x", x->p[j]);
        fputc('\n', stderr);
    }
}

/* Read back bytes radshare wrote itself; returns the file or NULL (with err filled). */
static dcm_file *reread(const rs_buf *b, rs_err *err)
{
    dcm_file *f = NULL;
    if (dcm_read_mem(b->p, b->len, &read_opts, &f, err) != RS_OK)
        return NULL;
    return f;
}

static void check_explicit_roundtrip(dcm_file *f)
{
    static const dcm_write_opts ele = {.ts = NULL};
    dcm_write_opts o = ele;
    o.ts = dcm_ts_explicit_le();
    rs_err err = {0};
    rs_buf e1 = RS_BUF_INIT, e2 = RS_BUF_INIT;
    if (dcm_write(f, &o, &e1, &err) != RS_OK) /* e.g. a value too long for its VR: not a bug */
        goto out;
    rs_err_clear(&err);
    dcm_file *g = reread(&e1, &err);
    if (!g) {
#ifndef FUZZ_NO_INVARIANT
        fprintf(stderr, "fuzz_reader: INVARIANT: radshare cannot read its own explicit-LE output (%zu bytes): "
                        "%s (at %llu)\n", e1.len, err.msg, (unsigned long long)err.offset);
        abort();
#else
        goto out;
#endif
    }
    rs_err_clear(&err);
    int rc = dcm_write(g, &o, &e2, &err);
    if (rc != RS_OK) {
#ifndef FUZZ_NO_INVARIANT
        fprintf(stderr, "fuzz_reader: INVARIANT: re-encoding the re-read dataset failed: %s\n", err.msg);
        abort();
#endif
    } else if (e1.len != e2.len || memcmp(e1.p, e2.p, e1.len) != 0) {
#ifndef FUZZ_NO_INVARIANT
        report_mismatch(&e1, &e2);
        abort();
#endif
    }
    dcm_file_free(g);
out:
    rs_buf_free(&e1);
    rs_buf_free(&e2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dcm_file *f = NULL;
    rs_err err = {0};
    if (dcm_read_mem(data, size, &read_opts, &f, &err) == RS_OK) {
        rs_buf out = RS_BUF_INIT;

        dcm_json_opts jo = {.inline_max = UINT32_MAX, .bulk = NULL, .pretty = (int)(size & 1)};
        rs_err_clear(&err);
        dcm_json_write(f->ds, &jo, &out, &err);
        rs_buf_reset(&out);
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

        check_explicit_roundtrip(f);
        dcm_file_free(f);
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
