"""Bulk API 2.0 query jobs, as the Bulk API 2.0 Developer Guide describes them (routed from `salesforce_api`).

A job freezes its result set when it is created (a temp table in the store, the same mechanism as a REST
query cursor), so its pages never skip or repeat rows while other writes happen, and 1M rows are held by
SQLite, not as Python objects. A job moves UploadComplete -> InProgress -> JobComplete one step per status
poll (a client must really poll), or by itself after `COMPLETE_AFTER_SECONDS`. Result pages are CSV with a
header row each; `Sforce-Locator` chains them (the string "null" on the last) and `resultPages` (v58+)
hands out up to five page URLs at once for parallel download.

Sandbox choices where the documentation says nothing (see docs/design.md): the error code for refused
SOQL and for a job in the wrong state is API_ERROR / INVALIDJOB; a locator is the row offset in base 36;
every HTTP request is one API call; without maxRecords a page holds `DEFAULT_MAX_RECORDS` rows.
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crmsweep.sandbox import ids, schema
from crmsweep.sandbox.provider_api import Request, Response, json_response
from crmsweep.sandbox.rules import format_datetime
from crmsweep.sandbox.soql import CompiledQuery, SoqlError, compile_soql
from crmsweep.sandbox.soql_parse import tokenize
from crmsweep.sandbox.store import Store

JOB_PREFIX = "750"
DEFAULT_MAX_RECORDS = 50_000
DAILY_QUERY_JOBS = 10_000
PARALLEL_PAGES = 5  # resultPages hands out at most five result URLs per answer
RESULT_PAGES_VERSION = 58
COMPLETE_AFTER_SECONDS = 30.0
TERMINAL = frozenset({"JobComplete", "Aborted", "Failed"})
_DELIMITERS = {"COMMA": ",", "BACKQUOTE": "`", "CARET": "^", "PIPE": "|", "SEMICOLON": ";", "TAB": "\t"}
_LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
# SOQL a query job refuses (Bulk API 2.0 guide, "Create a Query Job"): clause keyword -> what it is.
_REFUSED = {"GROUP": "GROUP BY", "LIMIT": "LIMIT", "ORDER": "ORDER BY", "OFFSET": "OFFSET", "TYPEOF": "TYPEOF"}
_LOCATOR = re.compile(r"[0-9a-z]{1,12}")


class BulkError(Exception):
    """A Bulk API request refused as a whole, answered as Salesforce's JSON error list."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message

    def response(self) -> Response:
        return json_response(self.status, [{"errorCode": self.error_code, "message": self.message}])


def job_list(infos: list[dict[str, Any]]) -> Response:
    """GET jobs/query or jobs/ingest: every job's info, on one page."""
    return json_response(200, {"done": True, "records": infos, "nextRecordsUrl": None})


