/*
 * hl7.c - ORU^R01 building and ACK parsing (see hl7.h).
 *
 * TX values cannot carry line breaks, so the report goes one line per OBX: every receiver shows
 * that correctly, where FT's \.br\ formatting is not universally rendered.
 */
#include <string.h>

#include "hl7.h"

int report_hl7_escape(rs_buf *out, const char *s)
{
    int rc = RS_OK;
    for (; !rc && s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '|': rc = rs_buf_puts(out, "\\F\\"); break;
        case '^': rc = rs_buf_puts(out, "\\S\\"); break;
        case '&': rc = rs_buf_puts(out, "\\T\\"); break;
        case '~': rc = rs_buf_puts(out, "\\R\\"); break;
        case '\\': rc = rs_buf_puts(out, "\\E\\"); break;
        default: rc = rs_buf_putc(out, c < 0x20 || c == 0x7f ? ' ' : c); break;
        }
    }
    return rc ? RS_ENOMEM : RS_OK;
}

/* Component i (0-based) of a DICOM PN's first (alphabetic) group: [start, end). */
static void pn_component(const char *pn, int i, const char **b, const char **e)
{
    const char *p = pn ? pn : "";
    const char *group_end = strchr(p, '=');
    if (!group_end)
        group_end = p + strlen(p);
    for (int k = 0; k < i && p < group_end; k++) {
        const char *c = memchr(p, '^', (size_t)(group_end - p));
        p = c ? c + 1 : group_end;
    }
    const char *c = memchr(p, '^', (size_t)(group_end - p));
    *b = p;
    *e = c ? c : group_end;
}

static int escape_n(rs_buf *out, const char *b, const char *e)
{
    char tmp[256];
    size_t n = (size_t)(e - b) < sizeof tmp - 1 ? (size_t)(e - b) : sizeof tmp - 1;
    memcpy(tmp, b, n);
    tmp[n] = 0;
    return report_hl7_escape(out, tmp);
}

int report_hl7_xpn(rs_buf *out, const char *pn)
{
    static const int order[] = {0, 1, 2, 4, 3};   /* XPN: family, given, middle, suffix, prefix */
    int rc = RS_OK, last = -1;
    const char *b, *e;
    for (int i = 0; i < 5; i++) {
        pn_component(pn, order[i], &b, &e);
        if (e > b)
            last = i;
    }
    for (int i = 0; !rc && i <= last; i++) {
        pn_component(pn, order[i], &b, &e);
        if (i)
            rc = rs_buf_putc(out, '^') ? RS_ENOMEM : RS_OK;
        if (!rc)
            rc = escape_n(out, b, e);
    }
    return rc;
}

/* Fields of one segment: each argument escaped, NULL = empty, separated by '|'. */
static int fields(rs_buf *out, const char *seg, const char *const *v, int n)
{
    int rc = rs_buf_puts(out, seg) ? RS_ENOMEM : RS_OK;
    for (int i = 0; !rc && i < n; i++) {
        rc = rs_buf_putc(out, '|') ? RS_ENOMEM : RS_OK;
        if (!rc && v[i])
            rc = report_hl7_escape(out, v[i]);
    }
    return rc;
}

static int obx_text_lines(rs_buf *out, const report_hl7_oru *m, int *set_id)
{
    const char *p = m->text ? m->text : "";
    int rc = RS_OK;
    while (!rc && *p) {
        const char *nl = strchr(p, '\n');
        const char *end = nl ? nl : p + strlen(p);
        const char *trim = end > p && end[-1] == '\r' ? end - 1 : end;
        rc = rs_buf_printf(out, "OBX|%d|TX|REPORT^Report^L|1|", ++*set_id);
        while (!rc && p < trim) {   /* long lines in pieces: escape_n works on bounded chunks */
            const char *cut = (size_t)(trim - p) > 200 ? p + 200 : trim, *q = cut;
            while (q < trim && q > p && ((unsigned char)*q & 0xC0) == 0x80)   /* keep UTF-8 sequences whole */
                q--;
            if (q == p)   /* 200 continuation bytes: not UTF-8, cut anywhere (else this loop never ends) */
                q = cut;
            rc = escape_n(out, p, q);
            p = q;
        }
        if (!rc) {
            rc = rs_buf_puts(out, "||||||F");
            if (!rc && m->author && *m->author)   /* OBX-16 responsible observer, an XCN: ^name */
                rc = rs_buf_puts(out, "|||||^") || report_hl7_escape(out, m->author);
            if (!rc)
                rc = rs_buf_putc(out, '\r');
        }
        p = nl ? nl + 1 : end;
    }
    return rc ? RS_ENOMEM : RS_OK;
}

