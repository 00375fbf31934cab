#!/usr/bin/python3
"""The encoders of src/codec (encode.h) through `radshare convert --ts` and WADO-RS:
- 8-, 12- and 16-bit grey (2 frames, 37x41: odd sizes) and 8-bit RGB sources, each encoded in RLE,
  JPEG-LS lossless and near-lossless, JPEG 2000 lossless and (8-bit) JPEG baseline;
- every result decoded by an independent decoder (DCMTK dcmdrle / dcmdjpls / dcmdjpeg, GDCM gdcmconv --raw)
  equals the original samples exactly (lossless), within NEAR (near-lossless), within a bound (JPEG);
- encapsulation: one fragment per frame after a Basic Offset Table that points at them; meta header in the new
  syntax; Photometric Interpretation and lossy attributes (PS3.3 C.7.6.1.1.5) as the syntax needs;
- dciodvfy finds no error in an encoded file that the source does not have;
- refused: JPEG baseline from 12/16-bit data, an image claiming 65535x65535 pixels;
- WADO-RS: /frames with type="image/jls" / "image/jp2" / "image/x-dicom-rle" / "image/jpeg" give the same
  frames as convert, an instance asked with transfer-syntax=<uid> decodes to the original, 16-bit asked
  as JPEG baseline is a 406 listing what can be sent, and in a series with a second choice gets that one.
TAP output."""
import os
import shutil
import sys
import tempfile

import numpy as np
import pydicom
from pydicom.encaps import generate_pixel_data_frame, get_frame_offsets
from pydicom.filebase import DicomBytesIO

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from dwlib import Server, make_instance, parse_multipart, stow  # noqa: E402
import dwlib  # noqa: E402

report = dwlib.report
run = dwlib.run
RADSHARE = os.path.abspath(os.environ.get("RADSHARE", "build/radshare"))
SYNTAXES = [  # name for --ts, UID, media type, independent decoders, tolerance (None: lossless)
    ("rle", "1.2.840.10008.1.2.5", "image/x-dicom-rle", ["dcmdrle", "gdcm"], None),
    ("jpeg-ls", "1.2.840.10008.1.2.4.80", "image/jls", ["dcmdjpls", "gdcm"], None),
    ("jpeg-ls-near", "1.2.840.10008.1.2.4.81", "image/jls", ["dcmdjpls", "gdcm"], 2),
    ("j2k", "1.2.840.10008.1.2.4.90", "image/jp2", ["gdcm"], None),
    ("jpeg", "1.2.840.10008.1.2.4.50", "image/jpeg", ["dcmdjpeg"], 12),
]


