#!/usr/bin/python3
"""radshare render against pydicom + numpy references (TAP).

Every image pydicom can decode by itself (native and RLE in the pydicom test corpus) is
rendered by `radshare render` to PNG and compared pixel by pixel with a reference built from
pydicom's pixel_array and the PS3.3 C.11 formulas written out in numpy (modality LUT through
pydicom's apply_modality_lut; colour through convert_color_space / apply_color_lut). Then:
explicit windows with each VOI function, 16-bit PNG, MONOCHROME1, PALETTE COLOR (plain and
segmented palettes), Modality/VOI LUT Sequences, enhanced multi-frame per-frame windows, and
viewport resizing against numpy area averaging. PNGs are read by a small zlib PNG reader here.
"""
import glob
import warnings
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixel_data_handlers.util import apply_color_lut, apply_modality_lut, convert_color_space
from pydicom.sequence import Sequence

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rstest import RADSHARE, tap  # noqa: E402

report = tap

warnings.simplefilter("ignore")
DATA = "/usr/lib/python3/dist-packages/pydicom/data"
TMP = tempfile.mkdtemp(prefix="rs-render-")


# ---- PNG reading ---------------------------------------------------------------------------

def png_read(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        ln, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + ln]
        crc = struct.unpack(">I", data[pos + 8 + ln:pos + 12 + ln])[0]
        assert zlib.crc32(typ + body) == crc, "bad CRC"
        if typ == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat += body
        elif typ == b"IEND":
            break
        pos += 12 + ln
    w, h, depth, ctype, _, _, interlace = hdr
    assert interlace == 0 and ctype in (0, 2) and depth in (8, 16)
    ch = 3 if ctype == 2 else 1
    bpp = ch * depth // 8
    stride = w * bpp
    raw = zlib.decompress(idat)
    out = np.zeros((h, stride), dtype=np.int32)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, dtype=np.int32)
        if f in (0, 2):
            cur = (line + (prev if f == 2 else 0)) & 255
        else:
            for x in range(stride):
                a = cur[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                if f == 1:
                    p = a
                elif f == 3:
                    p = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (line[x] + p) & 255
        out[y] = cur
        prev = cur
    if depth == 16:
        out = out[:, 0::2] * 256 + out[:, 1::2]
    return out.reshape(h, w, ch) if ch == 3 else out.reshape(h, w)


def render(path, *args, fmt="png"):
    out = os.path.join(TMP, "out")
    r = subprocess.run([RADSHARE, "render", path, "--out", out, "--format", fmt, *args], capture_output=True)
    if r.returncode != 0:
        return None, r.stderr.decode(errors="replace").strip()
    data = open(out, "rb").read()
    return (data if fmt == "jpeg" else png_read(data)), ""


# ---- references ----------------------------------------------------------------------------

def window(x, c, w, fn, ymax):
    x = x.astype(np.float64)
    if fn == "SIGMOID":
        y = ymax / (1 + np.exp(-4 * (x - c) / w))
    elif fn == "LINEAR_EXACT":
        y = np.where(x <= c - w / 2, 0, np.where(x > c + w / 2, ymax, ((x - c) / w + 0.5) * ymax))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            mid = ((x - (c - 0.5)) / (w - 1) + 0.5) * ymax if w > 1 else 0 * x
        y = np.where(x <= c - 0.5 - (w - 1) / 2, 0, np.where(x > c - 0.5 + (w - 1) / 2, ymax, mid))
    return np.clip(np.floor(y + 0.5), 0, ymax)


def first(v):
    return float(v[0]) if isinstance(v, pydicom.multival.MultiValue) else float(v)


def frame_of(ds, arr, frame):
    nf = int(getattr(ds, "NumberOfFrames", 1) or 1)
    spp = int(ds.SamplesPerPixel)
    if nf > 1:
        return arr[frame]
    return arr


def grey_ref(ds, frame=0, win=None, fn=None, ymax=255):
    arr = frame_of(ds, ds.pixel_array, frame)
    mod = np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
    fdef = str(getattr(ds, "VOILUTFunction", "LINEAR") or "LINEAR")
    src = ds
    fg = getattr(ds, "PerFrameFunctionalGroupsSequence", None)
    if fg is not None and "FrameVOILUTSequence" in fg[frame]:
        src = fg[frame].FrameVOILUTSequence[0]
        fdef = str(getattr(src, "VOILUTFunction", "LINEAR") or "LINEAR")
    if win is not None:
        y = window(mod, win[0], win[1], fn or fdef, ymax)
    elif "WindowCenter" in src and "WindowWidth" in src:
        y = window(mod, first(src.WindowCenter), first(src.WindowWidth), fn or fdef, ymax)
    elif "VOILUTSequence" in ds:
        item = ds.VOILUTSequence[0]
        nent, fm, bits = item.LUTDescriptor
        nent = nent or 65536
        lut = np.asarray(item.LUTData, dtype=np.float64)
        idx = np.clip(np.floor(mod) - fm, 0, nent - 1).astype(np.int64)
        top = (1 << bits) - 1
        y = np.floor(np.minimum(lut[idx], top) * ymax / top + 0.5)
    else:
        lo, hi = mod.min(), mod.max()
        y = window(mod, (lo + hi + 1) / 2, hi - lo + 1, fn if fn in ("SIGMOID", "LINEAR_EXACT") else "LINEAR", ymax)
    inv = ds.PhotometricInterpretation == "MONOCHROME1" or getattr(ds, "PresentationLUTShape", "") == "INVERSE"
    return ymax - y if inv else y


def colour_ref(ds, frame=0):
    arr = frame_of(ds, ds.pixel_array, frame)
    pi = ds.PhotometricInterpretation
    if pi == "PALETTE COLOR":
        # indices past the table map to its last entry (C.7.6.3.1.5); pydicom 2.3 wraps them
        # around in the LUT's dtype, so clamp before asking it
        nent, fm = ds.RedPaletteColorLookupTableDescriptor[0] or 65536, ds.RedPaletteColorLookupTableDescriptor[1]
        arr = np.clip(arr.astype(np.int64), fm, fm + nent - 1).astype(arr.dtype)
        rgb = apply_color_lut(arr, ds).astype(np.float64)
        bits = ds.RedPaletteColorLookupTableDescriptor[2]
        if bits > 8:
            return np.floor((rgb * 255 + 32767) / 65535)
        return np.where(rgb > 255, np.floor(rgb / 256), rgb)
    if pi in ("YBR_FULL", "YBR_FULL_422"):
        return convert_color_space(arr, pi, "RGB").astype(np.float64)
    top = (1 << int(ds.BitsStored)) - 1
    a = arr.astype(np.float64)
    return a if top == 255 else np.floor(a * 255 / top + 0.5)


def area_resize(img, ow, oh):
    def weights(n_in, n_out):
        r = n_in / n_out
        W = np.zeros((n_out, n_in))
        for o in range(n_out):
            lo, hi = o * r, min((o + 1) * r, n_in)
            for j in range(int(np.floor(lo)), min(int(np.ceil(hi)), n_in)):
                W[o, j] = max(0.0, min(j + 1, hi) - max(j, lo)) / (hi - lo)
        return W
    Wy, Wx = weights(img.shape[0], oh), weights(img.shape[1], ow)
    if img.ndim == 3:
        return np.stack([np.floor(Wy @ img[:, :, c] @ Wx.T + 0.5) for c in range(3)], axis=2)
    return np.floor(Wy @ img @ Wx.T + 0.5)


def fit(cols, rows, vw, vh):
    s = 1.0
    if vw and vw / cols < s:
        s = vw / cols
    if vh and vh / rows < s:
        s = vh / rows
    if s >= 1:
        return cols, rows
    w = max(1, min(cols, int(np.floor(cols * s + 0.5))))
    h = max(1, min(rows, int(np.floor(rows * s + 0.5))))
    return (min(w, vw) if vw else w), (min(h, vh) if vh else h)


def compare(what, got, ref, tol=1):
    if got is None:
        report(False, what)
        return
    if got.shape != ref.shape:
        report(False, f"{what}: shape {got.shape} != {ref.shape}")
        return
    d = np.abs(got.astype(np.int64) - ref.astype(np.int64)).max() if got.size else 0
    report(d <= tol, f"{what} (max diff {d})")


def reference(ds, frame=0, **kw):
    if ds.PhotometricInterpretation in ("MONOCHROME1", "MONOCHROME2"):
        return grey_ref(ds, frame, **kw)
    return colour_ref(ds, frame)


# ---- 1. the corpus -------------------------------------------------------------------------

def decodable(path):
    try:
        ds = pydicom.dcmread(path)
        if "PixelData" not in ds:
            return None
        ds.pixel_array
        return ds
    except Exception:
        return None


corpus = sorted(glob.glob(f"{DATA}/test_files/*.dcm"))
used = []
for path in corpus:
    ds = decodable(path)
    if ds is None:
        continue
    name = os.path.basename(path)
    used.append((path, ds))
    got, msg = render(path)
    tol = 2 if ds.PhotometricInterpretation.startswith("YBR") else 1
    if got is None:
        report(False, f"{name}: radshare failed: {msg}")
        continue
    compare(f"{name}: default rendering", got, reference(ds), tol)
    nf = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if nf > 1:
        got, msg = render(path, "--frame", str(nf - 1))
        compare(f"{name}: frame {nf - 1}", got, reference(ds, nf - 1), tol)

report(len(used) >= 20, f"{len(used)} corpus images compared")

# ---- 1b. compressed corpus images: reference from GDCM's decompression ----------------------
# pydicom here has no JPEG/J2K handler, so `gdcmconv --raw` makes a native copy whose
# pixel_array is the reference. Lossless syntaxes must match within 1 (as natives do); lossy
# ones within 2 (two JPEG decoders' IDCTs may differ by a level).
# The 12-bit extended JPEGs (JPEG-lossy.dcm, JPGExtended.dcm) are compared too: codec/jpeg12.c.
n_comp = 0
for path in corpus:
    name = os.path.basename(path)
    if decodable(path) is not None:
        continue
    try:
        ds0 = pydicom.dcmread(path)
    except Exception:
        continue
    tsu = getattr(ds0.file_meta, "TransferSyntaxUID", None)
    if "PixelData" not in ds0 or tsu is None or not tsu.is_compressed:
        continue
    raw = os.path.join(TMP, "raw_" + name)
    if subprocess.run(["gdcmconv", "--raw", path, raw], capture_output=True).returncode != 0:
        continue  # not decodable by GDCM either: nothing to compare against
    ds = decodable(raw)
    if ds is None:
        continue
    lossy = ds0.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                                                 "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.91")
    if name == "J2K_pixelrep_mismatch.dcm":
        # the codestream is unsigned, the dataset says signed: GDCM keeps the unsigned values,
        # codec.h promises samples sign-extended from BitsStored per PixelRepresentation
        bs = int(ds.BitsStored)
        a = ds.pixel_array.astype(np.int64) & ((1 << bs) - 1)
        a = np.where(a >= 1 << (bs - 1), a - (1 << bs), a).astype(np.int16)
        ds.PixelData = a.tobytes()
    got, msg = render(path)
    n_comp += 1
    if got is None:
        report(False, f"{name}: radshare failed: {msg}")
        continue
    if ds.PhotometricInterpretation.startswith("YBR") or ds0.PhotometricInterpretation.startswith("YBR"):
        tol = 3 if lossy else 2
    else:
        tol = 2 if lossy else 1
    compare(f"{name} ({tsu.name}): default rendering", got, reference(ds), tol)

