#!/usr/bin/python3
"""render_client.py - the HTTP client parts of bench/render: checks, QIDO-RS timing, the report.

  render_client.py check OUTDIR NAME URL ACCEPT KIND [EXPECT]
      GET URL once; save the body in OUTDIR; print "ok ..." or "FAILED ...". KIND: png, jpeg
      (decoded size must be 512x512 8-bit grey), multipart (EXPECT application/dicom parts), zip
      (EXPECT .dcm entries).
  render_client.py qido RAW N WARMUP COUNT SERVER=URL...
      time N study searches of each kind (make_studies.searches(COUNT)) on each server, one
      keep-alive connection per server, servers and searches interleaved; append one line per
      request to RAW (search, server, ms, matches, status) and print p50/p95. SERVER is radshare,
      orthanc-dw (Orthanc's DICOMweb plugin) or orthanc-find (Orthanc's POST /tools/find).
  render_client.py report DIR TARGET_RENDER TARGET_QIDO_MS TARGET_GBPS
      the tables and verdicts from DIR/render-{wrk,qido,retrieve}.tsv.
"""
import http.client
import io
import json
import os
import statistics
import struct
import sys
import time
import urllib.parse
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def get(url, accept, method="GET", body=None):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    path = u.path + ("?" + u.query if u.query else "")
    c.request(method, path, body=body, headers={"Accept": accept} if accept else {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type") or "", data


def image_size(kind, data):
    """(width, height, bits, channels) from a PNG IHDR or a JPEG SOF."""
    if kind == "png":
        if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
            return None
        w, h, bits, ctype = struct.unpack(">IIBB", data[16:26])
        return w, h, bits, {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype, 0)
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        m = data[i + 1]
        seglen = struct.unpack(">H", data[i + 2:i + 4])[0]
        if m in (0xC0, 0xC1, 0xC2):
            bits, h, w, comps = struct.unpack(">BHHB", data[i + 4:i + 10])
            return w, h, bits, comps
        i += 2 + seglen
    return None


def cmd_check(outdir, name, url, accept, kind, expect=None):
    status, ctype, data = get(url, accept)
    path = os.path.join(outdir, name)
    with open(path, "wb") as w:
        w.write(data)
    if status != 200:
        return f"FAILED {name}: HTTP {status}: {data[:200]!r}"
    if kind in ("png", "jpeg"):
        want = "image/" + kind
        dims = image_size(kind, data)
        if not ctype.startswith(want) or dims != (512, 512, 8, 1):
            return f"FAILED {name}: {ctype}, {dims} (want {want}, 512x512 8-bit grey)"
        return f"ok {name}: {ctype} {len(data)} bytes 512x512 8-bit grey"
    if kind == "multipart":
        n = data.count(b"Content-Type: application/dicom")
        if not ctype.startswith("multipart/related") or n != int(expect):
            return f"FAILED {name}: {ctype}, {n} application/dicom parts (want {expect})"
        return f"ok {name}: {len(data)} bytes, {n} parts"
    z = zipfile.ZipFile(io.BytesIO(data))
    names = [i for i in z.infolist() if not i.is_dir()]
    if len(names) != int(expect):
        return f"FAILED {name}: {len(names)} files in the archive (want {expect})"
    method = {0: "stored", 8: "deflated"}.get(names[0].compress_type, str(names[0].compress_type))
    return f"ok {name}: {len(data)} bytes, {len(names)} files ({method})"


class Client:
    """One keep-alive connection; a search is one request whose answer is read in full."""

    def __init__(self, name, base):
        self.name = name
        self.base = urllib.parse.urlsplit(base)
        self.c = http.client.HTTPConnection(self.base.hostname, self.base.port, timeout=60)

    def search(self, params):
        """(status, matches, reconnected). Orthanc closes a keep-alive connection idle for 1 s
        (civetweb's Keep-Alive: timeout=1); such a request is redone on a new connection."""
        try:
            return self.search_once(params) + (False,)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.c.close()
            self.c = http.client.HTTPConnection(self.base.hostname, self.base.port, timeout=60)
            return self.search_once(params) + (True,)

    def search_once(self, params):
        if self.name == "orthanc-find":
            body = json.dumps({"Level": "Study", "Expand": True, "Query": params})
            self.c.request("POST", "/tools/find", body=body, headers={"Content-Type": "application/json"})
        else:
            # ^ and * as they are: Orthanc's DICOMweb plugin does not decode %5E (finds nothing)
            q = urllib.parse.urlencode(params, safe="^*")
            self.c.request("GET", self.base.path + "/studies?" + q, headers={"Accept": "application/dicom+json"})
        r = self.c.getresponse()
        data = r.read()
        if r.status == 204:
            return r.status, 0
        n = len(json.loads(data)) if r.status == 200 else -1
        return r.status, n


def pct(v, p):
    v = sorted(v)
    k = (len(v) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def cmd_qido(raw, n, warmup, count, servers):
    import make_studies
    searches = make_studies.searches(count)
    clients = [Client(*s.split("=", 1)) for s in servers]
    with open(raw, "a") as out:
        for label, params, expected in searches:
            for c in clients:
                for _ in range(warmup):
                    c.search(params)
            for i in range(n):
                for c in clients:
                    t0 = time.perf_counter()
                    status, got, again = c.search(params)
                    ms = (time.perf_counter() - t0) * 1000
                    ok = "ok" if status in (200, 204) and got == expected else f"status {status}, {got} matches"
                    if again:
                        ok += " (reconnected)"
                    out.write(f"{label}\t{c.name}\t{ms:.4f}\t{got}\t{expected}\t{ok}\n")


def lines(d, name):
    p = os.path.join(d, name)
    return open(p).read().splitlines() if os.path.exists(p) else []


def cmd_report(d, t_render, t_qido, t_gbps):
    t_render, t_qido, t_gbps = float(t_render), float(t_qido), float(t_gbps)
    verdicts = []
    # rendered: kind server round rps p50ms non2xx errors
    wrk = {}
    bad = []
    for line in lines(d, "render-wrk.tsv"):
        kind, server, rnd, rps, p50, non2xx, errors = line.rstrip("\n").split("\t")
        wrk.setdefault((kind, server), []).append((float(rps), p50))
        if non2xx != "0" or errors != "0":
            bad.append(f"{kind} {server} round {rnd}: {non2xx} non-2xx answers, socket errors "
                       f"(connect+read+write+timeout) {errors}")
    print("rendered frame (512x512 16-bit MR -> 8-bit, concurrent keep-alive clients; median of rounds)")
    print("  same: the same frame and parameters on every request (radshare answers from its render cache)")
    print("  new window: a new window centre on every request, every image rendered anew (information)")
    fmt = "  %-16s %-10s %10s %10s %12s %9s"
    print(fmt % ("image", "server", "req/s", "(min)", "latency p50", "radshare"))
    worst = None
    for kind in ("png", "jpeg", "png-newwin", "jpeg-newwin"):
        rs = wrk.get((kind, "radshare"))
        rs_med = statistics.median(r for r, _ in rs) if rs else None
        for server in ("radshare", "orthanc"):
            v = wrk.get((kind, server))
            if not v:
                continue
            med = statistics.median(r for r, _ in v)
            ratio = "" if server == "radshare" or not rs_med else "%.2fx" % (rs_med / med)
            if server == "orthanc" and rs_med and "newwin" not in kind:
                worst = min(worst, rs_med / med) if worst is not None else rs_med / med
            label = kind.replace("-newwin", ", new window") if "newwin" in kind else kind + ", same"
            print(fmt % (label, server, "%.0f" % med, "%.0f" % min(r for r, _ in v), v[len(v) // 2][1], ratio))
    verdicts.append(("rendered frame, radshare / Orthanc (worse of PNG, JPEG; same frame)", worst, t_render, "x", ">="))
    print()
    # qido: search server ms got expected status
    q = {}
    order = []
    reconnects = 0
    for line in lines(d, "render-qido.tsv"):
        label, server, ms, got, expected, status = line.rstrip("\n").split("\t")
        if label not in order:
            order.append(label)
        q.setdefault((label, server), []).append(float(ms))
        if status == "ok (reconnected)":
            reconnects += 1
        elif status != "ok":
            bad.append(f"QIDO {label} {server}: {status} (expected {expected})")
        q[(label, "matches")] = expected
    servers = [s for s in ("radshare", "orthanc-dw", "orthanc-find") if any(k[1] == s for k in q)]
    names = {"radshare": "radshare /dicom-web", "orthanc-dw": "Orthanc /dicom-web", "orthanc-find": "Orthanc /tools/find"}
    print("QIDO-RS study search on %s studies, one keep-alive client, ms per search (p50 / p95)" %
          os.environ.get("STUDY_COUNT", "?"))
    fmt = "  %-32s %7s" + " %22s" * len(servers)
    print(fmt % (("search", "matches") + tuple(names[s] for s in servers)))
    worst_p50 = None
    for label in order:
        cells = []
        for s in servers:
            v = q.get((label, s), [])
            cells.append("%.2f / %.2f" % (pct(v, 50), pct(v, 95)) if v else "-")
            if s == "radshare" and v:
                worst_p50 = max(worst_p50 or 0, pct(v, 50))
        print(fmt % ((label, q[(label, "matches")]) + tuple(cells)))
    if reconnects:
        print(f"  ({reconnects} timed searches were redone on a new connection: the server had closed the idle one)")
    verdicts.append(("QIDO study search p50, radshare (slowest search)", worst_p50, t_qido, "ms", "<"))
    print()
    # retrieve: what server rep bytes seconds code
    r = {}
    for line in lines(d, "render-retrieve.tsv"):
        what, server, rep, nbytes, secs, code = line.rstrip("\n").split("\t")
        r.setdefault((what, server), []).append((float(secs), int(nbytes)))
        if code != "200":
            bad.append(f"retrieve {what} {server} rep {rep}: HTTP {code}")
    print("whole-series retrieve (300 x 570 KB MR, loopback, curl to /dev/null; median of the runs)")
    print("  (GB/s: bytes on the wire / median time; radshare: how many times faster the whole series came)")
    fmt = "  %-44s %4s %10s %9s %9s %9s"
    print(fmt % ("request", "runs", "MB", "median s", "GB/s", "radshare"))
    rs_gbps = rs_secs = None
    for (what, server), v in r.items():
        secs = statistics.median(s for s, _ in v)
        nbytes = v[0][1]
        gbps = nbytes / secs / 1e9
        if server == "radshare":
            rs_gbps, rs_secs = gbps, secs
        ratio = "" if server == "radshare" or not rs_secs else "%.1fx" % (secs / rs_secs)
        print(fmt % (f"{server} {what}", len(v), "%.1f" % (nbytes / 1e6), "%.3f" % secs, "%.2f" % gbps, ratio))
    verdicts.append(("series retrieve, radshare WADO-RS", rs_gbps, t_gbps, "GB/s", ">="))
    print()
    for what, value, target, unit, op in verdicts:
        if value is None:
            print(f"{what}: not measured")
            continue
        met = value >= target if op == ">=" else value < target
        print(f"{what}: {value:.2f} {unit}   target {op} {target:g} {unit}: {'MET' if met else 'NOT MET'}")
    if bad:
        print("\nFAILED requests (the figures above include them):")
        seen = {}
        for b in bad:
            seen[b] = seen.get(b, 0) + 1
        for b, k in seen.items():
            print("  " + b + (f" (x{k})" if k > 1 else ""))
    else:
        print("correctness: every timed request answered 2xx with the expected number of matches")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "check":
        msg = cmd_check(*args)
        print(msg)
        return 0 if msg.startswith("ok") else 1
    if cmd == "qido":
        cmd_qido(args[0], int(args[1]), int(args[2]), int(args[3]), args[4:])
        return 0
    if cmd == "report":
        cmd_report(*args)
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
