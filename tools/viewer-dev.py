#!/usr/bin/python3
"""viewer-dev.py - a development server for the share-link viewer (src/web/), NOT a test.

radshare serves the viewer itself (the `http` module embeds src/web/* and the `share` module
implements the share-scoped endpoints of CONTRACTS.md). This script stands in for both while the
viewer is developed and its screenshots are taken: it serves src/web under /viewer/ and answers

  GET  /s/{token}                     index.html (410 page for the "expired"/"revoked" tokens)
  GET  /s/{token}/study.json          the contract's JSON (401 {"need_code":true} until unlocked)
  POST /s/{token}/unlock              {"code": "..."} -> cookie scoped to /s/{token}
  GET  /s/{token}/studies/{st}/series/{se}/instances/{sop}/frames/{n}/rendered?window=C,W&viewport=W,H
  GET  /s/{token}/studies/{st}/series/{se}/thumbnail?viewport=W,H
  GET  /s/{token}/download            the study's files as a ZIP

from a folder of DICOM files, rendering with the LINEAR VOI function of PS3.3 C.11.2.1.2 and writing
PNG with zlib (no imaging library needed). Tests in tests/ must never use it: they run against
radshare itself.

Usage:
  tools/viewer-dev.py sample DIR          write a synthetic CT head + MR brain study into DIR
  tools/viewer-dev.py serve DIR [--port 8765] [--delay MS]
Tokens (printed at start): study1, study1-nodl, study1-code (code 1234), study2..., expired, revoked.
"""
import argparse
import io
import json
import os
import struct
import sys
import threading
import time
import urllib.parse
import zipfile
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEB = os.path.join(ROOT, "src", "web")
CODE = "1234"


# ---------------------------------------------------------------- sample study (synthetic phantom)

# Ellipsoids of a head in normalised coordinates: x left-right, y posterior(+)/anterior(-),
# z foot(-)/head(+); each (centre, semi-axes, tissue). Later entries paint over earlier ones.
HEAD = [
    ((0, 0.02, -0.05), (0.725, 0.905, 0.94), "skin"),
    ((0, 0.02, -0.05), (0.712, 0.892, 0.925), "fat"),
    ((0, 0.02, -0.02), (0.675, 0.855, 0.87), "bone"),
    ((0, 0.02, -0.02), (0.662, 0.842, 0.857), "diploe"),
    ((0, 0.02, -0.02), (0.65, 0.83, 0.845), "bone"),
    ((0, 0.02, -0.02), (0.635, 0.815, 0.83), "csf"),
    ((0, 0.03, 0.0), (0.62, 0.80, 0.81), "gm"),
    ((0, 0.05, 0.08), (0.50, 0.67, 0.62), "wm"),
    ((0, 0.42, -0.52), (0.42, 0.30, 0.22), "gm"),          # cerebellum
    ((0, 0.42, -0.50), (0.30, 0.20, 0.12), "wm"),
    ((0, 0.18, -0.42), (0.12, 0.14, 0.30), "wm"),          # brain stem
    ((-0.12, -0.02, 0.16), (0.055, 0.30, 0.10), "csf"),    # lateral ventricles
    ((0.12, -0.02, 0.16), (0.055, 0.30, 0.10), "csf"),
    ((-0.15, 0.22, 0.05), (0.05, 0.10, 0.14), "csf"),      # occipital horns
    ((0.15, 0.22, 0.05), (0.05, 0.10, 0.14), "csf"),
    ((0, 0.0, 0.02), (0.012, 0.10, 0.08), "csf"),          # third ventricle
    ((-0.26, -0.74, -0.40), (0.13, 0.12, 0.12), "fat"),    # orbits
    ((0.26, -0.74, -0.40), (0.13, 0.12, 0.12), "fat"),
    ((-0.26, -0.76, -0.40), (0.09, 0.09, 0.09), "eye"),
    ((0.26, -0.76, -0.40), (0.09, 0.09, 0.09), "eye"),
    ((0, -0.72, -0.62), (0.20, 0.14, 0.14), "air"),        # sinuses
    ((0, -0.55, -0.72), (0.08, 0.10, 0.10), "air"),
]
TISSUE = {  # CT HU, MR T2, T1, FLAIR
    "air": (-1000, 0, 0, 0), "skin": (45, 600, 700, 800), "fat": (-95, 1000, 1900, 1100),
    "bone": (1350, 60, 60, 60), "diploe": (650, 700, 1300, 700), "csf": (8, 2500, 260, 140),
    "gm": (38, 1150, 700, 1150), "wm": (27, 760, 1050, 820), "eye": (12, 2300, 220, 180),
}


