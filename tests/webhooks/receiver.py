"""A real webhook receiver for the tests: an HTTP server on 127.0.0.1 in a thread that checks each
request's signature with its own HMAC code (not the platform's) and the timestamp tolerance, then
answers the next status of its script (the last one repeats)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 300


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int
    at: float


class Receiver:
    def __init__(self, script: list[int] | None = None, secret: str = "", location: str = ""):
        self.script = list(script or [200])
        self.secret = secret
        self.location = location  # for 3xx answers
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()}
                verified = receiver.verify(headers, body)
                with receiver._lock:
                    index = len(receiver.received)
                    status = receiver.script[min(index, len(receiver.script) - 1)] if verified else 401
                    receiver.received.append(Received(self.path, headers, body, verified, status, time.time()))
                payload = b'{"ok":true}' if 200 <= status < 300 else b"receiver says no"
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        """The receiver side of the documented scheme, written independently of webhooks.services."""
        timestamp = headers.get("Webhook-Timestamp", "")
        signature = headers.get("Webhook-Signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
            return False
        mac = hmac.new(self.secret.encode("utf-8"), timestamp.encode() + b"." + body, hashlib.sha256)
        return hmac.compare_digest(signature, "v1=" + mac.hexdigest())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
