"""`crmsweep demo`: the whole story on a provider's built-in sandbox, told as it goes.

backup → scan → preview → apply → rollback, then proof that the org is as it was. It uses the same
library calls as the commands, so the demo cannot drift from what the tool really does.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from crmsweep import api, providers
from crmsweep.backup.row_counts import counted_text, snapshot_counts
from crmsweep.backup.runlog import Outcome, RunState
from crmsweep.cleanup.preview import pass_summary, render_preview
from crmsweep.connectors.base import Connector, Scalar
from crmsweep.model import Op, Plan, Vocabulary

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoResult:
    snapshot_id: str
    plan_path: str
    run_id: str
    rollback_run_id: str
    applied: int
    restored: int
    org_restored: bool
    # What the rollback applied: (op, object) -> how many, e.g. ("undelete", "Contact") -> 252.
    rolled_back: Mapping[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True)
class Census:
    """The live ids of the objects the story touches, and which users are active, read through the API."""

    ids: dict[str, frozenset[str]]
    active_users: frozenset[str]

    def line(self) -> str:
        parts = [f"{len(ids):,} {name}" for name, ids in self.ids.items()]
        return ", ".join([*parts, f"{len(self.active_users):,} active users"])

    def same_as(self, other: Census, *, recreated: frozenset[str]) -> bool:
        """Equal ids, except for the objects some of whose records the rollback re-created (they come
        back under new ids): equal counts there."""
        if self.ids.keys() != other.ids.keys() or self.active_users != other.active_users:
            return False
        return all(
            len(ids) == len(other.ids[name]) if name in recreated else ids == other.ids[name]
            for name, ids in self.ids.items()
        )


def _census(connector: Connector, objects: tuple[str, ...]) -> Census:
    vocab = connector.vocabulary

    def ids(name: str, equals: Mapping[str, Scalar] | None = None) -> frozenset[str]:
        pages = connector.iter_pages(name, [vocab.id_field], equals=equals)
        return frozenset(str(r[vocab.id_field]) for page in pages for r in page)

    return Census(
        ids={name: ids(name) for name in objects},
        active_users=ids(vocab.user_object, {vocab.user_active_field: True}),
    )


# How the closing sentences name what a rollback change did to a record that kept its id.
_KEPT_ID = {Op.UNDELETE: "undeleted", Op.UPDATE: "written back", Op.REACTIVATE: "reactivated",
            Op.DEACTIVATE: "deactivated again", Op.ASSOCIATE: "re-linked"}


def applied_changes(state: RunState) -> dict[tuple[str, str], int]:
    """(op, object) -> how many changes of the run were applied, in plan order."""
    counts: Counter[tuple[str, str]] = Counter()
    for out in sorted(state.outcomes, key=lambda o: o.index):
        if out.outcome is Outcome.APPLIED:
            change = state.plan.changes[out.index]
            counts[(change.op.value, change.object)] += 1
    return dict(counts)


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def same_id_creates(state: RunState) -> dict[str, int]:
    """Object -> how many of the run's creates the CRM gave back the id they had (its id map says): a
    definition restored by name is the original, not a new record."""
    return {obj: n for obj, ids in state.id_map.items() if (n := sum(1 for old, new in ids.items() if old == new))}


def _done(op: str, word: str) -> str:
    """`op` in the past tense, as the CRM words it (`word`: an undelete that un-archives is "un-archived")."""
    if word == op:
        return _KEPT_ID.get(Op(op), op)
    return f"{word}d" if word.endswith("e") else f"{word}ed"


def closing(rolled_back: Mapping[tuple[str, str], int], run_id: str, *, recent_days: int,
            same_ids: Mapping[str, int] | None = None, vocabulary: Vocabulary | None = None,
            again: str = "crmsweep demo") -> list[str]:
    """What the rollback put back, from what it applied: which records kept their ids, and which were
    re-created under new ones (and what that means for a scan run next), in the `vocabulary`'s words.
    `same_ids`: object -> how many of its creates came back under their old ids (see `same_id_creates`),
    told with the kept ones."""
    same = dict(same_ids or {})
    by_op: dict[tuple[str, str], list[str]] = {}
    back_as_were: list[str] = []
    for (op, obj), n in rolled_back.items():
        kept_n = min(n, same.get(obj, 0)) if op == Op.CREATE.value else 0
        if kept_n:
            back_as_were.append(f"{kept_n:,} {obj}")
        if n - kept_n:
            word = vocabulary.op_word(op, obj) if vocabulary else op
            by_op.setdefault((op, word), []).append(f"{n - kept_n:,} {obj}")
    made = by_op.pop((Op.CREATE.value, Op.CREATE.value), [])
    kept = [f"{_listed(counts)} {_done(op, word)}" for (op, word), counts in by_op.items()]
    if back_as_were:
        kept.append(f"{_listed(back_as_were)} restored")
    lines = [f"Back under their own ids: {'; '.join(kept)}." if kept else "No record came back under its own id."]
    if made:
        lines.append(f"Re-created under new ids (old -> new: `crmsweep runs show {run_id} --json`): {_listed(made)}.")
        if recent_days:
            # Only these: the protection reads the created date, which a record restored under its own id keeps.
            lines.append(f"To the CRM they are new records, created today: a scan holds them back for {recent_days} "
                         f"days ([protect] recent_days). The next `{again}` seeds a fresh sandbox first.")
    else:
        lines.append("Nothing had to be re-created under a new id.")
    return lines


def run_demo(
    ws: api.Workspace, say: Say, *, provider: str | None = None, reset: bool = True, preview_lines: int = 4
) -> DemoResult:
    """The story on `provider`'s built-in sandbox (default: the registry's default provider), seeded afresh
    first unless not `reset` (then on the sandbox as earlier commands left it)."""
    entry = providers.get(provider) if provider is not None else providers.default()
    connection, counted = entry.builtin_connection, entry.demo_objects
    if reset:
        api.reset_sandbox(ws, entry.name)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    plan_path = ws.home.root / "demo" / f"plan-{stamp}.json"

    say(f"1. The org. crmsweep carries an embedded {entry.title} sandbox: a local HTTPS server that speaks")
    say(f"   {entry.sandbox_speaks}, seeded with a realistically messy org (stale contacts, departed users...).")
    with api.connect(ws, connection) as connector:
        before = _census(connector, counted)
        say(f"   Connected to org {connector.org_id()} through {entry.client_library} over TLS.")
        say(f"   Live: {before.line()}.")

    say("")
    say("2. Back up before removing anything: every object streams to Parquet, the manifest is written last.")
    manifest = api.backup(ws, connection)
    records = counted_text(snapshot_counts(manifest, entry.vocabulary))
    say(f"   Snapshot {manifest.snapshot_id}: {records} records, {manifest.api_calls:,} API calls.")

    say("")
    say("3. Scan: the cleanup passes read the snapshot (never the CRM) and propose changes as a plan.")
    outcome = api.scan(ws, connection, plan_path, snapshot_id=manifest.snapshot_id)
    plan = outcome.result.plan
    result = outcome.result
    for name, text in pass_summary(plan, result.per_pass, result.held_back, result.skipped):
        say(f"   {name}: {text}")
    say(f"   Plan written to {plan_path} (digest {plan.digest[:19]}…).")

    say("")
    say(f"4. Preview: the plan as a diff an admin reviews (first {preview_lines} lines per object).")
    for line in render_preview(plan, limit=preview_lines).splitlines():
        say(f"   {line}")

    say("")
    say("5. Apply exactly the reviewed plan: digest and org checked, drift re-read before each batch of "
        f"{entry.capabilities.max_batch_write},")
    say("   the intent (with before-images) fsynced to the run log before every write.")
    applied = api.apply(ws, plan_path, confirm=_yes)
    report = applied.report
    assert report is not None  # _yes always confirms
    say(f"   Run {report.run_id}: applied {report.applied:,}, skipped {report.skipped:,}, failed {report.failed:,}.")
    with api.connect(ws, connection) as connector:
        say(f"   Live after apply: {_census(connector, counted).line()}.")

    say("")
    how = ("recycle-bin undelete keeps ids" if entry.capabilities.supports_undelete
           else "records re-created from their before-images")
    # Say what comes back to users only where the plan changed users or handed records over: on a CRM
    # that cannot deactivate, a run without hand-overs hands nothing back.
    vocab = entry.vocabulary
    users = ("users reactivated" if vocab.users_deactivatable else "records handed back to their owners")
    touched_users = any(c.object == vocab.user_object or vocab.owner_field in c.after for c in plan.changes)
    say(f"6. Roll back: the inverse plan ({how}" + (f"; {users}" if touched_users else "") + "), applied the same way.")
    rolled = api.rollback(ws, report.run_id, confirm=_yes)
    back = rolled.report
    assert back is not None
    say(f"   Run {back.run_id}: restored {back.applied:,}, skipped {back.skipped:,}, failed {back.failed:,}.")
    for note in back.notes:
        say(f"   Note: {note}")
    with api.connect(ws, connection) as connector:
        after = _census(connector, counted)
        say(f"   Live after rollback: {after.line()}.")

    back_state = api.run(ws, back.run_id).state
    rolled_back = applied_changes(back_state)
    recreated = frozenset(obj for op, obj in rolled_back if op == Op.CREATE)
    same = after.same_as(before, recreated=recreated) and back.failed == 0
    say("")
    for line in closing(rolled_back, back.run_id, recent_days=ws.config.protect.recent_days,
                        same_ids=same_id_creates(back_state), vocabulary=entry.vocabulary,
                        again=f"crmsweep demo --provider {entry.name}"):
        say(line)
    if same:
        say("The same users are active as before, and the live census matches the first one.")
    else:
        say("The org differs from before: see the runs above (`crmsweep runs list`).")
    # In backticks, as every command told: the CLI completes those with its --config and --home (`pasteable`).
    say(f"Try it yourself: `{shlex.join(['crmsweep', 'scan', '-c', connection, '-o', 'plan.json'])}`, "
        "then preview, apply and rollback.")
    return DemoResult(
        snapshot_id=manifest.snapshot_id,
        plan_path=str(plan_path),
        run_id=report.run_id,
        rollback_run_id=back.run_id,
        applied=report.applied,
        restored=back.applied,
        org_restored=same,
        rolled_back=rolled_back,
    )


def _yes(plan: Plan) -> bool:
    return True
