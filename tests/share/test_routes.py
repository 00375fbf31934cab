#!/usr/bin/python3
"""test_routes.py - share links over HTTP against a real `radshare serve`: a study stored with DCMTK's
storescu, a staff account made with `radshare user add` while the server runs, shares created through
POST /api/shares (Basic and session cookie), the viewer's study.json with the share's scope, 404 outside
the scope (other study, other series, unknown instance), access codes with the unlock cookie,
revocation refused on the very next request with a 410 page, guessed tokens throttled (429), every
access in the audit trail (GET /api/audit), no token in the audit files or state.sqlite, and
`radshare audit verify` clean while the server runs. Prints TAP."""
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rstest import RADSHARE, free_port, tap, http  # noqa: E402

ok = tap


def make(path, study, series, sop, series_no, inst_no, slice_loc, pn):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = pn, "PID-7", "19800131", "F"
    ds.StudyDate, ds.StudyTime, ds.StudyDescription, ds.AccessionNumber = "20261201", "101500", "MRI knee", "A123"
    ds.ReferringPhysicianName = "Peeters^Anne"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "MR", series_no, inst_no
    ds.SeriesDescription, ds.BodyPartExamined = "T1 series %d" % series_no, "KNEE"
    ds.SliceLocation, ds.WindowCenter, ds.WindowWidth = slice_loc, 600, 1200
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = 16, 24
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(range(256)) * 3
    ds.save_as(path, write_like_original=False)


