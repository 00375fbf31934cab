/*
 * test_dict.c - the data dictionary: known facts from the standard / pydicom's tables, the
 * generic rules, private lookups, and a sweep showing every generated entry is reachable
 * through the public API (which also proves the generated tables are sorted as dict.c
 * assumes).
 */
#include "dicom/dict.h"
#include "dicom/vr.h"
#include "t.h"

#include <stdint.h>
#include <string.h>

/* The generated tables, declared as dict.c declares them, for the exhaustive sweeps. */
#include "dicom/dict_table.h"

/* NULL-safe accessors, so a missing entry fails a CHECK instead of crashing the test. */
static const char *kw_of(uint32_t tag)
{
    const dcm_dict_entry *e = dcm_dict_lookup(tag);
    return e ? e->keyword : NULL;
}

static long long tag_of(const char *keyword)
{
    const dcm_dict_entry *e = dcm_dict_by_keyword(keyword);
    return e ? (long long)e->tag : -1;
}

static int vrs_are(const dcm_dict_entry *e, uint16_t a, uint16_t b, uint16_t c)
{
    return e && e->vr[0] == a && e->vr[1] == b && e->vr[2] == c;
}

static void test_public(void)
{
    const dcm_dict_entry *e = dcm_dict_lookup(0x00100010);
    CHECK(e != NULL);
    if (e) {
        CHECK_EQ_INT(e->tag, 0x00100010);
        CHECK_EQ_INT(e->mask, 0xffffffffu);
        CHECK(vrs_are(e, DCM_VR_PN, 0, 0));
        CHECK_EQ_STR(e->vm, "1");
        CHECK_EQ_STR(e->keyword, "PatientName");
        CHECK_EQ_STR(e->name, "Patient's Name");
        CHECK_EQ_INT(e->retired, 0);
    }

    CHECK(vrs_are(dcm_dict_lookup(0x7fe00010), DCM_VR_OB, DCM_VR_OW, 0));
    CHECK_EQ_STR(kw_of(0x7fe00010), "PixelData"); /* not VariablePixelData */
    e = dcm_dict_lookup(0x00280106);
    CHECK(vrs_are(e, DCM_VR_US, DCM_VR_SS, 0));
    CHECK_EQ_STR(e ? e->keyword : NULL, "SmallestImagePixelValue");
    /* The only three-way ambiguity in the standard. */
    CHECK(vrs_are(dcm_dict_lookup(0x00281200), DCM_VR_US, DCM_VR_SS, DCM_VR_OW));

    /* Item and delimiters have no VR at all ('NONE' in pydicom). */
    CHECK(vrs_are(dcm_dict_lookup(0xfffee000), 0, 0, 0));
    CHECK(vrs_are(dcm_dict_lookup(0xfffee0dd), 0, 0, 0));

    /* Retired. */
    e = dcm_dict_lookup(0x00080010);
    CHECK_EQ_STR(e ? e->keyword : NULL, "RecognitionCode");
    CHECK_EQ_INT(e ? e->retired : -1, 1);
    e = dcm_dict_lookup(0x00080020);
    CHECK_EQ_INT(e ? e->retired : -1, 0);

    /* Group lengths with fixed entries keep their own names. */
    CHECK_EQ_STR(kw_of(0x00020000), "FileMetaInformationGroupLength");
    CHECK_EQ_STR(kw_of(0x00000000), "CommandGroupLength");

    /* Unknown. */
    CHECK(dcm_dict_lookup(0x00100011) == NULL);
    CHECK(dcm_dict_lookup(0x00101111) == NULL);
    CHECK(dcm_dict_lookup(0x00080001) != NULL); /* retired LengthToEnd is still known */
}

