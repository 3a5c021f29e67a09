"""`crmsweep runs list` and `crmsweep runs show RUN`: what was applied, when, with which results."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from crmsweep import api
from crmsweep.backup.runlog import KIND_ROLLBACK, STATUS_STOPPED, STATUS_UNFINISHED, ChangeOutcome, Outcome, RunState
from crmsweep.cleanup.labels import one_line
from crmsweep.commands.apply import command_line, drift_means, scan_command
from crmsweep.commands.common import (
    ConfigOpt,
    HomeOpt,
    JsonOpt,
    emit_json,
    err,
    handle_errors,
    out,
    pasteable,
    print_table,
    workspace,
)
from crmsweep.commands.help import App
from crmsweep.config import load_config
from crmsweep.errors import BadInput

runs_app = App(help="Runs: what was applied, when, with which results.")

RunArg = Annotated[str, typer.Argument(metavar="RUN", help="The run id, as `crmsweep runs list` shows it.")]


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in counts.items() if n)


@runs_app.command("list")
@handle_errors
def list_(as_json: JsonOpt = False, config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """List runs, oldest first, with their status."""
    found = api.runs(workspace(config, home))
    if as_json:
        emit_json([
            {"run": r.run_id, "plan": r.plan_id, "kind": r.kind, "started": r.started, "status": r.status,
             "total": r.total, "counts": r.counts, "rollback_of": r.rollback_of, "problem": r.problem}
            for r in found
        ])
        return
    if not found:
        err.print("No runs yet.")
        return
    print_table(
        ("RUN", "STARTED", "KIND", "STATUS", "CHANGES", "OUTCOMES", "ROLLBACK OF"),
        [(r.run_id, r.started, r.kind, r.status, r.total, _counts_text(r.counts) or r.problem or "",
          r.rollback_of or "") for r in found],
    )


PENDING_MEANS = ("written or not, crmsweep cannot tell yet: resume settles it from the live records "
                 "(so does rollback, writing nothing new)")


def resume_text(ws: api.Workspace, state: RunState) -> str | None:
    """The command that finishes a stopped or interrupted run, pasteable as is: in the home this run lives
    in, with the config of `_run_config` (else the admin must add theirs)."""
    if state.status not in (STATUS_STOPPED, STATUS_UNFINISHED):
        return None
    if state.kind == KIND_ROLLBACK and state.rollback_of:
        args = ["rollback", state.rollback_of]  # which resumes its interrupted rollback
    else:
        args = ["apply", os.path.abspath(api.run_plan_path(ws, state.run_id)), "--resume", state.run_id]
    config, missing = _run_config(ws, state)
    command = command_line(args, config=config, home=ws.home.root)
    return f"{command} ({missing})" if missing else command


def _run_config(ws: api.Workspace, state: RunState) -> tuple[Path | None, str | None]:
    """The config a command about this run should name, and what the admin must add when none will do: the
    config file in effect now if it defines the run's connection, else the one the run was started with if it
    still does. A built-in connection is defined without a file, but a run on one still took its protections,
    caps and budget from the file it was started with: named, or the command would write without them."""
    connection = state.plan.header.connection
    if ws.config.path is not None and connection in ws.config.connection_names:
        return ws.config.path, None
    started = _started_with(state, connection)
    if started is not None or (state.config_file is None and connection in ws.config.connection_names):
        return started, None
    if state.config_file is not None and connection in ws.config.connection_names:
        return None, (f"add the --config the run was started with, {state.config_file}: without it the resume "
                      "writes without that file's protections")
    return None, f"add the --config that defines connection '{connection}'"


def _started_with(state: RunState, connection: str) -> Path | None:
    """The config the run was started with, if it still defines the run's connection."""
    if state.config_file is None:
        return None
    try:
        started = load_config(Path(state.config_file))
    except BadInput:
        return None  # moved, or no longer readable: the admin names theirs
    return started.path if connection in started.connection_names else None


def drift_text(ws: api.Workspace, state: RunState, skipped: list[dict[str, Any]]) -> str | None:
    """What to do about the run's drift skips: scan again. The plan file the run was given is not known
    here (the run's own copy must not be overwritten), so the command names PLAN, as `scan --help` does."""
    if state.kind == KIND_ROLLBACK:
        return None
    scan = scan_command(state.plan.header.connection, "PLAN", passes=state.plan.header.passes,
                        config=_run_config(ws, state)[0], home=ws.home.root)
    return drift_means(skipped, scan)


def failed_means(state: RunState) -> str | None:
    if not state.count(Outcome.FAILED) or state.status in (STATUS_STOPPED, STATUS_UNFINISHED):
        return None
    if state.kind == KIND_ROLLBACK:
        return (f"{state.count(Outcome.FAILED):,}: final for this run; rolling back run {state.rollback_of} again "
                "tries them once their cause is fixed")
    return (f"{state.count(Outcome.FAILED):,}: final, resume does not retry them; fix the cause, then scan again: "
            "a fresh plan proposes them again if they still qualify")


def _recreated_text(id_map: dict[str, dict[str, str]]) -> str:
    # A record brought back under its own id (a property definition restored by name) is the original, not a copy
    # under a new id: counted apart, as the rollback's note does, so no one deletes it as a re-created copy.
    anew = {obj: n for obj, ids in id_map.items() if (n := sum(1 for old, new in ids.items() if new != old))}
    own = {obj: n for obj, ids in id_map.items() if (n := sum(1 for old, new in ids.items() if new == old))}
    counts = ", ".join(f"{n:,} {obj}" for obj, n in anew.items())
    text = f"{counts} under new ids (old -> new: listed below, and `--json` id_map)" if counts else ""
    if own:
        kept = ", ".join(f"{n:,} {obj}" for obj, n in own.items())
        text = "; ".join(filter(None, (text, f"{kept} under their own ids")))
    return text


