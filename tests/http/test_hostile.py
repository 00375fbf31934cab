#!/usr/bin/python3
"""Malformed and hostile HTTP requests against `radshare serve`: each gets a clear 4xx, the server's
memory stays bounded (RSS checked), and it keeps answering afterwards. TAP output."""
import gzip
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import zlib

import numpy as np
import pydicom
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dwlib import Server, make_instance, multipart, report, stow, val  # noqa: E402
import dwlib  # noqa: E402

RSS_LIMIT_KB = 200 * 1024
CAP = 64 << 20  # --stow-max-bytes for this server


def raw(srv, head, body=b"", read_timeout=30, send_chunks=None):
    """Send raw bytes; return (status, response text)."""
    s = socket.create_connection(("127.0.0.1", srv.http_port), timeout=read_timeout)
    try:
        s.sendall(head + body)
        if send_chunks:
            try:
                for c in send_chunks:
                    s.sendall(c)
            except OSError:
                pass
        data = b""
        while b"\r\n\r\n" not in data:
            c = s.recv(65536)
            if not c:
                break
            data += c
        try:
            s.settimeout(2)
            while True:
                c = s.recv(65536)
                if not c:
                    break
                data += c
        except OSError:
            pass
    finally:
        s.close()
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    st = int(line.split()[1]) if line.startswith("HTTP/") else 0
    return st, data.decode(errors="replace")


def healthy(srv):
    try:
        st, _, _ = srv.get("/api/status")
        return st == 200
    except OSError:
        return False


