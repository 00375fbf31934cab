#!/usr/bin/python3
"""Who may talk to radshare from a non-loopback address (issue #3, item 5), with DCMTK's stock clients.

The clients connect to one of this machine's own non-loopback addresses, so the server sees a
peer that is not on the loopback network. If the machine has none, the test adds a dummy
interface with a TEST-NET-2 address (needs root) and removes it at the end; if it can do
neither it fails, because the policy would then be untested.

Checked: an unknown calling AE, a known AE from the wrong address and a wrong called AE are
rejected with the PS3.8 codes (as DCMTK prints them) and the reason is logged; a peer limited
to `store` stores but gets 0124H "Refused: Not Authorized" for C-FIND, C-MOVE and C-GET; a
peer limited to `find` finds but cannot store (nothing stored); loopback stays open to all.
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve import Server, free_port, make_instance, report, run  # noqa: E402
from rstest import eventually  # noqa: E402

import numpy as np  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

DUMMY = "rsacc0"
PER_ADDR = 3


def refused(out):
    """DCMTK's way of showing status 0124H (Refused: Not Authorized)."""
    return re.search(r"0x0?124\b", out) is not None


def own_address():
    """A non-loopback IPv4 address of this machine, and whether we created it."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
    for m in re.finditer(r"inet (\d+\.\d+\.\d+\.\d+)/", out):
        if not m.group(1).startswith("127."):
            return m.group(1), False
    addr = "198.51.100.77"
    for cmd in (["ip", "link", "add", DUMMY, "type", "dummy"], ["ip", "addr", "add", addr + "/32", "dev", DUMMY],
                ["ip", "link", "set", DUMMY, "up"]):
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            return None, False
    return addr, True


def main():
    addr, created = own_address()
    if not report(addr is not None, "a non-loopback address of this host to test from", "none, and cannot add one"):
        return 1
    tmp = tempfile.mkdtemp(prefix="rs-access-")
    port = free_port()
    peers = [f"ALLSVC={addr}:1", f"STOREONLY={addr}:1/store", f"FINDONLY={addr}:1/find",
             "ELSEWHERE=203.0.113.9:104", f"MOVEDEST={addr}:1/move,get"]
    srv = Server(os.path.join(tmp, "data"), port, sum((["--peer", p] for p in peers), []) +
                 ["--max-associations-per-address", str(PER_ADDR)])
    try:
        if not report(srv.start(), "server starts"):
            return 1
        rng = np.random.default_rng(7)
        study = generate_uid()
        files = []
        for i, who in enumerate(["a", "b"]):
            path = os.path.join(tmp, f"in{i}.dcm")
            make_instance(path, study, generate_uid(), generate_uid(), "Access^Test", "MR", "20240102", "101010",
                          i + 1, "ACCESS", "S", rng)
            files.append(path)

        def echo(aet, aec="RADSHARE", host=addr):
            return run(["echoscu", "-to", "5", "-aet", aet, "-aec", aec, host, str(port)])

        def log():
            with open(srv.log.name, "rb") as f:
                return f.read().decode(errors="replace")

        p = echo("NOBODY")
        report(p.returncode != 0 and b"Calling AE Title Not Recognized" in p.stdout + p.stderr,
               "unknown calling AE from a remote address: A-ASSOCIATE-RJ calling AE not recognized",
               (p.stdout + p.stderr).decode(errors="replace")[-300:])
        report(eventually(lambda: "calling AE title not configured" in log()), "the refusal and its reason are logged")
        p = echo("ELSEWHERE")
        report(p.returncode != 0 and b"Calling AE Title Not Recognized" in p.stdout + p.stderr,
               "known AE calling from another address: rejected")
        report(eventually(lambda: "calling AE title configured for another address" in log()), "logged with the address reason")
        p = echo("ALLSVC", aec="NOTUS")
        report(p.returncode != 0 and b"Called AE Title Not Recognized" in p.stdout + p.stderr,
               "wrong called AE title: rejected")
        report(echo("ALLSVC").returncode == 0, "configured peer from its address: C-ECHO works")
        report(echo("STOREONLY").returncode == 0, "a store-only peer may still C-ECHO")

        def store(aet, path):
            return run(["storescu", "-v", "-aet", aet, "-aec", "RADSHARE", addr, str(port), path])

        p = store("STOREONLY", files[0])
        report(p.returncode == 0 and b"Status" not in p.stderr, "store-only peer stores",
               (p.stdout + p.stderr).decode(errors="replace")[-300:])
        p = store("FINDONLY", files[1])
        out = (p.stdout + p.stderr).decode(errors="replace")
        report(refused(out),
               "find-only peer's C-STORE answered 0124H Refused: Not Authorized", out[-300:])
        report(eventually(lambda: "C-STORE-RQ refused: FINDONLY may not store (allowed: find)" in log()), "the service refusal is logged",
               log()[-400:])

        def find(aet, host=addr):
            d = tempfile.mkdtemp(dir=tmp)
            p = run(["findscu", "-v", "-S", "-aet", aet, "-aec", "RADSHARE", "-X", "-od", d, "-k",
                     "QueryRetrieveLevel=IMAGE", "-k", f"StudyInstanceUID={study}", "-k", "SOPInstanceUID",
                     host, str(port)], cwd=d)
            return p, len(os.listdir(d))

        p, k = find("FINDONLY")
        report(p.returncode == 0 and k == 1, "find-only peer finds exactly the one stored instance",
               f"rc={p.returncode} answers={k}")
        p, k = find("STOREONLY")
        out = (p.stdout + p.stderr).decode(errors="replace")
        report(k == 0 and refused(out),
               "store-only peer's C-FIND refused with 0124H", out[-300:])
        for tool, extra in (("movescu", ["-aem", "MOVEDEST", "--port", str(free_port())]), ("getscu", [])):
            d = tempfile.mkdtemp(dir=tmp)
            p = run([tool, "-S", "-aet", "STOREONLY", "-aec", "RADSHARE", "-od", d, "-k", "QueryRetrieveLevel=STUDY",
                     "-k", f"StudyInstanceUID={study}"] + extra + [addr, str(port)], cwd=d)
            out = (p.stdout + p.stderr).decode(errors="replace")
            report(not os.listdir(d) and refused(out),
                   f"store-only peer's {tool} refused with 0124H", out[-300:])
        p, k = find("ANYTHING", host="127.0.0.1")
        report(p.returncode == 0 and k == 1, "loopback: any AE title may query, and the refused store left nothing",
               f"rc={p.returncode} answers={k}")

        # per-address cap: PER_ADDR idle connections from addr hold every slot that address has
        idle = []
        for _ in range(PER_ADDR):
            c = socket.socket()
            c.bind((addr, 0))
            c.connect((addr, port))
            idle.append(c)
        time.sleep(0.3)
        p = echo("ALLSVC")
        report(p.returncode != 0 and b"Local Limit Exceeded" in p.stdout + p.stderr,
               f"with {PER_ADDR} associations open from one remote address, the next is rejected (2/3/2)",
               (p.stdout + p.stderr)[-300:])
        report(eventually(lambda: "too many associations from this address" in log()), "the per-address refusal is logged")
        report(echo("X", host="127.0.0.1").returncode == 0, "meanwhile loopback is served")
        for c in idle:
            c.close()
        ok = False
        for _ in range(50):
            if echo("ALLSVC").returncode == 0:
                ok = True
                break
            time.sleep(0.1)
        report(ok, "once they close, the address is served again")
        report(srv.p.poll() is None and echo("X", host="127.0.0.1").returncode == 0, "server still serving")
    finally:
        srv.stop()
        if created:
            subprocess.run(["ip", "link", "del", DUMMY], capture_output=True)
    return 0


if __name__ == "__main__":
    rc = main()
    import test_serve
    sys.exit(1 if (rc or test_serve.tap.failed) else 0)
