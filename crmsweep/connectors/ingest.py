"""Bulk ingest, the optional connector feature apply drives for big batches (provider-neutral shapes).

A connector that can load records in asynchronous jobs (a bulk API) has `bulk_threshold`,
`can_ingest`, `ingest` and `ingest_job`. Apply drives a job one step at a time so its run log can say
where it stood: the intent is logged before `ingest` creates the job, the job id right after, before
`upload`; then `close`, `wait` and `results`. A job whose outcome was never logged is found again on
resume by its id (`ingest_job`) and settled from its results, never sent again blindly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from crmsweep.model import Op, Record, WriteResult

# Job states, by the names of the first provider with bulk jobs (another maps its own onto these).
OPEN = "Open"
UPLOAD_COMPLETE = "UploadComplete"
IN_PROGRESS = "InProgress"
JOB_COMPLETE = "JobComplete"
FAILED = "Failed"
ABORTED = "Aborted"
TERMINAL = frozenset({JOB_COMPLETE, FAILED, ABORTED})


@dataclass(frozen=True)
class IngestOutcome:
    """What a job in a terminal state says of its records, by record id: written or refused (`done`),
    provably not processed (`unprocessed`). A record in neither was not accounted for by the CRM."""

    state: str
    done: Mapping[str, WriteResult] = field(default_factory=dict)
    unprocessed: frozenset[str] = frozenset()
    error_message: str | None = None


class IngestJob(Protocol):
    id: str

    def upload(self) -> None: ...

    def close(self) -> None: ...

    def state(self) -> str: ...

    def abort(self) -> None: ...

    def wait(self) -> str:
        """Poll until the job is in a terminal state; that state."""
        ...

    def results(self, record_ids: Sequence[str] = ()) -> IngestOutcome:
        """The outcome of a job in a terminal state; `record_ids` (all it was sent) may save downloads."""
        ...


@runtime_checkable
class BulkIngest(Protocol):
    bulk_threshold: int  # records per (op, object) above which apply uses a job

    def can_ingest(self, op: Op, object_name: str) -> bool: ...

    def carries(self, values: Mapping[str, Any]) -> bool:
        """Whether a job can write these values as they are (a bulk format may have no way to say some
        value: such a record goes through the regular API instead)."""
        ...

    def ingest(self, op: Op, object_name: str, rows: Sequence[Record]) -> IngestJob:
        """Create a job for `rows` (one HTTP call): nothing is uploaded yet."""
        ...

    def ingest_job(self, job_id: str, op: Op, object_name: str) -> IngestJob:
        """The job `job_id` created earlier (by a run that stopped), to settle it."""
        ...
