"""Run folders and their write-ahead log: the record of every write apply made, and why it is safe.

A run is one apply of one plan: `runs/<run-id>/plan.json` (the exact plan file) and `log.jsonl`, an
append-only JSON-lines log. Each line is written, flushed and fsynced before the call returns, so an
`intent` line is on disk before the write it announces is sent (safety rule 4). Reading tolerates a
torn last line (a power cut mid-append); anything else malformed is reported, never guessed at.

Entry kinds (field "t"): start, intent, skip, result, stop, end, resume, rolled_back.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from crmsweep.errors import BadInput, SafetyRefusal
from crmsweep.model import Plan, PlanFormatError, canonical_datetime
from crmsweep.paths import PRIVATE_FILE_MODE, Home, fsync_dir, write_private_file

PLAN_FILE = "plan.json"
LOG_FILE = "log.jsonl"
LOCK_FILE = "apply.lock"
_DIR_MODE = 0o700
_FRESH_LOCK_SECONDS = 10.0

KIND_APPLY = "apply"
KIND_ROLLBACK = "rollback"

STATUS_DONE = "done"
STATUS_DONE_WITH_FAILURES = "done with failures"
STATUS_STOPPED = "stopped"
STATUS_UNFINISHED = "unfinished"
STATUS_ROLLED_BACK = "rolled back"
STATUS_DAMAGED = "damaged"


def now_text() -> str:
    return canonical_datetime(datetime.now(UTC)) or ""


def new_run_id(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"run-{moment.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def _drop_torn_tail(fd: int) -> None:
    """Cut an append that a crash left without its newline, so the next entry starts on a line of its own.

    The cut bytes were never acknowledged (their fsync never returned), so no decision rests on them.
    """
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    content = os.pread(fd, size, 0)
    os.ftruncate(fd, content.rfind(b"\n") + 1)
    os.fsync(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


@dataclass(frozen=True)
class RunHandle:
    run_id: str
    path: Path

    @property
    def log_path(self) -> Path:
        return self.path / LOG_FILE

    @property
    def plan_path(self) -> Path:
        return self.path / PLAN_FILE

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_FILE

    def append(self, entry: dict[str, Any]) -> None:
        """Append one entry (a "time" is added if absent); returns once it is fsynced to disk."""
        line = json.dumps({**entry, "time": entry.get("time") or now_text()}, ensure_ascii=False, allow_nan=False)
        fd = os.open(self.log_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
        try:
            _drop_torn_tail(fd)
            data = (line + "\n").encode("utf-8")
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's apply lock: a second apply of the same run is refused while it is held."""
        self._take_lock()
        try:
            yield
        finally:
            with suppress(FileNotFoundError):
                self.lock_path.unlink()

    def _take_lock(self) -> None:
        for _attempt in range(2):
            try:
                fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
            except FileExistsError:
                holder = self._lock_holder()
                if (holder is not None and _pid_alive(holder)) or (holder is None and self._lock_is_fresh()):
                    raise SafetyRefusal(
                        f"run {self.run_id} is being applied by another process (pid {holder or '?'}); "
                        "wait for it to finish"
                    ) from None
                # The holder died without cleaning up (killed, power cut): the lock is stale.
                with suppress(FileNotFoundError):
                    self.lock_path.unlink()
                continue
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(str(os.getpid()))
                handle.flush()
                os.fsync(handle.fileno())
            return
        raise SafetyRefusal(f"run {self.run_id} is locked by another process; wait for it to finish")

    def _lock_is_fresh(self) -> bool:
        # A lock without a pid may belong to a process between creating and writing it.
        try:
            return time.time() - self.lock_path.stat().st_mtime < _FRESH_LOCK_SECONDS
        except FileNotFoundError:
            return False

    def _lock_holder(self) -> int | None:
        try:
            return int(self.lock_path.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            # Unreadable or half-written (the holder died between open and write): treat as stale.
            return None


def create_run(
    home: Home, plan: Plan, plan_text: str, *, kind: str = KIND_APPLY, rollback_of: str | None = None
) -> RunHandle:
    """A new run folder (0700) with the plan copy and a fsynced `start` entry."""
    if kind not in (KIND_APPLY, KIND_ROLLBACK):
        raise ValueError(f"unknown run kind {kind!r}")
    runs = home.runs_dir
    while True:
        run_id = new_run_id()
        path = runs / run_id
        try:
            path.mkdir(mode=_DIR_MODE)
        except FileExistsError:
            continue
        break
    os.chmod(path, _DIR_MODE)
    handle = RunHandle(run_id, path)
    write_private_file(handle.plan_path, plan_text.encode("utf-8"))
    handle.append(
        {
            "t": "start",
            "run": run_id,
            "plan_id": plan.header.plan_id,
            "plan_digest": plan.digest,
            "connection": plan.header.connection,
            "org_id": plan.header.org_id,
            "kind": kind,
            "rollback_of": rollback_of,
        }
    )
    fsync_dir(path)
    fsync_dir(runs)
    return handle


def _run_path(home: Home, run_id: str) -> Path:
    if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
        raise BadInput(f"{run_id!r} is not a run id: see `crmsweep runs` for the list")
    return home.runs_dir / run_id


def open_run(home: Home, run_id: str) -> RunHandle:
    path = _run_path(home, run_id)
    if not (path / LOG_FILE).is_file():
        raise BadInput(f"no run {run_id} in {home.runs_dir}: see `crmsweep runs` for the list")
    return RunHandle(run_id, path)


# --- reading a run back ------------------------------------------------------------------------------


class Outcome(StrEnum):
    APPLIED = "applied"
    SKIPPED = "skipped"
    FAILED = "failed"
    PENDING = "pending"  # an intent is on disk but no result: the process died or was stopped mid-call
    NOT_STARTED = "not started"


@dataclass
class ChangeOutcome:
    """What the log says happened to one change of the plan (the latest entry about it wins)."""

    index: int
    outcome: Outcome = Outcome.NOT_STARTED
    record_id: str | None = None  # for a create, the id the CRM gave the new record
    before: dict[str, Any] | None = None  # the before-image logged in the intent
    intent_batch: int | None = None
    fingerprint_after: str | None = None
    error_code: str | None = None
    message: str | None = None
    reason: str | None = None  # skip reason
    detail: str | None = None

    @property
    def done(self) -> bool:
        return self.outcome in (Outcome.APPLIED, Outcome.SKIPPED, Outcome.FAILED)


@dataclass
class RunState:
    run_id: str
    path: Path
    plan: Plan
    plan_text: str
    kind: str
    rollback_of: str | None
    started: str
    entries: list[dict[str, Any]]
    outcomes: list[ChangeOutcome]
    # Indexes of applied changes in the order their results were logged (rollback undoes in reverse).
    applied_order: list[int]
    status: str
    rolled_back_by: str | None = None
    stop_reason: str | None = None
    torn_tail: bool = False
    last_batch: int = 0

    def count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.outcomes if o.outcome is outcome)

    @property
    def counts(self) -> dict[str, int]:
        return {o.value: self.count(o) for o in Outcome}


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    plan_id: str
    kind: str
    started: str
    status: str
    total: int
    counts: dict[str, int] = field(default_factory=dict)
    rollback_of: str | None = None
    problem: str | None = None