@dataclass
class _Job:
    id: str
    operation: str
    object: str
    query: CompiledQuery
    table: str
    total: int
    version: str
    delimiter: str
    line_ending: str
    created: str
    created_at: float
    state: str = "UploadComplete"
    polls: int = 0
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class QueryJobs:
    """The org's query jobs; one instance per running sandbox API."""

    def __init__(self, store: Store, clock: Callable[[], datetime], user_id: Callable[[], str]) -> None:
        self.store = store
        self.clock = clock
        self.user_id = user_id
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()

    # --- routing ---------------------------------------------------------------------------------

    def route(self, request: Request, version: str, rest: list[str], objects: Callable[[str], Any]) -> Response:
        """`rest` is the path after `jobs/query`."""
        try:
            return self._route(request, version, rest, objects)
        except BulkError as exc:
            return exc.response()

    def _route(self, request: Request, version: str, rest: list[str], objects: Callable[[str], Any]) -> Response:
        method = request.method
        if not rest:
            allow(method, "GET", "POST")
            if method == "POST":
                return json_response(200, self._info(self.create(request, version, objects), brief=True))
            with self._lock:
                jobs = list(self._jobs.values())
            return job_list([self._info(j) for j in jobs])
        job = self._job(rest[0])
        if len(rest) == 1:
            allow(method, "GET", "PATCH", "DELETE")
            if method == "GET":
                return json_response(200, self._info(self.poll(job)))
            if method == "PATCH":
                return json_response(200, self._info(self.abort(job, request)))
            self.delete(job)
            return Response(204)
        if len(rest) == 2 and rest[1] == "results":
            allow(method, "GET")
            return self.results(job, version, request)
        if len(rest) == 2 and rest[1] == "resultPages" and int(version.split(".")[0]) >= RESULT_PAGES_VERSION:
            allow(method, "GET")
            return self.result_pages(job, version, request)
        raise BulkError(404, "NOT_FOUND", "The requested resource does not exist")

    # --- jobs --------------------------------------------------------------------------------------

    def create(self, request: Request, version: str, objects: Callable[[str], Any]) -> _Job:
        body = _json(request)
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            raise BulkError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation!r}; use query or queryAll")
        text = body.get("query")
        if not isinstance(text, str) or not text.strip():
            raise BulkError(400, "INVALIDJOB", "InvalidJob : query is required")
        delimiter = _DELIMITERS.get(str(body.get("columnDelimiter", "COMMA")))
        line_ending = _LINE_ENDINGS.get(str(body.get("lineEnding", "LF")))
        if delimiter is None or line_ending is None:
            raise BulkError(400, "INVALIDJOB", "InvalidJob : unknown columnDelimiter or lineEnding")
        if body.get("contentType", "CSV") != "CSV":
            raise BulkError(400, "INVALIDJOB", "InvalidJob : contentType must be CSV")
        _refuse_unsupported(text)
        try:
            query = compile_soql(text, include_deleted=operation == "queryAll", now=self.clock(), objects=objects)
        except SoqlError as exc:
            raise BulkError(400, exc.error_code, exc.message) from None
        self._count_job()
        job_id = ids.to_18(JOB_PREFIX + ids.base62(secrets.randbits(70), 12))
        table = "bulkq_" + job_id
        total = self.store.snapshot(table, query.sql, query.params, None, 0)
        job = _Job(job_id, operation, query.object.name, query, table, total, version, delimiter, line_ending,
                   format_datetime(self.clock()), time.monotonic())
        with self._lock:
            self._jobs[job_id] = job
        return job

    def _count_job(self) -> None:
        day = self.clock().strftime("%Y-%m-%d")
        key = f"bulk_query_jobs:{day}"
        with self.store.lock:
            used = int(self.store.meta(key) or 0)
            if used >= DAILY_QUERY_JOBS:
                raise BulkError(400, "LIMIT_EXCEEDED",
                                f"Exceeded the limit of {DAILY_QUERY_JOBS} Bulk API 2.0 query jobs in 24 hours")
            self.store.set_meta({key: str(used + 1)})

    def _job(self, job_id: str) -> _Job:
        full = ids.normalize(job_id)
        with self._lock:
            job = self._jobs.get(full or job_id)
        if job is None:
            raise BulkError(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    def poll(self, job: _Job) -> _Job:
        with job.lock:
            if job.state not in TERMINAL:
                job.polls += 1
                late = time.monotonic() - job.created_at >= COMPLETE_AFTER_SECONDS
                job.state = "JobComplete" if job.polls > 1 or late else "InProgress"
        return job

    def fail(self, job_id: str, message: str) -> None:
        """A fault test's: the job ends Failed with `message` (what Salesforce does on an internal error)."""
        job = self._job(job_id)
        with job.lock:
            if job.state not in TERMINAL:
                job.state, job.error = "Failed", message

    def abort(self, job: _Job, request: Request) -> _Job:
        if _json(request).get("state") != "Aborted":
            raise BulkError(400, "INVALIDJOB", "InvalidJob : a query job can only be set to the state Aborted")
        with job.lock:
            if job.state in TERMINAL:
                raise BulkError(400, "INVALIDJOB", f"InvalidJob : Job is already in the state {job.state}")
            job.state = "Aborted"
        return job

    def delete(self, job: _Job) -> None:
        with job.lock:
            if job.state not in TERMINAL:
                raise BulkError(400, "INVALIDJOB",
                                f"InvalidJob : a job in the state {job.state} cannot be deleted: abort it first")
        with self._lock:
            self._jobs.pop(job.id, None)
        self.store.drop_snapshot(job.table)

    def _info(self, job: _Job, *, brief: bool = False) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": job.id, "operation": job.operation, "object": job.object, "createdById": self.user_id(),
            "createdDate": job.created, "systemModstamp": job.created, "state": job.state,
            "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(job.version),
            "lineEnding": "LF" if job.line_ending == "\n" else "CRLF",
            "columnDelimiter": next(k for k, v in _DELIMITERS.items() if v == job.delimiter),
        }
        if brief:
            return info
        info.update({"jobType": "V2Query", "retries": 0, "totalProcessingTime": 0,
                     "numberRecordsProcessed": job.total if job.state == "JobComplete" else 0})
        if job.error is not None:
            info["errorMessage"] = job.error
        return info

    # --- results -----------------------------------------------------------------------------------

    def _complete(self, job: _Job) -> None:
        with job.lock:
            state = job.state
        if state != "JobComplete":
            raise BulkError(400, "INVALIDJOB", f"InvalidJob : the job is in the state {state}, not JobComplete")

    def results(self, job: _Job, version: str, request: Request) -> Response:
        self._complete(job)
        if version != job.version:
            raise BulkError(409, "INVALIDJOB", "InvalidJob : use the API version the job was created with")
        start = _locator(request.param("locator"))
        size = _max_records(request.param("maxRecords"))
        rows = self.store.snapshot_page(job.table, start, size) if start < job.total else []
        end = start + len(rows)
        body = io.StringIO(newline="")
        writer = csv.writer(body, delimiter=job.delimiter, lineterminator=job.line_ending)
        writer.writerow([".".join(c.path) for c in job.query.columns])
        writer.writerows(_csv_rows(job.query, rows))
        headers = {
            "Content-Type": "text/csv; charset=UTF-8",
            "Sforce-NumberOfRecords": str(len(rows)),
            "Sforce-Locator": _encode(end) if end < job.total else "null",
        }
        return Response(200, body.getvalue().encode("utf-8"), headers)

    def result_pages(self, job: _Job, version: str, request: Request) -> Response:
        """Up to five result URLs, each one page of `maxRecords` rows, and where the next five are."""
        self._complete(job)
        start = _locator(request.param("locator"))
        size = _max_records(request.param("maxRecords"))
        base = f"/services/data/v{version}/jobs/query/{job.id}"
        starts = list(range(start, job.total, size))[:PARALLEL_PAGES] or [start]
        pages = [{"resultUrl": f"{base}/results?locator={_encode(s)}&maxRecords={size}" if s else
                  f"{base}/results?maxRecords={size}"} for s in starts]
        following = starts[-1] + size
        done = following >= job.total
        return json_response(200, {
            "resultPages": pages,
            "nextRecordsUrl": None if done else f"{base}/resultPages?locator={_encode(following)}&maxRecords={size}",
            "done": done,
        })

    def close(self) -> None:
        with self._lock:
            jobs, self._jobs = list(self._jobs.values()), {}
        for job in jobs:
            self.store.drop_snapshot(job.table)


