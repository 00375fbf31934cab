#!/usr/bin/python3
"""The writer gives back what the reader took in.

1. Every corpus file that radshare reads without a warning (a well-formed file) is re-encoded in
   its own transfer syntax, keeping its preamble, and must come out byte for byte identical.
   Deflated files are compared after inflation (zlib settings are the encoder's choice).
2. Well-formed uncompressed files go through another syntax and back (explicit LE <-> explicit BE
   <-> deflated, and implicit -> anything -> implicit) and must again be byte identical; their
   DICOM JSON must be the same in every syntax that keeps VRs.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rstest import RADSHARE, tap  # noqa: E402

report = tap

DATA = "/usr/lib/python3/dist-packages/pydicom/data"


def run(*args):
    return subprocess.run([RADSHARE, *args], capture_output=True, timeout=60)


def corpus():
    for root in (DATA + "/test_files", DATA + "/charset_files"):
        for dirpath, _, names in os.walk(root):
            for name in sorted(names):
                if not name.endswith((".txt", ".json", ".dump", ".gz", ".py")) and name != "README":
                    yield os.path.join(dirpath, name)


def syntax_of(path):
    """(transfer syntax name from the dump header, has_preamble) or None when not well-formed."""
    p = run("dump", path)
    if p.returncode != 0 or b"warning" in p.stderr:
        return None
    text = p.stdout.decode("utf-8", "replace")
    ts = [l.split(": ", 1)[1] for l in text.splitlines() if l.startswith("# Used TransferSyntax: ")][-1]
    return ts, text.startswith("# Dicom-File-Format")


def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def first_diff(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        x, y = fa.read(), fb.read()
    for i, (p, q) in enumerate(zip(x, y)):
        if p != q:
            return f"first difference at byte {i}"
    return f"sizes {len(x)} and {len(y)}"


def json_of(path):
    p = run("dump", "--json", "--inline-max", "100000000", path)
    return p.stdout if p.returncode == 0 else None


def main():
    tmp = tempfile.mkdtemp(prefix="rs-roundtrip-")
    well_formed = 0
    for path in corpus():
        info = syntax_of(path)
        if info is None:
            continue
        well_formed += 1
        ts, part10 = info
        name = os.path.relpath(path, DATA)
        out = os.path.join(tmp, "same.dcm")
        args = ["convert", "--ts", "original"] + (["--keep-preamble"] if part10 else ["--raw"])
        p = run(*args, path, out)
        if p.returncode != 0:
            report(False, f"same-syntax {name}: {p.stderr.decode().strip()}")
            continue
        if "Deflated" in ts:
            a, b = os.path.join(tmp, "a.dcm"), os.path.join(tmp, "b.dcm")
            ok = run("convert", "--ts", "explicit-le", path, a).returncode == 0 and \
                run("convert", "--ts", "explicit-le", out, b).returncode == 0 and same_bytes(a, b)
            report(ok, f"same-syntax (inflated) {name}")
        else:
            report(same_bytes(path, out), f"same-syntax {name}" + ("" if same_bytes(path, out) else ": " + first_diff(path, out)))

        # through other syntaxes and back: only for uncompressed pixel data
        if ts not in ("Implicit VR Little Endian", "Explicit VR Little Endian", "Explicit VR Big Endian"):
            continue
        back = {"Implicit VR Little Endian": "implicit-le", "Explicit VR Little Endian": "explicit-le",
                "Explicit VR Big Endian": "explicit-be"}[ts]
        # a bare dataset cannot say it is deflated: that syntax needs the meta group
        vias = ["explicit-le", "explicit-be"] + (["deflated"] if part10 else []) + \
            (["implicit-le"] if back == "implicit-le" else [])
        ref_json = json_of(path)
        for via in vias:
            mid, fin = os.path.join(tmp, "mid.dcm"), os.path.join(tmp, "fin.dcm")
            raw = [] if part10 else ["--raw"]
            ok = run("convert", "--ts", via, *raw, path, mid).returncode == 0 and \
                run("convert", "--ts", back, "--keep-preamble", *raw, mid, fin).returncode == 0
            if ok and part10:
                # the preamble is zeroed on the way through; compare from the DICM prefix on
                with open(path, "rb") as f1, open(fin, "rb") as f2:
                    ok = f1.read()[128:] == f2.read()[128:]
            elif ok:
                ok = same_bytes(path, fin)
            same_json = True
            if via != "implicit-le" and back != "implicit-le" or via == back:
                same_json = json_of(mid) == ref_json
            report(ok and same_json, f"{back} -> {via} -> {back} {name}" +
                   ("" if ok else ": bytes differ") + ("" if same_json else ": JSON differs"))
    if well_formed < 60:
        report(False, f"only {well_formed} well-formed files found")
    return tap.status()


if __name__ == "__main__":
    sys.exit(main())