static void test_repeaters(void)
{
    const dcm_dict_entry *e = dcm_dict_lookup(0x60023000);
    CHECK(e != NULL);
    if (e) {
        CHECK_EQ_STR(e->keyword, "OverlayData");
        CHECK_EQ_INT(e->tag, 0x60003000);
        CHECK_EQ_INT(e->mask, 0xff00ffffu);
        CHECK(vrs_are(e, DCM_VR_OB, DCM_VR_OW, 0));
        CHECK_EQ_INT(e->retired, 0);
    }
    CHECK(dcm_dict_lookup(0x60003000) == e);
    CHECK(dcm_dict_lookup(0x601e3000) == e);
    CHECK(vrs_are(dcm_dict_lookup(0x60000010), DCM_VR_US, 0, 0)); /* OverlayRows */
    /* An odd 60xx group is private: not an overlay. */
    CHECK(dcm_dict_lookup(0x60013000) == NULL);

    /* Curves (50xx), all retired. */
    e = dcm_dict_lookup(0x50040005);
    CHECK_EQ_STR(e ? e->keyword : NULL, "CurveDimensions");
    CHECK(vrs_are(e, DCM_VR_US, 0, 0));
    CHECK_EQ_INT(e ? e->retired : -1, 1);
    e = dcm_dict_lookup(0x50003000);
    CHECK_EQ_STR(e ? e->keyword : NULL, "CurveData");
    CHECK(vrs_are(e, DCM_VR_OB, DCM_VR_OW, 0));

    /* Other mask shapes: 'xxxx' element, 'xx' in the element. */
    CHECK_EQ_STR(kw_of(0x10101234), "ZonalMap");
    CHECK_EQ_STR(kw_of(0x002031ab), "SourceImageIDs");
    CHECK_EQ_STR(kw_of(0x7f020010), "VariablePixelData");
}

static void test_generic(void)
{
    const dcm_dict_entry *e = dcm_dict_lookup(0x00090000);
    CHECK(e != NULL);
    if (e) {
        CHECK(vrs_are(e, DCM_VR_UL, 0, 0));
        CHECK_EQ_STR(e->keyword, "GenericGroupLength");
        CHECK_EQ_STR(e->name, "Generic Group Length");
    }
    CHECK(dcm_dict_lookup(0x00080000) == e);
    CHECK(dcm_dict_lookup(0x60020000) == e); /* no repeater for element 0 */
    CHECK(dcm_dict_lookup(0xffff0000) == e);

    e = dcm_dict_lookup(0x00290010);
    CHECK(e != NULL);
    if (e) {
        CHECK(vrs_are(e, DCM_VR_LO, 0, 0));
        CHECK_EQ_STR(e->name, "Private Creator");
    }
    CHECK(dcm_dict_lookup(0x002900ff) == e);
    CHECK(dcm_dict_lookup(0x00010010) == e); /* illegal odd group, same rules */
    CHECK(dcm_dict_lookup(0xffff0010) == e);
    CHECK(dcm_dict_lookup(0x00280010) != e);  /* even group: Rows */
    CHECK(dcm_dict_lookup(0x0029000f) == NULL); /* reserved */
    CHECK(dcm_dict_lookup(0x00290100) == NULL); /* private data with block 01 */
    CHECK(dcm_dict_lookup(0x00291010) == NULL); /* private data: needs the creator */
}

