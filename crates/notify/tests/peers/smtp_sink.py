"""A real SMTP server (aiosmtpd) for simguard-notify's email tests.

Every accepted message is appended to --out as one JSON line:
{"mail_from", "rcpt_tos", "tls", "auth_user", "content"} (content: the raw
message as received) plus what Python's email package reads from it
("subject", "from", "to", "message_id", "event" (X-Simguard-Event), "type",
and "parts": [{"type", "content"}] decoded).

Behaviour is chosen per recipient so one server covers every outcome:
--reject ADDR answers RCPT with 550, --tempfail ADDR with 451, and
--stall ADDR never answers it (time-out tests).
--cert/--key enable STARTTLS (or implicit TLS with --implicit-tls), and
--auth USER:PASS enables AUTH (PLAIN/LOGIN) and requires it before MAIL.

The socket is bound here (port 0 unless --port) before anything else, and
"READY <port>" is printed on stdout once the server accepts connections, so
the test needs neither a fixed port nor a sleep.
"""

import argparse
import asyncio
import email
import email.policy
import json
import socket
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, out, reject, tempfail, stall):
        self.out = out
        self.reject = {a.lower() for a in reject}
        self.tempfail = {a.lower() for a in tempfail}
        self.stall = {a.lower() for a in stall}
        self.accepted = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if address.lower() in self.stall:
            await asyncio.sleep(3600)
        if address.lower() in self.tempfail:
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        content = raw.decode("utf-8", errors="replace")
        # Parsed by Python's own MIME implementation, so the test checks what
        # a mail reader would see, not just bytes our code wrote.
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        parts = [
            {"type": part.get_content_type(), "content": part.get_content()}
            for part in parsed.walk()
            if not part.is_multipart()
        ]
        # session.ssl is set after STARTTLS only; the transport knows about
        # implicit TLS too.
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        tls_version = ssl_object.version() if ssl_object is not None else None
        auth_user = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            auth_user = session.auth_data.login.decode()
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "content": content,
            "subject": str(parsed["subject"]),
            "from": str(parsed["from"]),
            "to": str(parsed["to"]),
            "message_id": str(parsed["message-id"]),
            "event": str(parsed["x-simguard-event"]),
            "type": parsed.get_content_type(),
            "parts": parts,
            "tls": tls_version is not None,
            "tls_version": tls_version,
            "auth_user": auth_user,
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        self.accepted += 1
        return "250 2.0.0 Ok: queued as sink-%d" % self.accepted


def make_authenticator(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        # handled=False lets aiosmtpd answer 535 itself; with handled=True it
        # would send nothing and leave the client waiting.
        return AuthResult(success=False, handled=False)

    return authenticate


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--tempfail", action="append", default=[])
    p.add_argument("--stall", action="append", default=[])
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--auth", help="USER:PASS")
    p.add_argument("--auth-require-tls", action="store_true")
    args = p.parse_args()

    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)

    kwargs = {"hostname": "sink.test", "data_size_limit": 1 << 20}
    if args.auth:
        user, _, password = args.auth.partition(":")
        kwargs["authenticator"] = make_authenticator(user, password)
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = args.auth_require_tls
    if tls is not None and not args.implicit_tls:
        kwargs["tls_context"] = tls
        kwargs["require_starttls"] = True

    handler = Sink(args.out, args.reject, args.tempfail, args.stall)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **kwargs),
        sock=sock,
        ssl=tls if args.implicit_tls else None,
    )
    print("READY %d" % sock.getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
