#!/usr/bin/python3
"""capture_pdus.py - capture real DICOM Upper Layer PDUs from DCMTK into tests/data/pdu/.

tests/unit/test_pdu.c decodes these bytes, so the PDU codec (src/net/pdu.c) is checked against
what another implementation actually sends, not only against its own encoder. The captures:

  DCMTK as requester: a tiny listener on 127.0.0.1 accepts one connection from echoscu,
  findscu, getscu or storescu, saves every PDU it receives, and answers just enough to get the
  PDUs wanted (an A-ASSOCIATE-AC, a C-ECHO response, an A-RELEASE-RP, an A-ASSOCIATE-RJ or an
  A-ABORT).
  DCMTK as acceptor: storescp is started on a free loopback port and this script plays the
  requester, replaying captured requests, and saves the AC, RJ, P-DATA, RP and ABORT it sends.

Usage:  /usr/bin/python3 tools/capture_pdus.py [OUTDIR]      (default tests/data/pdu)
Needs DCMTK (echoscu, findscu, getscu, storescu, storescp) and nothing else. The output is not
byte-for-byte reproducible across DCMTK versions (implementation version name); the tests check
facts, not hashes. Every file holds whole PDUs (6-byte header included); *_stream.bin files hold
several PDUs back to back.
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "data", "pdu")
# storescu's input: a small explicit-VR-LE MR image, big enough to need several P-DATA PDUs
STORE_FILE = os.path.join(ROOT, "fuzz", "seeds", "pd_MR_small.dcm")

APP_CONTEXT = b"1.2.840.10008.3.1.1.1"
VERIFICATION = b"1.2.840.10008.1.1"
MR_STORAGE = b"1.2.840.10008.5.1.4.1.1.4"
IMPLICIT_LE = b"1.2.840.10008.1.2"
EXPLICIT_LE = b"1.2.840.10008.1.2.1"
# our stand-in implementation class UID (a 2.25 UUID-derived OID, so it belongs to no one else)
OUR_IMPL_UID = b"2.25.94335839184327745367931316207461235523"
OUR_IMPL_VERSION = b"RADSHARE_CAPTURE"
TIMEOUT = 30


# ---- PDU building (PS3.8 9.3) ------------------------------------------------------------
def pdu(ptype, body):
    return struct.pack(">BBI", ptype, 0, len(body)) + body


def item(itype, body):
    return struct.pack(">BBH", itype, 0, len(body)) + body


def ae16(title):
    return title.ljust(16, b" ")[:16]


def user_info(max_len):
    return item(0x50, item(0x51, struct.pack(">I", max_len)) + item(0x52, OUR_IMPL_UID)
                + item(0x55, OUR_IMPL_VERSION))


def assoc_rq(called, calling, pcs, app_context=APP_CONTEXT, max_len=16384):
    """pcs: list of (id, abstract syntax, [transfer syntaxes])."""
    body = struct.pack(">HH", 1, 0) + ae16(called) + ae16(calling) + bytes(32)
    body += item(0x10, app_context)
    for pc_id, abstract, tss in pcs:
        sub = item(0x30, abstract) + b"".join(item(0x40, ts) for ts in tss)
        body += item(0x20, bytes([pc_id, 0, 0, 0]) + sub)
    return pdu(1, body + user_info(max_len))


def assoc_ac(rq, accept, max_len):
    """Answer rq (parsed): accept maps abstract syntax -> transfer syntax; others get result 3."""
    body = struct.pack(">HH", 1, 0) + ae16(rq["called"]) + ae16(rq["calling"]) + bytes(32)
    body += item(0x10, APP_CONTEXT)
    for pc_id, abstract, tss in rq["pcs"]:
        ts = accept.get(abstract)
        result = 0 if ts in tss else 3
        body += item(0x21, bytes([pc_id, 0, result, 0]) + item(0x40, ts if result == 0 else tss[0]))
    return pdu(2, body + user_info(max_len))


def assoc_rj(result, source, reason):
    return pdu(3, bytes([0, result, source, reason]))


def abort(source, reason):
    return pdu(7, bytes([0, 0, source, reason]))


def release_rq():
    return pdu(5, bytes(4))


def release_rp():
    return pdu(6, bytes(4))


def p_data(ctx, control, payload):
    return pdu(4, struct.pack(">I", len(payload) + 2) + bytes([ctx, control]) + payload)


def elem_le(group, elem, value):
    """Implicit VR little endian element (command sets are always implicit LE, PS3.7 6.3.1)."""
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHI", group, elem, len(value)) + value


def echo_rsp_command(message_id):
    els = (elem_le(0, 0x0002, VERIFICATION) + elem_le(0, 0x0100, struct.pack("<H", 0x8030))
           + elem_le(0, 0x0120, struct.pack("<H", message_id))
           + elem_le(0, 0x0800, struct.pack("<H", 0x0101)) + elem_le(0, 0x0900, struct.pack("<H", 0)))
    return elem_le(0, 0x0000, struct.pack("<I", len(els))) + els


# ---- PDU reading ---------------------------------------------------------------------------
def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("peer closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def recv_pdu(sock):
    head = recv_exact(sock, 6)
    ptype, _, length = struct.unpack(">BBI", head)
    return ptype, head + recv_exact(sock, length)


def items(data):
    pos = 0
    while pos + 4 <= len(data):
        itype, _, length = struct.unpack(">BBH", data[pos:pos + 4])
        yield itype, data[pos + 4:pos + 4 + length]
        pos += 4 + length


def parse_assoc(raw):
    """Just what the listener needs to answer: AE titles and proposed contexts."""
    body = raw[6:]
    rq = {"called": body[4:20].strip(), "calling": body[20:36].strip(), "pcs": []}
    for itype, data in items(body[68:]):
        if itype == 0x20:
            subs = list(items(data[4:]))
            abstract = next(d for t, d in subs if t == 0x30)
            rq["pcs"].append((data[0], abstract.rstrip(b"\0"), [d.rstrip(b"\0") for t, d in subs if t == 0x40]))
    return rq


def pdvs(raw):
    """(ctx, control, payload) of each PDV of a P-DATA-TF PDU."""
    body, pos, out = raw[6:], 0, []
    while pos < len(body):
        (length,) = struct.unpack(">I", body[pos:pos + 4])
        out.append((body[pos + 4], body[pos + 5], body[pos + 6:pos + 4 + length]))
        pos += 4 + length
    return out


def recv_message_part(sock, want_command):
    """Receive P-DATA-TF PDUs until the last fragment of a command (or data set); returns them."""
    got = []
    while True:
        ptype, raw = recv_pdu(sock)
        if ptype != 4:
            raise RuntimeError("expected P-DATA-TF, got PDU type %d" % ptype)
        got.append(raw)
        if any(ctl & 1 == want_command and ctl & 2 for _, ctl, _ in pdvs(raw)):
            return got


def command_message_id(raws):
    cmd = b"".join(p for raw in raws for _, _, p in pdvs(raw))
    pos = 0
    while pos + 8 <= len(cmd):
        group, elem, length = struct.unpack("<HHI", cmd[pos:pos + 8])
        if (group, elem) == (0, 0x0110):
            return struct.unpack("<H", cmd[pos + 8:pos + 10])[0]
        pos += 8 + length
    raise RuntimeError("no Message ID in command")


def save(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    print("  %-36s %6d bytes" % (name, len(data)))


# ---- DCMTK as requester: a one-connection listener ------------------------------------------
def with_listener(handler, argv, files=()):
    """Run `argv 127.0.0.1 PORT files...` against handler(conn) listening on PORT."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(TIMEOUT)
    port = srv.getsockname()[1]
    errors = []

    def serve():
        try:
            conn, _ = srv.accept()
            conn.settimeout(TIMEOUT)
            with conn:
                handler(conn)
        except Exception as e:  # reported after the client exits
            errors.append(e)

    t = threading.Thread(target=serve)
    t.start()
    args = argv + ["127.0.0.1", str(port)] + list(files)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
    t.join(TIMEOUT)
    srv.close()
    if errors:
        raise RuntimeError("%s: %s\n%s" % (argv[0], errors[0], proc.stderr))
    return proc


