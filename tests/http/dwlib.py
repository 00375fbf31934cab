"""Shared by the tests/http scripts: TAP reporting, a radshare server on free ports with a temp data
directory, pydicom instance generation (as tests/net/test_serve.py does), HTTP and multipart helpers.
Not a test itself (no test_ prefix)."""
import http.client
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rstest import RADSHARE, free_port, run, tap  # noqa: E402,F401 (re-exported to the tests/http scripts)

report = tap


class Server:
    def __init__(self, data, extra=()):
        self.data, self.extra = data, list(extra)
        self.dicom_port, self.http_port = free_port(), free_port()
        self.log = open(os.path.join(os.path.dirname(data), "server.log"), "ab")
        self.p = None

    def start(self):
        self.p = subprocess.Popen([RADSHARE, "serve", "--data", self.data, "--dicom-port", str(self.dicom_port),
                                   "--http-port", str(self.http_port), "--timeout", "10"] + self.extra,
                                  stdout=self.log, stderr=self.log)
        for _ in range(200):
            try:
                st, _, _ = self.get("/api/status")
                if st == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode if self.p else None

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60):
        c = self.conn(timeout)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        return r.status, hdrs, data

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def json(self, path, headers=None):
        st, h, body = self.get(path, headers)
        return st, (json.loads(body) if body and st < 300 else None), h

    def rss_kb(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1


def make_instance(path, study, series, sop, pn, modality, date, time_, number, desc, series_desc, rng,
                  series_number=1, preamble=b"\0" * 128):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4" if modality == "MR" else "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=preamble)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = pn, "ID-" + pn[:4], "19700101", "F"
    ds.StudyDate, ds.StudyTime, ds.SeriesDate, ds.SeriesTime = date, time_, date, time_
    ds.AccessionNumber, ds.StudyID, ds.StudyDescription = "ACC" + date[-4:], "1", desc
    ds.ReferringPhysicianName, ds.InstitutionName = "Dr^Who", "Hopital Test"
    ds.Modality, ds.SeriesNumber, ds.SeriesDescription, ds.InstanceNumber = modality, series_number, series_desc, number
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = 32
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = rng.integers(0, 4096, (32, 32), dtype=np.uint16).tobytes()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)
    return ds


def dataset_bytes(b):
    """The bytes of the data set proper: everything after the file meta group."""
    gl = struct.unpack("<I", b[140:144])[0]
    return b[144 + gl:]


def multipart(parts, boundary="dwtest-boundary-42", part_type="application/dicom"):
    body = b""
    for p in parts:
        body += (f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n").encode() + p + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="{part_type}"; boundary={boundary}'


def parse_multipart(body, content_type):
    b = content_type.split("boundary=")[1].split(";")[0].strip('"').encode()
    out = []
    for chunk in body.split(b"--" + b)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk[2:].partition(b"\r\n\r\n")
        out.append((head.decode(), data[:-2]))
    return out


def stow(srv, parts, path="/dicom-web/studies", **kw):
    body, ct = multipart(parts, **kw)
    st, h, data = srv.request("POST", path, body=body, headers={"Content-Type": ct,
                                                                  "Accept": "application/dicom+json"})
    try:
        return st, json.loads(data)
    except ValueError:
        return st, data


def val(obj, tag):
    v = obj.get(tag, {}).get("Value")
    return v[0] if v else None
