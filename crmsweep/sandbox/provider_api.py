"""The contract between the sandbox core and a provider's API: how a CRM's API plugs into the sandbox.

The core (`core.py`, `server.py`, `store.py`, `faults.py`, `tls.py`, `sessions.py`) owns everything the same
for every CRM: TLS with a CA per state folder, HTTP serving, the bearer-token check, fault injection,
`--latency-ms`, call counting against a daily allowance, the SQLite state and its recycle bin, and
the `/__sandbox/*` admin endpoint tests use. A provider API owns only what its CRM's documentation
says: which endpoints exist, their answers, and the shape of every error.

How a provider plugs in
-----------------------
1. Write `crmsweep/sandbox/<provider>_api.py` with a class implementing `ProviderApi` (below) and a
   module-level `SANDBOX = <object implementing SandboxProvider>`.
2. Add one line to `crmsweep/sandbox/apis.py`: `"<provider>": "crmsweep.sandbox.<provider>_api"`.
   Nothing else changes: `start_sandbox(state_dir, provider="<provider>", ...)`, `serve_forever` and
   `crmsweep sandbox serve --provider <provider>` find it there.

For every request the core does, in this order (see `core.SandboxCore.handle`):

    /__sandbox/*      -> the core's admin endpoint (bearer token; errors through `render_error`)
    endpoint(req)     -> Endpoint(name, authenticated, counted, admin); pure, no side effects
    credential(req)   -> compared with the state folder's token and the sessions a sign-in endpoint
                         issued (`ApiContext.sessions`; constant time) = authorized?
    if endpoint.admin -> the provider's own test/benchmark settings: without the token
                         `unauthorized(req)`, else `route(req, call)` at once (no latency, faults
                         or counting), then `decorate`
    --latency-ms      -> sleep
    if authorized     -> armed fault rules are tried (timeout: sleep then go on; drop: close the
                         connection; drop_after: go on, then close the connection instead of
                         answering; any other kind: `render_fault(rule, req)` is the answer)
    if endpoint.authenticated and not authorized -> `unauthorized(req)` is the answer
    admit(req, endpoint) -> a provider's own refusal before the call is counted (a rate-limit
                         window, see `windows.RollingWindow`), or None to go on
    if endpoint.counted -> one call against the daily allowance; when it is spent the answer is
                         `render_fault(FaultRule(kind="limit"), req)`
    route(req, call)  -> the answer (`call` says the endpoint and the usage after this call)
    decorate(req, response, call) -> every answer passes here last (rate-limit headers)

A lock fault is per record: a provider's batch write asks `context.faults.locked(method, path,
record_id, canonical=...)` for each record and fails that record in its own per-record error shape.

The provider's state lives in a `Store` (or a subclass adding the CRM's own writes) that
`SandboxProvider.open_store` opens; `prepare_store` creates its tables and seeds it on first use.
Rows that are deleted/archived stay in their table, restorable, through `Store.bin` and
`Store.restore` (the generic recycle bin).

The sandbox is a separate world: nothing here, and no provider API, imports the product's
connectors; clients reach it only over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from crmsweep.decimal_text import dumps_exact
from crmsweep.sandbox.faults import FaultInjector, FaultRule
from crmsweep.sandbox.sessions import IssuedSessions
from crmsweep.sandbox.store import Store

# The core's own errors, which each provider renders in its CRM's shape (`render_error`).
URI_TOO_LONG = "URI_TOO_LONG"  # 414: the request line is longer than the core accepts
BAD_REQUEST = "BAD_REQUEST"  # 400: a malformed request the core itself rejects (Content-Length, admin JSON)
NOT_FOUND = "NOT_FOUND"  # 404: an admin path that does not exist
INTERNAL = "INTERNAL"  # 500: the provider API raised


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: Mapping[str, list[str]]  # repeated parameters kept in order (`properties=a&properties=b`)
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering (fault injection)


def json_response(status: int, data: object, headers: Mapping[str, str] | None = None) -> Response:
    # Decimals (Salesforce numbers, kept to every digit) are written as JSON numbers with those digits.
    body = dumps_exact(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, body, {"Content-Type": "application/json;charset=UTF-8", **(headers or {})})


@dataclass(frozen=True)
class Endpoint:
    """What the core needs to know about a request before the provider answers it."""

    name: str  # the key in stats' `by_endpoint`, e.g. "GET query"
    authenticated: bool = True  # False: answered without the token (a public list, a 404 for an unknown path)
    counted: bool = True  # counts against the daily allowance (an OAuth userinfo call does not)
    # The provider's own settings for tests and benchmarks (e.g. a rate-limit tier): the token is
    # required, and no latency, fault, rate window or count applies, so an armed fault cannot hit it.
    admin: bool = False


@dataclass(frozen=True)
class Call:
    """One request as the core let it through: its endpoint and the allowance after it."""

    endpoint: Endpoint
    authorized: bool
    used: int  # calls counted today, this one included (0 when it was not counted)
    limit: int  # the daily allowance


@dataclass(frozen=True)
class ApiContext:
    """What the core hands a provider API when it builds it."""

    store: Store
    faults: FaultInjector
    api_limit: int
    clock: Callable[[], datetime]
    # Where a provider's sign-in endpoint registers the session ids it issues (the core accepts them).
    sessions: IssuedSessions = field(default_factory=IssuedSessions)


class ProviderApi(Protocol):
    """One CRM's API over the core. Transport-free: parsed `Request` in, `Response` out."""

    def credential(self, request: Request) -> str | None:
        """The token the request carries (e.g. `Authorization: Bearer ...`), or None."""
        ...

    def endpoint(self, request: Request) -> Endpoint:
        """Classify the request; never raises (an unknown path is a public endpoint answering 404)."""
        ...

    def unauthorized(self, request: Request) -> Response:
        """The answer to a request for an authenticated endpoint without a valid token."""
        ...

    def render_fault(self, rule: FaultRule, request: Request) -> Response:
        """The answer for a request-level fault: kinds "status" (5xx, or 429 with Retry-After),
        "limit" (daily allowance spent; also used when the real allowance is spent) and "expired"
        (session expired). "timeout", "drop" and "drop_after" never reach here: the core carries them out."""
        ...

    def render_error(self, status: int, code: str, message: str) -> Response:
        """One of the core's own errors (`URI_TOO_LONG`, `BAD_REQUEST`, `NOT_FOUND`, `INTERNAL`)."""
        ...

    def admit(self, request: Request, endpoint: Endpoint) -> Response | None:
        """A refusal before the call is counted (e.g. a 429 for a full rate-limit window), or None."""
        ...

    def route(self, request: Request, call: Call) -> Response:
        """The answer to an authorized (or public) request."""
        ...

    def decorate(self, request: Request | None, response: Response, call: Call | None) -> None:
        """Last touch on every answer, faults and errors included: rate-limit headers and the like.
        `call` is None when the request was not let through (admin, auth or fault answers);
        `request` is None when it could not even be read (414, a bad Content-Length)."""
        ...

    def stats(self) -> dict[str, Any]:
        """Provider-specific counters merged into `/__sandbox/stats` (an empty dict is fine)."""
        ...


class SandboxProvider(Protocol):
    """A provider's entry in the sandbox-side table (`apis.py`): its state and its API."""

    name: str

    def open_store(self, state_dir: Path) -> Store:
        """The state folder's SQLite store (a `Store`, or a subclass adding the CRM's own writes)."""
        ...

    def prepare_store(self, store: Store, *, records: int, seed: int, reset: bool) -> None:
        """Create the tables (dropping everything first when `reset`) and seed them if not yet seeded.
        Runs under the state folder's lock."""
        ...

    def make_api(self, context: ApiContext) -> ProviderApi: ...

    def org_id(self, store: Store) -> str:
        """An identifier of the seeded org/portal, shown in `SandboxInfo.org_id`."""
        ...
