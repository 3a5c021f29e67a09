"""How Salesforce and network failures become crmsweep errors.

`map_failure` is the one place a simple-salesforce or requests failure becomes one of our errors. Beside
it: the rule for when a failed write may still have been carried out (`outcome_unknown`), Retry-After
parsing, undelete's SOAP faults and gateway pages, and message scrubbing (one line, never the token).
Kept apart from the connector because it is pure translation, exception in and error out, with no I/O.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)

from crmsweep.connectors.base import Connection
from crmsweep.connectors.http_failures import (
    causes,
    certificate_refused,
    masked,
    one_line,
    parse_retry_after,
    shown_url,
    tls_handshake_failed,
)
from crmsweep.connectors.salesforce_soap import SoapFault
from crmsweep.errors import AuthError, ConnectorError, CrmsweepError, EndpointError, LimitExceeded, RetriableError

_MIN_MASKED_OVER_MESSAGE = 8
RETRIABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# A write answered with these may have been carried out before the failure: see `outcome_unknown`.
_OUTCOME_UNKNOWN_STATUS = frozenset({500, 502, 504})


class RedirectRefused(requests.exceptions.RequestException):
    """A 3xx answer. Never followed: the request it answers carries the session (a Bearer header, or the
    SOAP envelope's SessionHeader), and a redirect, to http:// above all, would hand it on."""

    def __init__(self, status: int, url: str, location: str | None) -> None:
        super().__init__(f"HTTP {status} redirect")
        self.status = status
        self.url = url
        self.location = location


def _error_detail(content: Any) -> tuple[str | None, str | None]:
    """(errorCode, message) from a Salesforce error body: usually a JSON list of {errorCode, message}."""
    first = content[0] if isinstance(content, list) and content else content
    if isinstance(first, Mapping):
        code = first.get("errorCode") or first.get("statusCode") or first.get("error")
        message = first.get("message") or first.get("error_description")
        return (str(code) if code else None, str(message) if message else None)
    return None, None


def _refresh_hint(connection: Connection) -> str:
    if connection.auth is not None:
        return (f"crmsweep signed in again ({connection.auth.kind}) and Salesforce refused that session too: "
                "check the user's access (profile, the connected app's session policies) and try again")
    if connection.token_env:
        return f"refresh the session id in environment variable {connection.token_env} and try again"
    return "restart the command to get a new session"


def _host_port(connection: Connection) -> str:
    parts = urlsplit(connection.url)
    return f"{parts.hostname}:{parts.port or 443}"


def _endpoint_problem(exc: requests.exceptions.ConnectionError, connection: Connection) -> str | None:
    """What is wrong with the connection's address, if the failure says: an unknown host, or a port
    where nothing listens. None for anything else (and for a proxy's failure, which is not the url's)."""
    if isinstance(exc, requests.exceptions.ProxyError):
        return None
    found = list(causes(exc))
    if any(isinstance(c, socket.gaierror) or type(c).__name__ == "NameResolutionError" for c in found):
        return f"the host {urlsplit(connection.url).hostname} is not known (DNS lookup failed): check the url"
    if any(isinstance(c, ConnectionRefusedError) for c in found):
        return f"nothing is listening at {_host_port(connection)}: check the url"
    return None


def map_failure(
    exc: SalesforceError | requests.exceptions.RequestException | CrmsweepError,
    connection: Connection,
    *,
    action: str,
    retry_after: float | None = None,
    first_contact: bool = False,
) -> CrmsweepError:
    """The one translation from a simple-salesforce / requests failure to a crmsweep error.

    `action` names what was being done ("query Contact"); messages are one line and never hold the token.
    `first_contact` says the server has not answered once yet: an unknown host or a refused port is
    then the url's fault (exit 2 at once), while later in a run it is a server gone away (retried,
    and a stopped apply resumes).
    """
    error = _translate(exc, connection, action, retry_after=retry_after, first_contact=first_contact)
    if isinstance(error, ConnectorError) and len(connection.token or "") >= _MIN_MASKED_OVER_MESSAGE:
        # Once, over the finished message: an error code can echo the session as well as a message can.
        # (A token of a few characters is no session id: masking it over our own words would garble them.)
        error.args = (masked(str(error), connection.token), *error.args[1:])
        error.code = masked(error.code, connection.token) if error.code else error.code
    return error


def _translate(
    exc: BaseException, connection: Connection, action: str, *, retry_after: float | None, first_contact: bool
) -> CrmsweepError:
    where = f"Salesforce connection '{connection.name}'"
    token = connection.token
    if isinstance(exc, CrmsweepError):
        return exc
    if isinstance(exc, SalesforceError):
        status = exc.status
        code, detail = _error_detail(exc.content)
        said = one_line(f"{code}: {detail}" if code and detail else (detail or code or ""), token)
        if isinstance(exc, SalesforceExpiredSession) or status == 401:
            return AuthError(
                f"{where} refused the session ({code or 'INVALID_SESSION_ID'}) when crmsweep tried to {action}: "
                f"{_refresh_hint(connection)}",
                status=status,
                code=code or "INVALID_SESSION_ID",
            )
        if code == "REQUEST_LIMIT_EXCEEDED":
            return LimitExceeded(
                f"{where} is over its API request limit ({said}) when crmsweep tried to {action}: "
                "wait for the allowance to recover, then resume",
                status=status,
                code=code,
            )
        if isinstance(exc, SalesforceRefusedRequest) or status == 403:
            return ConnectorError(
                f"{where} refused {action} (insufficient access{': ' + said if said else ''}): "
                "check the API user's profile and permission sets",
                status=status,
                code=code,
            )
        if status in RETRIABLE_STATUS:
            # Gateways answer 5xx with HTML pages: report the status, not the page.
            reason = f" ({said})" if code else ""
            return RetriableError(
                f"{where} answered HTTP {status}{reason} when crmsweep tried to {action}: Salesforce or a proxy is "
                "unavailable, try again later",
                status=status,
                code=code,
                retry_after=retry_after,
            )
        return ConnectorError(
            f"{where} rejected {action} with HTTP {status}{': ' + said if said else ''}",
            status=status,
            code=code,
        )
    if isinstance(exc, RedirectRefused):
        return ConnectorError(
            f"{where} answered {action} with a redirect (HTTP {exc.status} from {shown_url(exc.url, token)} to "
            f"{shown_url(exc.location, token)}): crmsweep never follows redirects, since every request carries "
            "the session; check the connection's url (the org's own https:// address)",
            status=exc.status,
            code="REDIRECT",
        )
    if isinstance(exc, requests.exceptions.SSLError) and certificate_refused(exc):
        return EndpointError(
            f"{where}: TLS verification failed when crmsweep tried to {action}: the certificate of "
            f"{_host_port(connection)} is not "
            "trusted (wrong ca_file, or not the server you think): check the connection's url and ca_file"
        )
    if isinstance(exc, requests.exceptions.SSLError) and tls_handshake_failed(exc):
        return ConnectorError(
            f"{where}: the TLS handshake with {_host_port(connection)} failed when crmsweep tried to {action}: "
            "check that the connection's url is the org's https:// address"
        )
    if first_contact and isinstance(exc, requests.exceptions.ConnectionError) \
            and (problem := _endpoint_problem(exc, connection)):
        return EndpointError(f"{where}: {problem}")
    if isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ConnectionError
                  | requests.exceptions.ChunkedEncodingError):
        kind = "timed out" if isinstance(exc, requests.exceptions.Timeout) else "lost the connection"
        return RetriableError(
            f"{where} {kind} when crmsweep tried to {action}: check the network or proxy and try again",
            retry_after=retry_after,
        )
    # Anything else from requests: most often a body that is not JSON (a proxy's login page).
    return ConnectorError(
        f"{where} gave an unreadable answer when crmsweep tried to {action} ({type(exc).__name__}): check the "
        "connection's url"
    )


