/*
 * test_dw_negotiate.c - the decisions behind WADO-RS transcoding and QIDO fuzzy matching, case by
 * case: Accept headers (quoted and bare parameters, q-values, lists, "any", single-part types that are
 * not offered) against stored syntaxes (native, lossless and lossy compressed) for frames and for
 * instances; and person-name fuzzy matching (prefixes, case, Latin-1 and Latin Extended-A accents,
 * Cyrillic case, wildcards, groups), with the non-matches that must stay non-matches.
 */
#include <string.h>

#include "http/fuzzy.h"
#include "http/transcode.h"
#include "t.h"

#define ELE "1.2.840.10008.1.2.1"
#define ILE "1.2.840.10008.1.2"
#define JLS "1.2.840.10008.1.2.4.80"
#define SV1 "1.2.840.10008.1.2.4.70"
#define JPB "1.2.840.10008.1.2.4.50"
#define OCTET "multipart/related; type=\"application/octet-stream\""

static dw_tc tc;
static char msg[512];
static const codec_desc *img; /* the stored image, NULL: not known (objects before the file is read) */
static const codec_desc grey8 = {.rows = 64, .cols = 64, .frames = 1, .spp = 1, .bits_allocated = 8, .bits_stored = 8,
                                 .high_bit = 7, .photometric = "MONOCHROME2"};
static const codec_desc grey16 = {.rows = 64, .cols = 64, .frames = 1, .spp = 1, .bits_allocated = 16,
                                  .bits_stored = 12, .high_bit = 11, .photometric = "MONOCHROME2"};

static int choose(const char *accept, dw_tc_what what, const char *stored)
{
    memset(&tc, 0, sizeof tc);
    msg[0] = 0;
    return dw_tc_choose(accept, what, stored, img, &tc, msg, sizeof msg);
}

