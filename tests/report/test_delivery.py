#!/usr/bin/python3
"""Reports delivered for real: an aiosmtpd SMTP server and MLLP listeners started here receive
what `radshare report send/deliver` sends. Checks the e-mail (headers, both MIME parts, HTML
escaping, no access code), the ORU^R01 (PID, OBR, OBX TX lines, OBX RP link, HL7 escaping),
retries with back-off after AE / a dropped connection, AR and SMTP 5xx as permanent failures,
a SIGKILL while the relay is down then exactly one delivery, cancellation, the recipients
directory, and patient data taken from the archive index. TAP output.
"""
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import tempfile
import time


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rstest import RADSHARE, free_port, tap  # noqa: E402
from peers import Mllp, smtp_server  # noqa: E402

report = tap

TMP = tempfile.mkdtemp(prefix="rs-report-")
CODE = "Q7Z4K9M2"
LINK = "https://radshare.example.org/s/AbC-dEf_123456789012345678"


def run(args, timeout=90):
    p = subprocess.run([RADSHARE, "report"] + args, capture_output=True, timeout=timeout)
    with open(os.path.join(TMP, "cli.log"), "ab") as f:
        f.write(b"$ report " + " ".join(args).encode() + b"\n" + p.stdout + p.stderr)
    return p


def deliveries(p):
    try:
        return json.loads(p.stdout)
    except ValueError:
        return []


def segments(msg):
    out = {}
    for seg in msg.split("\r"):
        if seg:
            out.setdefault(seg[:3], []).append(seg)
    return out


def field(seg, i):
    """HL7 field i of a segment (MSH counts its field separator as MSH-1)."""
    parts = seg.split("|")
    if seg.startswith("MSH"):
        i -= 1
    return parts[i] if i < len(parts) else ""


def unescape(v):
    out, i = "", 0
    table = {"F": "|", "S": "^", "T": "&", "R": "~", "E": "\\"}
    while i < len(v):
        if v[i] == "\\":
            j = v.index("\\", i + 1)
            out += table[v[i + 1:j]]
            i = j + 1
        else:
            out += v[i]
            i += 1
    return out


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


REPORT_TEXT = ("MRI of the left knee.\n"
               "Findings: no meniscal tear <script>alert('report')</script>\n"
               "Escapes: a|b^c&d~e\\f\n"
               "Conclusion: normal examination, Müller sign negative.\n")
PATIENT = "MÜLLER^Jürgen<script>alert('pn')</script>"


def send(data, extra, wait="20"):
    return run(["send", "--data", data, "--study", "1.2.826.0.1.3680043.8.498.1", "--text-file",
                write("report.txt", REPORT_TEXT), "--link", LINK, "--to-name", "Dr Émile Dupont",
                "--mail-from", "reports@radshare.example.org", "--patient-name", PATIENT,
                "--patient-id", "PAT-001", "--birth-date", "19700314", "--sex", "F",
                "--accession", "ACC42", "--procedure", "MRI knee left", "--study-date", "20261201",
                "--author", "Dr Rad", "--wait", wait] + extra)


