#!/usr/bin/python3
"""WADO-RS transcoding, study/series /rendered, /bulk and QIDO fuzzy matching of `radshare serve`, with
real compressed data: instances compressed by DCMTK (dcmcjpeg +e1 / +eb, dcmcjpls, dcmcrle) and GDCM
(gdcmconv --j2k), stored with STOW-RS, then
- frames asked as application/octet-stream (default: Explicit VR Little Endian) equal the original
  uncompressed samples and `gdcmconv --raw`'s decompression byte for byte (lossless), within 2 (baseline);
- transfer-syntax=* and the matching compressed media type give the stored fragments unchanged;
- an instance asked in Explicit VR Little Endian is a valid Part 10 file (pydicom, dciodvfy-clean meta,
  zero preamble) with native pixel data and the lossy attributes;
- unproducible syntaxes are 406 naming what can be sent; an absurd image is refused with a 4xx;
- study and series /rendered give one PNG/JPEG part per frame, each decodable (zlib / GDCM);
- BulkDataURIs in metadata (Pixel Data, a nested icon's pixels) serve the file's bytes;
- fuzzymatching=true matches name-component prefixes, case and accents aside, and nothing else.
TAP output."""
import json
import os
import shutil
import struct
import sys
import tempfile
import zlib

import numpy as np
import pydicom
from pydicom.encaps import generate_pixel_data_frame
from pydicom.uid import generate_uid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dwlib import Server, make_instance, parse_multipart, report, run, stow, val  # noqa: E402
import dwlib  # noqa: E402

EXPLICIT = "1.2.840.10008.1.2.1"
OCTET = 'multipart/related; type="application/octet-stream"'
VARIANTS = [  # name, tool, syntax, media type of the frames, lossy tolerance
    ("jpeg-sv1", ["dcmcjpeg", "+e1"], "1.2.840.10008.1.2.4.70", "image/jpeg", 0),
    ("jpeg-ls", ["dcmcjpls", "+el"], "1.2.840.10008.1.2.4.80", "image/jls", 0),
    ("rle", ["dcmcrle"], "1.2.840.10008.1.2.5", "image/x-dicom-rle", 0),
    ("j2k", ["gdcmconv", "--j2k"], "1.2.840.10008.1.2.4.90", "image/jp2", 0),
]


def frames_of(path):
    ds = pydicom.dcmread(path)
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    return list(generate_pixel_data_frame(ds.PixelData, n))


def gdcm_raw(path, work):
    out = os.path.join(work, "raw-" + os.path.basename(path))
    p = run(["gdcmconv", "--raw", path, out])
    return pydicom.dcmread(out).PixelData if p.returncode == 0 else None


