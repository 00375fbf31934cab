#!/usr/bin/python3
"""Issue #6 "done when" for untrusted media: a folder with a PE-polyglot DICOM (MZ... in its
preamble), a DICOMDIR, a ZIP bomb, a symlink loop, an executable, a JPEG, a nested zip and a FIFO ->
only the DICOM is imported, with a zeroed preamble, and the report lists every other file with its
reason. Then a ZIP with patient reconciliation (checked with pydicom), and the lock message."""
import glob
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, Tap, free_port, make_instance, rs, run  # noqa: E402
import pydicom  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

t = Tap()
PE = (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 44 + b"\x80\x00\x00\x00"
      + b"This program cannot be run in DOS mode.\r\r\n$").ljust(128, b"\x00")


def parse_report(out):
    rows = []
    for ln in out.decode().splitlines():
        if ln.startswith("#") or not ln.strip():
            continue
        f = ln.split("\t")
        rows.append({"outcome": f[0], "path": f[1], "before": f[2], "after": f[3], "reason": f[4]})
    return rows


def stored(data, h):
    return os.path.join(data, "objects", h[:2], h[2:4], h)


def main():
    work = tempfile.mkdtemp(prefix="rs-import-")
    media, data = os.path.join(work, "media"), os.path.join(work, "data")
    os.makedirs(os.path.join(media, "DICOM"))
    poly = os.path.join(media, "DICOM", "IM000001")
    make_instance(poly, generate_uid(), generate_uid(), generate_uid(), patient=("Out^Side", "EXT-42"),
                  preamble=PE)
    original = open(poly, "rb").read()
    t(original[:2] == b"MZ" and original[128:132] == b"DICM", "test file is a DICOM/PE polyglot")
    p = run(["dcmmkdir", "+I", "+id", media, "+D", os.path.join(media, "DICOMDIR"), "DICOM/IM000001"])
    t(p.returncode == 0 and os.path.exists(os.path.join(media, "DICOMDIR")), "dcmmkdir writes a DICOMDIR",
      p.stderr.decode()[-300:])
    with zipfile.ZipFile(os.path.join(media, "bomb.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.dcm", b"\0" * (64 << 20))
    os.symlink("loop2", os.path.join(media, "loop1"))
    os.symlink("loop1", os.path.join(media, "loop2"))
    os.symlink(".", os.path.join(media, "dirloop"))
    os.symlink(poly, os.path.join(media, "link-to-dicom.dcm"))
    exe = os.path.join(media, "tool.exe")
    open(exe, "wb").write(PE + b"\0" * 512)
    os.chmod(exe, 0o755)
    sh = os.path.join(media, "autorun.sh")
    open(sh, "w").write("#!/bin/sh\ntouch " + os.path.join(work, "PWNED") + "\n")
    os.chmod(sh, 0o755)
    open(os.path.join(media, "photo.jpg"), "wb").write(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(300))
    inner = io.BytesIO()
    other = os.path.join(work, "other.dcm")
    make_instance(other, generate_uid(), generate_uid(), generate_uid())
    with zipfile.ZipFile(inner, "w") as z:
        z.write(other, "inner.dcm")
    with zipfile.ZipFile(os.path.join(media, "nested.zip"), "w") as z:
        z.writestr("inner.zip", inner.getvalue())
    os.mkfifo(os.path.join(media, "pipe"))

    p = rs("import", "--untrusted", media, "--data", data, "--quiet", timeout=120)
    t(p.returncode == 0, "import of the folder succeeds", p.stderr.decode()[-500:])
    rows = parse_report(p.stdout)
    by = {r["path"]: r for r in rows}
    imported = [r for r in rows if r["outcome"] == "imported"]
    t(len(imported) == 1 and imported[0]["path"] == "DICOM/IM000001", "only the DICOM is imported",
      str(imported))
    t(imported and imported[0]["before"] == hashlib.sha256(original).hexdigest(), "report: hash before")
    objs = glob.glob(os.path.join(data, "objects", "??", "??", "*"))
    t(len(objs) == 1, "one object stored", str(objs))
    if imported:
        b = open(stored(data, imported[0]["after"]), "rb").read()
        t(hashlib.sha256(b).hexdigest() == imported[0]["after"], "report: hash after names the stored object")
        t(b[:128] == b"\0" * 128 and b[128:132] == b"DICM", "stored object has a zeroed preamble")
        a, s = pydicom.dcmread(io.BytesIO(original)), pydicom.dcmread(io.BytesIO(b))
        t(a == s, "stored data set equals the original (pydicom)")
        t("preamble removed" in imported[0]["reason"], "report says the preamble was removed")
    expect = {
        "DICOMDIR": "DICOMDIR", "bomb.zip": "ratio", "loop1": "symbolic link", "loop2": "symbolic link",
        "dirloop": "symbolic link", "link-to-dicom.dcm": "symbolic link", "tool.exe": "executable",
        "autorun.sh": "script", "photo.jpg": "JPEG", "nested.zip!/inner.zip": "archive inside an archive",
        "pipe": "FIFO",
    }
    for path, why in expect.items():
        r = by.get(path)
        t(r is not None and r["outcome"] == "skipped" and why in r["reason"], f"report: {path} skipped ({why})",
          str(r))
    t(len(rows) == len(expect) + 1, "report lists every file and nothing else", str([r["path"] for r in rows]))
    t(not os.path.exists(os.path.join(work, "PWNED")), "nothing was executed")
    reports = glob.glob(os.path.join(data, "imports", "*.tsv"))
    t(len(reports) == 1 and open(reports[0], "rb").read() == p.stdout, "report file in DATA/imports equals output")
    p = rs("verify", "--data", data, "--full", "--quiet")
    t(p.returncode == 0, "verify --full is clean after import", p.stdout.decode())

    # a ZIP given directly, with patient reconciliation
    zpath = os.path.join(work, "cd.zip")
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(other, "DICOM/IM000002")
        z.writestr("README.TXT", "hello")
        z.writestr("../../etc/passwd", "root:x:0:0")
    p = rs("import", "--untrusted", zpath, "--data", data, "--patient-id", "LOCAL-7", "--patient-name",
           "Local^Name", "--quiet")
    rows = parse_report(p.stdout)
    imp = [r for r in rows if r["outcome"] == "imported"]
    t(p.returncode == 0 and len(imp) == 1 and imp[0]["path"].endswith("!/DICOM/IM000002"),
      "ZIP import: the DICOM entry is imported", p.stdout.decode() + p.stderr.decode())
    t(any(r["path"].endswith("!/README.TXT") and r["outcome"] == "skipped" for r in rows),
      "ZIP import: the text entry is skipped")
    t(not os.path.exists(os.path.join(work, "..", "etc", "passwd")) and
      any(r["path"].endswith("!/../../etc/passwd") for r in rows), "ZIP entry names never become paths")
    if imp:
        ds = pydicom.dcmread(stored(data, imp[0]["after"]))
        orig = pydicom.dcmread(other)
        t(ds.PatientID == "LOCAL-7" and str(ds.PatientName) == "Local^Name", "reconciled PatientID and name")
        seq = ds.get("OtherPatientIDsSequence")
        t(seq is not None and len(seq) == 1 and seq[0].PatientID == orig.PatientID
          and seq[0].TypeOfPatientID == "TEXT", "original PatientID kept in OtherPatientIDsSequence")
        t(ds.SOPInstanceUID == orig.SOPInstanceUID and ds.PixelData == orig.PixelData, "rest of the data set kept")

    # a bomb given directly
    p = rs("import", "--untrusted", os.path.join(media, "bomb.zip"), "--data", data, "--quiet")
    rows = parse_report(p.stdout)
    t(p.returncode == 0 and len(rows) == 1 and "nothing extracted" in rows[0]["reason"],
      "ZIP bomb refused before inflating", p.stdout.decode())

    srv = Server(data, free_port())
    srv.start()
    p = rs("import", "--untrusted", media, "--data", data, "--quiet")
    t(p.returncode == 2 and b"in use" in p.stderr, "import while serve runs says why it cannot",
      p.stderr.decode())
    srv.stop()
    shutil.rmtree(work, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
