#!/usr/bin/python3
"""`radshare serve` against the stock DCMTK clients and hostile peers (issue #3, "done when").

Everything is started here, on free loopback ports, over a temporary data directory, and killed
at the end whatever happens: radshare (the binary in $RADSHARE, maybe the ASan build) and a
storescp as C-MOVE destination. Groups:
  1. echoscu.
  2. storescu: a multi-study, multi-series set made with pydicom (ISO_IR 100 names) in explicit
     VR LE, plus variants made with DCMTK (JPEG lossless SV1 and baseline, JPEG-LS, RLE,
     implicit VR LE, explicit VR BE), one storescu run per transfer syntax; every instance is
     found afterwards at IMAGE level.
  3. findscu at each level: exact, * and ? (PN case-insensitive), date and time ranges (closed
     and open), UID lists, universal matching, Latin-1 and UTF-8 keys; every answer checked
     attribute by attribute; C-CANCEL.
  4. movescu (STUDY, SERIES, IMAGE) to storescp and getscu: data sets byte-identical to what
     was sent, in the same transfer syntax; unknown destination refused; a destination that is
     down gives failed sub-operations; no C-GET sub-operation without the SCP role.
  5. Bad peers: HTTP on the DICOM port, PDUs longer than their data, an unknown SOP class,
     aborts in the middle of a data set, 200 simultaneous associations over the limit.
  6. SIGKILL while storing (storescu, and our own client in the middle of a data set): every
     acknowledged instance is there after a restart and intact, the interrupted one left no trace.
  7. SIGTERM while storing: the message in flight completes, idle and mute connections do not
     hold the exit, the process exits 0 promptly; nothing acknowledged is lost.
After each group radshare must still be running (a crash or a sanitizer abort fails there).
TAP output; a failed check prints the end of the server's log as "#" lines. About 25 s, ASan too.
KEEP=1 keeps the temporary directory of a failed run.
"""
import glob
import hashlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rstest import RADSHARE, free_port, tap, tmp_leftovers  # noqa: E402
HOST = "127.0.0.1"
AET = "RADSHARE"
SERVER_TIMEOUT = 4          # radshare --timeout: how long a silent peer is waited for
MAX_ASSOCS = 16

MR_CLASS = "1.2.840.10008.5.1.4.1.1.4"
CT_CLASS = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"
FIND_STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.1"
GET_STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.3"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
UNCOMPRESSED = (IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE)

PROCS = []           # every process started here, killed at the end
LOGS = []            # server logs, shown when a check fails


def show_log():
    for path in LOGS[-1:]:
        try:
            with open(path, "rb") as f:
                for line in f.read().decode("utf-8", "replace").splitlines()[-8:]:
                    print("#   " + line)
        except OSError:
            pass


report = tap
tap.on_fail = show_log


def run(args, timeout=60, cwd=None):
    try:
        return subprocess.run(args, capture_output=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(args, -999, e.stdout or b"", (e.stderr or b"") + b"\n(timed out)")


def spawn(args, **kw):
    p = subprocess.Popen(args, **kw)
    PROCS.append(p)
    return p


def out_of(p):
    return (p.stdout + p.stderr).decode("utf-8", "replace")


def echo(port):
    return run(["echoscu", "-to", "5", "-ta", "5", "-aec", AET, HOST, str(port)], timeout=20).returncode == 0


def wait_until(cond, seconds, step=0.05):
    end = time.time() + seconds
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


class Server:
    """One radshare serve process; restartable on the same data directory."""

    def __init__(self, work, name, data, extra=()):
        self.data, self.extra = data, list(extra)
        self.log = os.path.join(work, f"{name}.log")
        self.p = None
        self.port = None
        LOGS.append(self.log)

    def start(self, timeout_s=SERVER_TIMEOUT):
        for _ in range(3):  # a free port can be taken between the probe and the bind
            self.port = free_port()
            with open(self.log, "ab") as log:
                offset = log.tell()
                self.p = spawn([RADSHARE, "serve", "--data", self.data, "--aet", AET, "--dicom-port", str(self.port),
                                "--timeout", str(timeout_s)] + self.extra, stdout=log, stderr=log)
            listening = f"listening on port {self.port} ".encode()
            if wait_until(lambda: self.p.poll() is not None or listening in self.text(offset), 30) and \
                    self.p.poll() is None and echo(self.port):
                return True
            self.kill()
        return False

    def text(self, start=0):
        with open(self.log, "rb") as f:
            f.seek(start)
            return f.read()

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, wait=20):
        """Signal and wait; the exit status, or None if it had to be killed."""
        if not self.alive():
            return self.p.returncode if self.p else None
        self.p.send_signal(sig)
        try:
            return self.p.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.alive():
            self.p.kill()
            self.p.wait()


# ---- data ---------------------------------------------------------------------------------------

PATIENTS = {
    "P1": dict(PatientName="Müller^Jürgen", PatientID="RS-P1", PatientBirthDate="19650312", PatientSex="M"),
    "P2": dict(PatientName="DOE^JOHN", PatientID="RS-P2", PatientBirthDate="19800101", PatientSex="M"),
    "P3": dict(PatientName="doe^jane", PatientID="RS-P3", PatientBirthDate="19900704", PatientSex="F"),
    "P4": dict(PatientName="Variant^Vera", PatientID="RS-P4", PatientBirthDate="19700101", PatientSex="F"),
}
# (patient, date, time, description, accession, referring, institution, series: [(modality, description)])
STUDIES = {
    "S1": ("P1", "20240115", "101530", "MR KNEE LEFT", "ACC1001", "Strange^Stephen", "Hôpital Nord",
           [("MR", "T1 SAG"), ("MR", "T2 COR"), ("CT", "SCOUT")]),
    "S2": ("P2", "20240131", "235959", "CT CHEST", "ACC1002", "House^Gregory", "General Hospital",
           [("CT", "AXIAL 5MM")]),
    "S3": ("P3", "20240201", "000000", "CT HEAD", "ACC1003", "Grey^Meredith", "Seattle Grace",
           [("MR", "FLAIR")]),
}
PER_SERIES = 4
# transfer syntax variants: name -> (conversion command, storescu option, getscu option, bits, TS UID)
VARIANTS = {
    "jpeg-lossless": (["dcmcjpeg", "+e1"], "-xs", "+xs", 16, "1.2.840.10008.1.2.4.70"),
    "jpeg-baseline": (["dcmcjpeg", "+eb"], "-xy", "+xy", 8, "1.2.840.10008.1.2.4.50"),
    "jpeg-ls": (["dcmcjpls"], "-xt", "+xt", 16, "1.2.840.10008.1.2.4.80"),
    "rle": (["dcmcrle"], "-xr", "+xr", 16, "1.2.840.10008.1.2.5"),
    "implicit": (["dcmconv", "+ti"], "-xi", None, 16, IMPLICIT_LE),
    "big-endian": (["dcmconv", "+tb"], "-xb", "+xb", 16, EXPLICIT_BE),
}


def make_instance(path, attrs, bits, rng):
    """An explicit VR LE Part 10 file in ISO_IR 100 with a small image."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = attrs["SOPClassUID"]
    meta.MediaStorageSOPInstanceUID = attrs["SOPInstanceUID"]
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    for k, v in attrs.items():
        setattr(ds, k, v)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = 64
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, (12 if bits == 16 else 8), \
        (11 if bits == 16 else 7), 0
    y, x = np.mgrid[0:64, 0:64]
    top = 4095 if bits == 16 else 255
    img = (x * top // 63 + y * 3 + rng.integers(0, 8, (64, 64))) % (top + 1)
    ds.PixelData = img.astype(np.uint16 if bits == 16 else np.uint8).tobytes()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)


def instance_attrs(patient, study_uid, study, series_uid, s_no, modality, s_desc, number):
    pkey, date, tm, desc, acc, ref, inst, _ = study
    a = dict(PATIENTS[pkey])
    a.update(SOPClassUID=MR_CLASS if modality == "MR" else CT_CLASS, SOPInstanceUID=generate_uid(),
             StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid, StudyDate=date, StudyTime=tm,
             StudyDescription=desc, AccessionNumber=acc, ReferringPhysicianName=ref, InstitutionName=inst,
             StudyID=acc[-4:], Modality=modality, SeriesNumber=s_no, SeriesDescription=s_desc,
             SeriesDate=date, SeriesTime=tm, InstanceNumber=number, ContentDate=date, ContentTime=tm)
    return a


def dataset_bytes(path):
    """The data set proper: the bytes after the file meta group (whatever writer made the file)."""
    with open(path, "rb") as f:
        b = f.read()
    pos = 132 if b[128:132] == b"DICM" else 0
    while pos + 8 <= len(b) and struct.unpack("<H", b[pos:pos + 2])[0] == 0x0002:
        vr = b[pos + 4:pos + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC", b"UR", b"OD", b"OF", b"OL", b"OV", b"SV", b"UV"):
            pos += 12 + struct.unpack("<I", b[pos + 8:pos + 12])[0]
        else:
            pos += 8 + struct.unpack("<H", b[pos + 6:pos + 8])[0]
    return b[pos:]


def file_ts(path):
    return str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)


RECORD_KEYS = ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
               "StudyTime", "StudyDescription", "AccessionNumber", "StudyID", "ReferringPhysicianName",
               "InstitutionName", "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription", "SeriesDate",
               "SeriesTime", "SOPInstanceUID", "SOPClassUID", "InstanceNumber", "Rows", "Columns", "BitsAllocated"]


def record_of(path):
    """What the archive should answer about a sent file, read back with pydicom (charset decoded)."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    r = {k: norm(ds.get(k)) for k in RECORD_KEYS}
    r["path"], r["ts"] = path, str(ds.file_meta.TransferSyntaxUID)
    return r