# --- helpers -----------------------------------------------------------------------------------------


def _refuse_unsupported(text: str) -> None:
    try:
        tokens = tokenize(text)
    except SoqlError as exc:
        raise BulkError(400, exc.error_code, exc.message) from None
    for i, tok in enumerate(tokens):
        word = tok.upper if tok.kind == "ident" else ""
        if word in _REFUSED and not (word == "ORDER" and i > 0 and tokens[i - 1].upper == "FROM"):
            raise BulkError(400, "API_ERROR", f"{_REFUSED[word]} is not supported by Bulk API 2.0 query jobs")
        if word == "COUNT" and i + 1 < len(tokens) and tokens[i + 1].text == "(":
            raise BulkError(400, "API_ERROR", "Aggregate queries (COUNT) are not supported by Bulk API 2.0 query jobs")
        if tok.text == "(" and i + 1 < len(tokens) and tokens[i + 1].upper == "SELECT" and _in_select_list(tokens, i):
            raise BulkError(400, "API_ERROR",
                            "Parent-to-child relationship subqueries are not supported by Bulk API 2.0 query jobs")


def _in_select_list(tokens: list[Any], position: int) -> bool:
    """Whether the token at `position` comes before the outer query's FROM (a subquery in SELECT)."""
    return not any(t.kind == "ident" and t.upper == "FROM" for t in tokens[:position])


def _csv_rows(query: CompiledQuery, rows: list[tuple[Any, ...]]) -> Iterator[tuple[str, ...]]:
    """`rows` as CSV cells, converted column by column: the text `_csv_value` gives each value, with
    one comprehension per field for the common types (a call per value made 1M-row results slow)."""
    if not rows:
        return iter(())
    stored = list(zip(*rows, strict=True))
    columns = [_csv_column(c.field, stored[1 + i]) for i, c in enumerate(query.columns)]
    return zip(*columns, strict=True)


def _csv_column(f: schema.Field, values: tuple[Any, ...]) -> list[str]:
    if f.type == schema.BOOLEAN:
        return ["" if v is None else "true" if v else "false" for v in values]
    if f.type == schema.DATETIME:
        return ["" if v is None else v[:-5] + "Z" if type(v) is str and v.endswith("+0000") else str(v)
                for v in values]
    if f.type == schema.INT:
        return [_csv_value(f, v) for v in values]
    return ["" if v is None else v if type(v) is str else str(v) for v in values]


def _csv_value(f: schema.Field, value: Any) -> str:
    # The Bulk CSV has no null: a null and an empty string are both an empty field.
    if value is None:
        return ""
    if f.type == schema.BOOLEAN:
        return "true" if value else "false"
    if f.type == schema.DATETIME and isinstance(value, str) and value.endswith("+0000"):
        return value[:-5] + "Z"  # Bulk CSV datetimes are written in Zulu form
    if isinstance(value, float) and value.is_integer() and f.type == schema.INT:
        return str(int(value))
    return str(value)


def _encode(offset: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        offset, rest = divmod(offset, 36)
        text = digits[rest] + text
        if not offset:
            return text


def _locator(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    if not _LOCATOR.fullmatch(raw):
        raise BulkError(400, "INVALIDJOB", "InvalidJob : invalid locator")
    return int(raw, 36)


def _max_records(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_MAX_RECORDS
    if not raw.isdigit() or int(raw) < 1:
        raise BulkError(400, "INVALIDJOB", "InvalidJob : maxRecords must be a positive integer")
    return int(raw)


def _json(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise BulkError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    return data


def allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise BulkError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are "
                        f"{','.join(allowed)}")


__all__ = ["QueryJobs"]
