"""A HubSpot link's types (its labels among them) from the backup to the re-link a rollback writes.

The backup keeps each link's association types beside its ends, in the link table the manifest hashes;
the rollback plan carries them, its preview names the labels it writes, and the plan checks hold them to
the snapshot as they hold a link's ends. A snapshot taken before links kept their types still rolls back,
with HubSpot's default (unlabelled) link, as it did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from crmsweep.backup import snapshot_layout as layout
from crmsweep.backup.runlog import read_run
from crmsweep.model import ASSOCIATION_FROM_FIELD, ASSOCIATION_TYPES_FIELD, association_object
from crmsweep.paths import Home
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import hs, hubspot_cli, hubspot_sandbox
from tests.test_recreate_keeps_association_labels_hubspot import company_link_types

__all__ = ["hs", "hubspot_sandbox"]

# Companies are backed up first: their links to contacts are kept from the company end (280; primary 2).
COMPANY_CONTACT = association_object("companies", "contacts")


def _backed_up(tmp_path: Path, hubspot_sandbox: RunningSandbox) -> tuple[Any, Path]:
    """The CLI of a fresh home and the folder of its first backup."""
    cli = hubspot_cli(hubspot_sandbox.info, tmp_path)
    snapshot = json.loads(cli("backup", "-c", "e2e", "--json").stdout)["snapshot"]
    return cli, Home(tmp_path / "home").snapshots_dir / snapshot


def _applied(cli: Any, tmp_path: Path, snapshot: Path, hs: Any) -> tuple[str, list[str], dict[str, Any]]:
    """The run of stale_contacts scanned over `snapshot` and applied, the contacts it archived, and their
    links to companies (with the type ids of each) before."""
    plan_file = tmp_path / "plan.json"
    cli("scan", "-c", "e2e", "--snapshot", snapshot.name, "-o", str(plan_file), "--pass", "stale_contacts")
    archived = sorted(c["record_id"] for c in json.loads(plan_file.read_text())["changes"] if c["op"] == "archive")
    before = company_link_types(hs, archived)
    applied = json.loads(cli("apply", str(plan_file), "--yes", "--json").stdout)
    assert applied["failed"] == 0
    return applied["run"], archived, before


def _reviewed(cli: Any, tmp_path: Path, snapshot: Path, hs: Any) -> tuple[str, Path]:
    """The run `_applied` makes, and its rollback plan as `rollback -o` writes it for review."""
    run_id, _archived, _before = _applied(cli, tmp_path, snapshot, hs)
    review = tmp_path / "undo.json"
    cli("rollback", run_id, "-o", str(review))
    return run_id, review


def _links(plan_file: Path) -> list[dict[str, Any]]:
    return [c for c in json.loads(plan_file.read_text())["changes"] if c["op"] == "associate"]


def as_taken_before_link_types(folder: Path) -> None:
    """Make `folder` a snapshot as a backup made before links kept their types wrote it: link tables of
    their two ends only, the manifest listing and hashing just those."""
    manifest = json.loads((folder / layout.MANIFEST_NAME).read_text(encoding="utf-8"))
    for entry in manifest["objects"].values():
        if ASSOCIATION_TYPES_FIELD not in [f["name"] for f in entry["fields"]]:
            continue
        path = folder / entry["file"]
        pq.write_table(pq.read_table(path).drop_columns([ASSOCIATION_TYPES_FIELD]), path, compression="zstd")
        entry["fields"] = [f for f in entry["fields"] if f["name"] != ASSOCIATION_TYPES_FIELD]
        entry["sha256"] = layout.sha256_file(path)
    (folder / layout.MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def test_the_backup_keeps_each_links_types_and_its_check_covers_them(
    hubspot_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    cli, folder = _backed_up(tmp_path, hubspot_sandbox)
    table = pq.read_table(folder / layout.data_file(COMPANY_CONTACT)).to_pylist()
    kinds = {tuple(sorted(t["typeId"] for t in json.loads(r[ASSOCIATION_TYPES_FIELD]))) for r in table}
    assert kinds == {(280,), (2, 280)}  # every link has the unlabelled type; a primary contact's has 2 too
    primary = next(r for r in table if any(t["typeId"] == 2 for t in json.loads(r[ASSOCIATION_TYPES_FIELD])))
    assert json.loads(primary[ASSOCIATION_TYPES_FIELD]) == [
        {"category": "HUBSPOT_DEFINED", "label": "Primary", "typeId": 2},
        {"category": "HUBSPOT_DEFINED", "label": None, "typeId": 280}]
    cli("snapshots", "verify", folder.name)

    # A label forged in the link table, its ends untouched, fails the snapshot's check as a forged end does.
    forged = [{**r, ASSOCIATION_TYPES_FIELD: r[ASSOCIATION_TYPES_FIELD].replace('"typeId":2}', '"typeId":1}')}
              if r[ASSOCIATION_FROM_FIELD] == primary[ASSOCIATION_FROM_FIELD] else r for r in table]
    path = folder / layout.data_file(COMPANY_CONTACT)
    pq.write_table(pa.Table.from_pylist(forged, schema=pq.read_schema(path)), path, compression="zstd")
    refused = cli("snapshots", "verify", folder.name, expect=3)
    assert f"data file of {COMPANY_CONTACT} {layout.data_file(COMPANY_CONTACT)} has changed since the backup" in (
        refused.stdout + refused.stderr)


def test_the_rollback_plan_shows_the_labels_it_writes(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    cli, folder = _backed_up(tmp_path, hubspot_sandbox)
    _run_id, review = _reviewed(cli, tmp_path, folder, hs)
    links = _links(review)
    labelled = [c for c in links if any(t["typeId"] == 2 for t in c["after"].get("types", []))]
    assert labelled and all(c["after"]["types"] for c in links)  # each link names every type it had
    shown = cli("preview", str(review), "--limit", "1000").stdout
    first = labelled[0]["after"]
    assert f'link companies "{first["from_id"]}" → contacts (the new id of contacts {first["to_id"]["ref"][1]}) ' \
           "(Primary)" in shown
    assert len(labelled) < len(links) and shown.count("(Primary)") == len(labelled)  # the others name none


def test_a_snapshot_taken_before_links_kept_types_rolls_back_with_the_default_link(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    cli, folder = _backed_up(tmp_path, hubspot_sandbox)
    as_taken_before_link_types(folder)
    cli("snapshots", "verify", folder.name)
    run_id, archived, before = _applied(cli, tmp_path, folder, hs)
    review = tmp_path / "undo.json"
    cli("rollback", run_id, "-o", str(review))
    assert _links(review) and all("types" not in c["after"] for c in _links(review))
    assert "(Primary)" not in cli("preview", str(review), "--limit", "1000").stdout

    undone = json.loads(cli("rollback", run_id, "--yes", "--json").stdout)
    assert undone["failed"] == 0
    made = read_run(Home(tmp_path / "home"), undone["run"]).id_map["contacts"]
    after = {old: company_link_types(hs, [made[old]])[made[old]] for old in archived if old in made}
    # Every re-created contact is back on the companies it was on, by the default link only.
    assert after == {old: {company: [279] for company in links} for old, links in before.items() if old in made}
    assert any(after.values())


def test_a_rollback_plan_whose_link_types_were_edited_is_refused(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    cli, folder = _backed_up(tmp_path, hubspot_sandbox)
    run_id, review = _reviewed(cli, tmp_path, folder, hs)
    plan = json.loads(review.read_text())
    link = next(c for c in plan["changes"] if c["op"] == "associate" and len(c["after"]["types"]) == 1)
    # A link that was never its company's primary one, made so.
    link["after"]["types"].insert(0, {"category": "HUBSPOT_DEFINED", "label": "Primary", "typeId": 2})
    review.write_text(json.dumps(plan, indent=2), encoding="utf-8")

    applied = cli("apply", str(review), "--yes", expect=3)
    assert f"plan {review} was changed after it was written (digest mismatch)" in applied.stderr
    # Accepting it (a fresh digest, this home's signature) still holds the link to the snapshot's.
    accepted = cli("plan", "accept", str(review), "--yes", expect=3)
    assert f"{link['object']} {link['record_id']}: types differs from the snapshot's link" in accepted.stderr
    assert "build the rollback plan again" in accepted.stderr
    assert read_run(Home(tmp_path / "home"), run_id).rollbacks == []  # nothing applied


def test_a_rollback_takes_no_link_from_a_link_table_edited_since_the_backup(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    cli, folder = _backed_up(tmp_path, hubspot_sandbox)
    run_id, _archived, _before = _applied(cli, tmp_path, folder, hs)
    path = folder / layout.data_file(COMPANY_CONTACT)
    table = pq.read_table(path)
    # Every company made its contacts' primary one, the manifest left as it was.
    primary = [{"category": "HUBSPOT_DEFINED", "label": "Primary", "typeId": 2},
               {"category": "HUBSPOT_DEFINED", "label": None, "typeId": 280}]
    forged = table.set_column(table.schema.get_field_index(ASSOCIATION_TYPES_FIELD), ASSOCIATION_TYPES_FIELD,
                              pa.array([json.dumps(primary)] * table.num_rows, pa.string()))
    pq.write_table(forged, path, compression="zstd")
    for args in (("-o", str(tmp_path / "undo.json")), ("--yes",)):
        refused = cli("rollback", run_id, *args, expect=3)
        assert (f"the links {COMPANY_CONTACT} of snapshot {folder.name} have changed since the backup (their "
                f"sha256 differs from the manifest): check it with `crmsweep snapshots verify {folder.name} "
                in refused.stderr)
        assert refused.stderr.rstrip().endswith("its re-created records cannot be re-linked from it")
    assert read_run(Home(tmp_path / "home"), run_id).rollbacks == []


def test_a_custom_label_comes_back_with_the_re_created_contact(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    cli, first = _backed_up(tmp_path, hubspot_sandbox)
    plan_file = tmp_path / "first.json"
    cli("scan", "-c", "e2e", "--snapshot", first.name, "-o", str(plan_file), "--pass", "stale_contacts")
    stale = sorted(c["record_id"] for c in json.loads(plan_file.read_text())["changes"] if c["op"] == "archive")
    contact, companies = next((c, links) for c, links in company_link_types(hs, stale).items() if links)
    company = sorted(companies)[0]
    made = hs.crm.associations.v4.schema.definitions_api.create(
        "contacts", "companies", {"label": "Billing contact", "name": "billing_contact", "inverseLabel": "Billed"})
    forward = next(t for t in made.results if t.label == "Billing contact")
    kept = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": t} for t in companies[company]]
    hs.crm.associations.v4.batch_api.create("contacts", "companies", {"inputs": [
        {"from": {"id": contact}, "to": {"id": company},
         "types": [{"associationCategory": "USER_DEFINED", "associationTypeId": forward.type_id}, *kept]}]})
    labelled = company_link_types(hs, [contact])[contact]
    assert forward.type_id in labelled[company]

    cli, folder = _backed_up(tmp_path, hubspot_sandbox)
    run_id, archived, before = _applied(cli, tmp_path, folder, hs)
    assert contact in archived and before[contact] == labelled
    review = tmp_path / "undo.json"
    cli("rollback", run_id, "-o", str(review))
    shown = cli("preview", str(review), "--limit", "1000").stdout
    # The label as the company end names it, beside the others the link has.
    line = next(line for line in shown.splitlines() if f'companies "{company}" → contacts (the new id of contacts '
                f"{contact})" in line)
    assert (" (Primary, Billed)  " if 1 in labelled[company] else " (Billed)  ") in line
    undone = json.loads(cli("rollback", run_id, "--yes", "--json").stdout)
    assert undone["failed"] == 0
    new_id = read_run(Home(tmp_path / "home"), undone["run"]).id_map["contacts"][contact]
    assert company_link_types(hs, [new_id])[new_id] == labelled
