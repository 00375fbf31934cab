#!/usr/bin/python3
"""DICOMweb and the staff API of `radshare serve`, end to end: a multi-series study loaded with DCMTK's
storescu, QIDO-RS checked attribute by attribute against the files, WADO-RS retrieve byte-identical to
what was sent, metadata equal to `radshare dump --json` (bulk URIs aside), STOW-RS round trip,
ETag/304, gzip, keep-alive, the API with trash/restore (hidden from QIDO and C-FIND, kept across a
restart), /metrics. TAP output."""
import gzip
import json
import os
import shutil
import struct
import sys
import tempfile

import numpy as np
import pydicom
from pydicom.uid import generate_uid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dwlib import (RADSHARE, Server, dataset_bytes, make_instance, parse_multipart, report, run, stow,  # noqa: E402
                   val)
import dwlib  # noqa: E402

MR, CT = "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.2"


def load(work, rng):
    """Two studies, two series each (MR, CT), three instances per series, sent with storescu."""
    src = os.path.join(work, "src")
    os.makedirs(src)
    files = {}
    studies = [(generate_uid(), "Muller^Anna", "20240115", "101500", "KNEE MRI"),
               (generate_uid(), "Dupont^Jean", "20240220", "143000", "CHEST CT")]
    for st, pn, date, tm, desc in studies:
        for s_i, modality in enumerate(("MR", "CT")):
            series = generate_uid()
            for i in range(3):
                sop = generate_uid()
                path = os.path.join(src, f"{sop}.dcm")
                make_instance(path, st, series, sop, pn, modality, date, tm, i + 1, desc, f"{modality} series", rng,
                              series_number=s_i + 1)
                files[sop] = path
    return studies, files


def check_qido(srv, studies, files):
    st, res, h = srv.json("/dicom-web/studies")
    report(st == 200 and h.get("content-type") == "application/dicom+json" and len(res) == 2,
           "QIDO /studies: two studies as application/dicom+json", f"{st} {h.get('content-type')}")
    by_uid = {val(r, "0020000D"): r for r in (res or [])}
    for uid, pn, date, tm, desc in studies:
        r = by_uid.get(uid, {})
        ok = (val(r, "00100010") == {"Alphabetic": pn} and val(r, "00100020") == "ID-" + pn[:4]
              and val(r, "00080020") == date and val(r, "00080030") == tm and val(r, "00081030") == desc
              and val(r, "00080050") == "ACC" + date[-4:] and sorted(r["00080061"]["Value"]) == ["CT", "MR"]
              and val(r, "00201206") == 2 and val(r, "00201208") == 6 and val(r, "00100040") == "F"
              and val(r, "00081190").endswith(f"/dicom-web/studies/{uid}"))
        report(ok, f"QIDO study {desc}: every attribute equals the files'", json.dumps(r)[:300])
    st, res, _ = srv.json("/dicom-web/studies?PatientName=Dupont*")
    report(st == 200 and [val(r, "0020000D") for r in res] == [studies[1][0]], "QIDO PatientName wildcard")
    st, res, _ = srv.json("/dicom-web/studies?StudyDate=20240201-20241231")
    report(st == 200 and [val(r, "0020000D") for r in res] == [studies[1][0]], "QIDO StudyDate range")
    st, res, _ = srv.json("/dicom-web/studies?00100020=ID-Mull,ID-Dupo&fuzzymatching=false")
    report(st == 200 and len(res) == 2, "QIDO tag key with a comma list, fuzzymatching=false")
    st, a, _ = srv.json("/dicom-web/studies?limit=1")
    st2, b, _ = srv.json("/dicom-web/studies?limit=1&offset=1")
    report(len(a) == 1 and len(b) == 1 and val(a[0], "0020000D") != val(b[0], "0020000D"), "QIDO limit/offset pages")
    st, res, _ = srv.json("/dicom-web/studies?includefield=00080080&PatientName=Muller*")
    report(st == 200 and val(res[0], "00080080") == "Hopital Test", "QIDO includefield by tag")
    st, res, _ = srv.json("/dicom-web/studies?includefield=all&PatientName=Muller*")
    report(st == 200 and val(res[0], "00080080") == "Hopital Test" and "00100030" in res[0],
           "QIDO includefield=all")
    uid = studies[0][0]
    st, series, _ = srv.json(f"/dicom-web/studies/{uid}/series")
    mods = sorted(val(s, "00080060") for s in series or [])
    report(st == 200 and mods == ["CT", "MR"] and all(val(s, "00201209") == 3 for s in series)
           and all(val(s, "0008103E") == val(s, "00080060") + " series" for s in series),
           "QIDO /studies/{s}/series: modality, description, instance counts")
    ser = {val(s, "00080060"): val(s, "0020000E") for s in series}
    st, inst, _ = srv.json(f"/dicom-web/studies/{uid}/series/{ser['MR']}/instances")
    sops = {val(i, "00080018") for i in inst or []}
    expect = {s for s, p in files.items() if pydicom.dcmread(p).SeriesInstanceUID == ser["MR"]}
    report(st == 200 and sops == expect and sorted(val(i, "00200013") for i in inst) == [1, 2, 3]
           and all(val(i, "00080016") == MR and val(i, "00280010") == 32 for i in inst),
           "QIDO instances of a series: SOP UIDs, classes, numbers, rows")
    st, res, _ = srv.json("/dicom-web/series?Modality=CT")
    report(st == 200 and len(res) == 2, "QIDO /series relational, Modality=CT")
    one = next(iter(expect))
    st, res, _ = srv.json(f"/dicom-web/instances?SOPInstanceUID={one}")
    report(st == 200 and len(res) == 1 and val(res[0], "0020000E") == ser["MR"], "QIDO /instances by SOP UID")
    st, res, _ = srv.json(f"/dicom-web/studies/{uid}/instances")
    report(st == 200 and len(res) == 6, "QIDO /studies/{s}/instances")
    return ser


