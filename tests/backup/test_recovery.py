#!/usr/bin/python3
"""Issue #6 "done when": a study stored over DICOM (storescu into radshare serve), backed up; a third
of the stored files overwritten with random bytes (what ransomware encryption looks like) -> verify
names exactly those files; restore into a new directory -> verify clean and the same C-FIND answers;
index deleted -> reindex -> same answers; tampered backups (object, manifest, signature) refused."""
import os
import random
import shutil
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, Tap, find_all, free_port, make_instance, object_files, rs, run  # noqa: E402
from rstest import http  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

t = Tap()



def answers(data):
    port = free_port()
    srv = Server(data, port)
    out = None
    if srv.start():
        out = find_all(port)
    srv.stop()
    return out


def problems(data, *extra):
    p = rs("verify", "--data", data, "--quiet", *extra)
    lines = [ln.split() for ln in p.stdout.decode().splitlines() if ln.strip()]
    return p.returncode, lines, p.stderr.decode()


def restore(backup, into, fp, *extra):
    return rs("restore", "--from", backup, "--data", into, "--fingerprint", fp, "--quiet", *extra)


def main():
    work = tempfile.mkdtemp(prefix="rs-recovery-")
    data, backup = os.path.join(work, "data"), os.path.join(work, "backup")
    src = os.path.join(work, "src")
    os.makedirs(src)
    study = generate_uid()
    for s in range(3):
        series = generate_uid()
        for i in range(6):
            make_instance(os.path.join(src, f"s{s}i{i}.dcm"), study, series, generate_uid(),
                          modality="CT" if s < 2 else "MR", number=i + 1, series_number=s + 1)
    port, hport = free_port(), free_port()
    srv = Server(data, port, hport)
    t(srv.start(), "radshare serve starts")
    p = run(["storescu", "-aec", "RADSHARE", "127.0.0.1", str(port)] + sorted(
        os.path.join(src, f) for f in os.listdir(src)))
    t(p.returncode == 0, "storescu stores 18 instances", p.stderr.decode()[-300:])
    # a real share link (state.sqlite) and its audit record (audit/), to find again after restore
    r = http("POST", "http://127.0.0.1:%d/api/shares" % hport, {"study": study})
    link = r.json().get("url", "") if r.status == 201 else ""
    t(link.startswith("http://127.0.0.1:%d/s/" % hport), "a share link is made (its state and audit record)",
      (r.status, r.body[:200]))
    os.makedirs(os.path.join(data, "trash"), exist_ok=True)
    open(os.path.join(data, "trash", "1.2.3.4.5"), "w").close()
    rc, lines, err = problems(data, "--full")
    t(rc == 0 and not lines, "verify --full is clean after ingest", err + str(lines))
    # DATA/state.sqlite in WAL mode, with a writer holding it open (and uncheckpointed) during the backup
    state = sqlite3.connect(os.path.join(data, "state.sqlite"))
    state.execute("PRAGMA journal_mode=WAL")
    state.execute("PRAGMA wal_autocheckpoint=0")
    state.execute("CREATE TABLE test_probe(id TEXT, study TEXT)")
    state.execute("INSERT INTO test_probe VALUES('s1', ?)", (study,))
    state.commit()
    # backup while the server runs (no lock), twice: the second run copies nothing new
    p = rs("backup", "--data", data, "--to", backup, "--quiet")
    out = p.stdout.decode()
    t(p.returncode == 0 and "objects 18 (new 18" in out, "backup while serve runs copies 18 objects",
      out + p.stderr.decode())
    fp = [ln.split()[1] for ln in out.splitlines() if ln.startswith("fingerprint ")]
    fp = fp[0] if fp else ""
    t(len(fp) == 64, "backup prints the key fingerprint")
    t("index snapshot yes" in out, "the run holds a snapshot of the index (every object it names is in the run)", out)
    key = os.path.join(data, "backup-key.pem")
    t(os.path.exists(key) and (os.stat(key).st_mode & 0o777) == 0o600, "private key is mode 0600")
    p = rs("backup", "--data", data, "--to", backup, "--quiet")
    t(p.returncode == 0 and "(new 0," in p.stdout.decode(), "second backup copies no object", p.stdout.decode())
    runs = sorted(os.listdir(os.path.join(backup, "runs")))
    t(len(runs) == 2 and all(os.path.exists(os.path.join(backup, "runs", r, "manifest.sig")) for r in runs),
      "two signed runs", str(runs))
    t(os.path.exists(os.path.join(backup, "runs", runs[-1], "audit", "000001.log")), "audit file in the run")
    state.close()
    srv.stop()
    before = answers(data)
    t(before is not None and all(rc == 0 and res for _, rc, res in before), "C-FIND answers at 4 levels",
      str(before)[:300])

    # ransomware: overwrite a third of the files with random bytes (same size)
    files = object_files(data)
    rng = random.Random(6)
    hit = sorted(rng.sample(files, len(files) // 3))
    for f in hit:
        size = os.path.getsize(f)
        with open(f, "r+b") as fh:
            fh.write(os.urandom(size))
    rc, lines, err = problems(data)
    named = sorted(ln[1] for ln in lines if ln[0] == "corrupt")
    t(rc == 1 and named == hit and len(lines) == len(hit), "verify (incremental) names exactly the 6 overwritten files",
      f"rc={rc} {lines} {err}")
    rc, lines, err = problems(data, "--full")
    t(rc == 1 and sorted(ln[1] for ln in lines) == hit, "verify --full names the same files")
    # a deleted file and a stray file
    gone = [f for f in files if f not in hit][0]
    os.rename(gone, gone + ".locked")
    stray = os.path.join(data, "objects", "00", "00", "00" * 32)
    os.makedirs(os.path.dirname(stray), exist_ok=True)
    open(stray, "wb").write(b"x")
    rc, lines, err = problems(data)
    kinds = {(ln[0], ln[1]) for ln in lines}
    t(rc == 1 and ("missing", gone) in kinds and ("orphan", stray) in kinds,
      "verify reports a missing file and an orphan", str(lines))

    # restore into a clean directory
    clean = os.path.join(work, "clean")
    p = rs("restore", "--from", backup, "--data", clean, "--quiet")
    t(p.returncode != 0 and not os.path.exists(clean), "restore without a trusted key refuses",
      p.stderr.decode())
    p = rs("restore", "--from", backup, "--data", data, "--fingerprint", fp)
    t(p.returncode != 0, "restore refuses a non-empty target")
    p = restore(backup, clean, fp)
    t(p.returncode == 0, "restore from the backup", p.stderr.decode())
    t(b"index from the backup's signed snapshot" in p.stdout, "restore uses the signed index snapshot",
      p.stdout.decode())
    rc, lines, err = problems(clean, "--full")
    t(rc == 0 and not lines, "verify --full is clean after restore", str(lines) + err)
    t(sorted(os.path.relpath(f, clean) for f in object_files(clean))
      == sorted(os.path.relpath(f, data) for f in files), "restored the same objects")
    t(open(os.path.join(clean, "audit", "000001.log")).read().startswith('{"seq":1'), "audit file restored")
    t(os.path.exists(os.path.join(clean, "trash", "1.2.3.4.5")), "trash mark restored")
    rows = sqlite3.connect(os.path.join(clean, "state.sqlite")).execute("SELECT id, study FROM test_probe").fetchall()
    t(rows == [("s1", study)], "state.sqlite restored with the row committed in WAL during the backup", str(rows))
    p = rs("audit", "verify", "--data", clean)
    t(p.returncode == 0, "the restored audit chain verifies", (p.stdout + p.stderr).decode()[-300:])
    hp2 = free_port()
    srv = Server(clean, free_port(), hp2)
    up = srv.start()
    r = http("GET", link.replace(":%d/" % hport, ":%d/" % hp2) + "/study.json") if up and link else None
    t(r is not None and r.status == 200 and study in r.body.decode(errors="replace"),
      "the restored server serves the same share link", r and (r.status, r.body[:200]))
    srv.stop()
    after = answers(clean)
    t(after == before, "C-FIND answers after restore are identical", str(after)[:300])
    p = restore(backup, os.path.join(work, "clean2"), "00" * 32)
    t(p.returncode != 0, "restore refuses a key with another fingerprint")
    p = rs("restore", "--from", backup, "--data", os.path.join(work, "clean3"), "--trust",
           os.path.join(data, "backup-key.pub"), "--quiet")
    t(p.returncode == 0, "restore with --trust KEY.pub", p.stderr.decode())

    # a snapshot of another schema version is stale: restore rebuilds the index instead
    old = sqlite3.connect(os.path.join(work, "clean3", "index.sqlite"))
    old.execute("PRAGMA user_version = 12345")
    old.commit()
    old.close()
    backup3 = os.path.join(work, "backup3")
    p = rs("backup", "--data", os.path.join(work, "clean3"), "--to", backup3, "--quiet")
    fp3 = [ln.split()[1] for ln in p.stdout.decode().splitlines() if ln.startswith("fingerprint ")]
    p = restore(backup3, os.path.join(work, "clean4"), fp3[0] if fp3 else "")
    t(p.returncode == 0 and b"index rebuilt from the objects" in p.stdout,
      "a snapshot of another index schema: restore rebuilds the index", p.stdout.decode() + p.stderr.decode())
    t(answers(os.path.join(work, "clean4")) == before, "C-FIND answers after that restore are identical")
    p = rs("backup", "--data", os.path.join(work, "clean3"), "--to", os.path.join(work, "nosnap"), "--quiet",
           "--no-index-snapshot")
    t(p.returncode == 0 and b"index snapshot no" in p.stdout and not any(
        os.path.exists(os.path.join(work, "nosnap", "runs", r, "index.sqlite"))
        for r in os.listdir(os.path.join(work, "nosnap", "runs"))), "--no-index-snapshot: the run has no index",
      p.stdout.decode())
    p = restore(os.path.join(work, "nosnap"), os.path.join(work, "clean5"), fp3[0] if fp3 else "")
    t(p.returncode == 0 and b"index rebuilt from the objects" in p.stdout and
      answers(os.path.join(work, "clean5")) == before, "its restore rebuilds the index: same C-FIND answers",
      p.stdout.decode() + p.stderr.decode())
    # a backup taken after the attack, onto new media, lacks the damaged objects: no snapshot
    p = rs("backup", "--data", data, "--to", os.path.join(work, "late"), "--quiet")
    t(p.returncode == 1 and b"index snapshot no" in p.stdout,
      "a backup missing indexed objects holds no index snapshot", p.stdout.decode())
    fpl = [ln.split()[1] for ln in p.stdout.decode().splitlines() if ln.startswith("fingerprint ")]
    p = restore(os.path.join(work, "late"), os.path.join(work, "late-data"), fpl[0] if fpl else "")
    t(p.returncode == 0 and b"index rebuilt" in p.stdout, "its restore rebuilds the index from what it has",
      p.stdout.decode() + p.stderr.decode())

    # reindex after the index is deleted
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(os.path.join(clean, "index.sqlite" + suffix)):
            os.unlink(os.path.join(clean, "index.sqlite" + suffix))
    p = rs("reindex", "--data", clean)
    t(p.returncode == 0, "reindex rebuilds the deleted index", p.stderr.decode())
    t(answers(clean) == before, "C-FIND answers after reindex are identical")
    srv = Server(clean, free_port())
    srv.start()
    p = rs("reindex", "--data", clean)
    t(p.returncode == 2 and b"stop" in p.stderr, "reindex while serve runs says why it cannot", p.stderr.decode())
    srv.stop()

    # tampered backups: an object, the manifest, the signature
    last = os.path.join(backup, "runs", runs[-1])

    def tampered(path, what):
        b = bytearray(open(path, "rb").read())
        i = len(b) // 2
        b[i] ^= 0x01
        os.chmod(path, 0o644)
        open(path, "wb").write(bytes(b))
        target = os.path.join(work, "t-" + what)
        p = restore(backup, target, fp)
        t(p.returncode != 0 and not os.path.exists(target) and not any(
            n.startswith("t-" + what + ".restoring") for n in os.listdir(work)),
          f"restore refuses a backup with a flipped byte in the {what}, leaves nothing", p.stderr.decode())
        b[i] ^= 0x01
        open(path, "wb").write(bytes(b))

    obj = sorted(os.listdir(os.path.join(backup, "objects")))
    some = object_files(backup)[3]
    tampered(some, "object")
    tampered(os.path.join(last, "manifest"), "manifest")
    tampered(os.path.join(last, "index.sqlite"), "index snapshot")
    tampered(os.path.join(last, "manifest.sig"), "signature")
    p = restore(backup, os.path.join(work, "final"), fp)
    t(p.returncode == 0, "the untampered backup still restores", p.stderr.decode())
    del obj
    shutil.rmtree(work, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
