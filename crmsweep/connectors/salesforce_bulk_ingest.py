"""Salesforce Bulk API 2.0 ingest jobs: deletes and updates too big for sObject Collections.

One job per batch, driven step by step by apply (see `crmsweep.connectors.ingest`): create (Open),
one CSV upload (201), close (UploadComplete), poll until JobComplete / Failed / Aborted, then the
successfulResults, failedResults and unprocessedrecords CSVs, mapped back to record ids. Every HTTP
exchange goes through the connector's `_call` (retry policy, error mapping, call counting).

CSV values are typed from describe. Bulk CSV cannot say null: an empty cell leaves a field as it is,
`#N/A` sets it to null. Salesforce stores an empty text value as null, so both None and "" are sent as
`#N/A`, which leaves the record as a REST update of the same values would.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from simple_salesforce.api import Salesforce

from crmsweep.connectors.http_failures import one_line
from crmsweep.connectors.ingest import ABORTED, JOB_COMPLETE, OPEN, TERMINAL, UPLOAD_COMPLETE, IngestOutcome
from crmsweep.errors import ConnectorError
from crmsweep.model import FieldKind, FieldSpec, Op, Record, WriteResult

T = TypeVar("T")
Call = Callable[..., Any]

DEFAULT_BULK_THRESHOLD = 2_000  # Salesforce's own advice: Bulk for more than 2,000 records
NULL_VALUE = "#N/A"
# Upload limit per job: 150 MB base64-encoded, about 100 MB raw; stay well under it.
MAX_UPLOAD_BYTES = 90 * 1024 * 1024
# Polling: first wait, growth, longest wait (seconds). Most jobs of a few thousand rows end in seconds.
POLL_FIRST, POLL_GROWTH, POLL_MAX = 0.05, 2.0, 2.0
POLL_GIVE_UP = 3 * 60 * 60.0  # a job running for hours is left to a resume
_BULK_OPERATION: Mapping[Op, str] = {
    Op.DELETE: "delete", Op.ARCHIVE: "delete",
    Op.UPDATE: "update", Op.DEACTIVATE: "update", Op.REACTIVATE: "update",
}
_RESEND_CLOSE = "the job may be processing already"


def csv_cell(value: Any, spec: FieldSpec | None) -> str:
    """One value as a Bulk CSV cell of the field's describe type."""
    if value is None or value == "":
        return NULL_VALUE
    kind = spec.kind if spec is not None else None
    if isinstance(value, bool) or kind is FieldKind.BOOL:
        if isinstance(value, str):
            return "true" if value.strip().lower() == "true" else "false"
        return "true" if value else "false"
    if kind is FieldKind.INT and isinstance(value, int | float) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict | list):
        raise ValueError(f"a {type(value).__name__} value cannot be written through Bulk CSV")
    return str(value)


