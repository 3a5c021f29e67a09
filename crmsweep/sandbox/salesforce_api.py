"""The Salesforce REST API (and the SOAP `undelete` and `emptyRecycleBin` calls), a provider API over the
sandbox core.

Transport-free: the core (`core.py`) checks the token, injects faults and counts calls, then asks
`SalesforceApi.route` for the answer (the contract is in `provider_api.py`). Behaviour follows
Salesforce's documentation: error bodies are JSON lists of {"message", "errorCode"}, per-record
results use "statusCode", every counted call answers `Sforce-Limit-Info`.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from crmsweep.sandbox import describe, ids, salesforce_oauth, salesforce_replication, salesforce_seed_fields, soap
from crmsweep.sandbox import salesforce_tooling as tooling
from crmsweep.sandbox import seed as seeding
from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.planted import forget_planted
from crmsweep.sandbox.provider_api import (
    BAD_REQUEST,
    INTERNAL,
    NOT_FOUND,
    URI_TOO_LONG,
    ApiContext,
    Call,
    Endpoint,
    Request,
    Response,
    json_response,
)
from crmsweep.sandbox.rules import RecordError, to_json_value
from crmsweep.sandbox.salesforce_bulk_ingest import IngestJobs
from crmsweep.sandbox.salesforce_bulk_query import QueryJobs
from crmsweep.sandbox.salesforce_store import SalesforceStore
from crmsweep.sandbox.salesforce_tooling import lookup, with_custom_fields
from crmsweep.sandbox.schema import SObject, get_object
from crmsweep.sandbox.soql import CompiledQuery, SoqlError, compile_soql, shape_record
from crmsweep.sandbox.store import Store, utc_now

MAX_COLLECTION = 200
DEFAULT_BATCH = 2000
MIN_BATCH = 200
CURSOR_TTL_SECONDS = 15 * 60
MAX_OPEN_CURSORS = 50
_VERSION_RE = re.compile(r"^v(\d+)\.0$")
_ROLLED_BACK = RecordError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone header",
)
_SOAP_PREFIX = "/services/Soap/u/"
_ANALYTICS = {"reports": "Report", "dashboards": "Dashboard"}  # Analytics API resource -> sObject
_USERINFO = "/services/oauth2/userinfo"
_VERSIONS = "/services/data"
# The core's own errors, by Salesforce's code for them.
_CORE_ERROR_CODES = {URI_TOO_LONG: "URI_TOO_LONG", BAD_REQUEST: "JSON_PARSER_ERROR", NOT_FOUND: "NOT_FOUND",
                     INTERNAL: "UNKNOWN_EXCEPTION"}


class ApiError(Exception):
    """A whole-request failure, answered as Salesforce's JSON error list."""

    def __init__(self, status: int, error_code: str, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields


def error_response(status: int, error_code: str, message: str, fields: tuple[str, ...] = ()) -> Response:
    entry: dict[str, Any] = {"message": message, "errorCode": error_code}
    if fields:
        entry["fields"] = list(fields)
    return json_response(status, [entry])


def _soap_reply(status: int, body: bytes) -> Response:
    return Response(status, body, {"Content-Type": "text/xml;charset=UTF-8"})


_GATEWAY_PAGE = "<html><head><title>{0} {1}</title></head><body><center><h1>{0} {1}</h1></center></body></html>"
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
            429: "Too Many Requests"}


