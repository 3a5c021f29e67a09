"""Run folders and their write-ahead log: the record of every write apply made, and why it is safe.

A run is one apply of one plan: `runs/<run-id>/plan.json` (the exact plan file) and `log.jsonl`, an
append-only JSON-lines log. Each line is written, flushed and fsynced before the call returns, so an
`intent` line is on disk before the write it announces is sent (safety rule 4). Reading tolerates a
torn last line (a power cut mid-append); anything else malformed is reported, never guessed at.

Entry kinds (field "t"): start, intent, skip, result, unwritten (announced writes that were provably not
carried out: back to not started), stop, end, resume, rolled_back, rollback (on a run, naming a rollback
run started for it: what `rollback RUN` resumes and counts, without listing every run), and notes (what
the session's report told beyond its counts; the latest session's replace earlier ones).
A create's intent record carries its idempotency key ("key"); its result row the new id ("id") beside the
old one ("old_id"), which is the run's id map that placeholders of later creates resolve through.

Beside the runs, `plans/` (in the home folder) holds one lock per plan digest, held for a whole apply so two
applies of one plan cannot split its work, and the ids of the runs that applied that plan, so "this plan
was applied already" is found without reading every run log.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar, cast

from crmsweep.errors import BadInput, SafetyRefusal
from crmsweep.model import Change, Op, Plan, PlanFormatError, canonical_datetime
from crmsweep.paths import MAX_NAME_LENGTH, PRIVATE_FILE_MODE, Home, checked_dir, fsync_dir, write_private_file

PLAN_FILE = "plan.json"
LOG_FILE = "log.jsonl"
LOCK_FILE = "apply.lock"
PLANS_DIR = "plans"
_DIR_MODE = 0o700
# How far back the tail is read per step when looking for the log's last line.
_TAIL_BLOCK = 64 * 1024
T = TypeVar("T")

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


def _is_torn(last_line: bytes) -> bool:
    """Whether the log's last line (with its newline, if it has one) is an append cut short.

    An append writes one JSON object and its newline, then fsyncs; only an acknowledged append counts.
    So a last line without its newline, or one that is not a JSON object (a block the file system
    zero-filled or half-wrote before a crash), was never acknowledged. Reading and appending both
    decide with this one function, so what a read ignores is exactly what the next append cuts.
    """
    if not last_line.strip():
        return False
    if not last_line.endswith(b"\n"):
        return True
    try:
        entry = json.loads(last_line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return True
    return not isinstance(entry, dict)


def _last_line_start(content: bytes) -> int:
    """Offset where the last line of `content` begins (its own trailing newline is part of it)."""
    body = content[:-1] if content.endswith(b"\n") else content
    return body.rfind(b"\n") + 1


def _last_line_start_in_file(fd: int, size: int) -> int:
    """`_last_line_start` for an open file, reading backwards in blocks rather than the whole log."""
    end = size - 1 if size and os.pread(fd, 1, size - 1) == b"\n" else size
    while end > 0:
        begin = max(0, end - _TAIL_BLOCK)
        newline = os.pread(fd, end - begin, begin).rfind(b"\n")
        if newline >= 0:
            return begin + newline + 1
        end = begin
    return 0


def _drop_torn_tail(fd: int) -> None:
    """Cut a torn last line (see `_is_torn`), so the next entry does not bury it mid-file.

    The cut bytes were never acknowledged (their fsync never returned), so no decision rests on them.
    """
    size = os.fstat(fd).st_size
    if size == 0:
        return
    start = _last_line_start_in_file(fd, size)
    if not _is_torn(os.pread(fd, size - start, start)):
        return
    os.ftruncate(fd, start)
    os.fsync(fd)


def _entry_line(entry: dict[str, Any]) -> bytes:
    """One log line as UTF-8, readable text where possible.

    A CRM can send half of a UTF-16 pair (a lone surrogate) in a message; UTF-8 cannot hold it, so
    such an entry is written with JSON escapes instead, which read back to the very same text.
    """
    try:
        return (json.dumps(entry, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(entry, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")


def _read_lock_holder(path: Path) -> str:
    """What the holder wrote in its lock: "<pid>" or "<pid> <run id>"; empty if unreadable."""
    try:
        # Empty: the holder is between taking the lock and writing its pid.
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


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
        data = _entry_line({**entry, "time": entry.get("time") or now_text()})
        fd = os.open(self.log_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
        try:
            _drop_torn_tail(fd)
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's lock: a second apply (or rollback) of the same run is refused while it is held.

        An flock on a file that is never removed: the kernel releases it when the holder exits, however
        it exits, so there is no stale lock to take over and no window where two processes both hold it.
        """

        def refusal(holder: str) -> SafetyRefusal:
            pid = holder.split(" ")[0] if holder else "?"
            return SafetyRefusal(
                f"run {self.run_id} is being applied by another process (pid {pid}); wait for it to finish"
            )

        with _flock(self.lock_path, refusal):
            yield


