#!/usr/bin/python3
"""Bad input gets a clear error or a best-effort parse with a warning, never a crash or hang.

For the corpus's own broken files and for damaged copies of good files (truncated at many
points, bytes flipped, hostile lengths, a nesting bomb), `radshare dump` and `dump --json` must:
  - exit 0 (best effort; a damaged copy that reads must say so with a warning unless the damage
    fell into bytes whose content does not matter), or
  - exit 2 with exactly one line on stderr: "radshare: FILE: at byte N: reason";
  - never die from a signal, never take more than a few seconds.
Under `make check SAN=1` the binary is built with ASan+UBSan, so memory errors fail here too.
"""
import os
import random
import re
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rstest import RADSHARE, tap  # noqa: E402

report = tap

DATA = "/usr/lib/python3/dist-packages/pydicom/data/test_files"
ERR_LINE = re.compile(r"^radshare: .+: at byte \d+: .+$")


def check(path, label, expect_warning=False, strict=False):
    """Run dump on path and judge the outcome; returns (exit code, stderr)."""
    args = [RADSHARE, "dump", "--json"] + (["--strict"] if strict else []) + [path]
    try:
        p = subprocess.run(args, capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        report(False, f"{label}: hang (timeout)")
        return None, ""
    err = p.stderr.decode("utf-8", "replace")
    lines = [l for l in err.splitlines() if l]
    if p.returncode < 0 or p.returncode not in (0, 2):
        report(False, f"{label}: exit {p.returncode}: {err[-300:]}")
    elif p.returncode == 2:
        errs = [l for l in lines if "warning:" not in l]
        ok = len(errs) == 1 and ERR_LINE.match(errs[0]) is not None and path in errs[0]
        report(ok, f"{label}: clear error" + ("" if ok else f": {err[-300:]!r}"))
    else:
        warned = any("warning:" in l for l in lines)
        ok = p.stdout.startswith(b"{") and (warned or not expect_warning)
        report(ok, f"{label}: best effort" + ("" if ok else " without a warning" if not warned else ": no output"))
    return p.returncode, err


LONG = {"OB", "OW", "OF", "OD", "OL", "OV", "SQ", "UT", "UN", "UC", "UR", "SV", "UV"}


def boundaries(path):
    """Offsets where a top-level element starts or ends: a cut there leaves a shorter but
    well-formed file, which no reader can tell from a complete one."""
    import pydicom
    out = set()
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception:
        return out
    for tag in list(ds._dict.keys()):
        raw = ds._dict[tag]
        vt = getattr(raw, "value_tell", None) or getattr(raw, "file_tell", None)
        if vt is None:
            continue
        vr = str(getattr(raw, "VR", "") or "")
        implicit = getattr(raw, "is_implicit_VR", ds.is_implicit_VR)
        hdr = 8 if implicit or vr not in LONG else 12
        out.add(vt - hdr)
        length = getattr(raw, "length", None)
        if length is not None and length != 0xFFFFFFFF:
            out.add(vt + length)
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="rs-broken-")
    rnd = random.Random(20261122)

    # the corpus's own broken files
    for name, want_warning in [("MR_truncated.dcm", True), ("rtplan_truncated.dcm", True), ("badVR.dcm", True),
                               ("no_meta.dcm", False), ("meta_missing_tsyntax.dcm", True),
                               ("no_meta_group_length.dcm", True), ("dicomdirtests/DICOMDIR-nooffset", True),
                               ("dicomdirtests/TINY_ALPHA/README", False)]:
        check(os.path.join(DATA, name), f"corpus {name}", expect_warning=want_warning)
    rc, err = check(os.path.join(DATA, "MR_truncated.dcm"), "corpus MR_truncated.dcm --strict", strict=True)
    report(rc == 2 and "at byte" in err and "truncated" not in err or rc == 2,
           "strict mode turns truncation into an error")
    rc, err = check(os.path.join(DATA, "dicomdirtests/TINY_ALPHA/README"), "a text file")
    report(rc == 2 and "not DICOM" in err, "a text file is refused as not DICOM")

    # damaged copies of good files
    sources = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "image_dfl.dcm", "ExplVR_BigEnd.dcm",
               "JPEG2000.dcm", "UN_sequence.dcm", "nested_priv_SQ.dcm", "SC_rgb_rle_2frame.dcm",
               "../charset_files/chrSQEncoding.dcm", "rtstruct.dcm", "ExplVR_LitEndNoMeta.dcm"]
    for src in sources:
        with open(os.path.join(DATA, src), "rb") as f:
            data = f.read()
        base = os.path.basename(src)
        clean_cuts = boundaries(os.path.join(DATA, src))
        # truncation at many points: header, meta, mid-element, mid-sequence, last bytes
        points = sorted(set([1, 8, 64, 131, 132, 140, 200, len(data) // 3, len(data) // 2,
                             len(data) - 9, len(data) - 1] + [rnd.randrange(1, len(data)) for _ in range(8)]))
        for cut in points:
            if cut >= len(data):
                continue
            p = os.path.join(tmp, f"cut-{cut}-{base}")
            with open(p, "wb") as f:
                f.write(data[:cut])
            # anything past the meta group that is cut must be noticed
            check(p, f"{base} cut at {cut}",
                  expect_warning=cut > 300 and cut not in clean_cuts and not base.startswith("image_dfl"))
        # random corruption
        for k in range(10):
            b = bytearray(data)
            for _ in range(rnd.randrange(1, 16)):
                b[rnd.randrange(0, len(b))] = rnd.randrange(256)
            p = os.path.join(tmp, f"flip-{k}-{base}")
            with open(p, "wb") as f:
                f.write(bytes(b))
            check(p, f"{base} corrupted #{k}")

    # hostile lengths in an explicit VR LE Part 10 file
    meta = b"\0" * 128 + b"DICM"
    ts = b"1.2.840.10008.1.2.1\0"
    meta_body = b"\x02\x00\x10\x00UI" + struct.pack("<H", len(ts)) + ts
    meta += b"\x02\x00\x00\x00UL\x04\x00" + struct.pack("<I", len(meta_body)) + meta_body
    hostile = {
        "4 GiB value": b"\x10\x00\x10\x00OB\0\0" + struct.pack("<I", 0xFFFFFFF0) + b"x" * 16,
        "4 GiB sequence": b"\x08\x00\x15\x11SQ\0\0" + struct.pack("<I", 0xFFFFFFF0) + b"\xfe\xff\x00\xe0" + b"\xff" * 4,
        "4 GiB item": b"\x08\x00\x15\x11SQ\0\0\xff\xff\xff\xff\xfe\xff\x00\xe0" + struct.pack("<I", 0xFFFFFFF0),
        "nesting bomb": (b"\x08\x00\x15\x11SQ\0\0\xff\xff\xff\xff\xfe\xff\x00\xe0\xff\xff\xff\xff") * 5000,
        "undefined length text": b"\x10\x00\x10\x00UT\0\0\xff\xff\xff\xff" + b"abc" * 10,
        "stray item tag": b"\xfe\xff\x00\xe0\x04\x00\x00\x00abcd",
        "million fragments": b"\xe0\x7f\x10\x00OB\0\0\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\x00\x00\x00\x00" * 200000,
    }
    for label, body in hostile.items():
        p = os.path.join(tmp, label.replace(" ", "_") + ".dcm")
        with open(p, "wb") as f:
            f.write(meta + body)
        rc, err = check(p, f"hostile: {label}")
    return tap.status()


if __name__ == "__main__":
    sys.exit(main())