def test_email_and_hl7():
    data = os.path.join(TMP, "d1")
    sp, mp = free_port(), free_port()
    ctl, box = smtp_server(sp)
    ml = Mllp(mp)
    try:
        p = send(data, ["--to-email", "emile.dupont@cabinet.example", "--hl7", f"127.0.0.1:{mp}",
                        "--hl7-app", "GPAPP", "--hl7-facility", "CABINET", "--smtp", f"smtp://127.0.0.1:{sp}",
                        "--needs-code", "--access-code", CODE])
        ds = deliveries(p)
        report(p.returncode == 0 and len(ds) == 2 and all(d["status"] == "sent" and d["attempts"] == 1 for d in ds),
               "send: e-mail and HL7 deliveries both sent at the first attempt", p.stdout + p.stderr)
        report(len(box.messages) == 1, "the SMTP server received one message", str(len(box.messages)))
        if not box.messages:
            return
        frm, rcpt, raw = box.messages[0]
        report(frm == "reports@radshare.example.org" and rcpt == ["emile.dupont@cabinet.example"],
               "SMTP envelope sender and recipient", f"{frm} {rcpt}")
        m = email.message_from_bytes(raw, policy=email.policy.default)
        report(all(m[h] for h in ("Date", "Message-ID", "From", "To", "Subject", "MIME-Version")),
               "headers Date, Message-ID, From, To, Subject, MIME-Version present", str(m.keys()))
        mid = [d for d in ds if d["channel"] == "email"][0]["message_id"]
        report(m["Message-ID"] == f"<{mid}@radshare.example.org>", "Message-ID is the delivery's id", m["Message-ID"])
        report(b"=?UTF-8?B?" in raw.split(b"\r\n\r\n")[0] and "MÜLLER" in str(m["Subject"]) and
               "Jürgen" in str(m["Subject"]), "non-ASCII subject RFC 2047-encoded, decodes to the patient name",
               str(m["Subject"]))
        report(m["To"].addresses[0].display_name == "Dr Émile Dupont", "To display name (encoded) decodes",
               str(m["To"]))
        report(email.utils.parsedate_to_datetime(m["Date"]) is not None, "Date header parses as RFC 5322")
        report(m.get_content_type() == "multipart/alternative", "multipart/alternative", m.get_content_type())
        parts = {p.get_content_type(): p.get_content() for p in m.iter_parts()}
        plain, html = parts.get("text/plain", ""), parts.get("text/html", "")
        report(LINK in plain and "Findings: no meniscal tear" in plain, "text/plain part has the report and the link")
        report(f'href="{LINK}"' in html, "text/html part has the link as a href")
        report("<script>" not in html and "&lt;script&gt;alert(&#39;report&#39;)&lt;/script&gt;" in html,
               "report text HTML-escaped in the HTML part")
        report("&lt;script&gt;alert(&#39;pn&#39;)" in html and "Jürgen" in html,
               "patient name HTML-escaped in the HTML part")
        report(CODE not in raw.decode("utf-8", "replace") and CODE not in plain and CODE not in html,
               "the access code is nowhere in the e-mail")
        report("sent to you separately" in plain, "the text says the access code comes separately")

        report(len(ml.messages) == 1, "the MLLP listener received one ORU", str(len(ml.messages)))
        if not ml.messages:
            return
        msg = ml.messages[0][1]
        s = segments(msg)
        msh = s["MSH"][0]
        hid = [d for d in ds if d["channel"] == "hl7"][0]["message_id"]
        report(field(msh, 9) == "ORU^R01^ORU_R01" and field(msh, 12) == "2.5" and field(msh, 10) == hid and
               field(msh, 5) == "GPAPP" and field(msh, 6) == "CABINET" and field(msh, 3) == "RADSHARE",
               "MSH: ORU^R01, v2.5, control id, receiving app/facility", msh)
        pid = s["PID"][0]
        report(field(pid, 3) == "PAT-001" and field(pid, 7) == "19700314" and field(pid, 8) == "F",
               "PID-3 id, PID-7 birth date, PID-8 sex", pid)
        xpn = field(pid, 5).split("^")
        report(unescape(xpn[0]) == "MÜLLER" and unescape(xpn[1]) == "Jürgen<script>alert('pn')</script>",
               "PID-5 patient name (family^given)", pid)
        obr = s["OBR"][0]
        report(field(obr, 2) == "ACC42" and field(obr, 3) == "1.2.826.0.1.3680043.8.498.1" and
               unescape(field(obr, 4).split("^")[1]) == "MRI knee left" and field(obr, 7) == "20261201",
               "OBR: accession, study UID, procedure, date", obr)
        obx = s["OBX"]
        tx = [unescape(field(o, 5)) for o in obx if field(o, 2) == "TX"]
        expect = REPORT_TEXT.rstrip("\n").split("\n")
        report(tx[:len(expect)] == expect, "OBX TX: the report one line per OBX, escapes undone exactly", str(tx))
        report(any(LINK in line for line in tx), "OBX TX: the link sentence is in the text")
        report("a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f" in msg, "HL7 delimiters escaped as \\F\\ \\S\\ \\T\\ \\R\\ \\E\\")
        rp = [o for o in obx if field(o, 2) == "RP"]
        comps = field(rp[0], 5).split("^") if rp else []
        report(len(rp) == 1 and unescape(comps[0]) == LINK and comps[1:] == ["RADSHARE", "TEXT", "HTML"],
               "OBX RP: pointer^application^type^subtype with the link", str(rp))
        report(CODE not in msg, "the access code is not in the ORU")
        report(all(field(o, 1) == str(i + 1) for i, o in enumerate(obx)), "OBX set ids 1..n")
        st = run(["status", "--data", data, "--study", "1.2.826.0.1.3680043.8.498.1"])
        report(st.returncode == 0 and sorted(d["status"] for d in deliveries(st)) == ["sent", "sent"],
               "report status shows both deliveries sent", st.stdout)
    finally:
        ctl.stop()
        ml.close()