@contextmanager
def _flock(path: Path, refusal: Callable[[str], SafetyRefusal]) -> Iterator[int]:
    """An exclusive non-blocking flock on `path`, with "<pid>" written in it for the refusal message;
    yields the descriptor so the holder can add what it is doing (`_note_holder`)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise refusal(_read_lock_holder(path)) from None
        # The pid is only for the message a second process shows; the flock is the lock.
        _note_holder(fd, str(os.getpid()))
        try:
            yield fd
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock


def _note_holder(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode("utf-8"), 0)


def _plans_dir(home: Home) -> Path:
    return home.folder(PLANS_DIR)


def _plan_key(plan: Plan) -> str:
    return plan.digest.split(":", 1)[-1]


class PlanLock:
    """The held lock of one plan (see `plan_lock`); `started` names the run it is applied as."""

    def __init__(self, fd: int, org_fd: int) -> None:
        self._fd = fd
        self._org_fd = org_fd

    def started(self, run_id: str) -> None:
        for fd in (self._fd, self._org_fd):
            _note_holder(fd, f"{os.getpid()} {run_id}")


@contextmanager
def plan_lock(home: Home, plan: Plan) -> Iterator[PlanLock]:
    """Hold the lock of `plan` (by digest) for a whole apply: a second apply of it is refused, naming the run;
    and the lock of its org (`org_lock`): an apply of another plan to the same org is refused too."""

    def refusal(holder: str) -> SafetyRefusal:
        return SafetyRefusal(f"plan {plan.header.plan_id} is being applied by {_holder_text(holder, 'another apply')}; "
                             "wait for it to finish")

    # The plan's own lock first, so a second apply of the same plan is told which run applies it.
    with _flock(_plans_dir(home) / f"{_plan_key(plan)}.lock", refusal) as fd, \
            org_lock(home, plan.header.provider, plan.header.org_id) as org:
        yield PlanLock(fd, org)


def _holder_text(holder: str, nobody_named: str) -> str:
    """Who holds a lock, from what it wrote there ("<pid>" or "<pid> <run id>"): "run R (pid N)"."""
    pid, _, run_id = holder.partition(" ")
    return f"{f'run {run_id}' if run_id else nobody_named} (pid {pid or '?'})"


def plan_applied_now(home: Home, plan: Plan) -> str | None:
    """Who applies `plan` right now ("run R (pid N)", see `plan_lock`), or None: asked by a dry run, which
    takes no lock and creates nothing in the home. Its probe holds the lock shared for an instant; an apply
    starting in that instant is refused as if applied, and can be run again."""
    path = home.root / PLANS_DIR / f"{_plan_key(plan)}.lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None  # never applied from this home
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder_text(_read_lock_holder(path), "another apply")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextmanager
def org_lock(home: Home, provider: str, org_id: str) -> Iterator[int]:
    """Hold the lock of one org for a whole apply or rollback from this home: a second one, of another plan,
    is refused. Each re-reads its records just before writing them, but two at once both read before either
    writes, so the second writes over the first's change unseen by its drift check (two plans scanned from
    one snapshot both cleared and deleted the same people). Another home, or another admin's tool, is not
    stopped by it: there the drift check is what holds."""

    def refusal(holder: str) -> SafetyRefusal:
        return SafetyRefusal(
            f"{_holder_text(holder, 'another apply or rollback')} is writing to {provider} org {org_id} from this "
            "home; wait for it to finish: two at once could each write over a record the other just changed"
        )

    key = hashlib.sha256(f"{provider}\0{org_id}".encode()).hexdigest()[:32]
    with _flock(_plans_dir(home) / f"org-{key}.lock", refusal) as fd:
        yield fd


def runs_of_plan(home: Home, plan: Plan) -> list[str]:
    """The ids of the runs started for `plan`, oldest first (from the per-plan index, not every run log)."""
    # Not `_plans_dir`: looking (a dry run) creates nothing in the home.
    path = home.root / PLANS_DIR / f"{_plan_key(plan)}.runs"
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read the run index {path}: {exc}") from None
    # A torn last line (a crash mid-append) names no run that got past its start entry's fsync.
    return [line for line in text.splitlines() if line.startswith("run-") and (home.runs_dir / line).is_dir()]


def _index_run(home: Home, plan: Plan, run_id: str) -> None:
    path = _plans_dir(home) / f"{_plan_key(plan)}.runs"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        os.write(fd, f"{run_id}\n".encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def create_run(
    home: Home, plan: Plan, plan_text: str, *, kind: str = KIND_APPLY, rollback_of: str | None = None,
    config_file: Path | None = None,
) -> RunHandle:
    """A new run folder (0700) with the plan copy and a fsynced `start` entry. `config_file`: the config the
    run was started with, recorded so that the command which finishes it can name it."""
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
            **({"config": str(config_file.absolute())} if config_file is not None else {}),
        }
    )
    fsync_dir(path)
    fsync_dir(runs)
    _index_run(home, plan, run_id)
    return handle


def _run_path(home: Home, run_id: str) -> Path:
    if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith(".") or len(run_id) > MAX_NAME_LENGTH:
        raise BadInput(f"{run_id!r} is not a run id: see `crmsweep runs list`")
    return home.runs_dir / run_id


def open_run(home: Home, run_id: str) -> RunHandle:
    path = _run_path(home, run_id)
    if not checked_dir(path, "run folder") or not (path / LOG_FILE).is_file():
        raise BadInput(f"no run {run_id} in {home.runs_dir}: see `crmsweep runs list`")
    return RunHandle(run_id, path)


# --- reading a run back ------------------------------------------------------------------------------


# The skip reason of a rollback's re-create or undelete whose record is live again under its own id.
SKIP_ALREADY_RESTORED = "already restored"


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
    # For a create: the idempotency key its intent logged, and when (resume looks for it by them).
    key: str | None = None
    intent_time: str | None = None
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
    # Rollback runs started for this run, oldest first (its "rollback" entries).
    rollbacks: list[str] = field(default_factory=list)
    # When the latest session's stop entry was written, unless it stopped by an interruption (Ctrl-C),
    # which may come while a write is still in flight: writes of this run landed before it.
    settled_at: str | None = None
    # The latest session's report notes (its "notes" entry): what it could not put back, what a re-create lost.
    notes: list[str] = field(default_factory=list)
    # The config file the run was started with (its start entry), if it was started with one.
    config_file: str | None = None

    def count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.outcomes if o.outcome is outcome)

    @property
    def id_map(self) -> dict[str, dict[str, str]]:
        """Object -> old id -> new id of every record this run (re-)created, from its result entries."""
        return id_map_of(self.plan, self.outcomes)

    @property
    def counts(self) -> dict[str, int]:
        return {o.value: self.count(o) for o in Outcome}


def already_restored(out: ChangeOutcome) -> bool:
    """Whether `out` is a rollback's re-create or undelete left undone because the record was live again
    under its own id (restored by hand since the run removed it): the record is back, nothing was written."""
    return out.outcome is Outcome.SKIPPED and out.reason == SKIP_ALREADY_RESTORED


def written_id(change: Change, out: ChangeOutcome) -> str:
    """The id of the record `change` wrote: a create's, the id the CRM gave it (its old one until it landed)."""
    return out.record_id if change.op is Op.CREATE and out.record_id else change.record_id


