"""Whether a run's rollbacks put back every value of the fields it removed, and if not, what to tell the admin.

A run that removed custom fields is rolled back only when the definitions AND their values are back:
the value restores the planner would make now (`rollback.rollback_changes`, the same rebuild the plan
checks use, so a trimmed plan is no way round it) must each have been applied by one of its rollbacks.
Until then the run is not marked rolled back, and the admin is told how many values are not back, why,
and what to do; rolling back again writes the rest (a value already back is written again unchanged).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from crmsweep.backup.field_restore import SKIP_RECORD_GONE, is_value_restore, removed_fields, undo_key, unrestored
from crmsweep.backup.rollback import _source_snapshot as source_snapshot
from crmsweep.backup.rollback import rollback_changes
from crmsweep.backup.runlog import Outcome, RunState, read_run
from crmsweep.model import Capabilities, Change, Op, Vocabulary
from crmsweep.paths import Home

# What the admin can do about each reason a value restore did not land ("missing": from the capabilities).
_WHAT_TO_DO = {
    "field missing": "re-create the fields",
    "value written since": "compare the values written since with the snapshot and keep the right ones by hand",
}


def values_not_restored(home: Home, run_id: str, by_run: str, vocabulary: Vocabulary) -> list[tuple[Change, str]]:
    """The value restores of the fields run `run_id` removed that none of its rollbacks (those its log
    names, and `by_run`) applied, each with why; empty when it removed no field holding values."""
    state = read_run(home, run_id)
    if not removed_fields((state.plan.changes[i] for i in state.applied_order), vocabulary):
        return []
    rollbacks = [r for r in (read_run(home, i) for i in dict.fromkeys([*state.rollbacks, by_run]))
                 if r.rollback_of == run_id]
    # What was re-created rather than undeleted, as the rollbacks planned it: their values ride on the create.
    recreate = {(c.object, vocabulary.id_key(c.record_id)) for r in rollbacks for c in r.plan.changes
                if c.op is Op.CREATE}
    expected = [c for c in rollback_changes(home, state, vocabulary, recreate=recreate, strict=False).values()
                if is_value_restore(c)]
    return unrestored(expected, rollbacks)


def not_restored_note(
    home: Home, state: RunState, lost: Sequence[tuple[Change, str]], capabilities: Capabilities, *, by_run: str
) -> str:
    """One line for the rollback report: how many values are not back, why (with an example each, and where
    the rest are listed), and what to do. `by_run`: the rollback run just made, whose skipped and failed
    items name the records of a reason when they all are among them."""
    run_id = state.run_id
    reasons = Counter(why for _change, why in lost)
    # The one line names one record per reason; the rest are in the rollback run, which `runs show` lists whole.
    rollback = read_run(home, by_run)
    listed = {undo_key(rollback.plan.changes[o.index]) for o in rollback.outcomes
              if o.outcome in (Outcome.SKIPPED, Outcome.FAILED)}
    parts = []
    todo: dict[str, None] = {}
    for why, count in reasons.most_common():
        first = next(c for c, w in lost if w == why)
        more = f" and {count - 1:,} more" if count > 1 else ""
        if more and all(undo_key(c) in listed for c, w in lost if w == why):
            more += f", `crmsweep runs show {by_run}` lists them all"
        parts.append(f"{count:,} {why}: {first.object} {first.record_id}{more}")
        if why == SKIP_RECORD_GONE:
            todo[f"put the records back ({capabilities.how_to_put_back(first.object)})"] = None
        else:
            todo[_WHAT_TO_DO.get(why, "see the skipped and failed items above")] = None
    values = sum(len(c.after) for c, _why in lost)
    snapshot = source_snapshot(home, state)
    return (f"{values:,} value{'s' if values != 1 else ''} of the fields run {run_id} removed could not be written "
            f"back ({'; '.join(parts)}); run {run_id} is not marked rolled back: the values are in snapshot "
            f"{snapshot}; {'; '.join(todo)}, then run `crmsweep rollback {run_id}` again")
