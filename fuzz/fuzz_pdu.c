/*
 * fuzz_pdu.c - libFuzzer target for the DICOM Upper Layer PDU codec (src/net/pdu.c).
 *
 * For every input:
 *   1. pdu_parse on the whole input as one PDU (P-DATA cap: 16384 announced for even sizes, no
 *      limit for odd ones, so both paths of the cap are fuzzed);
 *   2. the input read as a stream of PDUs with pdu_read_header + pdu_decode, the way the
 *      association layer will read a connection (tests/data/pdu/storescu_pdata_stream.bin is one);
 *   3. every failure must say why (err.msg) and what to answer (fault: A-ABORT or A-ASSOCIATE-RJ);
 *   4. every PDU that decoded is encoded again as E1; E1 must decode, the result must be
 *      pdu_equal to the first decoding, and its encoding E2 must equal E1 - otherwise abort().
 *      The decoder accepting what the encoder refuses is a bug too, except for inputs close to
 *      the 16-bit item-length ceiling (the encoder always adds the mandatory Maximum Length
 *      sub-item, which can push a nearly full User Information item over 65535 bytes).
 * Everything is freed, so LeakSanitizer reports any leak on the error paths.
 *
 * Build (like fuzz_reader, see fuzz/run.sh):
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Isrc \
 *       fuzz/fuzz_pdu.c <every src .c file outside src/cli> -lz -o build/fuzz/fuzz_pdu
 * Seeds: the captured PDUs in tests/data/pdu/. Defining FUZZ_NO_INVARIANT skips step 4's abort.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/pdu.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/err.h"

#define FUZZ_MAX_MEMORY ((size_t)64 * 1024 * 1024)
#define FUZZ_NEAR_ITEM_CEILING 60000 /* inputs this big may legitimately not re-encode (see 4.) */

static void invariant(int ok, const char *what, const rs_err *err)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_pdu: INVARIANT: %s%s%s\n", what, err && err->msg[0] ? ": " : "",
            err ? err->msg : "");
#ifndef FUZZ_NO_INVARIANT
    abort();
#endif
}

static void check_failure(int rc, const pdu_fault *fault, const rs_err *err)
{
    if (rc == RS_OK)
        return;
    invariant(err->msg[0] != 0, "a decoding failure without a message", NULL);
    invariant(fault->reply == PDU_ABORT || fault->reply == PDU_ASSOCIATE_RJ,
              "a decoding failure without a reply for the peer", err);
}

/* Step 4 for one decoded PDU. */
static void check_roundtrip(const pdu *p, size_t input_size)
{
    rs_buf e1 = RS_BUF_INIT, e2 = RS_BUF_INIT;
    rs_err err = {0};
    rs_arena a;
    rs_arena_init(&a, FUZZ_MAX_MEMORY);
    if (pdu_encode(p, &e1, &err) != RS_OK) {
        invariant(input_size >= FUZZ_NEAR_ITEM_CEILING, "radshare cannot encode what it decoded", &err);
        goto out;
    }
    pdu q;
    pdu_fault fault = {0};
    rs_err_clear(&err);
    if (pdu_parse(e1.p, e1.len, 0, &q, &a, &fault, &err) != RS_OK) {
        invariant(0, "radshare cannot decode its own encoding", &err);
        goto out;
    }
    invariant(pdu_equal(p, &q), "the re-decoded PDU differs from the first decoding", NULL);
    rs_err_clear(&err);
    invariant(pdu_encode(&q, &e2, &err) == RS_OK, "re-encoding the re-decoded PDU failed", &err);
    invariant(e1.len == e2.len && memcmp(e1.p, e2.p, e1.len) == 0, "E2 differs from E1", NULL);
out:
    rs_arena_free(&a);
    rs_buf_free(&e1);
    rs_buf_free(&e2);
}

static void parse_whole(const uint8_t *data, size_t size)
{
    rs_arena a;
    rs_arena_init(&a, FUZZ_MAX_MEMORY);
    pdu p;
    pdu_fault fault = {0};
    rs_err err = {0};
    int rc = pdu_parse(data, size, size & 1 ? 0 : 16384, &p, &a, &fault, &err);
    check_failure(rc, &fault, &err);
    if (rc == RS_OK)
        check_roundtrip(&p, size);
    rs_arena_free(&a);
}

static void parse_stream(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    while (size - pos >= PDU_HEADER_LEN) {
        uint8_t type;
        uint32_t len;
        pdu_fault fault = {0};
        rs_err err = {0};
        int rc = pdu_read_header(data + pos, 16384, &type, &len, &fault, &err);
        check_failure(rc, &fault, &err);
        if (rc != RS_OK || len > size - pos - PDU_HEADER_LEN)
            return;
        rs_arena a;
        rs_arena_init(&a, FUZZ_MAX_MEMORY);
        pdu p;
        rc = pdu_decode(type, data + pos + PDU_HEADER_LEN, len, &p, &a, &fault, &err);
        check_failure(rc, &fault, &err);
        rs_arena_free(&a);
        if (rc != RS_OK)
            return;
        pos += PDU_HEADER_LEN + (size_t)len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_whole(data, size);
    parse_stream(data, size);
    return 0;
}