def test_access_code_refused():
    data = os.path.join(TMP, "d2")
    p = run(["send", "--data", data, "--study", "1.2.3", "--text-file", write("c.txt", f"Code is {CODE}\n"),
             "--link", LINK, "--to-name", "X", "--to-email", "x@example.org", "--access-code", CODE, "--wait", "0"])
    st = run(["status", "--data", data])
    report(p.returncode == 2 and b"access code" in p.stderr and deliveries(st) == [],
           "a report text holding the access code is refused, nothing queued", p.stderr.decode())


def hl7_send(data, port, wait="20", extra=()):
    return run(["send", "--data", data, "--study", "1.2.3.4", "--text-file", write("h.txt", "Line 1\nLine 2\n"),
                "--link", LINK, "--to-name", "GP", "--hl7", f"127.0.0.1:{port}", "--patient-id", "P9",
                "--wait", wait, "--retry-base-ms", "300", "--retry-cap-ms", "5000"] + list(extra))


def test_hl7_retries():
    data = os.path.join(TMP, "d3")
    port = free_port()
    ml = Mllp(port, ["AE", "drop", "wrongid", "AA"])
    try:
        p = hl7_send(data, port)
        ds = deliveries(p)
        report(p.returncode == 0 and ds and ds[0]["status"] == "sent" and ds[0]["attempts"] == 4,
               "HL7: AE, dropped connection, wrong MSA-2 each retried; sent at attempt 4", p.stdout + p.stderr)
        times = [t for t, _ in ml.messages]
        gaps = [b - a for a, b in zip(times, times[1:])]
        # back-off: 300 ms, 600, 1200 (each jittered to 50-100 %)
        report(len(gaps) == 3 and gaps[0] >= 0.14 and gaps[1] >= 0.29 and gaps[2] >= 0.59 and gaps[2] > gaps[0],
               "exponential back-off between attempts", str(gaps))
        ids = {field(segments(m)["MSH"][0], 10) for _, m in ml.messages}
        report(len(ids) == 1 and len(ml.messages) == 4, "every retry carries the same MSH-10", str(ids))
    finally:
        ml.close()
    data = os.path.join(TMP, "d3b")
    port = free_port()
    ml = Mllp(port, ["AR"])
    try:
        p = hl7_send(data, port, wait="5")
        ds = deliveries(p)
        report(p.returncode == 1 and ds and ds[0]["status"] == "failed" and ds[0]["attempts"] == 1 and
               "AR" in ds[0]["last_error"] and len(ml.messages) == 1,
               "HL7 AR: failed for good after one attempt, error recorded", p.stdout)
    finally:
        ml.close()


def test_smtp_permanent():
    data = os.path.join(TMP, "d4")
    sp = free_port()
    ctl, box = smtp_server(sp)
    try:
        p = run(["send", "--data", data, "--study", "1.2.3", "--text-file", write("b.txt", "text\n"), "--link", LINK,
                 "--to-name", "B", "--to-email", "bounce@example.org", "--smtp", f"smtp://127.0.0.1:{sp}",
                 "--mail-from", "r@example.org", "--wait", "5", "--retry-base-ms", "100"])
        ds = deliveries(p)
        report(p.returncode == 1 and ds and ds[0]["status"] == "failed" and ds[0]["attempts"] == 1 and
               "550" in ds[0]["last_error"] and not box.messages,
               "SMTP 550 on RCPT: failed for good after one attempt", p.stdout)
    finally:
        ctl.stop()