report(n_comp >= 10, f"{n_comp} compressed corpus images compared")

# ---- 2. windows, VOI functions, 16-bit ----------------------------------------------------

for fname in ("CT_small.dcm", "MR_small.dcm"):
    path = f"{DATA}/test_files/{fname}"
    ds = pydicom.dcmread(path)
    mod = apply_modality_lut(ds.pixel_array, ds)
    c, w = float(np.percentile(mod, 40)), float(np.ptp(mod) / 3 + 1)
    for fn in ("linear", "linear_exact", "sigmoid"):
        got, msg = render(path, "--window", f"{c},{w}", "--voi-function", fn)
        compare(f"{fname}: window {c:.1f},{w:.1f} {fn}", got, grey_ref(ds, win=(c, w), fn=fn.upper()))
        got, msg = render(path, "--window", f"{c},{w}", "--voi-function", fn, fmt="png16")
        compare(f"{fname}: 16-bit PNG, {fn}", got, grey_ref(ds, win=(c, w), fn=fn.upper(), ymax=65535))
    got, _ = render(path, "--window", f"{c},1", "--voi-function", "linear")
    compare(f"{fname}: width 1 is a threshold", got, grey_ref(ds, win=(c, 1), fn="LINEAR"))
    got, _ = render(path, fmt="png16")
    compare(f"{fname}: 16-bit PNG default window", got, grey_ref(ds, ymax=65535))


