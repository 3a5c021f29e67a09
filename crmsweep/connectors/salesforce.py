"""The Salesforce connector: simple-salesforce (unmodified) over a session we control.

The session is in `salesforce_session`, the translation of failures into our errors in
`salesforce_errors`, and the SOAP undelete XML in `salesforce_soap`; this module holds the connector
and the small helpers that shape its SOQL, ids and records. Every call goes through
`SalesforceConnector._call`, which applies the retry policy.
"""

from __future__ import annotations

import email.utils
import functools
import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import quote_plus, urlsplit

import pyarrow as pa
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceResourceNotFound

from crmsweep.connectors.base import (
    AssociationsUnsupported,
    ChangeLogUnavailable,
    Connection,
    RecordFilter,
    Scalar,
)
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.connectors.salesforce_auth import sign_in
from crmsweep.connectors.salesforce_bulk_ingest import (
    DEFAULT_BULK_THRESHOLD,
    NULL_VALUE,
    SalesforceIngestJob,
    bulk_operation,
    create_job,
)
from crmsweep.connectors.salesforce_bulk_query import BulkQueryReader, PollSchedule
from crmsweep.connectors.salesforce_errors import (
    RETRIABLE_STATUS,
    http_error,
    map_failure,
    one_line,
    outcome_unknown,
    refused_up_front,
    soap_fault_error,
)
from crmsweep.connectors.salesforce_fields import PSEUDO_OBJECTS, CustomFieldDefinitions, fields_of
from crmsweep.connectors.salesforce_session import DEFAULT_TIMEOUT, SalesforceSession
from crmsweep.connectors.salesforce_soap import SoapFault, parse_undelete_response, undelete_envelope
from crmsweep.decimal_text import DECIMAL_PATTERN, decimal_text, dumps_exact
from crmsweep.errors import (
    AuthError,
    BadInput,
    ConnectorError,
    CrmsweepError,
    EndpointError,
    LimitExceeded,
    RetriableError,
    UnknownObject,
)
from crmsweep.model import (
    ApiAllowance,
    ApiUsage,
    CreateAttempt,
    FieldKind,
    FieldSpec,
    Op,
    ReadPlan,
    Record,
    Vocabulary,
    WriteResult,
    canonical_datetime,
)
from crmsweep.providers.salesforce import SALESFORCE_CAPABILITIES, SALESFORCE_VOCABULARY

T = TypeVar("T")

DEFAULT_API_VERSION = "59.0"
# Salesforce refuses a URI over 16,384 bytes (414), and a URI with its headers over 16,384 (431). Our
# headers (a bearer token of about 112 bytes, host, user agent, query options) stay under 1 KB, so
# 15,000 bytes leaves 1,384 for them: the longest query that is safe, which packs 500 ids of 18
# characters (27 bytes each once quoted and URL-encoded) with room for the fields a check reads.
MAX_QUERY_URI_BYTES = 15_000
# Above this many rows (one COUNT()), a whole-object read runs a Bulk API 2.0 query job instead of REST
# pages: a job costs about five calls whatever its size, REST one per 2,000 rows.
BULK_QUERY_ROWS = 10_000
LOCK_ERROR = "UNABLE_TO_LOCK_ROW"
# The run log dates an intent by this machine's clock, CreatedDate is Salesforce's: looking that much
# earlier keeps a skewed clock from hiding a record the create made (which a resend would duplicate).
CLOCK_MARGIN = timedelta(minutes=10)
_MAX_SHOWN = 60  # characters of a bad name or id repeated in an error

_KIND_BY_TYPE: Mapping[str, FieldKind] = {
    "boolean": FieldKind.BOOL,
    "int": FieldKind.INT,
    "long": FieldKind.INT,
    # Up to 18 digits (describe `precision`), more than a double holds: kept as the exact decimal text
    # (FieldKind.DECIMAL), read with every digit of the JSON number and written back with them.
    "double": FieldKind.DECIMAL,
    "currency": FieldKind.DECIMAL,
    "percent": FieldKind.DECIMAL,
    "date": FieldKind.DATE,
    "datetime": FieldKind.DATETIME,
}
# Compound fields duplicate their component fields; base64 bodies do not belong in a Parquet column.
_SKIPPED_TYPES = frozenset({"address", "location", "base64"})

_DECIMAL = re.compile(DECIMAL_PATTERN)
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*")
_RECORD_ID = re.compile(r"[A-Za-z0-9]{15}([A-Za-z0-9]{3})?")
_RESEND_DUPLICATES = "a second sending could create duplicates"
# Reports and dashboards are read-only sObjects: the Analytics API deletes them (to the recycle bin),
# one id per call, since that API has no batch.
_ANALYTICS_RESOURCES: Mapping[str, str] = {"Report": "reports", "Dashboard": "dashboards"}
# Objects Salesforce queries only with a filter on one of these id fields, by = or IN (an
# "implementation restriction"): read without one, they are read through `parent`'s ids in `through`.
_FILTERED_ONLY: Mapping[str, tuple[tuple[str, ...], str, str]] = {
    "ContentDocumentLink": (("ContentDocumentId", "LinkedEntityId"), "ContentDocumentId", "ContentDocument"),
}
# A task or event logged, changed or deleted recomputes LastActivityDate of the records it points at,
# and Salesforce does not move their SystemModstamp for it (see cleanup/live_check.py).
_ACTIVITY_LINKS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "WhoId": ("Contact", "Lead"), "WhatId": ("Account", "Opportunity"), "AccountId": ("Account",)})
# getDeleted answers for starts within the last 30 days; a day less, so a start at the edge is not
# refused for the seconds the request takes.
DELETE_LOG_DAYS = timedelta(days=29)
# How far the delete log may lag behind now before an increment reads the object whole: within it the
# next increment's overlap (5 minutes) lists what this one could not.
DELETE_LOG_LAG = timedelta(minutes=2)
_RESEND_REPORTS_FAILED = "a second sending would report the records it had already written as failed"


