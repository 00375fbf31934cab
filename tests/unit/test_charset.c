/*
 * test_charset.c - dcm_charset_parse/dcm_charset_decode against pydicom and by hand.
 *
 * Part 1 replays tests/data/charset_vectors.tsv (tools/gen_charset_vectors.py: every text
 * element of pydicom's sample files with pydicom's decoded text) and wants the same text.
 * dcm_charset_decode leaves padding alone, so before comparing the output is stripped the way
 * pydicom strips: SH LO UC per value, ST LT UT and PN on the whole value.
 * Part 2 covers what the sample files do not: invalid UTF-8, the default repertoire, the
 * PS3.5 Annex H/I examples, JIS X 0212, GB2312, latin9, Thai, Shift-JIS under ISO_IR 13,
 * escape-sequence edge cases and the warnings of dcm_charset_parse.
 *
 * Run from the repository root (or pass the path of the .tsv as the first argument).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/charset.h"
#include "dicom/vr.h"
#include "t.h"

/* ---- helpers -------------------------------------------------------------------------- */

static size_t unhex(const char *h, size_t hl, uint8_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i + 1 < hl; i += 2) {
        unsigned v;
        char t[3] = {h[i], h[i + 1], 0};
        if (sscanf(t, "%2x", &v) != 1)
            return (size_t)-1;
        out[n++] = (uint8_t)v;
    }
    return n;
}

static void rstrip(rs_buf *b, size_t from)
{
    while (b->len > from && (b->p[b->len - 1] == ' ' || b->p[b->len - 1] == 0))
        b->len--;
}

/* pydicom's padding removal, applied to our whole-value output (see the top comment). */
static void strip_like_pydicom(uint16_t vr, const rs_buf *in, rs_buf *out)
{
    rs_buf_reset(out);
    if (vr == DCM_VR_SH || vr == DCM_VR_LO || vr == DCM_VR_UC) {
        size_t start = 0;
        for (size_t i = 0; i <= in->len; i++) {
            if (i < in->len && in->p[i] != '\\')
                continue;
            size_t seg = out->len;
            rs_buf_append(out, in->p + start, i - start);
            rstrip(out, seg);
            if (i < in->len)
                rs_buf_putc(out, '\\');
            start = i + 1;
        }
    } else {
        rs_buf_append(out, in->len ? in->p : (const uint8_t *)"", in->len);
        rstrip(out, 0);
    }
    rs_buf_putc(out, 0); /* keep it a C string */
    out->len--;
}

static void print_escaped(const char *label, const uint8_t *p, size_t n)
{
    fprintf(stderr, "    %s: \"", label);
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"')
            fputc(p[i], stderr);
        else if (p[i] >= 0x80)
            fputc(p[i], stderr); /* UTF-8 as is: a terminal shows it */
        else
            fprintf(stderr, "\\x%02x", p[i]);
    }
    fprintf(stderr, "\"\n");
}

/* Decode raw (with the given (0008,0005) value) and return the output in a static buffer. */
static rs_buf g_out = RS_BUF_INIT;
static int g_lossy;

static const char *dec(const char *charset, uint16_t vr, const char *raw)
{
    dcm_charset cs;
    CHECK_EQ_INT(dcm_charset_parse(charset, charset ? strlen(charset) : 0, &cs, NULL), RS_OK);
    rs_buf_reset(&g_out);
    g_lossy = -1;
    int rc = dcm_charset_decode(&cs, vr, (const uint8_t *)raw, strlen(raw), &g_out, &g_lossy);
    CHECK_EQ_INT(rc, RS_OK);
    return g_out.p ? (const char *)g_out.p : "";
}

/* ---- part 1: pydicom vectors ---------------------------------------------------------- */