def synth(src, name, edit):
    ds = pydicom.dcmread(f"{DATA}/test_files/{src}")
    edit(ds)
    path = os.path.join(TMP, name)
    ds.save_as(path, write_like_original=False)
    return path, pydicom.dcmread(path)


def check_synth(what, src, edit, *args, tol=1):
    path, ds = synth(src, what.replace(" ", "_") + ".dcm", edit)
    got, msg = render(path, *args)
    if got is None:
        report(False, f"{what}: {msg}")
    else:
        compare(what, got, reference(ds), tol)
    return path, ds


# ---- 3. MONOCHROME1, presentation shape, modality and VOI LUT sequences -------------------

def mono1(ds):
    ds.PhotometricInterpretation = "MONOCHROME1"


def inverse(ds):
    ds.PresentationLUTShape = "INVERSE"


def no_window(ds):
    for k in ("WindowCenter", "WindowWidth"):
        if k in ds:
            delattr(ds, k)


def mlut(ds):
    no_window(ds)
    for k in ("RescaleSlope", "RescaleIntercept"):
        if k in ds:
            delattr(ds, k)
    arr = ds.pixel_array
    lo = int(arr.min())
    it = Dataset()
    it.LUTDescriptor = [1024, lo + 10, 16]
    it.add_new(0x00283006, "US", [int(v) for v in (np.arange(1024) * 37 % 4096)])
    it.ModalityLUTType = "HU"
    ds.ModalityLUTSequence = Sequence([it])


