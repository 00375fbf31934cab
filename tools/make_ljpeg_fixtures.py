#!/usr/bin/python3
"""make_ljpeg_fixtures.py - regenerate tests/data/ljpeg/ (JPEG lossless bitstreams + expected samples).

Each case is a small synthetic image written as uncompressed DICOM (pydicom + numpy), compressed
by DCMTK's dcmcjpeg (an encoder independent of ours), and its first fragment's JPEG bytes saved as
NAME.jpg. NAME.raw holds the expected samples as little-endian uint16, components interleaved:
the source pixels cut to the precision DCMTK chose (read back from the SOF3) with the point
transform applied. Every case is also decompressed with dcmdjpeg and must match NAME.raw, so a
fixture never encodes a misunderstanding of ours. manifest.txt lists the cases, one a line:
"name width height components precision", which the unit test reads.

Run from the repository root: /usr/bin/python3 tools/make_ljpeg_fixtures.py
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_pixel_data_frame
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

OUT = "tests/data/ljpeg"
rng = np.random.default_rng(20240611)


def smooth(h, w, lo, hi, noise):
    """A CT-like picture: a gradient, a disc and some noise, clipped to [lo, hi]."""
    y, x = np.mgrid[0:h, 0:w]
    img = lo + (hi - lo) * (0.2 + 0.5 * x / max(w - 1, 1) * (y / max(h - 1, 1)))
    disc = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 3) ** 2
    img = np.where(disc, lo + 0.8 * (hi - lo), img) + rng.normal(0, noise, (h, w))
    return np.clip(np.rint(img), lo, hi)


def extremes(h, w, lo, hi):
    """Full-range values side by side, so differences of 32768 (SSSS 16) occur."""
    img = rng.integers(lo, hi + 1, (h, w), dtype=np.int64)
    img[0::3, 0::2] = lo
    img[0::3, 1::2] = lo + 32768 if hi - lo >= 32768 else hi
    img[1, :] = hi
    return img


def write_dicom(path, pixels, bits_stored, signed):
    h, w = pixels.shape[:2]
    spp = 1 if pixels.ndim == 2 else pixels.shape[2]
    alloc = 8 if bits_stored <= 8 else 16
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.PatientName = "LJPEG^FIXTURE"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = h, w, spp
    ds.PhotometricInterpretation = "RGB" if spp == 3 else "MONOCHROME2"
    if spp == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = alloc, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    dtype = {(8, 0): "<u1", (8, 1): "<i1", (16, 0): "<u2", (16, 1): "<i2"}[(alloc, int(signed))]
    ds.PixelData = pixels.astype(dtype).tobytes()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)
    return pixels.astype(dtype)


def sof3(jpg):
    """(precision, height, width, components) from the SOF3 segment."""
    i = jpg.index(b"\xff\xc3")
    p = jpg[i + 4:i + 10]
    return p[0], p[1] << 8 | p[2], p[3] << 8 | p[4], p[5]


def stored_bits(arr, bits):
    """The stored bits as unsigned numbers (two's complement for signed pixels)."""
    return arr.astype(np.int64) & ((1 << bits) - 1)


def make(manifest, name, pixels, bits_stored, signed, args, pt=0):
    with tempfile.TemporaryDirectory() as tmp:
        src, enc, dec = (os.path.join(tmp, f) for f in ("src.dcm", "enc.dcm", "dec.dcm"))
        arr = write_dicom(src, pixels, bits_stored, signed)
        subprocess.run(["dcmcjpeg", *args, src, enc], check=True)
        jpg = next(generate_pixel_data_frame(pydicom.dcmread(enc).PixelData))
        subprocess.run(["dcmdjpeg", enc, dec], check=True)
        back = pydicom.dcmread(dec).pixel_array
    prec, h, w, nc = sof3(jpg)
    want = stored_bits(arr, prec) >> pt << pt
    got = stored_bits(back, prec)
    if not np.array_equal(want, got):
        sys.exit(f"{name}: dcmdjpeg does not give back the expected samples")
    with open(f"{OUT}/{name}.jpg", "wb") as f:
        f.write(jpg)
    want.astype("<u2").tofile(f"{OUT}/{name}.raw")
    manifest.append(f"{name} {w} {h} {nc} {prec}\n")
    print(f"{name}: {w}x{h}x{nc} P{prec} {len(jpg)} bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    m = []
    u12 = smooth(48, 64, 0, 4095, 20)
    s12 = smooth(48, 64, -2048, 2047, 20)
    u16 = extremes(48, 64, 0, 65535)
    s16 = extremes(48, 64, -32768, 32767)
    u8 = smooth(48, 64, 0, 255, 3)
    odd = smooth(17, 33, 0, 4095, 200)
    rgb = np.stack([smooth(17, 33, 0, 255, 4), smooth(17, 33, 0, 255, 30),
                    extremes(17, 33, 0, 255)], axis=2)
    make(m, "sv1_u12", u12, 12, False, ["+e1"])
    make(m, "sv1_s12", s12, 12, True, ["+e1"])
    make(m, "sv1_u16", u16, 16, False, ["+e1"])
    make(m, "sv1_s16", s16, 16, True, ["+e1"])
    make(m, "sv1_u8", u8, 8, False, ["+e1"])
    make(m, "sv1_odd33x17", odd, 12, False, ["+e1"])
    make(m, "sv1_rgb8", rgb, 8, False, ["+e1"])
    for sv in range(2, 8):
        make(m, f"p{sv}_u12", u12, 12, False, ["+el", "+sv", str(sv)])
        make(m, f"p{sv}_u16", u16, 16, False, ["+el", "+sv", str(sv)])
    make(m, "p7_rgb8", rgb, 8, False, ["+el", "+sv", "7"])
    make(m, "p4_odd33x17", odd, 12, False, ["+el", "+sv", "4"])
    make(m, "p1_pt3_u12", u12, 12, False, ["+el", "+sv", "1", "+pt", "3"], pt=3)
    make(m, "p6_pt2_s16", s16, 16, True, ["+el", "+sv", "6", "+pt", "2"], pt=2)
    with open(f"{OUT}/manifest.txt", "w") as f:
        f.writelines(m)


if __name__ == "__main__":
    main()
