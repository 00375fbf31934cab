#!/usr/bin/python3
"""gen_charset_vectors.py - build tests/data/charset_vectors.tsv from pydicom's sample files.

Run with Debian's interpreter so the python3-pydicom package is what gets used:

    /usr/bin/python3 tools/gen_charset_vectors.py [OUTPUT]   (default: tests/data/charset_vectors.tsv)

tests/unit/test_charset.c replays every line through dcm_charset_parse/dcm_charset_decode and
expects exactly pydicom's text, so the C decoder is checked against real Japanese, Korean,
Chinese, Greek, Arabic, Hebrew, Russian, ... files without needing python at test time.  The
output is committed; rerun this (and commit the result) after upgrading python3-pydicom.  It is
deterministic: the same pydicom and the same files give a byte-identical file.

Sources: every file in pydicom/data/charset_files, plus every file in pydicom/data/test_files
in which some dataset (top level or a sequence item) carries a Specific Character Set.

One vector per element whose VR is SH LO ST LT UC UT or PN, with a non-empty value, found in
any dataset of such a file, descending into sequence items.  The character set in force is the
one pydicom itself uses when it reads the file: a dataset's own (0008,0005) if it has one (even
an empty one, which means the default repertoire), otherwise its parent's.

Line format (tab-separated, '#' lines are comments):

    file  tag-path  charset-hex  VR  value-hex  expected-hex  note

  file       path relative to pydicom/data
  tag-path   e.g. 00100010 or 00081111[0].00100010 (sequence, item index, tag)
  charset    raw bytes of the (0008,0005) value in force, as stored (padding included;
             dcmread converts the top-level one itself, so that one is read back from the
             file); "-" when no (0008,0005) applies.  Checked against the encodings pydicom
             actually decodes each dataset with.
  value      raw bytes of the element value as stored in the file (padding included)
  expected   UTF-8 of pydicom's decoded text, written the way dcm_charset_decode lays out the
             whole value: values joined with '\\'; for PN each value's component groups
             joined with '=' with the empty trailing groups pydicom drops put back, so the
             structure of the original is kept.  Padding is removed as pydicom removes it
             (SH LO UC: each value right-stripped of spaces/NULs; ST LT UT: the whole text;
             PN: the whole raw value before splitting); the C test strips the same way.
  note       "ok", or "pydicom-warned" when pydicom emitted a warning while decoding the
             value (e.g. it used replacement characters), so such lines can be told apart.
"""

import os
import struct
import sys
import warnings

import pydicom
import pydicom.data
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

DATA = os.path.dirname(pydicom.data.__file__)

TEXT_VRS = ("SH", "LO", "ST", "LT", "UC", "UT", "PN")
CHARSET_TAG = 0x00080005


def raw_bytes(ds, tag):
    """The stored bytes of an element, read before pydicom converts it (conversion replaces
    the RawDataElement in ds._dict by a decoded DataElement)."""
    elem = ds.get_item(tag)
    if isinstance(elem, RawDataElement):
        return elem.value if elem.value is not None else b""
    return None


def converted_charset_bytes(ds, fname):
    """dcmread converts the top-level (0008,0005) itself (it needs the value to set up
    decoding), so its RawDataElement is gone.  Get the stored bytes back from the file: the
    element keeps the offset of its value, preceded by its length field (16 bits in explicit
    VR for CS, 32 bits in implicit VR).  Checked against pydicom's value; if the offset cannot
    be trusted (e.g. a deflated stream) rebuild the bytes from the value instead."""
    elem = ds.get_item(CHARSET_TAG)
    vals = elem.value if elem.value is not None else ""
    vals = [vals] if isinstance(vals, str) else list(vals)
    rebuilt = "\\".join(vals).encode("ascii")
    tell = getattr(elem, "file_tell", None)
    if tell and isinstance(getattr(ds, "filename", None), str):
        with open(ds.filename, "rb") as fh:
            data = fh.read()
        endian = "<" if ds.is_little_endian else ">"
        if ds.is_implicit_VR:
            length = struct.unpack(endian + "I", data[tell - 4:tell])[0] if tell >= 4 else -1
        else:
            length = struct.unpack(endian + "H", data[tell - 2:tell])[0] if tell >= 2 else -1
        raw = data[tell:tell + length] if 0 <= length <= len(data) - tell else b""
        if raw.rstrip(b" \0") == rebuilt.rstrip(b" \0"):
            return raw
    print(f"{fname}: (0008,0005) rebuilt from its value", file=sys.stderr)
    return rebuilt