int report_hl7_build_oru(const report_hl7_oru *m, rs_buf *out)
{
    int rc = rs_buf_puts(out, "MSH|^~\\&") ? RS_ENOMEM : RS_OK;
    const char *msh[] = {m->sending_app, m->sending_facility, m->receiving_app, m->receiving_facility,
                         m->timestamp, NULL};
    if (!rc)
        rc = fields(out, "", msh, 6);
    if (!rc)
        rc = rs_buf_puts(out, "|ORU^R01^ORU_R01|") || report_hl7_escape(out, m->control_id) ||
                     rs_buf_puts(out, "|P|2.5|||AL|NE||UNICODE UTF-8\rPID|1||")
                 ? RS_ENOMEM : RS_OK;
    if (!rc)
        rc = report_hl7_escape(out, m->patient_id);
    if (!rc)
        rc = rs_buf_puts(out, "||") ? RS_ENOMEM : report_hl7_xpn(out, m->patient_name);
    const char *sex = m->sex && (!strcmp(m->sex, "M") || !strcmp(m->sex, "F") || !strcmp(m->sex, "O")) ? m->sex : "U";
    const char *pid[] = {m->birth_date, sex};
    if (!rc)
        rc = rs_buf_putc(out, '|') ? RS_ENOMEM : fields(out, "", pid, 2);
    /* OBR-2 placer (accession), 3 filler (study UID), 4 service (CE: text in the 2nd component),
     * 7 observed, 18 accession, 22 reported, 25 status F */
    const char *obr1[] = {"1", m->accession, m->study_uid};
    const char *obr7[] = {NULL, NULL, m->study_date, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                          NULL, NULL, NULL, m->accession, NULL, NULL, NULL, m->timestamp, NULL, NULL, "F"};
    if (!rc)
        rc = rs_buf_putc(out, '\r') || fields(out, "OBR", obr1, 3) || rs_buf_puts(out, "|^") ||
                     report_hl7_escape(out, m->procedure) || fields(out, "", obr7, 21)
                 ? RS_ENOMEM : RS_OK;
    if (!rc)
        rc = rs_buf_putc(out, '\r') ? RS_ENOMEM : RS_OK;
    int set_id = 0;
    if (!rc)
        rc = obx_text_lines(out, m, &set_id);
    if (!rc)
        rc = rs_buf_printf(out, "OBX|%d|RP|LINK^Images^L|1|", ++set_id) || report_hl7_escape(out, m->link_url) ||
                     rs_buf_puts(out, "^RADSHARE^TEXT^HTML||||||F\r") ||
                     rs_buf_printf(out, "OBX|%d|ST|113014^Study Instance UID^DCM|1|", ++set_id) ||
                     report_hl7_escape(out, m->study_uid) || rs_buf_puts(out, "||||||F\r")
                 ? RS_ENOMEM : RS_OK;
    return rc;
}

/* Field i (0-based after the segment name) of the segment starting at seg, up to CR. */
static void seg_field(const char *seg, const char *end, char sep, int i, char *out, size_t cap)
{
    const char *p = seg;
    for (int k = 0; k <= i; k++) {
        p = memchr(p, sep, (size_t)(end - p));
        if (!p) {
            out[0] = 0;
            return;
        }
        p++;
    }
    const char *q = memchr(p, sep, (size_t)(end - p));
    if (!q)
        q = end;
    size_t n = (size_t)(q - p) < cap - 1 ? (size_t)(q - p) : cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

int report_hl7_parse_ack(const char *msg, size_t n, report_hl7_ack *ack, rs_err *err)
{
    memset(ack, 0, sizeof *ack);
    if (n < 8 || memcmp(msg, "MSH", 3))
        return rs_err_set(err, RS_EFORMAT, "the answer is not an HL7 message");
    char sep = msg[3];
    const char *end = msg + n, *p = msg;
    int have_msa = 0;
    while (p < end) {
        const char *e = p;
        while (e < end && *e != '\r' && *e != '\n')
            e++;
        if (e - p >= 4 && !memcmp(p, "MSA", 3) && p[3] == sep) {
            char code[8];
            seg_field(p, e, sep, 0, code, sizeof code);
            if (strlen(code) != 2)
                return rs_err_set(err, RS_EFORMAT, "MSA-1 is not an acknowledgment code");
            memcpy(ack->code, code, 3);
            seg_field(p, e, sep, 1, ack->control_id, sizeof ack->control_id);
            seg_field(p, e, sep, 2, ack->text, sizeof ack->text);
            have_msa = 1;
        } else if (e - p >= 4 && !memcmp(p, "ERR", 3) && p[3] == sep && !ack->text[0]) {
            seg_field(p, e, sep, 2, ack->text, sizeof ack->text);   /* ERR-3 error code */
        }
        p = e + 1;
    }
    if (!have_msa)
        return rs_err_set(err, RS_EFORMAT, "the answer has no MSA segment");
    for (char *c = ack->text; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = ' ';
    return RS_OK;
}
