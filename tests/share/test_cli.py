#!/usr/bin/python3
"""test_cli.py - `radshare user` and `radshare audit` as an operator uses them, on a throw-away data
directory: add accounts with the password on stdin (short/empty refused), check the password
(right, wrong, disabled), list, disable; `radshare audit verify` exit codes on a clean log, on an
edited line (the line is named) and on a deleted line; `radshare audit list --study`. The audit log
is written by the real C writer through the test_audit_writer program built from tests/unit.
Prints TAP."""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rstest import RADSHARE, tap  # noqa: E402

ok = tap


def rs(*args, stdin=None):
    return subprocess.run([RADSHARE, *args], input=stdin, capture_output=True, text=True, timeout=120)


def main():
    with tempfile.TemporaryDirectory(prefix="rs-share-cli-") as tmp:
        data = os.path.join(tmp, "data")
        r = rs("user", "add", "alice", "--role", "admin", "--data", data, stdin="correct horse battery\n")
        ok(r.returncode == 0 and "alice" in r.stdout, "user add alice (password on stdin)")
        r = rs("user", "add", "bob", "--role", "radiologist", "--data", data, stdin="s3cret-but-long-enough\n")
        ok(r.returncode == 0, "user add bob")
        r = rs("user", "add", "carol", "--role", "admin", "--data", data, stdin="short\n")
        ok(r.returncode == 2 and "password" in r.stderr, "a short password is refused")
        r = rs("user", "add", "carol", "--role", "admin", "--data", data, stdin="")
        ok(r.returncode == 2, "no password at all is refused")
        r = rs("user", "add", "carol", "--role", "boss", "--data", data, stdin="long enough password\n")
        ok(r.returncode == 2, "an unknown role is refused")
        r = rs("user", "add", "alice", "--role", "admin", "--data", data, stdin="correct horse battery\n")
        ok(r.returncode == 2 and "exists" in r.stderr, "adding an existing user is refused")
        r = rs("user", "add", "dave", "--role", "admin", "--data", data, "extra", stdin="long enough password\n")
        ok(r.returncode == 2, "extra arguments are refused")

        r = rs("user", "list", "--data", data)
        lines = r.stdout.splitlines()
        ok(r.returncode == 0 and len(lines) == 2 and lines[0].split()[:3] == ["alice", "admin", "active"]
           and lines[1].split()[:3] == ["bob", "radiologist", "active"], "user list shows both, with roles")

        r = rs("user", "check", "alice", "--data", data, stdin="correct horse battery\n")
        ok(r.returncode == 0 and "ok alice admin" in r.stdout, "login check: right password accepted")
        r = rs("user", "check", "alice", "--data", data, stdin="correct horse batterx\n")
        ok(r.returncode == 1, "login check: wrong password refused (exit 1)")
        r = rs("user", "check", "nobody", "--data", data, stdin="correct horse battery\n")
        ok(r.returncode == 1, "login check: unknown user refused the same way")

        r = rs("user", "disable", "bob", "--data", data)
        ok(r.returncode == 0, "user disable bob")
        r = rs("user", "check", "bob", "--data", data, stdin="s3cret-but-long-enough\n")
        ok(r.returncode == 1, "a disabled account cannot log in")
        r = rs("user", "list", "--data", data)
        ok(re.search(r"^bob\s+radiologist\s+disabled", r.stdout, re.M) is not None, "list shows bob disabled")
        r = rs("user", "disable", "nobody", "--data", data)
        ok(r.returncode == 2, "disabling an unknown user fails")

        with open(os.path.join(data, "state.sqlite"), "rb") as f:
            db = f.read()
        wal = os.path.join(data, "state.sqlite-wal")
        if os.path.exists(wal):
            with open(wal, "rb") as f:
                db += f.read()
        ok(b"correct horse battery" not in db and b"$argon2id$" in db, "only argon2id hashes are stored")

        # audit: written by the C writer (test helper), checked by the CLI
        writer = os.path.join(os.environ.get("BUILD", "build"), "tests", "test_audit")
        r = rs("audit", "verify", "--data", data)
        ok(r.returncode == 0, "audit verify on an empty log: exit 0")
        r = subprocess.run([writer, "--write", data, "12"], capture_output=True, text=True, timeout=60)
        ok(r.returncode == 0, "12 records appended by the audit writer")
        r = rs("audit", "verify", "--data", data)
        ok(r.returncode == 0 and "12 records" in r.stdout, "audit verify on a clean log: exit 0, 12 records")
        r = rs("audit", "list", "--study", "1.2.826.0.1.3680043.8.498.7", "--data", data)
        recs = r.stdout.splitlines()
        ok(r.returncode == 0 and len(recs) == 9 and all(l.startswith('{"seq":') for l in recs),
           "audit list --study prints that study's records as JSON lines")
        r = rs("audit", "list", "--data", data)
        ok(r.returncode == 2, "audit list without --study/--share is a usage error")

        log = os.path.join(data, "audit", "000001.log")
        with open(log) as f:
            orig = f.readlines()
        edited = list(orig)
        edited[6] = edited[6].replace("192.0.2.7", "192.0.2.8")
        with open(log, "w") as f:
            f.writelines(edited)
        r = rs("audit", "verify", "--data", data)
        ok(r.returncode == 1 and "000001.log:7:" in r.stdout and "edited" in r.stdout,
           "audit verify on an edited line 7: exit 1 naming 000001.log:7")
        with open(log, "w") as f:
            f.writelines(orig[:3] + orig[4:])
        r = rs("audit", "verify", "--data", data)
        ok(r.returncode == 1 and "000001.log:4:" in r.stdout, "audit verify on a deleted line 4: exit 1 naming it")
        with open(log, "w") as f:
            f.writelines(orig[:-1])
        r = rs("audit", "verify", "--data", data)
        ok(r.returncode == 1 and "cut from the end" in r.stdout, "audit verify on a log missing its last line: exit 1")
        with open(log, "w") as f:
            f.writelines(orig)
        r = rs("audit", "verify", "--data", data)
        ok(r.returncode == 0, "restored log verifies again")
    print("1..%d" % tap.n)
    return tap.status()


if __name__ == "__main__":
    sys.exit(main())
