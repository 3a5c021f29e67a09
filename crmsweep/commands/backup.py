"""`crmsweep backup` and `crmsweep snapshots list|verify`."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from crmsweep import api, providers
from crmsweep.backup.row_counts import counted_text, object_counts, snapshot_counts
from crmsweep.backup.snapshot import Unfinished
from crmsweep.backup.snapshot_diff import ObjectDiff
from crmsweep.cleanup.labels import one_line
from crmsweep.commands.common import (
    AllowOverBudgetOpt,
    ConfigOpt,
    ConnectionOpt,
    HomeOpt,
    JsonOpt,
    backup_progress,
    emit_json,
    err,
    handle_errors,
    out,
    pasteable,
    print_table,
    workspace,
)
from crmsweep.commands.help import App
from crmsweep.errors import EXIT_REFUSED, BadInput
from crmsweep.model import SnapshotManifest

snapshots_app = App(help="List, verify and compare snapshots.")


def manifest_summary(manifest: SnapshotManifest, path: str) -> dict[str, object]:
    # `objects` stays each data file's rows (what verify re-counts), removed records included; the
    # live ones are apart (null where an older manifest did not count them).
    return {
        "snapshot": manifest.snapshot_id,
        "path": path,
        "objects": {name: entry.rows for name, entry in manifest.objects.items()},
        "live_rows": {name: entry.live_rows for name, entry in manifest.objects.items()},
        "removed_rows": {name: entry.removed_rows for name, entry in manifest.objects.items()},
        "api_calls": manifest.api_calls,
    }


def _records(manifest: SnapshotManifest) -> str:
    try:
        vocabulary = providers.get(manifest.provider).vocabulary
    except BadInput:  # a snapshot of a provider this crmsweep lacks still lists, by its rows alone
        return f"{sum(e.rows for e in manifest.objects.values()):,}"
    return counted_text(snapshot_counts(manifest, vocabulary))


@handle_errors
def backup(
    connection: ConnectionOpt,
    objects: Annotated[
        list[str] | None,
        typer.Option("--object", help="Object to back up (repeatable). Default: the provider's standard set."),
    ] = None,
    incremental: Annotated[
        bool,
        typer.Option("--incremental", help="Read only what changed since the last snapshot of the connection; "
                     "the new snapshot still reads as a full copy (sharing unchanged data with it)."),
    ] = False,
    allow_over_budget: AllowOverBudgetOpt = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Back up a CRM to a snapshot: one Parquet file per object and a manifest written last."""
    ws = workspace(config, home)
    with backup_progress(not as_json) as progress:
        manifest = api.backup(ws, connection, objects or (), progress=progress, incremental=incremental,
                              allow_over_budget=allow_over_budget)
    path = str(ws.home.snapshots_dir / manifest.snapshot_id)
    if as_json:
        extra = {"parent": manifest.parent, "notes": dict(manifest.notes)} if incremental else {}
        emit_json({**manifest_summary(manifest, path), **extra})
        return
    vocabulary = providers.get(manifest.provider).vocabulary
    if incremental and manifest.parent is None:
        err.print(f"No earlier snapshot of '{connection}' to build on: took a full one.")
    elif manifest.parent is not None:
        err.print(f"Incremental on {manifest.parent}:", markup=False)
    err.print(f"Snapshot {manifest.snapshot_id}: {_records(manifest)} records in {len(manifest.objects):,} objects, "
              f"{manifest.api_calls:,} API calls", markup=False)
    for name, entry in manifest.objects.items():
        note = manifest.notes.get(name)
        split = object_counts(entry, vocabulary).split()
        err.print(f"  {name:<24} {entry.rows:>9,}" + (f"  ({split})" if split else "") + (f"  {note}" if note else ""),
                  markup=False)
    out.print(path)


