#!/usr/bin/python3
"""make_studies.py - write N small one-instance studies for bench/render's QIDO-RS search.

Usage: bench/make_studies.py OUTDIR [--count N]

N studies (default 10,000) of 2,500 patients (4 studies each), one 16x16 CT instance per study
(Explicit VR Little Endian Part 10, ~2 KB), in OUTDIR/NNN/ directories of 1,000 files. What a
study search looks at varies the way it does in an archive: PatientName FAMILY^GIVEN from 50
family x 50 given names (each name one patient), PatientID P000000.., AccessionNumber
A00000000.., StudyDate over 2015-2024 (one study every ~8 hours), StudyTime, Modality (CT, MR,
CR, US, DX, in a fixed rotation), ReferringPhysicianName, StudyDescription, StudyID.

query_keys(i) in this module is what bench/render asks for, so the searches and the data agree
(it imports this file): the expected number of matches of each search is computed here too.

Deterministic (fixed seed, name-based 2.25 UIDs); OUTDIR/.complete is written last and nothing
is done when it is there with the same parameters.
"""
import argparse
import datetime
import os
import sys

from make_series import already_there, mark_done, seeded_uid   # bench/, beside this file

SEED = 20261204
FORMAT_VERSION = "qido-studies v1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDIES_PER_PATIENT = 4
FAMILY = ["SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ",
          "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE",
          "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON", "WHITE", "HARRIS", "SANCHEZ", "CLARK",
          "RAMIREZ", "LEWIS", "ROBINSON", "WALKER", "YOUNG", "ALLEN", "KING", "WRIGHT", "SCOTT", "TORRES",
          "NGUYEN", "HILL", "FLORES", "GREEN", "ADAMS", "NELSON", "BAKER", "HALL", "RIVERA", "CAMPBELL",
          "MITCHELL", "CARTER", "ROBERTS"]
GIVEN = ["JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA", "DAVID",
         "ELIZABETH", "WILLIAM", "BARBARA", "RICHARD", "SUSAN", "JOSEPH", "JESSICA", "THOMAS", "SARAH",
         "CHARLES", "KAREN", "CHRISTOPHER", "LISA", "DANIEL", "NANCY", "MATTHEW", "BETTY", "ANTHONY",
         "MARGARET", "MARK", "SANDRA", "DONALD", "ASHLEY", "STEVEN", "KIMBERLY", "PAUL", "EMILY", "ANDREW",
         "DONNA", "JOSHUA", "MICHELLE", "KENNETH", "CAROL", "KEVIN", "AMANDA", "BRIAN", "DOROTHY",
         "GEORGE", "MELISSA", "TIMOTHY", "DEBORAH"]
MODALITIES = ["CT", "MR", "CR", "US", "DX"]
DESCRIPTIONS = ["HEAD W/O CONTRAST", "CHEST PA AND LATERAL", "ABDOMEN PELVIS", "KNEE RIGHT", "SPINE LUMBAR"]
START = datetime.datetime(2015, 1, 1)
STEP = datetime.timedelta(minutes=473)          # 10,000 studies span ~9 years


def uid(*parts):
    return seeded_uid(SEED, *parts)


def study_fields(i):
    """The searchable attributes of study i."""
    p = i // STUDIES_PER_PATIENT
    when = START + STEP * i
    return {
        "PatientName": f"{FAMILY[p % len(FAMILY)]}^{GIVEN[(p // len(FAMILY)) % len(GIVEN)]}",
        "PatientID": f"P{p:06d}",
        "PatientBirthDate": f"{1930 + p % 70}{1 + p % 12:02d}{1 + p % 28:02d}",
        "PatientSex": "MF"[p % 2],
        "AccessionNumber": f"A{i:08d}",
        "StudyDate": when.strftime("%Y%m%d"),
        "StudyTime": when.strftime("%H%M%S"),
        "Modality": MODALITIES[i % len(MODALITIES)],
        "StudyDescription": DESCRIPTIONS[i % len(DESCRIPTIONS)],
        "ReferringPhysicianName": f"{FAMILY[(i * 7) % len(FAMILY)]}^DR",
        "StudyID": f"{i % 100000}",
    }


def searches(count):
    """(label, QIDO parameters, expected matches): the study searches bench/render times."""
    rows = [study_fields(i) for i in range(count)]
    probe = rows[count // 2]
    fam = probe["PatientName"].split("^")[0]
    month = probe["StudyDate"][:6]
    def n(pred):
        return sum(1 for r in rows if pred(r))
    return [
        ("PatientID exact", {"PatientID": probe["PatientID"]},
         n(lambda r: r["PatientID"] == probe["PatientID"])),
        ("PatientName exact", {"PatientName": probe["PatientName"]},
         n(lambda r: r["PatientName"] == probe["PatientName"])),
        ("PatientName prefix*, one month", {"PatientName": fam[:3] + "*", "StudyDate": f"{month}01-{month}31"},
         n(lambda r: r["PatientName"].startswith(fam[:3]) and r["StudyDate"][:6] == month)),
        ("AccessionNumber", {"AccessionNumber": probe["AccessionNumber"]},
         n(lambda r: r["AccessionNumber"] == probe["AccessionNumber"])),
        ("StudyDate one day + MR", {"StudyDate": probe["StudyDate"], "ModalitiesInStudy": "MR"},
         n(lambda r: r["StudyDate"] == probe["StudyDate"] and r["Modality"] == "MR")),
        ("StudyDate one month", {"StudyDate": f"{month}01-{month}31"},
         n(lambda r: r["StudyDate"][:6] == month)),
    ]


def make_file(i, path):
    from pydicom.dataset import FileDataset, FileMetaDataset   # here: searches() needs no pydicom
    from pydicom.uid import ExplicitVRLittleEndian
    f = study_fields(i)
    sop = uid("sop", i)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.1297.1"
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = sop
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = f["StudyDate"]
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = f["StudyTime"]
    ds.AccessionNumber = f["AccessionNumber"]
    ds.Modality = f["Modality"]
    ds.Manufacturer = "RADSHARE BENCH"
    ds.ReferringPhysicianName = f["ReferringPhysicianName"]
    ds.StudyDescription = f["StudyDescription"]
    ds.SeriesDescription = f["StudyDescription"]
    ds.PatientName = f["PatientName"]
    ds.PatientID = f["PatientID"]
    ds.PatientBirthDate = f["PatientBirthDate"]
    ds.PatientSex = f["PatientSex"]
    ds.StudyInstanceUID = uid("study", i)
    ds.SeriesInstanceUID = uid("series", i)
    ds.StudyID = f["StudyID"]
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 16
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes((i + k) & 0xFF for k in range(16 * 16 * 2))
    ds.save_as(path, write_like_original=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--count", type=int, default=10000)
    args = ap.parse_args()
    tag = f"{FORMAT_VERSION} seed={SEED} count={args.count}\n"
    if already_there(args.outdir, tag, "make_studies"):
        return 0
    print(f"make_studies: writing {args.count} studies to {args.outdir}")
    for i in range(args.count):
        d = os.path.join(args.outdir, f"{i // 1000:03d}")
        if i % 1000 == 0:
            os.makedirs(d, exist_ok=True)
        make_file(i, os.path.join(d, f"S{i:06d}.dcm"))
    mark_done(args.outdir, tag)
    print(f"make_studies: done ({args.count} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
