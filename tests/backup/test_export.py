#!/usr/bin/python3
"""Issue #6 "done when" for patient media: `radshare export` writes an IHE PDI-style layout whose
DICOMDIR passes dciodvfy, which `dcmmkdir +A` re-reads (recognising every record), whose files
dcmdump reads, and whose records (read with pydicom) point to the right files; the ZIP variant
passes `unzip -t` and python's zipfile; the export runs beside `radshare serve`."""
import glob
import os
import re
import shutil
import sys
import tempfile
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, Tap, free_port, make_instance, rs, run  # noqa: E402
import pydicom  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

t = Tap()


def check_records(root, dicomdir, expect, label):
    """Every IMAGE record names an existing file holding that SOP instance; hierarchy as stored."""
    ok, detail = True, ""
    recs = dicomdir.DirectoryRecordSequence
    types = [r.DirectoryRecordType for r in recs]
    t(types.count("PATIENT") == 1 and types.count("STUDY") == 1 and types.count("SERIES") == 2
      and types.count("IMAGE") == len(expect), f"{label}: 1 patient, 1 study, 2 series, {len(expect)} images",
      str(types))
    seen = {}
    for r in recs:
        if r.DirectoryRecordType != "IMAGE":
            continue
        comps = list(r.ReferencedFileID) if r["ReferencedFileID"].VM > 1 else [r.ReferencedFileID]
        if not all(re.fullmatch(r"[A-Z0-9_]{1,8}", c) for c in comps):
            ok, detail = False, f"bad file ID {comps}"
        p = os.path.join(root, *comps)
        ds = pydicom.dcmread(p) if os.path.exists(p) else None
        if ds is None or ds.SOPInstanceUID != r.ReferencedSOPInstanceUIDInFile or \
                ds.SOPClassUID != r.ReferencedSOPClassUIDInFile or \
                ds.file_meta.TransferSyntaxUID != r.ReferencedTransferSyntaxUIDInFile:
            ok, detail = False, f"record {comps} does not match its file"
        seen[r.ReferencedSOPInstanceUIDInFile] = p
    t(ok and set(seen) == set(expect), f"{label}: records point to the right files", detail)


def walk_offsets(path):
    """Follow first/next/lower offsets from the file's own bytes: each must land on an item tag
    whose record type fits the level."""
    b = open(path, "rb").read()
    ds = pydicom.dcmread(path)
    item = b"\xfe\xff\x00\xe0"
    levels = ["PATIENT", "STUDY", "SERIES", "IMAGE"]

    def parse_at(off):
        return off if b[off:off + 4] == item else None

    count = {lvl: 0 for lvl in levels}

    def record_type(off):
        m = re.search(rb"\x04\x00\x30\x14CS(..)", b[off:off + 64], re.S)
        n = int.from_bytes(m.group(1), "little")
        return b[off + m.end():off + m.end() + n].decode().strip()

    def ul_at(off, elem):
        m = re.search(re.escape(b"\x04\x00" + elem + b"UL\x04\x00"), b[off:off + 40])
        return int.from_bytes(b[off + m.end():off + m.end() + 4], "little")

    def walk(off, depth):
        while off:
            if parse_at(off) is None or record_type(off + 8) != levels[depth]:
                return False
            count[levels[depth]] += 1
            low = ul_at(off + 8, b"\x20\x14")
            if depth < 3 and (not low or not walk(low, depth + 1)):
                return False
            off = ul_at(off + 8, b"\x00\x14")
        return True

    ok = walk(ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity, 0)
    last = ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity
    return ok and record_type(last + 8) == "PATIENT", count