def folds(th, ph, seed, amp):
    """A smooth random-looking modulation of a surface (gyri and sulci) from a few sinusoids."""
    r = np.random.default_rng(seed)
    out = 0
    for f in (7, 11, 17, 23, 31):
        a, b, c = r.uniform(0, 2 * np.pi, 3)
        out = out + np.sin(f * th + a + 2.5 * np.sin(3 * ph + b)) * np.sin(0.8 * f * ph + c) / np.sqrt(f)
    return 1 + amp * out


def phantom(X, Y, Z, col):
    """Tissue values of the head phantom at the points (X, Y, Z) for contrast column col."""
    out = np.full(X.shape, float(TISSUE["air"][col]))
    r = np.sqrt(X * X + Y * Y + Z * Z) + 1e-9
    th, ph = np.arctan2(Y, X), np.arccos(np.clip(Z / r, -1, 1))
    wm_fold, gm_fold = folds(th, ph, 3, 0.11), folds(th, ph, 3, 0.025)
    brain = None
    for (cx, cy, cz), (a, b, c), t in HEAD:
        d = ((X - cx) / a) ** 2 + ((Y - cy) / b) ** 2 + ((Z - cz) / c) ** 2
        if t == "wm" and a > 0.4:
            d = d * wm_fold
        if t == "gm" and a > 0.6:
            d = d * gm_fold
            brain = d <= 1
        out[d <= 1] = TISSUE[t][col]
    # falx and interhemispheric fissure above the ventricles, deep grey nuclei
    fissure = brain & (np.abs(X) < 0.007) & ((Y < -0.33) | (Y > 0.33) | (Z > 0.32))
    out[fissure] = TISSUE["csf"][col]
    for sx in (-1, 1):
        d = ((X - sx * 0.2) / 0.08) ** 2 + ((Y + 0.02) / 0.14) ** 2 + ((Z - 0.0) / 0.1) ** 2
        out[(d <= 1) & (out == TISSUE["wm"][col])] = (TISSUE["gm"][col] * 2 + TISSUE["wm"][col]) / 3
        d = ((X - sx * 0.07) / 0.06) ** 2 + ((Y - 0.12) / 0.09) ** 2 + ((Z + 0.02) / 0.08) ** 2
        out[(d <= 1) & (out == TISSUE["wm"][col])] = (TISSUE["gm"][col] * 2 + TISSUE["wm"][col]) / 3
    return out


def smooth(a, n=2):
    for _ in range(n):
        a = (a + np.roll(a, 1, 0) + np.roll(a, -1, 0) + np.roll(a, 1, 1) + np.roll(a, -1, 1)) / 5
    return a


