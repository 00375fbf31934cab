#!/usr/bin/python3
"""sample-studies.py - writes two synthetic, realistic-looking studies as DICOM files, for the demo
(tools/demo.sh) and the viewer's screenshots (tools/viewer-shots.mjs), which store them in a real
`radshare serve` with storescu. Not test data: tests build their own instances.

  CT HEAD WITHOUT CONTRAST  DUPONT^Marie-Hélène  axial 36, coronal 48, sagittal 40 images, 512x512
  MRI BRAIN                 JANSSENS^Pieter      T2 axial 26, T1 sagittal 24, FLAIR coronal 24, 512x512

The images are a head phantom (skin, skull with diploe, grey and white matter with folds,
ventricles, cerebellum, orbits, sinuses) with the noise of each modality; 12 bits stored, the
files' own windows. Each study's report text is written beside the files as UID.report.txt.

Usage: tools/sample-studies.py DIR     (Debian's python3 with python3-pydicom and python3-numpy)
"""
import os
import sys

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


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


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("Usage: ")[1])
    make_sample(sys.argv[1])
