#!/usr/bin/python3
"""gen_dict.py - generate src/dicom/dict_table.c from the dictionaries pydicom ships.

Run with Debian's interpreter so the python3-pydicom package is what gets read:

    /usr/bin/python3 tools/gen_dict.py [OUTPUT]     (default: src/dicom/dict_table.c)

The output is committed; rerun this script (and commit the result) after upgrading
python3-pydicom instead of editing the C file.  It is deterministic: the same pydicom
gives a byte-identical file.

What the tables look like is dictated by src/dicom/dict.c, which declares them again;
keep the two in step.
"""

import os
import re
import sys

import pydicom
from pydicom._dicom_dict import DicomDictionary, RepeatersDictionary
from pydicom._private_dict import private_dictionaries

# Standard VRs (PS3.5 6.2); anything else in pydicom's data is either mapped below or fatal,
# so a new pydicom with a new VR spelling fails here rather than producing a wrong table.
KNOWN_VRS = set("AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV "
                "TM UC UI UL UN UR US UT UV".split())

# Masks of the three private key shapes pydicom's get_private_entry understands, in the
# order it tries them: exact 'ggggeeee', 'ggggxxee' (any block), 'ggxxxxee' (any block in
# any group gg00-ggFF).  dict.c relies on this order for its most-specific-first search.
MASK_EXACT = 0xFFFFFFFF
MASK_BLOCK = 0xFFFF00FF
MASK_GROUP = 0xFF0000FF
PRIVATE_MACRO = {MASK_EXACT: "X", MASK_BLOCK: "B", MASK_GROUP: "G"}

notes = []  # things worth telling whoever regenerates the table


def parse_vr(s, where):
    """'US or SS or OW' -> ['US', 'SS', 'OW']; 'NONE' / '' -> [] (no VR, e.g. items)."""
    s = s.strip()
    if s in ("", "NONE"):
        return []
    # pydicom 2.3.1 spells one private ambiguous VR 'OB_OW' instead of 'OB or OW'.
    alts = [a.strip() for a in re.split(r"\s+or\s+|_", s)]
    for a in alts:
        if a not in KNOWN_VRS:
            sys.exit(f"gen_dict: unknown VR {s!r} at {where}")
    if len(alts) > 3:
        sys.exit(f"gen_dict: more than 3 alternative VRs {s!r} at {where}")
    if "_" in s:
        notes.append(f"VR {s!r} at {where} read as {' or '.join(alts)}")
    return alts


def parse_mask(key, where):
    """'60xx3000' -> (tag with x nibbles 0, mask with x nibbles 0)."""
    if not re.fullmatch(r"[0-9A-Fa-fx]{8}", key):
        sys.exit(f"gen_dict: bad tag mask {key!r} at {where}")
    tag = int(key.replace("x", "0"), 16)
    mask = int("".join("0" if c == "x" else "F" for c in key), 16)
    return tag, mask


def c_str(s):
    """A C string literal.  '?' is escaped because -std=c11 turns on trigraphs."""
    out = []
    for ch in s:
        o = ord(ch)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        else:
            # Octal, not \x: a hex escape would swallow a following hex-digit letter.
            out.extend(f"\\{b:03o}" for b in ch.encode("utf-8"))
    return '"' + "".join(out) + '"'


