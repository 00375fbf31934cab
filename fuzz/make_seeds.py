#!/usr/bin/python3
"""make_seeds.py - (re)build the seed corpus of the reader fuzzer in fuzz/seeds/.

    /usr/bin/python3 fuzz/make_seeds.py

Takes a selection of the small files pydicom ships as test data (< 40 KB each) and adds
hand-made edge cases the reader has dedicated code for. Deterministic: running it twice
gives the same files, so the committed corpus only changes when this script does.
Needs python3-pydicom (Debian) for the test files and a few of the hand-made cases.
"""
import os
import shutil
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "seeds")
DATA = "/usr/lib/python3/dist-packages/pydicom/data"
MAX_FILE = 40 * 1024
MAX_TOTAL = 1024 * 1024

# Picked for variety of syntax and structure, not size: every syntax the reader treats
# differently, sequences (nested, private, UN), truncations, odd lengths, no meta.
PICKS = [
    "test_files/MR_small.dcm",                     # explicit LE, pixel data
    "test_files/MR_small_bigendian.dcm",           # explicit BE
    "test_files/MR_small_implicit.dcm",            # implicit LE
    "test_files/MR_truncated.dcm",                 # cut in the pixel data
    "test_files/MR_small_RLE.dcm",                 # encapsulated
    "test_files/MR_small_jpeg_ls_lossless.dcm",
    "test_files/MR_small_jp2klossless.dcm",
    "test_files/badVR.dcm",                        # invalid VR in an explicit file
    "test_files/rtdose.dcm",
    "test_files/rtdose_expb.dcm",
    "test_files/rtdose_rle_1frame.dcm",
    "test_files/rtdose_1frame.dcm",
    "test_files/rtdose_expb_1frame.dcm",
    "test_files/test-SR.dcm",                      # deep SR content sequences
    "test_files/image_dfl.dcm",                    # deflated explicit LE
    "test_files/SC_rgb_rle_32bit_2frame.dcm",
    "test_files/SC_rgb_jpeg_gdcm.dcm",
    "test_files/SC_rgb_jpeg_dcmtk.dcm",
    "test_files/SC_rgb_dcmtk_+eb+cr.dcm",
    "test_files/693_J2KI.dcm",
    "test_files/JPEG2000-embedded-sequence-delimiter.dcm",
    "test_files/SC_rgb_small_odd.dcm",             # odd-sized pixel data
    "test_files/SC_rgb_small_odd_jpeg.dcm",
    "test_files/reportsi.dcm",
    "test_files/reportsi_with_empty_number_tags.dcm",
    "test_files/rtplan.dcm",
    "test_files/rtplan_truncated.dcm",
    "test_files/rtstruct.dcm",
    "test_files/UN_sequence.dcm",                  # UN sequence with implicit items
    "test_files/priv_SQ.dcm",                      # private sequence
    "test_files/nested_priv_SQ.dcm",
    "test_files/ExplVR_BigEndNoMeta.dcm",          # raw datasets without meta
    "test_files/ExplVR_LitEndNoMeta.dcm",
    "test_files/no_meta_group_length.dcm",
    "test_files/meta_missing_tsyntax.dcm",
    "test_files/empty_charset_LEI.dcm",
    "charset_files/chrH31.dcm",                    # ISO 2022 Japanese
    "charset_files/chrJapMultiExplicitIR6.dcm",
    "charset_files/chrKoreanMulti.dcm",
    "charset_files/chrX1.dcm",                     # UTF-8
    "charset_files/chrArab.dcm",
    "charset_files/chrRuss.dcm",
    "charset_files/chrSQEncoding.dcm",             # charset inside a sequence item
    "charset_files/chrFrenMulti.dcm",
]

# ---- raw encoders -------------------------------------------------------------------------

LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
UNDEF = 0xFFFFFFFF
EXPL_LE = b"1.2.840.10008.1.2.1\0"
IMPL_LE = b"1.2.840.10008.1.2\0"
EXPL_BE = b"1.2.840.10008.1.2.2\0"
DEFL_LE = b"1.2.840.10008.1.2.1.99"
RLE = b"1.2.840.10008.1.2.5\0"


def pad(v, c=b" "):
    return v + c if len(v) % 2 else v


def el(tag, vr, value, explicit=True, be=False, length=None):
    """One element; value is bytes (already encoded), length overrides (e.g. UNDEF)."""
    g, e = tag >> 16, tag & 0xFFFF
    o = ">" if be else "<"
    n = len(value) if length is None else length
    if not explicit:
        return struct.pack(o + "HHI", g, e, n) + value
    if vr in LONG_VRS:
        return struct.pack(o + "HH", g, e) + vr + b"\0\0" + struct.pack(o + "I", n) + value
    return struct.pack(o + "HH", g, e) + vr + struct.pack(o + "H", n) + value


def item(body, undefined=False, be=False):
    o = ">" if be else "<"
    if undefined:
        return struct.pack(o + "HHI", 0xFFFE, 0xE000, UNDEF) + body + struct.pack(o + "HHI", 0xFFFE, 0xE00D, 0)
    return struct.pack(o + "HHI", 0xFFFE, 0xE000, len(body)) + body