def main():
    work = tempfile.mkdtemp(prefix="rs-hostile-")
    rng = np.random.default_rng(5)
    srv = Server(os.path.join(work, "data"), ["--stow-max-bytes", str(CAP)])
    try:
        report(srv.start(), "server starts")
        study, series = generate_uid(), generate_uid()
        p = os.path.join(work, "a.dcm")
        make_instance(p, study, series, generate_uid(), "Doe^J", "MR", "20240101", "000000", 1, "d", "s", rng)
        good = open(p, "rb").read()
        st, _ = stow(srv, [good])
        report(st == 200, "a good instance stored over STOW-RS")

        st, h, body = srv.get("/dicom-web/studies/1.2.abc/series")
        report(st == 400 and b"invalid UID" in body and h["content-type"] == "application/json", "bad UID: 400 JSON")
        st, h, body = srv.get("/dicom-web/studies/" + "1." * 40 + "1")
        report(st == 400, "over-long UID: 400")
        st, h, body = srv.get("/dicom-web/studies?limit=999999999")
        report(st == 200 and "limit clamped" in h.get("warning", ""), "huge limit clamped with a Warning")
        st, h, body = srv.get("/dicom-web/studies?limit=99999999999999999999999")
        report(st == 400, "absurd limit: 400")
        st, h, body = srv.get("/dicom-web/studies?limit=-1")
        report(st == 400, "negative limit: 400")
        st, h, body = srv.get("/dicom-web/studies?NoSuchKeyword=1")
        report(st == 400 and b"unknown query parameter" in body, "unknown query key: 400")
        st, h, body = srv.get("/dicom-web/studies?StudyDate=notadate")
        report(st == 400, "malformed date: 400", str(st))
        st, h, body = srv.get("/dicom-web/studies", {"Accept": "image/png"})
        report(st == 406, "QIDO with Accept: image/png -> 406")
        st, h, body = srv.get(f"/dicom-web/studies/{study}", {"Accept": "application/json"})
        report(st == 406, "WADO-RS objects with Accept: application/json -> 406")
        st, h, body = srv.get(f"/dicom-web/studies/{study}",
                              {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.91'})
        report(st == 406 and b"instances are sent as" in body and b"1.2.840.10008.1.2.4.80" in body,
               "WADO-RS asking a transfer syntax no encoder makes (JPEG 2000 lossy) -> 406 listing what can be sent",
               body[:300])
        st, h, body = srv.get("/dicom-web/studies/1.2.3")
        report(st == 404, "unknown study: 404")
        st, h, body = srv.request("PUT", "/dicom-web/studies")
        report(st == 405, "PUT on /dicom-web: 405")
        st, h, body = srv.get("/nothing/here")
        report(st == 404, "unknown path: 404")

        # path traversal, raw so nothing normalises it
        for path in ["/viewer/../../etc/passwd", "/viewer/%2e%2e/%2e%2e/etc/passwd", "/dicom-web//studies",
                     "/viewer/./index.html", "/dicom-web/studies/..%2F..%2Fetc"]:
            st, txt = raw(srv, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            report(st in (400, 404) and "root:" not in txt, f"path traversal {path}: {st}")

        # truncated multipart: one complete part then half of another; no closing delimiter
        sop2 = generate_uid()
        p2 = os.path.join(work, "b.dcm")
        make_instance(p2, study, series, sop2, "Doe^J", "MR", "20240101", "000000", 2, "d", "s", rng)
        second = open(p2, "rb").read()
        b = "trunc-b"
        body = (f"--{b}\r\nContent-Type: application/dicom\r\n\r\n").encode() + good + \
               (f"\r\n--{b}\r\nContent-Type: application/dicom\r\n\r\n").encode() + second[:len(second) // 2]
        st, h, resp = srv.request("POST", "/dicom-web/studies", body=body,
                                  headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={b}'})
        report(st == 400 and b"truncated" in resp, "truncated multipart: 400", resp[:200])
        st, res, _ = srv.json(f"/dicom-web/instances?SOPInstanceUID={sop2}")
        report(st == 200 and res == [], "the cut part was not stored")
        st, _ = stow(srv, [good], boundary="x" * 80)
        report(st == 400, "boundary over 70 characters: 400")
        st, h, resp = srv.request("POST", "/dicom-web/studies", body=good, headers={"Content-Type": "application/dicom"})
        report(st == 415, "STOW-RS not multipart: 415")
        st, h, resp = srv.request("POST", "/dicom-web/studies", body=b"x",
                                  headers={"Content-Type": 'multipart/related; type="application/dicom+json"; boundary=a'})
        report(st == 415, "STOW-RS of dicom+json parts: 415")

        # sizes: a declared 1 GB and 4 GB body are refused before any is read
        for size in (1 << 30, 4 << 30, 1 << 62):
            t0 = time.time()
            st, txt = raw(srv, (f"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n"
                                "Content-Type: multipart/related; type=\"application/dicom\"; boundary=a\r\n\r\n").encode(),
                          b"--a\r\n")
            report(st == 413 and time.time() - t0 < 5, f"Content-Length {size}: 413 at once", txt[:200])
        st, txt = raw(srv, b"POST /api/studies/1.2.3/restore HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n")
        report(st == 413, "API body over its cap: 413")
        # 1 GB actually sent, chunked (no length): cut off at the cap, never buffered
        chunk = b"\0" * (1 << 20)
        frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
        st, txt = raw(srv, b"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                           b"Content-Type: multipart/related; type=\"application/dicom\"; boundary=a\r\n\r\n",
                      b"28\r\n--a\r\nContent-Type: application/dicom\r\n\r\n\r\n", send_chunks=[frame] * 1024 + [b"0\r\n\r\n"])
        report(st == 413, "1 GB chunked body: 413 once past the cap, never buffered", txt[:200])
        report(srv.rss_kb() < RSS_LIMIT_KB, f"RSS after the 1 GB body: {srv.rss_kb()} kB")

        # gzip bomb as the request body: 1 GiB of zeros in about 1 MB
        bomb = gzip.compress(b"--a\r\n\r\n" + b"\0" * (1 << 30), 9)
        st, h, resp = srv.request("POST", "/dicom-web/studies", body=bomb,
                                  headers={"Content-Encoding": "gzip",
                                           "Content-Type": 'multipart/related; type="application/dicom"; boundary=a'})
        report(st == 413 and b"ratio" in resp, f"gzip bomb body ({len(bomb)} bytes): 413", resp[:200])
        report(srv.rss_kb() < RSS_LIMIT_KB, f"RSS after the gzip bomb: {srv.rss_kb()} kB")
        st, h, resp = srv.request("POST", "/dicom-web/studies", body=b"garbage",
                                  headers={"Content-Encoding": "gzip",
                                           "Content-Type": 'multipart/related; type="application/dicom"; boundary=a'})
        report(st == 400, "invalid gzip body: 400")
        st, h, resp = srv.request("POST", "/dicom-web/studies", body=b"x",
                                  headers={"Content-Encoding": "br",
                                           "Content-Type": 'multipart/related; type="application/dicom"; boundary=a'})
        report(st == 415, "Content-Encoding br: 415")
        # a legitimate gzip'ed STOW works
        body, ct = multipart([good])
        st, h, resp = srv.request("POST", "/dicom-web/studies", body=gzip.compress(body),
                                  headers={"Content-Encoding": "gzip", "Content-Type": ct})
        report(st == 200, "gzip'ed STOW-RS body accepted", resp[:200])

        # a Deflated Explicit VR Little Endian instance that is a deflate bomb
        ds = pydicom.dcmread(p)
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.add_new(0x00091010, "LO", "RADSHARE TEST")
        ds.add_new(0x00091011, "OB", b"\0" * (512 << 20))
        bp = os.path.join(work, "bomb.dcm")
        ds.save_as(bp, write_like_original=False)
        del ds
        st, res = stow(srv, [open(bp, "rb").read()])
        fails = res.get("00081198", {}).get("Value", []) if isinstance(res, dict) else []
        report(st == 409 and len(fails) == 1 and val(fails[0], "00081197") == 0xA700,
               f"Deflated-syntax bomb ({os.path.getsize(bp)} bytes): 409, out of resources", str(res)[:300])
        report(srv.rss_kb() < RSS_LIMIT_KB + 300 * 1024, f"RSS after the deflate bomb: {srv.rss_kb()} kB")

        # header floods and junk
        st, txt = raw(srv, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 300000 + b"\r\n\r\n")
        report(st in (0, 400, 413, 431), f"300 kB header: refused ({st})")
        st, txt = raw(srv, b"NOT HTTP AT ALL\r\n\r\n")
        report(st in (0, 400, 404, 405, 505), f"junk request line: {st}")
        report(healthy(srv), "server healthy after all of it")
        report(srv.rss_kb() < RSS_LIMIT_KB + 300 * 1024, f"final RSS {srv.rss_kb()} kB")
    finally:
        rc = srv.stop()
        report(rc == 0, "server exits cleanly", str(rc))
        shutil.rmtree(work, ignore_errors=True)
    print(f"1..{dwlib.tap.n}")
    sys.exit(dwlib.tap.status())


main()