def _read_entries(log_path: Path) -> tuple[list[dict[str, Any]], bool]:
    try:
        raw = log_path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read run log {log_path}: {exc.strerror}") from exc
    lines = raw.split(b"\n")
    # The log always ends with "\n"; anything after the last newline is an append cut short.
    complete, tail = lines[:-1], lines[-1]
    torn = bool(tail.strip())
    entries: list[dict[str, Any]] = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            if number == len(complete) and not torn:
                # The last complete-looking line is garbage: also a torn write (e.g. zero-filled block).
                torn = True
                continue
            raise BadInput(f"run log {log_path} is damaged at line {number}: it cannot be trusted") from None
        if not isinstance(entry, dict) or "t" not in entry:
            raise BadInput(f"run log {log_path} has an entry without a type at line {number}")
        entries.append(entry)
    return entries, torn


def read_run(home: Home, run_id: str) -> RunState:
    handle = open_run(home, run_id)
    try:
        plan_text = handle.plan_path.read_text(encoding="utf-8")
        plan, _claimed = Plan.from_json(plan_text)
    except OSError as exc:
        raise BadInput(f"cannot read the plan of run {run_id} ({handle.plan_path}): {exc.strerror}") from exc
    except PlanFormatError as exc:
        raise BadInput(f"the plan of run {run_id} ({handle.plan_path}) is damaged: {exc}") from exc
    entries, torn = _read_entries(handle.log_path)
    if not entries or entries[0].get("t") != "start":
        raise BadInput(f"run log {handle.log_path} does not begin with a start entry: it cannot be trusted")
    start = entries[0]
    outcomes = [ChangeOutcome(index=i, record_id=c.record_id) for i, c in enumerate(plan.changes)]
    applied_order: list[int] = []
    rolled_back_by: str | None = None
    stop_reason: str | None = None
    session_end: str | None = None  # "end" or "stop" if the latest session ended, else None
    last_batch = 0

    def outcome_at(index: Any) -> ChangeOutcome:
        if not isinstance(index, int) or not 0 <= index < len(outcomes):
            raise BadInput(f"run log {handle.log_path} names change {index!r}, which its plan does not have")
        return outcomes[index]

    for entry in entries[1:]:
        kind = entry["t"]
        if kind == "intent":
            batch = int(entry.get("batch", 0))
            last_batch = max(last_batch, batch)
            for rec in entry.get("records", []):
                out = outcome_at(rec.get("i"))
                if out.index in applied_order:
                    applied_order.remove(out.index)
                out.outcome = Outcome.PENDING
                out.before = rec.get("before")
                out.intent_batch = batch
        elif kind == "result":
            last_batch = max(last_batch, int(entry.get("batch", 0)))
            for res in entry.get("results", []):
                out = outcome_at(res.get("i"))
                if out.index in applied_order:
                    applied_order.remove(out.index)
                out.record_id = res.get("id") or out.record_id
                out.fingerprint_after = res.get("fingerprint_after")
                out.error_code = res.get("error_code")
                out.message = res.get("message")
                if res.get("ok"):
                    out.outcome = Outcome.APPLIED
                    applied_order.append(out.index)
                else:
                    out.outcome = Outcome.FAILED
        elif kind == "skip":
            out = outcome_at(entry.get("i"))
            out.outcome = Outcome.SKIPPED
            out.reason = entry.get("reason")
            out.detail = entry.get("detail")
        elif kind == "stop":
            session_end = "stop"
            stop_reason = entry.get("reason")
        elif kind == "end":
            session_end = "end"
        elif kind == "resume":
            session_end = None
            stop_reason = None
        elif kind == "rolled_back":
            rolled_back_by = entry.get("by")

    failed = sum(1 for o in outcomes if o.outcome is Outcome.FAILED)
    if rolled_back_by:
        status = STATUS_ROLLED_BACK
    elif session_end == "end":
        status = STATUS_DONE_WITH_FAILURES if failed else STATUS_DONE
    elif session_end == "stop":
        status = STATUS_STOPPED
    else:
        status = STATUS_UNFINISHED
    return RunState(
        run_id=run_id,
        path=handle.path,
        plan=plan,
        plan_text=plan_text,
        kind=str(start.get("kind", KIND_APPLY)),
        rollback_of=start.get("rollback_of"),
        started=str(start.get("time", "")),
        entries=entries,
        outcomes=outcomes,
        applied_order=applied_order,
        status=status,
        rolled_back_by=rolled_back_by,
        stop_reason=stop_reason,
        torn_tail=torn,
        last_batch=last_batch,
    )


def list_runs(home: Home) -> list[RunSummary]:
    """Every run under the home folder, oldest first. A damaged run is listed as such, not skipped."""
    summaries: list[RunSummary] = []
    for path in sorted(home.runs_dir.iterdir()):
        if not path.is_dir() or not path.name.startswith("run-"):
            continue
        try:
            state = read_run(home, path.name)
        except BadInput as exc:
            summaries.append(
                RunSummary(path.name, plan_id="", kind="", started="", status=STATUS_DAMAGED, total=0, problem=str(exc))
            )
            continue
        summaries.append(
            RunSummary(
                run_id=state.run_id,
                plan_id=state.plan.header.plan_id,
                kind=state.kind,
                started=state.started,
                status=state.status,
                total=len(state.plan.changes),
                counts=state.counts,
                rollback_of=state.rollback_of,
            )
        )
    # Run ids start with their UTC second; the start time orders runs begun within the same second.
    summaries.sort(key=lambda s: (s.run_id[:20], s.started, s.run_id))
    return summaries