def _item(state: RunState, outcome: ChangeOutcome) -> dict[str, Any]:
    change = state.plan.changes[outcome.index]
    item: dict[str, Any] = {"index": outcome.index, "op": change.op, "object": change.object,
                            "id": outcome.record_id or change.record_id, "label": change.label}
    if outcome.outcome is Outcome.SKIPPED:
        item.update(reason=outcome.reason, detail=outcome.detail)
    else:
        item.update(error_code=outcome.error_code, message=outcome.message)
    return item


def _recreated_items(state: RunState) -> list[dict[str, Any]]:
    """Every record the run re-created under a new id, old id and new, in plan order: what a rollback's note
    names only the first few of. One brought back under its own id is the original, not a copy (see
    `_recreated_text`), and is not listed: `id_map` holds it."""
    id_map = state.id_map
    return [{"index": o.index, "object": c.object, "old_id": c.record_id, "new_id": new, "label": c.label}
            for o in state.outcomes
            if (new := id_map.get((c := state.plan.changes[o.index]).object, {}).get(c.record_id)) is not None
            and new != c.record_id]


def _items(state: RunState, wanted: Outcome) -> list[dict[str, Any]]:
    return [_item(state, o) for o in state.outcomes if o.outcome is wanted]


@runs_app.command("show")
@handle_errors
def show(run_id: RunArg, as_json: JsonOpt = False, config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Show one run: its plan, status, times, counts, rollbacks and every re-created, skipped or failed record."""
    details = api.run(ws := workspace(config, home), run_id)
    state = details.state
    skipped, failed = _items(state, Outcome.SKIPPED), _items(state, Outcome.FAILED)
    answer: dict[str, Any] = {
        "run": state.run_id, "plan": state.plan.header.plan_id, "kind": state.kind, "status": state.status,
        "connection": state.plan.header.connection, "org_id": state.plan.header.org_id,
        "started": state.started, "finished": details.finished, "total": len(state.plan.changes),
        "counts": state.counts, "stop_reason": state.stop_reason, "rollback_of": state.rollback_of,
        "rolled_back_by": state.rolled_back_by, "rollbacks": details.rollbacks,
        "skipped_items": skipped, "failed_items": failed, "id_map": state.id_map,
        "recreated_items": (recreated := _recreated_items(state)),
        # The plan's own notes: of a rollback, what it keeps and what a re-create loses (its preview said so).
        "plan_notes": list(state.plan.header.notes),
        # The notes its apply reported (`apply --json` run_notes): of a rollback, values it could not put back.
        "run_notes": [pasteable(note) for note in state.notes],
    }
    # Kept for scripts written before plan_notes: the plan's notes (in `apply --json` it is the run's).
    answer["notes"] = answer["plan_notes"]
    resume = resume_text(ws, state)
    answer["resume"] = resume
    answer["pending_means"] = PENDING_MEANS if state.count(Outcome.PENDING) else None
    answer["failed_means"] = failed_means(state)
    answer["drift_means"] = drift_text(ws, state, skipped)
    if as_json:
        emit_json(answer)
        return
    facts = [
        ("Run", state.run_id), ("Plan", answer["plan"]), ("Kind", state.kind), ("Status", state.status),
        ("Org", f"{answer['org_id']} ('{answer['connection']}')"), ("Started", state.started),
        ("Finished", details.finished or "-"),
        ("Changes", f"{answer['total']:,}: {_counts_text(state.counts) or 'none'}"),
        ("Stopped by", state.stop_reason or ""), ("Rollback of", state.rollback_of or ""),
        ("Rolled back by", state.rolled_back_by or ""), ("Rollbacks", ", ".join(details.rollbacks)),
        ("Re-created", _recreated_text(answer["id_map"])),
        ("Pending", f"{state.count(Outcome.PENDING):,}: {PENDING_MEANS}" if answer["pending_means"] else ""),
        ("Failed", answer["failed_means"] or ""),
        ("Drift", answer["drift_means"] or ""),
        ("Resume with", resume or ""),
    ]
    width = max(len(name) for name, _ in facts)
    for name, value in facts:
        if value:
            out.print(f"{name:<{width}}  {one_line(value)}", markup=False, highlight=False)
    for note in [*answer["plan_notes"], *answer["run_notes"]]:
        out.print(f"{'Note':<{width}}  {one_line(note)}", markup=False, highlight=False)
    if recreated:
        out.print(f"\nRe-created ({len(recreated):,}):")
        print_table(("OBJECT", "OLD ID", "NEW ID", "LABEL"),
                    [(i["object"], i["old_id"], i["new_id"], i["label"] or "") for i in recreated])
    for title, items, code, text in (("Skipped", skipped, "reason", "detail"),
                                     ("Failed", failed, "error_code", "message")):
        if items:
            out.print(f"\n{title} ({len(items):,}):")
            print_table(
                ("OBJECT", "ID", "LABEL", code.upper().replace("_", " "), text.upper()),
                [(i["object"], i["id"], i["label"] or "", i.get(code) or "", i.get(text) or "") for i in items],
            )
