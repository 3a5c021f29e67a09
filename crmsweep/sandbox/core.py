"""The provider-neutral request pipeline: admin endpoint, latency, token check, faults, call counting.

`SandboxCore.handle` runs every request through the same steps, in the order documented in
`provider_api.py`, and leaves the answers to the provider API. Transport-free: the HTTP server
(`server.py`) only moves bytes.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections import Counter
from typing import Any

from crmsweep.sandbox.faults import FaultInjector, FaultRule
from crmsweep.sandbox.provider_api import (
    BAD_REQUEST,
    INTERNAL,
    NOT_FOUND,
    Call,
    Endpoint,
    ProviderApi,
    Request,
    Response,
    json_response,
)
from crmsweep.sandbox.sessions import IssuedSessions
from crmsweep.sandbox.store import Store

ADMIN_PREFIX = "/__sandbox/"
_SPENT = FaultRule(kind="limit")


class SandboxCore:
    def __init__(
        self, api: ProviderApi, store: Store, *, token: str, api_limit: int, latency_ms: int, faults: FaultInjector,
        sessions: IssuedSessions | None = None,
    ) -> None:
        self.api = api
        self.sessions = sessions or IssuedSessions()
        self.store = store
        self.token = token
        self.api_limit = api_limit
        self.latency_ms = latency_ms
        self.faults = faults
        self._stats_lock = threading.Lock()
        self._calls = 0
        self._by_endpoint: Counter[str] = Counter()

    # --- stats ---------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        with self._stats_lock:
            return {
                "api_calls": self._calls,
                "by_endpoint": dict(sorted(self._by_endpoint.items())),
                "faults_injected": self.faults.injected,
                "api_usage": self.store.api_used(),
                "api_limit": self.api_limit,
                **self.api.stats(),
            }

    def reset_stats(self) -> None:
        with self._stats_lock:
            self._calls = 0
            self._by_endpoint.clear()
            self.faults.reset_count()
        self.store.reset_api_usage()

    def _count(self, endpoint: str) -> int | None:
        used = self.store.count_api_call(self.api_limit)
        if used is not None:
            with self._stats_lock:
                self._calls += 1
                self._by_endpoint[endpoint] += 1
        return used

    # --- the pipeline --------------------------------------------------------------------------

    def is_token(self, value: str | None) -> bool:
        """The state folder's own token: the one credential that opens the admin endpoints."""
        return bool(value) and hmac.compare_digest(str(value).encode(), self.token.encode())

    def is_session(self, value: str | None) -> bool:
        """A credential for the API: the state folder's token, or a live session a sign-in issued."""
        return self.is_token(value) or self.sessions.check(value)

    def reject(self, status: int, code: str, message: str) -> Response:
        """One of the core's own errors (the transport's: 414, a bad Content-Length), as the CRM shapes it."""
        response = self.api.render_error(status, code, message)
        self.api.decorate(None, response, None)
        return response

    def handle(self, request: Request) -> Response:
        call: Call | None = None
        try:
            if request.path.startswith(ADMIN_PREFIX):
                response = self._admin(request)
            else:
                call, response = self._serve(request)
        except Exception as exc:  # the client gets the CRM's answer for an internal error, not a hang
            response = self.api.render_error(500, INTERNAL, f"An unexpected error occurred: {type(exc).__name__}")
        if not response.drop:
            self.api.decorate(request, response, call)
        return response

    def _serve(self, request: Request) -> tuple[Call | None, Response]:
        endpoint = self.api.endpoint(request)
        credential = self.api.credential(request)
        if endpoint.admin:  # the provider's own test settings: the token only, nothing simulated
            if not self.is_token(credential):
                return None, self.api.unauthorized(request)
            call = Call(endpoint=endpoint, authorized=True, used=0, limit=self.api_limit)
            return call, self.api.route(request, call)
        authorized = self.is_session(credential)
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        # Faults fire only for requests that carry the token: a stray or hostile request without
        # it gets its normal answer and cannot use up a fault a test armed.
        rule = self.faults.request_fault(request.method, request.path.rstrip("/") or "/") if authorized else None
        if rule is not None and (rule.after or rule.kind == "drop_after"):
            # Carried out, then the answer is lost: a write that landed though the client never heard so.
            carried, _answer = self._carry_out(request, endpoint, authorized)
            lost = rule.kind in ("drop", "drop_after")
            return carried, Response(0, drop=True) if lost else self.api.render_fault(rule, request)
        if rule is not None:
            if rule.kind == "drop":
                return None, Response(0, drop=True)
            if rule.kind != "timeout":
                return None, self.api.render_fault(rule, request)
            time.sleep(rule.delay)
        return self._carry_out(request, endpoint, authorized)

    def _carry_out(self, request: Request, endpoint: Endpoint, authorized: bool) -> tuple[Call | None, Response]:
        if endpoint.authenticated and not authorized:
            return None, self.api.unauthorized(request)
        refusal = self.api.admit(request, endpoint)
        if refusal is not None:
            return None, refusal
        used = 0
        if endpoint.counted and authorized:
            counted = self._count(endpoint.name)
            if counted is None:
                return None, self.api.render_fault(_SPENT, request)
            used = counted
        call = Call(endpoint=endpoint, authorized=authorized, used=used, limit=self.api_limit)
        return call, self.api.route(request, call)

    # --- admin ---------------------------------------------------------------------------------

    def _admin(self, request: Request) -> Response:
        """Stats, their reset and the fault rules in force, for tests; the sandbox's token only."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not self.is_token(token.strip()):
            return self.api.unauthorized(request)
        path = request.path.rstrip("/")
        if path == "/__sandbox/stats" and request.method == "GET":
            return json_response(200, self.stats())
        if path == "/__sandbox/reset-stats" and request.method == "POST":
            self.reset_stats()
            return json_response(200, self.stats())
        if path == "/__sandbox/expire-sessions" and request.method == "POST":
            # {"after": N}: the issued sessions answer N more requests, then expire (0 or no body: now).
            try:
                after = int((json.loads(request.body or b"{}") or {}).get("after", 0))
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError, ValueError):
                return self.api.render_error(400, BAD_REQUEST, 'Send {"after": N} with N a whole number')
            self.sessions.expire(after)
            return json_response(200, {"expire_after": after})
        if path == "/__sandbox/faults" and request.method == "POST":
            try:
                data = json.loads(request.body or b"null")
            except (json.JSONDecodeError, UnicodeDecodeError):
                data = None
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                return self.api.render_error(400, BAD_REQUEST, "Send a JSON list of fault rules")
            try:
                rules = [FaultRule.from_dict(r) for r in data]
            except ValueError as exc:
                return self.api.render_error(400, BAD_REQUEST, str(exc))
            self.faults.replace(rules)
            return json_response(200, {"rules": len(rules)})
        return self.api.render_error(404, NOT_FOUND, "The requested resource does not exist")