def echoscu_session(conn):
    _, rq = recv_pdu(conn)
    save("echoscu_assoc_rq.bin", rq)
    conn.sendall(assoc_ac(parse_assoc(rq), {VERIFICATION: IMPLICIT_LE}, 16384))
    cmd = recv_message_part(conn, 1)
    save("echoscu_pdata_echo_rq.bin", b"".join(cmd))
    ctx = pdvs(cmd[0])[0][0]
    conn.sendall(p_data(ctx, 3, echo_rsp_command(command_message_id(cmd))))
    ptype, rel = recv_pdu(conn)
    assert ptype == 5, ptype
    save("echoscu_release_rq.bin", rel)
    conn.sendall(release_rp())


def reject_session(name, rj):
    def session(conn):
        _, rq = recv_pdu(conn)
        save(name, rq)
        conn.sendall(rj)
    return session


def storescu_session(conn):
    """Accept MR storage with explicit LE and a 4096-byte max PDU, so the data set arrives in
    several P-DATA-TF PDUs; save them all, then abort (no C-STORE response needed)."""
    _, rq = recv_pdu(conn)
    save("storescu_assoc_rq.bin", rq)
    conn.sendall(assoc_ac(parse_assoc(rq), {MR_STORAGE: EXPLICIT_LE}, 4096))
    cmd = recv_message_part(conn, 1)
    data = recv_message_part(conn, 0)
    save("storescu_pdata_stream.bin", b"".join(cmd + data))
    conn.sendall(abort(0, 0))


