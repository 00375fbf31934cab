#!/usr/bin/python3
"""radshare serve driven by DCMTK's stock clients (no wrappers): echo, store in several transfer
syntaxes, find at every level, move to a storescp started here, get, bad peers, and a SIGKILL
in the middle of a transfer. TAP output; every server and client is started and stopped here.
"""
import glob
import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rstest import RADSHARE, run, free_port, tap, tmp_leftovers  # noqa: E402

report = tap

class Server:
    def __init__(self, data, port, extra=()):
        self.data, self.port, self.extra = data, port, list(extra)
        self.log = open(os.path.join(os.path.dirname(data), f"server-{port}.log"), "ab")
        self.p = None

    def start(self):
        self.p = subprocess.Popen([RADSHARE, "serve", "--data", self.data, "--dicom-port", str(self.port),
                                   "--timeout", "10"] + self.extra, stdout=self.log, stderr=self.log)
        for _ in range(100):
            if run(["echoscu", "-to", "2", "-aec", "RADSHARE", "127.0.0.1", str(self.port)]).returncode == 0:
                return True
            time.sleep(0.05)
        return False

    def stop(self, sig=signal.SIGTERM):
        if self.p and self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode if self.p else None


def make_instance(path, study, series, sop, pn, modality, date, time_, number, desc, series_desc, rng):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4" if modality == "MR" else "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = pn, "ID-" + pn[:4], "19700101", "F"
    ds.StudyDate, ds.StudyTime, ds.SeriesDate, ds.SeriesTime = date, time_, date, time_
    ds.AccessionNumber, ds.StudyID, ds.StudyDescription = "ACC" + date[-4:], "1", desc
    ds.ReferringPhysicianName, ds.InstitutionName = "Dr^Who", "Hopital Test"
    ds.Modality, ds.SeriesNumber, ds.SeriesDescription, ds.InstanceNumber = modality, 1, series_desc, number
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = 32
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = rng.integers(0, 4096, (32, 32), dtype=np.uint16).tobytes()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)


def dataset_bytes(path):
    """The bytes of the data set proper: everything after the file meta group."""
    with open(path, "rb") as f:
        b = f.read()
    gl = struct.unpack("<I", b[140:144])[0]
    return b[144 + gl:]


def find(port, level, keys, model="-S", outdir=None):
    d = tempfile.mkdtemp(dir=outdir)
    args = ["findscu", model, "-aec", "RADSHARE", "-X", "-od", d, "-k", f"QueryRetrieveLevel={level}"]
    for k in keys:
        args += ["-k", k]
    p = run(args + ["127.0.0.1", str(port)], cwd=d)
    res = [pydicom.dcmread(f, force=True) for f in sorted(glob.glob(os.path.join(d, "rsp*.dcm")))]
    shutil.rmtree(d)
    return p.returncode, res


