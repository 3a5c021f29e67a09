"""Start and stop an embedded CRM sandbox: an HTTPS server on 127.0.0.1 over a state folder.

Provider-neutral: the provider API (picked by name from `apis.py`) answers the requests; this
module serves them (TLS, one write per answer, TCP_NODELAY) through the core's pipeline (`core.py`).
The state folder (0700) holds the CA and server certificate, the session token (0600) and the
SQLite state. The first start creates and seeds them; later starts reuse them, so clients keep their
trust and token. A file lock makes the first start safe when two processes race for it.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import signal
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from crmsweep.errors import BadInput
from crmsweep.sandbox.apis import sandbox_provider
from crmsweep.sandbox.core import SandboxCore
from crmsweep.sandbox.faults import FaultInjector, FaultRule, parse_faults
from crmsweep.sandbox.provider_api import (
    BAD_REQUEST,
    URI_TOO_LONG,
    ApiContext,
    ProviderApi,
    Request,
    Response,
    SandboxProvider,
)
from crmsweep.sandbox.sessions import IssuedSessions
from crmsweep.sandbox.store import Store, utc_now
from crmsweep.sandbox.tls import TlsFiles, ensure_tls, server_context, write_private

HOST = "127.0.0.1"
TOKEN_FILE = "token"
IDLE_CONNECTION_SECONDS = 120
MAX_URI = 16_384  # Salesforce answers 414 above this; HubSpot's limit is no lower


@dataclass(frozen=True)
class SandboxInfo:
    provider: str
    url: str
    ca_file: Path
    token: str
    state_dir: Path
    org_id: str

    def to_json_line(self) -> str:
        return json.dumps(
            {"provider": self.provider, "url": self.url, "ca_file": str(self.ca_file), "token": self.token}
        )

    def __repr__(self) -> str:  # never show the token in a log or traceback
        return f"SandboxInfo(provider={self.provider!r}, url={self.url!r}, state_dir={str(self.state_dir)!r})"


# --- state folder ----------------------------------------------------------------------------------


@contextmanager
def _state_lock(state_dir: Path) -> Iterator[None]:
    fd = os.open(state_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask and ignored for existing folders


def _token(state_dir: Path) -> str:
    path = state_dir / TOKEN_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    token = secrets.token_urlsafe(32)
    write_private(path, token.encode())
    return token


def open_state(
    state_dir: Path, provider: SandboxProvider, *, records: int, seed: int, reset: bool
) -> tuple[TlsFiles, str, Store]:
    """The state folder's certificates, token and seeded store, created on first use."""
    _private_dir(state_dir)
    with _state_lock(state_dir):
        files = ensure_tls(state_dir)
        token = _token(state_dir)
        store = provider.open_store(state_dir)
        try:
            provider.prepare_store(store, records=records, seed=seed, reset=reset)
        except BaseException:
            store.close()
            raise
    return files, token, store