# --- records ------------------------------------------------------------------------------------------


def _when(value: Any) -> datetime | None:
    """A Salesforce datetime ("2026-12-01T10:00:00.000+0000") as an aware datetime; None if it is not one."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("+0000", "+00:00").replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def strip_attributes(value: Any) -> Any:
    """Drop Salesforce's "attributes" envelopes, also inside relationship fields and subqueries, and give
    each number JSON wrote with a point or an exponent (read as a Decimal, every digit) as its text: what
    a DECIMAL field keeps and writes back."""
    # Runs once per value of every backed-up record: recurse only into containers, and test with the
    # concrete types JSON decoding produces (dict, OrderedDict, list), far cheaper than an ABC check.
    if isinstance(value, dict):
        return {
            k: strip_attributes(v) if isinstance(v, dict | list | Decimal) else v
            for k, v in value.items()
            if k != "attributes"
        }
    if isinstance(value, list):
        return [strip_attributes(v) if isinstance(v, dict | list | Decimal) else v for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


def exact_body(records: Sequence[Mapping[str, Any]], specs: Mapping[str, FieldSpec]) -> Any:
    """`records` with the values of DECIMAL fields given as text turned into Decimals, which
    `decimal_text.dumps_exact` writes as JSON numbers with exactly those digits (Salesforce takes numbers
    as JSON numbers; a float would round an 18-digit one). Other values, and a text that is not a finite
    decimal (Salesforce refuses that record), are left as they are."""
    decimals = {name for name, spec in specs.items() if spec.kind is FieldKind.DECIMAL}
    return [{k: Decimal(decimal_text(v)) if k in decimals and isinstance(v, str) and _DECIMAL.fullmatch(v.strip())
             else v for k, v in r.items()} for r in records]


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
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise BadInput(
            f"{_shown(name)} is not a Salesforce {what} name: use one API name, letters, digits and _ "
            "starting with a letter (like Contact or Custom__c)"
        )
    return name


def _record_id(value: Any) -> str:
    if not isinstance(value, str) or not _RECORD_ID.fullmatch(value):
        raise BadInput(
            f"{_shown(value)} is not a Salesforce record id: expected 15 or 18 letters and digits "
            "(like 003000000000001AAA)"
        )
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def select_soql(object_name: str, fields: Sequence[str]) -> str:
    columns = ", ".join(_identifier(f, "field") for f in fields)
    return f"SELECT {columns} FROM {_identifier(object_name)}"


def soql_literal(value: Scalar) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return repr_soql(str(value))


def filter_conditions(flt: RecordFilter, vocabulary: Vocabulary) -> list[str]:
    """The filter's conditions as SOQL (without the ids, which are chunked); ANDed by the caller."""
    conditions: list[str] = []
    if flt.since is not None:
        # A canonical datetime ("2024-01-31T00:00:00.000Z") is a SOQL datetime literal as it stands.
        conditions.append(f"{_identifier(vocabulary.fingerprint_field, 'field')} >= {flt.since}")
    for name, value in flt.equals.items():
        conditions.append(f"{_identifier(name, 'field')} = {soql_literal(value)}")
    # Salesforce stores an empty text value as null: "not null" is "has a value".
    conditions.extend(f"{_identifier(name, 'field')} != null" for name in flt.has_value)
    return conditions


def _no_associations(from_object: str, to_object: str) -> AssociationsUnsupported:
    return AssociationsUnsupported(
        f"Salesforce has no associations between {from_object} and {to_object}: its records are linked "
        "by lookup fields and junction objects, read and written like any other field or record"
    )


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