def made_as(change: Change, out: ChangeOutcome) -> str | None:
    """The id the record a create (re-)made stands under: the new id once applied, its own once found live
    again under it (restored by hand); None if it was not made."""
    if out.outcome is Outcome.APPLIED and out.record_id:
        return out.record_id
    return change.record_id if already_restored(out) else None


def id_map_of(plan: Plan, outcomes: list[ChangeOutcome]) -> dict[str, dict[str, str]]:
    """Object -> old id -> new id of the plan's creates that `outcomes` show applied; a record found
    restored by hand instead maps to its own id (its children and links point at it)."""
    found: dict[str, dict[str, str]] = {}
    for out in outcomes:
        change = plan.changes[out.index]
        made = made_as(change, out) if change.op is Op.CREATE else None
        if made is not None:
            found.setdefault(change.object, {})[change.record_id] = made
    return found


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
    entries, torn = _cached(log_path, raw, lambda content: _parse_entries(log_path, content))
    return list(entries), torn


def _parse_entries(log_path: Path, raw: bytes) -> tuple[list[dict[str, Any]], bool]:
    # Only the last line may be torn (see `_is_torn`); damage anywhere else is refused, never skipped.
    start = _last_line_start(raw)
    torn = _is_torn(raw[start:])
    complete = raw[:start] if torn else raw
    entries: list[dict[str, Any]] = []
    for number, line in enumerate(complete.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadInput(f"run log {log_path} is damaged at line {number}: it cannot be trusted") from None
        if not isinstance(entry, dict) or "t" not in entry:
            raise BadInput(f"run log {log_path} has an entry without a type at line {number}")
        entries.append(entry)
    return entries, torn


# Parsed run files by path, each beside the digest and size of the bytes it was parsed from (see `_cached`).
_PARSED: OrderedDict[Path, tuple[bytes, int, Any]] = OrderedDict()
# Enough for a rollback's working set (the run, its rollbacks, the run its plan came from), two files
# each; bounded in count and in bytes read (the newest file is kept whatever its size), so that memory
# stays flat however many runs one process reads (`runs list`).
_PARSED_FILES = 16
_PARSED_BYTES = 128 * 1024 * 1024
_PARSED_LOCK = threading.Lock()


def _cached(path: Path, raw: bytes, parse: Callable[[bytes], T]) -> T:
    """`parse(raw)`, the bytes just read from `path`, reused while those bytes are unchanged.

    One rollback reads its run several times over (settle, plan, checks, apply, marking it); parsing a
    big plan and log again each time cost more than its API calls. Keyed by a digest of the very bytes
    read now (not by size or mtime, which an edit in place can keep), so nothing stale is ever served.
    """
    digest = hashlib.blake2b(raw, digest_size=32).digest()
    with _PARSED_LOCK:
        hit = _PARSED.get(path)
        if hit is not None and hit[0] == digest:
            _PARSED.move_to_end(path)
            return cast(T, hit[2])
    value = parse(raw)
    with _PARSED_LOCK:
        _PARSED[path] = (digest, len(raw), value)
        _PARSED.move_to_end(path)
        while len(_PARSED) > 1 and (
            len(_PARSED) > _PARSED_FILES or sum(size for _, size, _ in _PARSED.values()) > _PARSED_BYTES
        ):
            _PARSED.popitem(last=False)
    return value


def _read_plan(run_id: str, handle: RunHandle) -> tuple[Plan, str]:
    try:
        raw = handle.plan_path.read_bytes()
        return _cached(handle.plan_path, raw, _parse_plan)
    except OSError as exc:
        raise BadInput(f"cannot read the plan of run {run_id} ({handle.plan_path}): {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise BadInput(f"the plan of run {run_id} ({handle.plan_path}) is damaged: it is not UTF-8 text") from None
    except PlanFormatError as exc:
        raise BadInput(f"the plan of run {run_id} ({handle.plan_path}) is damaged: {exc}") from exc


def _parse_plan(raw: bytes) -> tuple[Plan, str]:
    plan_text = raw.decode("utf-8")
    plan, _claimed = Plan.from_json(plan_text)
    return plan, plan_text


def read_run(home: Home, run_id: str) -> RunState:
    """Run `run_id` as its log tells it. Each call builds a fresh state (callers change their copy);
    the parsed plan (frozen) and log entries (read only) are shared while the files stay as they were."""
    handle = open_run(home, run_id)
    plan, plan_text = _read_plan(run_id, handle)
    entries, torn = _read_entries(handle.log_path)
    if not entries or entries[0].get("t") != "start":
        raise BadInput(f"run log {handle.log_path} does not begin with a start entry: it cannot be trusted")
    start = entries[0]
    if start.get("plan_digest") != plan.digest:
        # The log's indexes name the changes of the plan it began with: read against another plan, a rollback
        # would undo changes the run never made, and count as back the records it did change.
        raise BadInput(
            f"the plan of run {run_id} ({handle.plan_path}) is not the plan the run applied (its digest is not the "
            f"one its log began with): put that plan back; the run cannot be read, resumed or rolled back until then"
        )
    outcomes = [ChangeOutcome(index=i, record_id=c.record_id) for i, c in enumerate(plan.changes)]
    # An ordered set (a dict's keys): a change logged again moves to the end in O(1), where a list's
    # membership test and remove made reading a run of n changes O(n^2).
    applied: dict[int, None] = {}
    rolled_back_by: str | None = None
    stop_reason: str | None = None
    session_end: str | None = None  # "end" or "stop" if the latest session ended, else None
    last_batch = 0
    rollbacks: list[str] = []
    settled_at: str | None = None
    notes: list[str] = []

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
                applied.pop(out.index, None)
                out.outcome = Outcome.PENDING
                out.before = rec.get("before")
                out.intent_batch = batch
                out.key = rec.get("key")
                out.intent_time = entry.get("time")
        elif kind == "result":
            last_batch = max(last_batch, int(entry.get("batch", 0)))
            for res in entry.get("results", []):
                out = outcome_at(res.get("i"))
                applied.pop(out.index, None)
                # A create's result names the new id ("id") beside the old one ("old_id"): the id map.
                out.record_id = res.get("id") or out.record_id
                out.fingerprint_after = res.get("fingerprint_after")
                out.error_code = res.get("error_code")
                out.message = res.get("message")
                if res.get("ok"):
                    out.outcome = Outcome.APPLIED
                    applied[out.index] = None
                else:
                    out.outcome = Outcome.FAILED
        elif kind == "unwritten":
            # Announced, but provably not carried out: back to not started (a resume writes them).
            for index in entry.get("changes", []):
                out = outcome_at(index)
                out.outcome, out.before, out.intent_batch = Outcome.NOT_STARTED, None, None
        elif kind == "skip":
            out = outcome_at(entry.get("i"))
            out.outcome = Outcome.SKIPPED
            out.reason = entry.get("reason")
            out.detail = entry.get("detail")
        elif kind == "stop":
            session_end = "stop"
            stop_reason = entry.get("reason")
            settled_at = None if entry.get("interrupted") else entry.get("time")
        elif kind == "end":
            session_end = "end"
        elif kind == "resume":
            session_end = None
            stop_reason = None
            settled_at = None
        elif kind == "rolled_back":
            rolled_back_by = entry.get("by")
        elif kind == "rollback" and isinstance(entry.get("by"), str):
            rollbacks.append(entry["by"])
        elif kind == "notes":
            notes = [str(note) for note in entry.get("notes", [])]

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
        applied_order=list(applied),
        status=status,
        rolled_back_by=rolled_back_by,
        stop_reason=stop_reason,
        torn_tail=torn,
        last_batch=last_batch,
        rollbacks=rollbacks,
        settled_at=settled_at,
        notes=notes,
        config_file=start.get("config") if isinstance(start.get("config"), str) else None,
    )


def list_runs(home: Home) -> list[RunSummary]:
    """Every run under the home folder, oldest first. A damaged run is listed as such, not skipped."""
    summaries: list[RunSummary] = []
    for path in sorted(home.runs_dir.iterdir()):
        if not path.is_dir() or not path.name.startswith("run-"):
            continue
        try:
            state = read_run(home, path.name)
        except (BadInput, SafetyRefusal) as exc:
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