def make(path, bits, spp=1, rows=37, cols=41, frames=2, seed=1):
    rng = np.random.default_rng(seed)
    ds = make_instance(path, pydicom.uid.generate_uid(), pydicom.uid.generate_uid(), pydicom.uid.generate_uid(),
                       "Enc^Test", "MR", "20240301", "101010", 1, "enc", "enc", rng)
    if spp == 3:  # colour: Secondary Capture (the MR IOD has no YBR_FULL / YBR_RCT)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
        ds.ConversionType = "WSD"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.SamplesPerPixel = spp
    ds.PhotometricInterpretation = "RGB" if spp == 3 else "MONOCHROME2"
    if spp == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = 8 if bits <= 8 else 16
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
    hi = (1 << bits) - 1
    y, x = np.mgrid[0:rows, 0:cols]
    a = np.stack([(x * 5 + y * 3 + f * 17) * hi // (5 * cols + 3 * rows + 40) for f in range(frames)])
    if bits > 8:  # noise and edges for the lossless coders, where it costs nothing to the tolerance
        a = np.where(rng.random(a.shape) < 0.3, rng.integers(0, hi + 1, a.shape), a)
        a[:, :, 0], a[:, 0, :] = hi, 0
    if spp == 3:
        a = np.stack([a, hi - a, np.minimum(a // 2 + y * 2, hi)], axis=-1)
    ds.PixelData = a.astype(np.uint8 if bits <= 8 else np.uint16).tobytes()
    ds.save_as(path, write_like_original=False)
    return ds


def samples(ds):
    return np.frombuffer(ds.PixelData, np.uint8 if ds.BitsAllocated == 8 else np.uint16).astype(int)


def independent(tool, path, work):
    out = os.path.join(work, f"dec-{tool}-{os.path.basename(path)}")
    p = run(["gdcmconv", "--raw", path, out] if tool == "gdcm" else [tool, path, out])
    if p.returncode or not os.path.exists(out):
        return None, (p.stderr or p.stdout).decode(errors="replace")[:300]
    return pydicom.dcmread(out), ""


def dciodvfy_errors(path):
    p = run(["dciodvfy", "-new", path])
    return {ln for ln in p.stderr.decode(errors="replace").splitlines() if ln.startswith("Error")}


def check_structure(name, path, uid, src, frames):
    ds = pydicom.dcmread(path)
    ok = ds.file_meta.TransferSyntaxUID == uid and ds["PixelData"].is_undefined_length
    fp = DicomBytesIO(ds.PixelData)
    fp.is_little_endian = True
    offsets = get_frame_offsets(fp)[1] if ok else []
    got = list(generate_pixel_data_frame(ds.PixelData, frames)) if ok else []
    # the offsets point at each frame's item: 8-byte header + the fragment padded to even
    want, at = [], 0
    for f in got:
        want.append(at)
        at += 8 + len(f) + (len(f) & 1)
    report(ok and offsets == want and len(got) == frames, f"{name}: {frames} fragments after a Basic Offset Table "
           "pointing at them, meta in the new syntax", f"{ds.file_meta.TransferSyntaxUID} {offsets} {want}")
    return ds


def check_file(name, path, src_path, uid, decoders, tol, work):
    src = pydicom.dcmread(src_path)
    frames = int(src.NumberOfFrames)
    ds = check_structure(name, path, uid, src, frames)
    orig = samples(src)
    for tool in decoders:
        dec, why = independent(tool, path, work)
        got = samples(dec) if dec is not None else None
        if got is not None and got.size >= orig.size:
            got = got[:orig.size]
        same = got is not None and got.size == orig.size
        err = int(np.abs(got - orig).max()) if same else -1
        if tol is None:
            report(same and err == 0, f"{name}: {tool} decodes it to the original samples exactly", f"{err} {why}")
        else:
            report(same and err <= tol, f"{name}: {tool} decodes it within {tol} of the original", f"{err} {why}")
    lossy = tol is not None
    if lossy:
        method = "ISO_14495_1" if "4.81" in uid else "ISO_10918_1"
        ratio = float(ds.get("LossyImageCompressionRatio", 0) or 0)
        report(ds.get("LossyImageCompression") == "01" and ds.get("LossyImageCompressionMethod") == method
               and ratio > 0.5, f"{name}: Lossy Image Compression 01, ratio {ratio:.2f}, method {method}")
    else:
        report("LossyImageCompression" not in ds, f"{name}: lossless, no lossy attributes")
    pi = {("jpeg", 3): "YBR_FULL_422", ("j2k", 3): "YBR_RCT"}.get((name.split()[0], int(src.SamplesPerPixel)),
                                                             src.PhotometricInterpretation)
    report(ds.PhotometricInterpretation == pi, f"{name}: Photometric Interpretation {pi}", ds.PhotometricInterpretation)
    errs = dciodvfy_errors(path) - dciodvfy_errors(src_path)
    report(not errs, f"{name}: dciodvfy finds no error the source does not have", "; ".join(errs)[:300])


def url(ds):
    return f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"


def check_http(work, sources, encoded):
    srv = Server(os.path.join(work, "data"))
    try:
        report(srv.start(), "server starts")
        st, _ = stow(srv, [open(p, "rb").read() for p in sources.values()])
        report(st == 200, "STOW-RS stores the sources", str(st))
        for (sname, tsname), path in sorted(encoded.items()):
            _, uid, media, _, tol = next(s for s in SYNTAXES if s[0] == tsname)
            src = pydicom.dcmread(sources[sname])
            want = list(generate_pixel_data_frame(pydicom.dcmread(path).PixelData, int(src.NumberOfFrames)))
            accept = f'multipart/related; type="{media}"' + (f"; transfer-syntax={uid}" if tsname != "jpeg-ls" else "")
            st, h, body = srv.get(url(src) + "/frames/1,2", {"Accept": accept})
            parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
            # the file's fragments carry the writer's pad byte when odd (PS3.5 A.4); a frame part does not
            report(st == 200 and len(parts) == len(want) and
                   all(w == g or w == g + b"\0" and len(g) % 2 for w, g in zip(want, (p[1] for p in parts))) and all(f"transfer-syntax={uid}" in p[0] for p in parts),
                   f"WADO-RS {sname} frames as {media} ({uid}): the frames convert makes", f"{st} {body[:200]}")
            if tsname in ("jpeg-ls", "jpeg"):
                st, h, body = srv.get(url(src), {"Accept": 'multipart/related; type="application/dicom"; '
                                                           f"transfer-syntax={uid}"})
                parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
                f = os.path.join(work, f"wado-{sname}-{tsname}.dcm")
                if parts:
                    open(f, "wb").write(parts[0][1])
                dec, why = independent("dcmdjpls" if tsname == "jpeg-ls" else "dcmdjpeg", f, work) if parts else (None, "")
                err = int(np.abs(samples(dec)[:samples(src).size] - samples(src)).max()) if dec is not None else -1
                report(bool(parts) and pydicom.dcmread(f).file_meta.TransferSyntaxUID == uid and 0 <= err <= (tol or 0),
                       f"WADO-RS {sname} instance with transfer-syntax={uid}: decoded by DCMTK within {tol or 0}",
                       f"{st} {err} {why}")
        s16 = pydicom.dcmread(sources["grey16"])
        st, h, body = srv.get(url(s16) + "/frames/1", {"Accept": 'multipart/related; type="image/jpeg"'})
        report(st == 406 and b"image/jls" in body and b"8-bit" in body,
               "16-bit frames asked as image/jpeg: 406 listing what can be sent", body[:300])
        st, h, body = srv.get(url(s16), {"Accept": 'multipart/related; type="application/dicom"; '
                                                   "transfer-syntax=1.2.840.10008.1.2.4.50"})
        report(st == 406 and b"8-bit" in body, "16-bit instance asked in JPEG baseline: 406", f"{st} {body[:300]}")
        st, h, body = srv.get(url(s16), {"Accept": 'multipart/related; type="application/dicom"; '
                                                   "transfer-syntax=1.2.840.10008.1.2.4.50, multipart/related; "
                                                   'type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.5; q=0.5'})
        parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
        report(st == 200 and len(parts) == 1 and "transfer-syntax=1.2.840.10008.1.2.5" in parts[0][0],
               "... with RLE as a second choice: RLE", f"{st} {body[:200]}")
        # a series of an 8-bit and a 16-bit image asked as JPEG baseline, else RLE: each gets what it can take
        study, series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
        mixed = []
        for sname in ("grey8", "grey16"):
            d = pydicom.dcmread(sources[sname])
            d.StudyInstanceUID, d.SeriesInstanceUID = study, series
            d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
            f = os.path.join(work, f"mixed-{sname}.dcm")
            d.save_as(f)
            mixed.append(open(f, "rb").read())
        report(stow(srv, mixed)[0] == 200, "an 8-bit and a 16-bit instance stored in one series")
        st, h, body = srv.get(f"/dicom-web/studies/{study}/series/{series}", {
            "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50, '
                      'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.5; q=0.5'})
        parts = parse_multipart(body, h.get("content-type", "")) if st == 200 else []
        got = {}
        for i, p in enumerate(parts):
            f = os.path.join(work, f"mixed-out-{i}.dcm")
            open(f, "wb").write(p[1])
            d = pydicom.dcmread(f)
            got[int(d.BitsAllocated)] = (str(d.file_meta.TransferSyntaxUID), p[0])
        report(st == 200 and got.get(8, ("",))[0] == "1.2.840.10008.1.2.4.50" and
               got.get(16, ("",))[0] == "1.2.840.10008.1.2.5" and all(f"transfer-syntax={v[0]}" in v[1] for v in got.values()),
               "series retrieve: the 8-bit instance in JPEG baseline, the 16-bit one in RLE (the next choice), "
               "each part labelled so", f"{st} {got}")
    finally:
        rc = srv.stop()
        report(rc == 0, "server exits cleanly", str(rc))


def main():
    work = tempfile.mkdtemp(prefix="rs-enc-")
    try:
        sources = {}
        for name, bits, spp in (("grey8", 8, 1), ("grey12", 12, 1), ("grey16", 16, 1), ("rgb8", 8, 3)):
            sources[name] = os.path.join(work, name + ".dcm")
            make(sources[name], bits, spp)
        encoded = {}
        for tsname, uid, media, decoders, tol in SYNTAXES:
            for sname, src in sources.items():
                out = os.path.join(work, f"{sname}-{tsname}.dcm")
                p = run([RADSHARE, "convert", "--ts", tsname, src, out])
                label = f"{tsname} {sname}"
                if tsname == "jpeg" and "8" not in sname:
                    report(p.returncode != 0 and b"8-bit" in p.stderr and not os.path.exists(out),
                           f"{label}: refused (JPEG baseline is 8-bit only)", p.stderr)
                    continue
                if report(p.returncode == 0, f"{label}: radshare convert --ts {tsname}", p.stderr):
                    encoded[(sname, tsname)] = out
                    check_file(label, out, src, uid, decoders, tol, work)
        # back: each encoded file converted to Explicit VR LE by radshare is the original (lossless)
        for (sname, tsname), path in encoded.items():
            if tsname in ("rle", "jpeg-ls", "j2k"):
                back = path + ".ele.dcm"
                p = run([RADSHARE, "convert", "--ts", "explicit-le", path, back])
                report(p.returncode == 0 and samples(pydicom.dcmread(back)).tolist() ==
                       samples(pydicom.dcmread(sources[sname])).tolist(), f"{tsname} {sname}: radshare decodes it back")
        # transcoding between compressed syntaxes: JPEG-LS -> J2K
        p = run([RADSHARE, "convert", "--ts", "j2k", encoded[("grey12", "jpeg-ls")], os.path.join(work, "jls-j2k.dcm")])
        dec, why = independent("gdcm", os.path.join(work, "jls-j2k.dcm"), work) if p.returncode == 0 else (None, p.stderr)
        report(dec is not None and samples(dec).tolist() == samples(pydicom.dcmread(sources["grey12"])).tolist(),
               "JPEG-LS -> JPEG 2000: decoded by GDCM to the original", why)
        # hostile: a native image claiming 65535 x 65535 16-bit pixels
        big = os.path.join(work, "big.dcm")
        d = pydicom.dcmread(sources["grey16"])
        d.Rows = d.Columns = 65535
        d.save_as(big)
        for tsname in ("rle", "jpeg-ls", "j2k"):
            p = run([RADSHARE, "convert", "--ts", tsname, big, big + tsname])
            report(p.returncode != 0 and b"limit" in p.stderr and not os.path.exists(big + tsname),
                   f"65535x65535 claim with a few KB of pixels: {tsname} refused with a message", p.stderr)
        check_http(work, sources, encoded)
    finally:
        if not os.environ.get("KEEP"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("# kept", work)
    print(f"1..{dwlib.tap.n}")
    sys.exit(dwlib.tap.status())


main()