def main():
    work = tempfile.mkdtemp(prefix="rs-export-")
    src, data = os.path.join(work, "src"), os.path.join(work, "data")
    os.makedirs(src)
    study = generate_uid()
    expect = {}
    for s in range(2):
        series = generate_uid()
        for i in range(3 + s):
            sop = generate_uid()
            p = os.path.join(src, f"s{s}i{i}.dcm")
            make_instance(p, study, series, sop, patient=("Müller^Zoë", "PID-9"), modality="CT" if s else "MR",
                          number=i + 1, series_number=s + 1)
            expect[sop] = p
    make_instance(os.path.join(src, "other.dcm"), generate_uid(), generate_uid(), generate_uid())
    p = rs("import", "--untrusted", src, "--data", data, "--quiet")
    t(p.returncode == 0, "8 instances imported", p.stderr.decode())

    srv = Server(data, free_port())
    t(srv.start(), "radshare serve runs on the data directory")
    out = os.path.join(work, "media")
    p = rs("export", "--data", data, "--study", study, "--to", out, "--quiet")
    t(p.returncode == 0 and b"2 series, 7 instances" in p.stdout, "export while serve runs",
      (p.stdout + p.stderr).decode())
    zpath = os.path.join(work, "media.zip")
    p = rs("export", "--data", data, "--study", study, "--to", zpath, "--quiet")
    t(p.returncode == 0, "export to a ZIP", p.stderr.decode())
    srv.stop()
    p = rs("export", "--data", data, "--study", "1.2.3.4", "--to", os.path.join(work, "none"), "--quiet")
    t(p.returncode == 2 and b"no study" in p.stderr, "unknown study refused", p.stderr.decode())
    p = rs("export", "--data", data, "--study", study, "--to", out, "--quiet")
    t(p.returncode == 2, "a non-empty target refused")

    names = sorted(os.path.relpath(f, out) for f in glob.glob(os.path.join(out, "**"), recursive=True)
                   if os.path.isfile(f))
    t({"DICOMDIR", "README.TXT", "INDEX.HTM"} <= set(names), "DICOMDIR, README.TXT, INDEX.HTM at the root",
      str(names))
    t(all(re.fullmatch(r"[A-Z0-9_]{1,8}(\.[A-Z]{1,3})?", c) for n in names for c in n.split("/"))
      and all(re.fullmatch(r"[A-Z0-9_]{1,8}", c) for n in names if n.startswith("DICOM/") for c in n.split("/")),
      "8-character upper-case names (8.3 for the text files)", str(names))
    dd = os.path.join(out, "DICOMDIR")
    p = run(["dciodvfy", dd])
    msgs = (p.stdout + p.stderr).decode()
    t(p.returncode == 0 and "Error" not in msgs and "Warning" not in msgs, "dciodvfy accepts the DICOMDIR", msgs)
    files = [os.path.join(out, n) for n in names if n.startswith("DICOM/")]
    t(len(files) == 7, "7 instance files")
    bad = [f for f in files + [dd] if run(["dcmdump", "-q", f]).returncode != 0]
    t(not bad, "dcmdump reads every file", str(bad))
    t(all(open(f, "rb").read(128) == b"\0" * 128 for f in files + [dd]), "every file has a zeroed preamble")
    for f in files:
        ds = pydicom.dcmread(f)
        orig = pydicom.dcmread(expect[ds.SOPInstanceUID])
        if ds != orig:
            break
    else:
        f = None
    t(f is None, "exported instances equal the originals (pydicom)", str(f))
    check_records(out, pydicom.dcmread(dd), expect, "directory")
    ok, count = walk_offsets(dd)
    t(ok and count == {"PATIENT": 1, "STUDY": 1, "SERIES": 2, "IMAGE": 7},
      "first/next/lower offsets lead through the whole tree", str(count))
    again = os.path.join(work, "again")
    shutil.copytree(out, again)
    p = run(["dcmmkdir", "--verbose", "+A", "+D", "DICOMDIR", "+r", "DICOM"], cwd=again)
    log = (p.stdout + p.stderr).decode()
    t(p.returncode == 0 and log.count("directory record for this SOP instance already exists") == 7,
      "dcmmkdir +A re-reads the DICOMDIR and finds all 7 records", log[-600:])
    html = open(os.path.join(out, "INDEX.HTM"), encoding="utf-8", errors="replace").read()
    t(html.count("<tr><td>") == 7 and "DICOM/ST000001/SE000002/IM000004" in html,
      "INDEX.HTM lists every instance")
    thumbs = [os.path.join(out, "IHE_PDI", f"SE00000{k}.JPG") for k in (1, 2)]
    t(all(os.path.exists(p) and open(p, "rb").read(3) == b"\xff\xd8\xff" for p in thumbs)
      and html.count('<img src="IHE_PDI/SE00000') == 2, "a JPEG thumbnail per series, shown by INDEX.HTM")
    jb = open(thumbs[0], "rb").read()
    sof = jb.find(b"\xff\xc0")
    dims = (int.from_bytes(jb[sof + 5:sof + 7], "big"), int.from_bytes(jb[sof + 7:sof + 9], "big"), jb[sof + 9])
    t(sof > 0 and dims == (32, 32, 1), "thumbnail is a baseline 32x32 grey JPEG (never enlarged)", str(dims))

    p = run(["unzip", "-t", zpath])
    t(p.returncode == 0 and b"No errors detected" in p.stdout, "unzip -t accepts the ZIP", p.stdout.decode()[-300:])
    with zipfile.ZipFile(zpath) as z:
        t(z.testzip() is None and sorted(z.namelist()) == names, "python zipfile: same files as the folder",
          str(z.namelist()))
        same = all(z.read(n) == open(os.path.join(out, n), "rb").read() for n in names if n != "DICOMDIR")
        t(same, "ZIP entries equal the folder's files")
        unz = os.path.join(work, "unz")
        z.extractall(unz)
    check_records(unz, pydicom.dcmread(os.path.join(unz, "DICOMDIR")), expect, "ZIP")
    p = run(["dciodvfy", os.path.join(unz, "DICOMDIR")])
    t(p.returncode == 0 and b"Error" not in p.stdout + p.stderr, "dciodvfy accepts the ZIP's DICOMDIR")
    shutil.rmtree(work, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