static void test_private(void)
{
    const dcm_dict_entry *e = dcm_dict_lookup_private("SIEMENS CSA HEADER", 0x00291010);
    CHECK(e != NULL);
    if (e) {
        CHECK(vrs_are(e, DCM_VR_OB, 0, 0));
        CHECK_EQ_STR(e->name, "CSA Image Header Info");
        CHECK_EQ_STR(e->vm, "1");
        CHECK_EQ_INT(e->mask, 0xffff00ffu);
    }
    /* The block byte is whatever the file reserved: 0x11 is the same element. */
    CHECK(dcm_dict_lookup_private("SIEMENS CSA HEADER", 0x00291110) == e);
    CHECK(dcm_dict_lookup_private("SIEMENS CSA HEADER", 0x0029ff10) == e);
    /* LO padding. */
    CHECK(dcm_dict_lookup_private("SIEMENS CSA HEADER ", 0x00291110) == e);
    CHECK(dcm_dict_lookup_private("SIEMENS CSA HEADER   ", 0x00291110) == e);
    CHECK(dcm_dict_lookup_private(" SIEMENS CSA HEADER", 0x00291110) == e);
    {
        const char padded[] = "SIEMENS CSA HEADER\0\0"; /* NUL-padded value */
        CHECK(dcm_dict_lookup_private(padded, 0x00291110) == e);
    }
    e = dcm_dict_lookup_private("SIEMENS CSA HEADER", 0x00291020);
    CHECK_EQ_STR(e ? e->name : NULL, "CSA Series Header Info");

    /* Near-misses of the creator and of the tag. */
    CHECK(dcm_dict_lookup_private("SIEMENS CSA HEADE", 0x00291010) == NULL);
    CHECK(dcm_dict_lookup_private("SIEMENS CSA HEADERS", 0x00291010) == NULL);
    CHECK(dcm_dict_lookup_private("siemens csa header", 0x00291010) == NULL);
    CHECK(dcm_dict_lookup_private("SIEMENS CSA HEADER", 0x00271010) == NULL);
    CHECK(dcm_dict_lookup_private("SIEMENS CSA HEADER", 0x00291011) == NULL);
    CHECK(dcm_dict_lookup_private("SIEMENS CSA HEADER", 0x00290010) == NULL); /* the slot */
    CHECK(dcm_dict_lookup_private("", 0x00291010) == NULL);
    CHECK(dcm_dict_lookup_private("   ", 0x00291010) == NULL);
    CHECK(dcm_dict_lookup_private(NULL, 0x00291010) == NULL);

    /* 'ggggeeee': an exact key, block 00 included. */
    e = dcm_dict_lookup_private("DicomUtils 20100512", 0x00090001);
    CHECK(vrs_are(e, DCM_VR_SQ, 0, 0));
    CHECK(dcm_dict_lookup_private("DicomUtils 20100512", 0x00091001) == NULL);
    /* 'ggxxxxee': any block in any 60xx group. */
    e = dcm_dict_lookup_private("PAPYRUS 3.0", 0x60031010);
    CHECK_EQ_STR(e ? e->name : NULL, "Overlay Rows");
    CHECK(vrs_are(e, DCM_VR_US, 0, 0));
    CHECK(dcm_dict_lookup_private("PAPYRUS 3.0", 0x60ff2210) == e);
    CHECK(dcm_dict_lookup_private("PAPYRUS 3.0", 0x61031010) == NULL);
    /* pydicom spells this VR 'OB_OW'. */
    CHECK(vrs_are(dcm_dict_lookup_private("TOSHIBA_MEC_OT3", 0x70191080), DCM_VR_OB, DCM_VR_OW,
                  0));
    /* Private entries are not public. */
    CHECK(dcm_dict_lookup(0x70191080) == NULL);
}

static void test_keywords(void)
{
    const dcm_dict_entry *e = dcm_dict_by_keyword("PatientName");
    CHECK(e != NULL);
    CHECK(e == dcm_dict_lookup(0x00100010));
    CHECK_EQ_INT(e ? e->tag : 0, 0x00100010);
    CHECK_EQ_STR(kw_of(0x7fe00010), "PixelData");
    CHECK_EQ_INT(tag_of("PixelData"), 0x7fe00010);
    CHECK_EQ_INT(tag_of("StudyInstanceUID"), 0x0020000d);
    e = dcm_dict_by_keyword("OverlayData");
    CHECK(e != NULL && e == dcm_dict_lookup(0x60003000));
    CHECK(dcm_dict_by_keyword("patientname") == NULL);
    CHECK(dcm_dict_by_keyword("PatientNam") == NULL);
    CHECK(dcm_dict_by_keyword("PatientNameX") == NULL);
    CHECK(dcm_dict_by_keyword("") == NULL);
    CHECK(dcm_dict_by_keyword(NULL) == NULL);
    CHECK(dcm_dict_by_keyword("GenericGroupLength") == NULL); /* generic, not indexed */
}

