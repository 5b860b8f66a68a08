"""A real webhook receiver for simguard-notify's webhook tests.

It verifies the Standard Webhooks signature with its own implementation
(hmac/hashlib/base64 from the standard library, nothing of simguard's), and
appends every request to --out as one JSON line:
{"path", "headers" (lower-case names), "body" (text), "verified",
"timestamp_fresh", "status"}.

Answers, in order of precedence:
- --fail-first N: 503 to the first N requests (with --retry-after VALUE as
  the Retry-After header, if given);
- --status CODE: always CODE (with Retry-After too, if given);
- otherwise 200 when the signature verifies and 401 when it does not, as a
  receiver that checks signatures would.
--delay-ms MS waits before answering (time-out tests).

The socket is bound before anything else (port 0), and "READY <port>" is
printed on stdout once it accepts connections.
"""

import argparse
import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECS = 300


def decode_secret(secret):
    if secret.startswith("whsec_"):
        part = secret[len("whsec_"):]
        return base64.b64decode(part + "=" * (-len(part) % 4))
    return secret.encode()


def verify(key, headers, body):
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sig_header = headers.get("webhook-signature")
    if not (msg_id and ts and sig_header):
        return False, False
    signed = msg_id.encode() + b"." + ts.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    ok = False
    # The header may carry several space-separated signatures.
    for candidate in sig_header.split(" "):
        version, _, sig = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            ok = True
    try:
        fresh = abs(time.time() - int(ts)) <= TOLERANCE_SECS
    except ValueError:
        fresh = False
    return ok, fresh


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--status", type=int)
    p.add_argument("--retry-after")
    p.add_argument("--delay-ms", type=int, default=0)
    # A fixed port, so a test can take the receiver down and bring it back
    # where the sender expects it (0: any free port).
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()

    key = decode_secret(args.secret)
    lock = threading.Lock()
    state = {"seen": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified, fresh = verify(key, headers, body)
            with lock:
                state["seen"] += 1
                n = state["seen"]
            extra = {}
            if n <= args.fail_first:
                status, text = 503, "overloaded"
                if args.retry_after:
                    extra["Retry-After"] = args.retry_after
            elif args.status:
                status, text = args.status, "configured status %d" % args.status
                if args.retry_after:
                    extra["Retry-After"] = args.retry_after
            elif verified:
                status, text = 200, "ok"
            else:
                status, text = 401, "signature does not verify"
            record = {
                "path": self.path,
                "headers": headers,
                "body": body.decode("utf-8", errors="replace"),
                "verified": verified,
                "timestamp_fresh": fresh,
                "status": status,
            }
            with lock:
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
            if args.delay_ms:
                time.sleep(args.delay_ms / 1000)
            payload = text.encode()
            try:
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if payload:
                    self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (time-out test).
                pass

        def log_message(self, fmt, *a):
            sys.stderr.write("webhook_receiver: " + (fmt % a) + "\n")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("READY %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