def vr_args(alts):
    return ",".join(alts) if alts else "0"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(os.path.dirname(here), "src", "dicom", "dict_table.c")
    out_path = sys.argv[1] if len(sys.argv) > 1 else default

    # ---- public dictionary -------------------------------------------------------------
    public = []
    for tag in sorted(DicomDictionary):
        vr, vm, name, retired, keyword = DicomDictionary[tag]
        public.append((tag, parse_vr(vr, f"({tag:08X})"), vm, name, retired == "Retired",
                       keyword))
        if not keyword:
            notes.append(f"public ({tag >> 16:04X},{tag & 0xFFFF:04X}) {name!r} has no keyword")

    # ---- repeating groups --------------------------------------------------------------
    repeaters = []
    for key in sorted(RepeatersDictionary, key=lambda k: parse_mask(k, k)):
        vr, vm, name, retired, keyword = RepeatersDictionary[key]
        tag, mask = parse_mask(key, key)
        repeaters.append((tag, mask, parse_vr(vr, key), vm, name, retired == "Retired", keyword))
    # dict.c scans repeaters in table order and stops at the first match; that is only
    # order-independent if no two masks can match the same tag.
    for i, a in enumerate(repeaters):
        for b in repeaters[i + 1:]:
            if (a[0] ^ b[0]) & a[1] & b[1] == 0:
                sys.exit(f"gen_dict: repeater masks overlap: {a[0]:08X}/{a[1]:08X} "
                         f"{b[0]:08X}/{b[1]:08X}")

    # ---- keyword index: public + repeaters, sorted as strcmp sorts ---------------------
    kw = [(e[5], i) for i, e in enumerate(public) if e[5]]
    kw += [(e[6], len(public) + i) for i, e in enumerate(repeaters) if e[6]]
    kw.sort(key=lambda k: k[0].encode())
    for a, b in zip(kw, kw[1:]):
        if a[0] == b[0]:
            sys.exit(f"gen_dict: duplicate keyword {a[0]!r}")
    if len(public) + len(repeaters) > 0xFFFF:
        sys.exit("gen_dict: keyword index no longer fits uint16_t")

    # ---- private dictionaries ----------------------------------------------------------
    creators = []  # (creator, [(mask, tag, vrs, vm, name, retired)])
    dropped = 0
    for creator in sorted(private_dictionaries, key=lambda c: c.encode()):
        if creator != creator.strip(" \0") or not creator:
            # dict.c trims the value read from a file; an untrimmed key could never match.
            sys.exit(f"gen_dict: private creator {creator!r} has leading/trailing padding")
        entries = {}
        for key, (vr, vm, name, retired) in private_dictionaries[creator].items():
            where = f"{creator!r} {key}"
            tag, mask = parse_mask(key, where)
            if mask not in PRIVATE_MACRO:
                # e.g. GEMS_*_01 '001910xx' "Private Element Creator": an 'xx' in the
                # element byte is a shape pydicom's own lookup never tries, so these are
                # unreachable there too; the creator slots they seem to describe are
                # covered by dcm_dict_lookup's generic Private Creator rule.
                notes.append(f"dropped private {where} {name!r}: unsupported mask shape")
                dropped += 1
                continue
            k = (mask, tag)
            if k in entries:
                sys.exit(f"gen_dict: duplicate private entry {where}")
            entries[k] = (mask, tag, parse_vr(vr, where), vm, name, retired == "Retired")
        if entries:
            # Most specific mask first, then tag: dict.c binary-searches one mask at a time.
            creators.append((creator, [entries[k] for k in sorted(entries,
                                                                 key=lambda m: (-m[0], m[1]))]))
    n_private = sum(len(e) for _, e in creators)
    if n_private > 0xFFFF:
        sys.exit("gen_dict: private creator offsets no longer fit uint16_t")

    # ---- write -------------------------------------------------------------------------
    used_vrs = set()
    for e in public:
        used_vrs.update(e[1])
    for e in repeaters:
        used_vrs.update(e[2])
    for _, es in creators:
        for e in es:
            used_vrs.update(e[2])

    L = []
    w = L.append
    w("/*")
    w(" * dict_table.c - GENERATED by tools/gen_dict.py from python3-pydicom "
      f"{pydicom.__version__}")
    w(" * (pydicom._dicom_dict, pydicom._private_dict).  DO NOT EDIT: rerun")
    w(" *     /usr/bin/python3 tools/gen_dict.py")
    w(" * and commit the result.  The tables are declared in dict_table.h; dict.c searches them.")
    w(" *")
    w(f" * {len(public)} public entries, {len(repeaters)} repeating-group entries, "
      f"{len(kw)} keywords,")
    w(f" * {n_private} private entries under {len(creators)} private creators.")
    w(" */")
    w('#include "dict.h"')
    w('#include "vr.h"')
    w("")
    w('#include "dict_table.h"')
    w("")
    w("/* Short names keep the ~15,000 lines below readable; all #undef'd at the end. */")
    for v in sorted(used_vrs):
        w(f"#define {v} DCM_VR_{v}")
    w("/* E: public tag, R: repeater (tag with x nibbles 0, mask); the VR alternatives go last. */")
    w("#define E(t, r, vm, kw, nm, ...) {t, 0xffffffffu, {__VA_ARGS__}, r, vm, kw, nm}")
    w("#define R(t, m, r, vm, kw, nm, ...) {t, m, {__VA_ARGS__}, r, vm, kw, nm}")
    w("/* Private, by key shape: X 'ggggeeee' exact, B 'ggggxxee', G 'ggxxxxee'. */")
    w(f"#define X(t, vm, nm, ...) {{t, 0x{MASK_EXACT:08x}u, {{__VA_ARGS__}}, 0, vm, \"\", nm}}")
    w(f"#define B(t, vm, nm, ...) {{t, 0x{MASK_BLOCK:08x}u, {{__VA_ARGS__}}, 0, vm, \"\", nm}}")
    w(f"#define G(t, vm, nm, ...) {{t, 0x{MASK_GROUP:08x}u, {{__VA_ARGS__}}, 0, vm, \"\", nm}}")
    w("")
    w("/* Sorted by tag. */")
    w("const dcm_dict_entry dcm_dict_pub_tab[] = {")
    for tag, vrs, vm, name, ret, keyword in public:
        w(f"E(0x{tag:08x},{int(ret)},{c_str(vm)},{c_str(keyword)},{c_str(name)},{vr_args(vrs)}),")
    w("};")
    w(f"const unsigned dcm_dict_pub_n = {len(public)};")
    w("")
    w("/* No two masks overlap (checked by the generator), so order does not matter. */")
    w("const dcm_dict_entry dcm_dict_rep_tab[] = {")
    for tag, mask, vrs, vm, name, ret, keyword in repeaters:
        w(f"R(0x{tag:08x},0x{mask:08x}u,{int(ret)},{c_str(vm)},{c_str(keyword)},{c_str(name)},"
          f"{vr_args(vrs)}),")
    w("};")
    w(f"const unsigned dcm_dict_rep_n = {len(repeaters)};")
    w("")
    w(f"/* Keyword index sorted by strcmp: i < {len(public)} is dcm_dict_pub_tab[i], "
      "else dcm_dict_rep_tab[i - that]. */")
    w("const uint16_t dcm_dict_kw_tab[] = {")
    for i in range(0, len(kw), 16):
        w(",".join(str(n) for _, n in kw[i:i + 16]) + ",")
    w("};")
    w(f"const unsigned dcm_dict_kw_n = {len(kw)};")
    w("")
    w("/* Grouped by creator (same order as dcm_dict_creator_tab); within a creator sorted by")
    w(" * mask, most specific first, then by tag. */")
    w("const dcm_dict_entry dcm_dict_priv_tab[] = {")
    for creator, es in creators:
        w(f"/* {creator.replace('*/', '* /')} */")
        for mask, tag, vrs, vm, name, _ret in es:
            w(f"{PRIVATE_MACRO[mask]}(0x{tag:08x},{c_str(vm)},{c_str(name)},{vr_args(vrs)}),")
    w("};")
    w(f"const unsigned dcm_dict_priv_n = {n_private};")
    w("")
    w("/* Sorted by strcmp; creator i owns dcm_dict_priv_tab[first[i] .. first[i + 1]). */")
    w("const char *const dcm_dict_creator_tab[] = {")
    for creator, _ in creators:
        w(f"{c_str(creator)},")
    w("};")
    w("const uint16_t dcm_dict_creator_first[] = {")
    firsts, n = [], 0
    for _, es in creators:
        firsts.append(n)
        n += len(es)
    firsts.append(n)
    for i in range(0, len(firsts), 16):
        w(",".join(str(f) for f in firsts[i:i + 16]) + ",")
    w("};")
    w(f"const unsigned dcm_dict_creator_n = {len(creators)};")
    w("")
    w("#undef E")
    w("#undef R")
    w("#undef X")
    w("#undef B")
    w("#undef G")
    for v in sorted(used_vrs):
        w(f"#undef {v}")

    text = "\n".join(L) + "\n"
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
    os.replace(tmp, out_path)

    for n_ in notes:
        print("gen_dict: note: " + n_, file=sys.stderr)
    print(f"gen_dict: wrote {out_path}: {len(public)} public, {len(repeaters)} repeaters, "
          f"{len(kw)} keywords, {n_private} private under {len(creators)} creators "
          f"({dropped} dropped)", file=sys.stderr)


if __name__ == "__main__":
    main()
