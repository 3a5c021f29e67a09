"""How HubSpot's answers and urllib3's failures become crmsweep errors.

hubspot-api-client raises one `ApiException` class per API package (contacts, owners, v4
associations...), none an instance of another's, so failures are recognised by their attributes
(`status`, `body`, `headers`), never by class. Transport failures arrive as raw urllib3 exceptions
(the SDK's own retries are off: see `hubspot_client`), mostly `MaxRetryError` wrapping the cause.

`map_failure` is the one translation; `outcome_unknown` says whether a failed write may still have
been carried out; `rate_limit` reads a 429's policy. Pure: no I/O.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from crmsweep.connectors.base import Connection
from crmsweep.connectors.http_failures import (
    causes,
    certificate_refused,
    one_line,
    parse_retry_after,
    shown_url,
    tls_handshake_failed,
)
from crmsweep.errors import AuthError, ConnectorError, CrmsweepError, EndpointError, LimitExceeded, RetriableError

# 423 Locked, 477 Migration in Progress and the gateway family: HubSpot's error-handling guide says pause
# and try again.
RETRIABLE_STATUS = frozenset({423, 477, 500, 502, 503, 504, 521, 523, 524})
# A write answered with these may have been carried out before the failure.
_OUTCOME_UNKNOWN_STATUS = frozenset({500, 502, 504, 524})
DAILY_POLICY = "DAILY"
TEN_SECONDLY_POLICY = "TEN_SECONDLY_ROLLING"
SEARCH_POLICY = "SECONDLY"  # search's own per-second limit (its 429 may name no policy, only the message)
SEARCH_SECONDLY_MESSAGE = "secondly limit"
# Waits when a 429 carries no Retry-After: HubSpot's own Node SDK waits 10 s for the ten-second window
# and 1 s for search's per-second limit (RetryDecorator.ts).
WINDOW_WAIT = 10.0
SEARCH_WAIT = 1.0
MIN_LOCKED_WAIT = 2.0


def is_api_exception(exc: BaseException) -> bool:
    """An SDK ApiException of any package: it has an HTTP status (0 for a wrapped TLS error)."""
    return isinstance(getattr(exc, "status", None), int) and hasattr(exc, "body") and hasattr(exc, "headers")


def body_json(body: Any) -> Any:
    """An error or answer body as JSON data; None when it is not JSON (a gateway's HTML page)."""
    if isinstance(body, bytes | bytearray):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(body, str) or not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    try:
        value = headers.get(name)
    except AttributeError:
        return None
    if value is None and isinstance(headers, Mapping):
        value = next((v for k, v in headers.items() if str(k).lower() == name.lower()), None)
    return str(value) if value is not None else None


@dataclass(frozen=True)
class RateLimited:
    """What a 429 said: the policy hit and how long to wait."""

    policy: str  # DAILY, TEN_SECONDLY_ROLLING, SECONDLY (search's per-second limit), or what HubSpot sent
    wait: float
    message: str

    @property
    def daily(self) -> bool:
        return self.policy == DAILY_POLICY


def rate_limit(body: Any, headers: Any) -> RateLimited:
    data = body_json(body)
    data = data if isinstance(data, Mapping) else {}
    message = str(data.get("message") or "")
    policy = str(data.get("policyName") or "")
    if policy == "SECONDLY" or (not policy and SEARCH_SECONDLY_MESSAGE in message.lower()):
        policy = SEARCH_POLICY
    if not policy and "daily" in message.lower():
        policy = DAILY_POLICY
    policy = policy or TEN_SECONDLY_POLICY
    retry_after = parse_retry_after(header(headers, "Retry-After"))
    default = SEARCH_WAIT if policy == SEARCH_POLICY else WINDOW_WAIT
    return RateLimited(policy=policy, wait=retry_after if retry_after is not None else default, message=message)


def _detail(body: Any) -> tuple[str | None, str]:
    """(category, message) from HubSpot's error body {"category", "message", "errors": [...]}."""
    data = body_json(body)
    if not isinstance(data, Mapping):
        return None, ""
    category = data.get("category") or data.get("errorType")
    message = str(data.get("message") or "")
    inner = data.get("errors")
    if isinstance(inner, list) and inner and isinstance(inner[0], Mapping) and inner[0].get("message"):
        first = str(inner[0]["message"])
        if first not in message:
            message = f"{message} ({first})" if message else first
    return (str(category) if category else None), message


def _token_hint(connection: Connection) -> str:
    if connection.token_env:
        return (f"put a valid private-app token or service key in environment variable {connection.token_env} "
                "and try again")
    return "restart the command to get a new sandbox token"


def _host_port(connection: Connection) -> str:
    parts = urlsplit(connection.url)
    return f"{parts.hostname}:{parts.port or 443}"


def map_failure(exc: BaseException, connection: Connection, *, action: str, first_contact: bool = False,
                url: str | None = None) -> CrmsweepError:
    """The one translation from an SDK or urllib3 failure to a crmsweep error; one line, never the token.

    `first_contact`: the server has not answered once yet, so an unknown host or a refused port is the
    url's fault (exit 2), not a server gone away (retried). `url` is the request's, for a redirect.
    """
    where = f"HubSpot connection '{connection.name}'"
    token = connection.token
    if isinstance(exc, CrmsweepError):
        return exc
    if is_api_exception(exc):
        status = int(getattr(exc, "status", 0))
        body, headers = getattr(exc, "body", None), getattr(exc, "headers", None)
        category, detail = _detail(body)
        said = one_line(f"{category}: {detail}" if category and detail else (detail or category or ""), token)
        if status == 0:
            return _transport(exc, connection, where, action, first_contact)
        if 300 <= status < 400:
            return ConnectorError(
                f"{where} answered {action} with a redirect (HTTP {status} from {shown_url(url, token)} to "
                f"{shown_url(header(headers, 'Location'), token)}): crmsweep never follows redirects, since every "
                "request carries the token; check the connection's url (https://api.hubapi.com)",
                status=status, code="REDIRECT",
            )
        if status == 401:
            return AuthError(f"{where} refused the token when crmsweep tried to {action}: {_token_hint(connection)}",
                             status=status, code=category or "INVALID_AUTHENTICATION")
        if status == 403:
            return ConnectorError(
                f"{where} refused {action} (HTTP 403{': ' + said if said else ''}): give the private app or "
                "service key the scopes this needs (crm.objects.*.read/write, crm.schemas.*.read, "
                "crm.lists.read, settings.users.read, content)",
                status=status, code=category or "MISSING_SCOPES",
            )
        if status == 429:
            limited = rate_limit(body, headers)
            if limited.daily:
                return LimitExceeded(
                    f"{where} has spent its daily API allowance when crmsweep tried to {action}: resume after "
                    "it resets "
                    "(midnight in the portal's time zone)",
                    status=status, code=DAILY_POLICY,
                )
            return RetriableError(
                f"{where} is over its {limited.policy} rate limit when crmsweep tried to {action}: waited and "
                "tried again, "
                "and it kept refusing; try again later",
                status=status, code=limited.policy, retry_after=limited.wait,
            )
        if status in RETRIABLE_STATUS:
            retry_after = parse_retry_after(header(headers, "Retry-After"))
            if status == 423:
                retry_after = max(retry_after or 0.0, MIN_LOCKED_WAIT)
            reason = f" ({said})" if category else ""
            return RetriableError(
                f"{where} answered HTTP {status}{reason} when crmsweep tried to {action}: HubSpot or a proxy is "
                "unavailable, "
                "try again later",
                status=status, code=category, retry_after=retry_after,
            )
        if status == 414:
            return ConnectorError(f"{where} refused {action} as too long a URL (HTTP 414): report this as a "
                                  "crmsweep bug", status=status, code="URI_TOO_LONG")
        return ConnectorError(f"{where} rejected {action} with HTTP {status}{': ' + said if said else ''}",
                              status=status, code=category)
    if isinstance(exc, HTTPError):
        return _transport(exc, connection, where, action, first_contact)
    return ConnectorError(
        f"{where} gave an unreadable answer when crmsweep tried to {action} ({type(exc).__name__}): check the "
        "connection's url"
    )


def _transport(exc: BaseException, connection: Connection, where: str, action: str,
               first_contact: bool) -> CrmsweepError:
    found = list(causes(exc))
    if any(isinstance(c, SSLError) for c in found) or (getattr(exc, "status", None) == 0 and "SSL" in repr(exc)):
        if certificate_refused(exc):
            return EndpointError(
                f"{where}: TLS verification failed when crmsweep tried to {action}: the certificate of "
                f"{_host_port(connection)} "
                "is not trusted (wrong ca_file, or not the server you think): check the connection's url and ca_file"
            )
        if tls_handshake_failed(exc):
            return ConnectorError(f"{where}: the TLS handshake with {_host_port(connection)} failed when "
                                  f"crmsweep tried to {action}: "
                                  "check that the connection's url is an https:// address")
    if first_contact:
        if any(isinstance(c, NameResolutionError | socket.gaierror) for c in found):
            return EndpointError(f"{where}: the host {urlsplit(connection.url).hostname} is not known "
                                 "(DNS lookup failed): check the url")
        if any(isinstance(c, ConnectionRefusedError) for c in found):
            return EndpointError(f"{where}: nothing is listening at {_host_port(connection)}: check the url")
    timed_out = any(isinstance(c, ReadTimeoutError | ConnectTimeoutError | TimeoutError) for c in found)
    kind = "timed out" if timed_out else "lost the connection"
    return RetriableError(f"{where} {kind} when crmsweep tried to {action}: check the network or proxy and try again")


def outcome_unknown(exc: BaseException) -> bool:
    """True if the request may have reached HubSpot and been carried out before the failure."""
    if is_api_exception(exc):
        status = int(getattr(exc, "status", 0))
        if status == 0:
            return not tls_handshake_failed(exc)
        return status in _OUTCOME_UNKNOWN_STATUS
    found = list(causes(exc))
    # Never connected, or the handshake failed: nothing was sent.
    if any(isinstance(c, NewConnectionError | ConnectTimeoutError | NameResolutionError) for c in found):
        return False
    if any(isinstance(c, SSLError) for c in found) and tls_handshake_failed(exc):
        return False
    return isinstance(exc, MaxRetryError | ProtocolError | ReadTimeoutError | HTTPError)


__all__ = ["RETRIABLE_STATUS", "RateLimited", "body_json", "is_api_exception", "map_failure", "outcome_unknown",
           "rate_limit"]