def check_in_force(ds, cs_raw, where):
    """Our idea of the set in force must be the one pydicom decodes the dataset with."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if cs_raw is None:
            ours = [default_encoding]
        else:
            text = cs_raw.decode("ascii", "replace").rstrip(" \0")
            ours = convert_encodings(text.split("\\") if "\\" in text else text)
    theirs = ds.read_encoding
    theirs = [theirs] if isinstance(theirs, str) else list(theirs or [default_encoding])
    if ours != theirs:
        sys.exit(f"{where}: character set in force {ours} but pydicom uses {theirs}")


def pn_text(pn):
    """pydicom's decoded PN value with its '=' group structure restored."""
    comps = list(pn.components)
    ngroups = len(pn.original_string.split(b"=")) if pn.original_string else 1
    return "=".join(comps) + "=" * max(0, ngroups - max(len(comps), 1))


def expected_text(elem):
    v = elem.value
    if elem.VR == "PN":
        vals = list(v) if not isinstance(v, PersonName) else [v]
        return "\\".join(pn_text(p) for p in vals)
    if isinstance(v, str):
        return v
    return "\\".join(str(x) for x in v)


def walk(ds, cs_raw, path, out, fname):
    """Append vectors for ds (and its sequence items) to out; cs_raw is the inherited value."""
    found = False
    if CHARSET_TAG in ds._dict:
        found = True
        # read first: looking at ds.SpecificCharacterSet would replace the raw element
        cs_raw = raw_bytes(ds, CHARSET_TAG)
        if cs_raw is None:
            cs_raw = converted_charset_bytes(ds, fname)
    check_in_force(ds, cs_raw, f"{fname} {path or 'top level'}")
    for tag in sorted(ds._dict.keys()):
        raw = raw_bytes(ds, tag)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                elem = ds[tag]
            except Exception as e:  # a broken element pydicom cannot read: nothing to compare
                print(f"{fname} {path}{int(tag):08X}: skipped ({e})", file=sys.stderr)
                continue
            if elem.VR == "SQ":
                for i, item in enumerate(elem.value or []):
                    found |= walk(item, cs_raw, f"{path}{int(tag):08X}[{i}].", out, fname)
                continue
            if elem.VR not in TEXT_VRS or raw is None or len(raw) == 0 or elem.value is None:
                continue
            text = expected_text(elem)
        note = "pydicom-warned" if caught else "ok"
        out.append((fname, f"{path}{int(tag):08X}",
                    cs_raw.hex() if cs_raw is not None else "-",
                    elem.VR, raw.hex(), text.encode("utf-8").hex(), note))
    return found


def vectors_of(path, rel, require_charset):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True)
    except Exception:
        return []
    if not isinstance(ds, Dataset):
        return []
    out = []
    found = walk(ds, None, "", out, rel)
    if require_charset and not found:
        return []
    return out


def main():
    dest = sys.argv[1] if len(sys.argv) > 1 else "tests/data/charset_vectors.tsv"
    files = []
    for sub, require in (("charset_files", False), ("test_files", True)):
        root = os.path.join(DATA, sub)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for f in sorted(filenames):
                if f.endswith((".txt", ".py", ".pyc", ".json", ".dump", ".gz", ".bz2")) \
                        or f == "README":
                    continue
                p = os.path.join(dirpath, f)
                files.append((p, os.path.relpath(p, DATA), require))
    vectors = []
    for p, rel, require in files:
        vectors.extend(vectors_of(p, rel, require))
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    with open(dest, "w", encoding="ascii", newline="\n") as fh:
        fh.write("# generated by tools/gen_charset_vectors.py from pydicom "
                 f"{pydicom.__version__} sample files - do not edit\n")
        fh.write("# file\ttag-path\tcharset-hex\tVR\tvalue-hex\texpected-utf8-hex\tnote\n")
        for v in vectors:
            fh.write("\t".join(v) + "\n")
    print(f"{dest}: {len(vectors)} vectors from "
          f"{len({v[0] for v in vectors})} files", file=sys.stderr)


if __name__ == "__main__":
    main()