def png_ok(b):
    """A PNG whose chunks' CRCs hold and whose IDAT inflates to height rows of (1 + width * channels) bytes."""
    if b[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    pos, idat, w = 8, b"", None
    while pos + 8 <= len(b):
        n, kind = struct.unpack(">I4s", b[pos:pos + 8])
        data = b[pos + 8:pos + 8 + n]
        if zlib.crc32(kind + data) != struct.unpack(">I", b[pos + 8 + n:pos + 12 + n])[0]:
            return None
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", data[:10])
        if kind == b"IDAT":
            idat += data
        pos += 12 + n
        if kind == b"IEND":
            break
    if w is None:
        return None
    ch = {0: 1, 2: 3}.get(ctype, 0)
    raw = zlib.decompress(idat)
    return (w, h) if ch and len(raw) == h * (1 + w * ch * depth // 8) else None


def jpeg_ok(b, work, i):
    """Decoded by GDCM (img2dcm wraps it, gdcmconv --raw decompresses): (columns, rows) or None."""
    jp, dc, raw = (os.path.join(work, f"r{i}.{x}") for x in ("jpg", "dcm", "raw.dcm"))
    open(jp, "wb").write(b)
    if run(["img2dcm", jp, dc]).returncode or run(["gdcmconv", "--raw", dc, raw]).returncode:
        return None
    ds = pydicom.dcmread(raw)
    return (ds.Columns, ds.Rows) if len(ds.PixelData) >= ds.Rows * ds.Columns else None


def make_multiframe(path, study, series, rng, frames=3):
    """A 3-frame 16-bit MR, 12 bits stored, with an 8-bit 64x64 icon (its pixels are bulk data)."""
    ds = make_instance(path, study, series, generate_uid(), "Doe^John", "MR", "20240301", "101010", 1, "MF",
                       "multi", rng)
    ds.NumberOfFrames = frames
    ds.PixelData = rng.integers(0, 4096, (frames, 32, 32), dtype=np.uint16).tobytes()
    icon = pydicom.Dataset()
    icon.Rows = icon.Columns = 64
    icon.SamplesPerPixel, icon.PhotometricInterpretation = 1, "MONOCHROME2"
    icon.BitsAllocated, icon.BitsStored, icon.HighBit, icon.PixelRepresentation = 8, 8, 7, 0
    icon.PixelData = rng.integers(0, 256, 64 * 64, dtype=np.uint8).tobytes()
    ds.IconImageSequence = [icon]
    ds.save_as(path, write_like_original=False)
    return ds


def make_rgb(path, study, series, rng):
    ds = make_instance(path, study, series, generate_uid(), "Doe^John", "MR", "20240301", "101010", 2, "RGB",
                       "rgb", rng)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8).tobytes()
    ds.save_as(path, write_like_original=False)
    return ds


def compress(tool, src, dst):
    p = run(tool + [src, dst])
    return p.returncode == 0 and os.path.exists(dst)


def uids(path):
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


def url(path):
    s, se, i = uids(path)
    return f"/dicom-web/studies/{s}/series/{se}/instances/{i}"


def check_frames(srv, name, path, original, ts, media, tol, work):
    base = url(path)
    ds = pydicom.dcmread(path)
    stored = frames_of(path)
    n = len(stored)
    nlist = ",".join(str(k + 1) for k in range(n))
    # default for application/octet-stream: Explicit VR Little Endian, decompressed
    st, h, body = srv.get(f"{base}/frames/{nlist}", {"Accept": OCTET})
    parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
    got = b"".join(p[1] for p in parts)
    ok_ts = all(f"transfer-syntax={EXPLICIT}" in p[0] for p in parts)
    if tol == 0:
        report(st == 200 and len(parts) == n and ok_ts and got == original,
               f"{name}: frames as application/octet-stream are decompressed, equal to the original samples",
               f"{st} {len(parts)} parts, {len(got)} vs {len(original)} bytes, {parts[0][0] if parts else body[:200]}")
        ref = gdcm_raw(path, work)
        report(ref is not None and got == ref, f"{name}: ... and equal to gdcmconv --raw byte for byte")
    else:
        dt = np.uint8 if ds.BitsAllocated == 8 else np.uint16
        a, b = np.frombuffer(got, dt).astype(int), np.frombuffer(original, dt).astype(int)
        report(st == 200 and ok_ts and a.shape == b.shape and np.abs(a - b).max() <= tol,
               f"{name}: lossy frames decompressed within {tol} of the original", f"{st} {a.shape} {b.shape}")
    # the stored syntax: transfer-syntax=*, and the media type of that syntax
    st, h, body = srv.get(f"{base}/frames/{nlist}", {"Accept": OCTET + "; transfer-syntax=*"})
    parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
    report(st == 200 and [p[1] for p in parts] == stored and all(f"transfer-syntax={ts}" in p[0] for p in parts),
           f"{name}: transfer-syntax=* gives the stored fragments", f"{st} {[p[0] for p in parts]}")
    st, h, body = srv.get(f"{base}/frames/1", {"Accept": f'multipart/related; type="{media}"'})
    parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
    report(st == 200 and len(parts) == 1 and parts[0][1] == stored[0] and parts[0][0].startswith(f"Content-Type: {media}")
           and f'type="{media}"' in h.get("content-type", ""),
           f"{name}: type=\"{media}\" gives the stored frame as is", f"{st} {h.get('content-type')} {parts[:1]}")
    st, h, body = srv.get(f"{base}/frames/1", {"Accept": f'{OCTET}; transfer-syntax={ts}'})
    parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
    report(st == 200 and len(parts) == 1 and parts[0][1] == stored[0], f"{name}: the stored syntax asked by UID")
    other = "image/jpx"  # JPEG 2000 Part 2: no encoder (the encoders are tested in tests/codec/test_encode.py)
    st, h, body = srv.get(f"{base}/frames/1", {"Accept": f'multipart/related; type="{other}"'})
    report(st == 406 and EXPLICIT.encode() in body and b"transfer-syntax=*" in body,
           f"{name}: {other} (would need an encoder) is 406 naming what can be sent", f"{st} {body[:300]}")
    # a preference list: the first one that can be produced wins
    st, h, body = srv.get(f"{base}/frames/1", {"Accept": f'multipart/related; type="{other}", {OCTET}; '
                                                         f'transfer-syntax={EXPLICIT}; q=0.5'})
    parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
    fb = len(original) // n
    report(st == 200 and len(parts) == 1 and (tol > 0 or parts[0][1] == original[:fb]),
           f"{name}: Accept with alternatives takes the producible one", f"{st} {body[:200]}")


def dciodvfy_errors(path):
    p = run(["dciodvfy", "-new", path])
    return {ln for ln in p.stderr.decode(errors="replace").splitlines() if ln.startswith("Error")}


def check_instance(srv, name, path, uncompressed, original, lossy, work):
    base = url(path)
    st, h, body = srv.get(base, {"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={EXPLICIT}'})
    parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
    ok = st == 200 and len(parts) == 1 and f"transfer-syntax={EXPLICIT}" in parts[0][0]
    f = os.path.join(work, f"{name}-explicit.dcm")
    if ok:
        open(f, "wb").write(parts[0][1])
    try:
        ds = pydicom.dcmread(f) if ok else None
    except Exception as e:  # noqa: BLE001
        ds, ok = None, False
        print(f"# {e}")
    src = pydicom.dcmread(path)
    ok = ok and ds.file_meta.TransferSyntaxUID == EXPLICIT and parts[0][1][:128] == b"\0" * 128
    ok = ok and ds.SOPInstanceUID == src.SOPInstanceUID and ds.file_meta.MediaStorageSOPInstanceUID == src.SOPInstanceUID
    ok = ok and "PixelData" in ds and not ds["PixelData"].is_undefined_length
    report(ok, f"{name}: instance asked in Explicit VR LE is a Part 10 file with native pixel data",
           f"{st} {parts[0][0] if parts else body[:200]}")
    if not ok:
        return
    if lossy:
        report(ds.get("LossyImageCompression") == "01", f"{name}: decompressed lossy instance keeps LossyImageCompression 01")
    else:
        report(ds.PixelData == original and ds.PhotometricInterpretation == src.PhotometricInterpretation,
               f"{name}: its pixel data equals the original samples")
    # the test data is a minimal MR, not a valid one: only errors neither the original nor the stored file has count
    errs = dciodvfy_errors(f) - dciodvfy_errors(uncompressed) - dciodvfy_errors(path)
    report(not errs, f"{name}: dciodvfy finds no error in it that the original or stored file does not have",
           "; ".join(errs)[:300])
    st, h, body = srv.get(base, {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
    report(st == 200 and len(parts) == 1 and parts[0][1] == open(path, "rb").read(),
           f"{name}: transfer-syntax=* gives the stored file unchanged")


def check_limits(srv, work, rng):
    """An image claiming 65535 x 65535 16-bit frames (8 GiB decoded) around a tiny JPEG-LS stream."""
    src = os.path.join(work, "huge-src.dcm")
    ds = make_instance(src, generate_uid(), generate_uid(), generate_uid(), "Big^Image", "MR", "20240101", "000000", 1,
                       "x", "y", rng)
    dst = os.path.join(work, "huge.dcm")
    compress(["dcmcjpls", "+el"], src, dst)
    ds = pydicom.dcmread(dst)
    ds.Rows = ds.Columns = 65535
    ds.save_as(dst)
    st, res = stow(srv, [open(dst, "rb").read()])
    report(st == 200, "an instance claiming 65535x65535 pixels is stored (ingest does not decode)", str(st))
    for what, hdr in (("frames", {"Accept": OCTET}), ("instance", {"Accept": 'multipart/related; type="application/dicom";'
                                                                           f' transfer-syntax={EXPLICIT}'}),
                      ("frames encoded", {"Accept": 'multipart/related; type="image/jp2"'}),
                      ("instance encoded", {"Accept": 'multipart/related; type="application/dicom"; '
                                                      'transfer-syntax=1.2.840.10008.1.2.5'})):
        st, h, body = srv.get(url(dst) + ("/frames/1" if what.startswith("frames") else ""), hdr)
        report(400 <= st < 600 and st != 500 and b"limit" in body,
               f"its {what} {'(J2K / RLE)' if 'encoded' in what else 'decompressed'}: {st} with a clear message, "
               "not an allocation", body[:200].decode(errors="replace"))
    st, _, _ = srv.get("/api/status")
    report(st == 200, "the server is healthy afterwards")


def check_rendered(srv, study, series, n_frames_study, n_frames_series, work, files_by_sop):
    for level, path, n in (("study", f"/dicom-web/studies/{study}", n_frames_study),
                           ("series", f"/dicom-web/studies/{study}/series/{series}", n_frames_series)):
        st, h, body = srv.get(path + "/rendered", {"Accept": 'multipart/related; type="image/png"'})
        parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
        sizes = [png_ok(p[1]) for p in parts]
        report(st == 200 and len(parts) == n and all(s == (32, 32) for s in sizes)
               and all("image/png" in p[0] for p in parts),
               f"{level} /rendered as PNG: {n} parts, each a valid 32x32 PNG", f"{st} {len(parts)} {sizes[:4]} {body[:200]}")
        prefix = f"http://127.0.0.1:{srv.http_port}"
        locs = [dict(ln.split(": ", 1) for ln in p[0].split("\r\n") if ": " in ln).get("Content-Location", "")
                for p in parts]
        same = all(loc.startswith(prefix) and srv.get(loc[len(prefix):], {"Accept": "image/png"})[2] == p[1]
                   for loc, p in zip(locs, parts))
        report(bool(parts) and same and len(set(locs)) == len(locs),
               f"{level} /rendered: each part's Content-Location is its frame's /rendered, with the same bytes",
               str(locs[:3]))
        if level == "series":
            nums = [int(pydicom.dcmread(files_by_sop[loc.split("/instances/")[1].split("/")[0]],
                                        stop_before_pixels=True).InstanceNumber) for loc in locs]
            report(nums == sorted(nums), "series /rendered parts are in InstanceNumber order", str(nums))
        st, h, body = srv.get(path + "/rendered?viewport=16,16&quality=70&window=2000,4000",
                              {"Accept": 'multipart/related; type="image/jpeg"'})
        parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
        dims = [jpeg_ok(p[1], work, i) for i, p in enumerate(parts)]
        report(st == 200 and len(parts) == n and all(d == (16, 16) for d in dims),
               f"{level} /rendered as JPEG with viewport=16,16: {n} parts GDCM decodes at 16x16", f"{st} {dims}")
    st, h, body = srv.get(f"/dicom-web/studies/{study}/rendered?window=1,0")
    report(st == 400, "study /rendered with a bad window: 400")
    st, h, body = srv.get(f"/dicom-web/studies/{study}/rendered", {"Accept": "application/json"})
    report(st == 406, "study /rendered asked as JSON: 406")
    st, h, body = srv.get(f"/dicom-web/studies/{generate_uid()}/rendered")
    report(st == 404, "unknown study /rendered: 404")


def check_bulk(srv, mf_path, mf_jls, work):
    src = pydicom.dcmread(mf_path)
    st, meta, _ = srv.json(url(mf_path) + "/metadata")
    m = meta[0] if st == 200 and meta else {}
    px = m.get("7FE00010", {})
    report(px.get("vr") == "OW" and px.get("BulkDataURI", "").endswith(url(mf_path) + "/bulk/7FE00010"),
           "metadata gives Pixel Data as an absolute BulkDataURI (OW)", json.dumps(px))
    icon = (m.get("00880200", {}).get("Value") or [{}])[0].get("7FE00010", {})
    report(icon.get("BulkDataURI", "").endswith("/bulk/00880200/0/7FE00010"), "the icon's pixels are a nested BulkDataURI",
           json.dumps(icon))
    prefix = f"http://127.0.0.1:{srv.http_port}"
    for what, uri, want in (("Pixel Data", px.get("BulkDataURI", ""), src.PixelData),
                            ("icon pixel data", icon.get("BulkDataURI", ""), src.IconImageSequence[0].PixelData)):
        st, h, body = srv.get(uri[len(prefix):], {"Accept": OCTET})
        parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
        report(st == 200 and len(parts) == 1 and parts[0][1] == want and 'type="application/octet-stream"' in h.get(
            "content-type", ""), f"bulk {what}: the file's bytes as multipart/related application/octet-stream",
               f"{st} {len(parts)} {body[:200]}")
    st, h, body = srv.get(url(mf_path) + "/bulk/00100010")
    report(st == 404, "bulk of an attribute that is no bulk value (PatientName): 404", str(st))
    st, h, body = srv.get(url(mf_path) + "/bulk/zz")
    report(st == 404, "malformed bulk path: 404")
    # compressed: the pixel data decompressed in one part, or the stored frames with transfer-syntax=*
    st, meta, _ = srv.json(url(mf_jls) + "/metadata")
    px = (meta[0] if st == 200 else {}).get("7FE00010", {})
    report(px.get("vr") == "OB", "a compressed instance's Pixel Data BulkDataURI is OB", json.dumps(px))
    st, h, body = srv.get(url(mf_jls) + "/bulk/7FE00010", {"Accept": OCTET})
    parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
    report(st == 200 and len(parts) == 1 and parts[0][1] == src.PixelData,
           "bulk Pixel Data of a JPEG-LS multi-frame: one part, decompressed, equal to the original")
    st, h, body = srv.get(url(mf_jls) + "/bulk/7FE00010", {"Accept": OCTET + "; transfer-syntax=*"})
    parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
    report(st == 200 and [p[1] for p in parts] == frames_of(mf_jls), "... with transfer-syntax=*: the stored frames")


def check_fuzzy(srv, work, rng):
    names = {"Doe^John": generate_uid(), "Müller^Anna": generate_uid(), "Smith^Jane": generate_uid(),
             "Johansson^Erik": generate_uid()}
    parts = []
    for pn, st_uid in names.items():
        p = os.path.join(work, f"fz-{st_uid}.dcm")
        make_instance(p, st_uid, generate_uid(), generate_uid(), pn, "CT", "20230101", "080000", 1, "fz", "fz", rng)
        parts.append(open(p, "rb").read())
    st, _ = stow(srv, parts)
    report(st == 200, "four patients stored for fuzzy matching", str(st))

    def found(q):
        st, res, h = srv.json("/dicom-web/studies?" + q)
        got = sorted(val(r, "00100010")["Alphabetic"] for r in (res or []) if val(r, "0020000D") in names.values())
        return st, got, h

    cases = [("PatientName=joh&fuzzymatching=true", ["Doe^John", "Johansson^Erik"], "a component's prefix, any case"),
             ("PatientName=doe%5Ejo&fuzzymatching=true", ["Doe^John"], "every word must match (doe^jo)"),
             ("PatientName=MULLER&fuzzymatching=true", ["Müller^Anna"], "accents aside (MULLER finds Müller)"),
             ("PatientName=m%C3%BCl&fuzzymatching=true", ["Müller^Anna"], "accented key (mül)"),
             ("PatientName=anna%20mu&fuzzymatching=true", ["Müller^Anna"], "words in any order (anna mu)"),
             ("PatientName=smith,ERIK&fuzzymatching=true", ["Johansson^Erik", "Smith^Jane"], "a list of alternatives"),
             ("PatientName=ohn&fuzzymatching=true", [], "not inside a word (ohn)"),
             ("PatientName=jon&fuzzymatching=true", [], "not another spelling (jon)"),
             ("PatientName=xyz&fuzzymatching=true", [], "no match at all"),
             ("PatientName=joh&fuzzymatching=false", [], "without fuzzymatching, joh is an exact key"),
             ("PatientName=joh", [], "fuzzymatching defaults to false")]
    for q, want, what in cases:
        st, got, h = found(q)
        report(st == 200 and got == want and "warning" not in h, f"fuzzy: {what}", f"{st} {got} {h.get('warning')}")
    st, res, _ = srv.json("/dicom-web/instances?PatientName=m%C3%BCller&fuzzymatching=true")
    report(st == 200 and [val(r, "0020000D") for r in res] == [names["Müller^Anna"]], "fuzzy at instance level")
    st, res, _ = srv.json("/dicom-web/series?PatientName=smi&fuzzymatching=true&Modality=CT")
    report(st == 200 and [val(r, "0020000D") for r in res] == [names["Smith^Jane"]],
           "fuzzy at series level, with another key")
    st, res, _ = srv.json(f"/dicom-web/studies?ReferringPhysicianName=wh&fuzzymatching=true&StudyInstanceUID={names['Doe^John']}")
    st2, res2, _ = srv.json(f"/dicom-web/studies?ReferringPhysicianName=xy&fuzzymatching=true&StudyInstanceUID={names['Doe^John']}")
    report(st == st2 == 200 and len(res) == 1 and res2 == [], "fuzzy on another person name (ReferringPhysicianName)")
    st, a, _ = srv.json("/dicom-web/studies?PatientName=j&fuzzymatching=true&limit=1")
    st2, b, _ = srv.json("/dicom-web/studies?PatientName=j&fuzzymatching=true&limit=1&offset=1")
    st3, c, _ = srv.json("/dicom-web/studies?PatientName=j&fuzzymatching=true")
    report(st == st2 == 200 and len(a) == 1 and len(b) == 1 and a[0] != b[0] and {json.dumps(x) for x in a + b} <=
           {json.dumps(x) for x in c}, "fuzzy: limit and offset page the filtered matches")


def main():
    work = tempfile.mkdtemp(prefix="rs-dwtc-")
    rng = np.random.default_rng(11)
    srv = Server(os.path.join(work, "data"))
    try:
        report(srv.start(), "server starts")
        study, series_mono, series_mf = generate_uid(), generate_uid(), generate_uid()
        single = os.path.join(work, "single.dcm")
        make_instance(single, study, series_mono, generate_uid(), "Doe^John", "MR", "20240301", "101010", 3, "T",
                      "mono", rng)
        mf = os.path.join(work, "mf.dcm")
        make_multiframe(mf, study, series_mf, rng)
        rgb = os.path.join(work, "rgb.dcm")
        make_rgb(rgb, study, series_mono, rng)
        uploads, cases = [open(mf, "rb").read()], []
        for name, tool, ts, media, tol in VARIANTS:
            for label, src in ((name, single), (name + " multi-frame", mf), (name + " RGB", rgb)):
                if "RGB" in label and name == "rle":
                    continue
                out = os.path.join(work, label.replace(" ", "_") + ".dcm")
                # new SOP Instance UIDs so every variant is its own instance
                ok = compress(tool, src, out)
                if ok:
                    d = pydicom.dcmread(out)
                    d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = generate_uid()
                    d.save_as(out)
                    ok = d.file_meta.TransferSyntaxUID == ts
                report(ok, f"{label}: made with {tool[0]} in {ts}")
                if ok:
                    uploads.append(open(out, "rb").read())
                    cases.append((label, out, src, ts, media, tol))
        base8 = os.path.join(work, "grey8.dcm")
        d = make_instance(base8, study, series_mono, generate_uid(), "Doe^John", "MR", "20240301", "101010", 4, "T",
                          "mono", rng)
        d.BitsAllocated, d.BitsStored, d.HighBit = 8, 8, 7
        d.PixelData = (np.add.outer(np.arange(32), np.arange(32)) * 4).astype(np.uint8).tobytes()  # smooth: JPEG keeps it
        d.save_as(base8)
        lossy = os.path.join(work, "baseline.dcm")
        if report(compress(["dcmcjpeg", "+eb", "+un"], base8, lossy), "grey 8-bit made lossy with dcmcjpeg +eb"):
            d = pydicom.dcmread(lossy)
            d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            d.save_as(lossy)
            uploads.append(open(lossy, "rb").read())
            cases.append(("jpeg-baseline", lossy, base8, "1.2.840.10008.1.2.4.50", "image/jpeg", 2))
        # colour JPEG baseline: DCMTK stores it YBR_FULL_422; decompressed it is RGB
        rgb_smooth = os.path.join(work, "rgb-smooth.dcm")
        d = make_rgb(rgb_smooth, study, series_mono, rng)
        y, x = np.mgrid[0:32, 0:32]
        d.PixelData = np.stack([x * 8, y * 8, (x + y) * 4], axis=-1).astype(np.uint8).tobytes()
        d.InstanceNumber = 5
        d.save_as(rgb_smooth)
        ybr = os.path.join(work, "ybr.dcm")
        if report(compress(["dcmcjpeg", "+eb"], rgb_smooth, ybr) and
                  pydicom.dcmread(ybr).PhotometricInterpretation == "YBR_FULL_422",
                  "RGB made lossy with dcmcjpeg +eb: stored YBR_FULL_422"):
            d = pydicom.dcmread(ybr)
            d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            for kw in ("LossyImageCompression", "LossyImageCompressionMethod", "LossyImageCompressionRatio"):
                if kw in d:
                    delattr(d, kw)  # a writer that forgot them: radshare must add them when it decompresses
            d.save_as(ybr)
            uploads.append(open(ybr, "rb").read())
        uploads.append(open(single, "rb").read())
        st, res = stow(srv, uploads)
        report(st == 200, f"STOW-RS stores {len(uploads)} instances", str(res)[:300])

        for label, path, src, ts, media, tol in cases:
            original = pydicom.dcmread(src).PixelData
            check_frames(srv, label, path, original, ts, media, tol, work)
            if "multi" not in label:
                check_instance(srv, label, path, src, original, tol > 0, work)

        st, h, body = srv.get(url(ybr), {"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={EXPLICIT}'})
        parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
        fy = os.path.join(work, "ybr-explicit.dcm")
        if parts:
            open(fy, "wb").write(parts[0][1])
        dy = pydicom.dcmread(fy) if parts else None
        diff = (np.abs(np.frombuffer(dy.PixelData, np.uint8).astype(int) -
                       np.frombuffer(pydicom.dcmread(rgb_smooth).PixelData, np.uint8).astype(int)).mean()
                if dy is not None and len(dy.PixelData) == 32 * 32 * 3 else 999)
        report(dy is not None and dy.PhotometricInterpretation == "RGB" and dy.PlanarConfiguration == 0
               and dy.LossyImageCompression == "01" and dy.LossyImageCompressionMethod == "ISO_10918_1" and diff < 3,
               "YBR_FULL_422 JPEG without lossy attributes asked in Explicit VR LE: RGB interleaved, Lossy Image "
               "Compression 01 / ISO_10918_1 added, close to the original",
               f"{st} {dy.PhotometricInterpretation if dy else ''} mean diff {diff}")
        errs = dciodvfy_errors(fy) - dciodvfy_errors(rgb_smooth) - dciodvfy_errors(ybr) if dy else {"no file"}
        report(not errs, "... and dciodvfy finds no new error in it", "; ".join(errs)[:300])

        # native but not little endian explicit: big endian and deflated (DCMTK dcmconv)
        n_extra = 0
        for label, opt, tsu in (("big endian", "+tb", "1.2.840.10008.1.2.2"), ("deflated", "+td", "1.2.840.10008.1.2.1.99")):
            f = os.path.join(work, f"{opt}.dcm")
            ok = run(["dcmconv", opt, single, f]).returncode == 0
            if ok:
                d = pydicom.dcmread(f)
                d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = generate_uid()
                d.save_as(f)
                ok = pydicom.dcmread(f).file_meta.TransferSyntaxUID == tsu and stow(srv, [open(f, "rb").read()])[0] == 200
            n_extra += report(ok, f"{label} instance made with dcmconv {opt} and stored")
            want = pydicom.dcmread(single).PixelData
            st, h, body = srv.get(url(f) + "/frames/1", {"Accept": OCTET})
            parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
            report(st == 200 and len(parts) == 1 and parts[0][1] == want and f"transfer-syntax={EXPLICIT}" in parts[0][0],
                   f"{label}: frame as octet-stream is the little-endian pixel data, labelled Explicit VR LE",
                   parts[0][0] if parts else str(st))
            st, h, body = srv.get(url(f), {"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={EXPLICIT}'})
            parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
            fo = os.path.join(work, f"{opt}-explicit.dcm")
            if parts:
                open(fo, "wb").write(parts[0][1])
            report(bool(parts) and pydicom.dcmread(fo).file_meta.TransferSyntaxUID == EXPLICIT
                   and pydicom.dcmread(fo).PixelData == want and pydicom.dcmread(fo).PatientName == "Doe^John",
                   f"{label}: instance rewritten in Explicit VR LE")

        # WADO-URI transferSyntax (PS3.18 9.1.2.2.4)
        jls_path = next(c[1] for c in cases if c[0] == "jpeg-ls")
        s_, se_, i_ = uids(jls_path)
        uri = f"/wado?requestType=WADO&studyUID={s_}&seriesUID={se_}&objectUID={i_}&contentType=application/dicom"
        st, h, body = srv.get(uri + f"&transferSyntax={EXPLICIT}")
        fw = os.path.join(work, "wado-uri.dcm")
        open(fw, "wb").write(body)
        ok = st == 200 and h.get("content-type") == "application/dicom"
        report(ok and pydicom.dcmread(fw).file_meta.TransferSyntaxUID == EXPLICIT and
               pydicom.dcmread(fw).PixelData == pydicom.dcmread(single).PixelData,
               "WADO-URI transferSyntax=Explicit VR LE: the instance decompressed", str(st))
        st, h, body = srv.get(uri)
        report(st == 200 and body == open(jls_path, "rb").read(), "WADO-URI without transferSyntax: the stored file")
        st, h, body = srv.get(uri + "&transferSyntax=1.2.840.10008.1.2.4.50")
        report(st == 406 and EXPLICIT.encode() in body and b"8-bit" in body,
               "WADO-URI transferSyntax=JPEG baseline of a 16-bit image: 406 naming what can be sent", body[:300])

        # long frame lists: kept whole, never cut into another list
        mfj = url(next(c[1] for c in cases if c[0] == "jpeg-ls multi-frame"))
        st, h, body = srv.get(mfj + "/frames/" + ",".join(["1,2,3"] * 150), {"Accept": OCTET})
        parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
        orig = pydicom.dcmread(mf).PixelData
        fb = len(orig) // 3
        report(st == 200 and len(parts) == 450 and all(p[1] == orig[(i % 3) * fb:(i % 3 + 1) * fb] for i, p in enumerate(parts)),
               "a 450-frame list (~900 characters) gives 450 parts, each the right frame", f"{st} {len(parts)}")
        st, h, body = srv.get(mfj + "/frames/" + ",".join(["1,2,3"] * 1000), {"Accept": OCTET})
        report(st == 414, "a frame list longer than the path limit: 414, not a shorter list", str(st))

        # caching: the ETag depends on the syntax asked, and revalidates
        jl = url(next(c[1] for c in cases if c[0] == "jpeg-ls")) + "/frames/1"
        st1, h1, _ = srv.get(jl, {"Accept": OCTET})
        st2, h2, _ = srv.get(jl, {"Accept": OCTET + "; transfer-syntax=*"})
        st3, _, b3 = srv.get(jl, {"Accept": OCTET, "If-None-Match": h1.get("etag", "none")})
        st4, _, _ = srv.get(jl, {"Accept": OCTET + "; transfer-syntax=*", "If-None-Match": h1.get("etag", "none")})
        report(st1 == st2 == 200 and h1.get("etag") and h1.get("etag") != h2.get("etag") and st3 == 304 and st4 == 200
               and "Accept" in h1.get("vary", ""), "frames: ETag per syntax (304 on the same, 200 on another), Vary: Accept",
               f"{h1.get('etag')} {h2.get('etag')} {st3} {st4} {h1.get('vary')}")

        # native instance: octet-stream is its bytes; asking a compressed syntax is a 406 naming what can be done
        st, h, body = srv.get(url(single) + "/frames/1", {"Accept": OCTET})
        parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
        report(st == 200 and parts and parts[0][1] == pydicom.dcmread(single).PixelData,
               "native instance: frames as octet-stream are its pixel bytes")
        st, h, body = srv.get(url(single), {"Accept": 'multipart/related; type="application/dicom"; '
                                                     'transfer-syntax=1.2.840.10008.1.2.4.50'})
        report(st == 406 and EXPLICIT.encode() in body and b"1.2.840.10008.1.2 " in body,
               "16-bit instance asked in JPEG baseline: 406 listing the syntaxes offered", body[:300].decode())
        st, h, body = srv.get(url(single), {"Accept": 'multipart/related; type="application/dicom"; '
                                                     'transfer-syntax=1.2.840.10008.1.2'})
        parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
        f = os.path.join(work, "implicit.dcm")
        if parts:
            open(f, "wb").write(parts[0][1])
        ok = bool(parts) and pydicom.dcmread(f).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
        report(ok and pydicom.dcmread(f).PixelData == pydicom.dcmread(single).PixelData,
               "native instance rewritten in Implicit VR Little Endian on request")

        # series retrieve with mixed stored syntaxes, all asked uncompressed
        s_uid, se_uid, _ = uids(single)
        st, h, body = srv.get(f"/dicom-web/studies/{s_uid}/series/{se_uid}",
                              {"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={EXPLICIT}'})
        parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
        tss = set()
        for i, p in enumerate(parts):
            fp = os.path.join(work, f"series-{i}.dcm")
            open(fp, "wb").write(p[1])
            tss.add(str(pydicom.dcmread(fp).file_meta.TransferSyntaxUID))
        # + the native one, the YBR JPEG, big endian and deflated
        n_series = sum(1 for c in cases if "multi" not in c[0]) + 2 + n_extra
        report(st == 200 and len(parts) == n_series and tss == {EXPLICIT},
               f"series of {n_series} instances in mixed syntaxes, all streamed as Explicit VR LE", f"{st} {len(parts)} {tss}")

        check_limits(srv, work, rng)
        n_mf = 3 * (1 + sum(1 for c in cases if "multi" in c[0]))
        files_by_sop = {}
        for f in os.listdir(work):
            if f.endswith(".dcm"):
                try:
                    files_by_sop[str(pydicom.dcmread(os.path.join(work, f), stop_before_pixels=True).SOPInstanceUID)] = \
                        os.path.join(work, f)
                except Exception:  # noqa: BLE001 (raw outputs of the tools)
                    pass
        check_rendered(srv, study, series_mono, n_series + n_mf, n_series, work, files_by_sop)
        mf_jls = next(c[1] for c in cases if c[0] == "jpeg-ls multi-frame")
        check_bulk(srv, mf, mf_jls, work)
        check_fuzzy(srv, work, rng)
    finally:
        rc = srv.stop()
        report(rc == 0, "server exits cleanly", str(rc))
        if not os.environ.get("KEEP"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("# kept", work)
    print(f"1..{dwlib.tap.n}")
    sys.exit(dwlib.tap.status())


main()