def fault_response(rule: FaultRule) -> Response:
    if rule.kind == "limit":
        return error_response(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    if rule.kind == "expired":
        return error_response(401, "INVALID_SESSION_ID", "Session expired or invalid")
    reason = _REASONS.get(rule.status, "Error")
    if rule.status in (502, 503, 504):
        page = _GATEWAY_PAGE.format(rule.status, reason).encode()
        return Response(rule.status, page, {"Content-Type": "text/html"})
    response = error_response(
        rule.status, "UNKNOWN_EXCEPTION" if rule.status == 500 else "SERVER_UNAVAILABLE",
        "An unexpected error occurred. Please include this ErrorId if you contact support: 1714523421-12345 (-1)"
        if rule.status == 500 else reason,
    )
    if rule.status == 429:
        response.headers["Retry-After"] = "1"
    return response


def _canonical_id(value: str) -> str:
    return ids.normalize(value) or value  # 15- and 18-character forms are one record


@dataclass
class _Cursor:
    table: str
    query: CompiledQuery
    total: int
    version: str
    created: float


class SalesforceApi:
    def __init__(self, context: ApiContext) -> None:
        if not isinstance(context.store, SalesforceStore):
            raise TypeError("the Salesforce API needs the store its sandbox provider opened")
        self.store = context.store
        self.api_limit = context.api_limit
        self.faults = context.faults
        self.clock = context.clock
        self._cursors: dict[str, _Cursor] = {}
        self._cursor_lock = threading.Lock()
        self.oauth = salesforce_oauth.OAuthEndpoint(
            self.store.path.parent, context.sessions, lambda: self.store.org_id, lambda: self.store.api_user_id
        )
        self._query_jobs = QueryJobs(self.store, self.clock, lambda: self.store.api_user_id)
        self.ingest_jobs = IngestJobs(self.store, self.clock)

    # --- the core's questions ------------------------------------------------------------------

    def credential(self, request: Request) -> str | None:
        if request.path.startswith(_SOAP_PREFIX):
            try:
                return soap.parse_call(request.body).session_id
            except soap.SoapFault:
                return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() in ("bearer", "oauth") else None

    def endpoint(self, request: Request) -> Endpoint:
        path = request.path.rstrip("/") or "/"
        if path == _VERSIONS:
            return Endpoint("GET versions", authenticated=False, counted=False)
        if path.startswith(_SOAP_PREFIX):
            return Endpoint("POST soap/undelete")
        if path == _USERINFO:  # OAuth endpoints are not API calls
            return Endpoint("userinfo", counted=False)
        if path == salesforce_oauth.TOKEN_PATH:  # signs in: needs no session, and is no API call either
            return Endpoint("POST oauth2/token", authenticated=False, counted=False)
        if path == salesforce_oauth.SETTINGS_PATH:
            return Endpoint("oauth settings", counted=False, admin=True)
        if not path.startswith("/services/data/"):
            return Endpoint("not found", authenticated=False, counted=False)
        return Endpoint(_endpoint_name(request.method, path))

    def unauthorized(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path.startswith(_SOAP_PREFIX):
            if request.method != "POST":
                return error_response(405, "METHOD_NOT_ALLOWED", _not_allowed(request.method, "POST"))
            try:
                soap.parse_call(request.body)
            except soap.SoapFault as exc:
                return _soap_reply(500, soap.fault(exc.code, exc.message))
            return _soap_reply(500, soap.fault("sf:INVALID_SESSION_ID",
                                               "Invalid Session ID found in SessionHeader: Illegal Session"))
        if path == _USERINFO:
            if request.method not in ("GET", "POST"):
                return error_response(405, "METHOD_NOT_ALLOWED", _not_allowed(request.method, "GET", "POST"))
            return error_response(403, "Bad_OAuth_Token", "Bad_OAuth_Token")
        return error_response(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def render_fault(self, rule: FaultRule, request: Request) -> Response:
        if rule.kind == "job_failed":  # the job named in the path ends Failed; the request is then answered
            self._query_jobs.fail(request.path.rstrip("/").split("/jobs/query/")[-1].split("/")[0],
                                  "InternalServerError : an internal error occurred while processing the job")
            return self.route(request, Call(self.endpoint(request), True, 0, self.api_limit))
        if rule.kind == "limit" and request.path.startswith(_SOAP_PREFIX):
            return _soap_reply(500, soap.fault("sf:REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))
        return fault_response(rule)

    def render_error(self, status: int, code: str, message: str) -> Response:
        return error_response(status, _CORE_ERROR_CODES.get(code, code), message)

    def decorate(self, request: Request | None, response: Response, call: Call | None) -> None:
        if request is not None and call is not None and call.used and request.path.startswith("/services/data/"):
            response.headers["Sforce-Limit-Info"] = f"api-usage={call.used}/{call.limit}"

    def admit(self, request: Request, endpoint: Endpoint) -> Response | None:
        return None  # Salesforce meters by the daily allowance alone (its concurrency limit is not modelled)

    def stats(self) -> dict[str, Any]:
        return {}

    def route(self, request: Request, call: Call) -> Response:
        path = request.path.rstrip("/") or "/"
        if path == _VERSIONS:
            if request.method != "GET":
                return error_response(405, "METHOD_NOT_ALLOWED", _not_allowed(request.method, "GET"))
            return json_response(200, describe.versions())
        if path.startswith(_SOAP_PREFIX):
            return self._soap(request, path, call.used)
        if path == _USERINFO:
            return self._userinfo(request)
        if path == salesforce_oauth.TOKEN_PATH:
            return self.oauth.token(request)
        if path == salesforce_oauth.SETTINGS_PATH:
            return self.oauth.configure(request)
        if not path.startswith("/services/data/"):
            return error_response(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            return self._route(request, path)
        except ApiError as exc:
            return error_response(exc.status, exc.error_code, exc.message, exc.fields)

    # --- OAuth ---------------------------------------------------------------------------------

    def _userinfo(self, request: Request) -> Response:
        """Who the token belongs to (OpenID Connect userinfo). OAuth endpoints are not API calls."""
        if request.method not in ("GET", "POST"):
            return error_response(405, "METHOD_NOT_ALLOWED", _not_allowed(request.method, "GET", "POST"))
        user_object = get_object("User")
        assert user_object is not None
        user = self.store.row(user_object, self.store.api_user_id) or {}
        org_id, user_id = self.store.org_id, self.store.api_user_id
        return json_response(200, {
            "sub": f"https://login.salesforce.com/id/{org_id}/{user_id}",
            "user_id": user_id,
            "organization_id": org_id,
            "preferred_username": user.get("Username"),
            "name": user.get("Name"),
            "email": user.get("Email"),
            "active": bool(user.get("IsActive", True)),
            "user_type": "STANDARD",
        })

    # --- REST routing --------------------------------------------------------------------------

    def _route(self, request: Request, path: str) -> Response:
        parts = path.split("/")[3:]  # after "", "services", "data"
        match = _VERSION_RE.fullmatch(parts[0]) if parts else None
        if match is None or not describe.MIN_VERSION <= int(match.group(1)) <= describe.MAX_VERSION:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        version = f"{match.group(1)}.0"
        rest = parts[1:]
        method = request.method
        if not rest:
            _allow(method, "GET")
            return json_response(200, describe.resources(version))
        head = rest[0]
        if head in ("query", "queryAll") and len(rest) == 1:
            _allow(method, "GET")
            return self._query(request, version, include_deleted=head == "queryAll")
        if head in ("query", "queryAll") and len(rest) == 2:
            _allow(method, "GET")
            return self._query_more(request, rest[1])
        if head == "jobs" and rest[1:2] == ["query"]:
            return self._query_jobs.route(request, version, rest[2:], lookup(self.store))
        if head == "limits" and len(rest) == 1:
            _allow(method, "GET")
            return json_response(200, describe.limits(self.api_limit, self.store.api_used()))
        if head == "composite" and rest[1:] == ["sobjects"]:
            _allow(method, "DELETE", "PATCH", "POST")
            return self._collections(request)
        if head == "jobs" and rest[1:2] == ["ingest"]:
            return self.ingest_jobs.route(request, version, rest[2:])
        if head == "sobjects":
            return self._sobjects(request, version, rest[1:])
        if head == "tooling":
            return self._tooling(request, version, rest[1:])
        if head == "analytics" and len(rest) in (3, 4) and rest[1] in _ANALYTICS:
            return self._analytics(request, _ANALYTICS[rest[1]], rest[2], rest[3:])
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    # --- Analytics API (reports and dashboards) ---------------------------------------------------

    def _analytics(self, request: Request, object_name: str, record_id: str, rest: list[str]) -> Response:
        """DELETE a report or dashboard (204, to the recycle bin) and GET a report's describe."""
        if rest and (rest != ["describe"] or object_name != "Report"):
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        _allow(request.method, "GET" if rest else "DELETE")
        obj = get_object(object_name)
        assert obj is not None
        full = ids.normalize(record_id)
        current = self.store.row(obj, full) if full and ids.key_prefix(full) == obj.key_prefix else None
        if current is None or current.get("IsDeleted"):
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if rest:
            return json_response(200, self._report_describe(current))
        try:
            with self.store.transaction():
                self.store.delete(current["Id"], self.clock(), analytics=True)
        except RecordError as exc:
            raise ApiError(400, exc.status_code, exc.message, exc.fields) from None
        return Response(204)

    def _report_describe(self, report: Mapping[str, Any]) -> dict[str, Any]:
        definition = self.store.report_metadata(str(report["Id"])) or {}
        metadata = {
            "id": report["Id"],
            "name": report["Name"],
            "developerName": report["DeveloperName"],
            "description": report.get("Description"),
            "folderId": report["OwnerId"],
            "reportFormat": str(report["Format"]).upper(),
            "reportType": definition.get("reportType"),
            "detailColumns": definition.get("detailColumns", []),
            "aggregates": ["RowCount"],
            "groupingsDown": [],
            "groupingsAcross": [],
            "reportFilters": [],
            "reportBooleanFilter": None,
            "hasDetailRows": True,
            "hasRecordCount": True,
            "showGrandTotal": True,
            "showSubtotals": True,
            "scope": "organization",
            "sortBy": [],
            "currency": None,
        }
        return {"reportMetadata": metadata, "reportExtendedMetadata": {}, "reportTypeMetadata": {}}

    # --- query ---------------------------------------------------------------------------------

    def _query(self, request: Request, version: str, *, include_deleted: bool) -> Response:
        text = request.param("q")
        if not text:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            query = compile_soql(text, include_deleted=include_deleted, now=self.clock(), objects=lookup(self.store))
        except SoqlError as exc:
            raise ApiError(400, exc.error_code, exc.message) from None
        offset = query.offset or 0
        if query.count_only:
            matched = int(self.store.fetch(query.sql, query.params)[0][0])
            total = max(matched - offset, 0)
            if query.limit is not None:
                total = min(total, query.limit)
            return json_response(200, {"totalSize": total, "done": True, "records": []})
        batch = _batch_size(request)
        probe = batch + 1 if query.limit is None else min(batch + 1, query.limit)
        rows = self.store.fetch(query.sql + " LIMIT ? OFFSET ?", (*query.params, probe, offset))
        if len(rows) <= batch:
            records = [shape_record(query, row, version) for row in rows]
            return json_response(200, {"totalSize": len(rows), "done": True, "records": records})
        # More than one page: freeze the matching rows so later pages see exactly this result.
        cursor_id = ids.to_18("01g" + ids.base62(secrets.randbits(70), 12))
        table = "cursor_" + cursor_id
        total = self.store.snapshot(table, query.sql, query.params, query.limit, offset)
        self._open_cursor(cursor_id, _Cursor(table, query, total, version, time.monotonic()))
        return self._page(cursor_id, 0, batch)

    def _query_more(self, request: Request, locator: str) -> Response:
        cursor_id, _, position = locator.partition("-")
        with self._cursor_lock:
            cursor = self._cursors.get(cursor_id)
        if cursor is None or not position.isdigit():
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(cursor_id, int(position), _batch_size(request))

    def _page(self, cursor_id: str, start: int, batch: int) -> Response:
        with self._cursor_lock:
            cursor = self._cursors[cursor_id]
        rows = self.store.snapshot_page(cursor.table, start, batch)
        end = start + len(rows)
        body: dict[str, Any] = {"totalSize": cursor.total, "done": end >= cursor.total}
        if end < cursor.total:
            body["nextRecordsUrl"] = f"/services/data/v{cursor.version}/query/{cursor_id}-{end}"
        body["records"] = [shape_record(cursor.query, row, cursor.version) for row in rows]
        return json_response(200, body)

    def _open_cursor(self, cursor_id: str, cursor: _Cursor) -> None:
        with self._cursor_lock:
            now = time.monotonic()
            stale = [k for k, c in self._cursors.items() if now - c.created > CURSOR_TTL_SECONDS]
            while len(self._cursors) - len(stale) >= MAX_OPEN_CURSORS:
                oldest = min((k for k in self._cursors if k not in stale), key=lambda k: self._cursors[k].created)
                stale.append(oldest)
            for key in stale:
                self.store.drop_snapshot(self._cursors.pop(key).table)
            self._cursors[cursor_id] = cursor

    # --- sobjects ------------------------------------------------------------------------------

    def _sobjects(self, request: Request, version: str, rest: list[str]) -> Response:
        method = request.method
        if not rest:
            _allow(method, "GET")
            return json_response(200, describe.global_describe(version))
        obj = with_custom_fields(self.store, get_object(rest[0]))
        if obj is None or len(rest) > 3:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if len(rest) == 1:
            _allow(method, "GET", "POST")
            if method == "GET":
                return json_response(200, {"objectDescribe": describe.object_summary(obj, version), "recentItems": []})
            return self._create_one(request, obj)
        if rest[1] == "describe" and len(rest) == 2:
            _allow(method, "GET")
            return json_response(200, describe.describe(obj, version))
        if rest[1] in ("deleted", "updated") and rest[2:] in ([], [""]):
            return self._replication(request, obj, rest[1])
        if len(rest) == 3:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        _allow(method, "GET", "PATCH", "DELETE")
        record_id = rest[1]
        current = self._existing(obj, record_id)
        if method == "GET":
            return json_response(200, self._record_json(obj, current, version, request.param("fields")))
        now = self.clock()
        try:
            with self.store.transaction():
                if method == "PATCH":
                    self.store.update(obj, current["Id"], _record_values(_json_object(request)), now)
                else:
                    self.store.delete(current["Id"], now)
        except RecordError as exc:
            raise ApiError(400, exc.status_code, exc.message, exc.fields) from None
        return Response(204)

    def _replication(self, request: Request, obj: SObject, resource: str) -> Response:
        _allow(request.method, "GET")
        answer = salesforce_replication.deleted if resource == "deleted" else salesforce_replication.updated
        try:
            return json_response(200, answer(self.store, obj, request.param("start"), request.param("end"),
                                             self.clock()))
        except salesforce_replication.ReplicationError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None

    def _existing(self, obj: SObject, record_id: str) -> dict[str, Any]:
        full = ids.normalize(record_id)
        if full is None or ids.key_prefix(full) != obj.key_prefix:
            raise ApiError(
                404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {record_id}"
            )
        current = self.store.row(obj, full)
        if current is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if current.get("IsDeleted"):
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return current

    def _record_json(self, obj: SObject, row: Mapping[str, Any], version: str, fields: str | None) -> dict[str, Any]:
        names = [f.name for f in obj.fields]
        if fields:
            names = []
            for name in (n.strip() for n in fields.split(",") if n.strip()):
                f = obj.field(name)
                if f is None:
                    raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}")
                names.append(f.name)
        record: dict[str, Any] = {
            "attributes": {"type": obj.name, "url": f"/services/data/v{version}/sobjects/{obj.name}/{row['Id']}"}
        }
        for name in names:
            f = obj.field(name)
            assert f is not None
            record[f.name] = to_json_value(f, row.get(f.name))
        return record

    def _create_one(self, request: Request, obj: SObject) -> Response:
        values = _record_values(_json_object(request))
        try:
            with self.store.transaction():
                new_id = self.store.create(obj, values, self.clock())
        except RecordError as exc:
            raise ApiError(400, exc.status_code, exc.message, exc.fields) from None
        return json_response(201, {"id": new_id, "success": True, "errors": []})

    # --- sObject Collections -------------------------------------------------------------------

    def _collections(self, request: Request) -> Response:
        method = request.method
        if method == "DELETE":
            raw = request.param("ids")
            if not raw:
                raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
            targets: list[tuple[str | None, Any, dict[str, Any]]] = [
                (None, i.strip(), {}) for i in raw.split(",") if i.strip()
            ]
            all_or_none = (request.param("allOrNone") or "false").lower() == "true"
        else:
            data = _json_object(request)
            records = data.get("records")
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise ApiError(400, "JSON_PARSER_ERROR", "'records' must be a list of JSON objects")
            all_or_none = data.get("allOrNone") is True
            targets = []
            for record in records:
                attributes = record.get("attributes")
                type_name = attributes.get("type") if isinstance(attributes, dict) else None
                record_id = record.get("id", record.get("Id"))
                targets.append((str(type_name) if type_name is not None else "", record_id, _record_values(record)))
        if len(targets) > MAX_COLLECTION:
            raise ApiError(400, "EXCEEDED_ID_LIMIT",
                           f"record limit reached. cannot submit more than {MAX_COLLECTION} records into this call")
        results = self._write_each(request, targets, all_or_none)
        return json_response(200, [
            {"id": rid, "success": err is None, "errors": [] if err is None else [err.to_json()]}
            for rid, err in results
        ])

    def _write_each(
        self, request: Request, targets: list[tuple[str | None, Any, dict[str, Any]]], all_or_none: bool
    ) -> list[tuple[str | None, RecordError | None]]:
        method, now = request.method, self.clock()
        types = {t for t, _, _ in targets if t}
        setup = {t for t in types if (o := get_object(t)) is not None and o.setup_object}
        mixed = bool(setup) and len(types) > len(setup)
        results: list[tuple[str | None, RecordError | None]] = []

        class _RollBack(Exception):
            pass

        try:
            with self.store.transaction():
                for type_name, record_id, values in targets:
                    shown_id = ids.normalize(record_id) if isinstance(record_id, str) else None
                    shown_id = shown_id or (record_id if isinstance(record_id, str) else None)
                    try:
                        if mixed:
                            raise RecordError("MIXED_DML_OPERATION", "DML operation on setup object is not "
                                              "permitted after you have updated a non-setup object (or vice versa)")
                        lock_message = self.faults.locked(method, request.path, shown_id, canonical=_canonical_id)
                        if lock_message is not None:
                            raise RecordError("UNABLE_TO_LOCK_ROW", lock_message)
                        with self.store.savepoint():
                            done_id = self._write_one(method, type_name, record_id, values, now)
                        results.append((done_id, None))
                    except RecordError as exc:
                        results.append((shown_id if method != "POST" else None, exc))
                if all_or_none and any(err is not None for _, err in results):
                    raise _RollBack
        except _RollBack:
            results = [
                (rid if method != "POST" else None, err or _ROLLED_BACK) for rid, err in results
            ]
        return results

    def _write_one(
        self, method: str, type_name: str | None, record_id: Any, values: dict[str, Any], now: datetime
    ) -> str:
        if method == "DELETE":
            return self.store.delete(record_id, now)
        obj = with_custom_fields(self.store, get_object(type_name or ""))
        if obj is None:
            raise RecordError("INVALID_TYPE", f"sObject type '{type_name}' is not supported.")
        if method == "POST":
            if record_id is not None:
                raise RecordError("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ("Id",))
            return self.store.create(obj, values, now)
        if record_id is None:
            raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ("Id",))
        return self.store.update(obj, record_id, values, now)

    # --- Tooling API (salesforce_tooling.py) ---------------------------------------------------

    def _tooling(self, request: Request, version: str, rest: list[str]) -> Response:
        method = request.method
        try:
            if rest == ["query"]:
                _allow(method, "GET")
                text = request.param("q")
                if not text:
                    raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
                return json_response(200, tooling.query(self.store, text, version, self.clock()))
            if rest[:2] == ["sobjects", "CustomField"] and len(rest) in (2, 3):
                if len(rest) == 2:
                    _allow(method, "POST")
                    new_id = tooling.create_field(self.store, _json_object(request), self.clock())
                    return json_response(201, {"id": new_id, "success": True, "errors": []})
                _allow(method, "GET", "PATCH", "DELETE")
                if method == "GET":
                    return json_response(200, tooling.get_field(self.store, rest[2], version))
                if method == "PATCH":
                    tooling.update_field(self.store, rest[2], _json_object(request), self.clock())
                else:
                    tooling.delete_field(self.store, rest[2])
                return Response(204)
        except tooling.ToolingError as exc:
            raise ApiError(exc.status, exc.error_code, exc.message) from None
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    # --- SOAP ----------------------------------------------------------------------------------

    def _soap(self, request: Request, path: str, used: int) -> Response:
        version = path.rsplit("/", 1)[-1]
        if request.method != "POST":
            return error_response(405, "METHOD_NOT_ALLOWED", _not_allowed(request.method, "POST"))
        try:
            call = soap.parse_call(request.body)
        except soap.SoapFault as exc:
            return _soap_reply(500, soap.fault(exc.code, exc.message))
        if call.operation not in ("undelete", "emptyRecycleBin"):
            return _soap_reply(500, soap.fault(
                "soapenv:Client", f"No operation available for request {{urn:partner.soap.sforce.com}}{call.operation}"
            ))
        major = _VERSION_RE.fullmatch("v" + version)
        if major is None or not describe.MIN_VERSION <= int(major.group(1)) <= describe.MAX_VERSION:
            return _soap_reply(500, soap.fault("sf:UNSUPPORTED_API_VERSION", f"Unsupported API version: {version}"))
        if len(call.ids) > MAX_COLLECTION:
            return _soap_reply(500, soap.fault("sf:EXCEEDED_ID_LIMIT",
                                               f"record limit reached. cannot submit more than {MAX_COLLECTION} "
                                               "records into this call"))
        now = self.clock()
        results: list[tuple[str | None, RecordError | None]] = []
        with self.store.transaction():
            for record_id in call.ids:
                try:
                    with self.store.savepoint():
                        done = (self.store.undelete(record_id, now) if call.operation == "undelete"
                                else self.store.empty_recycle_bin(record_id))
                        results.append((done, None))
                except RecordError as exc:
                    results.append((ids.normalize(record_id), exc))
        return _soap_reply(200, soap.undelete_response(results, used, self.api_limit, call.operation))


class SalesforceSandbox:
    """The Salesforce entry of the sandbox's provider table (`apis.py`)."""

    name = "salesforce"

    def open_store(self, state_dir: Path) -> Store:
        return SalesforceStore(state_dir)

    def prepare_store(self, store: Store, *, records: int, seed: int, reset: bool) -> None:
        assert isinstance(store, SalesforceStore)
        if reset:
            store.drop_everything()
            forget_planted(store.path.parent)
        store.create_schema()
        if not store.seeded:
            anchor = utc_now()
            seeding.seed_store(store, records=records, seed=seed, anchor=anchor)
            salesforce_seed_fields.plant(store, anchor)

    def make_api(self, context: ApiContext) -> SalesforceApi:
        return SalesforceApi(context)

    def org_id(self, store: Store) -> str:
        return store.meta("org_id") or ""


SANDBOX = SalesforceSandbox()


# --- helpers -------------------------------------------------------------------------------------


def _not_allowed(method: str, *allowed: str) -> str:
    return f"HTTP Method '{method}' not allowed. Allowed are {','.join(allowed)}"


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise ApiError(405, "METHOD_NOT_ALLOWED", _not_allowed(method, *allowed))


def _endpoint_name(method: str, path: str) -> str:
    parts = path.split("/")[4:]
    if not parts:
        return f"{method} resources"
    head = parts[0]
    if head in ("query", "queryAll"):
        return f"{method} {head}" + ("More" if len(parts) > 1 else "")
    if head == "sobjects":
        if len(parts) == 1:
            return f"{method} sobjects"
        if len(parts) == 3 and parts[2] == "describe":
            return f"{method} describe"
        return f"{method} sobject"
    return f"{method} {'/'.join(parts[:2])}"


def _batch_size(request: Request) -> int:
    options = request.headers.get("sforce-query-options", "")
    for option in options.split(","):
        name, _, value = option.partition("=")
        if name.strip().lower() == "batchsize" and value.strip().isdigit():
            return min(max(int(value.strip()), MIN_BATCH), DEFAULT_BATCH)
    return DEFAULT_BATCH


def _json_body(request: Request) -> Any:
    if not request.body.strip():
        raise ApiError(
            400, "JSON_PARSER_ERROR", "The HTTP entity body is required, but this request has no entity body."
        )
    try:
        # Numbers as Decimals: Salesforce keeps up to 18 digits of a JSON number, more than a double holds.
        return json.loads(request.body, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" at [line:{exc.lineno}, column:{exc.colno}]" if isinstance(exc, json.JSONDecodeError) else ""
        raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character in the request body{where}") from None


def _json_object(request: Request) -> dict[str, Any]:
    data = _json_body(request)
    if not isinstance(data, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of SObject from a non-object value")
    return data


def _record_values(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}
