"""The Salesforce connector: simple-salesforce (unmodified) over a session we control.

The session subclass does three things simple-salesforce cannot: pins TLS verification to the
connection's CA even when REQUESTS_CA_BUNDLE is set, counts every HTTP call, and remembers the last
response's Retry-After. `map_failure` is the one place a Salesforce or network failure becomes one of
our errors; every call goes through `SalesforceConnector._call`, which applies the retry policy.
"""

from __future__ import annotations

import email.utils
import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote_plus, urlsplit
from xml.sax.saxutils import escape as xml_escape

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)

from crmsweep.connectors.base import Connection
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.connectors.salesforce_vocabulary import SALESFORCE_CAPABILITIES, SALESFORCE_VOCABULARY
from crmsweep.errors import AuthError, BadInput, ConnectorError, CrmsweepError, LimitExceeded, RetriableError
from crmsweep.model import ApiUsage, FieldKind, FieldSpec, Record, WriteResult

T = TypeVar("T")

DEFAULT_API_VERSION = "59.0"
# (connect, read) seconds. simple-salesforce sets no timeout, and a hung socket would hang a run.
DEFAULT_TIMEOUT = (15.0, 300.0)
# Salesforce refuses URIs over 16,384 bytes (414); stay far below so proxies never truncate either.
MAX_QUERY_URI_BYTES = 8_000
LOCK_ERROR = "UNABLE_TO_LOCK_ROW"
_MAX_MESSAGE = 300
_MAX_SHOWN = 60  # characters of a bad name or id repeated in an error

_KIND_BY_TYPE: Mapping[str, FieldKind] = {
    "boolean": FieldKind.BOOL,
    "int": FieldKind.INT,
    "long": FieldKind.INT,
    "double": FieldKind.FLOAT,
    "currency": FieldKind.FLOAT,
    "percent": FieldKind.FLOAT,
    "date": FieldKind.DATE,
    "datetime": FieldKind.DATETIME,
}
# Compound fields duplicate their component fields; base64 bodies do not belong in a Parquet column.
_SKIPPED_TYPES = frozenset({"address", "location", "base64"})

_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")
_RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")
_RETRIABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# A write answered with these may have been carried out before the failure: see `_outcome_unknown`.
_OUTCOME_UNKNOWN_STATUS = frozenset({500, 502, 504})
_RESEND_DUPLICATES = "a second sending could create duplicates"
_RESEND_REPORTS_FAILED = "a second sending would report the records it had already written as failed"

_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_SOAP_PARTNER = "urn:partner.soap.sforce.com"


# --- HTTP session -------------------------------------------------------------------------------------


