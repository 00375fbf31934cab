/*
 * fuzz_json.c - libFuzzer target for the two JSON readers of HTTP request bodies: the DICOM
 * JSON reader (src/dicom/json_read.c, STOW-RS application/dicom+json) and the share API's small
 * JSON reader (src/share/jsonin.c).
 *
 * For every input:
 *   1. JSON text has no raw NUL byte anywhere (not whitespace, not in a number, a control
 *      character in a string): an input with one must be refused by both readers;
 *   2. dcm_json_read: a success is written back with dcm_json_write (J1); J1 must read again
 *      and write again to exactly J1;
 *   3. jsonin_parse: a success has at most JSONIN_MAX_ITEMS items; every failure has a message.
 * Otherwise abort(). Everything is freed, so LeakSanitizer reports any leak on the error paths.
 * Seeds: fuzz/make_seeds_parsers.py json. Defining FUZZ_NO_INVARIANT only reports.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/json.h"
#include "share/jsonin.h"
#include "util/buf.h"
#include "util/err.h"

static void invariant(int ok, const char *what, const rs_err *err)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_json: INVARIANT: %s%s%s\n", what, err && err->msg[0] ? ": " : "", err ? err->msg : "");
#ifndef FUZZ_NO_INVARIANT
    abort();
#endif
}

static void dicom_json(const char *text, size_t size, int has_nul)
{
    dcm_file *f = NULL, *g = NULL;
    rs_err err = {0};
    rs_buf j1 = RS_BUF_INIT, j2 = RS_BUF_INIT;
    const dcm_json_opts jo = {0};
    if (dcm_json_read(text, size, &f, &err) != RS_OK) {
        invariant(err.msg[0] != 0, "dcm_json_read failed without a message", NULL);
        goto out;
    }
    invariant(!has_nul, "dcm_json_read took a NUL byte", NULL);
    invariant(dcm_json_write(f->ds, &jo, &j1, &err) == RS_OK, "cannot write what dcm_json_read read", &err);
    invariant(dcm_json_read((const char *)j1.p, j1.len, &g, &err) == RS_OK, "cannot read its own JSON", &err);
    if (g) {
        invariant(dcm_json_write(g->ds, &jo, &j2, &err) == RS_OK, "cannot write the re-read dataset", &err);
        invariant(j1.len == j2.len && memcmp(j1.p, j2.p, j1.len) == 0, "J2 differs from J1", NULL);
    }
out:
    dcm_file_free(f);
    dcm_file_free(g);
    rs_buf_free(&j1);
    rs_buf_free(&j2);
}

static void api_json(const char *text, size_t size, int has_nul)
{
    jsonin j;
    rs_err err = {0};
    if (jsonin_parse(text, size, &j, &err) != RS_OK) {
        invariant(err.msg[0] != 0, "jsonin_parse failed without a message", NULL);
        invariant(j.n == 0 && j.items == NULL, "jsonin_parse failed but kept items", NULL);
        return;
    }
    invariant(!has_nul, "jsonin_parse took a NUL byte", NULL);
    invariant(j.n <= JSONIN_MAX_ITEMS, "more than JSONIN_MAX_ITEMS items", NULL);
    for (size_t i = 0; i < j.n; i++)
        invariant(jsonin_get(&j, j.items[i].path) != NULL, "an item not found by its path", NULL);
    jsonin_free(&j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes: the readers must not look past n */
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    int has_nul = memchr(data, 0, size) != NULL;
    dicom_json(text, size, has_nul);
    api_json(text, size, has_nul);
    free(text);
    return 0;
}