def main():
    work = tempfile.mkdtemp(prefix="rs-serve-")
    rng = np.random.default_rng(7)
    port, scp_port = free_port(), free_port()
    data = os.path.join(work, "data")
    srv = Server(data, port, ["--peer", f"STORESCP=127.0.0.1:{scp_port}", "--peer", f"NOWHERE=127.0.0.1:{free_port()}"])
    scp = None
    try:
        report(srv.start(), "server starts and answers echoscu")

        # a study of two series (MR, CT), three instances each, and variants in other syntaxes
        src = os.path.join(work, "src")
        os.makedirs(src)
        study = generate_uid()
        sent = {}
        studies = [(study, "Müller^Anna", "20240115", "101500", "KNEE MRI"),
                   (generate_uid(), "Dupont^Jean", "20240220", "143000", "CHEST CT")]
        for st, pn, date, tm, desc in studies:
            for s_i, modality in enumerate(("MR", "CT")):
                series = generate_uid()
                for i in range(3):
                    sop = generate_uid()
                    path = os.path.join(src, f"{sop}.dcm")
                    make_instance(path, st, series, sop, pn, modality, date, tm, i + 1, desc, f"{modality} series {s_i}", rng)
                    sent[sop] = path
        explicit = list(sent.values())
        variants = {}
        for name, tool in [("rle", ["dcmcrle"]), ("implicit", ["dcmconv", "+ti"]), ("bigendian", ["dcmconv", "+tb"]),
                           ("jpeg-lossless", ["dcmcjpeg", "+e1"]), ("jpegls", ["dcmcjpls"])]:
            base = explicit[0]
            out = os.path.join(src, f"{name}.dcm")
            ok = run(tool + [base, out]).returncode == 0 and \
                run(["dcmodify", "-nb", "-gin", out]).returncode == 0  # a new SOP Instance UID
            if ok:
                sop = str(pydicom.dcmread(out, stop_before_pixels=True).SOPInstanceUID)
                sent[sop] = out
                variants[name] = out
            report(ok, f"made a {name} variant with DCMTK")

        p = run(["storescu", "-aec", "RADSHARE", "127.0.0.1", str(port)] + explicit)
        report(p.returncode == 0, "storescu sends a two-study, four-series set", p.stderr.decode()[-300:])
        for name, path in variants.items():
            opt = {"rle": "-xr", "implicit": "-xi", "bigendian": "-xb", "jpeg-lossless": "-xs", "jpegls": "-xt"}[name]
            p = run(["storescu", opt, "-aec", "RADSHARE", "127.0.0.1", str(port), path])
            report(p.returncode == 0 and b"E:" not in p.stderr, f"storescu {opt} stores the {name} variant",
                   p.stderr.decode()[-300:])
        rc, res = find(port, "IMAGE", ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"], outdir=work)
        found = {str(r.SOPInstanceUID) for r in res}
        report(rc == 0 and found == set(sent), "every stored instance is found at IMAGE level",
               f"{len(found)} found, {len(sent)} sent")

        # resending is a no-op success
        p = run(["storescu", "-aec", "RADSHARE", "127.0.0.1", str(port), explicit[0]])
        objs = [f for f in glob.glob(os.path.join(data, "objects", "*", "*", "*"))]
        report(p.returncode == 0 and len(objs) == len(sent), "a resent instance is a success and stores nothing new",
               f"{len(objs)} objects for {len(sent)} instances")

        # C-FIND at every level, values checked
        rc, res = find(port, "PATIENT", ["PatientName", "PatientID", "PatientBirthDate"], model="-P", outdir=work)
        names = sorted(str(r.PatientName) for r in res)
        report(rc == 0 and names == ["Dupont^Jean", "Müller^Anna"], "PATIENT level (patient root) lists both patients", names)
        rc, res = find(port, "STUDY", ["SpecificCharacterSet=ISO_IR 192", "PatientName=mül*", "StudyDate", "StudyDescription", "AccessionNumber",
                                       "ModalitiesInStudy", "NumberOfStudyRelatedInstances"], outdir=work)
        ok = rc == 0 and len(res) == 1 and str(res[0].PatientName) == "Müller^Anna" and \
            res[0].StudyDate == "20240115" and res[0].StudyDescription == "KNEE MRI" and \
            res[0].AccessionNumber == "ACC0115" and int(res[0].NumberOfStudyRelatedInstances) >= 6 and \
            set(res[0].ModalitiesInStudy) >= {"MR", "CT"}
        report(ok, "STUDY level: case-insensitive PN wildcard, attributes checked", [str(r) for r in res][:1])
        rc, res = find(port, "STUDY", ["StudyDate=20240201-20240229", "PatientName"], outdir=work)
        report(rc == 0 and [str(r.PatientName) for r in res] == ["Dupont^Jean"], "STUDY level: date range")
        rc, res = find(port, "STUDY", ["StudyDate=-20240131", "StudyTime=1000-1100", "PatientName"], outdir=work)
        report(rc == 0 and [str(r.PatientName) for r in res] == ["Müller^Anna"], "STUDY level: open date range and time range")
        rc, res = find(port, "STUDY", ["StudyDescription=?HEST*", "PatientName"], outdir=work)
        report(rc == 0 and [str(r.PatientName) for r in res] == ["Dupont^Jean"], "STUDY level: ? and * wildcards")
        rc, res = find(port, "SERIES", [f"StudyInstanceUID={study}", "Modality", "SeriesDescription",
                                        "NumberOfSeriesRelatedInstances"], outdir=work)
        mods = sorted(str(r.Modality) for r in res)
        report(rc == 0 and mods == ["CT", "MR"] and all(int(r.NumberOfSeriesRelatedInstances) >= 3 for r in res),
               "SERIES level: both series of a study with counts", mods)
        some = list(sent)[:2]
        rc, res = find(port, "IMAGE", [f"StudyInstanceUID={study}", "SOPInstanceUID=" + "\\".join(some),
                                       "InstanceNumber"], outdir=work)
        got = {str(r.SOPInstanceUID) for r in res}
        report(rc == 0 and got == set(some) & {k for k in sent if str(pydicom.dcmread(sent[k], stop_before_pixels=True).StudyInstanceUID) == study},
               "IMAGE level: UID list matching")

        # C-MOVE to a storescp started here; data sets byte-identical to what was sent
        recv = os.path.join(work, "recv")
        os.makedirs(recv)
        scp = subprocess.Popen(["storescp", "+xa", "-aet", "STORESCP", "-od", recv, str(scp_port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        p = run(["movescu", "-S", "-aec", "RADSHARE", "-aem", "STORESCP", "-k", "QueryRetrieveLevel=STUDY",
                 "-k", f"StudyInstanceUID={study}", "127.0.0.1", str(port)])
        got = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID): f for f in glob.glob(os.path.join(recv, "*"))}
        want = [k for k, v in sent.items() if str(pydicom.dcmread(v, stop_before_pixels=True).StudyInstanceUID) == study]
        same = all(k in got and dataset_bytes(got[k]) == dataset_bytes(sent[k]) for k in want)
        report(p.returncode == 0 and set(got) == set(want) and same, "movescu: the study arrives at storescp byte-identical",
               f"{len(got)} of {len(want)}")

        # C-GET on the same association
        getd = os.path.join(work, "get")
        os.makedirs(getd)
        p = run(["getscu", "-S", "-aec", "RADSHARE", "-od", getd, "-k", "QueryRetrieveLevel=STUDY",
                 "-k", f"StudyInstanceUID={studies[1][0]}", "127.0.0.1", str(port)])
        got = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID): f for f in glob.glob(os.path.join(getd, "*"))}
        want = [k for k, v in sent.items() if str(pydicom.dcmread(v, stop_before_pixels=True).StudyInstanceUID) == studies[1][0]]
        same = all(k in got and dataset_bytes(got[k]) == dataset_bytes(sent[k]) for k in want)
        report(p.returncode == 0 and set(got) == set(want) and same, "getscu: the study comes back byte-identical",
               f"{len(got)} of {len(want)}")

        p = run(["movescu", "-S", "-aec", "RADSHARE", "-aem", "UNKNOWN", "-k", "QueryRetrieveLevel=STUDY",
                 "-k", f"StudyInstanceUID={study}", "127.0.0.1", str(port)])
        report(p.returncode != 0 and b"Refused" in p.stderr + p.stdout, "C-MOVE to an unknown AE is refused")
        p = run(["movescu", "-S", "-aec", "RADSHARE", "-aem", "NOWHERE", "-k", "QueryRetrieveLevel=STUDY",
                 "-k", f"StudyInstanceUID={study}", "127.0.0.1", str(port)])
        report(p.returncode != 0, "C-MOVE to a peer that is down reports failure")

        # bad peers
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        try:
            reply = s.recv(10)
        except socket.timeout:
            reply = b"timeout"
        s.close()
        report(reply in (b"",) or reply[:1] == b"\x07", "an HTTP request gets an A-ABORT or a closed connection", reply)
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"\x01\x00" + struct.pack(">I", 1000) + b"\x00\x01" + b"x" * 20)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(15)
        try:
            s.recv(10)
            closed = True
        except socket.timeout:
            closed = False
        s.close()
        report(closed, "a PDU longer than its data ends without a hang")
        bad = os.path.join(work, "badclass.dcm")
        ds = pydicom.dcmread(explicit[0])
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.3.4.5"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = bad_sop = generate_uid()
        ds.save_as(bad)
        p = run(["storescu", "-aec", "RADSHARE", "127.0.0.1", str(port), bad])
        rc, res = find(port, "IMAGE", [f"SOPInstanceUID={bad_sop}"], outdir=work)
        report(p.returncode != 0 and not res, "an unknown SOP class is refused and nothing is stored")

        # an abort in the middle of a data set leaves nothing behind
        before = set(glob.glob(os.path.join(data, "objects", "*", "*", "*")))
        rq = open(os.path.join(os.path.dirname(__file__), "..", "data", "pdu", "storescu_assoc_rq.bin"), "rb").read()
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(rq)
        hdr = s.recv(6)
        body = b""
        while len(hdr) == 6 and len(body) < struct.unpack(">I", hdr[2:6])[0]:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        stream = open(os.path.join(os.path.dirname(__file__), "..", "data", "pdu", "storescu_pdata_stream.bin"), "rb").read()
        s.sendall(stream[:len(stream) // 2])
        time.sleep(0.2)
        s.sendall(b"\x07\x00\x00\x00\x00\x04\x00\x00\x00\x00")
        s.close()
        time.sleep(0.5)
        after = set(glob.glob(os.path.join(data, "objects", "*", "*", "*")))
        tmp_left = tmp_leftovers(data)
        report(hdr[:1] == b"\x02" and after == before and not tmp_left, "an abort mid-transfer leaves no object and no temp file",
               f"{len(after - before)} new objects, tmp {tmp_left}")

        # many connections at once, with a low association limit
        srv.stop()
        srv2 = Server(data, port, ["--max-associations", "8"])
        report(srv2.start(), "server restarts with --max-associations 8")
        echo_rq = open(os.path.join(os.path.dirname(__file__), "..", "data", "pdu", "echoscu_assoc_rq.bin"), "rb").read()
        outcomes = []

        def one():
            try:
                c = socket.create_connection(("127.0.0.1", port), timeout=20)
                c.sendall(echo_rq)
                h = c.recv(10)
                time.sleep(0.5)
                c.close()
                outcomes.append(h[:1] + (h[6:10] if h[:1] == b"\x03" else b""))
            except Exception as e:  # noqa: BLE001 - any failure is an outcome to report
                outcomes.append(repr(e).encode())
        threads = [threading.Thread(target=one) for _ in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        ACCEPT, LIMIT = b"\x02", b"\x03\x00\x02\x03\x02"  # A-ASSOCIATE-AC; RJ transient, presentation, local limit
        accepted = sum(o == ACCEPT for o in outcomes)
        limited = sum(o == LIMIT for o in outcomes)
        others = [o for o in outcomes if o not in (ACCEPT, LIMIT)][:3]
        report(len(outcomes) == 200 and accepted + limited == 200 and accepted >= 8 and limited > 0,
               "200 connections at once: each accepted or rejected (transient, local limit)",
               f"{accepted} accepted, {limited} limited, others {others}")
        report(run(["echoscu", "-aec", "RADSHARE", "127.0.0.1", str(port)]).returncode == 0, "still serving after that")
        srv2.stop()

        # SIGKILL while storescu streams: every acknowledged instance survives intact
        many = os.path.join(work, "many")
        os.makedirs(many)
        files = []
        kill_series = generate_uid()
        for i in range(60):
            sop = generate_uid()
            path = os.path.join(many, f"{i:03d}.dcm")
            make_instance(path, study, kill_series, sop, "Kill^Test", "MR", "20240301", "090000", i + 1, "KILL", "k", rng)
            files.append((sop, path))
        srv3 = Server(data, port)
        srv3.start()
        cli = subprocess.Popen(["storescu", "-v", "-aec", "RADSHARE", "127.0.0.1", str(port)] + [f for _, f in files],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        acked = 0
        for line in cli.stdout:
            if b"Received Store Response (Success)" in line:
                acked += 1
                if acked == 25:
                    break
        srv3.p.send_signal(signal.SIGKILL)  # also when fewer were acknowledged: reported below
        cli.wait(timeout=30)
        srv3.p.wait()
        report(acked == 25, "storescu was streaming when the server was killed", f"{acked} acknowledged")
        srv4 = Server(data, port)
        report(srv4.start(), "server restarts after SIGKILL")
        rc, res = find(port, "IMAGE", [f"SeriesInstanceUID={kill_series}", "SOPInstanceUID"], outdir=work)
        present = {str(r.SOPInstanceUID) for r in res}
        acked_sops = {sop for sop, _ in files[:acked]}
        report(acked_sops <= present and len(present) <= acked + 1, "every acknowledged instance is present after SIGKILL",
               f"{acked} acknowledged, {len(present)} present")
        intact = True
        for f in glob.glob(os.path.join(data, "objects", "*", "*", "*")):
            with open(f, "rb") as fh:
                intact &= hashlib.sha256(fh.read()).hexdigest() == os.path.basename(f)
        report(intact and not tmp_leftovers(data), "every object file matches its hash and tmp/ holds no received bytes",
               tmp_leftovers(data))
        rc_term = srv4.stop(signal.SIGTERM)
        report(rc_term == 0, "SIGTERM exits cleanly", rc_term)
        logs = b"".join(open(f, "rb").read() for f in glob.glob(os.path.join(work, "server-*.log")))
        report(b"Sanitizer" not in logs and b"runtime error" not in logs, "no sanitizer report in the server logs")
    finally:
        if scp:
            scp.kill()
            scp.wait()
        for s in ("srv", "srv2", "srv3", "srv4"):
            if s in locals() and locals()[s].p and locals()[s].p.poll() is None:
                locals()[s].p.kill()
        srv.stop(signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)
    return tap.status()


if __name__ == "__main__":
    sys.exit(main())