def test_restart():
    data = os.path.join(TMP, "d5")
    sp = free_port()
    args = ["send", "--data", data, "--study", "1.2.5", "--text-file", write("r.txt", "restart\n"), "--link", LINK,
            "--to-name", "R", "--to-email", "r@cabinet.example", "--smtp", f"smtp://127.0.0.1:{sp}",
            "--mail-from", "reports@radshare.example.org", "--wait", "60", "--retry-base-ms", "200",
            "--retry-cap-ms", "400"]
    proc = subprocess.Popen([RADSHARE, "report"] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    attempts = 0
    for _ in range(100):
        time.sleep(0.1)
        ds = deliveries(run(["status", "--data", data]))
        attempts = ds[0]["attempts"] if ds else 0
        if attempts >= 2:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ds = deliveries(run(["status", "--data", data]))
    report(attempts >= 2 and ds and ds[0]["status"] == "pending" and "connect" in ds[0]["last_error"].lower(),
           "relay down: the delivery stays pending with its error after SIGKILL", str(ds))
    ctl, box = smtp_server(sp)
    try:
        p = run(["deliver", "--data", data, "--smtp", f"smtp://127.0.0.1:{sp}", "--mail-from",
                 "reports@radshare.example.org", "--wait", "20"])
        ds = deliveries(p)
        report(p.returncode == 0 and ds and ds[0]["status"] == "sent", "after restart: report deliver sends it",
               p.stdout + p.stderr)
        p = run(["deliver", "--data", data, "--smtp", f"smtp://127.0.0.1:{sp}", "--mail-from",
                 "reports@radshare.example.org", "--wait", "2"])
        report(len(box.messages) == 1, "delivered exactly once (a second deliver sends nothing)",
               str(len(box.messages)))
    finally:
        ctl.stop()


def test_cancel():
    data = os.path.join(TMP, "d6")
    port = free_port()
    p = hl7_send(data, port, wait="1")
    ds = deliveries(p)
    report(p.returncode == 1 and ds and ds[0]["status"] == "pending" and ds[0]["attempts"] >= 1,
           "listener down: send ends with the delivery pending", p.stdout)
    if not ds:
        return
    c = run(["cancel", "--data", data, "--delivery", str(ds[0]["id"])])
    report(c.returncode == 0 and deliveries(c)[0]["status"] == "cancelled", "cancel: status cancelled", c.stdout)
    ml = Mllp(port)
    try:
        d = run(["deliver", "--data", data, "--wait", "2"])
        st = deliveries(run(["status", "--data", data]))
        report(not ml.messages and st[0]["status"] == "cancelled", "a cancelled delivery is never sent",
               str(len(ml.messages)))
        c = run(["cancel", "--data", data, "--delivery", str(ds[0]["id"])])
        report(c.returncode == 2, "cancelling it again is refused (not pending)")
    finally:
        ml.close()


def test_directory():
    data = os.path.join(TMP, "d7")
    sp = free_port()
    directory = write("directory.conf", "# referring physicians\n[DUPONT^JEAN]\nname = Dr Jean Dupont\n"
                                         "email = jean.dupont@cabinet.example\n\n[MARTIN^ANNE]\nemail = a@b.example\n")
    ctl, box = smtp_server(sp)
    try:
        p = run(["send", "--data", data, "--study", "1.2.7", "--text-file", write("dd.txt", "dir\n"), "--link", LINK,
                 "--referring", " dupont ^ Jean ^^^", "--directory", directory, "--smtp", f"smtp://127.0.0.1:{sp}",
                 "--mail-from", "r@radshare.example.org", "--wait", "20"])
        ds = deliveries(p)
        report(p.returncode == 0 and ds and ds[0]["recipient"] == "jean.dupont@cabinet.example" and
               ds[0]["name"] == "Dr Jean Dupont" and len(box.messages) == 1 and
               box.messages[0][1] == ["jean.dupont@cabinet.example"],
               "recipient found in the directory by ReferringPhysicianName (case, padding ignored)",
               p.stdout + p.stderr)
        p = run(["send", "--data", data, "--study", "1.2.7", "--text-file", write("dd.txt", "dir\n"), "--link", LINK,
                 "--referring", "NOBODY^KNOWN", "--directory", directory, "--wait", "0"])
        report(p.returncode == 2 and b"no recipient" in p.stderr, "unknown referring physician: refused")
    finally:
        ctl.stop()


def test_archive_demographics():
    """Patient data for PID from the archive index: a study stored with storescu into radshare serve."""
    try:
        import pydicom
        from pydicom.dataset import FileDataset, FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    except ImportError as e:
        report(False, "pydicom available", str(e))
        return
    data = os.path.join(TMP, "d8")
    study = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "ARCHIVE^Anna", "ARC-7", "19811224", "F"
    ds.AccessionNumber, ds.StudyDescription, ds.StudyDate = "ACC-ARC", "MR knee", "20261130"
    ds.ReferringPhysicianName, ds.Modality = "DUPONT^JEAN", "MR"
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = b"\0" * 8
    f = os.path.join(TMP, "arc.dcm")
    ds.save_as(f, write_like_original=False)
    dport = free_port()
    log = open(os.path.join(TMP, "serve.log"), "ab")
    srv = subprocess.Popen([RADSHARE, "serve", "--data", data, "--dicom-port", str(dport), "--http-port", "0"], stdout=log, stderr=log)
    ok = False
    for _ in range(100):
        if subprocess.run(["storescu", "-aec", "RADSHARE", "127.0.0.1", str(dport), f],
                          capture_output=True).returncode == 0:
            ok = True
            break
        time.sleep(0.1)
    srv.send_signal(signal.SIGTERM)
    srv.wait(timeout=30)
    report(ok, "study stored into radshare serve with storescu")
    port = free_port()
    ml = Mllp(port)
    try:
        p = run(["send", "--data", data, "--study", study, "--text-file", write("a.txt", "archive\n"), "--link", LINK,
                 "--to-name", "GP", "--hl7", f"127.0.0.1:{port}", "--wait", "20"])
        s = segments(ml.messages[0][1]) if ml.messages else {}
        pid, obr = s.get("PID", [""])[0], s.get("OBR", [""])[0]
        report(p.returncode == 0 and field(pid, 3) == "ARC-7" and field(pid, 5) == "ARCHIVE^Anna" and
               field(pid, 7) == "19811224" and field(pid, 8) == "F" and field(obr, 2) == "ACC-ARC" and
               field(obr, 4) == "^MR knee", "PID/OBR filled from the archive index", pid + " / " + obr +
               p.stderr.decode())
    finally:
        ml.close()


def test_starttls():
    """A relay offering STARTTLS (and requiring it): the message goes over TLS, the certificate verified."""
    import ssl
    key, crt = os.path.join(TMP, "relay.key"), os.path.join(TMP, "relay.crt")
    g = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                        "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       capture_output=True)
    if not report(g.returncode == 0, "test certificate made with openssl", g.stderr.decode()):
        return
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(crt, key)
    data = os.path.join(TMP, "d10")
    sp = free_port()
    ctl, box = smtp_server(sp, tls_context=ctx, require_starttls=True)
    try:
        base = ["send", "--data", data, "--study", "1.2.10", "--text-file", write("tls.txt", "tls\n"), "--link",
                LINK, "--to-name", "T", "--to-email", "t@cabinet.example", "--smtp", f"smtp://127.0.0.1:{sp}",
                "--mail-from", "r@radshare.example.org", "--retry-base-ms", "200"]
        p = run(base + ["--wait", "2"])
        ds = deliveries(p)
        report(p.returncode == 1 and not box.messages and ds and ds[0]["status"] == "pending",
               "STARTTLS with an untrusted certificate: not sent, still pending", p.stdout)
        p = run(["deliver", "--data", data, "--smtp", f"smtp://127.0.0.1:{sp}", "--mail-from",
                 "r@radshare.example.org", "--smtp-ca", crt, "--wait", "20"])
        report(p.returncode == 0 and len(box.messages) == 1 and box.tls == [True],
               "STARTTLS offered and required: delivered over TLS (certificate verified with --smtp-ca)",
               p.stdout + p.stderr)
    finally:
        ctl.stop()


def test_serve_worker():
    """radshare serve runs the outbox: a report queued by the CLI (--wait 0) is delivered by serve."""
    data = os.path.join(TMP, "d9")
    sp, dport = free_port(), free_port()
    p = run(["send", "--data", data, "--study", "1.2.9", "--text-file", write("s.txt", "serve\n"), "--link", LINK,
             "--to-name", "S", "--to-email", "s@cabinet.example", "--wait", "0"])
    report(p.returncode == 1 and deliveries(p)[0]["status"] == "pending", "--wait 0: queued only", p.stdout)
    ctl, box = smtp_server(sp)
    log = open(os.path.join(TMP, "serve9.log"), "ab")
    srv = subprocess.Popen([RADSHARE, "serve", "--data", data, "--dicom-port", str(dport), "--http-port", "0", "--smtp",
                            f"smtp://127.0.0.1:{sp}", "--mail-from", "r@radshare.example.org",
                            "--public-url", "https://radshare.example.org"], stdout=log, stderr=log)
    try:
        for _ in range(150):
            if box.messages:
                break
            time.sleep(0.1)
        srv.send_signal(signal.SIGTERM)
        rc = srv.wait(timeout=30)
        st = deliveries(run(["status", "--data", data]))
        report(len(box.messages) == 1 and rc == 0 and st[0]["status"] == "sent",
               "radshare serve delivers the queued report, stops cleanly on SIGTERM", f"rc={rc} {st}")
    finally:
        if srv.poll() is None:
            srv.kill()
        ctl.stop()


for t in (test_email_and_hl7, test_access_code_refused, test_hl7_retries, test_smtp_permanent, test_restart,
          test_cancel, test_directory, test_archive_demographics, test_starttls,
          test_serve_worker):
    try:
        t()
    except Exception as e:  # a crash in one group is a failure, the others still run
        report(False, t.__name__, repr(e))
print(f"1..{tap.n}")
sys.exit(tap.status())
