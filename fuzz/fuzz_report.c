/*
 * fuzz_report.c - libFuzzer target for the report delivery code that handles outside bytes:
 * the HL7 ACK parser (src/report/hl7.c, bytes from the HL7 peer) and the builders of the
 * ORU^R01 message and the report e-mail (hl7.c, smtp.c), whose fields come from imported DICOM
 * (patient name, study date, procedure...) and from the report text.
 *
 * For every input:
 *   1. report_hl7_parse_ack on the whole input: a success has a 2-letter MSA-1 code and a text
 *      without control characters; a failure has a message;
 *   2. the input split on NUL bytes gives the fields (each its own exact-size allocation, so
 *      ASan sees any read past a field's end); report_hl7_build_oru: the message is CR-separated
 *      segments MSH, PID, OBR, then OBX only, each with the field count of its kind (a value
 *      cannot add a field or a segment), no LF anywhere;
 *   3. report_mail_build with the same fields: every line ends CRLF, no line over 998 bytes
 *      (RFC 5322), the header block has exactly the headers radshare writes.
 * Otherwise abort(). Seeds: fuzz/make_seeds_parsers.py report.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/hl7.h"
#include "report/smtp.h"
#include "util/buf.h"
#include "util/err.h"

#define NFIELDS 16

static void invariant(int ok, const char *what)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_report: INVARIANT: %s\n", what);
#ifndef FUZZ_NO_INVARIANT
    abort();
#endif
}

static void parse_ack(const uint8_t *data, size_t size)
{
    report_hl7_ack ack;
    rs_err err = {0};
    if (report_hl7_parse_ack((const char *)data, size, &ack, &err) != RS_OK) {
        invariant(err.msg[0] != 0, "a refused ACK without a message");
        return;
    }
    invariant(strlen(ack.code) == 2, "MSA-1 not 2 characters");
    for (const char *c = ack.text; *c; c++)
        invariant((unsigned char)*c >= 0x20, "a control character in the ACK text");
}

static size_t count(const char *b, const char *e, char c)
{
    size_t n = 0;
    for (; b < e; b++)
        n += *b == c;
    return n;
}

static void check_oru(const rs_buf *msg, int author)
{
    const char *p = (const char *)msg->p, *end = p + msg->len;
    invariant(memchr(p, '\n', msg->len) == NULL, "an LF in the ORU message");
    invariant(msg->len && end[-1] == '\r', "the ORU message does not end with CR");
    static const struct {
        const char *name;
        size_t pipes;
    } fixed[] = {{"MSH|", 17}, {"PID|", 8}, {"OBR|", 25}};
    for (int seg = 0; p < end; seg++) {
        const char *e = memchr(p, '\r', (size_t)(end - p));
        if (seg < 3) {
            invariant(!strncmp(p, fixed[seg].name, 4), "MSH, PID, OBR not in order");
            invariant(count(p, e, '|') == fixed[seg].pipes, "a value added or removed a field");
        } else {
            invariant(!strncmp(p, "OBX|", 4), "a segment other than OBX after OBR");
            size_t n = count(p, e, '|');
            invariant(n == 11 || (author && n == 16), "an OBX with another field count");
        }
        p = e + 1;
    }
}

static void check_mail(const rs_buf *msg)
{
    static const char *const names[] = {"Date: ", "From: ", "To: ", "Subject: ", "Message-ID: ", "MIME-Version: ",
                                        "Content-Type: ", "Auto-Submitted: "};
    const char *p = (const char *)msg->p, *end = p + msg->len;
    int in_headers = 1;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        invariant(e && e > p && e[-1] == '\r', "a mail line not ended by CRLF");
        invariant(!memchr(p, '\r', (size_t)(e - 1 - p)), "a bare CR in the mail");
        invariant(e - 1 - p <= 998, "a mail line over 998 bytes");
        if (in_headers && e - 1 == p) {
            in_headers = 0;
        } else if (in_headers && *p != ' ') {
            int known = 0;
            for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
                known |= !strncmp(p, names[i], strlen(names[i]));
            invariant(known, "a header radshare does not write");
        }
        p = e + 1;
    }
    invariant(!in_headers, "the mail has no body");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_ack(data, size);
    char *f[NFIELDS] = {0};
    size_t off = 0;
    for (int i = 0; i < NFIELDS; i++) {
        const uint8_t *z = off < size ? memchr(data + off, 0, size - off) : NULL;
        size_t n = off < size ? (z ? (size_t)(z - data) : size) - off : 0;
        if (!(f[i] = malloc(n + 1)))
            goto out;
        memcpy(f[i], data + off, n);
        f[i][n] = 0;
        off += n + 1;
    }
    const report_hl7_oru oru = {f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9],
                                f[10], f[11], f[12], f[13], f[14][0] ? f[14] : NULL, f[15], f[0]};
    rs_buf msg = RS_BUF_INIT;
    if (report_hl7_build_oru(&oru, &msg) == RS_OK)
        check_oru(&msg, f[14][0] != 0);
    rs_buf_reset(&msg);
    /* addresses from fields too: the builder must refuse what would break the header */
    const report_mail mail = {.from = f[0], .from_name = f[1][0] ? f[1] : NULL, .to = f[2], .to_name = f[3],
                              .patient_name = f[7], .procedure = f[12], .study_date = f[13], .text = f[15],
                              .link_url = f[5], .message_id = f[4], .date_s = 1700000000};
    rs_err err = {0};
    if (report_mail_build(&mail, &msg, &err) == RS_OK)
        check_mail(&msg);
    rs_buf_free(&msg);
out:
    for (int i = 0; i < NFIELDS; i++)
        free(f[i]);
    return 0;
}
