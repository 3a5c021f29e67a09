"""`crmsweep demo`: the whole story on a provider's built-in sandbox, told as it goes.

backup → scan → preview → apply → rollback, then proof that the org is as it was. It uses the same
library calls as the commands, so the demo cannot drift from what the tool really does.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from crmsweep import api, providers
from crmsweep.cleanup.preview import pass_summary, render_preview
from crmsweep.connectors.base import Connector, Scalar
from crmsweep.model import Plan

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


@dataclass(frozen=True)
class Census:
    """The live ids of the objects the story touches, and which users are active, read through the API."""

    ids: dict[str, frozenset[str]]
    active_users: frozenset[str]

    def line(self) -> str:
        parts = [f"{len(ids):,} {name}" for name, ids in self.ids.items()]
        return ", ".join([*parts, f"{len(self.active_users)} active users"])

    def same_as(self, other: Census, *, ids_kept: bool) -> bool:
        """Equal ids where a restore keeps them (undelete); else equal counts, since re-created records
        come back under new ids."""
        if ids_kept:
            return self == other
        counts = {name: len(ids) for name, ids in self.ids.items()}
        return counts == {name: len(ids) for name, ids in other.ids.items()} and (
            self.active_users == other.active_users
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


def run_demo(
    ws: api.Workspace, say: Say, *, provider: str | None = None, reset: bool = False, preview_lines: int = 4
) -> DemoResult:
    """The story on `provider`'s built-in sandbox (default: the registry's default provider)."""
    entry = providers.get(provider) if provider is not None else providers.default()
    connection, counted = entry.builtin_connection, entry.demo_objects
    ids_kept = entry.capabilities.supports_undelete
    if reset:
        shutil.rmtree(ws.home.sandbox_dir(entry.name), ignore_errors=True)
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
    total = sum(e.rows for e in manifest.objects.values())
    say(f"   Snapshot {manifest.snapshot_id}: {total:,} records, {manifest.api_calls} API calls.")

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
    say(f"   Run {report.run_id}: applied {report.applied}, skipped {report.skipped}, failed {report.failed}.")
    with api.connect(ws, connection) as connector:
        say(f"   Live after apply: {_census(connector, counted).line()}.")

    say("")
    how = "recycle-bin undelete keeps ids" if ids_kept else "records re-created from their before-images"
    users = "users reactivated" if entry.vocabulary.users_deactivatable else "records handed back to their owners"
    say(f"6. Roll back: the inverse plan ({how}; {users}), applied the same way.")
    rolled = api.rollback(ws, report.run_id, confirm=_yes)
    back = rolled.report
    assert back is not None
    say(f"   Run {back.run_id}: restored {back.applied}, skipped {back.skipped}, failed {back.failed}.")
    for note in back.notes:
        say(f"   Note: {note}")
    with api.connect(ws, connection) as connector:
        after = _census(connector, counted)
        say(f"   Live after rollback: {after.line()}.")

    same = after.same_as(before, ids_kept=ids_kept) and back.failed == 0
    say("")
    if same and ids_kept:
        say("Every record is back under its own id, and the same users are active as before.")
    elif same:
        say(f"Every record is back (re-created under a new id: `crmsweep runs show {back.run_id} --json` maps old to")
        say("new ids), and the same users are active; but the CRM gave the re-created records new created dates")
        say("and a fresh activity history (see the note above), so the next scan sees them as new, not stale.")
    else:
        say("The org differs from before: see the runs above (`crmsweep runs list`).")
    say(f"Try it yourself: crmsweep scan -c {connection} -o plan.json, then preview, apply and rollback.")
    return DemoResult(
        snapshot_id=manifest.snapshot_id,
        plan_path=str(plan_path),
        run_id=report.run_id,
        rollback_run_id=back.run_id,
        applied=report.applied,
        restored=back.applied,
        org_restored=same,
    )


def _yes(plan: Plan) -> bool:
    return True