def write_result(raw: Any, fallback_id: str | None, secret: str | None = None) -> WriteResult:
    """One collections SaveResult / DeleteResult (or SOAP UndeleteResult as a dict) as a WriteResult.

    The CRM's per-record text (a trigger's or validation rule's message) goes into the run log, `--json`
    and the terminal, so it is masked like a whole-call error: `secret` (the session id) never shows."""
    if not isinstance(raw, Mapping):
        return WriteResult(id=fallback_id, ok=False, error_code="UNKNOWN", message="Salesforce sent no result")
    answered = raw.get("id")
    # An id goes into the run log and drives later writes: take only what has the shape of one.
    record_id = answered if isinstance(answered, str) and _RECORD_ID.fullmatch(answered) else fallback_id
    if raw.get("success"):
        return WriteResult(id=record_id, ok=True)
    errors = raw.get("errors") or []
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], Mapping) else {}
    code = first.get("statusCode") or first.get("errorCode") or "UNKNOWN"
    return WriteResult(id=record_id, ok=False, error_code=one_line(str(code), secret),
                       message=one_line(str(first.get("message", "")), secret))


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
        bulk_query_rows: int = BULK_QUERY_ROWS,
        bulk_polls: PollSchedule | None = None,
        bulk_threshold: int | None = None,
    ) -> None:
        """`query_batch_size` (200..2000) asks Salesforce for smaller query pages; it may send bigger ones.
        `timeout` is (connect, read) seconds for each HTTP exchange. `bulk_query_rows`: see `read_plan`.
        A delete or update of more than `bulk_threshold` records of one object (default: the
        connection's, else 2,000) goes through a Bulk API 2.0 job."""
        if connection.provider != "salesforce":
            raise ValueError(f"connection '{connection.name}' is for {connection.provider}, not salesforce")
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
        # Held while a session is replaced: threads refused with the same expired session sign in once.
        self._auth_lock = threading.Lock()
        if connection.auth is not None:
            connection = self._signed_in(connection)
        url = urlsplit(connection.url)
        if url.scheme != "https" or not url.hostname:
            raise ConnectorError(f"Salesforce connection '{connection.name}' needs an https:// url")
        # The session id is here once signed in (Connection's repr hides it); replaced on re-sign-in.
        self.connection = connection
        self._sf = Salesforce(
            instance_url=connection.url,
            session_id=connection.token,
            session=self._session,
            version=self._version,
            # Every digit of a number with a point or an exponent (up to 18 in Salesforce), not a double's.
            parse_float=Decimal,
        )
        self._org_id: str | None = None
        self._describes: dict[str, dict[str, Any]] = {}
        # Custom field definitions and their uses, as the pseudo-objects a backup and a pass read.
        self.definitions = CustomFieldDefinitions(self)
        self._user_id: str | None = None
        self.bulk_query_rows = bulk_query_rows
        self._plans: dict[str, ReadPlan] = {}
        self._bulk = BulkQueryReader(
            session=self._session, base_url=self._sf.base_url, headers=lambda: self._sf.headers,
            call=self._call, api_version=self._version, polls=bulk_polls or PollSchedule(),
        )
        threshold = bulk_threshold or connection.bulk_threshold or DEFAULT_BULK_THRESHOLD
        if threshold < 1:
            raise ValueError(f"bulk_threshold must be at least 1, got {threshold}")
        self.bulk_threshold = threshold

    # -- plumbing

    def _signed_in(self, connection: Connection) -> Connection:
        """`connection` with the session id and instance its sign-in flow gives (retried like any call)."""
        token, instance = self._retry.call(lambda: sign_in(connection, self._session))
        return replace(connection, token=token, url=instance)

    def _reauthenticate(self, refused_token: str) -> None:
        """Sign in again after Salesforce refused `refused_token` (INVALID_SESSION_ID). Under the lock, and
        only if no other thread has already replaced that session: N threads refused at once sign in once."""
        with self._auth_lock:
            if self.connection.token != refused_token:
                return
            renewed = self._signed_in(self.connection)
            if renewed.url != self.connection.url:
                # Every url simple-salesforce built points at the old instance: a new run starts clean.
                raise ConnectorError(
                    f"Salesforce connection '{self.connection_name}' signed in again and was sent to another "
                    "instance: run the command again (an interrupted apply resumes)"
                )
            self.connection = renewed
            self._sf.session_id = renewed.token
            self._sf.headers = {**self._sf.headers, "Authorization": f"Bearer {renewed.token}"}

    def _may_sign_in_again(self, error: CrmsweepError, signed_in_again: bool) -> bool:
        return (not signed_in_again and self.connection.can_sign_in_again and isinstance(error, AuthError)
                and error.code == "INVALID_SESSION_ID")

    def _call(self, action: str, fn: Callable[[], T], *, resend_risk: str | None = None) -> T:
        """Run one HTTP exchange under the retry policy, mapping failures to our errors.

        `resend_risk` is set for writes whose second sending would not answer like the first, and says
        what it would do (a create makes duplicates; a delete or undelete that had landed answers
        ENTITY_IS_DELETED or UNDELETE_FAILED, so written records would be reported as failed). For those,
        a failure after the request may have reached Salesforce raises OUTCOME_UNKNOWN instead of a
        retry: the caller must read the records back to learn what happened.
        """

        maybe_ran = False  # whether any attempt may have reached Salesforce and been carried out
        # An expired session is replaced once per call, where the flow can sign in again (a refused
        # session means nothing was carried out, so even a write may be sent again); a second refusal
        # is the AuthError it always was.
        signed_in_again = False

        def attempt() -> T:
            nonlocal maybe_ran, signed_in_again
            sent_with = self.connection.token
            try:
                return fn()
            except AuthError as refused:  # undelete's SOAP fault, already ours
                if not self._may_sign_in_again(refused, signed_in_again):
                    raise
                signed_in_again = True
                self._reauthenticate(sent_with)
                return attempt()
            except (SalesforceError, requests.exceptions.RequestException) as exc:
                error = map_failure(exc, self.connection, action=action, retry_after=self._session.last_retry_after,
                                    first_contact=self._session.responses == 0)
                if self._may_sign_in_again(error, signed_in_again):
                    signed_in_again = True
                    self._reauthenticate(sent_with)
                    return attempt()
                maybe_ran = maybe_ran or outcome_unknown(exc) or not refused_up_front(error)
                if isinstance(error, ConnectorError):
                    error.never_ran = not maybe_ran
                if resend_risk and isinstance(error, RetriableError) and outcome_unknown(exc):
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

    def server_time(self) -> datetime | None:
        """Salesforce's clock as its last answer's Date header gave it (to the second); None before any."""
        if not self._session.last_date:
            return None
        try:
            moment = email.utils.parsedate_to_datetime(self._session.last_date)
        except (TypeError, ValueError):
            return None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    def current_user_id(self) -> str | None:
        """From OAuth userinfo. None if this token may not ask (no `openid`/`id` scope): the scan then
        cannot hold the running user back, which only matters if that user has stopped logging in."""
        if self._user_id is None:
            try:
                info = self._call("userinfo", lambda: self._sf.oauth2("userinfo"))
            except (AuthError, LimitExceeded, EndpointError):
                raise
            except ConnectorError:
                return None
            user_id = info.get("user_id") if isinstance(info, Mapping) else None
            self._user_id = str(user_id) if user_id else ""
        return self._user_id or None

    def describe(self, object_name: str) -> dict[str, Any]:
        name = _identifier(object_name)
        if name in PSEUDO_OBJECTS:
            return {"name": name, "fields": [f.to_dict() for f in fields_of(name)]}
        if name not in self._describes:
            try:
                raw = self._call(f"describe {name}", lambda: self._sf.restful(f"sobjects/{name}/describe"))
            except ConnectorError as exc:
                if exc.status == 404:
                    raise UnknownObject(
                        f"the org of connection '{self.connection_name}' has no object '{name}': "
                        "use the API name, as in Setup's Object Manager (e.g. Contact, Custom__c)"
                    ) from None
                raise
            if not isinstance(raw, Mapping):
                raise ConnectorError(f"Salesforce returned no describe document for {name}")
            self._describes[name] = dict(raw)
        return self._describes[name]

    def key_prefixes(self) -> dict[str, str]:
        # The global describe (GET /sobjects/) lists every object the user can see with its keyPrefix; some
        # (system objects without records of their own) have none.
        raw = self._call("describe the org's objects", lambda: self._sf.describe())
        listed = raw.get("sobjects") if isinstance(raw, Mapping) else None
        if not isinstance(listed, list):
            raise ConnectorError("Salesforce returned no list of objects from the global describe (GET /sobjects/)")
        return {str(o["name"]): str(o["keyPrefix"]) for o in listed
                if isinstance(o, Mapping) and o.get("name") and o.get("keyPrefix")}

    def fields(self, object_name: str) -> list[FieldSpec]:
        if object_name in PSEUDO_OBJECTS:
            return fields_of(object_name)
        specs = (field_spec(f) for f in self.describe(object_name).get("fields") or [])
        return [spec for spec in specs if spec is not None]

    def count(
        self,
        object_name: str,
        *,
        since: str | None = None,
        ids: Sequence[str] | None = None,
        equals: Mapping[str, Scalar] | None = None,
        has_value: Sequence[str] = (),
        include_deleted: bool = False,
    ) -> int:
        flt = RecordFilter.of(since=since, ids=ids, equals=equals, has_value=has_value)
        head = f"SELECT COUNT() FROM {_identifier(object_name)}"
        total = 0
        endpoint = "queryAll/" if include_deleted else "query/"
        for soql in self._filtered_soql(object_name, head, flt, endpoint):
            result = self._call(f"count {object_name}",
                                functools.partial(self._sf.query, soql, include_deleted=include_deleted))
            total += int(result["totalSize"])
        return total

    def cancel_reads(self) -> None:
        """Stop the Bulk jobs this connector is reading (another thread's backup is failing): they end
        at their next poll or page, aborted and deleted. For good: a cancelled connector is given up."""
        self._bulk.cancel()

    def iter_text_batches(self, object_name: str, fields: Sequence[str], *,
                          include_deleted: bool = False) -> Iterator[pa.RecordBatch] | None:
        """A whole-object read as Arrow batches of text columns (`fields`, null for an empty value), where
        `read_plan` chose a Bulk job, whose CSV is text column by column; None where the read is REST
        (then `iter_pages`). The caller types the columns: no record dict per row on the largest reads."""
        plan = self._plans.get(object_name)
        if plan is None or plan.method != "bulk" or object_name in PSEUDO_OBJECTS:
            return None
        return self._bulk.text_batches(object_name, select_soql(object_name, fields), list(fields),
                                       include_deleted=include_deleted)

    def iter_pages(
        self,
        object_name: str,
        fields: Sequence[str],
        *,
        since: str | None = None,
        ids: Sequence[str] | None = None,
        equals: Mapping[str, Scalar] | None = None,
        has_value: Sequence[str] = (),
        include_deleted: bool = False,
    ) -> Iterator[list[Record]]:
        flt = RecordFilter.of(since=since, ids=ids, equals=equals, has_value=has_value)
        if object_name in PSEUDO_OBJECTS:
            rows = (self.definitions.read(object_name, list(flt.ids), [*fields, *flt.fields(self.vocabulary)])
                    if flt.ids is not None else None)
            pages = [list(rows.values())] if rows is not None else self.definitions.pages(
                object_name, [*fields, *flt.fields(self.vocabulary)], include_deleted=include_deleted)
            for page in pages:
                kept = [{k: v for k, v in r.items() if k in {"Id", *fields}} for r in page
                        if flt.matches(r, self.vocabulary)]
                if kept:
                    yield kept
            return
        head = select_soql(object_name, fields)
        plan = self._plans.get(object_name)
        if plan is not None and plan.method == "bulk" and flt.empty:
            by_name = {spec.name: spec for spec in self.fields(object_name)}
            specs = [by_name.get(f) or FieldSpec(name=f, kind=FieldKind.STRING, provider_type="string")
                     for f in fields]
            yield from self._bulk.pages(object_name, head, specs, include_deleted=include_deleted)
            return
        endpoint = "queryAll/" if include_deleted else "query/"
        for soql in self._filtered_soql(object_name, head, flt, endpoint):
            yield from self._query_pages(object_name, soql, include_deleted=include_deleted)

    def _filtered_soql(self, object_name: str, head: str, flt: RecordFilter, endpoint: str) -> Iterator[str]:
        """`head` (SELECT ... FROM x) with the filter's WHERE clause; one query per chunk of ids, so each
        query's URI stays under the limit (an empty id list asks nothing)."""
        conditions = filter_conditions(flt, self.vocabulary)
        ids = None if flt.ids is None else [_record_id(i) for i in flt.ids]
        restriction = _FILTERED_ONLY.get(object_name)
        if restriction is None or any(name in flt.equals for name in restriction[0]):
            yield from self._id_filtered(head, conditions, ids, endpoint)
            return
        _, through, parent = restriction
        parents = self._all_ids(parent, include_deleted=endpoint == "queryAll/")
        start = f"{head} WHERE {''.join(c + ' AND ' for c in conditions)}"
        # With ids to chunk as well, the parents' list takes at most half of the URI.
        budget = self._max_uri_bytes // 2 if ids is not None else self._max_uri_bytes
        for scope in self._in_clauses(start, through, parents, endpoint, budget):
            yield from self._id_filtered(head, [*conditions, scope], ids, endpoint)

    def _id_filtered(
        self, head: str, conditions: Sequence[str], ids: Sequence[str] | None, endpoint: str
    ) -> Iterator[str]:
        if ids is None:
            yield f"{head} WHERE {' AND '.join(conditions)}" if conditions else head
            return
        yield from self._in_chunks(head, conditions, self.vocabulary.id_field, ids, endpoint)

    def _all_ids(self, object_name: str, *, include_deleted: bool) -> list[str]:
        id_field = self.vocabulary.id_field
        soql = select_soql(object_name, [id_field])
        return [str(r[id_field]) for page in self._query_pages(object_name, soql, include_deleted=include_deleted)
                for r in page]

    def _in_chunks(
        self, head: str, conditions: Sequence[str], field: str, values: Sequence[str], endpoint: str
    ) -> Iterator[str]:
        """`head WHERE conditions AND field IN (...)`, the values split under the URI limit."""
        start = f"{head} WHERE {''.join(c + ' AND ' for c in conditions)}"
        for clause in self._in_clauses(start, field, values, endpoint, self._max_uri_bytes):
            yield start + clause

    def _in_clauses(
        self, start: str, field: str, values: Sequence[str], endpoint: str, max_bytes: int
    ) -> Iterator[str]:
        """`field IN (...)` clauses to follow `start`, the values split so each URI stays under `max_bytes`."""
        opening = f"{_identifier(field, 'field')} IN ("
        # Everything but the values: base URL, endpoint, "?q=", the encoded query and the closing ")".
        prefix = len(self._sf.base_url) + len(endpoint) + len("?q=") + len(quote_plus(start + opening + ")"))
        for chunk in id_chunks(prefix, values, max_ids=self.capabilities.max_ids_per_read, max_bytes=max_bytes):
            yield f"{opening}{','.join(repr_soql(v) for v in chunk)})"

    def _query_pages(self, object_name: str, soql: str, *, include_deleted: bool) -> Iterator[list[Record]]:
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
                    f"Salesforce repeated a nextRecordsUrl when crmsweep tried to {action}: stopped to avoid an "
                    "endless loop"
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
        if object_name in PSEUDO_OBJECTS:
            # A removed field is queryable nowhere, so there are no deleted rows to include.
            return self.definitions.read(object_name, list(ids), list(fields))
        columns = list(fields) if id_field in fields else [id_field, *fields]
        found: dict[str, Record] = {}
        for page in self.iter_pages(object_name, columns, ids=ids, include_deleted=include_deleted):
            for record in page:
                found[str(record[id_field])] = record
        return found

    def read_related(
        self, object_name: str, field: str, values: Sequence[str], fields: Sequence[str]
    ) -> list[Record]:
        columns = list(dict.fromkeys([self.vocabulary.id_field, *fields]))
        unique = list(dict.fromkeys(_record_id(v) for v in values))
        rows: list[Record] = []
        for soql in self._in_chunks(select_soql(object_name, columns), (), field, unique, "query/"):
            for page in self._query_pages(object_name, soql, include_deleted=False):
                rows.extend(page)
        return rows

    # -- associations: Salesforce links records through lookup fields and junction objects instead

    def read_associations(self, from_object: str, to_object: str, ids: Sequence[str]) -> dict[str, list[str]]:
        raise _no_associations(from_object, to_object)

    def read_association_types(
        self, from_object: str, to_object: str, ids: Sequence[str]
    ) -> dict[str, dict[str, list[dict[str, Any]]]]:
        raise _no_associations(from_object, to_object)

    def create_associations(
        self, from_object: str, to_object: str, pairs: Sequence[tuple[str, str]],
        types: Sequence[Sequence[Mapping[str, Any]]] | None = None,
    ) -> list[WriteResult]:
        raise _no_associations(from_object, to_object)

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
            try:
                raw = self._call(action, functools.partial(send, batch), resend_risk=resend_risk)
            except ConnectorError as exc:
                exc.never_ran = exc.never_ran and attempt == 1  # earlier rounds wrote some of these records
                raise
            if not isinstance(raw, list) or len(raw) != len(batch):
                raise ConnectorError(
                    f"Salesforce answered {action} with {len(raw) if isinstance(raw, list) else 'no'} results "
                    f"for {len(batch)} records: check the records in Salesforce before trying again"
                )
            locked: list[int] = []
            for index, answer in zip(pending, raw, strict=True):
                result = write_result(answer, fallback_id(items[index]), self.connection.token)
                results[index] = result
                if not result.ok and result.error_code == LOCK_ERROR:
                    locked.append(index)
            if not locked or attempt >= self._retry.attempts:
                break
            self._retry.sleep(self._retry.backoff(attempt))
            pending = locked
        return [r for r in results if r is not None]

    def _decimal_specs(self, object_name: str, bodies: Sequence[Mapping[str, Any]]) -> dict[str, FieldSpec]:
        """The object's DECIMAL fields when `bodies` hold a text that may be one's value (a before-image
        keeps a number as its text), from the describe; no call when no text looks like a number."""
        if not any(isinstance(v, str) and _DECIMAL.fullmatch(v.strip()) for b in bodies for v in b.values()):
            return {}
        return {f.name: f for f in self.fields(object_name) if f.kind is FieldKind.DECIMAL}

    def delete(self, object_name: str, ids: Sequence[str]) -> list[WriteResult]:
        self._check_batch(object_name, len(ids))
        if object_name in PSEUDO_OBJECTS:
            return self.definitions.delete(list(ids))
        checked = [_record_id(i) for i in ids]
        if not checked:
            return []
        resource = _ANALYTICS_RESOURCES.get(object_name)
        if resource is not None:
            return [self._analytics_delete(object_name, resource, record_id) for record_id in checked]

        def send(batch: list[str]) -> Any:
            params = {"ids": ",".join(batch), "allOrNone": "false"}
            return self._sf.restful("composite/sobjects", params=params, method="DELETE")

        return self._write(f"delete {object_name}", checked, send, lambda i: i, resend_risk=_RESEND_REPORTS_FAILED)

    def _analytics_delete(self, object_name: str, resource: str, record_id: str) -> WriteResult:
        """One report or dashboard to the recycle bin. Unknown or already deleted: 404, a per-record failure."""

        def send(batch: list[str]) -> Any:
            try:
                self._sf.restful(f"analytics/{resource}/{batch[0]}", method="DELETE")
            except SalesforceResourceNotFound as exc:
                body: Any = exc.content
                first = body[0] if isinstance(body, list) and body and isinstance(body[0], Mapping) else {}
                error = {"statusCode": first.get("errorCode") or "NOT_FOUND",
                         "message": first.get("message") or "The requested resource does not exist"}
                return [{"id": batch[0], "success": False, "errors": [error]}]
            return [{"id": batch[0], "success": True, "errors": []}]

        return self._write(f"delete {object_name}", [record_id], send, lambda i: i,
                           resend_risk=_RESEND_REPORTS_FAILED)[0]

    def update(self, object_name: str, records: Sequence[Record]) -> list[WriteResult]:
        self._check_batch(object_name, len(records))
        if object_name in PSEUDO_OBJECTS:
            raise BadInput("crmsweep does not change custom field definitions, only removes and re-creates them")
        id_field = self.vocabulary.id_field
        bodies = [
            {"attributes": {"type": object_name}, "id": _record_id(r.get(id_field)),
             **{k: v for k, v in r.items() if k not in (id_field, "attributes")}}
            for r in records
        ]
        if not bodies:
            return []

        exact = self._decimal_specs(object_name, bodies)

        def send(batch: list[dict[str, Any]]) -> Any:
            body = {"allOrNone": False, "records": exact_body(batch, exact)}
            return self._sf.restful("composite/sobjects", method="PATCH", data=dumps_exact(body))

        # Sending the same values twice leaves the same record: an update is safe to resend.
        return self._write(f"update {object_name}", bodies, send, lambda b: str(b["id"]), resend_risk=None)

    def create(
        self, object_name: str, records: Sequence[Record], *, keys: Sequence[str] | None = None
    ) -> list[WriteResult]:
        """sObject Collections has no idempotency header, and a marker field would have to exist in every
        org: `keys` are not sent, and `find_created` looks for what the running user created instead."""
        self._check_batch(object_name, len(records))
        if object_name in PSEUDO_OBJECTS:
            return self.definitions.create(list(records))
        bodies = [
            {"attributes": {"type": object_name}, **{k: v for k, v in r.items() if k != "attributes"}}
            for r in records
        ]
        if not bodies:
            return []

        exact = self._decimal_specs(object_name, bodies)

        def send(batch: list[dict[str, Any]]) -> Any:
            body = {"allOrNone": False, "records": exact_body(batch, exact)}
            return self._sf.restful("composite/sobjects", method="POST", data=dumps_exact(body))

        return self._write(f"create {object_name}", bodies, send, lambda _b: None, resend_risk=_RESEND_DUPLICATES)

    def find_created(self, object_name: str, attempts: Sequence[CreateAttempt]) -> dict[str, list[Record]]:
        """The records the connection's user created since the earliest attempt was sent (less a margin
        for the two clocks), with the fields the attempts sent, the same list for every key: Salesforce
        keeps no key, so the caller tells the records apart by their values."""
        if not attempts:
            return {}
        if object_name in PSEUDO_OBJECTS:
            return self.definitions.find_created([a.key for a in attempts], [a.values for a in attempts])
        user = self.current_user_id()
        if not user:
            raise ConnectorError(
                f"cannot look for the records a create of {object_name} may have made: Salesforce connection "
                f"'{self.connection_name}' may not read who it runs as (its token needs the openid or id scope)"
            )
        earliest = min(datetime.fromisoformat(a.sent_after.replace("Z", "+00:00")) for a in attempts)
        since = (earliest - CLOCK_MARGIN).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        fields = list(dict.fromkeys(name for a in attempts for name in a.values))
        id_field = self.vocabulary.id_field
        head = select_soql(object_name, [id_field, *[f for f in fields if f != id_field]])
        soql = f"{head} WHERE CreatedById = {repr_soql(_record_id(user))} AND CreatedDate >= {since}"
        found: list[Record] = []
        for page in self._query_pages(object_name, soql, include_deleted=False):
            found.extend(page)
        return {a.key: found for a in attempts}

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
            if response.status_code in RETRIABLE_STATUS and "xml" not in response.headers.get("Content-Type", ""):
                raise http_error(response, action)
            try:
                return parse_undelete_response(response.content, response.status_code)
            except SoapFault as fault:
                if fault.code == "UNREADABLE_RESPONSE" and response.status_code in RETRIABLE_STATUS:
                    # A gateway's XML page, not Salesforce's answer: judged like any failed HTTP exchange.
                    raise http_error(response, action) from None
                raise soap_fault_error(fault, self.connection, action) from None

        return self._write(action, checked, post, lambda i: i, resend_risk=_RESEND_REPORTS_FAILED)

    def derived_links(self, object_name: str) -> Mapping[str, tuple[str, ...]]:
        return _ACTIVITY_LINKS if object_name in ("Task", "Event") else {}

    def deleted_since(self, object_name: str, start: datetime) -> list[str]:
        """Through `/sobjects/{Type}/deleted/` (getDeleted), which lists purged records too."""
        if object_name in PSEUDO_OBJECTS or not self.describe(object_name).get("replicateable", True):
            raise ChangeLogUnavailable(f"Salesforce keeps no delete log of {object_name}")
        now = datetime.now(UTC)
        # Salesforce drops the seconds of `end`: the next whole minute, so deletes up to now are listed.
        end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        if start < now - DELETE_LOG_DAYS:
            raise ChangeLogUnavailable(
                f"Salesforce lists deletes of the last {DELETE_LOG_DAYS.days} days only, and the last snapshot "
                f"began {canonical_datetime(start)}")
        sobject = getattr(self._sf, object_name)
        try:
            answer = self._call(f"list deleted {object_name}", functools.partial(sobject.deleted, start, end))
        except ConnectorError as exc:
            if exc.code in ("INVALID_REPLICATION_DATE", "EXCEEDED_ID_LIMIT"):
                raise ChangeLogUnavailable(f"Salesforce cannot list the deletes of {object_name} ({exc.code})") from exc
            raise
        covered = _when(answer.get("latestDateCovered"))
        if covered is None or covered < now - DELETE_LOG_LAG:
            # The log may lag: deletes after what it covers are not listed, and an increment missing them
            # would keep deleted records as if they were there. Read the object whole instead.
            raise ChangeLogUnavailable(
                f"Salesforce's delete log of {object_name} covers only up to "
                f"{answer.get('latestDateCovered') or 'an unstated date'}")
        return [str(r["id"]) for r in answer.get("deletedRecords") or [] if r.get("id")]

    # -- Bulk API 2.0 ingest (`crmsweep.connectors.ingest.BulkIngest`)

    def can_ingest(self, op: Op, object_name: str) -> bool:
        return (bulk_operation(op) is not None and object_name not in PSEUDO_OBJECTS
                and object_name not in _ANALYTICS_RESOURCES)

    def carries(self, values: Mapping[str, Any]) -> bool:
        # Bulk CSV reads the text "#N/A" as "set null": a record writing that text goes over REST.
        return not any(isinstance(v, str) and v.strip() == NULL_VALUE for v in values.values())

    def ingest(self, op: Op, object_name: str, rows: Sequence[Record]) -> SalesforceIngestJob:
        id_field = self.vocabulary.id_field
        # The describe types the values a CSV cell holds; a job of ids alone (a delete) has none, so
        # it costs no describe call.
        typed = any(name != id_field for row in rows for name in row)
        specs = {f.name: f for f in self.fields(_identifier(object_name))} if typed else {}
        checked = [{**r, "Id": _record_id(r.get(id_field))} for r in rows]
        return create_job(self._call, self._sf, op, object_name, checked, specs, secret=self.connection.token)

    def ingest_job(self, job_id: str, op: Op, object_name: str) -> SalesforceIngestJob:
        return SalesforceIngestJob(self._call, self._sf, _record_id(job_id), _identifier(object_name),
                                   secret=self.connection.token)

    def metadata_documents(self) -> Iterator[tuple[str, Any]]:
        # The describes saved with each object hold what a restore needs.
        return iter(())

    def metadata_calls(self) -> int:
        return 0

    # -- accounting

    def read_plan(self, object_name: str) -> ReadPlan:
        """How a whole-object read of `object_name` goes, and its calls: one COUNT() (made here, once per
        connector, so the backup and the budget never count twice; not in `calls`), then over a Bulk API
        2.0 query job above `bulk_query_rows` rows, else REST query pages, plus the describe if it is not
        held yet. `rows` counts live records only. Once planned "bulk", an unfiltered `iter_pages` of the
        object reads through the job. The custom field pseudo-objects are read through Tooling (see
        `CustomFieldDefinitions.read_calls`)."""
        name = _identifier(object_name)
        plan = self._plans.get(name)
        if plan is not None:
            return plan
        if name in PSEUDO_OBJECTS:
            rows, calls = self.definitions.read_calls(name)
            plan = ReadPlan(object=name, rows=rows, method="tooling", calls=calls)
            return self._plans.setdefault(name, plan)
        describe = 0 if name in self._describes else 1
        try:
            rows = self.count(name)
        except ConnectorError as exc:
            if exc.status != 400:
                raise
            # COUNT() refused for this object (some setup objects): the estimate must not stop a backup that
            # would work, so a lower bound stands in, rows unknown, read over REST.
            return self._plans.setdefault(name, ReadPlan(name, None, "rest", describe + 1))
        restriction = _FILTERED_ONLY.get(name)
        if rows > self.bulk_query_rows and restriction is None:
            pages = -(-rows // self._bulk.max_records)
            # create, two polls at least, a resultPages listing per five pages, the pages, the delete
            listings = -(-pages // 5) if self._bulk.parallel and pages > 1 else 0
            plan = ReadPlan(object=name, rows=rows, method="bulk", calls=describe + 1 + 2 + listings + pages + 1)
            return self._plans.setdefault(name, plan)
        page = self._query_page_rows()
        pages = max(1, math.ceil(rows / page))
        if restriction is not None:  # read through its parent's ids: those first, then a query per chunk
            parents = self.read_plan(restriction[2]).rows or 0
            chunks = math.ceil(parents / self.capabilities.max_ids_per_read)
            pages = max(1, math.ceil(parents / page)) + max(pages, chunks)
        return self._plans.setdefault(name, ReadPlan(object=name, rows=rows, method="rest", calls=describe + pages))

    def _query_page_rows(self) -> int:
        asked = self._query_headers.get("Sforce-Query-Options", "").removeprefix("batchSize=")
        return int(asked) if asked else self.capabilities.max_query_page

    def allowance(self) -> ApiAllowance | None:
        """The org's daily allowance: from the last `Sforce-Limit-Info` header (free, and as fresh as the
        last answer), else from `GET /limits` (DailyApiRequests). None when neither says: the user may
        lack "View Setup and Configuration", which /limits needs."""
        usage = self._sf.api_usage.get("api-usage")
        used, total = getattr(usage, "used", None), getattr(usage, "total", None)
        if isinstance(used, int) and isinstance(total, int) and total > 0:
            return ApiAllowance(limit=total, remaining=max(total - used, 0), source="Sforce-Limit-Info")
        try:
            limits = self._call("read the API limits", self._sf.limits)
        except (AuthError, LimitExceeded, EndpointError):
            raise  # what every other call would meet as well: said plainly, not taken for silence
        except ConnectorError:  # refused to this user (INSUFFICIENT_ACCESS): the CRM says nothing
            return None
        daily = limits.get("DailyApiRequests") if isinstance(limits, Mapping) else None
        if not isinstance(daily, Mapping):
            return None
        try:
            limit, remaining = int(daily["Max"]), int(daily["Remaining"])
        except (KeyError, TypeError, ValueError):
            return None
        return ApiAllowance(limit=limit, remaining=remaining, source="limits")

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


__all__ = [
    "DEFAULT_API_VERSION",
    "SalesforceConnector",
]