def strip_bulk(d):
    """Bulk values compared by presence only; Pixel Data is not part of the stored header JSON (the
    index keeps the header up to it; frames are fetched from /frames)."""
    return {k: ({"vr": v["vr"], "bulk": True} if "BulkDataURI" in v else v) for k, v in d.items() if k != "7FE00010"}


def check_wado(srv, work, studies, files, ser):
    uid = studies[0][0]
    se = ser["MR"]
    sop = next(s for s, p in files.items() if pydicom.dcmread(p).SeriesInstanceUID == se)
    path = f"/dicom-web/studies/{uid}/series/{se}/instances/{sop}"
    st, h, body = srv.get(path, {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
    orig = open(files[sop], "rb").read()
    report(st == 200 and len(parts) == 1 and dataset_bytes(parts[0][1]) == dataset_bytes(orig)
           and "application/dicom" in parts[0][0], "WADO-RS instance: the data set sent, byte for byte")
    report("immutable" in h.get("cache-control", "") and h.get("etag", "").strip('"') != "",
           "WADO-RS instance: ETag and Cache-Control immutable", str(h))
    st304, _, b304 = srv.get(path, {"If-None-Match": h.get("etag", "")})
    report(st304 == 304 and b304 == b"", "If-None-Match -> 304 without a body", str(st304))
    st, h, body = srv.get(f"/dicom-web/studies/{uid}")
    parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
    got = {pydicom.dcmread(pydicom.filebase.DicomBytesIO(p[1])).SOPInstanceUID: p[1] for p in parts}
    mine = {s: p for s, p in files.items() if pydicom.dcmread(p).StudyInstanceUID == uid}
    report(st == 200 and set(got) == set(mine)
           and all(dataset_bytes(got[s]) == dataset_bytes(open(mine[s], "rb").read()) for s in mine),
           "WADO-RS study: six instances streamed, each identical", f"{st} {len(parts)}")
    st, h, body = srv.get(f"/dicom-web/studies/{uid}/series/{se}")
    report(st == 200 and len(parse_multipart(body, h.get("content-type", ""))) == 3, "WADO-RS series: three parts")

    # metadata: equal to `radshare dump --json` of the stored file, bulk data aside
    st, meta, h = srv.json(path + "/metadata")
    stored = os.path.join(work, "stored.dcm")
    open(stored, "wb").write(parts_of(srv, path)[0][1])
    dump = json.loads(run([RADSHARE, "dump", "--json", stored]).stdout)
    report(st == 200 and len(meta) == 1 and strip_bulk(meta[0]) == strip_bulk(dump),
           "WADO-RS instance metadata equals radshare dump --json (bulk URIs aside)",
           str(set(meta[0]) ^ set(dump)) if meta else str(st))
    bulk = [v["BulkDataURI"] for v in meta[0].values() if "BulkDataURI" in v] if meta else []
    report(all(b.startswith(f"http://127.0.0.1:{srv.http_port}/dicom-web/studies/{uid}/series/{se}/instances/{sop}/bulk/")
               for b in bulk), "BulkDataURIs are absolute WADO-RS URLs", str(bulk))
    st, smeta, h = srv.json(f"/dicom-web/studies/{uid}/series/{se}/metadata")
    report(st == 200 and len(smeta) == 3 and any(m == meta[0] for m in smeta), "series metadata: 3 instances")
    st, stmeta, h = srv.json(f"/dicom-web/studies/{uid}/metadata")
    report(st == 200 and len(stmeta) == 6 and h.get("etag"), "study metadata: 6 instances with an ETag")
    st, hz, zbody = srv.get(f"/dicom-web/studies/{uid}/metadata", {"Accept-Encoding": "gzip"})
    report(st == 200 and hz.get("content-encoding") == "gzip" and json.loads(gzip.decompress(zbody)) == stmeta
           and len(zbody) < len(json.dumps(stmeta)) / 2, "gzip when accepted; inflates to the same JSON",
           str(hz))
    st, _, _ = srv.get(f"/dicom-web/studies/{uid}/metadata", {"If-None-Match": h.get("etag", "")})
    report(st == 304, "study metadata revalidates with 304")
    st, hw, body = srv.get(f"/wado?requestType=WADO&studyUID={uid}&seriesUID={se}&objectUID={sop}"
                           "&contentType=application/dicom")
    report(st == 200 and hw.get("content-type") == "application/dicom" and dataset_bytes(body) == dataset_bytes(orig),
           "WADO-URI application/dicom")

    # pixels: frames as stored, rendered images
    st, h, body = srv.get(path + "/frames/1", {"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'})
    fr = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
    report(st == 200 and len(fr) == 1 and fr[0][1] == pydicom.dcmread(files[sop]).PixelData,
           "WADO-RS frames/1: the stored pixel bytes", f"{st} {body[:200]}")
    st, _, _ = srv.get(path + "/frames/2")
    report(st == 400, "frames/2 of a single-frame instance: 400")
    hits0 = metric(srv, "radshare_render_cache_hits_total")
    st, h, png = srv.get(path + "/rendered", {"Accept": "image/png"})
    report(st == 200 and h.get("content-type") == "image/png" and png_size(png) == (32, 32), "rendered as PNG 32x32",
           f"{st} {h.get('content-type')}")
    st, h2, again = srv.get(path + "/rendered", {"Accept": "image/png"})
    report(st == 200 and again == png and h2.get("etag") == h.get("etag") and "immutable" in h2.get("cache-control", "")
           and h2.get("content-type") == "image/png" and metric(srv, "radshare_render_cache_hits_total") == hits0 + 1,
           "rendered again: the same bytes, type and ETag, from the render cache", str(h2))
    st, h, jpg = srv.get(path + "/rendered?quality=80")
    report(st == 200 and h.get("content-type") == "image/jpeg" and jpg[:2] == b"\xff\xd8", "rendered as JPEG by default")
    st, h, small = srv.get(path + "/frames/1/rendered?viewport=16,16", {"Accept": "image/png"})
    report(st == 200 and png_size(small) == (16, 16), "rendered with viewport=16,16")
    st, h, win = srv.get(path + "/rendered?window=100,50", {"Accept": "image/png"})
    report(st == 200 and win != png and png_size(win) == (32, 32), "rendered with another window differs")
    st2, _, _ = srv.get(path + "/rendered?window=100,50", {"Accept": "image/png", "If-None-Match": h.get("etag", "x")})
    report(st2 == 304, "rendered revalidates with 304")
    st2, _, win2 = srv.get(path + "/rendered?window=100.000001,50", {"Accept": "image/png"})
    report(st2 == 200 and png_size(win2) == (32, 32), "a window differing in the 7th digit is rendered, not mistaken "
           "for the cached one")
    st, h, th = srv.get(f"/dicom-web/studies/{uid}/series/{se}/thumbnail")
    report(st == 200 and th[:2] == b"\xff\xd8", "series thumbnail")
    st, h, body = srv.get(f"/wado?requestType=WADO&studyUID={uid}&seriesUID={se}&objectUID={sop}"
                           "&contentType=image/png&rows=16&columns=16")
    report(st == 200 and png_size(body) == (16, 16), "WADO-URI image/png with rows/columns")
    st, _, _ = srv.get(path + "/rendered?window=1,0")
    report(st == 400, "window width 0: 400")

    # keep-alive: many requests over one connection
    c = srv.conn()
    socks, statuses = set(), []
    for _ in range(5):
        c.request("GET", f"/dicom-web/studies/{uid}/series")
        r = c.getresponse()
        r.read()
        statuses.append(r.status)
        socks.add(id(c.sock))
    c.close()
    report(statuses == [200] * 5 and len(socks) == 1, "keep-alive: 5 requests on one connection", str(statuses))
    return uid, se, sop


def metric(srv, name):
    st, _, body = srv.get("/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def png_size(b):
    return struct.unpack(">II", b[16:24]) if b[:8] == b"\x89PNG\r\n\x1a\n" else None


def parts_of(srv, path):
    st, h, body = srv.get(path)
    return parse_multipart(body, h.get("content-type", ""))


def check_stow(srv, work, rng):
    study, series = generate_uid(), generate_uid()
    sent = {}
    for i in range(3):
        sop = generate_uid()
        p = os.path.join(work, f"stow-{i}.dcm")
        make_instance(p, study, series, sop, "Stow^Sam", "MR", "20240301", "090000", i + 1, "STOWED", "s", rng,
                      preamble=b"X" * 128)
        sent[sop] = open(p, "rb").read()
    st, res = stow(srv, list(sent.values()))
    refs = res.get("00081199", {}).get("Value", []) if isinstance(res, dict) else []
    report(st == 200 and {val(r, "00081155") for r in refs} == set(sent) and "00081198" not in res
           and all(val(r, "00081150") == MR for r in refs), "STOW-RS: 3 instances, ReferencedSOPSequence", str(res)[:300])
    report(isinstance(res, dict) and (val(res, "00081190") or "").endswith(study),
           "STOW-RS: RetrieveURL of the study")
    ok = True
    for sop, b in sent.items():
        got = parts_of(srv, f"/dicom-web/studies/{study}/series/{series}/instances/{sop}")
        ok &= len(got) == 1 and got[0][1] == b"\0" * 128 + b[128:]
    report(ok, "STOW-RS round trip: the file back byte for byte, preamble zeroed")
    st, res = stow(srv, list(sent.values())[:1])
    report(st == 200, "STOW-RS of the same instance again: a success (duplicate)")
    other = generate_uid()
    st, res = stow(srv, list(sent.values())[:1], path=f"/dicom-web/studies/{other}")
    fails = res.get("00081198", {}).get("Value", []) if isinstance(res, dict) else []
    report(st == 409 and len(fails) == 1 and val(fails[0], "00081197") == 0xA900,
           "STOW-RS to another study's URL: 409, FailureReason A900", str(res)[:300])
    st, res = stow(srv, [list(sent.values())[0], b"not dicom at all"])
    report(st == 202 and len(res.get("00081198", {}).get("Value", [])) == 1
           and len(res.get("00081199", {}).get("Value", [])) == 1, "STOW-RS with one bad part: 202, one of each")
    return study


def findscu_studies(srv):
    d = tempfile.mkdtemp()
    run(["findscu", "-S", "-aec", "RADSHARE", "-X", "-od", d, "-k", "QueryRetrieveLevel=STUDY",
         "-k", "StudyInstanceUID", "127.0.0.1", str(srv.dicom_port)], cwd=d)
    uids = {pydicom.dcmread(os.path.join(d, f)).StudyInstanceUID for f in os.listdir(d)}
    shutil.rmtree(d)
    return uids


def check_api(srv, studies):
    st, res, h = srv.json("/api/studies?name=dupont")
    report(st == 200 and len(res) == 1 and res[0]["patient_name"] == "Dupont^Jean" and res[0]["series"] == 2
           and res[0]["instances"] == 6 and sorted(res[0]["modalities"]) == ["CT", "MR"],
           "API search by (part of a) name", str(res))
    st, res, _ = srv.json("/api/studies?from=20240101&to=20240131")
    report(st == 200 and [r["uid"] for r in res] == [studies[0][0]], "API search by date range")
    st, res, _ = srv.json("/api/studies?modality=CT&limit=1")
    report(st == 200 and len(res) == 1, "API search by modality with limit")
    uid = studies[0][0]
    st, d, _ = srv.json(f"/api/studies/{uid}")
    report(st == 200 and d["uid"] == uid and len(d["series_list"]) == 2 and d["trashed"] is False
           and all(s["instances"] == 3 for s in d["series_list"]), "API study details with series", str(d)[:300])
    st, _, body = srv.request("DELETE", f"/api/studies/{uid}")
    report(st == 200 and json.loads(body)["trashed"] is True, "API DELETE moves the study to the trash")
    st, res, _ = srv.json("/dicom-web/studies")
    report(uid not in [val(r, "0020000D") for r in res], "trashed study hidden from QIDO")
    report(uid not in findscu_studies(srv), "trashed study hidden from C-FIND")
    st, _, _ = srv.get(f"/dicom-web/studies/{uid}")
    report(st == 404, "trashed study not retrievable", str(st))
    st, res, _ = srv.json("/api/studies?trashed=1")
    report(st == 200 and [r["uid"] for r in res] == [uid], "API lists the trash")
    st, d, _ = srv.json(f"/api/studies/{uid}")
    report(st == 200 and d["trashed"] is True, "API details say trashed")
    st, _, _ = srv.request("DELETE", f"/api/studies/{uid}")
    report(st == 404, "DELETE of a trashed study: 404")
    return uid


def check_viewer(srv):
    """The files of src/web/ embedded at build time, served under /viewer/ byte for byte."""
    web = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "web")
    index = os.path.join(web, "index.html")
    st, h, body = srv.get("/viewer/")
    if not os.path.exists(index):
        report(st == 404, "/viewer/ without src/web/index.html: 404", str(st))
        return
    report(st == 200 and body == open(index, "rb").read() and h.get("content-type", "").startswith("text/html"),
           "/viewer/ is src/web/index.html", str(st))
    st2, _, _ = srv.get("/viewer/index.html", {"If-None-Match": h.get("etag", "x")})
    report(st2 == 304, "viewer files revalidate with 304")


def check_metrics(srv):
    st, h, body = srv.get("/metrics")
    t = body.decode()
    report(st == 200 and h.get("content-type", "").startswith("text/plain")
           and 'radshare_http_requests_total{route="GET /dicom-web/",status="200"}' in t
           and 'radshare_http_requests_total{route="POST /dicom-web/studies",status="200"}' in t
           and "radshare_stow_instances_total" in t and "radshare_store_instances " in t,
           "/metrics in Prometheus text format with routes, statuses, ingest and store", t[:500])
    st, s, _ = srv.json("/api/status")
    report(st == 200 and s["instances"] >= 15 and s["commit"]["batches"] > 0 and s["uptime_s"] > 0,
           "/api/status counts and commit stats", str(s))


def main():
    work = tempfile.mkdtemp(prefix="rs-http-")
    rng = np.random.default_rng(11)
    data = os.path.join(work, "data")
    srv = Server(data)
    try:
        report(srv.start(), "server starts with HTTP")
        studies, files = load(work, rng)
        p = run(["storescu", "-aec", "RADSHARE", "127.0.0.1", str(srv.dicom_port)] + list(files.values()))
        report(p.returncode == 0, "storescu stores 12 instances", p.stderr.decode()[-300:])
        ser = check_qido(srv, studies, files)
        w_uid, w_se, w_sop = check_wado(srv, work, studies, files, ser)
        rendered = f"/dicom-web/studies/{w_uid}/series/{w_se}/instances/{w_sop}/rendered"
        check_stow(srv, work, rng)
        uid = check_api(srv, studies)
        st, _, _ = srv.get(rendered, {"Accept": "image/png"})
        report(uid == w_uid and st == 404, "a trashed instance's rendered image: 404, though the render cache has it",
               str(st))
        check_viewer(srv)
        check_metrics(srv)
        srv.stop()
        report(srv.start(), "server restarts on the same data")
        st, res, _ = srv.json("/dicom-web/studies")
        report(uid not in [val(r, "0020000D") for r in res], "the trash survives a restart")
        st, _, body = srv.request("POST", f"/api/studies/{uid}/restore")
        report(st == 200 and json.loads(body)["trashed"] is False, "API restore")
        st, res, _ = srv.json("/dicom-web/studies")
        report(uid in [val(r, "0020000D") for r in res] and uid in findscu_studies(srv),
               "restored study is back in QIDO and C-FIND")
        st, h, body = srv.get(f"/dicom-web/studies/{uid}")
        report(st == 200 and len(parse_multipart(body, h.get("content-type", ""))) == 6, "and retrievable")
    finally:
        rc = srv.stop()
        report(rc == 0, "server exits cleanly on SIGTERM", str(rc))
        shutil.rmtree(work, ignore_errors=True)
    print(f"1..{dwlib.tap.n}")
    sys.exit(dwlib.tap.status())


main()