def write_series(outdir, common, series, rng):
    """series: dict(number, description, modality, col, plane, count, step, size, fov, window)."""
    n, size = series["count"], series["size"]
    series_uid = generate_uid()
    u = np.linspace(-series["fov"], series["fov"], size)
    A, B = np.meshgrid(u, u)                       # image columns, rows
    for i in range(n):
        pos = (i - (n - 1) / 2) * series["step"]
        if series["plane"] == "ax":
            X, Y, Z = A, B, np.full(A.shape, pos)
        elif series["plane"] == "sag":
            X, Y, Z = np.full(A.shape, pos + 0.012), A, -B    # just off the falx
        else:
            X, Y, Z = A, np.full(A.shape, pos), -B
        img = smooth(phantom(X, Y, Z * 1.1, series["col"]))
        if series["modality"] == "CT":
            img = img + rng.normal(0, 4.5, img.shape)
            stored = np.clip(img + 1024, 0, 4095).astype(np.uint16)
        else:
            bias = 1 + 0.18 * (A * 0.6 - B * 0.4)
            re, im = img * bias + rng.normal(0, 28, img.shape), rng.normal(0, 28, img.shape)
            stored = np.clip(np.sqrt(re * re + im * im), 0, 4095).astype(np.uint16)
        ds = Dataset()
        ds.update(common)
        sop = generate_uid()
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2" if series["modality"] == "CT" else "1.2.840.10008.5.1.4.1.1.4"
        ds.SOPInstanceUID = sop
        ds.Modality = series["modality"]
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series["number"]
        ds.SeriesDescription = series["description"]
        ds.BodyPartExamined = "HEAD"
        ds.InstanceNumber = i + 1
        mm = pos * 100
        ds.SliceLocation = f"{mm:.1f}"
        ds.SliceThickness = f"{series['step'] * 100:.1f}"
        ds.PixelSpacing = [f"{200 * series['fov'] / size:.4f}"] * 2
        ds.ImagePositionPatient = [f"{-100 * series['fov']:.1f}", f"{-100 * series['fov']:.1f}", f"{mm:.1f}"]
        ds.ImageOrientationPatient = {"ax": [1, 0, 0, 0, 1, 0], "sag": [0, 1, 0, 0, 0, -1],
                                      "cor": [1, 0, 0, 0, 0, -1]}[series["plane"]]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        c, w = series["window"]
        ds.WindowCenter, ds.WindowWidth = str(c), str(w)
        if series["modality"] == "CT":
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
            ds.KVP, ds.ConvolutionKernel = "120", "H30s"
        ds.PixelData = stored.tobytes()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.preamble = b"\0" * 128
        ds.save_as(os.path.join(outdir, f"{common.AccessionNumber}_s{series['number']:02d}_{i + 1:03d}.dcm"),
                   write_like_original=False)


def make_sample(outdir):
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(7)
    studies = [
        ({"PatientName": "DUPONT^Marie-Hélène", "PatientID": "PAT-0042719", "PatientBirthDate": "19580314",
          "PatientSex": "F", "StudyDate": "20261203", "StudyTime": "101522", "AccessionNumber": "CT26-118204",
          "StudyDescription": "CT HEAD WITHOUT CONTRAST", "ReferringPhysicianName": "LAMBERT^Claire^^Dr."},
         [dict(number=2, description="Head 5.0 H30s axial", modality="CT", col=0, plane="ax", count=36,
               step=0.044, size=512, fov=0.98, window=(40, 80)),
          dict(number=3, description="Head 2.0 H30s coronal", modality="CT", col=0, plane="cor", count=48,
               step=0.035, size=512, fov=0.98, window=(40, 80)),
          dict(number=4, description="Head 2.0 H30s sagittal", modality="CT", col=0, plane="sag", count=40,
               step=0.025, size=512, fov=0.98, window=(40, 80))],
         "CT HEAD WITHOUT CONTRAST\n\nIndication: headache for 3 weeks, no focal deficit.\n\n"
         "Technique: helical acquisition, axial 5 mm, coronal and sagittal 2 mm reconstructions.\n\n"
         "Findings: no intracranial haemorrhage, mass effect or midline shift. Grey/white matter "
         "differentiation is preserved. The ventricles and sulci are normal in size for age. "
         "Posterior fossa unremarkable. The calvarium is intact. Paranasal sinuses and mastoid air "
         "cells are clear.\n\nConclusion: normal non-contrast CT of the head.\n\n"
         "Dr. P. Martens, radiologist"),
        ({"PatientName": "JANSSENS^Pieter", "PatientID": "PAT-0051133", "PatientBirthDate": "19710922",
          "PatientSex": "M", "StudyDate": "20261202", "StudyTime": "143010", "AccessionNumber": "MR26-077310",
          "StudyDescription": "MRI BRAIN", "ReferringPhysicianName": "DUBOIS^Luc^^Dr."},
         [dict(number=1, description="T2 TSE axial", modality="MR", col=1, plane="ax", count=26,
               step=0.058, size=512, fov=1.0, window=(1300, 2600)),
          dict(number=2, description="T1 SE sagittal", modality="MR", col=2, plane="sag", count=24,
               step=0.045, size=512, fov=1.0, window=(950, 1900)),
          dict(number=3, description="FLAIR coronal", modality="MR", col=3, plane="cor", count=24,
               step=0.06, size=512, fov=1.0, window=(800, 1600))],
         "MRI BRAIN\n\nFindings: no signal abnormality of the white matter on FLAIR. Normal ventricular "
         "system. No restricted diffusion. Normal flow voids.\n\nConclusion: normal MRI of the brain.\n\n"
         "Dr. A. Peeters, radiologist"),
    ]
    for tags, series_list, report in studies:
        common = Dataset()
        for k, v in tags.items():
            setattr(common, k, v)
        common.SpecificCharacterSet = "ISO_IR 192"
        common.StudyInstanceUID = generate_uid()
        common.StudyID = "1"
        common.InstitutionName = "Hôpital Saint-Luc"
        for s in series_list:
            write_series(outdir, common, s, rng)
            print(f"  {tags['StudyDescription']}: series {s['number']} {s['description']} ({s['count']})")
        with open(os.path.join(outdir, common.StudyInstanceUID + ".report.txt"), "w") as f:
            f.write(report)


