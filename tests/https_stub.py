"""A minimal HTTPS server on 127.0.0.1 with its own CA, for connector tests that need no sandbox."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme


class CountHandler(BaseHTTPRequestHandler):
    """Answers every GET like Salesforce answers `SELECT COUNT()`: five records, three API calls used."""

    def do_GET(self) -> None:
        body = json.dumps({"totalSize": 5, "done": True, "records": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Sforce-Limit-Info", "api-usage=3/15000")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class HttpsStub:
    def __init__(self, folder: Path, handler: type[BaseHTTPRequestHandler]) -> None:
        ca = trustme.CA()
        self.ca_file = folder / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self._stopped = False

    def stop(self) -> None:
        """Stop serving and close the port, so that connecting to it is refused."""
        if not self._stopped:
            self._stopped = True
            self._httpd.shutdown()
            self._httpd.server_close()


@contextmanager
def https_stub(folder: Path, handler: type[BaseHTTPRequestHandler] = CountHandler) -> Iterator[HttpsStub]:
    stub = HttpsStub(folder, handler)
    try:
        yield stub
    finally:
        stub.stop()
