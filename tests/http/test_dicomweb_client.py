#!/usr/bin/python3
"""A DICOMweb client nobody here wrote, npm's dicomweb-client, against `radshare serve`: it searches,
retrieves metadata, an instance, frames, a series and a rendered frame, and stores via STOW-RS; the
frames of a JPEG-LS instance (DCMTK's dcmcjpls) come decompressed by default, as stored when it asks
image/jls, and its Pixel Data through the metadata's BulkDataURI.
The package is installed with npm into build/node_modules when missing. TAP output."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
import pydicom.encaps
from pydicom.uid import generate_uid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dwlib import Server, make_instance, report, run, val  # noqa: E402
import dwlib  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
NODE_DIR = os.path.join(ROOT, "build")  # shared by plain and sanitizer builds


def ensure_client():
    if os.path.isdir(os.path.join(NODE_DIR, "node_modules", "dicomweb-client")):
        return True
    p = run(["npm", "install", "--prefix", NODE_DIR, "--no-audit", "--no-fund", "--no-save", "dicomweb-client@0.11"],
            timeout=300)
    return p.returncode == 0


def main():
    work = tempfile.mkdtemp(prefix="rs-dwclient-")
    rng = np.random.default_rng(3)
    srv = Server(os.path.join(work, "data"))
    try:
        report(ensure_client(), "npm dicomweb-client installed in build/node_modules")
        report(srv.start(), "server starts")
        study, files = generate_uid(), {}
        series = [generate_uid(), generate_uid()]
        for s_i, se in enumerate(series):
            for i in range(2):
                sop = generate_uid()
                p = os.path.join(work, f"{sop}.dcm")
                make_instance(p, study, se, sop, "Dupont^Jean", ("MR", "CT")[s_i], "20240220", "143000", i + 1, "CT",
                              "s", rng, series_number=s_i + 1)
                files[sop] = (se, p)
        p = run(["storescu", "-aec", "RADSHARE", "127.0.0.1", str(srv.dicom_port)] + [v[1] for v in files.values()])
        report(p.returncode == 0, "storescu stores 4 instances")
        csop, native_c = generate_uid(), os.path.join(work, "c-native.dcm")
        make_instance(native_c, study, series[1], csop, "Dupont^Jean", "CT", "20240220", "143000", 9, "CT", "s", rng,
                      series_number=2)
        jls = os.path.join(work, "c-jls.dcm")
        p = run(["dcmcjpls", "+el", native_c, jls])
        st, _ = dwlib.stow(srv, [open(jls, "rb").read()]) if p.returncode == 0 else (0, None)
        report(st == 200, "a JPEG-LS lossless instance made with dcmcjpls is stored with STOW-RS")
        sop = next(s for s, v in files.items() if v[0] == series[0])
        stow_sop = generate_uid()
        stow_file = os.path.join(work, "stow.dcm")
        make_instance(stow_file, generate_uid(), generate_uid(), stow_sop, "Client^Stow", "MR", "20240301", "100000", 1, "x",
                      "y", rng)
        env = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
        js = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js", "dwclient.js")
        p = subprocess.run(["node", js, f"http://127.0.0.1:{srv.http_port}/dicom-web", study, series[0], sop, stow_file,
                            series[1], csop],
                           capture_output=True, timeout=120, env=env)
        try:
            out = json.loads(p.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            out = {"error": p.stdout.decode()[-500:] + p.stderr.decode()[-500:]}
        report("error" not in out, "the client's script ran to the end", str(out)[:500])
        report(out.get("studies") == [study], "searchForStudies")
        report(out.get("found") == ["Dupont^Jean"], "searchForStudies with PatientName")
        report(sorted(out.get("series", [])) == sorted(series), "searchForSeries")
        report(sorted(out.get("instances", [])) == sorted(s for s, v in files.items() if v[0] == series[0]),
               "searchForInstances")
        report(out.get("meta_sop") == sop and out.get("meta_rows") == 32, "retrieveInstanceMetadata")
        report(out.get("series_meta") == 2, "retrieveSeriesMetadata")
        got = bytes.fromhex(out.get("instance_hex", ""))
        orig = open(files[sop][1], "rb").read()
        report(len(got) > 132 and dwlib.dataset_bytes(got) == dwlib.dataset_bytes(orig), "retrieveInstance: same data set")
        report(bytes.fromhex(out.get("frame_hex", "")) == pydicom.dcmread(files[sop][1]).PixelData,
               "retrieveInstanceFrames: the pixel bytes")
        report(out.get("series_objects") == 2, "retrieveSeries: two instances")
        native_px = pydicom.dcmread(native_c).PixelData
        report(bytes.fromhex(out.get("cframe_raw_hex", "")) == native_px,
               "retrieveInstanceFrames of a JPEG-LS instance: decompressed, the original samples")
        stored = next(pydicom.encaps.generate_pixel_data_frame(pydicom.dcmread(jls).PixelData, 1))
        report(bytes.fromhex(out.get("cframe_jls_hex", "")) == stored,
               "retrieveInstanceFrames with image/jls: the stored JPEG-LS frame")
        report(bytes.fromhex(out.get("cbulk_hex", "")) == native_px, "retrieveBulkData of its Pixel Data BulkDataURI")
        report(out.get("rendered_png") == "PNG", "retrieveInstanceRendered as PNG")
        refs = out.get("stow", {}).get("00081199", {}).get("Value", []) if isinstance(out.get("stow"), dict) else []
        report([val(r, "00081155") for r in refs] == [stow_sop], "storeInstances (STOW-RS)", str(out.get("stow"))[:300])
        st, res, _ = srv.json(f"/dicom-web/instances?SOPInstanceUID={stow_sop}")
        report(st == 200 and len(res) == 1, "the stored instance is found by QIDO")
    finally:
        rc = srv.stop()
        report(rc == 0, "server exits cleanly", str(rc))
        shutil.rmtree(work, ignore_errors=True)
    print(f"1..{dwlib.tap.n}")
    sys.exit(dwlib.tap.status())


main()
