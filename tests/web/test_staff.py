#!/usr/bin/python3
"""test_staff.py - the staff side with real parts: `radshare serve` with an aiosmtpd SMTP relay and
an MLLP listener that rejects (AR) started here, a recipients directory, studies made with pydicom
and stored with DCMTK storescu in one association (one with HTML in the patient name, and 130 small
ones to page through).

Before any account exists: the loopback bootstrap lets 127.0.0.1 in, but not a request whose Host
names another machine (DNS rebinding), and GET /api/session says the page is open.
A French (fr-BE) browser then sees the page in French, pages through the studies newest first,
creates the first admin with the bootstrap banner's form, and as that admin adds the staff accounts
(one disabled); behind it: the bootstrap closed (loopback without credentials: 401), user.* audit
records without any password, a radiologist refused (403) on the account routes, the disabled
account refused at sign-in.
Then tests/web/staff_check.mjs drives the page in headless Chromium (sign-in, search, report sent
to the relay, delivery shown, the report in the viewer as text, patient handout, revocation, phone)
and this script checks behind it: the e-mail the relay got, study.json's report (escaped JSON), the
share.delivered record, the handout's QR code decoded by zbarimg (zbar-tools) to the very link the
server made, that link opening, the revoked link refused (410). share.delivery_failed for an ORU the
receiver rejects; cross-site POSTs refused (Origin, Sec-Fetch-Site) while same-site ones pass;
`radshare audit verify` accepts the chain with the new records. Prints TAP.
Optional: SHOTS=DIR writes the page's screenshots there (docs/screenshots)."""
import base64
import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import rstest  # noqa: E402
from rstest import RADSHARE, free_port, tap  # noqa: E402
from peers import Mllp, smtp_server  # noqa: E402

ok = tap


def http(method, url, body=None, headers=None):
    r = rstest.http(method, url, body, headers)
    return r.status, r.body

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USER, PASSWORD = "dr.lambert", "a long staff password"
ADMIN, ADMIN_PASSWORD = "chef.dumont", "the first admin's password"
NEW_PASSWORD = "a newer staff password"
N_PAGING = 130  # small studies to page through (the page shows 50 at a time)


def instance(path, study, series, sno, ino, pn, desc, date, modality, pid, birth):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = pn, pid, birth, "F"
    ds.StudyDate, ds.StudyTime, ds.StudyDescription, ds.AccessionNumber = date, "101500", desc, "A" + pid[-4:]
    ds.ReferringPhysicianName = "Peeters^Anne"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, sno, ino
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = 64
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes((i * 5 + ino) & 0xFF for i in range(64 * 64 * 2))
    ds.save_as(path, write_like_original=False)


STUDIES = [  # name, description, date, modality, patient id, birth date, series, images per series
    ("Dupont^Marie", "MRI left knee", "20261201", "MR", "PID-1042", "19800131", 2, 3),
    ("Martin^Paul", "CT chest with contrast", "20261130", "CT", "PID-2210", "19571103", 1, 4),
    ("Janssens^Sofie", "MRI lumbar spine", "20261128", "MR", "PID-3307", "19921212", 1, 2),
    ("Leroy^Luc", "X-ray right wrist", "20261127", "CR", "PID-4480", "20010704", 1, 1),
    ("Evil<img src=x onerror=window.__xss=1>^Eve", "CT head", "20261120", "CT", "PID-6666", "19700101", 1, 1),
]