# ---- DCMTK as acceptor: storescp --------------------------------------------------------------
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def connect(port):
    deadline = time.time() + TIMEOUT
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            return s
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def storescp_captures(tmp):
    port = free_port()
    scp = subprocess.Popen(["storescp", "--aetitle", "STORESCP", "-od", tmp, str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        rd = lambda n: open(os.path.join(OUT, n), "rb").read()
        # 1. the captured echoscu request: AC, C-ECHO response, release
        with connect(port) as s:
            s.sendall(rd("echoscu_assoc_rq.bin"))
            ptype, ac = recv_pdu(s)
            assert ptype == 2, ptype
            save("storescp_assoc_ac.bin", ac)
            s.sendall(rd("echoscu_pdata_echo_rq.bin"))
            save("storescp_pdata_echo_rsp.bin", b"".join(recv_message_part(s, 1)))
            s.sendall(release_rq())
            ptype, rp = recv_pdu(s)
            assert ptype == 6, ptype
            save("storescp_release_rp.bin", rp)
        # 2. the captured storescu request (128 contexts): which ones DCMTK accepts, how
        with connect(port) as s:
            s.sendall(rd("storescu_assoc_rq.bin"))
            ptype, ac = recv_pdu(s)
            assert ptype == 2, ptype
            save("storescp_assoc_ac_storage.bin", ac)
            s.sendall(abort(0, 0))
        # 3. contexts DCMTK must refuse: unknown abstract syntax (3), unknown transfer syntax (4)
        with connect(port) as s:
            s.sendall(assoc_rq(b"STORESCP", b"RADSHARE", [(1, VERIFICATION, [IMPLICIT_LE]),
                                                          (3, b"1.2.3.4.5.6", [IMPLICIT_LE]),
                                                          (5, VERIFICATION, [b"1.2.3.4.5.6.7"])]))
            ptype, ac = recv_pdu(s)
            assert ptype == 2, ptype
            save("storescp_assoc_ac_rejects.bin", ac)
            s.sendall(abort(0, 0))
        # 4. an unknown application context name: DCMTK rejects the association
        with connect(port) as s:
            s.sendall(assoc_rq(b"STORESCP", b"RADSHARE", [(1, VERIFICATION, [IMPLICIT_LE])],
                               app_context=b"1.2.3.4.5"))
            ptype, rj = recv_pdu(s)
            assert ptype == 3, ptype
            save("storescp_assoc_rj.bin", rj)
        # 5. an unknown PDU type after the association is up: DCMTK aborts
        with connect(port) as s:
            s.sendall(assoc_rq(b"STORESCP", b"RADSHARE", [(1, VERIFICATION, [IMPLICIT_LE])]))
            ptype, _ = recv_pdu(s)
            assert ptype == 2, ptype
            s.sendall(pdu(0x0A, bytes(4)))
            ptype, ab = recv_pdu(s)
            assert ptype == 7, ptype
            save("storescp_abort.bin", ab)
    finally:
        scp.terminate()
        scp.wait(TIMEOUT)


def main():
    os.makedirs(OUT, exist_ok=True)
    print("capturing into", OUT)
    with_listener(echoscu_session, ["echoscu", "-aet", "ECHO SCU", "-aec", "RADSHARE"])
    # findscu is told "called AE title not recognized" (rejected-permanent, service-user, 7)
    with_listener(reject_session("findscu_assoc_rq.bin", assoc_rj(1, 1, 7)),
                  ["findscu", "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID"])
    # getscu proposes SCP/SCU role selection items; it gets an A-ABORT from the service-provider
    with_listener(reject_session("getscu_assoc_rq.bin", abort(2, 0)),
                  ["getscu", "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=1.2.3"])
    # user identity negotiation (username + passcode, positive response requested)
    with_listener(reject_session("storescu_identity_assoc_rq.bin", assoc_rj(2, 3, 1)),
                  ["storescu", "-R", "-usr", "radshare", "-pwd", "s3cret", "-rsp"], [STORE_FILE])
    with_listener(storescu_session, ["storescu", "-aet", "RADSHARE_TEST", "-aec", "ARCHIVE"], [STORE_FILE])
    with tempfile.TemporaryDirectory() as tmp:
        storescp_captures(tmp)


if __name__ == "__main__":
    main()
