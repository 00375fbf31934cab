"""rstest - what the Python test scripts share: the binary under test, TAP reporting, free
loopback ports, running a command and one HTTP request. Not a test itself (no test_ prefix). A script finds it with
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
tests/run.sh counts the "ok N" / "not ok N" lines; a failure's detail follows as "# " lines."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

RADSHARE = os.path.abspath(os.environ.get("RADSHARE", "build/radshare"))


class Tap:
    def __init__(self, on_fail=None):
        self.n = 0
        self.failed = 0
        self.on_fail = on_fail  # called after a failed check's lines (e.g. to show a server log)

    def __call__(self, ok, what, detail=""):
        self.n += 1
        self.failed += not ok
        print(f"{'ok' if ok else 'not ok'} {self.n} {what}")
        if detail and not ok:
            print("# " + str(detail)[:800].replace("\n", "\n# "))
        if not ok and self.on_fail:
            self.on_fail()
        sys.stdout.flush()
        return ok

    def status(self):
        return 1 if self.failed else 0

    def done(self):
        print(f"1..{self.n}")
        return self.status()


# the one counter of a script (a script that wants its own makes another Tap)
tap = Tap()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def run(args, timeout=60, cwd=None, input=None, **kw):
    return subprocess.run(args, capture_output=True, timeout=timeout, cwd=cwd, input=input, **kw)


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


def http(method, url, body=None, headers=None, timeout=60):
    """One request with urllib; a dict or list body is sent as JSON. Errors are answers too."""
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    rq = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None and not rq.has_header("Content-type"):
        rq.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(rq, timeout=timeout) as r:
            return Resp(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.headers, e.read())


def eventually(pred, secs=5.0, step=0.05):
    """pred() until it is true or secs have passed; its last value. For what a server writes just
    after answering (a log line follows the refusal the client has already seen)."""
    end = time.monotonic() + secs
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


def tmp_leftovers(data):
    """What DATA/tmp/ holds besides the store's pool of empty *.part slots (made ahead of time so
    that an ingest needs no directory fsync): received bytes not yet in objects/, anything else."""
    tmp = os.path.join(data, "tmp")
    out = []
    for f in sorted(os.listdir(tmp)) if os.path.isdir(tmp) else []:
        try:
            if not (f.endswith(".part") and os.path.getsize(os.path.join(tmp, f)) == 0):
                out.append(f)
        except FileNotFoundError:  # removed (or moved into objects/) since the listing
            pass
    return out