def rows_csv(rows: Sequence[Record], columns: Sequence[str], specs: Mapping[str, FieldSpec]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        # A column this row does not write is an empty cell, which Bulk reads as "leave it as it is": one
        # job carries records that write different fields, and each must change only its own.
        writer.writerow([str(row["Id"]) if c == "Id" else csv_cell(row[c], specs.get(c)) if c in row else ""
                         for c in columns])
    return out.getvalue().encode("utf-8")


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


class SalesforceIngestJob:
    """One Bulk API 2.0 ingest job (`crmsweep.connectors.ingest.IngestJob`)."""

    def __init__(
        self,
        call: Call,
        sf: Salesforce,
        job_id: str,
        object_name: str,
        *,
        data: bytes | None = None,
        secret: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._call = call
        self._sf = sf
        self.id = job_id
        self.object_name = object_name
        self._data = data
        self._secret = secret
        self._sleep = sleep
        self._ended: dict[str, Any] | None = None  # the job info `wait` saw in a terminal state

    def __repr__(self) -> str:
        return f"SalesforceIngestJob({self.id!r}, {self.object_name!r})"

    def _url(self, tail: str = "") -> str:
        return f"{self._sf.base_url}jobs/ingest/{self.id}{tail}"

    def upload(self) -> None:
        if self._data is None:
            raise ConnectorError(f"bulk job {self.id} has no data to upload in this session")
        data = self._data
        headers = {"Content-Type": "text/csv; charset=UTF-8", "Accept": "application/json"}

        def put() -> Any:
            return self._sf._call_salesforce("PUT", self._url("/batches"), name="upload job data", data=data,
                                             headers=headers)

        # A second PUT after one that landed is refused (the job has its data): never a double write.
        response = self._call(f"upload bulk job data for {self.object_name}", put)
        if response.status_code != 201:
            raise ConnectorError(f"Salesforce answered HTTP {response.status_code} to a bulk upload, not 201")
        self._data = None  # the CSV is Salesforce's now: do not hold it

    def close(self) -> None:
        self._patch(UPLOAD_COMPLETE, resend_risk=_RESEND_CLOSE)

    def abort(self) -> None:
        self._patch(ABORTED, resend_risk=None)

    def _patch(self, state: str, *, resend_risk: str | None) -> None:
        def patch() -> Any:
            return self._sf._call_salesforce("PATCH", self._url(), name="set job state", json={"state": state})

        self._call(f"set bulk job {self.id} to {state}", patch, resend_risk=resend_risk)

    def info(self) -> dict[str, Any]:
        def get() -> Any:
            return self._sf._call_salesforce("GET", self._url(), name="job info").json()

        raw = self._call(f"read bulk job {self.id}", get)
        if not isinstance(raw, Mapping) or not isinstance(raw.get("state"), str):
            raise ConnectorError(f"Salesforce sent no state for bulk job {self.id}")
        return dict(raw)

    def state(self) -> str:
        return str(self.info()["state"])

    def wait(self) -> str:
        pause, waited = POLL_FIRST, 0.0
        while True:
            info = self.info()
            state = str(info["state"])
            if state in TERMINAL:
                self._ended = info
                return state
            if state == OPEN:
                raise ConnectorError(f"bulk job {self.id} is still Open: it was never closed")
            if waited >= POLL_GIVE_UP:
                raise ConnectorError(
                    f"bulk job {self.id} on {self.object_name} is still {state} after {int(waited)} s: "
                    "resume the run later to settle it from the job's results"
                )
            self._sleep(pause)
            waited += pause
            pause = min(pause * POLL_GROWTH, POLL_MAX)

    def _csv(self, kind: str) -> list[dict[str, str]]:
        def get() -> Any:
            response = self._sf._call_salesforce("GET", self._url(f"/{kind}/"), name=kind,
                                                 headers={"Accept": "text/csv"})
            response.encoding = "utf-8"
            return response.text

        return parse_csv(self._call(f"read the {kind} of bulk job {self.id}", get))

    def results(self, record_ids: Sequence[str] = ()) -> IngestOutcome:
        """The job's outcome by record id. `record_ids`, all the job was sent, lets the counts Salesforce
        reports stand in for a result file they prove empty (no failures, every record processed), so
        a job that went well costs no download; without them every file is read."""
        info = self._ended or self.info()  # a terminal state is final: no need to ask again
        state = str(info["state"])
        processed = _count(info.get("numberRecordsProcessed"))
        failures = _count(info.get("numberRecordsFailed"))
        complete = bool(record_ids) and state == JOB_COMPLETE and processed == len(record_ids)
        done: dict[str, WriteResult] = {}
        if complete and failures == 0:
            done = {rid: WriteResult(id=rid, ok=True) for rid in record_ids}
        else:
            for row in self._csv("successfulResults"):
                record_id = row.get("Id") or row.get("sf__Id") or ""
                done[record_id] = WriteResult(id=row.get("sf__Id") or record_id, ok=True)
        if failures != 0:
            for row in self._csv("failedResults"):
                record_id = row.get("Id") or row.get("sf__Id") or ""
                done[record_id] = failed_result(record_id, row.get("sf__Error"), self._secret)
        unprocessed: frozenset[str] = frozenset()
        if not complete:
            unprocessed = frozenset(r.get("Id", "") for r in self._csv("unprocessedrecords")) - {""}
        said = info.get("errorMessage")
        return IngestOutcome(state=state, done=done, unprocessed=unprocessed,
                             error_message=one_line(str(said), self._secret) if said else None)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def failed_result(record_id: str, error: str | None, secret: str | None) -> WriteResult:
    """A failedResults row: sf__Error is "CODE:message:fields" (fields "--" when none)."""
    code, _, rest = (error or "UNKNOWN").partition(":")
    message = rest.rsplit(":", 1)[0] if ":" in rest else rest
    return WriteResult(id=record_id, ok=False, error_code=one_line(code or "UNKNOWN", secret),
                       message=one_line(message, secret))


def create_job(call: Call, sf: Salesforce, op: Op, object_name: str, rows: Sequence[Record],
               specs: Mapping[str, FieldSpec], *, secret: str | None) -> SalesforceIngestJob:
    """Create the job for `rows` (one call); the CSV is built first, so a bad value fails before it."""
    operation = _BULK_OPERATION[op]
    columns = ["Id"] if operation == "delete" else ["Id", *dict.fromkeys(k for r in rows for k in r if k != "Id")]
    data = rows_csv(rows, columns, specs)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(f"{len(data)} bytes of CSV is more than one bulk job takes")
    body = {"object": object_name, "operation": operation, "contentType": "CSV",
            "columnDelimiter": "COMMA", "lineEnding": "LF"}

    def post() -> Any:
        return sf._call_salesforce("POST", f"{sf.base_url}jobs/ingest", name="create job", json=body).json()

    # A job created twice leaves an Open job without data, which Salesforce never processes.
    raw = call(f"create a bulk {operation} job for {object_name}", post)
    if not isinstance(raw, Mapping) or raw.get("state") != OPEN or not isinstance(raw.get("id"), str):
        raise ConnectorError(f"Salesforce did not open a bulk {operation} job for {object_name}")
    return SalesforceIngestJob(call, sf, str(raw["id"]), object_name, data=data, secret=secret)


def bulk_operation(op: Op) -> str | None:
    return _BULK_OPERATION.get(op)
