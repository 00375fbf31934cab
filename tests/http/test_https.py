#!/usr/bin/python3
"""HTTPS on radshare's HTTP port (issue #6 item 6), checked with curl: a certificate made here
with openssl is served, answers carry Strict-Transport-Security, URLs in answers are https, a
plain-HTTP request on the port gets no answer, STOW-RS and WADO-RS work over TLS byte for byte,
and bad configurations (key without certificate, a key that is not the certificate's, a file
that is not PEM) stop `radshare serve` with a clear message. --https-self-signed makes a
certificate in DATA/tls/ on first start (curl --cacert verifies it, the logged fingerprint is
its SHA-256) and keeps it across restarts. TAP output.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rstest import RADSHARE, run, free_port, tap  # noqa: E402

report = tap

HOST = "127.0.0.1"


def out_of(p):
    return (p.stdout + p.stderr).decode("utf-8", "replace") if isinstance(p.stdout, bytes) else p.stdout + p.stderr


def make_instance(path):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "Https^Test", "HT1", "MR"
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", 64, 64
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.random.default_rng(3).integers(0, 65535, (64, 64), dtype=np.uint16).tobytes()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)
    return ds


def serve(work, data, extra):
    dport, hport = free_port(), free_port()
    log = open(os.path.join(work, f"serve-{hport}.log"), "wb")
    p = subprocess.Popen([RADSHARE, "serve", "--data", data, "--dicom-port", str(dport), "--http-port", str(hport)] +
                         extra, stdout=log, stderr=log)
    return p, hport, log.name


def main():
    work = tempfile.mkdtemp(prefix="rs-https-")
    procs = []
    try:
        cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                 "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert])
        if not report(r.returncode == 0, "a self-signed certificate made with openssl", out_of(r)[-300:]):
            return 1
        p, port, logname = serve(work, os.path.join(work, "data"), ["--https-cert", cert, "--https-key", key])
        procs.append(p)
        base = f"https://localhost:{port}"
        curl = ["curl", "-sS", "--max-time", "20", "--cacert", cert, "--resolve", f"localhost:{port}:{HOST}"]
        up = False
        for _ in range(100):
            if run(curl + ["-o", "/dev/null", base + "/api/status"]).returncode == 0:
                up = True
                break
            time.sleep(0.1)
        report(up, "radshare serve answers over HTTPS, the certificate verified by curl")
        r = run(curl + ["-D", "-", "-o", "/dev/null", base + "/api/status"])
        hdrs = out_of(r).lower()
        report("strict-transport-security: max-age=" in hdrs, "answers carry Strict-Transport-Security", hdrs[:300])
        r = run(["curl", "-sS", "--max-time", "5", f"http://{HOST}:{port}/api/status"])
        report(r.returncode != 0 or b"HTTP/1" not in r.stdout,
               "a plain-HTTP request on the HTTPS port gets no HTTP answer", out_of(r)[-200:])
        f = os.path.join(work, "img.dcm")
        ds = make_instance(f)
        boundary = "rsHttpsBoundary42"
        with open(f, "rb") as fh:
            part = fh.read()
        mp = os.path.join(work, "stow.body")
        with open(mp, "wb") as fh:
            fh.write(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part +
                     f"\r\n--{boundary}--\r\n".encode())
        r = run(curl + ["-X", "POST", "-H", f'Content-Type: multipart/related; type="application/dicom"; '
                        f'boundary={boundary}', "-H", "Accept: application/dicom+json", "--data-binary", "@" + mp,
                        base + "/dicom-web/studies"])
        ok = r.returncode == 0 and b"00081199" in r.stdout
        report(ok, "STOW-RS over HTTPS stores the instance", out_of(r)[-300:])
        try:
            resp = json.loads(r.stdout)
            url = resp["00081190"]["Value"][0]
        except (ValueError, KeyError, IndexError):
            url = ""
        report(url.startswith("https://localhost:"), "RetrieveURL in the answer is an https URL", url)
        r = run(curl + ["-H", "Accept: application/dicom+json",
                        f"{base}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances"])
        try:
            found = json.loads(r.stdout)[0]["00080018"]["Value"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            found = None
        report(found == ds.SOPInstanceUID, "QIDO-RS over HTTPS finds it", out_of(r)[-300:])
        r = run(curl + ["-H", 'Accept: multipart/related; type="application/dicom"', "-o", os.path.join(work, "got"),
                        f"{base}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/"
                        f"{ds.SOPInstanceUID}"])
        body = open(os.path.join(work, "got"), "rb").read() if r.returncode == 0 else b""
        with open(f, "rb") as fh:
            sent = fh.read()
        report(sent[132:] in body, "WADO-RS over HTTPS returns the instance byte for byte", out_of(r)[-200:])
        r = run(["curl", "-sS", "--max-time", "10", base.replace("localhost", HOST) + "/api/status"])
        report(r.returncode != 0, "a client that does not trust the certificate refuses the connection")
        p.send_signal(signal.SIGTERM)
        report(p.wait(timeout=30) == 0, "SIGTERM: radshare exits 0")

        # --https-self-signed: a certificate made in DATA/tls/ on first start, its fingerprint logged
        data2 = os.path.join(work, "data-self")
        fps = []
        for attempt in ("first", "second"):
            p, port, logname = serve(work, data2, ["--https-self-signed"])
            procs.append(p)
            scert = os.path.join(data2, "tls", "https-cert.pem")
            scurl = ["curl", "-sS", "--max-time", "20", "--cacert", scert]
            up = False
            for _ in range(100):
                if run(scurl + ["-o", "/dev/null", f"https://localhost:{port}/api/status"]).returncode == 0:
                    up = True
                    break
                time.sleep(0.1)
            report(up, f"--https-self-signed ({attempt} start): curl --cacert DATA/tls/https-cert.pem verifies it")
            r = run(scurl + ["-D", "-", "-o", "/dev/null", f"https://127.0.0.1:{port}/api/status"])
            report(r.returncode == 0 and "strict-transport-security" in out_of(r).lower(),
                   "its names include 127.0.0.1; answers carry HSTS", out_of(r)[-300:])
            r = run(["curl", "-sS", "--max-time", "10", f"https://localhost:{port}/api/status"])
            report(r.returncode != 0, "a client without the certificate refuses the connection")
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
            msg = open(logname, "rb").read().decode(errors="replace")
            logged = [ln.split("fingerprint ")[-1].strip() for ln in msg.splitlines() if "SHA-256 fingerprint" in ln]
            r = run(["openssl", "x509", "-in", scert, "-noout", "-fingerprint", "-sha256"])
            real = out_of(r).strip().split("=")[-1]
            report(len(logged) == 1 and logged[0] == real and len(real) == 95,
                   "the log gives the certificate's SHA-256 fingerprint", f"{logged} vs {real}")
            fps.append(real)
            report(("made now" in msg) == (attempt == "first"), f"{attempt} start: the certificate is "
                   + ("made" if attempt == "first" else "kept"), msg[-300:])
        report(fps[0] == fps[1], "a restart keeps the same certificate")
        kmode = os.stat(os.path.join(data2, "tls", "https-key.pem")).st_mode & 0o777
        report(kmode == 0o600, "the generated key is mode 0600", oct(kmode))
        r = run(["openssl", "x509", "-in", os.path.join(data2, "tls", "https-cert.pem"), "-noout", "-text"])
        txt = out_of(r)
        report("DNS:localhost" in txt and "IP Address:127.0.0.1" in txt and "TLS Web Server Authentication" in txt,
               "the certificate names localhost and 127.0.0.1, for server authentication", txt[-400:])

        # configuration errors: clear message, exit 2, nothing half-started
        other = os.path.join(work, "other.key")
        run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", other])
        for what, extra, want in [
                ("a key without a certificate", ["--https-key", key], "both a certificate and a key"),
                ("a key that is not the certificate's", ["--https-cert", cert, "--https-key", other], "HTTPS"),
                ("a certificate file that is not PEM", ["--https-cert", f, "--https-key", key], "not a PEM file")]:
            q, _, lg = serve(work, os.path.join(work, "data-bad"), extra)
            procs.append(q)
            try:
                rc = q.wait(timeout=30)
            except subprocess.TimeoutExpired:
                rc = None
            msg = open(lg, "rb").read().decode(errors="replace")
            report(rc == 2 and want in msg, f"{what}: radshare serve stops with exit 2 and says why", msg[-300:])
        logs = "".join(open(os.path.join(work, x), "rb").read().decode(errors="replace")
                       for x in os.listdir(work) if x.endswith(".log"))
        san = [l for l in logs.splitlines() if "Sanitizer" in l or "runtime error" in l]
        report(not san, "no sanitizer report in radshare's logs", san[:3])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(f"1..{tap.n}")
    return tap.status()


if __name__ == "__main__":
    sys.exit(main())
