"""The API budget: how many calls a backup or an apply will make, and whether the org can spare them.

Pure: the caller gathers the connector's `ReadPlan`s and `ApiAllowance` (each a few calls at most, and
the backup reuses them), this module adds the calls up and judges. An org's daily allowance is shared
with every other integration the company runs, so a run that would leave less than the configured
reserve is refused up front (exit 3) rather than stopped half-way by REQUEST_LIMIT_EXCEEDED, or worse,
leaving the company's other integrations without calls until the rolling 24 hours recover.

The estimates count calls still to be made when they are taken; calls already spent (the org id,
the COUNT()s behind the read plans) are in the allowance read after them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from crmsweep.cleanup.apply import change_batches
from crmsweep.cleanup.passes import PASSES, EveryRowRead, LiveNeeds, RelatedRead
from crmsweep.errors import BadInput, OverBudget
from crmsweep.model import ApiAllowance, Capabilities, Change, ObjectEntry, Op, ReadPlan, Vocabulary

_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%\s*")
MAX_SHARE = 0.9  # a reserve above this leaves crmsweep nothing: surely a typo


@dataclass(frozen=True)
class Reserve:
    """Calls of the daily allowance kept for other integrations: a share of it, or a fixed number."""

    share: float | None = None
    calls: int | None = None

    @classmethod
    def parse(cls, value: Any, where: str = "[budget] reserve") -> Reserve:
        """`"10%"` (a share of the daily allowance) or a whole number of calls, as a config gives it."""
        if isinstance(value, bool):
            raise BadInput(f"{where} must be a share like \"10%\" or a number of calls like 5000, got {value!r}")
        if isinstance(value, int):
            if value < 0:
                raise BadInput(f"{where} must not be negative, got {value}")
            return cls(calls=value)
        if isinstance(value, str):
            match = _PERCENT.fullmatch(value)
            if match is not None:
                share = float(match.group(1)) / 100
                if share > MAX_SHARE:
                    raise BadInput(f"{where} = {value!r} would leave crmsweep almost nothing: at most "
                                   f"{MAX_SHARE:.0%}")
                return cls(share=share)
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise BadInput(f"{where} must be a share like \"10%\" or a number of calls like 5000, got {shown}")

    def calls_of(self, limit: int) -> int:
        if self.calls is not None:
            return self.calls
        return math.ceil(limit * (self.share or 0.0))

    def __str__(self) -> str:
        if self.calls is not None:
            return f"{self.calls} calls"
        return f"{(self.share or 0.0) * 100:g}%"

    def to_config(self) -> int | str:
        return self.calls if self.calls is not None else str(self)


# Ten percent: the company's other integrations (marketing sync, ERP, support tools) share the same
# rolling allowance, and a CRM offers no way to give crmsweep a slice of its own.
DEFAULT_RESERVE = Reserve(share=0.10)


@dataclass(frozen=True)
class Estimate:
    """The calls a command still needs (`calls`), by part (an object's read, links, writes...)."""

    what: str  # "backup of Contact, Account", "apply of plan P" for the refusal
    calls: int
    parts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    spent: int = 0  # of `calls`, those already made when estimated (the allowance read after them holds them)


def _named(names: Sequence[str], shown: int = 3) -> str:
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


# A bulk ingest job's calls: create, upload, close, and its status polls (a job that went well needs no
# result download: cleanup/apply.py). Polls start at 0.05 s and double to every 2 s (connectors'
# POLL_* settings): six reach that pace, about four seconds in; then one per 2 s of processing, taken
# here as one per 4,000 records (the CRM's own pace varies with the org's load: an estimate).
JOB_FIXED_CALLS = 3
JOB_FIRST_POLLS = 6
JOB_RECORDS_PER_POLL = 4_000


def job_calls(records: int) -> int:
    return JOB_FIXED_CALLS + JOB_FIRST_POLLS + records // JOB_RECORDS_PER_POLL

# An incremental read of one object: its describe, the ids deleted since, one page of changes. A floor:
# the real cost grows with what changed (a page per 2,000 changed records), which no cheap call can tell.
INCREMENTAL_CALLS = 3


def incremental_plan(entry: ObjectEntry) -> ReadPlan:
    """The read plan of an object an incremental backup reads as changes since the snapshot holding
    `entry` (its rows there stand for the links a backup reads after it)."""
    return ReadPlan(object=entry.name, rows=entry.rows, method="incremental", calls=INCREMENTAL_CALLS)


def backup_estimate(
    plans: Sequence[ReadPlan],
    *,
    link_pairs: Sequence[tuple[str, str]] = (),
    link_batch: int = 1,
    documents: int = 0,
) -> Estimate:
    """A backup's calls: each object's read plan, then for each pair of linked objects one read per
    `link_batch` live records of the first (none when either side is empty: the backup reads nothing
    then), and `documents` for the metadata documents the connector keeps beside the records."""
    parts: dict[str, int] = {p.object: p.calls for p in plans}
    rows = {p.object: p.rows for p in plans}
    for a, b in link_pairs:
        ra, rb = rows.get(a), rows.get(b)
        if ra == 0 or rb == 0:
            continue
        # Unknown totals (None) cost at least one read.
        parts[f"{a}->{b} links"] = max(1, math.ceil((ra or 1) / link_batch))
    if documents:
        parts["documents"] = documents
    return Estimate(what=f"backup of {_named([p.object for p in plans])}", calls=sum(parts.values()),
                    parts=MappingProxyType(parts))


def apply_estimate(
    changes: Sequence[Change],
    work: Sequence[int],
    *,
    batch_size: int,
    ids_per_read: int,
    what: str,
    vocabulary: Vocabulary,
    live_ops: frozenset[Op] | None = None,
    writes: bool = True,
    run_size: Callable[[Change, int], int] | None = None,
    capabilities: Capabilities | None = None,
    spent: int = 0,
    rows_of: Callable[[], Mapping[str, int]] | None = None,
) -> Estimate:
    """An apply's calls over the batches the engine writes (`change_batches`, with the connector's
    `run_size`: a batch over `batch_size` is a bulk job, its create, upload, close and one poll at
    least), read as the engine reads
    (cleanup/apply.py `_drift_read`, `_read_back`): before the first batch of a run of one (op, object)
    but creates and links, its records' fingerprints (of a create batch: are its records live again?);
    after each write, one read of the records written that also takes the next batch's where both fit
    one read (else the next batch is read on its own);
    for the ops re-checked live (`live_ops`, None: all), one read per related step its pass declares
    per batch, and each read of every row of an object (`LiveNeeds.every`) once per batch, in the pages
    the object's rows in the plan's snapshot fill (`rows_of()`, asked only for such a read: it may read run
    logs back to the snapshot; rows made since add a page a hundred or so);
    the writes. Describes come from the plan's snapshot unless `capabilities.describe_calls`
    says the connector describes anew. A dry run (`writes=False`) only reads,
    packing a run's drift reads to `ids_per_read`. With the connector's `capabilities`, a read of an
    object with no batch endpoint costs its calls per record, a write of one written a record a call
    one call per record, and each object read by id its describe; `spent` is what the command already
    spent before the estimate (the plan checks' org id, a rollback's recycle-bin reads), counted so that
    the estimate covers the command's `api_calls`. Lock retries are not foreseen."""

    def read(obj: str, records: int, *, removed: bool = False) -> int:
        if capabilities is None:
            return math.ceil(records / ids_per_read)
        return capabilities.read_calls(obj, records, removed=removed)

    def per_record(obj: str) -> bool:
        return capabilities is not None and obj in dict(capabilities.per_record_reads)

    reads = live = writes_n = readbacks = 0
    snapshot_rows: Mapping[str, int] | None = None
    batches = list(change_batches(changes, work, batch_size, run_size=run_size))
    # The length of the run of one (op, object) each change is in: the engine sends a run as jobs when
    # `run_size` makes its batches job-sized, whatever the batches' own lengths.
    run_of: dict[int, int] = {}
    start = 0
    ordered = list(work)
    for n in range(1, len(ordered) + 1):
        if n == len(ordered) or (changes[ordered[n]].op, changes[ordered[n]].object) != (
                changes[ordered[start]].op, changes[ordered[start]].object):
            run_of.update(dict.fromkeys(ordered[start:n], n - start))
            start = n
    previous: tuple[Op, str] | None = None
    carried = 0  # records of this batch the last read-back already read
    pending_dry = 0  # records of the current run a dry run reads in packed calls
    for n, batch in enumerate(batches):
        head = changes[batch[0]]
        key = (head.op, head.object)
        reads_fingerprints = head.op not in (Op.CREATE, Op.ASSOCIATE)
        if key != previous and previous is not None:
            reads += read(previous[1], pending_dry)
            pending_dry, carried = 0, 0
        if head.op is Op.CREATE:
            # Is the record it re-creates live again? (`_not_restored`: removed records, read twice where the CRM
            # reads live and removed records apart)
            reads += read(head.object, len(batch), removed=True)
        if reads_fingerprints:
            if not writes:
                pending_dry += len(batch)
            elif carried < len(batch):
                reads += read(head.object, len(batch) - carried)
            if live_ops is None or head.op in live_ops:
                checked = [changes[i] for i in batch]
                live += len(_related_steps(checked, vocabulary)) * math.ceil(len(batch) / ids_per_read)
                for step in _every_row_steps(checked, vocabulary):
                    if snapshot_rows is None:
                        snapshot_rows = rows_of() if rows_of is not None else {}
                    rows = snapshot_rows.get(step.object, 0)
                    live += (capabilities.list_calls(rows, include_deleted=step.include_deleted)
                             if capabilities is not None else max(1, math.ceil(rows / ids_per_read)))
        carried = 0
        if writes:
            job = run_size is not None and run_size(head, run_of[batch[0]]) != batch_size
            one_each = capabilities is not None and head.object in capabilities.per_record_writes
            writes_n += job_calls(len(batch)) if job else len(batch) if one_each else 1
            if head.op is not Op.ASSOCIATE:
                following = batches[n + 1] if n + 1 < len(batches) else None
                # A read by id of an object with no batch endpoint costs per record: nothing is shared.
                shared = (following is not None and head.op not in (Op.CREATE,) and not per_record(head.object)
                          and (changes[following[0]].op, changes[following[0]].object) == key
                          and len(batch) + len(following) <= ids_per_read)
                readbacks += read(head.object, len(batch))
                carried = len(following) if shared and following is not None else 0
        previous = key
    if previous is not None:
        reads += read(previous[1], pending_dry)
    described = 0
    if capabilities is not None and capabilities.describe_calls:
        # Objects read or written through their records' batch calls, which want the fields' kinds;
        # links (ASSOCIATE) and objects read one record a call have their fields without a describe.
        priced = dict(capabilities.per_record_reads)
        described = capabilities.describe_calls * len({changes[i].object for i in work
                                                       if changes[i].op is not Op.ASSOCIATE
                                                       and changes[i].object not in priced})
    parts = {"checks made": spent, "describes": described, "fingerprint reads": reads, "live re-checks": live,
             "writes": writes_n, "read-backs": readbacks}
    kept = {k: v for k, v in parts.items() if v}
    return Estimate(what=what, calls=sum(kept.values()), parts=MappingProxyType(kept), spent=spent)


def read_estimate(
    reads: Mapping[str, int], settle: Sequence[tuple[str, int]], *, capabilities: Capabilities, what: str
) -> Estimate:
    """The calls of a command that only reads before it writes a plan for review (`rollback -o`): the
    records of each object in `reads` read once by id (deleted ones included), and each batch of writes of
    unknown outcome in `settle` (object, records) read to settle it, after one call asking which user the
    connection runs as (a created record is found by a search of what that user created)."""
    parts = {"settle reads": 1 + sum(capabilities.read_calls(obj, n) for obj, n in settle) if settle else 0,
             "deleted-record reads": sum(capabilities.read_calls(obj, n) for obj, n in reads.items())}
    kept = {k: v for k, v in parts.items() if v}
    return Estimate(what=what, calls=sum(kept.values()), parts=MappingProxyType(kept))


def _needs_of(batch: Sequence[Change], vocabulary: Vocabulary) -> list[LiveNeeds]:
    """What the live re-check reads for one batch, per pass in it (each once)."""
    needs: list[LiveNeeds] = []
    for pass_name in dict.fromkeys(c.pass_name for c in batch):
        spec = PASSES.get(pass_name)
        if spec is not None and spec.live_check is not None:
            needs.append(spec.live_check.needs(vocabulary, batch[0].object))
    return needs


def _related_steps(batch: Sequence[Change], vocabulary: Vocabulary) -> list[RelatedRead]:
    """The related reads the live re-check makes for one batch: each step of each pass in it, once."""
    return [step for needs in _needs_of(batch, vocabulary) for step in needs.related]


def _every_row_steps(batch: Sequence[Change], vocabulary: Vocabulary) -> list[EveryRowRead]:
    """The reads of every row of an object the live re-check makes for one batch: each object (and fields
    and removed rows or not) once, however many passes in it ask (`LiveChecker._every_row`)."""
    steps: dict[tuple[str, tuple[str, ...], bool], EveryRowRead] = {}
    for needs in _needs_of(batch, vocabulary):
        for step in needs.every:
            fields = tuple(dict.fromkeys([vocabulary.id_field, *step.fields]))
            steps.setdefault((step.object, fields, step.include_deleted), step)
    return list(steps.values())


@dataclass(frozen=True)
class Verdict:
    """What the budget check found, for `--json` and the refusal: None figures where the CRM said nothing."""

    needed: int
    limit: int | None
    remaining: int | None
    reserve: int | None
    source: str | None
    over: bool  # the run would eat into the reserve (and went ahead only if allowed)

    def to_dict(self) -> dict[str, Any]:
        return {"estimated_calls": self.needed, "limit": self.limit, "remaining": self.remaining,
                "reserve": self.reserve, "source": self.source, "over_budget": self.over}


def judge(estimate: Estimate, allowance: ApiAllowance | None, reserve: Reserve, *, allow_over: bool,
          advice: str) -> Verdict:
    """Refuse (OverBudget, exit 3) a run that would leave less than `reserve` of the daily allowance,
    unless `allow_over`. `advice` says what else the admin can do (back up fewer objects...), empty where
    the command has nothing smaller to offer. Where the CRM reports no allowance there is nothing to judge
    by: the run goes ahead."""
    if allowance is None:
        return Verdict(estimate.calls, None, None, None, None, over=False)
    keep = reserve.calls_of(allowance.limit)
    # What makes no more calls takes nothing from the reserve, however little is left (red team R3: a
    # `rollback -o` of a run that wrote nothing was refused for "about 0 API calls").
    to_make = estimate.calls - estimate.spent
    over = to_make > 0 and allowance.remaining - to_make < keep
    if over and not allow_over:
        other = f", {advice}," if advice else ","
        raise OverBudget(
            f"{estimate.what} needs about {estimate.calls} API calls; the org has {allowance.remaining} of "
            f"{allowance.limit} left today and the reserve is {keep} ({reserve}): nothing was done. Wait until "
            f"the rolling 24-hour allowance recovers{other} lower [budget] reserve, or pass "
            "--allow-over-budget to go ahead anyway",
            details={"estimated_calls": estimate.calls, "limit": allowance.limit, "remaining": allowance.remaining,
                     "reserve": keep, "source": allowance.source},
        )
    return Verdict(estimate.calls, allowance.limit, allowance.remaining, keep, allowance.source, over=over)


__all__ = ["DEFAULT_RESERVE", "Estimate", "Reserve", "Verdict", "apply_estimate", "backup_estimate", "judge",
           "read_estimate"]
