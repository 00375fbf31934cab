#!/usr/bin/python3
"""The share-link viewer in a real browser against a real radshare: storescu loads a two-series MR
study into `radshare serve`, a radiologist account made with `radshare user add` creates a share
through POST /api/shares, and tests/web/viewer_check.mjs drives Debian's Chromium (playwright-core)
on /s/{token}: first image drawn, scrolling to the last image, window change re-rendered by the
server, zoom/pan, phone layout, the download button. A second share without download permission
must not show the button. TAP output: viewer_check's lines are renumbered into this script's.
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rstest import RADSHARE, free_port, tap  # noqa: E402

report = tap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST = "127.0.0.1"


def phantom(size, k, count, rng):
    """A head-like slice: skull ring, brain, ventricles shrinking through the stack, some noise."""
    y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    z = (k / max(count - 1, 1)) * 1.6 - 0.8
    r = np.sqrt(x * x / 0.75 + y * y)
    head = np.sqrt(max(1 - z * z, 0.05))
    img = np.where(r < head, 900.0, 0.0)
    img = np.where((r > head * 0.88) & (r < head), 2200.0, img)
    vent = (np.abs(x) - 0.12) ** 2 / 0.01 + y * y / 0.09 < (1 - abs(z)) * 0.8
    img = np.where(vent & (r < head * 0.88), 300.0, img)
    return np.clip(img + rng.normal(0, 20, img.shape), 0, 4095).astype(np.uint16)


def make_study(work, rng):
    study, files = generate_uid(), []
    for s_no, (desc, count) in enumerate([("AX T2", 12), ("SAG T1", 8)], start=1):
        series = generate_uid()
        for k in range(count):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            path = os.path.join(work, f"s{s_no}_{k:03d}.dcm")
            ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
            ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Viewer^Test", "VW1", "19800131", "F"
            ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20261204", "101500", "ACC-VW1"
            ds.StudyDescription, ds.ReferringPhysicianName = "MRI BRAIN", "Dupont^Jean"
            ds.Modality, ds.SeriesNumber, ds.SeriesDescription = "MR", s_no, desc
            ds.InstanceNumber, ds.SliceLocation = k + 1, float(k * 5)
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.Rows = ds.Columns = 256
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
            ds.WindowCenter, ds.WindowWidth = 1000, 2000
            ds.PixelData = phantom(256, k, count, rng).tobytes()
            ds.is_little_endian, ds.is_implicit_VR = True, False
            ds.save_as(path, write_like_original=False)
            files.append(path)
    return study, files


def api(base, method, path, auth, body=None):
    rq = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None,
                                headers={"Authorization": auth, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(rq, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def viewer_check(base, token, download):
    """Runs viewer_check.mjs and folds its TAP lines into ours."""
    p = subprocess.run(["node", os.path.join(ROOT, "tests/web/viewer_check.mjs"), base, token, "--download", download],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    lines = [l for l in p.stdout.splitlines() if l.startswith(("ok ", "not ok "))]
    for l in lines:
        ok = l.startswith("ok ")
        what = l.split(" - ", 1)[1] if " - " in l else l
        report(ok, f"[{download}] {what}")
    report(p.returncode == 0 and lines, f"viewer_check ({download}) ran to the end", (p.stderr or p.stdout)[-600:])


def main():
    work = tempfile.mkdtemp(prefix="rs-viewer-")
    srv = None
    try:
        nd = subprocess.run([os.path.join(ROOT, "tools/node-deps.sh")], capture_output=True, text=True, timeout=600)
        if not report(nd.returncode == 0, "playwright-core installed from npm", nd.stderr[-300:]):
            return 1
        data = os.path.join(work, "data")
        dport, hport = free_port(), free_port()
        base = f"http://{HOST}:{hport}"
        log = open(os.path.join(work, "server.log"), "wb")
        srv = subprocess.Popen([RADSHARE, "serve", "--data", data, "--dicom-port", str(dport), "--http-port",
                                str(hport), "--public-url", base], stdout=log, stderr=log)
        up = False
        for _ in range(200):
            if subprocess.run(["echoscu", "-aec", "RADSHARE", HOST, str(dport)], capture_output=True).returncode == 0:
                up = True
                break
            time.sleep(0.05)
        if not report(up, "radshare serve starts with HTTP"):
            return 1
        pw = "correct horse battery"
        r = subprocess.run([RADSHARE, "user", "add", "drhouse", "--role", "radiologist", "--data", data],
                           input=pw + "\n", capture_output=True, text=True)
        report(r.returncode == 0, "radiologist account created", r.stderr)
        auth = "Basic " + base64.b64encode(f"drhouse:{pw}".encode()).decode()
        study, files = make_study(work, np.random.default_rng(5))
        r = subprocess.run(["storescu", "-aec", "RADSHARE", HOST, str(dport)] + files, capture_output=True)
        report(r.returncode == 0, f"storescu loads {len(files)} instances in 2 series", r.stderr[-300:])
        tokens = {}
        for dl in (True, False):
            st, body = api(base, "POST", "/api/shares", auth,
                           {"study": study, "recipient": {"name": "Dr Jean Dupont", "email": "jd@example.org"},
                            "expires_in_days": 7, "download": dl})
            ok = st == 201 and isinstance(body, dict) and "/s/" in body.get("url", "")
            report(ok, f"POST /api/shares (download={dl}) gives 201 with a link", f"{st} {body}"[:300])
            if ok:
                tokens[dl] = body["url"].rsplit("/s/", 1)[1]
        if True in tokens:
            viewer_check(base, tokens[True], "yes")
        if False in tokens:
            viewer_check(base, tokens[False], "no")
        with open(log.name, "rb") as f:
            text = f.read().decode(errors="replace")
        report(not any(t in text for t in tokens.values()), "no share token in the server log")
        san = [l for l in text.splitlines() if "Sanitizer" in l or "runtime error" in l]
        report(not san, "no sanitizer report in radshare's log", san[:3])
        srv.send_signal(signal.SIGTERM)
        report(srv.wait(timeout=30) == 0, "SIGTERM: radshare exits 0")
    finally:
        if srv and srv.poll() is None:
            srv.kill()
            srv.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(f"1..{tap.n}")
    return tap.status()


if __name__ == "__main__":
    sys.exit(main())
