"""What the asset passes (stale reports, templates, lists, old files) share: cutoffs, dates, proposals.

Not a pass (the name starts with "_"): the registry does not load it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pandas as pd

from crmsweep.cleanup.passes import PassContext, PassOutput, propose
from crmsweep.model import Op, Severity, Vocabulary, canonical_datetime

_C = TypeVar("_C")


def concept_of(vocab: Vocabulary, kind: type[_C]) -> _C:
    """The provider's entry for `kind`; scan never runs a pass whose `needs` lack one, so None is a bug."""
    concept = vocab.concept(kind)
    if concept is None:
        raise LookupError(f"{vocab.provider} maps no {kind.__name__}")
    return concept


def proposed_objects(
    kind: type[_C], op: Op, objects: Callable[[_C], Sequence[str]], how: Callable[[_C], str]
) -> Callable[[Vocabulary], tuple[str, ...]]:
    """`Proposal.objects` for a concept: its `objects` where `how` (its change op) is `op`, else none."""

    def chosen(vocab: Vocabulary) -> tuple[str, ...]:
        concept = vocab.concept(kind)
        return tuple(objects(concept)) if concept is not None and Op(how(concept)) is op else ()

    return chosen


def days_cutoff(now: datetime, days: int) -> pd.Timestamp:
    """The instant `days` days before `now`: a date strictly before it is stale, one on it is not."""
    return pd.Timestamp(now.astimezone(UTC) - timedelta(days=days))


def live_when(value: Any) -> datetime | None:
    """A date or datetime as a live read gives it (any spelling the canonical form accepts), in UTC."""
    if value is None or value == "":
        return None
    text = canonical_datetime(str(value))
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def day_of(when: Any) -> str:
    """The calendar day (UTC) of a timestamp from a frame, for a reason."""
    return str(pd.Timestamp(when).date().isoformat())


def present(ctx: PassContext, object_name: str, names: Sequence[str | None]) -> list[str]:
    """The fields among `names` the snapshot holds for `object_name` (None and absent ones dropped)."""
    held = {s.name for s in ctx.view.fields(object_name)}
    return [n for n in dict.fromkeys(names) if n is not None and n in held]


def add_proposals(
    ctx: PassContext,
    output: PassOutput,
    pass_name: str,
    object_name: str,
    reasons: Mapping[str, str],
    *,
    op: Op,
    after: Mapping[str, Any] | None = None,
    severity: Severity = Severity.MINOR,
    kept: Callable[[Mapping[str, Any]], str | None] | None = None,
) -> None:
    """One change per id of `reasons` (in id order), from the snapshot's own rows (the before-images); a row
    `kept` gives a reason for is counted in `held_back` under it instead."""
    ids = sorted(reasons)
    records = ctx.view.record_map(object_name, ids)
    for rid in ids:
        why = kept(records[rid]) if kept is not None else None
        if why is not None:
            hold(output, why, 1)
            continue
        output.changes.append(
            propose(ctx, pass_name, op, object_name, records[rid], after=dict(after or {}), reason=reasons[rid],
                    severity=severity)
        )


def hold(output: PassOutput, reason: str, count: int) -> None:
    if count:
        output.held_back[reason] = output.held_back.get(reason, 0) + count