static void frames(void)
{
    /* no Accept, * / *, octet-stream without a syntax: Explicit VR LE, decompressed when compressed */
    const char *dflt[] = {NULL, "", "*/*", OCTET, "multipart/related", OCTET "; transfer-syntax=" ELE};
    for (size_t i = 0; i < sizeof dflt / sizeof dflt[0]; i++) {
        CHECK_EQ_INT(choose(dflt[i], DW_TC_FRAMES, JLS), RS_OK);
        CHECK_EQ_STR(tc.ts, ELE);
        CHECK_EQ_STR(tc.part_type, "application/octet-stream");
        CHECK_EQ_INT(tc.convert, 1);
        CHECK_EQ_INT(choose(dflt[i], DW_TC_FRAMES, ILE), RS_OK); /* native: already little endian */
        CHECK_EQ_STR(tc.ts, ELE);
        CHECK_EQ_INT(tc.convert, 0);
    }
    /* as stored */
    CHECK_EQ_INT(choose(OCTET "; transfer-syntax=*", DW_TC_FRAMES, JLS), RS_OK);
    CHECK_EQ_STR(tc.ts, JLS);
    CHECK_EQ_INT(tc.convert, 0);
    CHECK_EQ_INT(choose("multipart/related; type=\"application/octet-stream\"; transfer-syntax=\"*\"", DW_TC_FRAMES,
                        "1.2.840.10008.1.2.2"), RS_OK);
    CHECK_EQ_STR(tc.ts, ELE); /* big-endian native frames come out little endian: labelled so */
    CHECK_EQ_INT(choose("multipart/related; type=image/jls", DW_TC_FRAMES, JLS), RS_OK);
    CHECK_EQ_STR(tc.part_type, "image/jls");
    CHECK_EQ_STR(tc.ts, JLS);
    CHECK_EQ_INT(choose("multipart/related; type=\"image/jpeg\"; transfer-syntax=" SV1, DW_TC_FRAMES, SV1), RS_OK);
    CHECK_EQ_INT(tc.convert, 0);
    /* compressed types other than the stored one: encoded when the image allows it */
    img = &grey16;
    CHECK_EQ_INT(choose("multipart/related; type=\"image/jpeg\"; transfer-syntax=" JPB, DW_TC_FRAMES, SV1),
                 RS_EUNSUPPORTED);
    CHECK(strstr(msg, "transfer-syntax=*") && strstr(msg, ELE) && strstr(msg, "image/jpeg") && strstr(msg, "8-bit"));
    CHECK_EQ_INT(choose("multipart/related; type=\"image/jpeg\"", DW_TC_FRAMES, ILE), RS_EUNSUPPORTED);
    CHECK_EQ_INT(choose("multipart/related; type=\"image/jp2\"", DW_TC_FRAMES, JLS), RS_OK);
    CHECK_EQ_STR(tc.ts, "1.2.840.10008.1.2.4.90");
    CHECK_EQ_INT(tc.convert, DW_TC_ENCODE);
    CHECK_EQ_INT(choose("multipart/related; type=\"image/jls\"", DW_TC_FRAMES, ILE), RS_OK);
    CHECK_EQ_STR(tc.ts, JLS); /* lossless first */
    CHECK_EQ_INT(choose("multipart/related; type=\"image/jls\"; transfer-syntax=1.2.840.10008.1.2.4.81", DW_TC_FRAMES,
                        ILE), RS_OK);
    CHECK_EQ_STR(tc.ts, "1.2.840.10008.1.2.4.81");
    CHECK_EQ_INT(choose("multipart/related; type=\"image/x-dicom-rle\"", DW_TC_FRAMES, JLS), RS_OK);
    CHECK_EQ_STR(tc.ts, "1.2.840.10008.1.2.5");
    CHECK_EQ_INT(choose("multipart/related; type=\"image/jpeg\", multipart/related; type=\"image/jp2\"; q=0.5",
                        DW_TC_FRAMES, ILE), RS_OK); /* 16-bit: JPEG baseline falls to the next range */
    CHECK_EQ_STR(tc.part_type, "image/jp2");
    CHECK_EQ_INT(choose("multipart/related; type=\"image/jpx\"", DW_TC_FRAMES, ILE), RS_EUNSUPPORTED);
    img = &grey8;
    CHECK_EQ_INT(choose("multipart/related; type=\"image/jpeg\"", DW_TC_FRAMES, ILE), RS_OK);
    CHECK_EQ_STR(tc.ts, JPB);
    CHECK_EQ_INT(tc.convert, DW_TC_ENCODE);
    CHECK_EQ_INT(choose("multipart/related; type=\"image/jpeg\"", DW_TC_FRAMES, SV1), RS_OK);
    CHECK_EQ_INT(tc.convert, DW_TC_STORED); /* stored in a syntax of that type: as is */
    img = NULL;
    CHECK_EQ_INT(choose(OCTET "; transfer-syntax=" JPB, DW_TC_FRAMES, JLS), RS_EUNSUPPORTED);
    /* a single-part type or JSON is not offered for frames */
    CHECK_EQ_INT(choose("application/octet-stream", DW_TC_FRAMES, ILE), RS_EUNSUPPORTED);
    CHECK_EQ_INT(choose("application/json", DW_TC_FRAMES, ILE), RS_EUNSUPPORTED);
    /* lists: first producible one by q, then order; q=0 is refusal */
    CHECK_EQ_INT(choose("multipart/related; type=\"image/jpx\", " OCTET "; transfer-syntax=*", DW_TC_FRAMES, JLS), RS_OK);
    CHECK_EQ_STR(tc.ts, JLS); /* no JPEG 2000 Part 2 encoder: the next range */
    CHECK_EQ_INT(choose(OCTET "; transfer-syntax=" ELE "; q=0.4, multipart/related; type=\"image/jls\"; q=0.9",
                        DW_TC_FRAMES, JLS), RS_OK);
    CHECK_EQ_STR(tc.part_type, "image/jls");
    CHECK_EQ_INT(choose(OCTET "; q=0", DW_TC_FRAMES, JLS), RS_EUNSUPPORTED);
    /* a 64-character UID survives the parser */
    const char *longuid = "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.2";
    CHECK_EQ_INT((int)strlen(longuid), 64);
    char a[256];
    snprintf(a, sizeof a, OCTET "; transfer-syntax=%s", longuid);
    CHECK_EQ_INT(choose(a, DW_TC_FRAMES, longuid), RS_OK);
    CHECK_EQ_STR(tc.ts, longuid);
}