class SalesforceSession(requests.Session):
    """A requests session that verifies against `ca_file` whatever the environment says, counts calls,
    and keeps the last response's Retry-After for the error mapping.

    REQUESTS_CA_BUNDLE normally overrides `session.verify`; turning `trust_env` off would fix that but
    also drop the admin's HTTPS_PROXY, so only `verify` is forced here.
    """

    def __init__(self, ca_file: Path | None = None, timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.ca_file = str(ca_file) if ca_file is not None else None
        self.default_timeout = timeout
        self.calls = 0
        self.last_retry_after: float | None = None
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
        self.calls += 1
        self.last_retry_after = None
        response = super().send(request, **kwargs)
        self.last_retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return response


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or garbled."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# --- failure mapping ------------------------------------------------------------------------------------


def _one_line(text: str, secret: str | None = None) -> str:
    if secret:
        text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _error_detail(content: Any) -> tuple[str | None, str | None]:
    """(errorCode, message) from a Salesforce error body: usually a JSON list of {errorCode, message}."""
    first = content[0] if isinstance(content, list) and content else content
    if isinstance(first, Mapping):
        code = first.get("errorCode") or first.get("statusCode") or first.get("error")
        message = first.get("message") or first.get("error_description")
        return (str(code) if code else None, str(message) if message else None)
    return None, None


def _refresh_hint(connection: Connection) -> str:
    if connection.token_env:
        return f"refresh the session id in environment variable {connection.token_env} and try again"
    return "restart the command to get a new session"


def map_failure(
    exc: SalesforceError | requests.exceptions.RequestException | CrmsweepError,
    connection: Connection,
    *,
    action: str,
    retry_after: float | None = None,
) -> CrmsweepError:
    """The one translation from a simple-salesforce / requests failure to a crmsweep error.

    `action` names what was being done ("query Contact"); messages are one line and never hold the token.
    """
    where = f"Salesforce connection '{connection.name}'"
    token = connection.token
    if isinstance(exc, CrmsweepError):
        return exc
    if isinstance(exc, SalesforceError):
        status = exc.status
        code, detail = _error_detail(exc.content)
        said = _one_line(f"{code}: {detail}" if code and detail else (detail or code or ""), token)
        if isinstance(exc, SalesforceExpiredSession) or status == 401:
            return AuthError(
                f"{where} refused the session ({code or 'INVALID_SESSION_ID'}) during {action}: "
                f"{_refresh_hint(connection)}",
                status=status,
                code=code or "INVALID_SESSION_ID",
            )
        if code == "REQUEST_LIMIT_EXCEEDED":
            return LimitExceeded(
                f"{where} is over its API request limit ({said}) during {action}: "
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
        if status in _RETRIABLE_STATUS:
            # Gateways answer 5xx with HTML pages: report the status, not the page.
            reason = f" ({said})" if code else ""
            return RetriableError(
                f"{where} answered HTTP {status}{reason} during {action}: Salesforce or a proxy is "
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
    if isinstance(exc, requests.exceptions.SSLError):
        return ConnectorError(
            f"{where}: TLS verification failed during {action}: check the connection's url and ca_file"
        )
    if isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ConnectionError
                  | requests.exceptions.ChunkedEncodingError):
        kind = "timed out" if isinstance(exc, requests.exceptions.Timeout) else "lost the connection"
        return RetriableError(
            f"{where} {kind} during {action}: check the network or proxy and try again",
            retry_after=retry_after,
        )
    # Anything else from requests: most often a body that is not JSON (a proxy's login page).
    return ConnectorError(
        f"{where} gave an unreadable answer during {action} ({type(exc).__name__}): check the connection's url"
    )


def _outcome_unknown(exc: BaseException) -> bool:
    """True if the request may have reached Salesforce and been carried out before the failure."""
    if isinstance(exc, SalesforceError):
        return exc.status in _OUTCOME_UNKNOWN_STATUS
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        # A refused or unresolvable connection never carried the request.
        chain = repr(exc)
        return not any(marker in chain for marker in ("NewConnectionError", "NameResolutionError"))
    return isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ChunkedEncodingError)


# --- records ------------------------------------------------------------------------------------------


def strip_attributes(value: Any) -> Any:
    """Drop Salesforce's "attributes" envelopes, also inside relationship fields and subqueries."""
    # Runs once per value of every backed-up record: recurse only into containers, and test with the
    # concrete types JSON decoding produces (dict, OrderedDict, list), far cheaper than an ABC check.
    if isinstance(value, dict):
        return {
            k: strip_attributes(v) if isinstance(v, dict | list) else v
            for k, v in value.items()
            if k != "attributes"
        }
    if isinstance(value, list):
        return [strip_attributes(v) if isinstance(v, dict | list) else v for v in value]
    return value


def field_spec(describe_field: Mapping[str, Any]) -> FieldSpec | None:
    """A FieldSpec from one describe field, or None for types a snapshot does not hold."""
    sf_type = str(describe_field.get("type", "string"))
    if sf_type in _SKIPPED_TYPES:
        return None
    return FieldSpec(
        name=str(describe_field["name"]),
        kind=_KIND_BY_TYPE.get(sf_type, FieldKind.STRING),
        provider_type=sf_type,
        nillable=bool(describe_field.get("nillable", True)),
        createable=bool(describe_field.get("createable", False)),
        updateable=bool(describe_field.get("updateable", False)),
        custom=bool(describe_field.get("custom", False)),
        reference_to=tuple(str(r) for r in describe_field.get("referenceTo") or ()),
    )


def _identifier(name: str, what: str = "object") -> str:
    """`name` if it can be an API name; names go into SOQL and URL paths, so anything else is refused."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise BadInput(
            f"{_shown(name)} is not a Salesforce {what} name: use one API name, letters, digits and _ "
            "starting with a letter (like Contact or Custom__c)"
        )
    return name


def _record_id(value: Any) -> str:
    if not isinstance(value, str) or not _RECORD_ID.match(value):
        raise BadInput(
            f"{_shown(value)} is not a Salesforce record id: expected 15 or 18 letters and digits "
            "(like 003000000000001AAA)"
        )
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def select_soql(object_name: str, fields: Sequence[str], where: str | None = None) -> str:
    columns = ", ".join(_identifier(f, "field") for f in fields)
    soql = f"SELECT {columns} FROM {_identifier(object_name)}"
    return f"{soql} WHERE {where}" if where else soql


def id_chunks(prefix_bytes: int, ids: Sequence[str], *, max_ids: int, max_bytes: int) -> Iterator[list[str]]:
    """Split ids so each `... IN ('a','b')` query URI stays under `max_bytes` once URL-encoded.

    `prefix_bytes` is the encoded length of everything but the id list.
    """
    chunk: list[str] = []
    size = prefix_bytes
    for record_id in ids:
        cost = len(quote_plus(f"'{record_id}',"))
        if chunk and (size + cost > max_bytes or len(chunk) >= max_ids):
            yield chunk
            chunk, size = [], prefix_bytes
        chunk.append(record_id)
        size += cost
    if chunk:
        yield chunk


def write_result(raw: Any, fallback_id: str | None) -> WriteResult:
    """One collections SaveResult / DeleteResult (or SOAP UndeleteResult as a dict) as a WriteResult."""
    if not isinstance(raw, Mapping):
        return WriteResult(id=fallback_id, ok=False, error_code="UNKNOWN", message="Salesforce sent no result")
    record_id = raw.get("id") or fallback_id
    if raw.get("success"):
        return WriteResult(id=record_id, ok=True)
    errors = raw.get("errors") or []
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], Mapping) else {}
    code = first.get("statusCode") or first.get("errorCode") or "UNKNOWN"
    return WriteResult(id=record_id, ok=False, error_code=str(code), message=_one_line(str(first.get("message", ""))))


# --- SOAP undelete ------------------------------------------------------------------------------------


def undelete_envelope(session_id: str, ids: Sequence[str]) -> bytes:
    id_elements = "".join(f"<urn:ids>{xml_escape(i)}</urn:ids>" for i in ids)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" xmlns:urn="{_SOAP_PARTNER}">'
        f"<soapenv:Header><urn:SessionHeader><urn:sessionId>{xml_escape(session_id)}</urn:sessionId>"
        "</urn:SessionHeader></soapenv:Header>"
        f"<soapenv:Body><urn:undelete>{id_elements}</urn:undelete></soapenv:Body>"
        "</soapenv:Envelope>"
    ).encode()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(element: ET.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return None


class SoapFault(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def parse_undelete_response(body: bytes, status: int) -> list[dict[str, Any]]:
    """Undelete results in request order as collections-style dicts; raises SoapFault for a fault."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise SoapFault("UNREADABLE_RESPONSE", f"HTTP {status}, not a SOAP document", status) from exc
    for element in root.iter():
        if _local(element.tag) == "Fault":
            faultcode = _child_text(element, "faultcode") or "SOAP_FAULT"
            message = _child_text(element, "faultstring") or ""
            # "sf:INVALID_SESSION_ID" -> "INVALID_SESSION_ID"; the faultstring repeats it as a prefix.
            code = faultcode.rsplit(":", 1)[-1]
            raise SoapFault(code, message.removeprefix(f"{code}: "), status)
    results: list[dict[str, Any]] = []
    for element in root.iter():
        if _local(element.tag) != "result":
            continue
        errors = [
            {"statusCode": _child_text(err, "statusCode"), "message": _child_text(err, "message")}
            for err in element
            if _local(err.tag) == "errors"
        ]
        results.append(
            {"id": _child_text(element, "id") or None, "success": _child_text(element, "success") == "true",
             "errors": errors}
        )
    return results


def _soap_fault_error(fault: SoapFault, connection: Connection, action: str) -> CrmsweepError:
    where = f"Salesforce connection '{connection.name}'"
    said = _one_line(f"{fault.code}: {fault.message}", connection.token)
    if fault.code == "INVALID_SESSION_ID":
        return AuthError(f"{where} refused the session (INVALID_SESSION_ID) during {action}: "
                         f"{_refresh_hint(connection)}", status=fault.status, code=fault.code)
    if fault.code == "REQUEST_LIMIT_EXCEEDED":
        return LimitExceeded(f"{where} is over its API request limit ({said}) during {action}: "
                             "wait for the allowance to recover, then resume", status=fault.status, code=fault.code)
    return ConnectorError(f"{where} rejected {action}: {said}", status=fault.status, code=fault.code)


# --- the connector ------------------------------------------------------------------------------------


class SalesforceConnector:
    """`crmsweep.connectors.base.Connector` for Salesforce (REST + SOAP undelete)."""

    provider = "salesforce"

    def __init__(
        self,
        connection: Connection,
        *,
        retry: RetryPolicy | None = None,
        max_uri_bytes: int = MAX_QUERY_URI_BYTES,
        query_batch_size: int | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        """`query_batch_size` (200..2000) asks Salesforce for smaller query pages; it may send bigger ones.
        `timeout` is (connect, read) seconds for each HTTP exchange."""
        if connection.provider != "salesforce":
            raise ValueError(f"connection '{connection.name}' is for {connection.provider}, not salesforce")
        url = urlsplit(connection.url)
        if url.scheme != "https" or not url.hostname:
            raise ConnectorError(f"Salesforce connection '{connection.name}' needs an https:// url")
        self.connection = connection
        self.connection_name = connection.name
        self.capabilities = SALESFORCE_CAPABILITIES
        self.vocabulary = SALESFORCE_VOCABULARY
        self._retry = retry or RetryPolicy()
        self._max_uri_bytes = max_uri_bytes
        if query_batch_size is not None and not 200 <= query_batch_size <= 2000:
            raise ValueError(f"query_batch_size must be between 200 and 2000, got {query_batch_size}")
        self._query_headers = {"Sforce-Query-Options": f"batchSize={query_batch_size}"} if query_batch_size else {}
        self._version = connection.api_version or DEFAULT_API_VERSION
        self._session = SalesforceSession(connection.ca_file, timeout)
        self._sf = Salesforce(
            instance_url=connection.url,
            session_id=connection.token,
            session=self._session,
            version=self._version,
        )
        self._org_id: str | None = None
        self._describes: dict[str, dict[str, Any]] = {}
        self._user_id: str | None = None

    # -- plumbing

    def _call(self, action: str, fn: Callable[[], T], *, resend_risk: str | None = None) -> T:
        """Run one HTTP exchange under the retry policy, mapping failures to our errors.

        `resend_risk` is set for writes whose second sending would not answer like the first, and says
        what it would do (a create makes duplicates; a delete or undelete that had landed answers
        ENTITY_IS_DELETED or UNDELETE_FAILED, so written records would be reported as failed). For those,
        a failure after the request may have reached Salesforce raises OUTCOME_UNKNOWN instead of a
        retry: the caller must read the records back to learn what happened.
        """

        def attempt() -> T:
            try:
                return fn()
            except (SalesforceError, requests.exceptions.RequestException) as exc:
                error = map_failure(exc, self.connection, action=action, retry_after=self._session.last_retry_after)
                if resend_risk and isinstance(error, RetriableError) and _outcome_unknown(exc):
                    said = f"HTTP {error.status}" if error.status else "no answer"
                    raise ConnectorError(
                        f"{action} on Salesforce connection '{self.connection_name}' may or may not have been "
                        f"carried out ({said}): not sent again, since {resend_risk}; the records must be read "
                        "back from Salesforce to know what happened",
                        status=error.status,
                        code="OUTCOME_UNKNOWN",
                    ) from exc
                raise error from exc

        return self._retry.call(attempt)

    # -- reads

    def org_id(self) -> str:
        if self._org_id is None:
            result = self._call("read the org id", lambda: self._sf.query("SELECT Id FROM Organization"))
            records = result.get("records") or []
            if not records:
                raise ConnectorError(
                    f"Salesforce connection '{self.connection_name}' returned no Organization row: "
                    "the API user needs read access to Organization"
                )
            self._org_id = str(records[0]["Id"])
        return self._org_id

    def api_version(self) -> str:
        return self._version

    def current_user_id(self) -> str | None:
        """From OAuth userinfo. None if this token may not ask (no `openid`/`id` scope): the scan then
        cannot hold the running user back, which only matters if that user has stopped logging in."""
        if self._user_id is None:
            try:
                info = self._call("userinfo", lambda: self._sf.oauth2("userinfo"))
            except (AuthError, LimitExceeded):
                raise
            except ConnectorError:
                return None
            user_id = info.get("user_id") if isinstance(info, Mapping) else None
            self._user_id = str(user_id) if user_id else ""
        return self._user_id or None

    def describe(self, object_name: str) -> dict[str, Any]:
        name = _identifier(object_name)
        if name not in self._describes:
            try:
                raw = self._call(f"describe {name}", lambda: self._sf.restful(f"sobjects/{name}/describe"))
            except ConnectorError as exc:
                if exc.status == 404:
                    raise BadInput(
                        f"the org of connection '{self.connection_name}' has no object '{name}': "
                        "use the API name, as in Setup's Object Manager (e.g. Contact, Custom__c)"
                    ) from None
                raise
            if not isinstance(raw, Mapping):
                raise ConnectorError(f"Salesforce returned no describe document for {name}")
            self._describes[name] = dict(raw)
        return self._describes[name]

    def fields(self, object_name: str) -> list[FieldSpec]:
        specs = (field_spec(f) for f in self.describe(object_name).get("fields") or [])
        return [spec for spec in specs if spec is not None]

    def count(self, object_name: str, *, where: str | None = None) -> int:
        soql = f"SELECT COUNT() FROM {_identifier(object_name)}" + (f" WHERE {where}" if where else "")
        result = self._call(f"count {object_name}", lambda: self._sf.query(soql))
        return int(result["totalSize"])

    def iter_pages(
        self,
        object_name: str,
        fields: Sequence[str],
        *,
        where: str | None = None,
        include_deleted: bool = False,
    ) -> Iterator[list[Record]]:
        soql = select_soql(object_name, fields, where)
        action = f"query {object_name}"
        headers = self._query_headers
        page: Any = self._call(
            action, lambda: self._sf.query(soql, include_deleted=include_deleted, headers=headers)
        )
        seen: set[str] = set()
        while True:
            next_url = page.get("nextRecordsUrl")
            done = bool(page.get("done", True))
            records: list[Record] = [strip_attributes(r) for r in page.get("records") or []]
            page = None  # hold one page at a time, not two
            if records:
                yield records
            del records
            if done:
                return
            if not next_url:
                raise ConnectorError(f"Salesforce said {action} was not done but gave no nextRecordsUrl")
            if next_url in seen:
                raise ConnectorError(
                    f"Salesforce repeated a nextRecordsUrl during {action}: stopped to avoid an endless loop"
                )
            seen.add(next_url)
            page = self._call(
                action,
                functools.partial(self._sf.query_more, str(next_url), identifier_is_url=True, headers=headers),
            )

    def read(
        self, object_name: str, ids: Sequence[str], fields: Sequence[str], *, include_deleted: bool = True
    ) -> dict[str, Record]:
        id_field = self.vocabulary.id_field
        columns = list(fields) if id_field in fields else [id_field, *fields]
        unique_ids = list(dict.fromkeys(_record_id(i) for i in ids))
        head = select_soql(object_name, columns, f"{id_field} IN (")
        endpoint = "queryAll/" if include_deleted else "query/"
        # Everything but the ids: base URL, endpoint, "?q=", the encoded SELECT and the closing ")".
        prefix = len(self._sf.base_url) + len(endpoint) + len("?q=") + len(quote_plus(head + ")"))
        found: dict[str, Record] = {}
        for chunk in id_chunks(prefix, unique_ids, max_ids=self.capabilities.max_ids_per_read,
                               max_bytes=self._max_uri_bytes):
            where = f"{id_field} IN ({','.join(repr_soql(i) for i in chunk)})"
            for page in self.iter_pages(object_name, columns, where=where, include_deleted=include_deleted):
                for record in page:
                    found[str(record[id_field])] = record
        return found

    # -- writes

    def _check_batch(self, object_name: str, size: int) -> None:
        _identifier(object_name)
        if size > self.capabilities.max_batch_write:
            raise ValueError(
                f"{size} records in one Salesforce write; at most {self.capabilities.max_batch_write} per call"
            )

    def _write(
        self,
        action: str,
        items: Sequence[T],
        send: Callable[[list[T]], Any],
        fallback_id: Callable[[T], str | None],
        *,
        resend_risk: str | None,
    ) -> list[WriteResult]:
        """Send `items`, then resend only the records Salesforce could not lock, with backoff.

        A failure in any round is raised, not turned into per-record results: nothing about the records
        in flight is known then, and the caller settles them (and those earlier rounds wrote) by reading
        them back. Only a row still locked after the last round is a per-record failure.
        """
        results: list[WriteResult | None] = [None] * len(items)
        pending = list(range(len(items)))
        attempt = 0
        while pending:
            attempt += 1
            batch = [items[i] for i in pending]
            raw = self._call(action, functools.partial(send, batch), resend_risk=resend_risk)
            if not isinstance(raw, list) or len(raw) != len(batch):
                raise ConnectorError(
                    f"Salesforce answered {action} with {len(raw) if isinstance(raw, list) else 'no'} results "
                    f"for {len(batch)} records: check the records in Salesforce before trying again"
                )
            locked: list[int] = []
            for index, answer in zip(pending, raw, strict=True):
                result = write_result(answer, fallback_id(items[index]))
                results[index] = result
                if not result.ok and result.error_code == LOCK_ERROR:
                    locked.append(index)
            if not locked or attempt >= self._retry.attempts:
                break
            self._retry.sleep(self._retry.backoff(attempt))
            pending = locked
        return [r for r in results if r is not None]

    def delete(self, object_name: str, ids: Sequence[str]) -> list[WriteResult]:
        self._check_batch(object_name, len(ids))
        checked = [_record_id(i) for i in ids]
        if not checked:
            return []

        def send(batch: list[str]) -> Any:
            params = {"ids": ",".join(batch), "allOrNone": "false"}
            return self._sf.restful("composite/sobjects", params=params, method="DELETE")

        return self._write(f"delete {object_name}", checked, send, lambda i: i, resend_risk=_RESEND_REPORTS_FAILED)

    def update(self, object_name: str, records: Sequence[Record]) -> list[WriteResult]:
        self._check_batch(object_name, len(records))
        id_field = self.vocabulary.id_field
        bodies = [
            {"attributes": {"type": object_name}, "id": _record_id(r.get(id_field)),
             **{k: v for k, v in r.items() if k not in (id_field, "attributes")}}
            for r in records
        ]
        if not bodies:
            return []

        def send(batch: list[dict[str, Any]]) -> Any:
            body = {"allOrNone": False, "records": batch}
            return self._sf.restful("composite/sobjects", method="PATCH", json=body)

        # Sending the same values twice leaves the same record: an update is safe to resend.
        return self._write(f"update {object_name}", bodies, send, lambda b: str(b["id"]), resend_risk=None)

    def create(self, object_name: str, records: Sequence[Record]) -> list[WriteResult]:
        self._check_batch(object_name, len(records))
        bodies = [
            {"attributes": {"type": object_name}, **{k: v for k, v in r.items() if k != "attributes"}}
            for r in records
        ]
        if not bodies:
            return []

        def send(batch: list[dict[str, Any]]) -> Any:
            body = {"allOrNone": False, "records": batch}
            return self._sf.restful("composite/sobjects", method="POST", json=body)

        return self._write(f"create {object_name}", bodies, send, lambda _b: None, resend_risk=_RESEND_DUPLICATES)

    def undelete(self, object_name: str, ids: Sequence[str]) -> list[WriteResult]:
        self._check_batch(object_name, len(ids))
        checked = [_record_id(i) for i in ids]
        if not checked:
            return []
        action = f"undelete {object_name}"
        url = f"https://{self._sf.sf_instance}/services/Soap/u/{self._version}"
        headers = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "undelete"}

        def post(batch: list[str]) -> Any:
            response = self._session.post(url, data=undelete_envelope(self.connection.token, batch), headers=headers)
            if response.status_code in _RETRIABLE_STATUS and "xml" not in response.headers.get("Content-Type", ""):
                raise _http_error(response, action)
            try:
                return parse_undelete_response(response.content, response.status_code)
            except SoapFault as fault:
                if fault.code == "UNREADABLE_RESPONSE" and response.status_code in _RETRIABLE_STATUS:
                    # A gateway's XML page, not Salesforce's answer: judged like any failed HTTP exchange.
                    raise _http_error(response, action) from None
                raise _soap_fault_error(fault, self.connection, action) from None

        return self._write(action, checked, post, lambda i: i, resend_risk=_RESEND_REPORTS_FAILED)

    # -- accounting

    def api_usage(self) -> ApiUsage:
        usage = self._sf.api_usage.get("api-usage")
        used = getattr(usage, "used", None)
        total = getattr(usage, "total", None)
        return ApiUsage(calls=self._session.calls, org_used=used, org_max=total)

    def close(self) -> None:
        self._session.close()


def repr_soql(value: str) -> str:
    """A SOQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _http_error(response: requests.Response, action: str) -> SalesforceError:
    return SalesforceGeneralError(response.url, response.status_code, action, response.text[:200].encode())


__all__ = [
    "DEFAULT_API_VERSION",
    "SalesforceConnector",
    "SalesforceSession",
    "map_failure",
    "parse_retry_after",
]