# ---------------------------------------------------------------- archive and rendering

class Archive:
    def __init__(self, folder):
        self.folder = folder
        self.studies = {}          # study uid -> {"tags": ds, "series": {uid: {...}}}
        self.files = {}            # sop uid -> path
        self.cache = {}            # sop uid -> (frames float32 array, default window)
        self.lock = threading.Lock()
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception:
                continue
            st = self.studies.setdefault(ds.StudyInstanceUID, {"tags": ds, "series": {}})
            se = st["series"].setdefault(ds.SeriesInstanceUID, {"tags": ds, "instances": []})
            se["instances"].append(ds)
            self.files[ds.SOPInstanceUID] = path
        self.order = sorted(self.studies, key=lambda u: str(self.studies[u]["tags"].get("StudyDate", "")), reverse=True)

    def study_json(self, uid, download):
        st = self.studies[uid]
        t = st["tags"]
        rep = None
        rp = os.path.join(self.folder, uid + ".report.txt")
        if os.path.exists(rp):
            rep = {"text": open(rp).read(), "author": "", "date": str(t.get("StudyDate", ""))}

        def num(v, d=None):
            try:
                return float(v[0] if isinstance(v, pydicom.multival.MultiValue) else v)
            except Exception:
                return d

        series = []
        for se_uid, se in st["series"].items():
            ins = sorted(se["instances"], key=lambda d: (int(d.get("InstanceNumber", 0) or 0), num(d.get("SliceLocation"), 0)))
            s0 = se["tags"]
            series.append({
                "uid": se_uid, "number": int(s0.get("SeriesNumber", 0) or 0), "modality": str(s0.get("Modality", "")),
                "description": str(s0.get("SeriesDescription", "")), "body_part": str(s0.get("BodyPartExamined", "")),
                "instances": [{"uid": d.SOPInstanceUID, "number": int(d.get("InstanceNumber", 0) or 0),
                               "rows": int(d.Rows), "cols": int(d.Columns), "frames": int(d.get("NumberOfFrames", 1) or 1),
                               "slice_location": num(d.get("SliceLocation")),
                               "window_center": num(d.get("WindowCenter")), "window_width": num(d.get("WindowWidth"))}
                              for d in ins]})
        series.sort(key=lambda s: s["number"])
        mods = sorted({s["modality"] for s in series})
        return {"patient": {"name": str(t.get("PatientName", "")), "id": str(t.get("PatientID", "")),
                            "birth_date": str(t.get("PatientBirthDate", "")), "sex": str(t.get("PatientSex", ""))},
                "study": {"uid": uid, "date": str(t.get("StudyDate", "")), "time": str(t.get("StudyTime", "")),
                          "description": str(t.get("StudyDescription", "")), "accession": str(t.get("AccessionNumber", "")),
                          "referring": str(t.get("ReferringPhysicianName", "")), "modalities": mods},
                "report": rep, "download": download,
                "expires": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30 * 86400)),
                "series": series}

    def frames(self, sop):
        with self.lock:
            if sop in self.cache:
                return self.cache[sop]
        ds = pydicom.dcmread(self.files[sop])
        px = ds.pixel_array.astype(np.float32)
        if int(ds.get("NumberOfFrames", 1) or 1) == 1:
            px = px[None]
        px = px * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)
        wc, ww = ds.get("WindowCenter"), ds.get("WindowWidth")
        if wc is not None and ww is not None:
            first = lambda v: float(v[0] if isinstance(v, pydicom.multival.MultiValue) else v)
            win = (first(wc), first(ww))
        else:
            lo, hi = float(px.min()), float(px.max())
            win = ((lo + hi) / 2, max(hi - lo, 1))
        with self.lock:
            self.cache[sop] = (px, win)
        return px, win