@snapshots_app.command("list")
@handle_errors
def list_(
    connection: Annotated[str | None, typer.Option("--connection", "-c", help="Only this connection's.")] = None,
    show_unfinished: Annotated[
        bool,
        typer.Option(
            "--unfinished",
            help="List unfinished backups instead: running, or abandoned by a killed backup (the next "
            "backup of that connection removes those).",
        ),
    ] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """List complete snapshots, oldest first."""
    ws = workspace(config, home)
    if show_unfinished:
        _list_unfinished(api.unfinished(ws, connection), as_json)
        return
    found = api.snapshots(ws, connection)
    if as_json:
        emit_json([
            {**manifest_summary(m, str(ws.home.snapshots_dir / m.snapshot_id)), "connection": m.connection,
             "org_id": m.org_id, "finished": m.finished, "parent": m.parent}
            for m in found
        ])
        return
    if not found:
        of = f" of connection '{connection}'" if connection else ""
        take = f"crmsweep backup -c {shlex.quote(connection)}" if connection else "crmsweep backup -c CONNECTION"
        err.print(one_line(pasteable(f"No snapshots{of} under {ws.home.snapshots_dir}. Take one with `{take}`.")),
                  markup=False)
    else:
        print_table(
            ("SNAPSHOT", "FINISHED", "CONNECTION", "PROVIDER", "ORG", "OBJECTS", "RECORDS"),
            [(m.snapshot_id, m.finished, m.connection, m.provider, m.org_id, len(m.objects), _records(m))
             for m in found],
        )
    abandoned = [u for u in api.unfinished(ws, connection) if not u.running]
    if abandoned:
        err.print(f"{len(abandoned):,} abandoned backup(s) left partial data: `crmsweep snapshots list --unfinished` "
                  "shows them; the next backup of their connection removes them.", markup=False)


def _list_unfinished(found: list[Unfinished], as_json: bool) -> None:
    if as_json:
        emit_json([{"snapshot": u.snapshot_id, "connection": u.connection, "path": str(u.path), "status": u.status}
                   for u in found])
        return
    if not found:
        err.print("No unfinished backups.")
        return
    print_table(("SNAPSHOT", "CONNECTION", "STATUS", "PATH"),
                [(u.snapshot_id, u.connection, u.status, str(u.path)) for u in found])


@snapshots_app.command("verify")
@handle_errors
def verify(
    snapshot_id: Annotated[str, typer.Argument(help="Snapshot id, as `crmsweep snapshots list` shows it.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Check every file of a snapshot against the hashes and row counts in its manifest."""
    report = api.verify(workspace(config, home), snapshot_id)
    if as_json:
        emit_json({"snapshot": report.snapshot_id, "ok": report.ok, "problems": report.problems,
                   "objects": report.objects})
    elif report.ok:
        err.print(f"Snapshot {report.snapshot_id} is intact: {sum(report.objects.values()):,} rows verified.")
    else:
        err.print(f"Snapshot {report.snapshot_id} is damaged:", style="red")
        for problem in report.problems:
            err.print(f"  - {problem}")
    if not report.ok:
        raise typer.Exit(EXIT_REFUSED)


def _missing_from(found: ObjectDiff) -> str:
    return "B" if found.status == "only_in_a" else "A"


@snapshots_app.command("diff")
@handle_errors
def diff(
    a: Annotated[str, typer.Argument(help="The older snapshot's id.")],
    b: Annotated[str, typer.Argument(help="The newer snapshot's id (same connection).")],
    objects: Annotated[list[str] | None, typer.Option("--object", help="Only this object (repeatable).")] = None,
    detail: Annotated[
        bool, typer.Option("--detail", help="List the ids added and removed, and each changed record's fields.")
    ] = False,
    all_fields: Annotated[
        bool, typer.Option("--all-fields", help="Count a record changed when only the CRM's audit stamps moved.")
    ] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Say what changed between two snapshots, per object: records added, removed and changed, and
    fields added to or removed from describe. A record whose only differences are the audit stamps the
    CRM rewrites on every write (an apply and its rollback leave those) is told apart, not counted changed. An
    object only one snapshot holds is named, not compared: its rows count neither added nor removed."""
    found = api.diff(workspace(config, home), a, b, objects=objects or (), detail=detail, all_fields=all_fields)
    if as_json:
        emit_json(found.to_dict(detail))
        return
    compared = {name: d for name, d in found.objects.items() if d.status == "both"}
    print_table(
        ("OBJECT", "ADDED", "REMOVED", "CHANGED", "FIELDS"),
        [(name, f"{d.added:,}", f"{d.removed:,}", f"{d.changed:,}",
          " ".join([*(f"+{f}" for f in d.fields_added), *(f"-{f}" for f in d.fields_removed),
                    *(f"~{f}" for f in d.fields_retyped)]))
         if d.status == "both" else (f"{name} (not in {_missing_from(d)})", "-", "-", "-", "")
         for name, d in found.objects.items()],
    )
    # The table's footnotes are part of the answer: on stdout with it, so `> diff.txt` keeps them.
    for name, d in found.objects.items():
        if d.status != "both":
            # Neutral on why: a manifest does not say whether the backup left the object out or the CRM lost it.
            missing, holder = (found.b, "A") if d.status == "only_in_a" else (found.a, "B")
            out.print(f"{name}: not in snapshot {_missing_from(d)} ({missing}): its {d.uncompared:,} rows in "
                      f"{holder} are not compared, nor counted added or removed.", markup=False)
        for retyped, (kind_a, kind_b) in d.fields_retyped.items():
            out.print(f"{name}: field {retyped} is {kind_a} in A, {kind_b} in B: a record counts changed only where "
                      "its value reads otherwise.", markup=False)
    if not any(d.added or d.removed or d.changed or d.fields_added or d.fields_removed or d.fields_retyped
               for d in compared.values()):
        where = "" if len(compared) == len(found.objects) else " in the objects both hold"
        out.print(f"Nothing changed between {found.a} and {found.b}{where}.", markup=False)
    stamped = sum(d.stamps_only for d in found.objects.values())
    if stamped:
        # Every stamp left out is named, the keys inside a JSON field too: a record left out for a key alone
        # must not read as left out for a stamp field it does not differ in.
        stamps = [", ".join(found.audit_fields)] if found.audit_fields else []
        stamps += [f"in the JSON of {name}: {', '.join(keys)}" for name, keys in found.audit_keys.items()]
        out.print(f"Not counted changed: {stamped:,} records whose only differences are the CRM's audit stamps "
                  f"({'; '.join(stamps)}); --all-fields counts them.", markup=False)
    if detail:
        for name, d in found.objects.items():
            for record_id in d.added_ids:
                out.print(f"{name} + {record_id}")
            for record_id in d.removed_ids:
                out.print(f"{name} - {record_id}")
            for record_id, fields in d.changed_fields.items():
                out.print(f"{name} ~ {record_id}: {', '.join(fields)}")
