#!/usr/bin/python3
"""Issue #6: `radshare backup --peer` keeps a second radshare as a live replica over DICOM. Two real
`radshare serve` instances A and B: a study stored with storescu on A is replicated to B; C-FIND on B
(findscu) answers as A does at every level, the object files are byte-identical (same content hashes,
verify --full clean on B); a second run sends nothing; --follow brings new instances on A to B within
seconds and stops cleanly on SIGTERM; an unreachable peer is an error naming it."""
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RADSHARE, Server, Tap, find, find_all, free_port, make_instance, object_files, rs, run  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

t = Tap()



def hashes(data):
    """{name: sha256 of the content} of every object file."""
    out = {}
    for f in object_files(data):
        with open(f, "rb") as fh:
            out[os.path.basename(f)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def counts(out):
    words = out.split()
    return {words[i + 1].rstrip(","): int(words[i]) for i in range(len(words) - 1) if words[i].isdigit()}


def make_series(src, study, series, n, modality, start=0, series_number=1):
    files = []
    for i in range(start, start + n):
        f = os.path.join(src, f"{series[-6:]}-{i}.dcm")
        make_instance(f, study, series, generate_uid(), modality=modality, number=i + 1, series_number=series_number)
        files.append(f)
    return files


def main():
    work = tempfile.mkdtemp(prefix="rs-replica-")
    data_a, data_b, src = (os.path.join(work, d) for d in ("a", "b", "src"))
    os.makedirs(src)
    study, ct, mr = generate_uid(), generate_uid(), generate_uid()
    files = make_series(src, study, ct, 6, "CT") + make_series(src, study, mr, 4, "MR", series_number=2)
    port_a, port_b = free_port(), free_port()
    a, b = Server(data_a, port_a), Server(data_b, port_b)
    follower = None
    try:
        t(a.start() and b.start(), "two radshare serve instances start")
        p = run(["storescu", "-aec", "RADSHARE", "127.0.0.1", str(port_a)] + files)
        t(p.returncode == 0, "storescu stores 10 instances on A", p.stderr.decode()[-300:])
        peer = f"RADSHARE=127.0.0.1:{port_b}"

        p = rs("backup", "--data", data_a, "--peer", peer, "--quiet")
        out = p.stdout.decode()
        t(p.returncode == 0 and counts(out).get("sent") == 10 and counts(out).get("indexed") == 10,
          "backup --peer sends the 10 instances to B", out + p.stderr.decode()[-300:])
        ans_a, ans_b = find_all(port_a), find_all(port_b)
        t(all(rc == 0 for _, rc, _ in ans_b) and all(len(r) for _, _, r in ans_b), "C-FIND on B answers at 4 levels",
          str(ans_b)[:300])
        t(ans_a == ans_b, "C-FIND on B answers exactly as on A (patient, study, series, image)",
          f"A={ans_a}\nB={ans_b}"[:600])
        ha, hb = hashes(data_a), hashes(data_b)
        t(len(ha) == 10 and ha == hb, "B's object files are byte-identical to A's (same names, same content hashes)",
          f"{len(ha)} vs {len(hb)}")
        t(all(k == v for k, v in hb.items()), "every file on B hashes to its name")

        log_before = open(b.log.name, "rb").read().count(b"association")
        p = rs("backup", "--data", data_a, "--peer", peer, "--quiet")
        out = p.stdout.decode()
        t(p.returncode == 0 and counts(out).get("sent") == 0, "a second run sends nothing", out)
        log_after = open(b.log.name, "rb").read().count(b"association")
        t(log_before > 0 and log_after == log_before, "B saw no association in the second run",
          f"{log_before} -> {log_after}")

        # live: --follow sends what arrives on A
        follower = subprocess.Popen([RADSHARE, "backup", "--data", data_a, "--peer", peer, "--follow",
                                     "--interval", "1", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.5)
        new = make_series(src, study, ct, 3, "CT", start=6)
        p = run(["storescu", "-aec", "RADSHARE", "127.0.0.1", str(port_a)] + new)
        t(p.returncode == 0, "storescu stores 3 more instances on A")
        got, deadline = 0, time.monotonic() + 20
        while time.monotonic() < deadline:
            rc, res = find(port_b, "IMAGE", ["StudyInstanceUID=" + study, "SOPInstanceUID"])
            got = len(res)
            if got == 13:
                break
            time.sleep(0.3)
        t(got == 13, "with --follow the new instances reach B within seconds", f"B has {got}")
        t(find_all(port_a) == find_all(port_b), "C-FIND on B still answers as on A")
        t(hashes(data_a) == hashes(data_b), "B's files are still byte-identical to A's")
        follower.send_signal(signal.SIGTERM)
        try:
            fout, ferr = follower.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            follower.kill()
            fout, ferr = follower.communicate()
        t(follower.returncode == 0 and counts(fout.decode()).get("sent") == 3,
          "SIGTERM stops --follow cleanly; it sent exactly the 3 new ones", fout.decode() + ferr.decode()[-300:])
        follower = None

        p = rs("backup", "--data", data_a, "--peer", peer, "--resend", "--quiet")
        t(p.returncode == 0 and counts(p.stdout.decode()).get("sent") == 13 and hashes(data_b) == hashes(data_a),
          "--resend sends everything again; B answers duplicates and keeps the same files", p.stdout.decode())

        # B goes down: an error naming the peer, nothing recorded as sent
        b.stop()
        p = rs("backup", "--data", data_a, "--peer", peer, "--resend", "--timeout", "2", "--quiet")
        err = p.stderr.decode()
        t(p.returncode == 2 and f"127.0.0.1:{port_b}" in err and counts(p.stdout.decode()).get("sent") == 0,
          "an unreachable peer: exit 2, the peer named", f"rc={p.returncode} {err}")
        t(b.start(), "B starts again")
        p = rs("backup", "--data", data_a, "--peer", peer, "--quiet")
        t(p.returncode == 0 and counts(p.stdout.decode()).get("sent") == 13,
          "the next run sends what the failed run could not", p.stdout.decode())

        p = rs("backup", "--data", data_a, "--peer", "no-port-here")
        t(p.returncode == 2 and "AET=HOST:PORT" in p.stderr.decode(), "a malformed --peer is refused with the syntax")
        p = rs("backup", "--data", data_a, "--peer", peer, "--to", os.path.join(work, "bk"))
        t(p.returncode == 2, "--peer and --to together are refused (usage)")
    finally:
        if follower:
            follower.kill()
            follower.wait()
        a.stop()
        b.stop()
    p = rs("verify", "--data", data_b, "--full", "--quiet")
    t(p.returncode == 0 and not p.stdout.strip(), "verify --full on B is clean", p.stdout.decode()[-300:])
    run(["rm", "-rf", work])
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
