"""peers - the real servers radshare delivers to, started by the tests themselves: an SMTP relay
(Python's aiosmtpd, from Debian's python3-aiosmtpd) that keeps what it receives, and an MLLP
listener that acknowledges HL7 v2 messages as told. Not a test itself (no test_ prefix)."""
import socket
import threading
import time

from aiosmtpd.controller import Controller


class Mailbox:
    """An aiosmtpd handler keeping every message as (mail_from, rcpt_tos, raw bytes); refuses RCPT
    for addresses starting with 'bounce' (a permanent 550), records whether each came over TLS."""
    def __init__(self):
        self.messages = []
        self.tls = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.tls.append(session.ssl is not None)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


def smtp_server(port, **kw):
    """(controller, mailbox) of a relay listening on 127.0.0.1:port; controller.stop() ends it."""
    box = Mailbox()
    c = Controller(box, hostname="127.0.0.1", port=port, **kw)
    c.start()
    return c, box


class Mllp:
    """An MLLP listener on 127.0.0.1:port. Per connection, the next action of `script` (then
    `default`): AA / AE / AR answer with that code, 'drop' closes without answering, 'wrongid'
    acknowledges another message id. messages: (monotonic time, message text)."""
    def __init__(self, port, script=(), default="AA"):
        self.script, self.default = list(script), default
        self.messages = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.stopped = False
        threading.Thread(target=self.loop, daemon=True).start()

    def texts(self):
        return [m for _, m in self.messages]

    def loop(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.settimeout(10)
                buf = b""
                while not buf.endswith(b"\x1c\r"):
                    d = c.recv(65536)
                    if not d:
                        break
                    buf += d
                if not buf.startswith(b"\x0b") or not buf.endswith(b"\x1c\r"):
                    continue
                msg = buf[1:-2].decode("utf-8", "replace")
                self.messages.append((time.monotonic(), msg))
                action = self.script.pop(0) if self.script else self.default
                if action == "drop":
                    continue
                msh = msg.split("\r")[0].split("|")
                ctrl = msh[9] if len(msh) > 9 else ""
                code = "AA" if action == "wrongid" else action
                if action == "wrongid":
                    ctrl = "NOT" + ctrl
                ack = (f"MSH|^~\\&|GP|CAB|RADSHARE|RADSHARE|20261204120000||ACK^R01^ACK|A{len(self.messages)}|P|2.5\r"
                       f"MSA|{code}|{ctrl}|{'test says ' + code if code != 'AA' else ''}\r")
                c.sendall(b"\x0b" + ack.encode() + b"\x1c\r")

    def close(self):
        self.stopped = True
        self.sock.close()