def multipart(r):
    """The parts of a multipart answer: [(headers dict, body bytes)], read by Content-Length."""
    b = "--" + r.headers.get_param("boundary", header="Content-Type").encode().decode()
    body, parts, pos = r.body, [], 0
    while body.startswith(b.encode(), pos) and not body.startswith((b + "--").encode(), pos):
        end = body.index(b"\r\n\r\n", pos)
        head = dict(l.split(": ", 1) for l in body[pos:end].decode().split("\r\n")[1:])
        n = int(head["Content-Length"])
        parts.append((head, body[end + 4:end + 4 + n]))
        pos = end + 4 + n + 2
    return parts


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def main():
    with tempfile.TemporaryDirectory(prefix="rs-share-http-") as tmp:
        data = os.path.join(tmp, "data")
        files = []
        study_a, study_b = generate_uid(), generate_uid()
        ser_a1, ser_a2, ser_b = generate_uid(), generate_uid(), generate_uid()
        sops = {}
        # series 2 is sent first and instances out of order: the JSON must sort them
        for study, series, sno in ((study_a, ser_a2, 2), (study_a, ser_a1, 1), (study_b, ser_b, 1)):
            for k in (3, 1, 2):
                sop = generate_uid()
                sops.setdefault(series, []).append(sop)
                f = os.path.join(tmp, "%s.dcm" % sop)
                make(f, study, series, sop, sno, k, 10.0 * k, "Doe^Jané Zoë<script>alert(1)</script>")
                files.append(f)
        dport, hport = free_port(), free_port()
        base = "http://127.0.0.1:%d" % hport
        log = open(os.path.join(tmp, "server.log"), "wb")
        srv = subprocess.Popen([RADSHARE, "serve", "--data", data, "--dicom-port", str(dport), "--http-port",
                                str(hport), "--public-url", base + "/", "--timeout", "10"], stdout=log, stderr=log)
        try:
            up = False
            for _ in range(200):
                if subprocess.run(["echoscu", "-to", "2", "-aec", "RADSHARE", "127.0.0.1", str(dport)],
                                  capture_output=True).returncode == 0:
                    up = True
                    break
                time.sleep(0.05)
            ok(up, "radshare serve is up")
            p = subprocess.run(["storescu", "-aec", "RADSHARE", "127.0.0.1", str(dport)] + files, capture_output=True)
            ok(p.returncode == 0, "storescu stores 9 instances in 2 studies", p.stderr[-300:])

            r = subprocess.run([RADSHARE, "user", "add", "alice", "--role", "radiologist", "--data", data],
                               input=b"correct horse battery\n", capture_output=True)
            ok(r.returncode == 0, "radshare user add works while serve runs", r.stderr)

            new = {"study": study_a, "recipient": {"kind": "practitioner", "name": "Dr. Anne Peeters",
                                                   "email": "gp@example.org"}, "expires_in_days": 10, "download": True}
            r = http("POST", base + "/api/shares", new)
            ok(r.status == 401 and "Basic" in (r.headers.get("WWW-Authenticate") or ""),
               "POST /api/shares without credentials: 401 with WWW-Authenticate", r.status)
            r = http("POST", base + "/api/shares", new, basic("alice", "wrong password!"))
            ok(r.status == 401, "wrong password: 401", r.status)
            r = http("POST", base + "/api/shares", new, basic("alice", "correct horse battery"))
            ok(r.status == 201, "POST /api/shares with Basic: 201", r.body)
            sh = r.json() if r.status == 201 else {}
            url = sh.get("url", "")
            token = url.rsplit("/", 1)[-1]
            ok(url.startswith(base + "/s/") and len(token) == 43 and sh["share"]["created_by"] == "alice"
               and sh["share"]["download"] is True and sh["share"]["recipient"]["email"] == "gp@example.org",
               "the answer has the id, the URL with a 43-character token, the recipient", sh)
            sid = sh.get("id", "")

            r = http("POST", base + "/api/login", {"user": "alice", "password": "correct horse battery"})
            cookie = (r.headers.get("Set-Cookie") or "")
            ok(r.status == 200 and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie,
               "POST /api/login sets an HttpOnly SameSite=Strict session cookie", cookie)
            sess = {"Cookie": cookie.split(";")[0]}
            r = http("GET", base + "/api/shares?study=" + study_a, headers=sess)
            ok(r.status == 200 and [s["id"] for s in r.json()["shares"]] == [sid], "GET /api/shares?study= with the session", r.body)
            r = http("POST", base + "/api/shares", {"study": "1.2.3.4.5.6"}, sess)
            ok(r.status == 404, "a share of a study not in the archive: 404", r.status)
            r = http("POST", base + "/api/shares", b"{not json", sess)
            ok(r.status == 400, "a malformed body: 400", r.status)

            r = http("GET", url)
            ok((r.status == 200 or (r.status == 404 and b"index.html" in r.body))
               and r.headers.get("Referrer-Policy") == "no-referrer" and "no-store" in r.headers.get("Cache-Control", ""),
               "GET /s/{token}: the viewer page (no-referrer, no-store)", (r.status, r.body[:100]))
            r = http("GET", url + "/study.json")
            ok(r.status == 200, "study.json: 200", r.body[:200])
            js = r.json() if r.status == 200 else {}
            ok(js.get("patient", {}).get("name") == "Doe^Jané Zoë<script>alert(1)</script>" and "Jan\\u00c3" not in r.body.decode() and js["patient"]["id"] == "PID-7"
               and js["study"]["uid"] == study_a and js["study"]["description"] == "MRI knee"
               and js["study"]["modalities"] == ["MR"] and js["download"] is True and js["report"] is None,
               "study.json: patient and study (UTF-8 names as they are)", js.get("patient"))
            series = js.get("series", [])
            ok([s["uid"] for s in series] == [ser_a1, ser_a2] and [s["number"] for s in series] == [1, 2],
               "study.json: both series, sorted by number", [s.get("number") for s in series])
            inst = series[0]["instances"] if series else []
            ok([i["number"] for i in inst] == [1, 2, 3] and [i["slice_location"] for i in inst] == [10, 20, 30]
               and all(i["rows"] == 16 and i["cols"] == 24 and i["frames"] == 1 and i["window_center"] == 600
                       and i["window_width"] == 1200 for i in inst),
               "study.json: instances sorted, with size, slice location and window", inst[:1])

            sop_a1 = sops[ser_a1][0]
            r = http("GET", url + "/studies/%s/series/%s/instances/%s/frames/1/rendered" % (study_b, ser_b, sops[ser_b][0]))
            ok(r.status == 404, "token of study A on study B's rendered URL: 404", r.status)
            r = http("GET", url + "/studies/%s/series/%s/instances/%s/frames/1/rendered" % (study_a, ser_a1, sops[ser_b][0]))
            ok(r.status == 404, "an instance of another study under study A's series: 404", r.status)
            r = http("GET", url + "/studies/%s/series/%s/thumbnail" % (study_b, ser_b))
            ok(r.status == 404, "token of study A on study B's thumbnail: 404", r.status)
            r = http("GET", url + "/studies/%s/series/%s/instances/%s/frames/1/rendered" % (study_a, ser_a1, sop_a1))
            ok(r.status == 200 and r.headers.get_content_type() == "image/jpeg" and r.body[:2] == b"\xff\xd8",
               "an instance in scope: rendered by the WADO-RS code as a JPEG", (r.status, r.body[:80]))
            single = r.body
            ok(r.headers.get_all("Cache-Control") == ["no-store"],
               "a share's image: Cache-Control no-store only (no immutable beside it: a revocation must not be outlived)",
               r.headers.get_all("Cache-Control"))
            r = http("GET", url + "/studies/%s/series/%s/instances/%s/frames/1/rendered" % (study_a, ser_a1, sop_a1))
            ok(r.status == 200 and r.body == single and r.headers.get_all("Cache-Control") == ["no-store"],
               "the same image again (now from the render cache): same bytes, still no-store only",
               (r.status, r.headers.get_all("Cache-Control")))
            r = http("GET", url + "/studies/%s/series/%s/thumbnail" % (study_a, ser_a1))
            ok(r.status == 200 and r.body[:2] == b"\xff\xd8", "a series thumbnail in scope: a JPEG", (r.status, r.body[:80]))
            r = http("GET", url)
            links = r.headers.get_all("Link") or []
            ok(links[:1] == ["</s/%s/study.json>; rel=preload; as=fetch; crossorigin" % token],
               "the viewer page preloads its study.json (Link header)", links)
            ok(links[1:] == ["</s/%s/studies/%s/series/%s/instances/%s/frames/1/rendered?viewport=24,24&quality=90>; "
                             "rel=preload; as=fetch; crossorigin" % (token, study_a, ser_a1, sops[ser_a1][2])],
               "... and the image the viewer opens first: series 1's middle instance (number 2) at its own size", links)

            # the prefetch's batches: several renderings of one series in one multipart answer
            batch = url + "/studies/%s/series/%s/rendered?instances=" % (study_a, ser_a1)
            want = [sops[ser_a1][2], sops[ser_a1][0], sops[ser_a1][1]]
            r = http("GET", batch + "%s:1,%s,%s:1" % tuple(want))
            parts = multipart(r) if r.status == 200 else []
            ok(r.status == 200 and r.headers.get_content_type() == "multipart/related"
               and r.headers.get_param("type") == "image/jpeg" and r.headers.get_all("Cache-Control") == ["no-store"],
               "a batch of 3: 200 multipart/related of JPEGs, no-store", (r.status, r.headers.get("Content-Type")))
            ok([h.get("Content-Location") for h, _ in parts] == ["%s/1" % x for x in want]
               and all(h["Content-Type"] == "image/jpeg" and b == single for h, b in parts),
               "the batch: one part per instance in the order asked, each the instance's own rendering",
               [(h.get("Content-Location"), len(b)) for h, b in parts])
            hits = lambda: sum(float(ln.split()[-1]) for ln in http("GET", base + "/metrics", headers=sess).body.decode()
                               .splitlines() if ln.startswith("radshare_render_cache_hits_total"))
            h0 = hits()
            again = http("GET", batch + "%s:1,%s,%s:1" % tuple(want))
            ok(again.status == 200 and again.body == r.body and hits() - h0 == 3,
               "the same batch again: the same bytes, its 3 renderings from the render cache", (again.status, hits() - h0))
            r = http("GET", batch + "%s:1&viewport=8,8&window=600,300" % sop_a1)
            one = http("GET", url + "/studies/%s/series/%s/instances/%s/frames/1/rendered?viewport=8,8&window=600,300"
                       % (study_a, ser_a1, sop_a1))
            ok(r.status == 200 and [b for _, b in multipart(r)] == [one.body] and one.body != single,
               "the batch takes viewport and window like /rendered", r.status)
            n_out = lambda: sum(x["event"] == "access.out_of_scope" for x in
                                http("GET", base + "/api/audit?study=" + study_a, headers=sess).json()["records"])
            before = n_out()
            r = http("GET", batch + "%s,%s" % (sop_a1, sops[ser_b][0]))
            ok(r.status == 404 and n_out() == before + 1,
               "a batch with an instance of another study: 404 for the whole batch, recorded out of scope", r.status)
            r = http("GET", batch + "%s,%s" % (sop_a1, sops[ser_a2][0]))
            ok(r.status == 404, "a batch with an instance of another series of the study: 404", r.status)
            bad = [sop_a1 + ":0", sop_a1 + ":x", "1.2/../3", ",".join([sop_a1] * 33), sop_a1 + ":2", ""]
            codes = [http("GET", batch + q).status for q in bad]
            ok(codes == [400, 400, 400, 400, 400, 400] or codes == [400, 400, 404, 400, 400, 400],
               "malformed batches (frame 0, not a number, traversal, 33 items, no such frame, empty): refused", codes)
            r = http("GET", url + "/studies/%s/series/%s/instances/%s/frames/1/rendered" % (study_a, ser_a1, "1.2.3/../4"))
            ok(r.status in (400, 404), "path traversal in an instance UID refused", r.status)

            # a share of one series only
            r = http("POST", base + "/api/shares", {"study": study_a, "series": [ser_a2]}, sess)
            url2 = r.json()["url"] if r.status == 201 else base + "/s/x"
            r = http("GET", url2 + "/study.json")
            ok(r.status == 200 and [s["uid"] for s in r.json()["series"]] == [ser_a2] and r.json()["download"] is False,
               "a series subset: study.json lists only that series", r.body[:200])
            r = http("GET", url2 + "/studies/%s/series/%s/thumbnail" % (study_a, ser_a1))
            ok(r.status == 404, "a series outside the subset: 404", r.status)
            r = http("GET", url2 + "/download")
            ok(r.status == 403, "download not allowed by the share: 403 with a page saying so", r.status)

            # access code
            r = http("POST", base + "/api/shares", {"study": study_a, "access_code": "4711-0815",
                                                    "recipient": {"kind": "patient", "name": "Jane"}}, sess)
            url3 = r.json()["url"] if r.status == 201 else base + "/s/x"
            tok3 = url3.rsplit("/", 1)[-1]
            r = http("GET", url3)
            ok(r.status == 200 and len(r.headers.get_all("Link") or []) == 1,
               "with an access code: the page preloads no image (nothing is shown before the code)", r.headers.get_all("Link"))
            r = http("GET", url3 + "/study.json")
            ok(r.status == 401 and r.json().get("need_code") is True, "with an access code: 401 need_code first", r.body)
            r = http("POST", url3 + "/unlock", {"code": "0000-0000"})
            ok(r.status == 401, "a wrong code: 401", r.status)
            r = http("POST", url3 + "/unlock", {"code": "4711-0815"})
            uc = r.headers.get("Set-Cookie") or ""
            ok(r.status == 200 and "HttpOnly" in uc and "SameSite=Strict" in uc and ("Path=/s/" + tok3) in uc,
               "the right code: an HttpOnly SameSite=Strict cookie scoped to /s/{token}", uc)
            r = http("GET", url3 + "/study.json", headers={"Cookie": uc.split(";")[0]})
            ok(r.status == 200 and r.json()["study"]["uid"] == study_a, "with the unlock cookie: study.json", r.status)
            r = http("GET", url + "/study.json", headers={"Cookie": uc.split(";")[0]})
            ok(r.status == 200, "(the unlock cookie is harmless elsewhere)", r.status)

            # revocation: the very next request is refused
            r = http("DELETE", base + "/api/shares/" + sid, headers=sess)
            ok(r.status == 200 and r.json()["revoked"]["by"] == "alice", "DELETE /api/shares/{id}: revoked by alice", r.body)
            r = http("GET", url + "/study.json")
            ok(r.status == 410, "revoked: study.json 410 on the next request", r.status)
            r = http("GET", url)
            ok(r.status == 410 and b"withdrawn" in r.body and b"alice" in r.body and r.headers.get_content_type() == "text/html",
               "revoked: a 410 page saying so and whom to contact", r.body[:300])
            r = http("GET", url + "/studies/%s/series/%s/thumbnail" % (study_a, ser_a1))
            ok(r.status == 410, "revoked: images 410 too", r.status)

            # the audit trail
            r = http("GET", base + "/api/audit?study=" + study_a, headers=sess)
            recs = r.json()["records"] if r.status == 200 else []
            events = [x["event"] for x in recs]
            want = ["share.created", "share.opened", "study.viewed", "access.out_of_scope", "access.code_wrong",
                    "access.unlocked", "share.revoked", "access.refused"]
            ok(all(e in events for e in want), "GET /api/audit?study=: every kind of access recorded", sorted(set(events)))
            mine = [x for x in recs if x["share"] == sid]
            ok(mine and all(x["addr"] == "127.0.0.1" and x["ua"].startswith("Python-urllib") for x in mine),
               "records carry the share id, the address and the user agent", mine[:1])
            r = http("GET", base + "/api/audit?share=" + sid, headers=sess)
            ok(r.status == 200 and len(r.json()["records"]) == len(mine), "GET /api/audit?share=", r.status)
            r = http("GET", base + "/api/audit?study=" + study_a)
            ok(r.status == 401, "the audit API needs credentials", r.status)

            # staff password guessing: 10 failures per address per 15 min (one wrong Basic above)
            st = [http("POST", base + "/api/login", {"user": "alice", "password": "guess %d" % i}).status for i in range(12)]
            ok(st[:9] == [401] * 9 and st[9:] == [429] * 3, "failed logins from one address: 401 then 429", st)
            r = http("GET", base + "/api/shares", headers=basic("alice", "correct horse battery"))
            ok(r.status == 429 and r.headers.get("Retry-After"), "then even the right Basic password: 429 + Retry-After", r.status)
            r = http("GET", base + "/api/shares", headers=sess)
            ok(r.status == 200, "an open session is not affected", r.status)

            # guessing (a quote in the path must not break the audit record)
            r = http("GET", base + "/s/" + "A" * 43 + "/a%22b%5C")
            ok(r.status == 404, "an unknown token with a quote in the path: 404", r.status)
            statuses = []
            for i in range(40):
                statuses.append(http("GET", base + "/s/" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
                                     + "/study.json").status)
            ok(statuses.count(429) >= 19 and statuses[-1] == 429 and all(s in (404, 429) for s in statuses),
               "40 guessed tokens from one address: 404 then 429", statuses)
            r = http("GET", url2 + "/study.json")
            ok(r.status == 429 and r.headers.get("Retry-After"), "the throttled address is refused even a valid link (429 + Retry-After)",
               r.status)

            evs = []
            for nm in sorted(os.listdir(os.path.join(data, "audit"))):
                if nm.endswith(".log"):
                    evs += [json.loads(l)["event"] for l in open(os.path.join(data, "audit", nm))]
            ok(evs.count("access.unknown") + evs.count("access.throttled") == 42,
               "every refused link request is in the audit trail (42)", (evs.count("access.unknown"), evs.count("access.throttled")))
            blob = b""
            for root, _, names in os.walk(data):
                for nm in names:
                    if nm.startswith("state.sqlite") or root.endswith("audit"):
                        blob += open(os.path.join(root, nm), "rb").read()
            ok(all(t.encode() not in blob for t in (token, tok3)) and sid.encode() in blob,
               "no token in state.sqlite or the audit files (the share id is there)")
            r = subprocess.run([RADSHARE, "audit", "verify", "--data", data], capture_output=True, text=True)
            ok(r.returncode == 0, "radshare audit verify while serve runs: intact", r.stdout + r.stderr)
            srv.send_signal(signal.SIGTERM)
            ok(srv.wait(timeout=30) == 0, "serve exits cleanly on SIGTERM (and, under SAN, without leak reports)")
            log.close()
            text = open(os.path.join(tmp, "server.log"), "rb").read()
            ok(b"/s/-/study.json" in text and all(t.encode() not in text for t in (token, tok3)),
               "the server log names share requests without their token", text[-300:])
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait()
    print("1..%d" % tap.n)
    return tap.status()


if __name__ == "__main__":
    sys.exit(main())
