"""The hubspot-api-client (unmodified) as the connector drives it: one client, its APIs built once.

Transport only, nothing of records: where to send (the connection's url, `host=` for the generated
APIs), whom to trust (`ssl_ca_cert=` the connection's CA), who we are (the bearer token: private-app
tokens and account Service Keys alike), a timeout on every call, and no retries or redirects of
urllib3's own. The SDK's `Retry` would resend a POST whose outcome is unknown and follow a redirect
with the token on it; so urllib3 gets `Retry(total=0, redirect=False)`: every failure surfaces at
once (a 3xx as an `ApiException` with its status), and the connector's `RetryPolicy` decides.

Every call asks for the raw answer (`_preload_content=False`): a backup keeps fields the SDK's models
do not know, and the rate-limit headers of each answer reach the pacer.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hubspot import HubSpot
from urllib3.util.retry import Retry

from crmsweep.connectors.base import Connection

# (connect, read) seconds: urllib3 waits forever without one, and a hung socket would hang a run.
DEFAULT_TIMEOUT = (15.0, 300.0)


def no_retries() -> Retry:
    """Nothing resent, nothing followed: a 3xx comes back as an answer (raise_on_redirect off)."""
    return Retry(total=0, connect=0, read=0, status=0, other=0, redirect=False, raise_on_status=False)


def _proxy_for(url: str) -> str | None:
    """The HTTPS proxy from the environment (as requests would use it), unless the host bypasses it."""
    host = urlsplit(url).hostname or ""
    proxy = urllib.request.getproxies().get("https")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy


@dataclass
class Answer:
    """One HTTP answer: status, decoded JSON body (None when empty) and headers."""

    status: int
    data: Any
    headers: dict[str, str] = field(default_factory=dict)


def read_answer(response: Any) -> Answer:
    """The raw urllib3 response an SDK call returns with `_preload_content=False`, read and released."""
    try:
        raw = response.data
    finally:
        release = getattr(response, "release_conn", None)
        if callable(release):
            release()
    text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else (raw or "")
    data = json.loads(text) if text.strip() else None
    headers = {str(k): str(v) for k, v in dict(getattr(response, "headers", {}) or {}).items()}
    return Answer(status=int(response.status), data=data, headers=headers)


class HubSpotClient:
    """The SDK client and the API objects the connector uses (each discovery access builds a new
    connection pool, so they are built once here)."""

    def __init__(self, connection: Connection, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        options: dict[str, Any] = {
            "access_token": connection.token,
            # Concatenated as is before each path: no trailing slash.
            "host": connection.url.rstrip("/"),
            "retry": no_retries(),
        }
        if connection.ca_file is not None:
            options["ssl_ca_cert"] = str(connection.ca_file)
        proxy = _proxy_for(connection.url)
        if proxy:
            options["proxy"] = proxy
        sdk = HubSpot(**options)
        self.objects = sdk.crm.objects.basic_api
        self.objects_batch = sdk.crm.objects.batch_api
        self.search = sdk.crm.objects.search_api
        self.properties = sdk.crm.properties.core_api
        self.property_groups = sdk.crm.properties.groups_api
        self.owners = sdk.crm.owners.owners_api
        self.users = sdk.settings.users.users_api
        self.lists = sdk.crm.lists.lists_api
        self.emails = sdk.marketing.emails.marketing_emails_api
        self.associations = sdk.crm.associations.v4.batch_api
        # For the few paths no generated API wraps (account details): same pool, token and CA.
        self.api_client = self.objects.api_client

    def raw(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Answer:
        """Call one generated API method for its raw answer."""
        response = fn(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
        return read_answer(response)

    def get_path(self, path: str) -> Answer:
        """GET a path no generated API wraps, through the same ApiClient (urllib3, token, CA, no retries)."""
        return self.call_path("GET", path)

    def call_path(self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (),
                  body: Any = None) -> Answer:
        """Call a path no generated API of this SDK version wraps (marketing campaigns, account details):
        repeated query names as given, a JSON body when there is one."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = self.api_client.call_api(
            path, method, query_params=list(query), header_params=headers, body=body, auth_settings=["oauth2"],
            _return_http_data_only=True, _preload_content=False, _request_timeout=self.timeout,
        )
        return read_answer(response)

    def close(self) -> None:
        seen: set[int] = set()
        for api in (self.objects, self.objects_batch, self.search, self.properties, self.property_groups,
                    self.owners, self.users, self.lists, self.emails, self.associations):
            pool = getattr(getattr(api.api_client, "rest_client", None), "pool_manager", None)
            if pool is not None and id(pool) not in seen:
                seen.add(id(pool))
                pool.clear()


__all__ = ["DEFAULT_TIMEOUT", "Answer", "HubSpotClient", "no_retries", "read_answer"]