def tiny(path, i):
    """A small one-instance study for the paging checks: 8x8 pixels, dates one day apart."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID = "Paging^P%03d" % i, "PG%03d" % i
    day = time.gmtime(time.mktime((2025, 1, 1, 12, 0, 0, 0, 0, 0)) + 86400 * ((i * 37) % N_PAGING))  # stored out of date order
    ds.StudyDate, ds.StudyTime, ds.Modality = time.strftime("%Y%m%d", day), "%02d0000" % (i % 24), "OT"
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", 8, 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(range(64))
    ds.save_as(path, write_like_original=False)


def make_studies(tmp):
    files, uids = [], {}
    for i in range(N_PAGING):
        f = os.path.join(tmp, "paging-%03d.dcm" % i)
        tiny(f, i)
        files.append(f)
    for pn, desc, date, mod, pid, birth, nser, nimg in STUDIES:
        st = generate_uid()
        uids[pn] = st
        for s in range(1, nser + 1):
            se = generate_uid()
            for k in range(1, nimg + 1):
                f = os.path.join(tmp, "%s-%d-%d.dcm" % (pid, s, k))
                instance(f, st, se, s, k, pn, desc, date, mod, pid, birth)
                files.append(f)
    return files, uids


def browser(base, args):
    """tests/web/staff_check.mjs: its TAP lines become ours; returns the facts it printed ("## {json}")."""
    p = subprocess.run(["node", os.path.join(ROOT, "tests", "web", "staff_check.mjs"), base] + args,
                       capture_output=True, text=True, timeout=400)
    facts = {}
    for line in p.stdout.splitlines():
        m = re.match(r"(not )?ok \d+ - (.*)", line)
        if m:
            ok(not m.group(1), "browser: " + m.group(2).split(" # ")[0], m.group(2))
        elif line.startswith("## "):
            facts.update(json.loads(line[3:]))
    ok(p.returncode == 0, "staff_check.mjs %s ran to the end" % ("(no account)" if args[0] == "-" else "(signed in)"),
       p.stderr[-600:])
    return facts


def audit(base, auth, q):
    s, b = http("GET", base + "/api/audit?" + q, headers=auth)
    return json.loads(b)["records"] if s == 200 else []


def wait_for(pred, secs=30):
    end = time.time() + secs
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    return pred()


def main():
    tmp = tempfile.mkdtemp(prefix="rs-staff-")
    data = os.path.join(tmp, "data")
    files, uids = make_studies(tmp)
    study = uids["Dupont^Marie"]
    dport, hport, sport, mport = free_port(), free_port(), free_port(), free_port()
    base = "http://127.0.0.1:%d" % hport
    ctl, box = smtp_server(sport)
    mllp = Mllp(mport, default="AR")  # every ORU rejected for good
    directory = os.path.join(tmp, "recipients.conf")
    with open(directory, "w") as f:
        f.write("[PEETERS^ANNE]\nname = Dr Anne Peeters\nemail = anne.dir@cabinet.example\n")
    log = open(os.path.join(tmp, "server.log"), "wb")
    srv = subprocess.Popen([RADSHARE, "serve", "--data", data, "--dicom-port", str(dport), "--http-port", str(hport),
                            "--public-url", base, "--smtp", "smtp://127.0.0.1:%d" % sport,
                            "--mail-from", "reports@radshare.example.org", "--directory", directory, "--timeout", "10"],
                           stdout=log, stderr=log)
    try:
        up = wait_for(lambda: subprocess.run(["echoscu", "-to", "2", "-aec", "RADSHARE", "127.0.0.1", str(dport)],
                                             capture_output=True).returncode == 0, 15)
        ok(up, "radshare serve is up")
        t0 = time.time()
        p = subprocess.run(["storescu", "-aec", "RADSHARE", "127.0.0.1", str(dport)] + files, capture_output=True)
        ok(p.returncode == 0, "storescu stores %d instances of %d studies" % (len(files), len(STUDIES) + N_PAGING), p.stderr[-300:])
        print("# storescu: %d instances in %.2f s" % (len(files), time.time() - t0))
        s, b = http("GET", base + "/api/studies?limit=1000")
        rows = json.loads(b) if s == 200 else []
        dates = ["%s%s" % (r.get("date", ""), r.get("time", "")) for r in rows]
        ok(len(rows) == len(STUDIES) + N_PAGING and dates == sorted(dates, reverse=True), "/api/studies: all studies, newest first", dates[:5])
        s, b = http("GET", base + "/api/studies?limit=50&offset=100")
        ok(s == 200 and [r["uid"] for r in json.loads(b)] == [r["uid"] for r in rows[100:150]], "/api/studies: limit and offset page through that order")

        # ---- before any account: the loopback bootstrap, and its limits ----
        s, b = http("GET", base + "/api/session")
        ok(s == 200 and json.loads(b) == {"user": None, "open": True}, "no account yet: /api/session says open", b)
        s, b = http("GET", base + "/staff")
        ok(s == 200 and b"staff.js" in b, "GET /staff serves the page", s)
        s, _ = http("GET", base + "/api/studies")
        ok(s == 200, "no account yet: loopback is staff", s)
        s, _ = http("GET", base + "/api/studies", headers={"Host": "rebound.example.com:%d" % hport})
        ok(s == 401, "no account yet: a Host naming another machine is not (DNS rebinding)", s)
        s, _ = http("GET", base + "/api/studies", headers={"Host": "localhost:%d" % hport})
        ok(s == 200, "no account yet: Host localhost is", s)
        s, _ = http("POST", base + "/api/shares", {"study": study}, {"Origin": "http://evil.example"})
        ok(s == 403, "no account yet: a cross-site POST (Origin) is refused", s)
        d = subprocess.run([os.path.join(ROOT, "tools", "node-deps.sh")], capture_output=True, text=True, timeout=300)
        ok(d.returncode == 0, "playwright-core (tools/node-deps.sh)", d.stderr[-300:])
        s, _ = http("GET", base + "/api/users")
        ok(s == 403, "no account yet: loopback may not list accounts (only create the first admin)", s)
        s, _ = http("POST", base + "/api/users", {"name": "x.admin", "password": "long enough pass", "role": "admin"},
                    {"Host": "rebound.example.com:%d" % hport})
        ok(s == 401, "no account yet: the bootstrap's POST /api/users refused for a rebound Host", s)
        s, _ = http("POST", base + "/api/users", {"name": "x.admin", "password": "long enough pass"}, {"Origin": "http://evil.example"})
        ok(s == 403, "no account yet: a cross-site POST /api/users is refused", s)
        s, b = http("POST", base + "/api/users", {"name": "x.admin", "password": "too short", "role": "admin"})
        ok(s == 400 and b"characters" in b, "no account yet: the bootstrap applies the password rule (400)", (s, b))
        s, b = http("POST", base + "/api/users", {"name": "x.admin", "password": "long enough pass", "role": "radiologist"})
        ok(s == 400, "no account yet: the first account must be an admin", (s, b))
        shots = os.environ.get("SHOTS")
        shot_args = ["--shots", os.path.abspath(shots)] if shots else []
        browser(base, ["-", "-", os.path.join(tmp, "out"), "--admin", ADMIN, ADMIN_PASSWORD, "--staff", USER, PASSWORD,
                       "--studies", str(len(STUDIES) + N_PAGING)] + shot_args)

        # ---- the bootstrap is over; the accounts the admin made on the page ----
        basic = lambda u, pw: {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (u, pw)).encode()).decode()}
        auth, admin = basic(USER, PASSWORD), basic(ADMIN, ADMIN_PASSWORD)
        s, _ = http("GET", base + "/api/studies")
        ok(s == 401, "bootstrap over: a loopback request without credentials gets 401", s)
        s, _ = http("POST", base + "/api/users", {"name": "late.admin", "password": "long enough pass", "role": "admin"})
        ok(s == 401, "bootstrap over: no second first admin", s)
        r = subprocess.run([RADSHARE, "user", "list", "--data", data], capture_output=True, text=True)
        listed = {l.split()[0]: l.split()[1:3] for l in r.stdout.splitlines() if l.strip()}
        ok(listed == {ADMIN: ["admin", "active"], USER: ["radiologist", "active"], "dr.gone": ["radiologist", "disabled"]},
           "radshare user list: the admin, the radiologist, the disabled account", r.stdout)
        s, _ = http("POST", base + "/api/login", {"user": "dr.gone", "password": "a password for a leaver"})
        ok(s == 401, "the disabled account cannot sign in", s)
        s, _ = http("GET", base + "/api/studies", headers=basic("dr.gone", "a password for a leaver"))
        ok(s == 401, "... nor use Basic", s)
        for m, path, body in (("GET", "/api/users", None), ("POST", "/api/users", {"name": "x.y", "password": "long enough pass", "role": "admin"}),
                              ("POST", "/api/users/dr.gone/enable", {}), ("POST", "/api/users/%s/password" % ADMIN, {"password": "long enough pass"})):
            s, _ = http(m, base + path, body, auth)
            ok(s == 403, "a radiologist: %s %s is 403" % (m, path), s)
        s, b = http("GET", base + "/api/users", headers=admin)
        users = {u["name"]: u for u in json.loads(b)["users"]} if s == 200 else {}
        ok(set(users) == {ADMIN, USER, "dr.gone"} and users["dr.gone"]["disabled"] and users[USER]["role"] == "radiologist"
           and all("pw" not in json.dumps(u) for u in users.values()), "GET /api/users (admin): the accounts, no hash", b)
        s, b = http("POST", base + "/api/users", {"name": "short.pw", "password": "123456789", "role": "radiologist"}, admin)
        ok(s == 400 and b"10 to 1024 characters" in b, "POST /api/users: the password rule of `radshare user add` (400)", (s, b))
        s, b = http("POST", base + "/api/users", {"name": "bad name!", "password": "long enough pass", "role": "radiologist"}, admin)
        ok(s == 400, "POST /api/users: the name rule (400)", (s, b))
        s, b = http("POST", base + "/api/users", {"name": USER, "password": "long enough pass", "role": "radiologist"}, admin)
        ok(s == 400 and b"exists" in b, "POST /api/users: an existing name (400)", (s, b))
        s, _ = http("POST", base + "/api/users/%s/disable" % ADMIN, {}, admin)
        ok(s == 400, "an admin cannot disable their own account", s)
        s, _ = http("POST", base + "/api/users/nobody/disable", {}, admin)
        ok(s == 404, "disabling an unknown account: 404", s)
        s, _ = http("POST", base + "/api/users/dr.gone/enable", {}, dict(admin, Origin="http://evil.example"))
        ok(s == 403, "a cross-site POST on the account routes, with admin credentials: 403", s)
        s, _ = http("POST", base + "/api/users/dr.gone/password", {"password": "reset by the admin"}, admin)
        ok(s == 200, "an admin resets a password", s)
        s, _ = http("POST", base + "/api/users/dr.gone/enable", {}, admin)
        s2, _ = http("POST", base + "/api/login", {"user": "dr.gone", "password": "reset by the admin"})
        ok(s == 200 and s2 == 200, "enabled again, the account signs in with the reset password", (s, s2))
        s, _ = http("POST", base + "/api/users/dr.gone/disable", {}, admin)
        ok(s == 200, "... and is disabled again", s)
        recs = []
        logs = sorted(f for f in os.listdir(os.path.join(data, "audit")) if f.endswith(".log"))
        for f in logs:
            recs += [json.loads(l) for l in open(os.path.join(data, "audit", f)) if l.strip()]
        ev = [(r["event"], r.get("detail", {}).get("user"), r.get("detail", {}).get("by")) for r in recs if r["event"].startswith("user.")]
        ok(ev[:4] == [("user.created", ADMIN, "local"), ("user.created", USER, ADMIN), ("user.created", "dr.gone", ADMIN), ("user.disabled", "dr.gone", ADMIN)]
           and ("user.password_changed", "dr.gone", ADMIN) in ev and ("user.enabled", "dr.gone", ADMIN) in ev,
           "audit: user.created (the first by the bootstrap), user.disabled, user.password_changed, user.enabled", ev)
        raw = b"".join(open(os.path.join(data, "audit", f), "rb").read() for f in logs)
        ok(all(pw.encode() not in raw for pw in (ADMIN_PASSWORD, PASSWORD, "a password for a leaver", "reset by the admin")),
           "audit: no password in any record")
        s, b = http("GET", base + "/api/session")
        ok(s == 200 and json.loads(b) == {"user": None, "open": False}, "with an account: /api/session is closed", b)
        s, b = http("GET", base + "/api/studies", headers={"X-Requested-With": "radshare-staff"})
        ok(s == 401, "the page's requests get 401 ...", s)
        req = urllib.request.Request(base + "/api/studies", headers={"X-Requested-With": "radshare-staff"})
        try:
            urllib.request.urlopen(req, timeout=10)
            challenged = True
        except urllib.error.HTTPError as e:
            challenged = "WWW-Authenticate" in e.headers
        ok(not challenged, "... without a Basic challenge (no browser dialog over the page)")
        s, _ = http("GET", base + "/api/studies")
        ok(s == 401, "other clients get the challenge", s)
        s, b = http("GET", base + "/api/studies/%s/reports" % study, headers=auth)
        j = json.loads(b) if s == 200 else {}
        ok(j.get("recipient") == {"name": "Dr Anne Peeters", "email": "anne.dir@cabinet.example", "hl7": ""},
           "GET reports suggests the directory's recipient for the referring physician", b)

        # ---- cross-site requests with credentials ----
        for hdr, what in (({"Origin": "http://evil.example"}, "Origin of another site"),
                          ({"Origin": "null"}, "Origin null"),
                          ({"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site: cross-site")):
            s, _ = http("POST", base + "/api/shares", {"study": study}, dict(auth, **hdr))
            ok(s == 403, "POST /api/shares with Basic and %s: 403" % what, s)
        s, _ = http("POST", base + "/api/login", {"user": USER, "password": PASSWORD}, {"Origin": "http://evil.example"})
        ok(s == 403, "a cross-site login is refused", s)
        s, b = http("POST", base + "/api/shares", {"study": study, "recipient": {"name": "Same site"}},
                    dict(auth, Origin=base, **{"Sec-Fetch-Site": "same-origin"}))
        ok(s == 201 and "qr_svg" not in json.loads(b), "a same-origin POST passes (no QR unless asked)", (s, b[:200]))
        s, b = http("POST", base + "/api/shares", {"study": study, "recipient": {"kind": "patient"}, "qr": True}, auth)
        j = json.loads(b) if s == 201 else {}
        ok(j.get("qr_svg", "").startswith("<svg") and "shape-rendering" in j.get("qr_svg", ""),
           "\"qr\": true gives the link as an SVG QR code", b[:200])
        print("# qr_svg: %d bytes for a %d-character link" % (len(j.get("qr_svg", "")), len(j.get("url", ""))))

        # ---- the page in the browser ----
        facts = browser(base, [USER, PASSWORD, os.path.join(tmp, "out"), "--new-password", NEW_PASSWORD] + shot_args)
        ok(facts.get("report_url"), "staff_check.mjs handed over the links it made", facts)
        s, _ = http("GET", base + "/api/studies", headers=auth)
        ok(s == 401, "the old password no longer works", s)
        auth = basic(USER, NEW_PASSWORD)

        # ---- behind the page ----
        rurl, rshare = facts.get("report_url", ""), facts.get("report_share", "")
        ok(len(box.messages) == 1 and box.messages[0][1] == ["anne.dir@cabinet.example"],
           "the relay received one e-mail, for the directory's address", [m[1] for m in box.messages])
        if box.messages:
            msg = email.message_from_bytes(box.messages[0][2], policy=email.policy.default)
            text = msg.get_body(("plain",)).get_content()
            ok(rurl and rurl in text and "No meniscal tear" in text, "the e-mail holds the report and its link", text[:300])
        recs = audit(base, auth, "share=" + rshare) if rshare else []
        dl = [r for r in recs if r["event"] == "share.delivered"]
        ok(len(dl) == 1 and dl[0]["detail"]["channel"] == "email" and dl[0]["detail"]["recipient"] == "anne.dir@cabinet.example"
           and dl[0]["study"] == study, "share.delivered in the share's audit trail (channel, recipient, study)", recs)
        events = [r["event"] for r in recs]
        ok(events.index("share.created") < events.index("share.delivered") < events.index("share.opened") < events.index("share.revoked")
           if all(e in events for e in ("share.created", "share.delivered", "share.opened", "share.revoked")) else False,
           "the share's history: created, delivered, opened, revoked", events)
        s, b = http("GET", rurl + "/study.json") if rurl else (0, b"")
        ok(s == 410, "the revoked report link: study.json 410", s)

        png = facts.get("qr_png", "")
        z = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", png], capture_output=True, text=True) \
            if png and shutil.which("zbarimg") else None
        decoded = z.stdout.strip() if z else ""
        ok(decoded and decoded == facts.get("patient_url"), "zbarimg decodes the printed handout's QR code to the patient link",
           (decoded, facts.get("patient_url"), z.stderr if z else "no zbarimg"))
        s, b = http("GET", decoded + "/study.json") if decoded.startswith(base) else (0, b"")
        ok(s == 401 and json.loads(b).get("code") == "birth_date", "that link opens the patient share (asking the date of birth)", (s, b))
        s, b = http("POST", decoded + "/unlock", {"code": "1980-01-31"}) if decoded.startswith(base) else (0, b"")
        ok(s == 200, "the birth date unlocks it", (s, b))

        # study.json of a report share carries the report, escaped
        s, b = http("POST", base + "/api/studies/%s/reports" % study,
                    {"text": "Line 1 </script><script>alert(1)</script>", "recipient": {"name": "Dr X", "email": "x@cabinet.example"}}, auth)
        url2 = json.loads(b)["share"]["url"] if s == 201 else ""
        s, b = http("GET", url2 + "/study.json") if url2 else (0, b"")
        rep = json.loads(b).get("report") if s == 200 else None
        ok(rep and rep["text"] == "Line 1 </script><script>alert(1)</script>" and rep["author"] == USER
           and re.match(r"^\d{8}$", rep.get("date", "")), "study.json: the report (text, author, date)", b[:400])
        ok(b"<script>" not in b and b"\\u003c/script>" in b, "study.json escapes < in the report", b[:400])
        s, b = http("POST", base + "/api/shares", {"study": study, "recipient": {"name": "No report"}}, auth)
        url3 = json.loads(b)["url"] if s == 201 else ""
        s, b = http("GET", url3 + "/study.json") if url3 else (0, b"")
        ok(s == 200 and json.loads(b)["report"] is None, "a share without report: \"report\": null", b[:200])

        # a permanent failure
        s, b = http("POST", base + "/api/studies/%s/reports" % study,
                    {"text": "For the RIS", "recipient": {"name": "RIS", "hl7": "127.0.0.1:%d" % mport}}, auth)
        fid = json.loads(b)["share"]["id"] if s == 201 else ""
        got = wait_for(lambda: [r for r in audit(base, auth, "share=" + fid) if r["event"] == "share.delivery_failed"], 30) if fid else []
        ok(len(got) == 1 and got[0]["detail"]["channel"] == "hl7" and "AR" in got[0]["detail"]["error"],
           "an ORU rejected with AR: share.delivery_failed with the error", got)

        v = subprocess.run([RADSHARE, "audit", "verify", "--data", data], capture_output=True, text=True)
        ok(v.returncode == 0, "radshare audit verify accepts the chain with the delivery records", v.stdout + v.stderr)
    finally:
        srv.terminate()
        try:
            rc = srv.wait(20)
        except subprocess.TimeoutExpired:
            srv.kill()
            rc = None
        log.flush()
        text = open(os.path.join(tmp, "server.log"), errors="replace").read()
        ok(rc == 0 and "Sanitizer" not in text and "runtime error" not in text,
           "radshare serve stops cleanly on SIGTERM (exit 0, no sanitizer report)", (rc, text[-800:]))
        ctl.stop()
        mllp.close()
        log.close()
        if tap.failed:
            print("# server log: " + open(os.path.join(tmp, "server.log"), errors="replace").read()[-1500:].replace("\n", "\n# "))
        shutil.rmtree(tmp, ignore_errors=True)
    print("# %d passed, %d failed" % (tap.n - tap.failed, tap.failed))
    return tap.status()


if __name__ == "__main__":
    sys.exit(main())
