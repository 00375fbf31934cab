#!/usr/bin/python3
"""test_share_e2e.py - the whole path a report takes, with real parts only: `radshare serve` with a
staff account, an aiosmtpd SMTP server and an MLLP listener that ACKs, a 2-series study (2 x 10 slices,
256x256, 16-bit, made with pydicom) stored with DCMTK storescu, a report POSTed to
/api/studies/{uid}/reports (HTTP Basic), the e-mail received and its link followed (study.json, the
viewer page), the ORU^R01 with the link in an OBX RP, the ZIP download checked instance by instance
(dataset bytes identical), its DICOMDIR read by dcmdump, dciodvfy and pydicom, and the security
side: wrong token 404, other study's UIDs 404, revocation 410 on the next request, download refused
by a view-only share, each attempt in `radshare audit list`, `radshare audit verify` exit 0 then 1
after one line of the log is edited. Prints TAP."""
import base64
import email
import email.policy
import io
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
import zipfile

import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rstest import RADSHARE, free_port, tap, Resp, http  # noqa: E402
from peers import Mllp, smtp_server  # noqa: E402

ok = tap


def make(path, study, series, sop, series_no, inst_no, pn, rows=256, cols=256, pid="PID-42"):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = pn, pid, "19800131", "F"
    ds.StudyDate, ds.StudyTime, ds.StudyDescription, ds.AccessionNumber = "20261201", "101500", "MRI knee", "A123"
    ds.StudyID = "S1"
    ds.ReferringPhysicianName = "Peeters^Anne"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "MR", series_no, inst_no
    ds.SeriesDescription = "series %d" % series_no
    ds.ImagePositionPatient = [0, 0, 5.0 * inst_no]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [0.5, 0.5], 5.0
    ds.FrameOfReferenceUID = generate_uid()
    ds.SliceLocation, ds.WindowCenter, ds.WindowWidth = 5.0 * inst_no, 2048, 4096
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes((i * 7 + inst_no + series_no) & 0xFF for i in range(256)) * (rows * cols * 2 // 256)
    ds.save_as(path, write_like_original=False)


def dataset_bytes(b):
    """The bytes after the File Meta group (Part 10: preamble, DICM, group 2 with its length first)."""
    assert b[128:132] == b"DICM", "not Part 10"
    assert b[132:136] == b"\x02\x00\x00\x00"
    glen = struct.unpack("<I", b[140:144])[0]
    return b[144 + glen:]


def browser_checks(base, token, download):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    d = subprocess.run([os.path.join(root, "tools", "node-deps.sh")], capture_output=True, text=True, timeout=300)
    if not ok(d.returncode == 0, "playwright-core for the browser checks (tools/node-deps.sh)", d.stderr[-300:]):
        return
    p = subprocess.run(["node", os.path.join(root, "tests", "web", "viewer_check.mjs"), base, token, "--download",
                        download], capture_output=True, text=True, timeout=300)
    lines = [l for l in p.stdout.splitlines() if re.match(r"(not )?ok \d+", l)]
    for l in lines:
        m = re.match(r"(not )?ok \d+ - (.*)", l)
        ok(not m.group(1), "browser: " + m.group(2))
    ok(p.returncode == 0 and len(lines) > 0, "viewer_check.mjs ran to the end", p.stderr[-400:])


def rs(*args, **kw):
    return subprocess.run([RADSHARE] + list(args), capture_output=True, text=True, timeout=120, **kw)


def main():
    tmp = tempfile.mkdtemp(prefix="rs-e2e-")
    data = os.path.join(tmp, "data")
    study_a, study_b = generate_uid(), generate_uid()
    ser_a = [generate_uid(), generate_uid()]
    ser_b = generate_uid()
    originals = {}  # sop -> file bytes
    files = []
    for sno, se in enumerate(ser_a, 1):
        for k in range(1, 11):
            sop = generate_uid()
            f = os.path.join(tmp, "%s.dcm" % sop)
            make(f, study_a, se, sop, sno, k, "Dupont^Marie")
            files.append(f)
            originals[sop] = open(f, "rb").read()
    sops_b = []
    for k in (1, 2):
        sop = generate_uid()
        sops_b.append(sop)
        f = os.path.join(tmp, "%s.dcm" % sop)
        make(f, study_b, ser_b, sop, 1, k, "Other^Bob", 16, 16, "PID-99")
        files.append(f)
    dport, hport, sport, mport = free_port(), free_port(), free_port(), free_port()
    base = "http://127.0.0.1:%d" % hport
    ctl, box = smtp_server(sport)
    mllp = Mllp(mport)
    directory = os.path.join(tmp, "recipients.conf")
    with open(directory, "w") as f:
        f.write("[PEETERS^ANNE]\nname = Dr Anne Peeters (directory)\nemail = anne.dir@cabinet.example\n")
    log = open(os.path.join(tmp, "server.log"), "wb")
    srv = subprocess.Popen([RADSHARE, "serve", "--data", data, "--dicom-port", str(dport), "--http-port", str(hport),
                            "--public-url", base, "--smtp", "smtp://127.0.0.1:%d" % sport,
                            "--mail-from", "reports@radshare.example.org", "--hl7", "127.0.0.1:%d" % mport,
                            "--directory", directory, "--timeout", "10"], stdout=log, stderr=log)
    try:
        up = False
        for _ in range(300):
            if subprocess.run(["echoscu", "-to", "2", "-aec", "RADSHARE", "127.0.0.1", str(dport)],
                              capture_output=True).returncode == 0:
                up = True
                break
            time.sleep(0.05)
        ok(up, "radshare serve is up")
        p = subprocess.run(["storescu", "-aec", "RADSHARE", "127.0.0.1", str(dport)] + files, capture_output=True)
        ok(p.returncode == 0, "storescu stores 22 instances (study A: 2 series x 10 256x256; study B)", p.stderr[-300:])
        r = rs("user", "add", "rad", "--role", "radiologist", "--data", data, input="correct horse battery\n")
        ok(r.returncode == 0, "radshare user add (password on stdin)", r.stderr)
        auth = {"Authorization": "Basic " + base64.b64encode(b"rad:correct horse battery").decode()}

        # ---- the report ----
        rep = {"text": "MRI left knee: no meniscal tear.\nConclusion: normal.",
               "recipient": {"name": "Dr Anne Peeters", "email": "anne.peeters@cabinet.example"},
               "expires_in_days": 7, "download": True}
        url = base + "/api/studies/%s/reports" % study_a
        r = http("POST", url, rep)
        ok(r.status == 401, "POST reports without credentials: 401", r.status)
        r = http("POST", url, b"{not json", auth)
        ok(r.status == 400 and b"error" in r.body, "bad JSON: 400 with an error body", (r.status, r.body))
        r = http("POST", base + "/api/studies/1.2.3.4.5.6/reports", rep, auth)
        ok(r.status == 404, "a study not in the archive: 404", (r.status, r.body))
        r = http("POST", url, {"recipient": rep["recipient"]}, auth)
        ok(r.status == 400 and b"text" in r.body, "no text: 400 naming it", (r.status, r.body))
        r = http("POST", url, rep, auth)
        ok(r.status == 201, "POST /api/studies/{uid}/reports: 201", (r.status, r.body))
        j = r.json() if r.status == 201 else {}
        sid = j.get("share", {}).get("id", "")
        link = j.get("share", {}).get("url", "")
        chans = sorted(d.get("channel") for d in j.get("deliveries", []))
        ok(len(sid) == 12 and link.startswith(base + "/s/"), "reply holds share.id and share.url", j)
        ok(chans == ["email", "hl7"], "deliveries: e-mail and HL7 (the --hl7 default)", chans)

        for _ in range(300):
            if box.messages and mllp.messages:
                break
            time.sleep(0.1)
        ok(len(box.messages) == 1, "the SMTP server received the report", len(box.messages))
        mail_link = ""
        if box.messages:
            frm, rcpt, raw = box.messages[0]
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            ok(rcpt == ["anne.peeters@cabinet.example"], "sent to the recipient", rcpt)
            part = msg.get_body(("plain",))
            text = part.get_content() if part else ""
            m = re.search(r"https?://\S+/s/[A-Za-z0-9_-]+", text)
            mail_link = m.group(0) if m else ""
            ok(mail_link == link, "the text part carries the share link", text[:400])
            ok("no meniscal tear" in text, "the text part carries the report")
        r = http("GET", base + "/api/studies/%s/reports" % study_a, None, auth)
        ok(r.status == 200 and any(d["status"] == "sent" and d["channel"] == "email" for d in r.json()["deliveries"]),
           "GET reports lists the e-mail delivery as sent", (r.status, r.body[:300]))
        oru = mllp.texts()[0] if mllp.messages else ""
        obx_rp = [s for s in oru.split("\r") if s.startswith("OBX|") and s.split("|")[2] == "RP"]
        ok("ORU^R01" in oru and obx_rp and link.replace("&", "\\T\\") in obx_rp[0].replace("\\T\\", "&") or
           (obx_rp and link in obx_rp[0]), "the MLLP listener got an ORU^R01 with the link in an OBX RP", oru[:500])

        # no recipient in the request: the directory entry for ReferringPhysicianName (Peeters^Anne)
        r = http("POST", url, {"text": "Addendum: see above.", "download": False}, auth)
        dirj = r.json() if r.status == 201 else {}
        ok(r.status == 201 and any(d.get("recipient") == "anne.dir@cabinet.example" for d in dirj.get("deliveries", [])),
           "no recipient given: the directory's entry for the referring physician", (r.status, r.body[:300]))
        for _ in range(300):
            if len(box.messages) >= 2:
                break
            time.sleep(0.1)
        ok(len(box.messages) == 2 and box.messages[1][1] == ["anne.dir@cabinet.example"],
           "the directory's address received the second report", [m[1] for m in box.messages])

        # ---- following the link ----
        link = mail_link or link
        r = http("GET", link + "/study.json")
        sj = r.json() if r.status == 200 else {}
        ok(r.status == 200 and sj.get("patient", {}).get("id") == "PID-42" and "Dupont" in sj["patient"]["name"] and
           sj.get("download") is True, "study.json: study A's patient, download allowed", r.body[:300])
        ok(r.status == 200 and sj.get("study", {}).get("uid") == study_a and len(sj.get("series", [])) == 2 and
           all(len(s["instances"]) == 10 for s in sj["series"]), "study.json: study A, 2 series of 10",
           (r.status, r.body[:300]))
        r = http("GET", link, None, {"Accept": "text/html"})
        ok(r.status == 200 and b"<html" in r.body.lower() and r.headers.get("Cache-Control") == "no-store",
           "the viewer page over the link", (r.status, r.body[:200]))
        s0 = sj["series"][0] if sj else {"uid": ser_a[0], "instances": [{"uid": "1"}]}
        r = http("GET", link + "/studies/%s/series/%s/instances/%s/frames/1/rendered" %
                 (study_a, s0["uid"], s0["instances"][0]["uid"]))
        ok(r.status == 200 and r.body[:2] == b"\xff\xd8", "a rendered frame through the link is a JPEG", r.status)

        # ---- the download ----
        r = http("GET", link + "/download")
        ok(r.status == 200 and r.headers.get("Content-Type", "").startswith("application/zip"),
           "GET /s/{token}/download: 200 application/zip", (r.status, r.body[:200]))
        zdir = os.path.join(tmp, "zip")
        try:
            z = zipfile.ZipFile(io.BytesIO(r.body))
            ok(z.testzip() is None, "the ZIP's CRCs check (zipfile)")
            z.extractall(zdir)
            names = z.namelist()
        except Exception as e:
            ok(False, "the ZIP opens", repr(e))
            names = []
        dicom_names = [x for x in names if x.startswith("DICOM/")]
        ok(len(dicom_names) == 20 and "DICOMDIR" in names and "README.TXT" in names,
           "ZIP: 20 DICOM files, DICOMDIR, README.TXT", names[:5])
        same, found = 0, set()
        for x in dicom_names:
            b = open(os.path.join(zdir, x), "rb").read()
            sop = pydicom.dcmread(io.BytesIO(b), stop_before_pixels=True).SOPInstanceUID
            found.add(sop)
            if sop in originals and dataset_bytes(b) == dataset_bytes(originals[sop]):
                same += 1
        ok(same == 20 and found == set(originals), "every instance of study A, dataset bytes identical", same)
        ok(not set(sops_b) & found, "nothing of study B in the ZIP")
        readme = open(os.path.join(zdir, "README.TXT"), encoding="ascii").read() if "README.TXT" in names else ""
        ok(all(w in readme for w in ("FRANCAIS", "NEDERLANDS", "DEUTSCH", "ENGLISH", "DICOMDIR")),
           "README.TXT in French, Dutch, German and English")
        ddir = os.path.join(zdir, "DICOMDIR")
        p = subprocess.run(["dcmdump", ddir], capture_output=True, text=True)
        ok(p.returncode == 0 and p.stdout.count("(0004,1430) CS [IMAGE") == 20, "dcmdump reads DICOMDIR: 20 IMAGE records",
           p.stderr[-300:])
        p = subprocess.run(["dciodvfy", ddir], capture_output=True, text=True)
        errs = [l for l in (p.stdout + p.stderr).splitlines() if l.startswith("Error")]
        ok(not errs, "dciodvfy accepts the DICOMDIR (no Error lines)", "\n".join(errs[:8]))
        try:
            dd = pydicom.dcmread(ddir)
            recs = [rr for rr in dd.DirectoryRecordSequence if rr.DirectoryRecordType == "IMAGE"]
            paths = [os.path.join(zdir, *rr.ReferencedFileID) for rr in recs]
            ok(len(recs) == 20 and all(os.path.isfile(x) for x in paths) and
               {rr.ReferencedSOPInstanceUIDInFile for rr in recs} == set(originals),
               "pydicom reads DICOMDIR: 20 IMAGE records naming existing files and the right SOPs")
        except Exception as e:
            ok(False, "pydicom reads DICOMDIR", repr(e))

        # a share of one series only: the ZIP holds that series and a DICOMDIR for it alone
        r = http("POST", base + "/api/shares", {"study": study_a, "series": [ser_a[1]], "download": True,
                                                 "recipient": {"name": "Dr X", "email": "x@cabinet.example"}}, auth)
        sub = r.json().get("url", "") if r.status == 201 else ""
        r = http("GET", sub + "/download") if sub else Resp(0, {}, b"")
        try:
            z = zipfile.ZipFile(io.BytesIO(r.body))
            sub_dicom = [x for x in z.namelist() if x.startswith("DICOM/")]
            sub_series = {pydicom.dcmread(io.BytesIO(z.read(x)), stop_before_pixels=True).SeriesInstanceUID
                          for x in sub_dicom}
            dd = pydicom.dcmread(io.BytesIO(z.read("DICOMDIR")))
            n_img = sum(1 for rr in dd.DirectoryRecordSequence if rr.DirectoryRecordType == "IMAGE")
        except Exception as e:
            sub_dicom, sub_series, n_img = [], set(), repr(e)
        ok(r.status == 200 and len(sub_dicom) == 10 and sub_series == {ser_a[1]} and n_img == 10,
           "a one-series share downloads that series only (10 files, 10 DICOMDIR records)",
           (r.status, len(sub_dicom), n_img))

        # ---- the viewer in headless Chromium (tests/web/viewer_check.mjs), its checks counted here ----
        token = link.rsplit("/", 1)[1]
        browser_checks(base, token, "yes")

        # ---- security ----
        wrong = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
        r = http("GET", base + "/s/" + wrong + "/study.json")
        ok(r.status == 404, "a wrong token: 404", r.status)
        r = http("GET", base + "/s/" + wrong + "/download")
        ok(r.status == 404, "a wrong token's download: 404", r.status)
        r = http("GET", link + "/studies/%s/series/%s/instances/%s/frames/1/rendered" % (study_b, ser_b, sops_b[0]))
        ok(r.status == 404, "study B's UIDs with study A's token: 404", r.status)
        r = http("GET", link + "/studies/%s/series/%s/thumbnail" % (study_b, ser_b))
        ok(r.status == 404, "study B's thumbnail with study A's token: 404", r.status)

        view_only = dict(rep, download=False)
        r = http("POST", base + "/api/login", {"user": "rad", "password": "correct horse battery"})
        cookie = (r.headers.get("Set-Cookie") or "").split(";")[0]
        ok(r.status == 200 and cookie.startswith("radshare_session="), "staff login gives a session cookie", r.status)
        r = http("POST", url, view_only, {"Cookie": cookie})
        vo = r.json()["share"] if r.status == 201 else {"url": link, "id": ""}
        ok(r.status == 201, "a second report with a view-only share: 201", (r.status, r.body[:200]))
        r = http("GET", base + "/api/shares/" + sid, None, auth)
        r2 = http("GET", base + "/api/shares/" + vo["id"], None, auth)
        ok(r.status == 200 and r.json().get("created_by") == "rad" and r2.status == 200 and
           r2.json().get("created_by") == "rad" and r2.json().get("download") is False,
           "the shares name their author (Basic and session) and the view-only flag", (r.body[:200], r2.body[:200]))
        r = http("GET", vo["url"] + "/download", None, {"Accept": "text/html"})
        ok(r.status == 403 and b"download" in r.body.lower() and b"<" in r.body,
           "download refused by a view-only share: 403 page", (r.status, r.body[:200]))
        r = http("GET", vo["url"] + "/study.json")
        ok(r.status == 200, "the view-only share still opens study.json", r.status)

        r = http("DELETE", base + "/api/shares/" + sid, None, auth)
        ok(r.status == 200, "DELETE /api/shares/{id}: 200", (r.status, r.body[:200]))
        r = http("GET", link + "/download")
        ok(r.status == 410, "the revoked share's download on the very next request: 410", r.status)
        r = http("GET", link + "/study.json")
        ok(r.status == 410, "the revoked share's study.json: 410", r.status)

        r = rs("audit", "list", "--study", study_a, "--data", data)
        recs = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        ev = [(x["event"], x.get("share")) for x in recs]
        want = [("report.created", sid), ("share.created", sid), ("share.downloaded", sid), ("study.viewed", sid),
                ("share.revoked", sid), ("access.out_of_scope", sid), ("access.refused", vo["id"])]
        missing = [w for w in want if w not in ev]
        ok(r.returncode == 0 and not missing, "audit list --study: report, share, download, view, revoke, refusals",
           missing)
        refused = [x for x in recs if x["event"] == "access.refused" and x.get("share") == sid]
        ok(len(refused) >= 2, "both requests after the revocation are audited as refused", len(refused))
        ok(token not in r.stdout, "the token is not in the audit records")
        r = rs("audit", "verify", "--data", data)
        ok(r.returncode == 0, "radshare audit verify: exit 0", r.stdout + r.stderr)
    finally:
        srv.terminate()
        try:
            srv.wait(timeout=30)
        except subprocess.TimeoutExpired:
            srv.kill()
        ctl.stop()
    ok(srv.returncode == 0, "serve exits cleanly on SIGTERM", srv.returncode)
    logf = sorted(x for x in os.listdir(os.path.join(data, "audit")) if x.endswith(".log"))[-1]
    lp = os.path.join(data, "audit", logf)
    lines = open(lp, encoding="utf-8").read().split("\n")
    lines[1] = lines[1].replace('"event":"', '"event":"x', 1)
    open(lp, "w", encoding="utf-8").write("\n".join(lines))
    r = rs("audit", "verify", "--data", data)
    ok(r.returncode == 1, "after editing one line of the audit log: audit verify exits 1", r.stdout + r.stderr)
    print("1..%d" % tap.n)
    if tap.failed:
        print("# data kept in " + tmp)
    else:
        subprocess.run(["rm", "-rf", tmp])
    return tap.status()


if __name__ == "__main__":
    sys.exit(main())
