"""A real webhook receiver for the tests: an HTTP server on 127.0.0.1 in a thread that checks each
request's signature with its own HMAC code (not the platform's) and the timestamp tolerance, then
answers the next status of its script (the last one repeats). Given a certificate and key it serves
HTTPS instead; throwaway_tls() makes them (a one-day CA and a server certificate it signed)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TOLERANCE_SECONDS = 300


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int
    at: float


@dataclasses.dataclass
class TlsFiles:
    ca: Path  # what a client must trust: the CA's certificate only
    cert: Path  # the receiver's certificate, for 127.0.0.1 and localhost unless told, signed by the CA
    key: Path


def throwaway_tls(
    directory: Path, names: tuple[str, ...] = ("localhost",), ips: tuple[str, ...] = ("127.0.0.1",)
) -> TlsFiles:
    """A CA and a server certificate for `ips` and DNS `names` (127.0.0.1/localhost by default), valid
    one day, made with the openssl CLI in `directory` (a test's tmp_path): no key is ever kept in the
    repository. A CA rather than one self-signed certificate, because that is what a tenant's internal
    PKI looks like to the sender."""
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command-line tool is needed to make the HTTPS receiver's certificate"
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, csr = directory / "receiver.pem", directory / "receiver.key", directory / "receiver.csr"
    extensions = directory / "receiver.ext"
    alt_names = ", ".join([*(f"IP:{ip}" for ip in ips), *(f"DNS:{name}" for name in names)])
    extensions.write_text(
        f"subjectAltName = {alt_names}\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]  # fast to generate
    commands = [
        [
            openssl,
            "req",
            "-x509",
            *ec,
            "-keyout",
            ca_key,
            "-out",
            ca,
            "-days",
            "1",
            "-subj",
            "/CN=cs-platform test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        [openssl, "req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={(names or ips)[0]}"],
        [
            openssl,
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-set_serial",
            "1",
            "-days",
            "1",
            "-extfile",
            extensions,
            "-out",
            cert,
        ],
    ]
    for command in commands:
        subprocess.run([str(part) for part in command], check=True, capture_output=True, timeout=60)
    return TlsFiles(ca=ca, cert=cert, key=key)


class Receiver:
    def __init__(
        self, script: list[int] | None = None, secret: str = "", location: str = "", tls: TlsFiles | None = None
    ):
        self.script = list(script or [200])
        self.secret = secret
        self.location = location  # for 3xx answers
        self.received: list[Received] = []
        self.tls_failures: list[str] = []  # handshakes that failed: the client refused our certificate
        self.server_names: list[str | None] = []  # the TLS server name (SNI) of each handshake
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

        class Server(ThreadingHTTPServer):
            def get_request(self):
                # With TLS the handshake happens here; socketserver drops its errors without a word.
                try:
                    return super().get_request()
                except ssl.SSLError as exc:
                    receiver.tls_failures.append(str(exc))
                    raise

        self.scheme = "https" if tls else "http"
        self.server = Server(("127.0.0.1", 0), Handler)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            context.sni_callback = lambda _socket, name, _context: receiver.server_names.append(name)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        """The receiver side of the documented scheme, written independently of webhooks.transport."""
        timestamp = headers.get("Webhook-Timestamp", "")
        signature = headers.get("Webhook-Signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
            return False
        mac = hmac.new(self.secret.encode("utf-8"), timestamp.encode() + b"." + body, hashlib.sha256)
        return hmac.compare_digest(signature, "v1=" + mac.hexdigest())

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class Listener:
    """A bare TCP socket that listens and never answers, to tell whether anything connected to it: the
    kernel completes a handshake and queues the connection before any accept, so even a client that
    closed it at once (having checked the peer too late) is counted."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.setblocking(False)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def connections(self, wait: float = 0.3) -> int:
        """Connections made so far, waiting up to `wait` seconds for a first one to arrive."""
        count = 0
        while select.select([self.sock], [], [], wait if count == 0 else 0)[0]:
            connection, _ = self.sock.accept()
            connection.close()
            count += 1
        return count

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()