# --- HTTP plumbing ---------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_SECONDS
    server: _TlsServer

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet by design: request lines can carry SOQL with personal data.
        return

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def _serve(self) -> None:
        if len(self.path) > MAX_URI:
            self.close_connection = True  # the body, if any, is not read
            self._send(self.server.core.reject(414, URI_TOO_LONG, f"The request URI is longer than {MAX_URI} bytes"))
            return
        url = urlsplit(self.path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._send(self.server.core.reject(400, BAD_REQUEST, "Invalid Content-Length header"))
            return
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        response = self.server.core.handle(request)
        if response.drop:
            self.close_connection = True
            with suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(response)

    def _send(self, response: Response) -> None:
        """Status line, headers and body in one write (wfile is unbuffered: one sendall).

        Written apart, the small body waits in Nagle's algorithm for the client's delayed ACK of the
        headers: about 40 ms on every small answer, far above any `--latency-ms` a test asks for."""
        self.log_request(response.status)
        reason = self.responses.get(response.status, ("",))[0]
        lines = [
            f"{self.protocol_version} {response.status} {reason}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
            *(f"{name}: {value}" for name, value in response.headers.items()),
            f"Content-Length: {len(response.body)}",
        ]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "strict")
        self.wfile.write(head if self.command == "HEAD" else head + response.body)


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, context: ssl.SSLContext, core: SandboxCore) -> None:
        self.context = context
        self.core = core
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((HOST, port), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, so a slow client cannot
        # stall the accept loop.
        request.settimeout(IDLE_CONNECTION_SECONDS)
        # Answers are one write each (see _Handler._send); never hold one back waiting for an ACK.
        with suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with self._open_lock:
            self._open.add(tls)
        try:
            _Handler(tls, client_address, self)
        except (ssl.SSLError, OSError):
            pass
        finally:
            with self._open_lock:
                self._open.discard(tls)
            with suppress(OSError):
                tls.close()

    def close_connections(self) -> None:
        with self._open_lock:
            for conn in list(self._open):
                with suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


# --- lifecycle -------------------------------------------------------------------------------------

# How often the accept loop looks for a stop request: `stop()` waits up to this long. The standard 0.5 s
# made every stop half a second of idle waiting (the demo and the test suite start and stop hundreds).
SHUTDOWN_POLL_SECONDS = 0.05


class RunningSandbox:
    """A sandbox serving in a daemon thread; a context manager that stops it on exit."""

    def __init__(self, info: SandboxInfo, server: _TlsServer, store: Store) -> None:
        self.info = info
        self._server = server
        self._store = store
        self._thread = threading.Thread(target=server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,),
                                        name="crmsweep-sandbox", daemon=True)
        self._thread.start()
        self._stopped = False

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=10)
        self._store.close()

    @property
    def api(self) -> ProviderApi:
        """The provider API answering this sandbox's requests (for tests that reach into it)."""
        return self._server.core.api

    def stats(self) -> dict[str, Any]:
        return self._server.core.stats()

    def set_faults(self, rules: Sequence[FaultRule]) -> None:
        self._server.core.faults.replace(rules)

    def reset_stats(self) -> None:
        self._server.core.reset_stats()

    @property
    def sessions(self) -> IssuedSessions:
        """The session ids a sign-in endpoint issued (tests expire them, or look for them in outputs)."""
        return self._server.core.sessions

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_sandbox(
    state_dir: Path,
    *,
    provider: str = "salesforce",
    port: int = 0,
    records: int = 1000,
    seed: int = 7,
    api_limit: int = 15000,
    latency_ms: int = 0,
    faults: str | None = None,
    reset: bool = False,
) -> RunningSandbox:
    """Start serving `state_dir`'s `provider` org on https://127.0.0.1:`port` (0 = any free port).

    Raises BadInput for a provider the sandbox has no API for, ValueError for bad `faults`."""
    chosen = sandbox_provider(provider)
    rules = parse_faults(faults) if faults else []
    files, token, store = open_state(Path(state_dir), chosen, records=records, seed=seed, reset=reset)
    injector = FaultInjector(rules, seed=seed)
    sessions = IssuedSessions()
    try:
        api = chosen.make_api(ApiContext(store=store, faults=injector, api_limit=api_limit, clock=utc_now,
                                         sessions=sessions))
        core = SandboxCore(api, store, token=token, api_limit=api_limit, latency_ms=latency_ms, faults=injector,
                           sessions=sessions)
        server = _TlsServer(port, server_context(files), core)
    except OSError as exc:
        store.close()
        raise BadInput(
            f"the sandbox cannot listen on {HOST}:{port} ({exc.strerror}); choose another port, or 0 for any free one"
        ) from None
    except BaseException:
        store.close()
        raise
    actual_port = server.server_address[1]
    info = SandboxInfo(
        provider=provider,
        url=f"https://{HOST}:{actual_port}",
        ca_file=files.ca_cert,
        token=token,
        state_dir=Path(state_dir),
        org_id=chosen.org_id(store),
    )
    return RunningSandbox(info, server, store)


def serve_forever(
    state_dir: Path,
    *,
    on_ready: Callable[[SandboxInfo], None],
    provider: str = "salesforce",
    port: int = 0,
    records: int = 1000,
    seed: int = 7,
    api_limit: int = 15000,
    latency_ms: int = 0,
    faults: str | None = None,
    reset: bool = False,
) -> None:
    """Serve in the foreground until SIGINT or SIGTERM, then shut down cleanly."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with start_sandbox(state_dir, provider=provider, port=port, records=records, seed=seed,
                           api_limit=api_limit, latency_ms=latency_ms, faults=faults, reset=reset) as sandbox:
            on_ready(sandbox.info)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
