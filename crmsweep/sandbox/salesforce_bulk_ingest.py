"""Bulk API 2.0 ingest jobs (`/services/data/vXX.X/jobs/ingest`), as the Bulk API 2.0 Developer Guide
documents them.

A job is created Open, takes one CSV upload (201, no body), starts when closed (PATCH UploadComplete)
and is processed in the background (InProgress) through the same store rules as REST collections:
deletes go to the recycle bin with their cascades, updates stamp SystemModstamp, per-record errors
(ENTITY_IS_DELETED, validation) fail only their row. It ends JobComplete, or Failed when the data cannot
be read or processing stops part way; what was not reached is in unprocessedrecords (also answered as
unprocessedRecords). CSV rules: an empty cell leaves the field as it is, `#N/A` sets it to null.

Jobs live in memory, as long as the sandbox process: a client resuming after its own crash finds them.
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from crmsweep.decimal_text import DECIMAL_PATTERN
from crmsweep.sandbox import ids
from crmsweep.sandbox.provider_api import Request, Response, json_response
from crmsweep.sandbox.rules import RecordError, format_datetime
from crmsweep.sandbox.salesforce_bulk_query import BulkError, allow, job_list
from crmsweep.sandbox.salesforce_store import SalesforceStore
from crmsweep.sandbox.salesforce_tooling import with_custom_fields
from crmsweep.sandbox.schema import BOOLEAN, CURRENCY, DOUBLE, INT, PERCENT, Field, SObject, get_object

OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
DELIMITERS = {"BACKQUOTE": "`", "CARET": "^", "COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "TAB": "\t"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
NULL_VALUE = "#N/A"
# 150 MB base64-encoded per upload is about 100 MB of raw CSV.
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
# The platform splits a job into internal batches of 10,000 records; each counts toward the daily
# Bulk batch allowance that Bulk API 1.0 and 2.0 ingest share.
RECORDS_PER_BATCH = 10_000
DAILY_BATCHES = 15_000
# Records written per store transaction (one platform chunk, like one collections call).
CHUNK = 200
TERMINAL = ("JobComplete", "Failed", "Aborted")
_NUMERIC = (DOUBLE, CURRENCY, PERCENT)
_HARD_DELETE_REFUSED = (
    "The user does not have the Bulk API Hard Delete permission, which a hardDelete job requires"
)


@dataclass
class Job:
    id: str
    object: str
    operation: str
    external_id: str | None
    delimiter: str
    line_ending: str
    api_version: str
    created: str
    created_by: str
    state: str = "Open"
    modstamp: str = ""
    data: bytes | None = None
    error_message: str | None = None
    header: list[str] = field(default_factory=list)
    successful: list[list[str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    abort: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class IngestSettings:
    """Test settings: the next job fails after this many records (`fail_after`), as a job the platform
    gives up on part way does; `hold` keeps jobs InProgress until it is set (a job still running)."""

    fail_after: int | None = None
    hold: threading.Event | None = None


class IngestJobs:
    def __init__(self, store: SalesforceStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock
        self.settings = IngestSettings()
        self.daily_batches = DAILY_BATCHES
        self.batches_used = 0
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    # --- routing -------------------------------------------------------------------------------

    def route(self, request: Request, version: str, rest: Sequence[str]) -> Response:
        """`rest` follows "jobs/ingest": [], [id], [id, "batches"] or [id, <results>]."""
        try:
            return self._route(request, version, list(rest))
        except BulkError as exc:
            return exc.response()

    def _route(self, request: Request, version: str, rest: list[str]) -> Response:
        method = request.method
        if not rest:
            allow(method, "GET", "POST")
            if method == "POST":
                return json_response(200, self._info(self._create(request, version)))
            with self._lock:
                jobs = list(self._jobs.values())
            return job_list([self._info(j) for j in jobs])
        job = self._job(rest[0])
        if len(rest) == 1:
            allow(method, "GET", "PATCH", "DELETE")
            if method == "GET":
                return json_response(200, self._info(job))
            if method == "PATCH":
                return json_response(200, self._info(self._set_state(job, request)))
            return self._delete(job)
        if len(rest) == 2 and rest[1] == "batches":
            allow(method, "PUT")
            return self._upload(job, request)
        if len(rest) == 2 and rest[1] in ("successfulResults", "failedResults", "unprocessedrecords",
                                          "unprocessedRecords"):
            allow(method, "GET")
            return self._results(job, rest[1])
        raise BulkError(404, "NOT_FOUND", "The requested resource does not exist")

    def _job(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(ids.normalize(job_id) or job_id)
        if job is None:
            raise BulkError(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    # --- create, upload, close, abort, delete --------------------------------------------------

    def _create(self, request: Request, version: str) -> Job:
        try:
            spec = json.loads(request.body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            spec = None
        if not isinstance(spec, dict):
            raise BulkError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object describing the job")
        operation = spec.get("operation")
        if operation not in OPERATIONS:
            raise BulkError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        obj = self._object(spec.get("object"))
        if operation == "hardDelete":
            raise BulkError(400, "FEATURENOTENABLED", _HARD_DELETE_REFUSED)
        external = spec.get("externalIdFieldName")
        if operation == "upsert" and (not isinstance(external, str) or obj.field(external) is None):
            raise BulkError(400, "INVALIDJOB",
                           f"InvalidJob : External ID was blank or not found for {obj.name}: {external}")
        delimiter = spec.get("columnDelimiter", "COMMA")
        line_ending = spec.get("lineEnding", "LF")
        if delimiter not in DELIMITERS or line_ending not in LINE_ENDINGS:
            raise BulkError(400, "INVALIDJOB", "InvalidJob : columnDelimiter or lineEnding is not supported")
        if spec.get("contentType", "CSV") != "CSV":
            raise BulkError(400, "INVALIDJOB", "InvalidJob : contentType must be CSV")
        with self._lock:
            if self.batches_used >= self.daily_batches:
                raise BulkError(400, "LIMIT_EXCEEDED",
                               f"Exceeded max limit of concurrent or daily batches: {self.daily_batches}")
            job_id = ids.to_18("750" + ids.base62(secrets.randbits(70), 12))
            stamp = format_datetime(self.clock())
            job = Job(id=job_id, object=obj.name, operation=operation,
                      external_id=external if operation == "upsert" else None,
                      delimiter=delimiter, line_ending=line_ending, api_version=version,
                      created=stamp, modstamp=stamp, created_by=self.store.api_user_id)
            self._jobs[job_id] = job
        return job

    def _object(self, name: Any) -> SObject:
        obj = with_custom_fields(self.store, get_object(name)) if isinstance(name, str) else None
        if obj is None:
            raise BulkError(404, "NOT_FOUND", f"InvalidJob : Unable to find object: {name}")
        return obj

    def _upload(self, job: Job, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("text/csv"):
            raise BulkError(400, "INVALIDCONTENTTYPE", "The Content-Type must be text/csv")
        if len(request.body) > MAX_UPLOAD_BYTES:
            raise BulkError(413, "EXCEEDED_QUOTA", "The upload exceeds 150 MB once base64-encoded")
        with self._lock:
            if job.state != "Open":
                raise BulkError(409, "INVALIDJOBSTATE", f"Job is not Open: its state is {job.state}")
            if job.data is not None:
                # One upload per job (see docs/design.md): a second would be the platform's to merge.
                raise BulkError(409, "INVALIDJOBSTATE", "Job data was already uploaded: create another job")
            job.data = request.body
            job.modstamp = format_datetime(self.clock())
        return Response(201)

    def _set_state(self, job: Job, request: Request) -> Job:
        try:
            body = json.loads(request.body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        wanted = body.get("state") if isinstance(body, dict) else None
        with self._lock:
            if wanted == "UploadComplete":
                if job.state != "Open":
                    raise BulkError(409, "INVALIDJOBSTATE", f"Job is not Open: its state is {job.state}")
                job.state = "UploadComplete"
                start = True
            elif wanted == "Aborted":
                if job.state in TERMINAL:
                    raise BulkError(409, "INVALIDJOBSTATE", f"Job is already {job.state}")
                start = False
                job.abort.set()
                if job.state == "Open":
                    job.done.set()
                # Processing stops before its next chunk; what it wrote stays in successfulResults.
                job.state = "Aborted"
            else:
                raise BulkError(400, "INVALIDJOBSTATE", f"Unsupported state: {wanted}")
            job.modstamp = format_datetime(self.clock())
        if start:
            threading.Thread(target=self._process, args=(job,), name=f"ingest-{job.id}", daemon=True).start()
        return job

    def _delete(self, job: Job) -> Response:
        with self._lock:
            if job.state not in ("UploadComplete", *TERMINAL):
                raise BulkError(409, "INVALIDJOBSTATE", f"A job in state {job.state} cannot be deleted")
            job.abort.set()  # a closed job not yet picked up is never processed once deleted
            self._jobs.pop(job.id, None)
        return Response(204)

    # --- processing ----------------------------------------------------------------------------

    def _process(self, job: Job) -> None:
        try:
            self._run(job)
        except Exception as exc:  # the platform fails the job; the sandbox does not crash
            with self._lock:
                job.state, job.error_message = "Failed", f"InternalServerError : {type(exc).__name__}"
        finally:
            job.done.set()

    def _run(self, job: Job) -> None:
        hold = self.settings.hold
        with self._lock:
            if job.abort.is_set():
                return
            job.state = "InProgress"
            fail_after, self.settings.fail_after = self.settings.fail_after, None
        if hold is not None:
            hold.wait()
        obj = self._object(job.object)
        try:
            header, rows = _parse(job)
            fields = self._columns(obj, job, header)
        except BulkError as exc:
            with self._lock:
                job.state, job.error_message = "Failed", exc.message
                job.header, job.unprocessed = _safe_header(job), _safe_rows(job)
            return
        job.header = header
        with self._lock:
            self.batches_used += max(1, -(-len(rows) // RECORDS_PER_BATCH))
        done = 0
        for start in range(0, len(rows), CHUNK):
            if job.abort.is_set() or (fail_after is not None and done >= fail_after):
                break
            chunk = rows[start:start + CHUNK]
            if fail_after is not None:
                chunk = chunk[: fail_after - done]
            self._write_chunk(job, obj, fields, chunk)
            done += len(chunk)
        with self._lock:
            job.unprocessed = rows[done:]
            if job.abort.is_set():
                job.state = "Aborted"
            elif fail_after is not None and job.unprocessed:
                job.state = "Failed"
                job.error_message = "InternalServerError : the job was stopped after too many internal retries"
            else:
                job.state = "JobComplete"
            job.modstamp = format_datetime(self.clock())

    def _columns(self, obj: SObject, job: Job, header: list[str]) -> list[Field | None]:
        if job.operation == "delete":
            if header != ["Id"]:
                raise BulkError(400, "INVALIDBATCH", "InvalidBatch : A delete job takes one column: Id")
            return [None]
        fields: list[Field | None] = []
        for name in header:
            f = obj.field(name)
            if f is None:
                raise BulkError(400, "INVALIDBATCH", f"InvalidBatch : Field name not found : {name}")
            fields.append(f)
        if job.operation == "update" and "Id" not in header:
            raise BulkError(400, "INVALIDBATCH", "InvalidBatch : An update job needs an Id column")
        return fields

    def _write_chunk(self, job: Job, obj: SObject, fields: Sequence[Field | None], rows: Sequence[list[str]]) -> None:
        now = self.clock()
        with self.store.transaction():
            for row in rows:
                try:
                    with self.store.savepoint():
                        record_id, created = self._write_one(job, obj, fields, row, now)
                    job.successful.append([record_id, "true" if created else "false", *row])
                except RecordError as exc:
                    shown = ids.normalize(row[0]) if job.operation in ("delete", "update") and row else ""
                    error = f"{exc.status_code}:{exc.message}:{';'.join(exc.fields) or '--'}"
                    job.failed.append([shown or "", error, *row])

    def _write_one(
        self, job: Job, obj: SObject, fields: Sequence[Field | None], row: Sequence[str], now: datetime
    ) -> tuple[str, bool]:
        if len(row) != len(fields):
            raise RecordError("INVALID_FIELD", f"The row has {len(row)} values for {len(fields)} columns")
        if job.operation == "delete":
            return self.store.delete(self._own_id(obj, row[0]), now), False
        values = {f.name: _typed(f, text) for f, text in zip(fields, row, strict=True)
                  if f is not None and text != ""}
        if job.operation == "insert":
            return self.store.create(obj, values, now), True
        if job.operation == "update":
            record_id = self._own_id(obj, str(values.pop("Id", "")))
            return self.store.update(obj, record_id, values, now), False
        key = job.external_id or "Id"
        wanted = values.get(key)
        found = self._by_field(obj, key, wanted) if wanted is not None else None
        if found is None:
            values.pop("Id", None)
            return self.store.create(obj, values, now), True
        values.pop("Id", None)
        return self.store.update(obj, found, values, now), False

    def _own_id(self, obj: SObject, value: str) -> str:
        full = ids.normalize(value)
        if full is None or ids.key_prefix(full) != obj.key_prefix:
            raise RecordError("MALFORMED_ID", f"Id in {obj.name}: id value of incorrect type: {value}", ("Id",))
        return full

    def _by_field(self, obj: SObject, key: str, value: object) -> str | None:
        if key == "Id":
            full = ids.normalize(str(value))
            return full if full and self.store.row(obj, full) else None
        found = self.store.fetch(f'SELECT "Id" FROM "{obj.name}" WHERE "{key}" = ? AND "IsDeleted" = 0', (value,))
        return str(found[0][0]) if found else None

    # --- results -------------------------------------------------------------------------------

    def _results(self, job: Job, kind: str) -> Response:
        with self._lock:
            if kind in ("successfulResults", "failedResults") and job.state not in ("JobComplete", "Failed",
                                                                                     "Aborted"):
                raise BulkError(409, "INVALIDJOBSTATE",
                               f"Results are available once the job is complete; its state is {job.state}")
            header = job.header or _safe_header(job)
            if kind == "successfulResults":
                table = [["sf__Id", "sf__Created", *header], *job.successful]
            elif kind == "failedResults":
                table = [["sf__Id", "sf__Error", *header], *job.failed]
            else:
                table = [header, *job.unprocessed] if header else []
        return _csv_response(table, job)

    # --- job info ------------------------------------------------------------------------------

    def _info(self, job: Job) -> dict[str, Any]:
        with self._lock:
            info: dict[str, Any] = {
                "id": job.id,
                "operation": job.operation,
                "object": job.object,
                "createdById": job.created_by,
                "createdDate": job.created,
                "systemModstamp": job.modstamp,
                "state": job.state,
                "externalIdFieldName": job.external_id,
                "concurrencyMode": "Parallel",
                "contentType": "CSV",
                "apiVersion": float(job.api_version),
                "contentUrl": f"services/data/v{job.api_version}/jobs/ingest/{job.id}/batches",
                "lineEnding": job.line_ending,
                "columnDelimiter": job.delimiter,
                "jobType": "V2Ingest",
                "numberRecordsProcessed": len(job.successful) + len(job.failed),
                "numberRecordsFailed": len(job.failed),
                "retries": 0,
                "totalProcessingTime": 0,
                "apiActiveProcessingTime": 0,
                "apexProcessingTime": 0,
            }
            if job.error_message:
                info["errorMessage"] = job.error_message
        return info


# --- CSV -----------------------------------------------------------------------------------------


def _parse(job: Job) -> tuple[list[str], list[list[str]]]:
    if not job.data:
        return [], []
    try:
        text = job.data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BulkError(400, "INVALIDBATCH", "InvalidBatch : The CSV data is not UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[job.delimiter], strict=True)
    try:
        table = [row for row in reader if row]
    except csv.Error as exc:
        raise BulkError(400, "INVALIDBATCH", f"InvalidBatch : The CSV data cannot be read: {exc}") from None
    if not table:
        return [], []
    return [h.strip() for h in table[0]], table[1:]


def _safe_header(job: Job) -> list[str]:
    try:
        return _parse(job)[0]
    except BulkError:
        return []


def _safe_rows(job: Job) -> list[list[str]]:
    try:
        return _parse(job)[1]
    except BulkError:
        return []


def _typed(f: Field, text: str) -> object:
    """A CSV cell as the JSON value REST would carry, by the field's type; `#N/A` is null. A value of
    the wrong shape is passed on as text, so the store refuses it as it would over REST."""
    if text == NULL_VALUE:
        return None
    if f.type == BOOLEAN:
        lowered = text.lower()
        return {"true": True, "false": False, "1": True, "0": False}.get(lowered, text)
    if f.type == INT or f.type in _NUMERIC:
        if not re.fullmatch(DECIMAL_PATTERN, text.strip()):
            return text
        number = Decimal(text.strip())  # every digit of the cell (Salesforce keeps up to 18), not a double's
        return int(number) if f.type == INT and number == number.to_integral_value() else number
    return text


def _csv_response(table: Sequence[Sequence[str]], job: Job) -> Response:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=DELIMITERS[job.delimiter], lineterminator=LINE_ENDINGS[job.line_ending],
                        quoting=csv.QUOTE_MINIMAL)
    writer.writerows(table)
    headers = {"Content-Type": "text/csv", "Sforce-NumberOfRecords": str(max(len(table) - 1, 0))}
    return Response(200, out.getvalue().encode("utf-8"), headers)