static void test_vectors(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        CHECK(!"charset vectors file missing (run from the repository root)");
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int total = 0, pass = 0, lineno = 0;
    rs_buf out = RS_BUF_INIT, cmp = RS_BUF_INIT;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len && line[len - 1] == '\n')
            line[--len] = 0;
        if (!len || line[0] == '#')
            continue;
        char *field[7];
        int nf = 0;
        for (char *p = line; nf < 7;) {
            field[nf++] = p;
            char *tab = strchr(p, '\t');
            if (!tab)
                break;
            *tab = 0;
            p = tab + 1;
        }
        if (nf < 6) {
            fprintf(stderr, "%s:%d: malformed line\n", path, lineno);
            CHECK(!"malformed vector line");
            continue;
        }
        total++;
        size_t cl = strlen(field[2]), vl = strlen(field[4]), el = strlen(field[5]);
        uint8_t *csb = malloc(cl / 2 + 1), *val = malloc(vl / 2 + 1), *exp = malloc(el / 2 + 1);
        if (!csb || !val || !exp) {
            CHECK(!"out of memory");
            break;
        }
        size_t csn = strcmp(field[2], "-") == 0 ? 0 : unhex(field[2], cl, csb);
        size_t valn = unhex(field[4], vl, val), expn = unhex(field[5], el, exp);
        uint16_t vr = dcm_vr_from_str(field[3]);

        dcm_charset cs;
        rs_err warn;
        rs_err_clear(&warn);
        int rc = dcm_charset_parse(strcmp(field[2], "-") ? (const char *)csb : NULL, csn, &cs,
                                   &warn);
        rs_buf_reset(&out);
        int lossy = -1;
        int rc2 = dcm_charset_decode(&cs, vr, val, valn, &out, &lossy);
        strip_like_pydicom(vr, &out, &cmp);
        int ok = rc == RS_OK && rc2 == RS_OK && cmp.len == expn &&
                 (expn == 0 || memcmp(cmp.p, exp, expn) == 0);
        /* pydicom decoded these without complaint, so neither should we */
        int note_ok = nf < 7 || strcmp(field[6], "ok") == 0;
        if (ok && note_ok && (lossy != 0 || warn.code != RS_OK))
            ok = 0;
        t_checks++;
        if (ok) {
            pass++;
        } else {
            t_failures++;
            fprintf(stderr, "%s:%d: mismatch for %s %s (%s), charset '%.*s', lossy %d%s%s\n",
                    path, lineno, field[0], field[1], field[3], (int)csn, (const char *)csb,
                    lossy, warn.code ? ", warning: " : "", warn.code ? warn.msg : "");
            print_escaped("raw     ", val, valn);
            print_escaped("got     ", cmp.p ? cmp.p : (const uint8_t *)"", cmp.len);
            print_escaped("expected", exp, expn);
        }
        free(csb);
        free(val);
        free(exp);
    }
    free(line);
    fclose(f);
    rs_buf_free(&out);
    rs_buf_free(&cmp);
    fprintf(stderr, "charset vectors: %d/%d match pydicom\n", pass, total);
    CHECK(total > 0);
}

/* ---- part 2: by hand ------------------------------------------------------------------ */

