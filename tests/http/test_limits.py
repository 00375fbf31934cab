#!/usr/bin/python3
"""Per-address HTTP limits (issue #6 item 6): from one non-loopback address of this host,
connections beyond --http-max-connections-per-address are answered 503 with Retry-After and
Connection: close, requests beyond --http-rate-per-address get 429 with Retry-After; both are
logged; the same address is served again once it holds fewer connections / the bucket refills;
loopback clients are exempt and served throughout. TAP output.
"""
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "net"))
from test_access import DUMMY, own_address  # noqa: E402

import test_serve  # noqa: E402
from test_serve import RADSHARE, free_port, report  # noqa: E402

PER_ADDR, RATE = 3, 5  # the burst is 4 s worth: 20 requests


def get(host, port, path="/viewer/index.html", conn=None):
    """(status, headers) of one GET; conn: a kept-alive connection to reuse."""
    c = conn or http.client.HTTPConnection(host, port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    except (OSError, http.client.HTTPException) as e:
        return None, {"error": str(e)}
    finally:
        if not conn:
            c.close()


def main():
    addr, created = own_address()
    if not report(addr is not None, "a non-loopback address of this host to test from", "none, and cannot add one"):
        return 1
    work = tempfile.mkdtemp(prefix="rs-limits-")
    port = free_port()
    logname = os.path.join(work, "serve.log")
    log = open(logname, "wb")
    p = subprocess.Popen([RADSHARE, "serve", "--data", os.path.join(work, "data"), "--dicom-port", "0",
                          "--http-port", str(port), "--http-bind", "0.0.0.0", "--http-max-connections-per-address",
                          str(PER_ADDR), "--http-rate-per-address", str(RATE)], stdout=log, stderr=log)
    held = []
    try:
        up = False
        for _ in range(100):
            if get("127.0.0.1", port)[0] == 200:
                up = True
                break
            time.sleep(0.1)
        report(up, "radshare serve answers over HTTP")
        st, h = get(addr, port)
        report(st == 200, f"a request from {addr} is served", str(st))

        # connections: PER_ADDR idle ones held open from addr, the next is refused with 503
        for _ in range(PER_ADDR):
            s = socket.create_connection((addr, port), timeout=10)
            held.append(s)
        time.sleep(0.3)
        st, h = get(addr, port)
        report(st == 503, f"connection {PER_ADDR + 1} from one address: 503", f"{st} {h}")
        report(h.get("retry-after", "").isdigit() and h.get("connection", "").lower() == "close",
               "the 503 carries Retry-After and Connection: close", str(h))
        st, h = get("127.0.0.1", port)
        report(st == 200, "meanwhile a loopback client is served (exempt)", str(st))
        held.pop().close()
        time.sleep(0.3)
        st, h = get(addr, port)
        report(st == 200, "with one connection closed, the address is served again", str(st))
        for s in held:
            s.close()
        held.clear()
        time.sleep(0.3)

        # rate: 40 requests at once on one kept-alive connection; the bucket (4 s worth) refilled first
        time.sleep(4.5)
        c = http.client.HTTPConnection(addr, port, timeout=10)
        codes, retry = [], None
        for _ in range(40):
            st, h = get(addr, port, conn=c)
            codes.append(st)
            if st == 429 and retry is None:
                retry = h.get("retry-after")
        c.close()
        ok, limited = codes.count(200), codes.count(429)
        report(limited > 0 and ok >= 4 * RATE - 2 and ok + limited == 40,
               f"40 requests at once from one address: {ok} served, {limited} refused with 429", str(codes))
        report(retry is not None and retry.isdigit() and 1 <= int(retry) <= 2, "the 429 carries Retry-After", str(retry))
        codes = [get("127.0.0.1", port)[0] for _ in range(40)]
        report(codes.count(200) == 40, "40 requests at once from loopback are all served", str(codes))
        time.sleep(1.5)
        st, h = get(addr, port)
        report(st == 200, "after Retry-After the address is served again", str(st))
        logtext = open(logname, "rb").read().decode(errors="replace")
        report(f"{addr} refused (503): too many connections from this address" in logtext,
               "the connection refusal is logged with the address")
        report(f"{addr} refused (429): too many requests from this address" in logtext,
               "the rate refusal is logged with the address")
        report(logtext.count("refused (429)") < limited, "refusal lines are rate-limited (not one per request)",
               str(logtext.count("refused (429)")))
        p.send_signal(signal.SIGTERM)
        report(p.wait(timeout=30) == 0, "SIGTERM: radshare exits 0")
        san = [ln for ln in logtext.splitlines() if "Sanitizer" in ln or "runtime error" in ln]
        report(not san, "no sanitizer report in radshare's log", str(san[:3]))
    finally:
        for s in held:
            s.close()
        if p.poll() is None:
            p.kill()
            p.wait()
        if created:
            subprocess.run(["ip", "link", "del", DUMMY], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    print(f"1..{test_serve.tap.n}")
    return 1 if test_serve.tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