def norm(v):
    """A value as a comparable string (multi-values joined with backslash, numbers without padding)."""
    if v is None:
        return ""
    if isinstance(v, (list, tuple, pydicom.multival.MultiValue)):
        return "\\".join(norm(x) for x in v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(int(v))
    s = str(v).strip()
    return str(int(s)) if re.fullmatch(r"[+-]?\d+", s) and not re.fullmatch(r"\d{6,}", s) else s


# ---- a small DIMSE client over raw sockets ------------------------------------------------------

def item(t, body):
    return struct.pack(">BBH", t, 0, len(body)) + body


def assoc_rq_pdu(contexts, calling="PYSCU", called=AET, max_pdu=16384):
    """A-ASSOCIATE-RQ; contexts: [(id, abstract syntax, [transfer syntaxes])]."""
    body = struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode() + b"\0" * 32
    body += item(0x10, b"1.2.840.10008.3.1.1.1")
    for cid, asx, tss in contexts:
        body += item(0x20, bytes([cid, 0, 0, 0]) + item(0x30, asx.encode()) +
                     b"".join(item(0x40, t.encode()) for t in tss))
    body += item(0x50, item(0x51, struct.pack(">I", max_pdu)) + item(0x52, b"1.2.826.0.1.3680043.10.1449.99"))
    return struct.pack(">BBI", 1, 0, len(body)) + body


ABORT_PDU = b"\x07\x00\x00\x00\x00\x04\x00\x00\x00\x00"
RELEASE_RQ_PDU = b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00"


def recv_exact(s, k):
    b = b""
    while len(b) < k:
        c = s.recv(k - len(b))
        if not c:
            return None
        b += c
    return b


def recv_pdu(s):
    """(type, body); (None, b"") when the peer closed the connection."""
    h = recv_exact(s, 6)
    if h is None:
        return None, b""
    body = recv_exact(s, struct.unpack(">I", h[2:6])[0])
    return (h[0], body) if body is not None else (None, b"")


def pdata(cid, is_cmd, last, data):
    pdv = struct.pack(">I", len(data) + 2) + bytes([cid, (1 if is_cmd else 0) | (2 if last else 0)]) + data
    return struct.pack(">BBI", 4, 0, len(pdv)) + pdv


def cmd_elem(e, v):
    return struct.pack("<HHI", 0, e, len(v)) + v


def us(v):
    return struct.pack("<H", v)


def ui(s):
    b = s.encode()
    return b + b"\0" if len(b) % 2 else b


def command(fields):
    body = b"".join(cmd_elem(e, v) for e, v in sorted(fields))
    return cmd_elem(0x0000, struct.pack("<I", len(body))) + body


def parse_command(b):
    out, pos = {}, 0
    while pos + 8 <= len(b):
        _, e, ln = struct.unpack("<HHI", b[pos:pos + 8])
        out[e] = b[pos + 8:pos + 8 + ln]
        pos += 8 + ln
    return out


class Client:
    """An association from Python: enough of PS3.7/PS3.8 to echo, store, misbehave."""

    def __init__(self, port, contexts, timeout=20):
        self.s = socket.create_connection((HOST, port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.sendall(assoc_rq_pdu(contexts))
        self.type, self.body = recv_pdu(self.s)
        self.results = {}    # context id -> (result, transfer syntax)
        self.peer_max = 16384
        if self.type == 2:
            pos = 68
            while pos + 4 <= len(self.body):
                t, ln = self.body[pos], struct.unpack(">H", self.body[pos + 2:pos + 4])[0]
                v = self.body[pos + 4:pos + 4 + ln]
                if t == 0x21:
                    ts = v[8:8 + struct.unpack(">H", v[6:8])[0]].decode().rstrip("\0 ") if len(v) > 8 else ""
                    self.results[v[0]] = (v[2], ts)
                elif t == 0x50 and len(v) >= 8 and v[0] == 0x51:
                    self.peer_max = struct.unpack(">I", v[4:8])[0] or 1 << 20
                pos += 4 + ln

    def accepted(self, cid):
        return self.results.get(cid, (None,))[0] == 0

    def send_command(self, cid, cmd):
        self.s.sendall(pdata(cid, True, True, cmd))

    def data_pdus(self, cid, data, chunk=1024):
        chunk = min(chunk, self.peer_max - 6)
        parts = [data[i:i + chunk] for i in range(0, len(data), chunk)] or [b""]
        return [pdata(cid, False, i == len(parts) - 1, p) for i, p in enumerate(parts)]

    def recv_command(self):
        """The next command set as {element: bytes}, skipping data sets; None when the association ended."""
        buf = b""
        while True:
            t, body = recv_pdu(self.s)
            if t != 4:
                self.last_pdu = (t, body)
                return None
            pos = 0
            while pos + 6 <= len(body):
                ln = struct.unpack(">I", body[pos:pos + 4])[0]
                hdr = body[pos + 5]
                if hdr & 1:
                    buf += body[pos + 6:pos + 4 + ln]
                pos += 4 + ln
                if hdr & 1 and hdr & 2:
                    return parse_command(buf)

    def echo(self, cid, msg_id=1):
        self.send_command(cid, command([(0x0002, ui(VERIFICATION)), (0x0100, us(0x0030)), (0x0110, us(msg_id)),
                                        (0x0800, us(0x0101))]))
        rsp = self.recv_command()
        return rsp is not None and struct.unpack("<H", rsp[0x0900])[0] == 0

    def store_command(self, cid, sop_class, sop_uid, msg_id):
        return command([(0x0002, ui(sop_class)), (0x0100, us(0x0001)), (0x0110, us(msg_id)), (0x0700, us(0)),
                        (0x0800, us(0x0000)), (0x1000, ui(sop_uid))])

    def store(self, cid, sop_class, sop_uid, data, msg_id=1):
        """C-STORE; the response status, or None when the association ended first."""
        self.send_command(cid, self.store_command(cid, sop_class, sop_uid, msg_id))
        self.s.sendall(b"".join(self.data_pdus(cid, data)))
        rsp = self.recv_command()
        return struct.unpack("<H", rsp[0x0900])[0] if rsp is not None else None

    def release(self):
        self.s.sendall(RELEASE_RQ_PDU)
        t, _ = recv_pdu(self.s)
        return t == 6

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def peer_gone(s, wait):
    """Did the peer end the connection (EOF, reset, or an A-ABORT) within wait seconds?"""
    s.settimeout(wait)
    try:
        while True:
            t, _ = recv_pdu(s)
            if t is None or t == 7:
                return True
    except socket.timeout:
        return False
    except OSError:
        return True


# ---- DCMTK drivers ------------------------------------------------------------------------------

def findscu(port, work, level, keys, model="-S", extra=()):
    """Run findscu -X; (exit status, [response data sets], output)."""
    d = tempfile.mkdtemp(dir=work, prefix="find-")
    args = ["findscu", model, "-aec", AET, "-to", "10", "-X", "-od", d] + list(extra) + \
        ["-k", f"QueryRetrieveLevel={level}"]
    for k in keys:
        args += ["-k", k]
    p = run(args + [HOST, str(port)])
    res = [pydicom.dcmread(f, force=True) for f in sorted(glob.glob(os.path.join(d, "rsp*.dcm")))]
    shutil.rmtree(d, ignore_errors=True)
    return p.returncode, res, out_of(p)


UNIQUE = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID", "IMAGE": "SOPInstanceUID"}


def level_rows(records, level):
    """The expected entities at a level, with the derived attributes, keyed by unique key."""
    rows = {}
    for r in records:
        key = r[UNIQUE[level]]
        row = rows.setdefault(key, dict(r, _studies=set(), _series=set(), _n=0, _mods=set()))
        row["_studies"].add(r["StudyInstanceUID"])
        row["_series"].add(r["SeriesInstanceUID"])
        row["_mods"].add(r["Modality"])
        row["_n"] += 1
    for row in rows.values():
        row["NumberOfPatientRelatedStudies"] = str(len(row["_studies"]))
        row["NumberOfPatientRelatedSeries"] = row["NumberOfStudyRelatedSeries"] = str(len(row["_series"]))
        row["NumberOfPatientRelatedInstances"] = row["NumberOfStudyRelatedInstances"] = \
            row["NumberOfSeriesRelatedInstances"] = str(row["_n"])
        row["ModalitiesInStudy"] = "\\".join(sorted(row["_mods"]))
    return rows


def check_find(port, work, label, level, keys, want_records, model="-S", ret=(), extra=()):
    """findscu with keys ("Name=value") plus return keys ret; the answers must be exactly the
    entities of want_records, each requested attribute equal to the expected value."""
    given = [(k.decode("latin-1") if isinstance(k, bytes) else k).split("=")[0] for k in keys]
    ret = [k for k in ret if k not in given]  # a second -k for a tag would replace the first
    rc, res, out = findscu(port, work, level, list(keys) + list(ret), model, extra)
    want = level_rows(want_records, level)
    problems = []
    if rc != 0:
        problems.append(f"findscu exit {rc}: {out[-300:]}")
    got = {}
    for r in res:
        key = norm(r.get(UNIQUE[level]))
        if key in got:
            problems.append(f"{key} answered twice")
        got[key] = r
        if norm(r.get("QueryRetrieveLevel")) != level:
            problems.append(f"QueryRetrieveLevel {r.get('QueryRetrieveLevel')!r}")
    if set(got) != set(want):
        problems.append(f"{len(got)} answers, {len(want)} expected; extra {sorted(set(got) - set(want))[:2]}, "
                        f"missing {sorted(set(want) - set(got))[:2]}")
    names = [(k.decode("latin-1") if isinstance(k, bytes) else k).split("=")[0] for k in list(keys) + list(ret)]
    names = [k for k in names if k not in ("SpecificCharacterSet", "QueryRetrieveLevel")]
    for key in set(got) & set(want):
        for name in names:
            g = norm(got[key].get(name))
            if name == "ModalitiesInStudy":
                g = "\\".join(sorted(g.split("\\")))
            if g != want[key][name]:
                problems.append(f"{name} of {key[-12:]}: {g!r} != {want[key][name]!r}")
    return report(not problems, f"C-FIND {level} ({model}) {label}", "; ".join(problems[:4])), got


def received_files(d):
    out = {}
    for f in glob.glob(os.path.join(d, "*")):
        try:
            out[str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)] = f
        except Exception:  # noqa: BLE001 - an unreadable file is a mismatch, reported below
            out[f] = f
    return out


def same_elements(a, b):
    """Two files hold the same data set whatever their encoding (for a transcoded retrieval)."""
    da, db = pydicom.dcmread(a), pydicom.dcmread(b)
    if da.get("PixelData") is not None and db.get("PixelData") is not None:
        if not np.array_equal(da.pixel_array, db.pixel_array):
            return False
    strip = lambda d: {e.tag: e.value for e in d if e.tag != 0x7FE00010}  # noqa: E731
    return strip(da) == strip(db)


def compare_received(got, want_records, transcoded_ok=False):
    """Problems between received files {sop: path} and the sent records: the data set must be
    byte-identical, in the sent transfer syntax (or, with transcoded_ok, the same elements in
    another uncompressed one)."""
    want = {r["SOPInstanceUID"]: r for r in want_records}
    problems = []
    if set(got) != set(want):
        problems.append(f"received {len(got)}, expected {len(want)}; missing {sorted(set(want) - set(got))[:2]} "
                        f"extra {sorted(set(got) - set(want))[:2]}")
    for sop in set(got) & set(want):
        ts = file_ts(got[sop])
        if transcoded_ok and ts != want[sop]["ts"]:
            if not same_elements(got[sop], want[sop]["path"]):
                problems.append(f"{sop[-12:]}: transcoded to {ts}, content differs")
        elif dataset_bytes(got[sop]) != dataset_bytes(want[sop]["path"]):
            problems.append(f"{sop[-12:]} ({want[sop]['ts']}): data set differs")
        elif ts != want[sop]["ts"]:
            problems.append(f"{sop[-12:]}: arrived as {ts}, sent as {want[sop]['ts']}")
    return problems


def object_files(data):
    return sorted(glob.glob(os.path.join(data, "objects", "*", "*", "*")))


def all_sops(port, work):
    rc, res, _ = findscu(port, work, "IMAGE", ["SOPInstanceUID"])
    return rc, {norm(r.get("SOPInstanceUID")) for r in res}


# ---- the groups -----------------------------------------------------------------------------------

def build_data(work, rng):
    """The files to send: {"explicit": [records], variant name: [records]}."""
    src = os.path.join(work, "src")
    os.makedirs(src)
    sets = {"explicit": []}
    for skey, study in STUDIES.items():
        study_uid = generate_uid()
        for s_no, (modality, s_desc) in enumerate(study[7], 1):
            series_uid = generate_uid()
            for i in range(PER_SERIES):
                a = instance_attrs(study[0], study_uid, study, series_uid, s_no, modality, s_desc, i + 1)
                path = os.path.join(src, f"{skey}-{s_no}-{i}.dcm")
                make_instance(path, a, 16, rng)
                sets["explicit"].append(record_of(path))
    # one study of variants, a series per transfer syntax, made from explicit files by DCMTK
    vstudy = ("P4", "20230615", "143000", "VARIANTS", "ACC1004", "Lab^Tech", "Test Lab", [])
    vstudy_uid = generate_uid()
    for v_no, (name, (tool, _, _, bits, ts)) in enumerate(VARIANTS.items(), 1):
        series_uid = generate_uid()
        sets[name] = []
        for i in range(2):
            a = instance_attrs("P4", vstudy_uid, vstudy, series_uid, v_no, "CT", name.upper(), i + 1)
            plain = os.path.join(src, f"{name}-{i}-plain.dcm")
            out = os.path.join(src, f"{name}-{i}.dcm")
            make_instance(plain, a, bits, rng)
            p = run(tool + [plain, out])
            if p.returncode != 0 or file_ts(out) != ts:
                report(False, f"make the {name} variant with {tool[0]}", out_of(p)[-200:])
                break
            sets[name].append(record_of(out))
        else:
            report(True, f"{name} variant made with {' '.join(tool)} ({ts})")
    return sets


def group_store(port, work, sets, data):
    explicit = sets["explicit"]
    p = run(["storescu", "-aec", AET, "-to", "10", HOST, str(port)] + [r["path"] for r in explicit])
    report(p.returncode == 0 and "E:" not in out_of(p), f"storescu sends {len(explicit)} explicit VR LE instances "
           f"({len(STUDIES)} studies, {sum(len(s[7]) for s in STUDIES.values())} series)", out_of(p)[-300:])
    for name, (_, opt, _, _, ts) in VARIANTS.items():
        if not sets.get(name):
            continue
        p = run(["storescu", opt, "-aec", AET, "-to", "10", HOST, str(port)] + [r["path"] for r in sets[name]])
        report(p.returncode == 0 and "E:" not in out_of(p), f"storescu {opt} sends the {name} instances ({ts})",
               out_of(p)[-300:])
    sent = [r for recs in sets.values() for r in recs]
    rc, found = all_sops(port, work)
    want = {r["SOPInstanceUID"] for r in sent}
    report(rc == 0 and found == want, f"C-FIND IMAGE finds every one of the {len(want)} instances sent",
           f"found {len(found)}, missing {sorted(want - found)[:3]}, extra {sorted(found - want)[:3]}")
    objs = object_files(data)
    # a stored file keeps its tmp/ slot name until its objects/ directory is fsync'ed, just after the answer
    tmp_clean = wait_until(lambda: not tmp_leftovers(data), 5)
    report(len(objs) == len(want) and tmp_clean, "one object file per instance, tmp/ empty",
           f"{len(objs)} objects, tmp {tmp_leftovers(data)[:3]}")
    # resending is a success that stores nothing new
    p = run(["storescu", "-aec", AET, "-to", "10", HOST, str(port), explicit[0]["path"]])
    report(p.returncode == 0 and len(object_files(data)) == len(objs), "resending an instance: success, nothing new")
    return sent


def group_find(port, work, sent):
    by = lambda f: [r for r in sent if f(r)]  # noqa: E731
    study_uid = {k: by(lambda r, d=d: r["StudyDate"] == d)[0]["StudyInstanceUID"]
                 for k, d in (("S1", "20240115"), ("S2", "20240131"), ("S3", "20240201"), ("S4", "20230615"))}
    pat_ret = ["PatientName", "PatientBirthDate", "PatientSex", "NumberOfPatientRelatedStudies",
               "NumberOfPatientRelatedSeries", "NumberOfPatientRelatedInstances"]
    study_ret = ["StudyInstanceUID", "PatientName", "PatientID", "StudyDate", "StudyTime", "StudyDescription",
                 "AccessionNumber", "StudyID", "ReferringPhysicianName", "InstitutionName", "ModalitiesInStudy",
                 "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"]
    series_ret = ["StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
                  "SeriesDate", "SeriesTime", "NumberOfSeriesRelatedInstances"]
    image_ret = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "InstanceNumber"]

    # PATIENT level, Patient Root
    P = "-P"
    check_find(port, work, "universal matching: every patient", "PATIENT", ["PatientID"], sent, P, pat_ret)
    check_find(port, work, "exact PatientID", "PATIENT", ["PatientID=RS-P2"], by(lambda r: r["PatientID"] == "RS-P2"),
               P, pat_ret)
    check_find(port, work, "PatientName doe* (case-insensitive PN)", "PATIENT", ["PatientName=doe*"],
               by(lambda r: r["PatientID"] in ("RS-P2", "RS-P3")), P, ["PatientID"] + pat_ret[1:])
    check_find(port, work, "PatientBirthDate range", "PATIENT", ["PatientBirthDate=19750101-19851231"],
               by(lambda r: r["PatientID"] == "RS-P2"), P, ["PatientID", "PatientName"])
    # STUDY level, Study Root
    check_find(port, work, "universal matching, every attribute", "STUDY", [], sent, ret=study_ret)
    check_find(port, work, "exact AccessionNumber", "STUDY", ["AccessionNumber=ACC1002"],
               by(lambda r: r["AccessionNumber"] == "ACC1002"), ret=study_ret)
    check_find(port, work, "exact StudyDate", "STUDY", ["StudyDate=20240131"],
               by(lambda r: r["StudyDate"] == "20240131"), ret=study_ret)
    check_find(port, work, "exact PatientName (other case)", "STUDY", ["PatientName=doe^john"],
               by(lambda r: r["PatientID"] == "RS-P2"), ret=["StudyInstanceUID", "PatientID"])
    check_find(port, work, "PatientName DOE^J?HN", "STUDY", ["PatientName=DOE^J?HN"],
               by(lambda r: r["PatientID"] == "RS-P2"), ret=["StudyInstanceUID", "PatientID"])
    check_find(port, work, "PatientName *LLER* (non-ASCII name)", "STUDY", ["PatientName=*LLER*"],
               by(lambda r: r["PatientID"] == "RS-P1"), ret=["StudyInstanceUID", "PatientID"])
    check_find(port, work, "PatientName d?e*", "STUDY", ["PatientName=d?e*"],
               by(lambda r: r["PatientID"] in ("RS-P2", "RS-P3")), ret=["StudyInstanceUID", "PatientID"])
    check_find(port, work, "StudyDescription CT*", "STUDY", ["StudyDescription=CT*"],
               by(lambda r: r["StudyDescription"].startswith("CT")), ret=["StudyInstanceUID"])
    check_find(port, work, "StudyDescription ?R KNEE*", "STUDY", ["StudyDescription=?R KNEE*"],
               by(lambda r: r["StudyDescription"] == "MR KNEE LEFT"), ret=["StudyInstanceUID"])
    check_find(port, work, "StudyDescription *HE?? (wildcards at both ends)", "STUDY",
               ["StudyDescription=*HE??"], by(lambda r: r["StudyDescription"] in ("CT CHEST", "CT HEAD")),
               ret=["StudyInstanceUID"])
    check_find(port, work, "StudyDescription ct* (case-sensitive: not a PN)", "STUDY", ["StudyDescription=ct*"], [],
               ret=["StudyInstanceUID"])
    check_find(port, work, "ReferringPhysicianName strange* (case-insensitive PN)", "STUDY",
               ["ReferringPhysicianName=strange*"], by(lambda r: r["PatientID"] == "RS-P1"),
               ret=["StudyInstanceUID", "ReferringPhysicianName"])
    check_find(port, work, "StudyDate 20240101-20240131 (bounds included)", "STUDY", ["StudyDate=20240101-20240131"],
               by(lambda r: "20240101" <= r["StudyDate"] <= "20240131"), ret=["StudyInstanceUID", "StudyDate"])
    check_find(port, work, "StudyDate 20240201- (open end)", "STUDY", ["StudyDate=20240201-"],
               by(lambda r: r["StudyDate"] >= "20240201"), ret=["StudyInstanceUID", "StudyDate"])
    check_find(port, work, "StudyDate -20240115 (open start)", "STUDY", ["StudyDate=-20240115"],
               by(lambda r: r["StudyDate"] <= "20240115"), ret=["StudyInstanceUID", "StudyDate"])
    check_find(port, work, "StudyTime 1000-1100", "STUDY", ["StudyTime=1000-1100"],
               by(lambda r: "100000" <= r["StudyTime"] <= "110000"), ret=["StudyInstanceUID", "StudyTime"])
    check_find(port, work, "StudyTime 2300- (open end)", "STUDY", ["StudyTime=2300-"],
               by(lambda r: r["StudyTime"] >= "230000"), ret=["StudyInstanceUID", "StudyTime"])
    check_find(port, work, "StudyTime -0100 (open start)", "STUDY", ["StudyTime=-0100"],
               by(lambda r: r["StudyTime"] <= "010000"), ret=["StudyInstanceUID", "StudyTime"])
    check_find(port, work, "StudyDate range and ModalitiesInStudy=CT together", "STUDY",
               ["StudyDate=20240101-20241231", "ModalitiesInStudy=CT"],
               by(lambda r: r["StudyDate"] >= "20240101" and
                  any(x["Modality"] == "CT" for x in sent if x["StudyInstanceUID"] == r["StudyInstanceUID"])),
               ret=["StudyInstanceUID"])
    uids = [study_uid["S1"], study_uid["S3"]]
    check_find(port, work, "StudyInstanceUID list (backslash)", "STUDY", ["StudyInstanceUID=" + "\\".join(uids)],
               by(lambda r: r["StudyInstanceUID"] in uids), ret=study_ret)
    check_find(port, work, "a key that matches nothing", "STUDY", ["AccessionNumber=NOSUCH"], [],
               ret=["StudyInstanceUID"])
    # the non-ASCII name, queried in Latin-1 and in UTF-8, answered decodably
    s1 = by(lambda r: r["PatientID"] == "RS-P1")
    for cs, enc in (("ISO_IR 100", "latin-1"), ("ISO_IR 192", "utf-8")):
        ok, got = check_find(port, work, f"PatientName Müller* given in {cs}", "STUDY",
                             ["SpecificCharacterSet=" + cs, b"PatientName=" + "Müller*".encode(enc)], s1,
                             ret=["StudyInstanceUID", "InstitutionName", "ReferringPhysicianName"])
        names = [str(r.PatientName) for r in got.values()]
        report(names == ["Müller^Jürgen"] and [str(r.InstitutionName) for r in got.values()] == ["Hôpital Nord"],
               f"non-ASCII values come back decodable ({cs} query)",
               f"{names} {[r.get('SpecificCharacterSet') for r in got.values()]}")
    check_find(port, work, "PatientName MÜLLER^JÜRGEN (case-insensitive beyond ASCII)", "STUDY",
               ["SpecificCharacterSet=ISO_IR 192", "PatientName=MÜLLER^JÜRGEN"], s1, ret=["StudyInstanceUID"])
    # SERIES level
    check_find(port, work, "every series of a study", "SERIES", [f"StudyInstanceUID={study_uid['S1']}"],
               by(lambda r: r["StudyInstanceUID"] == study_uid["S1"]), ret=series_ret)
    check_find(port, work, "Modality=CT within a study", "SERIES",
               [f"StudyInstanceUID={study_uid['S1']}", "Modality=CT"],
               by(lambda r: r["StudyInstanceUID"] == study_uid["S1"] and r["Modality"] == "CT"),
               ret=series_ret)
    check_find(port, work, "SeriesDescription T? * within a study", "SERIES",
               [f"StudyInstanceUID={study_uid['S1']}", "SeriesDescription=T? *"],
               by(lambda r: r["StudyInstanceUID"] == study_uid["S1"] and r["SeriesDescription"].startswith("T")),
               ret=["SeriesInstanceUID", "SeriesDescription"])
    check_find(port, work, "universal matching: every series", "SERIES", [], sent, ret=series_ret)
    check_find(port, work, "SeriesDate range and SeriesTime range", "SERIES",
               ["SeriesDate=20240115-20240201", "SeriesTime=0000-1200"],
               by(lambda r: "20240115" <= r["SeriesDate"] <= "20240201" and r["SeriesTime"] <= "120000"),
               ret=["SeriesInstanceUID", "SeriesDate", "SeriesTime"])
    # IMAGE level
    check_find(port, work, "universal matching: every instance", "IMAGE", [], sent, ret=image_ret)
    some_series = sent[0]["SeriesInstanceUID"]
    check_find(port, work, "exact InstanceNumber within a series", "IMAGE",
               [f"StudyInstanceUID={sent[0]['StudyInstanceUID']}", f"SeriesInstanceUID={some_series}",
                "InstanceNumber=3"],
               by(lambda r: r["SeriesInstanceUID"] == some_series and r["InstanceNumber"] == "3"),
               ret=image_ret)
    picks = [sent[i]["SOPInstanceUID"] for i in (1, 7, len(sent) - 1)]
    check_find(port, work, "SOPInstanceUID list (backslash)", "IMAGE", ["SOPInstanceUID=" + "\\".join(picks)],
               by(lambda r: r["SOPInstanceUID"] in picks), ret=image_ret)
    check_find(port, work, "SOPClassUID exact (MR images)", "IMAGE", [f"SOPClassUID={MR_CLASS}"],
               by(lambda r: r["SOPClassUID"] == MR_CLASS), ret=["SOPInstanceUID", "SOPClassUID"])
    check_find(port, work, "Rows, Columns, BitsAllocated (US) answered as binary values", "IMAGE", [], sent,
               ret=["SOPInstanceUID", "Rows", "Columns", "BitsAllocated"])
    check_find(port, work, "BitsAllocated=8 (a binary US key) matches the 8-bit images only", "IMAGE",
               ["BitsAllocated=8"], by(lambda r: r["BitsAllocated"] == "8"), ret=["SOPInstanceUID"])
    # C-CANCEL sent right behind the C-FIND-RQ: findscu --cancel cannot be this early (it cancels
    # after reading answers, by which time a small result set has been sent in full)
    c = Client(port, [(1, FIND_STUDY_ROOT, [IMPLICIT_LE])])
    statuses, released = [], False
    if c.accepted(1):
        ident = struct.pack("<HHI", 0x0008, 0x0052, 6) + b"IMAGE " + struct.pack("<HHI", 0x0008, 0x0018, 0)
        c.s.sendall(pdata(1, True, True, command([(0x0002, ui(FIND_STUDY_ROOT)), (0x0100, us(0x0020)),
                                                  (0x0110, us(7)), (0x0700, us(0)), (0x0800, us(0x0000))])) +
                    pdata(1, False, True, ident) +
                    pdata(1, True, True, command([(0x0100, us(0x0FFF)), (0x0120, us(7)), (0x0800, us(0x0101))])))
        while True:
            rsp = c.recv_command()
            if rsp is None:
                break
            st = struct.unpack("<H", rsp[0x0900])[0]
            statuses.append(st)
            if st not in (0xFF00, 0xFF01):
                break
        released = c.release()
    c.close()
    report(statuses and statuses[-1] == 0xFE00 and len(statuses) - 1 < len(sent) and released,
           "C-CANCEL right behind a C-FIND-RQ: final status Cancel (FE00), association still usable",
           f"statuses {[hex(x) for x in statuses[-3:]]}, {len(statuses)} responses")
    return study_uid


def group_retrieve(port, work, sent, study_uid, recv, scp_ok):
    by = lambda f: [r for r in sent if f(r)]  # noqa: E731

    def move(level, keys, want, label, extra=()):
        for f in glob.glob(os.path.join(recv, "*")):
            os.unlink(f)
        args = ["movescu", "-S", "-v", "-aec", AET, "-aem", "STORESCP", "-to", "10", "-k",
                f"QueryRetrieveLevel={level}"]
        for k in keys:
            args += ["-k", k]
        p = run(args + list(extra) + [HOST, str(port)])
        # storescp writes each file after answering: give it a moment
        wait_until(lambda: len(glob.glob(os.path.join(recv, "*"))) >= len(want), 5)
        problems = compare_received(received_files(recv), want)
        if p.returncode != 0 or "Final Move Response (Success)" not in out_of(p):
            problems.insert(0, f"movescu exit {p.returncode}: {out_of(p)[-300:]}")
        report(scp_ok and not problems, f"movescu {level}: {label}: byte-identical data sets at storescp",
               "; ".join(problems[:4]))

    s1 = by(lambda r: r["StudyInstanceUID"] == study_uid["S1"])
    move("STUDY", [f"StudyInstanceUID={study_uid['S1']}"], s1, f"{len(s1)} instances, 3 series")
    s4 = by(lambda r: r["StudyInstanceUID"] == study_uid["S4"])
    move("STUDY", [f"StudyInstanceUID={study_uid['S4']}"], s4, "every transfer syntax variant")
    ser = by(lambda r: r["StudyInstanceUID"] == study_uid["S2"])
    move("SERIES", [f"StudyInstanceUID={study_uid['S2']}", f"SeriesInstanceUID={ser[0]['SeriesInstanceUID']}"],
         ser, "one series")
    s3 = by(lambda r: r["StudyInstanceUID"] == study_uid["S3"])[:2]
    move("IMAGE", [f"StudyInstanceUID={study_uid['S3']}", f"SeriesInstanceUID={s3[0]['SeriesInstanceUID']}",
                   "SOPInstanceUID=" + "\\".join(r["SOPInstanceUID"] for r in s3)], s3, "two instances by UID list")

    # C-GET: the requestor proposes the syntaxes it takes; radshare sends as stored, never transcoded
    def get(level, keys, want, label, opt=(), transcoded_ok=False):
        d = tempfile.mkdtemp(dir=work, prefix="get-")
        args = ["getscu", "-S", "-v", "-aec", AET, "-to", "10", "+B", "-od", d] + list(opt) + \
            ["-k", f"QueryRetrieveLevel={level}"]
        for k in keys:
            args += ["-k", k]
        p = run(args + [HOST, str(port)])
        problems = compare_received(received_files(d), want, transcoded_ok)
        m = re.search(r"Received C-GET Response \((\w+)\)\s*\n.*Final status report", out_of(p))
        if p.returncode != 0 or not m or m.group(1) != "Success":
            problems.insert(0, f"getscu exit {p.returncode}: {out_of(p)[-300:]}")
        report(not problems, f"getscu {level}{(' ' + ' '.join(opt)) if opt else ''}: {label}: "
               + ("arrives, as stored or converted" if transcoded_ok else "byte-identical"),
               "; ".join(problems[:4]))
        shutil.rmtree(d, ignore_errors=True)

    get("STUDY", [f"StudyInstanceUID={study_uid['S1']}"], s1, f"{len(s1)} instances")
    get("SERIES", [f"StudyInstanceUID={study_uid['S2']}", f"SeriesInstanceUID={ser[0]['SeriesInstanceUID']}"], ser,
        "one series")
    get("IMAGE", [f"StudyInstanceUID={study_uid['S3']}", f"SeriesInstanceUID={s3[0]['SeriesInstanceUID']}",
                  f"SOPInstanceUID={s3[1]['SOPInstanceUID']}"], s3[1:], "one instance")
    for name, (_, _, opt, _, ts) in VARIANTS.items():
        recs = [r for r in sent if r["ts"] == ts and r["StudyInstanceUID"] == study_uid["S4"]]
        if recs:
            # getscu proposes one context per class: radshare picks one syntax for it before
            # knowing what will be asked for. Compressed data must come back as stored; stored
            # uncompressed data may come back losslessly converted to the syntax radshare took.
            # (getscu 3.6.7's +xi still proposes explicit VR LE only, so implicit VR LE is asked
            # for with getscu's default proposal: explicit LE, big endian, implicit LE.)
            get("SERIES", [f"StudyInstanceUID={study_uid['S4']}", f"SeriesInstanceUID={recs[0]['SeriesInstanceUID']}"],
                recs, f"the {name} series", [opt] if opt else [], transcoded_ok=ts in UNCOMPRESSED)

    # a C-GET requestor that proposed a storage context without the SCP role gets no C-STORE-RQ
    c = Client(port, [(1, GET_STUDY_ROOT, [IMPLICIT_LE]), (3, CT_CLASS, [EXPLICIT_LE])])
    commands = []
    if c.accepted(1):
        uid = ui(study_uid["S2"])
        ident = struct.pack("<HHI", 0x0008, 0x0052, 6) + b"STUDY " + struct.pack("<HHI", 0x0020, 0x000D, len(uid)) + uid
        c.s.sendall(pdata(1, True, True, command([(0x0002, ui(GET_STUDY_ROOT)), (0x0100, us(0x0010)),
                                                  (0x0110, us(5)), (0x0700, us(0)), (0x0800, us(0x0000))])) +
                    pdata(1, False, True, ident))
        while len(commands) < 50:
            rsp = c.recv_command()
            if rsp is None:
                break
            commands.append((struct.unpack("<H", rsp[0x0100])[0], struct.unpack("<H", rsp.get(0x0900, b"\0\0"))[0],
                             struct.unpack("<H", rsp.get(0x1022, b"\0\0"))[0]))
            if commands[-1][0] == 0x0001:   # a C-STORE-RQ: answer it, so the exchange ends
                c.send_command(3, command([(0x0002, ui(CT_CLASS)), (0x0100, us(0x8001)), (0x0120, rsp[0x0110]),
                                           (0x0800, us(0x0101)), (0x0900, us(0)), (0x1000, rsp[0x1000])]))
            elif commands[-1][1] not in (0xFF00, 0xFF01):
                break
        c.release()
    c.close()
    report(commands and all(cmd == 0x8010 for cmd, _, _ in commands) and commands[-1][1] in (0xA702, 0xB000) and
           commands[-1][2] == len(ser),
           "C-GET without the SCP role for the class: no C-STORE-RQ, sub-operations failed",
           [tuple(hex(x) for x in t) for t in commands[-3:]])

    # refusals and failures
    p = run(["movescu", "-S", "-v", "-aec", AET, "-aem", "NOSUCHAE", "-to", "10", "-k", "QueryRetrieveLevel=STUDY",
             "-k", f"StudyInstanceUID={study_uid['S2']}", HOST, str(port)])
    report(p.returncode != 0 and "Refused: MoveDestinationUnknown" in out_of(p) and echo(port),
           "C-MOVE to an unknown AE: refused (A801), movescu fails, radshare still serving", out_of(p)[-300:])
    p = run(["movescu", "-S", "-d", "-aec", AET, "-aem", "DOWN", "-to", "10", "-k", "QueryRetrieveLevel=STUDY",
             "-k", f"StudyInstanceUID={study_uid['S2']}", HOST, str(port)])
    final = out_of(p).split("Received Final Move Response")[-1]
    m = re.search(r"Failed Suboperations\s*:\s*(\d+)", final)
    report(m is not None and int(m.group(1)) == len(ser) and "Refused: OutOfResourcesSubOperations" in out_of(p) and
           echo(port), "C-MOVE to a configured peer that is down: refused (A702), every sub-operation failed",
           final[-400:])

    # a destination that never answers the SYN (its accept queue is full): given up after --timeout
    hole = HOLE
    fillers = []
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(hole.getsockname())
        fillers.append(f)
    time.sleep(0.2)
    t0 = time.time()
    p = run(["movescu", "-S", "-d", "-aec", AET, "-aem", "HOLE", "-to", "60", "-k", "QueryRetrieveLevel=STUDY",
             "-k", f"StudyInstanceUID={study_uid['S2']}", HOST, str(port)], timeout=120)
    took = time.time() - t0
    final = out_of(p).split("Received Final Move Response")[-1]
    m = re.search(r"Failed Suboperations\s*:\s*(\d+)", final)
    report(m is not None and int(m.group(1)) == len(ser) and took < 3 * SERVER_TIMEOUT and echo(port),
           f"C-MOVE to a destination that drops the connection request: failed after the --timeout "
           f"({took:.1f}s), not the kernel's", final[-400:])
    for f in fillers:
        f.close()


def group_bad_peers(srv, work, sent, data):
    port = srv.port
    before_objs = object_files(data)
    _, before_sops = all_sops(port, work)

    # a PDU longer than its data, the socket then held open: dropped after --timeout, meanwhile others served
    held = socket.create_connection((HOST, port))
    held.sendall(b"\x01\x00" + struct.pack(">I", 1000) + b"\x00\x01\x00\x00" + b"RADSHARE".ljust(16))
    held_since = time.time()

    s = socket.create_connection((HOST, port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n")
    s.settimeout(10)
    try:
        first = s.recv(10)
    except (socket.timeout, OSError) as e:
        first = repr(e).encode()
    s.close()
    report(first == b"" or first[:1] == b"\x07", "an HTTP request: A-ABORT or closed connection", first)
    report(echo(port), "echoscu still works after the HTTP request")

    s = socket.create_connection((HOST, port))
    s.sendall(b"\x01\x00" + struct.pack(">I", 5000) + b"\x00\x01" + b"x" * 40)
    s.shutdown(socket.SHUT_WR)
    report(peer_gone(s, 3), "a PDU longer than its data, then EOF: connection ended at once")
    s.close()

    report(echo(port), "echoscu works while a truncated PDU is held open")

    # the same inside an association: a P-DATA-TF announcing more than is sent
    c = Client(port, [(1, VERIFICATION, [IMPLICIT_LE])])
    c.s.sendall(b"\x04\x00" + struct.pack(">I", 100000) + b"\x00\x00\x00\x20\x01\x03")
    t0 = time.time()
    gone = peer_gone(c.s, SERVER_TIMEOUT + 10)
    report(c.type == 2 and gone and time.time() - t0 < SERVER_TIMEOUT + 5,
           "a P-DATA-TF longer than its data, held open: dropped after the timeout", f"{time.time() - t0:.1f}s")
    c.close()
    report(peer_gone(held, max(0.1, SERVER_TIMEOUT + 5 - (time.time() - held_since))),
           "the truncated A-ASSOCIATE-RQ held open was dropped after the timeout")
    held.close()

    # an unknown SOP class only
    bad = os.path.join(work, "unknown-class.dcm")
    shutil.copy(sent[0]["path"], bad)
    # dcmodify updates the meta group's MediaStorageSOPClassUID/InstanceUID with the data set
    p = run(["dcmodify", "-nb", "-gin", "-m", "SOPClassUID=1.2.3.4.5", bad])
    bad_sop = str(pydicom.dcmread(bad, stop_before_pixels=True).SOPInstanceUID)
    p = run(["storescu", "-R", "-aec", AET, "-to", "10", HOST, str(port), bad])
    _, res, _ = findscu(port, work, "IMAGE", [f"SOPInstanceUID={bad_sop}"])
    report(p.returncode != 0 and not res and len(object_files(data)) == len(before_objs),
           "storescu -R with an unknown SOP class: refused, nothing stored", out_of(p)[-300:])
    c = Client(port, [(1, "1.2.3.4.5", [EXPLICIT_LE, IMPLICIT_LE])])
    report((c.type == 2 and c.results.get(1, (None,))[0] == 3) or c.type == 3,
           "A-ASSOCIATE-RQ for an unknown SOP class only: context rejected (abstract syntax not supported)",
           f"PDU {c.type}, results {c.results}")
    if c.type == 2:
        c.release()
    c.close()

    # aborts in the middle of a data set: nothing partial is kept
    src = sent[0]
    body = dataset_bytes(src["path"])
    for how in ("A-ABORT", "close", "silence"):
        sop = generate_uid()
        c = Client(port, [(1, src["SOPClassUID"], [EXPLICIT_LE])])
        ok = c.accepted(1)
        if ok:
            c.send_command(1, c.store_command(1, src["SOPClassUID"], sop, 1))
            pdus = c.data_pdus(1, body)
            c.s.sendall(b"".join(pdus[:len(pdus) // 2]))
            time.sleep(0.2)
            if how == "A-ABORT":
                c.s.sendall(ABORT_PDU)
                c.close()
            elif how == "close":
                c.close()
            else:
                ok = peer_gone(c.s, SERVER_TIMEOUT + 5)
                c.close()
        clean = wait_until(lambda: not tmp_leftovers(data), 5)
        _, res, _ = findscu(port, work, "IMAGE", [f"SOPInstanceUID={sop}"])
        report(ok and clean and not res and object_files(data) == before_objs,
               f"half a data set then {how}: no instance, no object file, tmp/ empty",
               f"found {len(res)}, tmp {tmp_leftovers(data)}, {len(object_files(data)) - len(before_objs)} new objects")
    _, after_sops = all_sops(port, work)
    report(after_sops == before_sops and echo(port), "the archive is unchanged by the bad peers and still serving")


def group_flood(srv, work):
    """200 associations at once against --max-associations 16."""
    port = srv.port
    N = 200
    outcomes = [None] * N
    barrier = threading.Barrier(N, timeout=30)

    def one(i):
        try:
            s = socket.create_connection((HOST, port), timeout=30)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            barrier.wait()
            s.sendall(assoc_rq_pdu([(1, VERIFICATION, [IMPLICIT_LE])], calling=f"FLOOD{i}"))
            t, body = recv_pdu(s)
            if t == 3:
                outcomes[i] = ("rj",) + tuple(body[1:4])
            elif t == 2:
                time.sleep(0.3)  # hold the slot a moment, so the limit is reached
                s.sendall(pdata(1, True, True, command([(0x0002, ui(VERIFICATION)), (0x0100, us(0x0030)),
                                                        (0x0110, us(1)), (0x0800, us(0x0101))])))
                t2, body2 = recv_pdu(s)
                st = parse_command(body2[6:]).get(0x0900) if t2 == 4 else None
                s.sendall(RELEASE_RQ_PDU)
                t3, _ = recv_pdu(s)
                outcomes[i] = ("ac", st == b"\0\0", t3 == 6)
            else:
                outcomes[i] = ("pdu", t)
            s.close()
        except Exception as e:  # noqa: BLE001 - every failure is an outcome to report
            outcomes[i] = ("error", repr(e))

    t0 = time.time()
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    secs = time.time() - t0
    accepted = sum(o == ("ac", True, True) for o in outcomes)
    limited = sum(o == ("rj", 2, 3, 2) for o in outcomes)
    others = [o for o in outcomes if o not in (("ac", True, True), ("rj", 2, 3, 2))]
    print(f"# flood: {accepted} accepted, {limited} rejected, {len(others)} other, {secs:.1f}s")
    report(accepted + limited == N and accepted >= MAX_ASSOCS and limited > 0 and secs < 30,
           f"{N} associations at once, limit {MAX_ASSOCS}: each echoed and released, or rejected "
           "(transient, presentation, local limit); none hangs",
           f"{accepted} accepted, {limited} limited, {len(others)} other {others[:3]}, {secs:.1f}s")
    report(wait_until(lambda: echo(port), 10), "echoscu works after the flood")


def make_series(work, name, count, rng):
    """count explicit VR LE instances of one new series (for the crash tests)."""
    d = os.path.join(work, name)
    os.makedirs(d)
    study = ("P2", "20240301", "090000", "CRASH " + name, "ACC9" + name[-1], "Crash^Test", "Crash Lab", [])
    study_uid, series_uid = generate_uid(), generate_uid()
    out = []
    for i in range(count):
        path = os.path.join(d, f"{i:03d}.dcm")
        make_instance(path, instance_attrs("P2", study_uid, study, series_uid, 1, "CT", name, i + 1), 16, rng)
        out.append(record_of(path))
    return out


def check_survivors(srv, work, data, recs, acked, label, maybe=()):
    """After a restart: every acknowledged instance present and intact; of the rest, only the
    `maybe` ones (answered by the server, answer lost with the connection) may be present."""
    rc, found = all_sops(srv.port, work)
    series = {r["SOPInstanceUID"] for r in recs}
    present = found & series
    allowed = set(acked) | set(maybe)
    report(rc == 0 and set(acked) <= present and present <= allowed,
           f"{label}: all {len(acked)} acknowledged instances present after restart, nothing unacknowledged",
           f"{len(present)} present; missing {sorted(set(acked) - present)[:2]}, extra {sorted(present - allowed)[:2]}")
    # intact: every object file is its hash, there is one per indexed instance, tmp/ is empty
    bad = []
    for f in object_files(data):
        with open(f, "rb") as fh:
            if hashlib.sha256(fh.read()).hexdigest() != os.path.basename(f):
                bad.append(os.path.basename(f))
    report(not bad and len(object_files(data)) == len(found) and not tmp_leftovers(data),
           f"{label}: every object file matches its name, one per instance, tmp/ empty",
           f"{len(bad)} corrupt, {len(object_files(data))} objects for {len(found)} instances, tmp {tmp_leftovers(data)}")
    # and what comes back is what was sent
    d = tempfile.mkdtemp(dir=work, prefix="get-")
    p = run(["getscu", "-S", "-aec", AET, "-to", "10", "+B", "-od", d, "-k", "QueryRetrieveLevel=SERIES", "-k",
             f"StudyInstanceUID={recs[0]['StudyInstanceUID']}", "-k",
             f"SeriesInstanceUID={recs[0]['SeriesInstanceUID']}", HOST, str(srv.port)])
    problems = compare_received(received_files(d), [r for r in recs if r["SOPInstanceUID"] in present])
    report(p.returncode == 0 and not problems, f"{label}: the survivors come back byte-identical (getscu)",
           "; ".join(problems[:3]) or out_of(p)[-300:])
    shutil.rmtree(d, ignore_errors=True)


def group_sigkill(srv, work, data, rng):
    # 1. storescu streaming, killed after some acknowledgements (read from its verbose log)
    recs = make_series(work, "kill1", 60, rng)
    cli = spawn(["storescu", "-v", "-aec", AET, "-to", "10", HOST, str(srv.port)] + [r["path"] for r in recs],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    acked = 0
    for line in cli.stdout:
        if b"Received Store Response (Success)" in line:
            acked += 1
            if acked == 20:
                break
    srv.stop(signal.SIGKILL)
    killed = srv.p.returncode == -signal.SIGKILL
    # responses storescu had already read when the kill landed are acknowledgements too
    try:
        rest = cli.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        cli.kill()
        rest = cli.communicate()[0]
    acked += rest.count(b"Received Store Response (Success)")
    report(killed and 20 <= acked < len(recs) and cli.returncode != 0,
           "SIGKILL radshare while storescu streams: storescu fails midway", f"acked {acked}, rc {srv.p.returncode}")
    report(srv.start(), "radshare restarts on the same data directory")
    # storescu sends in order; the one after the last acknowledged may have been stored, answer lost
    check_survivors(srv, work, data, recs, [r["SOPInstanceUID"] for r in recs[:acked]], "storescu + SIGKILL",
                    maybe=[recs[acked]["SOPInstanceUID"]] if acked < len(recs) else [])

    # 2. deterministic: our client gets k acknowledgements, sends half of the next data set, SIGKILL
    recs = make_series(work, "kill2", 12, rng)
    c = Client(srv.port, [(1, CT_CLASS, [EXPLICIT_LE])])
    acked = []
    for i, r in enumerate(recs[:-1]):
        if c.store(1, CT_CLASS, r["SOPInstanceUID"], dataset_bytes(r["path"]), i + 1) == 0:
            acked.append(r["SOPInstanceUID"])
    last = recs[-1]
    c.send_command(1, c.store_command(1, CT_CLASS, last["SOPInstanceUID"], 99))
    pdus = c.data_pdus(1, dataset_bytes(last["path"]))
    c.s.sendall(b"".join(pdus[:len(pdus) // 2]))
    # the partial upload must be on disk (tmp/*.part) when the process dies
    wait_until(lambda: any(f.endswith(".part") for f in tmp_leftovers(data)), 3)
    had_part = any(f.endswith(".part") for f in tmp_leftovers(data))
    srv.stop(signal.SIGKILL)
    c.close()
    report(len(acked) == len(recs) - 1 and had_part, "SIGKILL in the middle of a data set (a .part in tmp/)",
           f"{len(acked)} acked, tmp {tmp_leftovers(data)}")
    report(srv.start(), "radshare restarts again")
    check_survivors(srv, work, data, recs, acked, "half-sent + SIGKILL")


def group_sigterm(srv, work, data, rng):
    # restart with a long timeout, so a prompt exit shows that idle peers are not waited for
    srv.stop()
    report(srv.start(timeout_s=60), "radshare starts with --timeout 60")
    recs = make_series(work, "term1", 8, rng)
    idle = Client(srv.port, [(1, VERIFICATION, [IMPLICIT_LE])])
    idle_ok = idle.type == 2 and idle.echo(1)
    c = Client(srv.port, [(1, CT_CLASS, [EXPLICIT_LE])])
    acked = []
    for i, r in enumerate(recs[:-1]):
        if c.store(1, CT_CLASS, r["SOPInstanceUID"], dataset_bytes(r["path"]), i + 1) == 0:
            acked.append(r["SOPInstanceUID"])
    last = recs[-1]
    c.send_command(1, c.store_command(1, CT_CLASS, last["SOPInstanceUID"], 99))
    pdus = c.data_pdus(1, dataset_bytes(last["path"]))
    c.s.sendall(b"".join(pdus[:len(pdus) // 2]))
    # and a connection that never sends its A-ASSOCIATE-RQ: no reason to wait for it
    mute = socket.create_connection((HOST, srv.port))
    time.sleep(0.3)
    t0 = time.time()
    srv.p.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    still_running = srv.alive()
    c.s.sendall(b"".join(pdus[len(pdus) // 2:]))   # the rest of the data set in flight
    rsp = c.recv_command()
    status = struct.unpack("<H", rsp[0x0900])[0] if rsp is not None else None
    if status == 0:
        acked.append(last["SOPInstanceUID"])
    ended = peer_gone(c.s, 10)
    try:
        rc = srv.p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        rc = None
    secs = time.time() - t0
    report(idle_ok and still_running and status == 0,
           "SIGTERM during a C-STORE: the server waits for the rest of the data set and acknowledges it",
           f"idle {idle_ok}, running {still_running}, status {status}")
    report(rc == 0 and secs < 8 and ended and peer_gone(idle.s, 1) and peer_gone(mute, 1),
           "then it ends the associations (idle ones, a mute connection too) and exits 0 within a few seconds",
           f"rc {rc}, {secs:.1f}s, ended {ended}")
    c.close()
    idle.close()
    mute.close()
    report(srv.start(), "radshare restarts after SIGTERM")
    check_survivors(srv, work, data, recs, acked, "SIGTERM mid-store")

    # storescu streaming, SIGTERM: exits 0 promptly, every acknowledged instance kept
    recs = make_series(work, "term2", 60, rng)
    cli = spawn(["storescu", "-v", "-aec", AET, "-to", "10", HOST, str(srv.port)] + [r["path"] for r in recs],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    acked = 0
    t0 = None
    for line in cli.stdout:
        if b"Received Store Response (Success)" in line:
            acked += 1
            if acked == 20:
                t0 = time.time()
                srv.p.send_signal(signal.SIGTERM)
    try:
        cli.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        cli.kill()
    try:
        rc = srv.p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        rc = None
    secs = time.time() - t0 if t0 else -1
    report(rc == 0 and 0 <= secs < 8 and 20 <= acked < len(recs),
           "SIGTERM while storescu streams: exits 0 within a few seconds", f"rc {rc}, {secs:.1f}s, acked {acked}")
    report(srv.start(), "radshare restarts")
    check_survivors(srv, work, data, recs, [r["SOPInstanceUID"] for r in recs[:acked]], "storescu + SIGTERM")
    rc = srv.stop()
    report(rc == 0, "a last SIGTERM on an idle server: exit 0", rc)


def group_mismatch(srv, work, sent, data):
    """A C-STORE whose data set contradicts its command (last: what it leaves would disturb the
    object counts of the other groups)."""
    report(srv.start(), "radshare starts once more")
    before_objs = object_files(data)
    ct = next(r for r in sent if r["SOPClassUID"] == CT_CLASS and r["ts"] == EXPLICIT_LE)
    c = Client(srv.port, [(1, CT_CLASS, [EXPLICIT_LE]), (3, MR_CLASS, [EXPLICIT_LE])])
    other_uid = generate_uid()
    st_uid = c.store(1, CT_CLASS, other_uid, dataset_bytes(ct["path"]), 1) if c.accepted(1) else None
    st_cls = c.store(3, MR_CLASS, ct["SOPInstanceUID"], dataset_bytes(ct["path"]), 2) if c.accepted(3) else None
    if c.type == 2:
        c.release()
    c.close()
    _, res, _ = findscu(srv.port, work, "IMAGE", [f"SOPInstanceUID={other_uid}"])
    failure = lambda st: st is not None and (st & 0xF000) in (0xA000, 0xC000)  # noqa: E731
    # the sender must not be told that an instance it will never find is stored, and the
    # instance the data set really is must stay as it was
    report(failure(st_uid) and failure(st_cls) and not res and object_files(data) == before_objs,
           "C-STORE whose data set's SOP Instance/Class UID differs from the command: failure status, nothing stored",
           f"statuses {st_uid and hex(st_uid)}, {st_cls and hex(st_cls)}; {len(object_files(data)) - len(before_objs)} "
           "new objects")
    d = tempfile.mkdtemp(dir=work, prefix="get-")
    p = run(["getscu", "-S", "-aec", AET, "-to", "10", "+B", "-od", d, "-k", "QueryRetrieveLevel=IMAGE", "-k",
             f"StudyInstanceUID={ct['StudyInstanceUID']}", "-k", f"SeriesInstanceUID={ct['SeriesInstanceUID']}",
             "-k", f"SOPInstanceUID={ct['SOPInstanceUID']}", HOST, str(srv.port)])
    got = received_files(d)
    problems = compare_received(got, [ct])
    if ct["SOPInstanceUID"] in got:
        meta = pydicom.dcmread(got[ct["SOPInstanceUID"]], stop_before_pixels=True).file_meta
        if str(meta.MediaStorageSOPInstanceUID) != ct["SOPInstanceUID"]:
            problems.append(f"meta says {meta.MediaStorageSOPInstanceUID}")
    report(p.returncode == 0 and not problems, "the instance those data sets really were is unchanged",
           "; ".join(problems[:3]) or out_of(p)[-300:])
    shutil.rmtree(d, ignore_errors=True)
    report(srv.stop() == 0, "SIGTERM: exit 0")


def run_group(srv, name, fn, *args, expect_running=True):
    """Run one group; an exception is a failure, not the end of the test. A server that died
    (a crash, an ASan report) is a failure too, and is restarted for the next group."""
    result = None
    try:
        result = fn(*args)
    except Exception as e:  # noqa: BLE001 - reported, and the next groups still run
        report(False, f"{name}: the test itself failed: {e!r}")
        for line in traceback.format_exc().splitlines():
            print("#   " + line)
    if expect_running:
        alive = srv.alive()
        report(alive, f"radshare still running after the {name} group", f"exit status {srv.p.returncode}")
        if not alive:
            srv.start()
    return result


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))  # run.sh's timeout: still clean up
    work = tempfile.mkdtemp(prefix="rs-dimse-")
    rng = np.random.default_rng(3)
    data = os.path.join(work, "data")
    recv = os.path.join(work, "recv")
    os.makedirs(recv)
    scp_port, down_port = free_port(), free_port()
    global HOLE
    HOLE = socket.socket()          # listens but never accepts: a peer that drops our SYNs once full
    HOLE.bind((HOST, 0))
    HOLE.listen(0)
    HOLE_PORT = HOLE.getsockname()[1]
    srv = Server(work, "radshare", data, ["--max-associations", str(MAX_ASSOCS),
                                         "--peer", f"STORESCP={HOST}:{scp_port}", "--peer", f"DOWN={HOST}:{down_port}",
                                         "--peer", f"HOLE={HOST}:{HOLE_PORT}"])
    t_start = time.time()
    try:
        # 1
        if not report(srv.start(), "radshare starts and echoscu succeeds"):
            return 1
        scp = spawn(["storescp", "+xa", "+B", "-dhl", "-aet", "STORESCP", "-od", recv, str(scp_port)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        scp_ok = wait_until(lambda: scp.poll() is None and
                            run(["echoscu", "-aec", "STORESCP", HOST, str(scp_port)]).returncode == 0, 10)
        # 2
        sets = build_data(work, rng)
        sent = run_group(srv, "C-STORE", group_store, srv.port, work, sets, data)
        if sent:
            # 3, 4
            study_uid = run_group(srv, "C-FIND", group_find, srv.port, work, sent)
            if study_uid:
                run_group(srv, "C-MOVE/C-GET", group_retrieve, srv.port, work, sent, study_uid, recv, scp_ok)
            # 5
            run_group(srv, "bad peers", group_bad_peers, srv, work, sent, data)
        run_group(srv, "200 connections", group_flood, srv, work)
        # 6, 7
        run_group(srv, "SIGKILL", group_sigkill, srv, work, data, rng)
        run_group(srv, "SIGTERM", group_sigterm, srv, work, data, rng, expect_running=False)
        if sent:
            run_group(srv, "mismatched C-STORE", group_mismatch, srv, work, sent, data, expect_running=False)
        with open(srv.log, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        san = [l for l in log.splitlines() if re.search(r"Sanitizer|runtime error:|free\(\)|double free", l)]
        report(not san, "no sanitizer report or allocator abort in radshare's log", san[:3])
        print(f"# {time.time() - t_start:.1f}s")
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
                p.wait()
        if tap.failed and os.environ.get("KEEP"):
            print(f"# kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"1..{tap.n}")
    return tap.status()


if __name__ == "__main__":
    sys.exit(main())