static void test_utf8(void)
{
    /* valid text passes untouched */
    CHECK_EQ_STR(dec("ISO_IR 192", DCM_VR_PN, "Wang^XiaoDong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe6\x9d\xb1="),
                 "Wang^XiaoDong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe6\x9d\xb1=");
    CHECK_EQ_INT(g_lossy, 0);
    /* each maximal invalid subpart is one U+FFFD (as Python's 'replace' does) */
    CHECK_EQ_STR(dec("ISO_IR 192", DCM_VR_LO, "a\xe0\x80" "b\xf0\x9f\x98"),
                 "a\xef\xbf\xbd\xef\xbf\xbd" "b\xef\xbf\xbd");
    CHECK_EQ_INT(g_lossy, 1);
    CHECK_EQ_STR(dec("ISO_IR 192", DCM_VR_LO, "x\xff" "y"), "x\xef\xbf\xbdy");
    CHECK_EQ_INT(g_lossy, 1);
    /* surrogates and overlongs are invalid */
    CHECK_EQ_STR(dec("ISO_IR 192", DCM_VR_LT, "\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    CHECK_EQ_STR(dec("ISO_IR 192", DCM_VR_LT, "\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");
    /* 4-byte sequence */
    CHECK_EQ_STR(dec("ISO_IR 192", DCM_VR_UT, "\xf0\x9f\x98\x80 "), "\xf0\x9f\x98\x80 ");
    CHECK_EQ_INT(g_lossy, 0);
}

static void test_default(void)
{
    dcm_charset cs;
    rs_err w;
    rs_err_clear(&w);
    CHECK_EQ_INT(dcm_charset_parse("", 0, &cs, &w), RS_OK);
    CHECK_EQ_INT(cs.n, 0);
    CHECK_EQ_INT(w.code, RS_OK);
    CHECK_EQ_INT(dcm_charset_parse("  ", 2, &cs, &w), RS_OK);
    CHECK_EQ_INT(cs.n, 0);
    CHECK_EQ_INT(dcm_charset_parse(NULL, 0, &cs, &w), RS_OK);
    CHECK_EQ_INT(cs.n, 0);
    CHECK_EQ_INT(w.code, RS_OK);

    /* ASCII is ASCII, padding is left alone */
    CHECK_EQ_STR(dec("", DCM_VR_PN, "Doe^John "), "Doe^John ");
    CHECK_EQ_INT(g_lossy, 0);
    /* high bytes under the default repertoire: latin1, as pydicom */
    CHECK_EQ_STR(dec(NULL, DCM_VR_PN, "Buc^J\xe9r\xf4me"), "Buc^J\xc3\xa9r\xc3\xb4me");
    CHECK_EQ_INT(g_lossy, 0);
    CHECK_EQ_STR(dec("ISO_IR 6", DCM_VR_LO, "\xc4"), "\xc3\x84");

    /* a NULL charset means the default too */
    rs_buf b = RS_BUF_INIT;
    int lossy = -1;
    CHECK_EQ_INT(dcm_charset_decode(NULL, DCM_VR_SH, (const uint8_t *)"AB\0", 3, &b, &lossy), RS_OK);
    CHECK_EQ_INT(b.len, 3);
    CHECK(memcmp(b.p, "AB\0", 3) == 0);
    CHECK_EQ_INT(lossy, 0);
    /* empty value */
    rs_buf_reset(&b);
    CHECK_EQ_INT(dcm_charset_decode(NULL, DCM_VR_SH, NULL, 0, &b, &lossy), RS_OK);
    CHECK_EQ_INT(b.len, 0);
    CHECK_EQ_INT(dcm_charset_decode(NULL, DCM_VR_SH, NULL, 1, &b, &lossy), RS_EINVAL);
    rs_buf_free(&b);
}

static void test_single_byte(void)
{
    CHECK_EQ_STR(dec("ISO_IR 100", DCM_VR_PN, "Buc^J\xe9r\xf4me"), "Buc^J\xc3\xa9r\xc3\xb4me");
    CHECK_EQ_INT(g_lossy, 0);
    CHECK_EQ_STR(dec("ISO_IR 100 ", DCM_VR_PN, "\xc4neas^R\xfc" "diger "),
                 "\xc3\x84neas^R\xc3\xbc" "diger ");
    /* Greek, Cyrillic, latin9 (euro), Thai */
    CHECK_EQ_STR(dec("ISO_IR 126", DCM_VR_PN, "\xc4\xe9\xef"), "\xce\x94\xce\xb9\xce\xbf");
    CHECK_EQ_STR(dec("ISO_IR 144", DCM_VR_PN, "\xbb\xee"), "\xd0\x9b\xd1\x8e");
    CHECK_EQ_STR(dec("ISO_IR 203", DCM_VR_LO, "5 \xa4"), "5 \xe2\x82\xac");
    CHECK_EQ_STR(dec("ISO_IR 166", DCM_VR_LO, "\xa1\xdf"), "\xe0\xb8\x81\xe0\xb8\xbf");
    CHECK_EQ_INT(g_lossy, 0);
    CHECK_EQ_STR(dec("ISO_IR 166", DCM_VR_LO, "\xdb"), "\xef\xbf\xbd");
    CHECK_EQ_INT(g_lossy, 1);
    /* a byte with no character in ISO 8859-3 */
    CHECK_EQ_STR(dec("ISO_IR 109", DCM_VR_LO, "a\xa5" "b"), "a\xef\xbf\xbd" "b");
    CHECK_EQ_INT(g_lossy, 1);
    /* ISO_IR 13: half-width katakana */
    CHECK_EQ_STR(dec("ISO_IR 13", DCM_VR_PN, "\xd4\xcf\xc0\xde"),
                 "\xef\xbe\x94\xef\xbe\x8f\xef\xbe\x80\xef\xbe\x9e");
}

static void test_japanese(void)
{
    /* PS3.5 H.3.1 (chrH31) */
    const char *h31 = "Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^"
                      "\x1b$B$?$m$&\x1b(B";
    const char *h31_utf8 = "Yamada^Tarou=\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e="
                           "\xe3\x82\x84\xe3\x81\xbe\xe3\x81\xa0^\xe3\x81\x9f\xe3\x82\x8d\xe3\x81\x86";
    CHECK_EQ_STR(dec("\\ISO 2022 IR 87", DCM_VR_PN, h31), h31_utf8);
    CHECK_EQ_INT(g_lossy, 0);
    CHECK_EQ_STR(dec("ISO 2022 IR 6\\ISO 2022 IR 87", DCM_VR_PN, h31), h31_utf8);

    /* PS3.5 H.3.2 (chrH32): ISO-IR 13 as the initial set, ESC ( J back to romaji */
    CHECK_EQ_STR(dec("ISO 2022 IR 13\\ISO 2022 IR 87", DCM_VR_PN,
                     "\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J="),
                 "\xef\xbe\x94\xef\xbe\x8f\xef\xbe\x80\xef\xbe\x9e^\xef\xbe\x80\xef\xbe\x9b"
                 "\xef\xbd\xb3=\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e=");

    /* JIS X 0212 (ISO 2022 IR 159), ESC $ ( D: 0x30 0x21 is U+4E02 */
    CHECK_EQ_STR(dec("\\ISO 2022 IR 87\\ISO 2022 IR 159", DCM_VR_LO,
                     "\x1b$(D\x30\x21\x1b(B\x1b$BO!\x1b(B"),
                 "\xe4\xb8\x82\xe8\x93\xae");
    CHECK_EQ_INT(g_lossy, 0);

    /* a JIS pair whose second byte is '=' (so, 0x24 0x3D) stays one character in a PN */
    CHECK_EQ_STR(dec("\\ISO 2022 IR 87", DCM_VR_PN, "\x1b$B$=\x1b(B"), "\xe3\x81\x9d");
    /* an odd byte left in a 94x94 run is undecodable */
    CHECK_EQ_STR(dec("\\ISO 2022 IR 87", DCM_VR_LO, "\x1b$B;\x1b(B"), "\xef\xbf\xbd");
    CHECK_EQ_INT(g_lossy, 1);

    /* Shift-JIS written under ISO_IR 13 (pydicom decodes it, so do we): TA = 0x83 0x5E */
    CHECK_EQ_STR(dec("ISO_IR 13", DCM_VR_PN, "\x83\x5e"), "\xe3\x82\xbf");
    /* ... but in a multi-valued VR 0x5C is the value delimiter, not a trail byte */
    CHECK_EQ_STR(dec("ISO_IR 13", DCM_VR_LO, "\x83\x5c"), "\xef\xbf\xbd\\");
    CHECK_EQ_INT(g_lossy, 1);
    CHECK_EQ_STR(dec("ISO_IR 13", DCM_VR_LT, "\x83\x5c"), "\xe3\x82\xbd");
}

static void test_korean_chinese(void)
{
    /* PS3.5 I.2 (chrI2) */
    CHECK_EQ_STR(dec("\\ISO 2022 IR 149", DCM_VR_PN,
                     "Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^"
                     "\x1b$)C\xb1\xe6\xb5\xbf"),
                 "Hong^Gildong=\xe6\xb4\xaa^\xe5\x90\x89\xe6\xb4\x9e=\xed\x99\x8d^"
                 "\xea\xb8\xb8\xeb\x8f\x99");
    CHECK_EQ_INT(g_lossy, 0);
    /* G1 stays designated across spaces, and is reset at CR LF (initial G1 of an empty first
     * term is the latin1 stand-in) */
    CHECK_EQ_STR(dec("\\ISO 2022 IR 149", DCM_VR_LT,
                     "\x1b$)C\xb1\xe8\xc8\xf1 \xc1\xdf\r\n\xb1"),
                 "\xea\xb9\x80\xed\x9d\xac \xec\xa4\x91\r\n\xc2\xb1");
    /* GB2312 (ISO 2022 IR 58), ESC $ ) A: the escape does not leak into the text */
    CHECK_EQ_STR(dec("\\ISO 2022 IR 58", DCM_VR_PN,
                     "Zhang^XiaoDong=\x1b$)A\xd5\xc5^\x1b$)A\xd0\xa1\xb6\xab="),
                 "Zhang^XiaoDong=\xe5\xbc\xa0^\xe5\xb0\x8f\xe4\xb8\x9c=");
    CHECK_EQ_INT(g_lossy, 0);
    /* GB18030 and GBK */
    CHECK_EQ_STR(dec("GB18030", DCM_VR_PN, "Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab="),
                 "Wang^XiaoDong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe4\xb8\x9c=");
    CHECK_EQ_STR(dec("GBK", DCM_VR_LO, "\xcd\xf5\\\xd0\xa1"), "\xe7\x8e\x8b\\\xe5\xb0\x8f");
    CHECK_EQ_INT(g_lossy, 0);
    CHECK_EQ_STR(dec("GB18030", DCM_VR_LO, "\xcd"), "\xef\xbf\xbd");
    CHECK_EQ_INT(g_lossy, 1);
}

static void test_escapes(void)
{
    /* switching G1 between two 96-sets and back at a delimiter */
    CHECK_EQ_STR(dec("ISO 2022 IR 100\\ISO 2022 IR 126", DCM_VR_PN, "\xe9\x1b-F\xe9^\xe9"),
                 "\xc3\xa9\xce\xb9^\xc3\xa9");
    CHECK_EQ_INT(g_lossy, 0);
    /* an unknown escape sequence: one U+FFFD, the text goes on */
    CHECK_EQ_STR(dec("\\ISO 2022 IR 87", DCM_VR_LO, "a\x1b$)Zb"), "a\xef\xbf\xbd" "b");
    CHECK_EQ_INT(g_lossy, 1);
    /* a cut-off escape sequence */
    CHECK_EQ_STR(dec("\\ISO 2022 IR 87", DCM_VR_LO, "a\x1b$"), "a\xef\xbf\xbd$");
    CHECK_EQ_INT(g_lossy, 1);
    /* a G1 set with nothing designated (first term is a G0 set) */
    CHECK_EQ_STR(dec("ISO 2022 IR 87", DCM_VR_LO, "\xe9"), "\xef\xbf\xbd");
    CHECK_EQ_INT(g_lossy, 1);
    /* CS and other non-text VRs ignore the character set */
    CHECK_EQ_STR(dec("ISO_IR 144", DCM_VR_CS, "\xbb"), "\xc2\xbb");
}

static void test_parse_warnings(void)
{
    dcm_charset cs;
    rs_err w;

    rs_err_clear(&w);
    CHECK_EQ_INT(dcm_charset_parse("ISO_IR 999", 10, &cs, &w), RS_OK);
    CHECK_EQ_INT(w.code, RS_EUNSUPPORTED);
    CHECK(strstr(w.msg, "ISO_IR 999") != NULL);
    CHECK_EQ_INT(cs.n, 1);
    /* behaves like the default repertoire */
    rs_buf b = RS_BUF_INIT;
    int lossy = -1;
    CHECK_EQ_INT(dcm_charset_decode(&cs, DCM_VR_PN, (const uint8_t *)"J\xe9r", 3, &b, &lossy), RS_OK);
    CHECK_EQ_STR((const char *)b.p, "J\xc3\xa9r");
    CHECK_EQ_INT(lossy, 0);
    rs_buf_free(&b);

    /* no warning sink: still fine */
    CHECK_EQ_INT(dcm_charset_parse("NONSENSE", 8, &cs, NULL), RS_OK);

    /* misspelt but recognisable */
    rs_err_clear(&w);
    CHECK_EQ_INT(dcm_charset_parse("ISO IR 100", 10, &cs, &w), RS_OK);
    CHECK_EQ_INT(w.code, RS_EFORMAT);
    CHECK(strstr(w.msg, "ISO_IR 100") != NULL);
    CHECK_EQ_STR(dec("ISO IR 100", DCM_VR_PN, "\xe9"), "\xc3\xa9");
    rs_err_clear(&w);
    CHECK_EQ_INT(dcm_charset_parse("\\ISO_2022_IR_87", 15, &cs, &w), RS_OK);
    CHECK_EQ_INT(w.code, RS_EFORMAT);
    CHECK_EQ_INT(cs.n, 2);
    CHECK_EQ_INT(cs.iso2022, 1);

    /* stand-alone sets take no extensions */
    rs_err_clear(&w);
    CHECK_EQ_INT(dcm_charset_parse("ISO_IR 192\\ISO 2022 IR 87", 25, &cs, &w), RS_OK);
    CHECK_EQ_INT(cs.n, 1);
    CHECK(w.code != RS_OK);
    rs_err_clear(&w);
    CHECK_EQ_INT(dcm_charset_parse("ISO 2022 IR 100\\ISO_IR 192", 26, &cs, &w), RS_OK);
    CHECK_EQ_INT(cs.n, 1);
    CHECK(w.code != RS_OK);

    /* well-formed values do not warn; padding is not significant */
    rs_err_clear(&w);
    CHECK_EQ_INT(dcm_charset_parse("ISO 2022 IR 13\\ISO 2022 IR 87 ", 30, &cs, &w), RS_OK);
    CHECK_EQ_INT(w.code, RS_OK);
    CHECK_EQ_INT(cs.n, 2);
    CHECK_EQ_INT(cs.iso2022, 1);
    CHECK_EQ_INT(dcm_charset_parse("ISO_IR 100\0", 11, &cs, &w), RS_OK);
    CHECK_EQ_INT(w.code, RS_OK);
    CHECK_EQ_INT(cs.n, 1);
    CHECK_EQ_INT(cs.iso2022, 0);

    /* more terms than fit */
    rs_err_clear(&w);
    const char *many = "\\ISO 2022 IR 87\\ISO 2022 IR 87\\ISO 2022 IR 87\\ISO 2022 IR 87"
                       "\\ISO 2022 IR 87\\ISO 2022 IR 87\\ISO 2022 IR 87\\ISO 2022 IR 87";
    CHECK_EQ_INT(dcm_charset_parse(many, strlen(many), &cs, &w), RS_OK);
    CHECK_EQ_INT(cs.n, DCM_CHARSET_MAX_TERMS);
    CHECK(w.code != RS_OK);
}

int main(int argc, char **argv)
{
    test_vectors(argc > 1 ? argv[1] : "tests/data/charset_vectors.tsv");
    test_utf8();
    test_default();
    test_single_byte();
    test_japanese();
    test_korean_chinese();
    test_escapes();
    test_parse_warnings();
    rs_buf_free(&g_out);
    return t_done();
}