def seq_delim(be=False):
    return struct.pack((">" if be else "<") + "HHI", 0xFFFE, 0xE0DD, 0)


def meta(ts_uid, sop_class=b"1.2.840.10008.5.1.4.1.1.7\0", sop_inst=b"1.2.3.4.5.6.7.8.9\0"):
    body = (el(0x00020001, b"OB", b"\0\1") + el(0x00020002, b"UI", sop_class) +
            el(0x00020003, b"UI", sop_inst) + el(0x00020010, b"UI", pad(ts_uid, b"\0")) +
            el(0x00020012, b"UI", b"1.2.826.0.1.3680043.10.1449.1\0"))
    return el(0x00020000, b"UL", struct.pack("<I", len(body))) + body


def part10(ts_uid, dataset):
    return b"\0" * 128 + b"DICM" + meta(ts_uid) + dataset


def patient(explicit=True, be=False):
    return (el(0x00080016, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0", explicit, be) +
            el(0x00080018, b"UI", b"1.2.3.4.5.6.7.8.9\0", explicit, be) +
            el(0x00100010, b"PN", b"Doe^Jane", explicit, be) +
            el(0x00100020, b"LO", b"ID42", explicit, be))


def hand_made():
    seeds = {}
    us = lambda v, be=False: struct.pack(">H" if be else "<H", v)

    # nested undefined-length sequences, undefined-length items, 3 levels deep, explicit LE
    inner = el(0x00080100, b"SH", b"T-D1100 ") + el(0x00080102, b"SH", b"SRT ")
    lvl2 = el(0x0040A043, b"SQ", item(inner, True) + seq_delim(), length=UNDEF)
    lvl1 = el(0x0040A730, b"SQ", item(el(0x0040A010, b"CS", b"CONTAINS") + lvl2, True) +
              item(el(0x0040A040, b"CS", b"TEXT") + el(0x0040A160, b"UT", b"hello"), False) + seq_delim(),
              length=UNDEF)
    seeds["hm_nested_undef_sq.dcm"] = part10(EXPL_LE, patient() + lvl1)

    # the same nesting, implicit VR
    inner_i = el(0x00080100, b"", b"T-D1100 ", False) + el(0x00080102, b"", b"SRT ", False)
    lvl2_i = el(0x0040A043, b"", item(inner_i, True) + seq_delim(), False, length=UNDEF)
    lvl1_i = el(0x0040A730, b"", item(el(0x0040A010, b"", b"CONTAINS", False) + lvl2_i, True) + seq_delim(),
                False, length=UNDEF)
    seeds["hm_nested_undef_sq_implicit.dcm"] = part10(IMPL_LE, patient(False) + lvl1_i)

    # UN with undefined length: a sequence whose items are implicit VR LE (CP-246), known and private tag
    un_items = item(el(0x00080100, b"", b"121322", False) + el(0x00080104, b"", b"Source image ", False), True)
    priv = (el(0x00090010, b"LO", b"ACME 1.0") +
            el(0x00091001, b"UN", item(el(0x00100010, b"", b"Nested^Name ", False), True) + seq_delim(),
               length=UNDEF))
    seeds["hm_un_undef_len.dcm"] = part10(EXPL_LE, patient() + priv +
                                         el(0x00081140, b"UN", un_items + seq_delim(), length=UNDEF))

    # UN with a defined length for a known tag (read as its dictionary VR) and for an unknown one
    seeds["hm_un_defined.dcm"] = part10(EXPL_LE, patient() + el(0x00280010, b"UN", us(64)) +
                                        el(0x00280011, b"UN", us(64)) + el(0x00331234, b"UN", b"\1\2\3\4"))

    # explicit big endian with numbers, sequences and OW pixel data
    be_ds = (el(0x00080016, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0", True, True) +
             el(0x00280002, b"US", us(1, True), True, True) +
             el(0x00280010, b"US", us(2, True), True, True) + el(0x00280011, b"US", us(2, True), True, True) +
             el(0x00280100, b"US", us(16, True), True, True) + el(0x00280103, b"US", us(1, True), True, True) +
             el(0x00281050, b"DS", b"40\\400 ", True, True) +
             el(0x00081140, b"SQ", item(el(0x00081150, b"UI", b"1.2.3\0", True, True), False, True),
                True, True) +
             el(0x7FE00010, b"OW", struct.pack(">4H", 1, 2, 0xFFFF, 0x8000), True, True))
    seeds["hm_big_endian.dcm"] = part10(EXPL_BE, be_ds)

    # deflated explicit LE (raw deflate, no zlib header) with a sequence inside
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    dfl = co.compress(patient() + lvl1) + co.flush()
    seeds["hm_deflated.dcm"] = part10(DEFL_LE, pad(dfl, b"\0"))
    # the same, with the deflate stream cut short
    seeds["hm_deflated_cut.dcm"] = part10(DEFL_LE, dfl[: len(dfl) // 2])

    # encapsulated pixel data with a basic offset table, two frames, odd fragment
    frames = [b"\xff\xd8" + b"\x11" * 9 + b"\xff\xd9", b"\xff\xd8" + b"\x22" * 20 + b"\xff\xd9"]
    bot = struct.pack("<2I", 0, 8 + len(frames[0]))
    px = item(bot) + b"".join(item(fr) for fr in frames) + seq_delim()
    img = (patient() + el(0x00280002, b"US", us(1)) + el(0x00280008, b"IS", b"2 ") +
           el(0x00280010, b"US", us(4)) + el(0x00280011, b"US", us(4)) + el(0x00280100, b"US", us(8)) +
           el(0x7FE00010, b"OB", px, length=UNDEF))
    seeds["hm_encaps_bot.dcm"] = part10(RLE, img)
    # empty offset table, no sequence delimiter (file ends)
    seeds["hm_encaps_nodelim.dcm"] = part10(RLE, patient() + el(0x7FE00010, b"OB", item(b"") + item(b"\1\2\3"),
                                                                 length=UNDEF))

    # raw datasets without preamble or meta, in the three uncompressed syntaxes
    seeds["hm_raw_implicit.dcm"] = patient(False) + el(0x00280010, b"", us(8), False)
    seeds["hm_raw_explicit.dcm"] = patient() + el(0x00280010, b"US", us(8))
    seeds["hm_raw_big_endian.dcm"] = patient(True, True) + el(0x00280010, b"US", us(8, True), True, True)
    # a command set (group 0000) as sent over DIMSE, implicit
    cmd = el(0x00000002, b"", b"1.2.840.10008.1.1\0", False) + el(0x00000100, b"", us(0x30), False)
    seeds["hm_raw_command.dcm"] = el(0x00000000, b"", struct.pack("<I", len(cmd)), False) + cmd

    # DICM without preamble; meta that lies (says explicit, data implicit); group lengths
    seeds["hm_no_preamble.dcm"] = b"DICM" + meta(EXPL_LE) + patient()
    seeds["hm_meta_lies.dcm"] = part10(EXPL_LE, patient(False))
    gl_body = el(0x00100010, b"PN", b"A^B ") + el(0x00100020, b"LO", b"X ")
    seeds["hm_group_length.dcm"] = part10(EXPL_LE, el(0x00100000, b"UL", struct.pack("<I", len(gl_body))) + gl_body)
    # duplicates, out of order, stray delimiter, odd length, trailing garbage
    messy = (el(0x00100020, b"LO", b"B") + el(0x00100010, b"PN", b"X") + el(0x00100020, b"LO", b"C ") +
             struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + el(0x00080060, b"CS", b"MR") + b"\0\0\0")
    seeds["hm_messy.dcm"] = part10(EXPL_LE, messy)
    # private creator + private elements, defined-length SQ with defined-length items
    pr = (el(0x00290010, b"LO", b"SIEMENS CSA HEADER") + el(0x00291008, b"CS", b"IMAGE NUM 4 ") +
          el(0x00291010, b"OB", b"SV10\4\3\2\1") +
          el(0x00291020, b"SQ", item(el(0x00100010, b"PN", b"In^Item ")) + item(b"")))
    seeds["hm_private.dcm"] = part10(EXPL_LE, patient() + pr)
    # text in a non-default character set with ISO 2022 escapes, and multi-valued numbers
    cs = (el(0x00080005, b"CS", b"\\ISO 2022 IR 87") +
          el(0x00100010, b"PN", b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B ") +
          el(0x00181310, b"US", struct.pack("<4H", 0, 64, 64, 0)) +
          el(0x00200037, b"DS", b"1\\0\\0\\0\\1\\0 ") + el(0x00189089, b"FD", struct.pack("<3d", 0.5, -1e300, 0)) +
          el(0x00080054, b"AE", b"STORE_SCP ") + el(0x00209165, b"AT", struct.pack("<2H", 0x0020, 0x9056)))
    seeds["hm_charset_numbers.dcm"] = part10(EXPL_LE, patient() + cs)
    return seeds


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    total = 0
    taken = 0
    for rel in PICKS:
        src = os.path.join(DATA, rel)
        if not os.path.exists(src):
            print("make_seeds: missing %s (skipped)" % src, file=sys.stderr)
            continue
        size = os.path.getsize(src)
        if size >= MAX_FILE:
            continue
        name = "pd_" + os.path.basename(rel).replace("+", "_")
        shutil.copyfile(src, os.path.join(OUT, name))
        total += size
        taken += 1
    for name, data in sorted(hand_made().items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        total += len(data)
        taken += 1
    if total > MAX_TOTAL:
        print("make_seeds: corpus is %d bytes, above %d" % (total, MAX_TOTAL), file=sys.stderr)
        return 1
    print("make_seeds: %d seeds, %d bytes in %s" % (taken, total, os.path.relpath(OUT)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
