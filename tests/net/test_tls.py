#!/usr/bin/python3
"""DICOM over TLS: radshare serve --dicom-tls-port against DCMTK's clients with +tls. Certificates are
made here with openssl: a CA, a server and a client certificate it signed, and a rogue CA with a client
certificate of its own. Checks mutual authentication, that stores over TLS land whole, that plain DICOM
on the TLS port and bad handshakes are refused while the server keeps serving, and the configuration
errors. TAP output.
"""
import glob
import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rstest import RADSHARE, eventually, free_port, run, tap  # noqa: E402

report = tap

HOST = "127.0.0.1"


def out_of(p):
    return (p.stdout + p.stderr).decode("utf-8", "replace")


def openssl(*args):
    p = run(["openssl"] + list(args))
    if p.returncode:
        raise RuntimeError(out_of(p))


def make_pki(d):
    """ca, server and client certificates; rogue CA and a client certificate it signed."""
    def ca(name):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
                "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.pem")

    def leaf(name, signer, cn, ext):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", f"{d}/{name}.key",
                "-out", f"{d}/{name}.csr")
        with open(f"{d}/{name}.ext", "w") as f:
            f.write(ext)
        openssl("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/{signer}.pem", "-CAkey", f"{d}/{signer}.key",
                "-CAcreateserial", "-days", "2", "-extfile", f"{d}/{name}.ext", "-out", f"{d}/{name}.pem")

    ca("ca")
    ca("rogue")
    leaf("server", "ca", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    leaf("client", "ca", "MODALITY1", "extendedKeyUsage=clientAuth\n")
    leaf("intruder", "rogue", "INTRUDER", "extendedKeyUsage=clientAuth\n")


def tls(d, who="client", ca="ca"):
    return ["+tls", f"{d}/{who}.key", f"{d}/{who}.pem", "+cf", f"{d}/{ca}.pem"]


def make_instance(path, study, series, number, rng, size=64):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientName, ds.PatientID, ds.Modality = "TLS^Patient", "TLS1", "MR"
    ds.StudyDate, ds.SeriesNumber, ds.InstanceNumber = "20261204", 1, number
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = rng.integers(0, 65536, (size, size), dtype=np.uint16).tobytes()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)
    return ds.SOPInstanceUID


def dataset_bytes(path):
    with open(path, "rb") as f:
        b = f.read()
    gl = struct.unpack("<I", b[140:144])[0]
    return b[144 + gl:]


class Server:
    def __init__(self, work, name, args):
        self.log_path = os.path.join(work, f"{name}.log")
        self.args, self.p = args, None

    def start(self, port):
        self.port = port
        with open(self.log_path, "ab") as log:
            self.p = subprocess.Popen([RADSHARE, "serve"] + self.args, stdout=log, stderr=log)
        for _ in range(200):
            if self.p.poll() is not None:
                return False
            if run(["echoscu", "-to", "2", "-aec", "RADSHARE", HOST, str(port)]).returncode == 0:
                return True
            time.sleep(0.05)
        return False

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode if self.p else None