static void test_counts(void)
{
    CHECK(dcm_dict_public_count() >= 4900);
    CHECK(dcm_dict_private_count() >= 9000);
    CHECK_EQ_INT(dcm_dict_public_count(), dcm_dict_pub_n + dcm_dict_rep_n);
    CHECK_EQ_INT(dcm_dict_private_count(), dcm_dict_priv_n);
    CHECK_EQ_INT(dcm_dict_creator_first[dcm_dict_creator_n], dcm_dict_priv_n);
}

/*
 * Every entry must be found by its own tag and keyword.  Failures are counted rather
 * than CHECKed one by one, so a broken table gives a few lines, not thousands.
 */
static void test_sweep(void)
{
    unsigned bad_tag = 0, bad_kw = 0, no_kw = 0, bad_vr = 0;
    for (unsigned i = 0; i < dcm_dict_pub_n; i++) {
        const dcm_dict_entry *e = &dcm_dict_pub_tab[i];
        if (dcm_dict_lookup(e->tag) != e)
            bad_tag++;
        if (!e->keyword[0])
            no_kw++; /* six retired entries that pydicom names but gives no keyword */
        else if (dcm_dict_by_keyword(e->keyword) != e)
            bad_kw++;
        for (int k = 0; k < 3 && e->vr[k]; k++)
            if (!dcm_vr_is_valid(e->vr[k]))
                bad_vr++;
    }
    CHECK_EQ_INT(bad_tag, 0);
    CHECK_EQ_INT(bad_kw, 0);
    CHECK(no_kw < 10);
    CHECK_EQ_INT(bad_vr, 0);

    /* Repeaters: fill the 'x' nibbles with 2, an even group no fixed entry claims. */
    bad_tag = bad_kw = 0;
    for (unsigned i = 0; i < dcm_dict_rep_n; i++) {
        const dcm_dict_entry *e = &dcm_dict_rep_tab[i];
        if (dcm_dict_lookup(e->tag | (0x22222222u & ~e->mask)) != e)
            bad_tag++;
        if (dcm_dict_by_keyword(e->keyword) != e)
            bad_kw++;
    }
    CHECK_EQ_INT(bad_tag, 0);
    CHECK_EQ_INT(bad_kw, 0);

    /* Private: creators strictly sorted, each entry found under its creator with the
     * wildcard bytes set to something other than 0. */
    unsigned bad_order = 0;
    bad_tag = bad_vr = 0;
    for (unsigned c = 0; c < dcm_dict_creator_n; c++) {
        if (c > 0 && strcmp(dcm_dict_creator_tab[c - 1], dcm_dict_creator_tab[c]) >= 0)
            bad_order++;
        for (unsigned i = dcm_dict_creator_first[c]; i < dcm_dict_creator_first[c + 1]; i++) {
            const dcm_dict_entry *e = &dcm_dict_priv_tab[i];
            uint32_t tag = e->tag | (0x00011100u & ~e->mask);
            if (dcm_dict_lookup_private(dcm_dict_creator_tab[c], tag) != e)
                bad_tag++;
            for (int k = 0; k < 3 && e->vr[k]; k++)
                if (!dcm_vr_is_valid(e->vr[k]))
                    bad_vr++;
        }
    }
    CHECK_EQ_INT(bad_order, 0);
    CHECK_EQ_INT(bad_tag, 0);
    CHECK_EQ_INT(bad_vr, 0);
}

int main(void)
{
    test_public();
    test_repeaters();
    test_generic();
    test_private();
    test_keywords();
    test_counts();
    test_sweep();
    fprintf(stderr, "dict: %u public (incl. %u repeaters), %u private under %u creators\n",
            dcm_dict_public_count(), dcm_dict_rep_n, dcm_dict_private_count(),
            dcm_dict_creator_n);
    return t_done();
}