def voi_linear(x, c, w):
    """PS3.3 C.11.2.1.2.1 LINEAR window to 0..255."""
    w = max(w, 1.0)
    y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255 if w > 1 else np.where(x > c - 0.5, 255.0, 0.0)
    return np.clip(y, 0, 255).astype(np.uint8)


def fit(img, vw, vh):
    """Shrink into vw x vh keeping aspect (never enlarge), averaging blocks then sampling."""
    h, w = img.shape
    s = min(vw / w if vw else 1e9, vh / h if vh else 1e9, 1.0)
    if s >= 1.0:
        return img
    ow, oh = max(1, round(w * s)), max(1, round(h * s))
    k = max(1, int(1 / s))
    if k > 1:
        hh, ww = h // k * k, w // k * k
        img = img[:hh, :ww].reshape(hh // k, k, ww // k, k).mean(axis=(1, 3))
    ys = (np.arange(oh) * img.shape[0] / oh).astype(int)
    xs = (np.arange(ow) * img.shape[1] / ow).astype(int)
    return img[np.ix_(ys, xs)]


def png_gray(a):
    h, w = a.shape
    raw = b"".join(b"\x00" + a[y].tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 3)) + chunk(b"IEND", b""))


def pair(q, name):
    v = q.get(name)
    if not v:
        return None
    a, b = v[0].split(",")
    return float(a), float(b)


def render(archive, sop, frame, q):
    px, win = archive.frames(sop)
    if not 1 <= frame <= px.shape[0]:
        raise KeyError(frame)
    c, w = pair(q, "window") or win
    vp = pair(q, "viewport") or (0, 0)
    return png_gray(voi_linear(fit(px[frame - 1], int(vp[0]), int(vp[1])), c, w).astype(np.uint8))


# ---------------------------------------------------------------- HTTP

