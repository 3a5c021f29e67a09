"""The HTTP session simple-salesforce runs over.

The session subclass does four things simple-salesforce cannot: pins TLS verification to the
connection's CA even when REQUESTS_CA_BUNDLE is set, refuses every redirect, counts every HTTP call,
and remembers the last response's Retry-After. It is separate from the connector because it is transport only: it knows
nothing of records or of Salesforce's answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from crmsweep.connectors.salesforce_errors import RedirectRefused, parse_retry_after

OAUTH_PREFIX = "/services/oauth2/"
# (connect, read) seconds. simple-salesforce sets no timeout, and a hung socket would hang a run.
DEFAULT_TIMEOUT = (15.0, 300.0)


class SalesforceSession(requests.Session):
    """A requests session that verifies against `ca_file` whatever the environment says, never follows
    a redirect, counts calls, and keeps the last response's Retry-After for the error mapping.

    REQUESTS_CA_BUNDLE normally overrides `session.verify`; turning `trust_env` off would fix that but
    also drop the admin's HTTPS_PROXY, so only `verify` is forced here.
    """

    def __init__(self, ca_file: Path | None = None, timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.ca_file = str(ca_file) if ca_file is not None else None
        self.default_timeout = timeout
        self.calls = 0  # API calls: what the org's daily allowance meters
        # OAuth endpoints (token, userinfo) are not API calls (Salesforce meters REST, SOAP and Bulk requests
        # against DailyApiRequests; the sandbox does likewise): counted apart, so `calls` is what the org sees.
        self.oauth_calls = 0
        # A backup reads objects (and Bulk result pages) from several threads over this one session.
        self._count_lock = threading.Lock()
        # Answers received, of any status: none yet means a failure may be the url's fault, not the server's.
        self.responses = 0
        self.last_retry_after: float | None = None
        self.last_date: str | None = None
        # Belt and braces: resolve_redirects below follows nothing anyway.
        self.max_redirects = 0
        if self.ca_file is not None:
            self.verify = self.ca_file

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: Any,
        stream: bool | None,
        verify: Any,
        cert: Any,
    ) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self.ca_file is not None:
            settings["verify"] = self.ca_file
        return settings

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        # Whatever the caller asked (requests defaults to following): simple-salesforce passes kwargs on.
        kwargs["allow_redirects"] = False
        oauth = urlsplit(str(request.url)).path.startswith(OAUTH_PREFIX)
        with self._count_lock:
            if oauth:
                self.oauth_calls += 1
            else:
                self.calls += 1
        self.last_retry_after = None
        response = super().send(request, **kwargs)
        # The CRM's clock, as its last answer gave it: a backup dates its window by it, not by ours alone.
        self.last_date = response.headers.get("Date") or self.last_date
        with self._count_lock:
            self.responses += 1
        self.last_retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if 300 <= response.status_code < 400:
            location = response.headers.get("Location")
            response.close()
            raise RedirectRefused(
                response.status_code,
                str(request.url),
                urljoin(str(request.url), location) if location else None,
            )
        return response

    def resolve_redirects(self, resp: requests.Response, req: requests.PreparedRequest,
                          *args: Any, **kwargs: Any) -> Iterator[Any]:
        # The one place requests follows a Location; with nothing yielded, no second request can exist.
        return iter(())


__all__ = ["DEFAULT_TIMEOUT", "SalesforceSession"]
