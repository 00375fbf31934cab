/*
 * fuzz_zip.c - libFuzzer target for the ZIP reader (src/util/zip.c, reader side), the code
 * `radshare import --untrusted` runs on a patient's ZIP before anything else looks at it.
 *
 * For every input, written to a memfd (the reader wants a seekable regular file):
 *   1. zip_reader_open with tight limits (64 entries, 1 MiB in all, 256 KiB an entry), then with
 *      the defaults import uses, so both the refusals and the extraction paths are fuzzed;
 *   2. every failure must say why (err.msg);
 *   3. the directory the reader reports must respect its limits: at most max_entries entries,
 *      names NUL-terminated and printable, a file entry's declared size within max_entry, the
 *      declared sizes summing to at most max_total;
 *   4. every entry is extracted (twice for the first one: the running total counts each
 *      extraction); a success must give exactly the declared size with the declared CRC, and
 *      the bytes extracted in all never exceed max_total - the "a bomb costs at most the caps"
 *      promise of zip.h. Otherwise abort().
 * Everything is freed, so LeakSanitizer reports any leak on the error paths.
 * Seeds: fuzz/make_seeds_zip.py writes fuzz/seeds-zip/. Defining FUZZ_NO_INVARIANT only reports.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/zip.h"

static void invariant(int ok, const char *what, const char *detail)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_zip: INVARIANT: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
#ifndef FUZZ_NO_INVARIANT
    abort();
#endif
}

static void check_directory(const zip_reader *z, const zip_limits *lim)
{
    size_t n = zip_reader_count(z);
    uint64_t total = 0;
    invariant(n <= lim->max_entries, "more entries than max_entries", NULL);
    for (size_t i = 0; i < n; i++) {
        const zip_entry_info *e = zip_reader_entry(z, i);
        invariant(memchr(e->name, 0, sizeof e->name) != NULL, "an entry name without its NUL", NULL);
        for (const char *c = e->name; *c; c++)
            invariant((unsigned char)*c >= 0x20, "a control character in a reported name", NULL);
        if (e->is_dir)
            continue;
        invariant(e->usize <= lim->max_entry, "an entry over max_entry passed the limits", e->name);
        total += e->usize;
        invariant(total <= lim->max_total, "declared sizes over max_total passed the limits", e->name);
    }
}

static void extract_one(zip_reader *z, size_t i, const zip_limits *lim, rs_buf *out, uint64_t *extracted)
{
    const zip_entry_info *e = zip_reader_entry(z, i);
    rs_err err = {0};
    if (zip_reader_extract(z, i, out, &err) != RS_OK) {
        invariant(err.msg[0] != 0, "zip_reader_extract failed without a message", e->name);
        return;
    }
    invariant(out->len == e->usize, "an extraction not of the declared size", e->name);
    invariant((uint32_t)crc32(0, out->p, (uInt)out->len) == e->crc, "an extraction with another CRC", e->name);
    *extracted += out->len;
    invariant(*extracted <= lim->max_total, "more than max_total extracted in all", e->name);
}

static void read_zip(int fd, const zip_limits *lim)
{
    zip_reader *z = NULL;
    rs_err err = {0};
    if (zip_reader_open(fd, lim, &z, &err) != RS_OK) {
        invariant(err.msg[0] != 0, "zip_reader_open failed without a message", NULL);
        invariant(z == NULL, "zip_reader_open failed but gave a reader", NULL);
        return;
    }
    check_directory(z, lim);
    rs_buf out = RS_BUF_INIT;
    uint64_t extracted = 0;
    size_t n = zip_reader_count(z);
    for (size_t i = 0; i < n; i++)
        extract_one(z, i, lim, &out, &extracted);
    if (n)
        extract_one(z, 0, lim, &out, &extracted); /* again: the running total counts it */
    rs_buf_free(&out);
    zip_reader_close(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_zip", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0)
            abort();
        off += (size_t)w;
    }
    /* tight: what a test of the caps would set; then the defaults (as import, without --max-file) */
    const zip_limits tight = {.max_entries = 64, .max_total = 1 << 20, .max_entry = 256 << 10,
                              .max_ratio = 200, .max_depth = 16};
    const zip_limits defaults = {.max_entries = 10000, .max_total = 4ull << 30, .max_entry = 1ull << 30,
                                 .max_ratio = 200, .max_depth = 16};
    read_zip(fd, &tight);
    read_zip(fd, &defaults);
    close(fd);
    return 0;
}