GONE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Link no longer valid</title><style>body{font:16px system-ui;background:#0d1117;color:#d6dde6;display:grid;place-items:center;
min-height:100vh;margin:0}main{max-width:32em;padding:2em}</style></head><body><main><h1>This link is no longer valid</h1>
<p>The images shared with this link have {what}. Please contact the radiology department that sent it
(Hôpital Saint-Luc, +32 2 000 00 00) to get a new link.</p></main></body></html>"""


class Handler(BaseHTTPRequestHandler):
    archive = None
    delay = 0.0
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if os.environ.get("VIEWER_DEV_LOG"):
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def send(self, status, mime, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", mime)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def json(self, status, obj, headers=()):
        self.send(status, "application/json", json.dumps(obj).encode(), headers)

    def share(self, token):
        """(study uid, download, code) for a token, or None."""
        order = self.archive.order
        base, _, flag = token.partition("-")
        if not base.startswith("study") or not base[5:].isdigit():
            return None
        i = int(base[5:]) - 1
        if not 0 <= i < len(order) or flag not in ("", "nodl", "code"):
            return None
        return order[i], flag != "nodl", CODE if flag == "code" else None

    def unlocked(self, token):
        return f"rs_unlock_{token.replace('-', '_')}=ok" in (self.headers.get("Cookie") or "")

    def do_GET(self):
        self.route("GET")

    def do_HEAD(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, method):
        if self.delay:
            time.sleep(self.delay)
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        q = urllib.parse.parse_qs(url.query)
        try:
            if parts[:1] == ["viewer"] and len(parts) == 2 and method == "GET":
                return self.static(parts[1])
            if parts[:1] == ["s"] and len(parts) >= 2:
                return self.shared(method, parts[1], parts[2:], q)
            self.json(404, {"error": "not found"})
        except (KeyError, ValueError, IndexError):
            self.json(404, {"error": "not found"})

    def static(self, name):
        path = os.path.join(WEB, name)
        if "/" in name or name.startswith(".") or not os.path.isfile(path):
            return self.json(404, {"error": "not found"})
        mime = {"js": "text/javascript", "css": "text/css", "html": "text/html; charset=utf-8",
                "svg": "image/svg+xml"}.get(name.rsplit(".", 1)[-1], "application/octet-stream")
        self.send(200, mime, open(path, "rb").read(), [("Cache-Control", "no-cache")])

    def shared(self, method, token, rest, q):
        if token in ("expired", "revoked"):
            what = "expired" if token == "expired" else "been withdrawn by the sender"
            if rest == ["study.json"]:
                return self.json(410, {"error": "gone", "reason": token})
            return self.send(410, "text/html; charset=utf-8", GONE.replace("{what}", what).encode())
        sh = self.share(token)
        if sh is None:
            return self.json(404, {"error": "not found"})
        study, download, code = sh
        if not rest:
            return self.send(200, "text/html; charset=utf-8", open(os.path.join(WEB, "index.html"), "rb").read(),
                             [("Cache-Control", "no-store")])
        if rest == ["unlock"] and method == "POST":
            n = min(int(self.headers.get("Content-Length") or 0), 4096)
            body = json.loads(self.rfile.read(n) or b"{}")
            if code and body.get("code") == code:
                cookie = f"rs_unlock_{token.replace('-', '_')}=ok; Path=/s/{token}; HttpOnly; SameSite=Strict"
                return self.json(200, {"ok": True}, [("Set-Cookie", cookie)])
            return self.json(403, {"error": "wrong code"})
        if code and not self.unlocked(token):
            return self.json(401, {"need_code": True})
        if rest == ["study.json"]:
            return self.json(200, self.archive.study_json(study, download), [("Cache-Control", "no-store")])
        if rest == ["download"] and download:
            return self.zip(study)
        st = self.archive.studies[study]
        if len(rest) >= 5 and rest[0] == "studies" and rest[1] == study and rest[2] == "series":
            se = st["series"][rest[3]]
            if rest[4:] == ["thumbnail"]:
                ins = se["instances"]
                mid = sorted(ins, key=lambda d: int(d.get("InstanceNumber", 0) or 0))[len(ins) // 2]
                return self.send(200, "image/png", render(self.archive, mid.SOPInstanceUID, 1, q or {"viewport": ["128,128"]}))
            if len(rest) == 9 and rest[4] == "instances" and rest[6] == "frames" and rest[8] == "rendered":
                if rest[5] not in {d.SOPInstanceUID for d in se["instances"]}:
                    raise KeyError(rest[5])
                return self.send(200, "image/png", render(self.archive, rest[5], int(rest[7]), q),
                                 [("Cache-Control", "private, max-age=3600")])
        self.json(404, {"error": "not found"})

    def zip(self, study):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for se in self.archive.studies[study]["series"].values():
                for d in se["instances"]:
                    z.write(self.archive.files[d.SOPInstanceUID], f"DICOM/{d.SOPInstanceUID}.dcm")
            z.writestr("README.txt", "Images shared by radshare (development server).\n")
        self.send(200, "application/zip", buf.getvalue(), [("Content-Disposition", 'attachment; filename="study.zip"')])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("dir")
    v = sub.add_parser("serve")
    v.add_argument("dir")
    v.add_argument("--port", type=int, default=8765)
    v.add_argument("--delay", type=float, default=0, help="milliseconds added to every answer")
    a = ap.parse_args()
    if a.cmd == "sample":
        return make_sample(a.dir)
    Handler.archive = Archive(a.dir)
    Handler.delay = a.delay / 1000
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(f"viewer-dev: http://127.0.0.1:{a.port}/s/study1 ... study{len(Handler.archive.order)} "
          f"(-nodl, -code with code {CODE}), /s/expired, /s/revoked", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
