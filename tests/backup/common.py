"""Helpers shared by the tests/backup scripts: TAP reporting, a radshare serve process, synthetic
instances written with pydicom, and C-FIND through DCMTK's findscu."""
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import rstest  # noqa: E402
from rstest import RADSHARE, Tap, free_port  # noqa: E402,F401 (re-exported to the tests/backup scripts)


def run(args, timeout=300, **kw):
    return rstest.run(args, timeout=timeout, **kw)


def rs(*args, **kw):
    return run([RADSHARE] + [str(a) for a in args], **kw)


class Server:
    def __init__(self, data, port, http_port=0):
        self.data, self.port, self.http_port = data, port, http_port
        self.log = open(os.path.join(os.path.dirname(data), f"server-{port}.log"), "ab")
        self.p = None

    def start(self):
        self.p = subprocess.Popen([RADSHARE, "serve", "--data", self.data, "--dicom-port", str(self.port),
                                   "--timeout", "10", "--http-port", str(self.http_port)], stdout=self.log, stderr=self.log)
        for _ in range(200):
            if run(["echoscu", "-to", "2", "-aec", "RADSHARE", "127.0.0.1", str(self.port)]).returncode == 0:
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode if self.p else None


def make_instance(path, study, series, sop, patient=("Doe^Jane", "PID-1"), modality="CT", number=1,
                  series_number=1, rng=None, size=32, preamble=b"\0" * 128):
    rng = rng or np.random.default_rng(number)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2" if modality == "CT" else "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=preamble)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = patient[0], patient[1], "19700101", "F"
    ds.StudyDate, ds.StudyTime, ds.SeriesDate, ds.SeriesTime = "20240102", "101500", "20240102", "101500"
    ds.AccessionNumber, ds.StudyID, ds.StudyDescription = "ACC1", "1", "Thorax"
    ds.ReferringPhysicianName = "Dr^Who"
    ds.Modality, ds.SeriesNumber, ds.SeriesDescription, ds.InstanceNumber = modality, series_number, "S", number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = rng.integers(0, 4096, (size, size), dtype=np.uint16).tobytes()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)


# C-FIND keys at every level, to compare two archives' answers
QUERIES = [
    ("PATIENT", ["PatientID", "PatientName", "NumberOfPatientRelatedStudies"]),
    ("STUDY", ["StudyInstanceUID", "PatientID", "StudyDate", "ModalitiesInStudy", "NumberOfStudyRelatedInstances"]),
    ("SERIES", ["StudyInstanceUID", "SeriesInstanceUID", "Modality", "NumberOfSeriesRelatedInstances"]),
    ("IMAGE", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "InstanceNumber"]),
]


def find_all(port):
    """[(level, findscu status, answers)] for QUERIES against a running server."""
    return [(level,) + find(port, level, keys) for level, keys in QUERIES]


def find(port, level, keys):
    """C-FIND answers as sorted tuples of (keyword, value) pairs, comparable across servers."""
    d = tempfile.mkdtemp()
    args = ["findscu", "-P" if level == "PATIENT" else "-S", "-aec", "RADSHARE", "-X", "-od", d, "-k", f"QueryRetrieveLevel={level}"]
    for k in keys:
        args += ["-k", k]
    p = run(args + ["127.0.0.1", str(port)], cwd=d)
    res = []
    for f in sorted(glob.glob(os.path.join(d, "rsp*.dcm"))):
        ds = pydicom.dcmread(f, force=True)
        res.append(tuple(sorted((e.keyword, str(e.value)) for e in ds if e.tag.group != 0)))
    shutil.rmtree(d)
    return p.returncode, sorted(res)


def object_files(data):
    return sorted(glob.glob(os.path.join(data, "objects", "??", "??", "*")))