def main():
    work = tempfile.mkdtemp(prefix="rs-tls-")
    rng = np.random.default_rng(11)
    servers = []
    try:
        pki = os.path.join(work, "pki")
        os.makedirs(pki)
        make_pki(pki)
        data = os.path.join(work, "data")
        port, tport = free_port(), free_port()
        srv = Server(work, "mutual", ["--data", data, "--dicom-port", str(port), "--dicom-tls-port", str(tport),
                                      "--tls-cert", f"{pki}/server.pem", "--tls-key", f"{pki}/server.key",
                                      "--tls-ca", f"{pki}/ca.pem", "--timeout", "5"])
        servers.append(srv)
        if not report(srv.start(port), "radshare serve starts with a TLS port beside the plain one", srv.log()[-500:]):
            return 1
        ech = lambda extra, p=tport: run(["echoscu", "-to", "5", "-aec", "RADSHARE"] + extra + [HOST, str(p)])

        p = ech(tls(pki))
        report(p.returncode == 0, "echoscu +tls with a client certificate of the configured CA: C-ECHO succeeds",
               out_of(p)[-400:])
        report("over TLS" in srv.log() and "client certificate MODALITY1" in srv.log(),
               "the association is logged as TLS with the client certificate's name")

        # a study over TLS: big enough that data sets span many PDUs and TLS records
        files, sops = [], set()
        study, series = generate_uid(), generate_uid()
        for i in range(6):
            f = os.path.join(work, f"img{i}.dcm")
            sops.add(make_instance(f, study, series, i + 1, rng, size=64 if i < 3 else 700))
            files.append(f)
        p = run(["storescu", "-to", "20", "-aec", "RADSHARE"] + tls(pki) + [HOST, str(tport)] + files, timeout=120)
        report(p.returncode == 0, "storescu +tls stores 6 instances (up to 1 MB each) over TLS", out_of(p)[-400:])
        stored = {}
        for o in glob.glob(os.path.join(data, "objects", "*", "*", "*")):
            with open(o, "rb") as fh:
                body = fh.read()
            stored[pydicom.dcmread(o).SOPInstanceUID] = (hashlib.sha256(body).hexdigest() == os.path.basename(o), o)
        report(set(stored) == sops and all(ok for ok, _ in stored.values()),
               "every instance sent over TLS is in the archive, each object hashing to its name",
               f"{len(stored)} objects for {len(sops)} sent")
        same = all(dataset_bytes(stored[pydicom.dcmread(f).SOPInstanceUID][1]) == dataset_bytes(f)
                   for f in files if pydicom.dcmread(f).SOPInstanceUID in stored)
        report(same and len(stored) == len(files), "the stored data sets are byte-identical to what was sent")

        d = tempfile.mkdtemp(dir=work)
        p = run(["findscu", "-S", "-to", "10", "-aec", "RADSHARE", "-X", "-od", d] + tls(pki) +
                ["-k", "QueryRetrieveLevel=IMAGE", "-k", f"StudyInstanceUID={study}", "-k",
                 f"SeriesInstanceUID={series}", "-k", "SOPInstanceUID", HOST, str(tport)])
        found = {pydicom.dcmread(f, force=True).SOPInstanceUID for f in glob.glob(os.path.join(d, "rsp*.dcm"))}
        report(p.returncode == 0 and found == sops, "findscu +tls at IMAGE level finds exactly the stored instances",
               f"{len(found)} found")

        # refusals: each is logged and the server goes on serving both ports
        p = ech([])
        report(p.returncode != 0 and ech(tls(pki)).returncode == 0,
               "plain DICOM on the TLS port is refused; TLS clients still served", out_of(p)[-200:])
        report(eventually(lambda: "TLS handshake failed" in srv.log()), "the plain-DICOM attempt is logged as a failed handshake")
        p = ech(tls(pki, "intruder"))
        report(p.returncode != 0 and eventually(lambda: "client certificate refused" in srv.log()),
               "a client certificate from another CA is refused, and the reason logged", out_of(p)[-200:])
        p = ech(["+tla", "-ic"])
        report(p.returncode != 0, "a TLS client without a certificate is refused when a CA is configured",
               out_of(p)[-200:])
        p = ech(tls(pki, "client", "rogue"))
        report(p.returncode != 0, "a client that does not trust our CA cannot be fooled into talking to us",
               out_of(p)[-200:])
        s = socket.create_connection((HOST, tport))
        s.sendall(b"\x16\x03\x01\xff\xff" + os.urandom(300))   # a TLS record header with garbage after it
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        s.close()
        report(ech(tls(pki)).returncode == 0 and ech([], port).returncode == 0,
               "a garbage TLS record is dropped; TLS and plain ports keep serving")
        t0 = time.time()
        s = socket.create_connection((HOST, tport))   # connects, then never starts the handshake
        s.settimeout(30)
        try:
            gone = s.recv(1) == b""
        except OSError:
            gone = True
        s.close()
        report(gone and time.time() - t0 < 15, f"a silent client is dropped after --timeout ({time.time() - t0:.1f}s)")
        report(srv.stop() == 0, "SIGTERM: radshare exits 0")

        # TLS without client authentication: any client that trusts our certificate
        data2 = os.path.join(work, "data2")
        port2, tport2 = free_port(), free_port()
        srv2 = Server(work, "anon", ["--data", data2, "--dicom-port", str(port2), "--dicom-tls-port", str(tport2),
                                     "--tls-cert", f"{pki}/server.pem", "--tls-key", f"{pki}/server.key"])
        servers.append(srv2)
        report(srv2.start(port2), "a TLS port without --tls-ca starts")
        p = ech(["+tla", "+cf", f"{pki}/ca.pem"], tport2)
        report(p.returncode == 0, "without --tls-ca a client without a certificate is served", out_of(p)[-300:])
        srv2.stop()

        # configuration errors are told clearly and nothing starts
        p = run([RADSHARE, "serve", "--data", os.path.join(work, "d3"), "--dicom-port", str(free_port()),
                 "--dicom-tls-port", str(free_port())], timeout=20)
        report(p.returncode == 2 and "certificate and a key" in out_of(p), "a TLS port without certificate: exit 2",
               out_of(p))
        p = run([RADSHARE, "serve", "--data", os.path.join(work, "d4"), "--dicom-port", str(free_port()),
                 "--dicom-tls-port", str(free_port()), "--tls-cert", f"{pki}/server.pem", "--tls-key",
                 f"{pki}/client.key"], timeout=20)
        report(p.returncode == 2 and "TLS key" in out_of(p), "a key that does not match the certificate: exit 2",
               out_of(p))
        logs = srv.log() + srv2.log()
        san = [l for l in logs.splitlines() if "Sanitizer" in l or "runtime error" in l]
        report(not san, "no sanitizer report in radshare's logs", san[:3])
    finally:
        for s in servers:
            if s.p and s.p.poll() is None:
                s.p.kill()
                s.p.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(f"1..{tap.n}")
    return tap.status()


if __name__ == "__main__":
    sys.exit(main())
