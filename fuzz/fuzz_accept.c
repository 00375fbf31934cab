/*
 * fuzz_accept.c - libFuzzer target for the DICOMweb Accept negotiation (dw_tc_choose in
 * src/http/transcode.c): the Accept header of any WADO-RS request, straight from the client.
 *
 * Input: byte 0 picks frames or instances (bit 0), whether the stored image is known (bit 7:
 * a 16-bit grey image, else none: objects negotiated from the index) and the stored transfer
 * syntax (bits 1-6, in a list of native, compressed, big-endian and unknown UIDs); the remaining
 * bytes (to the first NUL) are the Accept header. Invariants (otherwise abort()):
 *   1. a success sends the stored syntax, Explicit VR LE, (instances only) Implicit VR LE, or a
 *      syntax an encoder of src/codec makes (then marked DW_TC_ENCODE, and, when the image is
 *      known, one that encoder takes), with a NUL-terminated part type; "stored" means the
 *      stored bytes: the stored syntax (or, for native frames, Explicit VR LE);
 *   2. a refusal is RS_EUNSUPPORTED with a message.
 * Seeds: fuzz/make_seeds_parsers.py accept; dictionary fuzz/accept.dict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/encode.h"
#include "dicom/ts.h"
#include "http/transcode.h"

static void invariant(int ok, const char *what)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_accept: INVARIANT: %s\n", what);
#ifndef FUZZ_NO_INVARIANT
    abort();
#endif
}

static const char *const stored[] = {DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE, "1.2.840.10008.1.2.2",
                                     "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70",
                                     "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5",
                                     "1.2.840.10008.1.2.4.201", "1.2.3.4.5.6.7.8.9"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    dw_tc_what what = data[0] & 1 ? DW_TC_OBJECTS : DW_TC_FRAMES;
    const char *ts = stored[((data[0] >> 1) & 0x3f) % (sizeof stored / sizeof stored[0])];
    codec_desc grey16 = {.rows = 512, .cols = 512, .frames = 1, .spp = 1, .bits_allocated = 16, .bits_stored = 12,
                         .high_bit = 11, .photometric = "MONOCHROME2"};
    snprintf(grey16.ts_uid, sizeof grey16.ts_uid, "%s", ts);
    const codec_desc *img = data[0] & 0x80 ? &grey16 : NULL;
    char *accept = malloc(size);
    if (!accept)
        return 0;
    memcpy(accept, data + 1, size - 1);
    accept[size - 1] = 0;
    dw_tc out;
    char msg[512] = "";
    memset(&out, 0x55, sizeof out); /* nothing may be left unset */
    int rc = dw_tc_choose(size > 1 && data[1] == 0xFF ? NULL : accept, what, ts, img, &out, msg, sizeof msg);
    if (rc == RS_OK) {
        invariant(memchr(out.ts, 0, sizeof out.ts) && memchr(out.part_type, 0, sizeof out.part_type),
                  "an unterminated answer");
        int encoded = out.convert == DW_TC_ENCODE;
        invariant(!strcmp(out.ts, ts) || !strcmp(out.ts, DCM_TS_EXPLICIT_LE) ||
                      (what == DW_TC_OBJECTS && !strcmp(out.ts, DCM_TS_IMPLICIT_LE)) ||
                      (encoded && codec_enc_known(out.ts)),
                  "a syntax radshare cannot produce");
        if (encoded && img)
            invariant(codec_enc_check(out.ts, img, NULL) == RS_OK, "an encoder chosen that cannot take the image");
        invariant(out.part_type[0] != 0, "no part type");
        invariant(out.convert == DW_TC_STORED || out.convert == DW_TC_DECODE || encoded, "convert unset");
        if (out.convert == DW_TC_STORED && what == DW_TC_OBJECTS)
            invariant(!strcmp(out.ts, ts), "unconverted instances in another syntax");
    } else {
        invariant(rc == RS_EUNSUPPORTED && msg[0], "a refusal without RS_EUNSUPPORTED and a message");
    }
    free(accept);
    return 0;
}