def refused_up_front(error: CrmsweepError) -> bool:
    """Whether Salesforce (or its gateway) refused the whole call before carrying any of it out: a spent
    allowance, refused credentials, a wrong endpoint, or 503/429 (unavailable, too many requests)."""
    if isinstance(error, LimitExceeded | AuthError | EndpointError):
        return True
    return isinstance(error, RetriableError) and error.status in (429, 503)


def outcome_unknown(exc: BaseException) -> bool:
    """True if the request may have reached Salesforce and been carried out before the failure."""
    if isinstance(exc, SalesforceError):
        return exc.status in _OUTCOME_UNKNOWN_STATUS
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    if isinstance(exc, requests.exceptions.SSLError):
        # A refused certificate or handshake means nothing was sent; a TLS error after that is a lost
        # connection like any other.
        return not tls_handshake_failed(exc)
    if isinstance(exc, requests.exceptions.ConnectionError):
        # A refused or unresolvable connection never carried the request.
        chain = repr(exc)
        return not any(marker in chain for marker in ("NewConnectionError", "NameResolutionError"))
    return isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ChunkedEncodingError)


def soap_fault_error(fault: SoapFault, connection: Connection, action: str) -> CrmsweepError:
    where = f"Salesforce connection '{connection.name}'"
    said = one_line(f"{fault.code}: {fault.message}", connection.token)
    if fault.code == "INVALID_SESSION_ID":
        return AuthError(f"{where} refused the session (INVALID_SESSION_ID) when crmsweep tried to {action}: "
                         f"{_refresh_hint(connection)}", status=fault.status, code=fault.code)
    if fault.code == "REQUEST_LIMIT_EXCEEDED":
        return LimitExceeded(f"{where} is over its API request limit ({said}) when crmsweep tried to {action}: "
                             "wait for the allowance to recover, then resume", status=fault.status, code=fault.code)
    return ConnectorError(f"{where} rejected {action}: {said}", status=fault.status, code=fault.code)


def http_error(response: requests.Response, action: str) -> SalesforceError:
    return SalesforceGeneralError(response.url, response.status_code, action, response.text[:200].encode())


__all__ = ["RedirectRefused", "map_failure", "one_line", "parse_retry_after"]