static void objects(void)
{
    const char *stored[] = {NULL, "", "*/*", "multipart/related; type=\"application/dicom\"",
                            "multipart/related; type=\"application/dicom\"; transfer-syntax=*",
                            "multipart/related; type=application/dicom; transfer-syntax=" SV1};
    for (size_t i = 0; i < sizeof stored / sizeof stored[0]; i++) {
        CHECK_EQ_INT(choose(stored[i], DW_TC_OBJECTS, SV1), RS_OK);
        CHECK_EQ_STR(tc.ts, SV1);
        CHECK_EQ_INT(tc.convert, 0);
    }
    CHECK_EQ_INT(choose("multipart/related; type=\"application/dicom\"; transfer-syntax=" ELE, DW_TC_OBJECTS, SV1),
                 RS_OK);
    CHECK_EQ_STR(tc.ts, ELE);
    CHECK_EQ_INT(tc.convert, 1);
    CHECK_EQ_INT(choose("multipart/related; type=\"application/dicom\"; transfer-syntax=" ILE, DW_TC_OBJECTS, ELE),
                 RS_OK);
    CHECK_EQ_INT(tc.convert, 1);
    /* encoded: assumed possible before the file is read, checked against the image after */
    CHECK_EQ_INT(choose("multipart/related; type=\"application/dicom\"; transfer-syntax=" JPB, DW_TC_OBJECTS, SV1),
                 RS_OK);
    CHECK_EQ_INT(tc.convert, DW_TC_ENCODE);
    img = &grey16;
    CHECK_EQ_INT(choose("multipart/related; type=\"application/dicom\"; transfer-syntax=" JPB, DW_TC_OBJECTS, SV1),
                 RS_EUNSUPPORTED);
    CHECK(strstr(msg, ELE) && strstr(msg, ILE " ") && strstr(msg, "transfer-syntax=*") && strstr(msg, SV1));
    CHECK_EQ_INT(choose("multipart/related; type=\"application/dicom\"; transfer-syntax=" JPB ", "
                        "multipart/related; type=\"application/dicom\"; transfer-syntax=" JLS "; q=0.5",
                        DW_TC_OBJECTS, SV1), RS_OK);
    CHECK_EQ_STR(tc.ts, JLS);
    CHECK_EQ_INT(choose("multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.91",
                        DW_TC_OBJECTS, SV1), RS_EUNSUPPORTED); /* no lossy JPEG 2000 encoder */
    img = NULL;
    CHECK_EQ_INT(choose("application/json", DW_TC_OBJECTS, SV1), RS_EUNSUPPORTED);
    CHECK_EQ_INT(choose("multipart/related; type=\"application/octet-stream\"", DW_TC_OBJECTS, SV1), RS_EUNSUPPORTED);
}

static void fuzzy(void)
{
    const char *yes[][2] = {
        {"joh", "Doe^John"}, {"JOHN", "Doe^John"}, {"doe^jo", "Doe^John"}, {"jo doe", "Doe^John"},
        {"muller", "M\xc3\xbcller^Anna"}, {"M\xc3\x9cLL", "M\xc3\xbcller^Anna"}, {"elo", "H\xc3\xa9l\xc3\xa8ne^\xc3\x89lodie"},
        {"lukasz", "\xc5\x81ukasz^W\xc3\xb3jcik"}, {"wojc", "\xc5\x81ukasz^W\xc3\xb3jcik"},
        {"\xd0\xb8\xd0\xb2", "\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd\xd0\xbe\xd0\xb2^\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd"},
        {"j?hn", "Doe^John"}, {"d*", "Doe^John"}, {"o'br", "O'Brien^Pat"}, {"jean", "Dupont^Jean-Pierre"},
        {"pierre", "Dupont^Jean-Pierre"}, {"yamada", "Yamada^Tarou=\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e"},
        {"\xe5\xb1\xb1\xe7\x94\xb0", "Yamada^Tarou=\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e"}, {"", "Doe^John"},
        {"*", "Doe^John"}};
    const char *no[][2] = {{"ohn", "Doe^John"}, {"jon", "Doe^John"}, {"smith", "Doe^John"}, {"doe^jx", "Doe^John"},
                           {"johnny", "Doe^John"}, {"mueller", "M\xc3\xbcller^Anna"}, {"j?x", "Doe^John"},
                           {"anna", ""}};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!dw_fuzzy_match(yes[i][0], yes[i][1])) {
            fprintf(stderr, "fuzzy: \"%s\" should match \"%s\"\n", yes[i][0], yes[i][1]);
            CHECK(0);
        } else {
            CHECK(1);
        }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (dw_fuzzy_match(no[i][0], no[i][1])) {
            fprintf(stderr, "fuzzy: \"%s\" should not match \"%s\"\n", no[i][0], no[i][1]);
            CHECK(0);
        } else {
            CHECK(1);
        }
}

int main(void)
{
    frames();
    objects();
    fuzzy();
    return t_done();
}