def vlut(ds):
    no_window(ds)
    it = Dataset()
    it.LUTDescriptor = [2048, 0, 12]
    it.add_new(0x00283006, "US", [int(v) for v in np.linspace(0, 4095, 2048)[::-1]])
    ds.VOILUTSequence = Sequence([it])


def voi_sigmoid(ds):
    ds.VOILUTFunction = "SIGMOID"


check_synth("MONOCHROME1", "MR_small.dcm", mono1)
check_synth("Presentation LUT Shape INVERSE", "MR_small.dcm", inverse)
check_synth("MONOCHROME1 auto window", "CT_small.dcm", lambda d: (mono1(d), no_window(d)))
check_synth("file VOILUTFunction SIGMOID", "CT_small.dcm", voi_sigmoid)
check_synth("Modality LUT Sequence", "MR_small.dcm", mlut)
check_synth("VOI LUT Sequence", "MR_small.dcm", vlut)


def enhanced(ds):
    """Two frames, each with its own window in the per-frame functional groups."""
    arr = ds.pixel_array
    two = np.stack([arr, arr[::-1]])
    ds.PixelData = two.tobytes()
    ds.NumberOfFrames = 2
    no_window(ds)
    per = []
    for c, w in ((600, 800), (1200, 300)):
        fg = Dataset()
        voi = Dataset()
        voi.WindowCenter = c
        voi.WindowWidth = w
        fg.FrameVOILUTSequence = Sequence([voi])
        per.append(fg)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per)


path, ds = synth("CT_small.dcm", "enhanced.dcm", enhanced)
for fr in (0, 1):
    got, msg = render(path, "--frame", str(fr))
    compare(f"per-frame window of frame {fr}", got, grey_ref(ds, fr))

# ---- 4. PALETTE COLOR ----------------------------------------------------------------------

def palette_from(pal):
    def edit(ds):
        p = pydicom.dcmread(f"{DATA}/palettes/{pal}")
        no_window(ds)
        ds.PhotometricInterpretation = "PALETTE COLOR"
        arr = ds.pixel_array.astype(np.int64)
        idx = ((arr - arr.min()) * 300 // max(1, np.ptp(arr))).astype(np.uint16)  # some beyond 255: clamped
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.PixelData = idx.tobytes()
        for k in p:
            if k.tag.group == 0x0028 and 0x1101 <= k.tag.element <= 0x1223:
                ds.add(k)
        for k in ("RescaleSlope", "RescaleIntercept"):
            if k in ds:
                delattr(ds, k)
    return edit


for pal in ("hotiron.dcm", "pet.dcm", "fall.dcm", "winter.dcm"):
    check_synth(f"PALETTE COLOR {pal}", "CT_small.dcm", palette_from(pal))

# ---- 5. viewport ---------------------------------------------------------------------------

for fname, vw, vh in (("MR_small.dcm", 32, 0), ("CT_small.dcm", 50, 40), ("CT_small.dcm", 0, 37),
                      ("SC_rgb_rle.dcm", 30, 60), ("MR_small.dcm", 500, 500), ("SC_rgb_small_odd.dcm", 2, 2)):
    path = f"{DATA}/test_files/{fname}"
    ds = pydicom.dcmread(path)
    ow, oh = fit(int(ds.Columns), int(ds.Rows), vw, vh)
    got, msg = render(path, "--viewport", f"{vw},{vh}")
    ref = area_resize(reference(ds), ow, oh)
    compare(f"{fname} in {vw}x{vh}: {ow}x{oh} area average", got, ref)

# ---- 6. JPEG -------------------------------------------------------------------------------

for fname in ("CT_small.dcm", "SC_rgb_rle.dcm"):
    got, msg = render(f"{DATA}/test_files/{fname}", "--quality", "75", fmt="jpeg")
    report(got is not None and got[:2] == b"\xff\xd8" and got[-2:] == b"\xff\xd9", f"{fname}: JPEG SOI..EOI")

# ---- 7. refusals ---------------------------------------------------------------------------

r = subprocess.run([RADSHARE, "render", f"{DATA}/test_files/MR_small.dcm", "--frame", "1", "--out",
                    os.path.join(TMP, "x")], capture_output=True)
report(r.returncode == 2, "frame beyond the last one is refused")
r = subprocess.run([RADSHARE, "render", f"{DATA}/test_files/MR_small.dcm", "--window", "10,0.5", "--out",
                    os.path.join(TMP, "x")], capture_output=True)
report(r.returncode == 2, "LINEAR width below 1 is refused")

print(f"1..{tap.n}")
sys.exit(tap.status())
