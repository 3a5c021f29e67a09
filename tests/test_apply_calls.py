"""Apply and rollback at the minimum of API calls, and a rollback that reads only the runs it needs.

Against the sandbox over TLS, through the real connector; calls are counted by the sandbox itself
(`/__sandbox/stats`), per endpoint. The minimums (docs/design.md, "Apply and rollback at the minimum"),
for N deletes of one object in W = ceil(N / 200) write batches, P = max_ids_per_read (500):
- apply: W deletes + W read-backs (each also reading the next batch for its drift check) + 1 drift read
  of the first batch + 1 org id query (the one live proof of identity); no describe (the snapshot's);
- rollback: W undeletes + W read-backs + 1 drift read + ceil(N / P) recycle-bin reads + 1 org id query.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crmsweep import api
from crmsweep.backup import runlog
from crmsweep.backup.snapshot import open_snapshot
from crmsweep.cleanup.labels import record_label
from crmsweep.model import Change, Op, Plan, PlanFile, PlanHeader
from crmsweep.providers.salesforce import SALESFORCE_CAPABILITIES, SALESFORCE_VOCABULARY
from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.plans import TEST_PASS_NAME, write_signed
from tests.sandbox_workspace import org_workspace

TOKEN_ENV = "APPLY_CALLS_TOKEN"
CONNECTION = "org"
BATCH = SALESFORCE_CAPABILITIES.max_batch_write
PER_READ = SALESFORCE_CAPABILITIES.max_ids_per_read


@pytest.fixture(scope="module")
def big_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path_factory.mktemp("calls") / "state", records=700, seed=5) as running:
        yield running


@pytest.fixture()
def ws(big_sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> api.Workspace:
    return org_workspace(big_sandbox.info, tmp_path, monkeypatch, provider="salesforce", token_env=TOKEN_ENV,
                         connection=CONNECTION)


def yes(plan: Plan) -> bool:
    return True


def delete_plans(ws: api.Workspace, tmp_path: Path, sizes: list[int]) -> list[Path]:
    """Plans of Contact deletes of disjoint live contacts, as the test pass proposes them from a fresh
    snapshot (before-images and fingerprints from it), each signed by the home and written to a file."""
    manifest = api.backup(ws, CONNECTION, ["Contact"])
    reader = open_snapshot(ws.home, manifest.snapshot_id)
    old = (datetime.now(UTC) - timedelta(days=60)).isoformat()
    # Live, and not protected at apply time as recently created.
    live = sorted((r for r in reader.records("Contact") if not r.get("IsDeleted") and str(r["CreatedDate"]) < old),
                  key=lambda r: str(r["Id"]))
    assert len(live) >= sum(sizes)
    paths = []
    for number, size in enumerate(sizes):
        rows, live = live[:size], live[size:]
        changes = [
            Change(op=Op.DELETE, object="Contact", record_id=str(r["Id"]), before=dict(r), after={},
                   reason="test", pass_name=TEST_PASS_NAME, fingerprint=str(r["SystemModstamp"]),
                   label=record_label(SALESFORCE_VOCABULARY, "Contact", r))
            for r in rows
        ]
        header = PlanHeader(
            plan_id=f"plan-20300101T000000Z-{number:04d}", created="2030-01-01T00:00:00.000Z", tool_version="0.1.0",
            provider="salesforce", org_id=manifest.org_id, connection=CONNECTION,
            source={"kind": "snapshot", "id": manifest.snapshot_id}, passes=(TEST_PASS_NAME,),
        )
        paths.append(write_signed(tmp_path / f"plan-{number}.json", Plan.build(header, changes), ws.home))
    return paths


def live_deleted(ws: api.Workspace, ids: list[str]) -> set[str]:
    with api.connect(ws, CONNECTION) as connector:
        rows = connector.read("Contact", ids, ["Id", "IsDeleted"], include_deleted=True)
    return {i for i in ids if rows.get(i, {}).get("IsDeleted")}


def plan_ids(path: Path) -> list[str]:
    return [c.record_id for c in Plan.from_json(path.read_text(encoding="utf-8"))[0].changes]


@pytest.mark.usefixtures("test_pass_registered")
def test_apply_and_rollback_of_450_deletes_make_exactly_the_minimum_of_calls(
    big_sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    n = 450  # three write batches, and more ids than one batch: the read-backs carry the next drift reads
    (path,) = delete_plans(ws, tmp_path, [n])
    ids = plan_ids(path)
    w = math.ceil(n / BATCH)

    big_sandbox.reset_stats()
    applied = api.apply(ws, path, confirm=yes).report
    stats = big_sandbox.stats()
    assert applied is not None and (applied.applied, applied.skipped, applied.failed) == (n, 0, 0)
    assert live_deleted(ws, ids) == set(ids)
    assert stats["by_endpoint"] == {
        "DELETE composite/sobjects": w,
        "GET queryAll": w + 1,  # the read-backs, and the first batch's drift read
        "GET query": 1,  # the org id
    }
    assert stats["api_calls"] == 2 * w + 2

    big_sandbox.reset_stats()
    back = api.rollback(ws, applied.run_id, confirm=yes).report
    stats = big_sandbox.stats()
    assert back is not None and (back.applied, back.skipped, back.failed) == (n, 0, 0)
    assert live_deleted(ws, ids) == set()
    assert stats["by_endpoint"] == {
        "POST soap/undelete": w,
        "GET queryAll": w + 1 + math.ceil(n / PER_READ),  # read-backs, first drift read, recycle-bin check
        "GET query": 1,
    }
    assert stats["api_calls"] == 2 * w + 2 + math.ceil(n / PER_READ)
    assert {r.run_id: r.status for r in api.runs(ws)}[applied.run_id] == "rolled back"


@pytest.mark.usefixtures("test_pass_registered")
def test_a_rollback_reads_only_the_run_it_undoes_and_its_own_however_many_runs_the_home_holds(
    ws: api.Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    *earlier, last = delete_plans(ws, tmp_path, [3, 3, 3, 3, 4])
    runs = [api.apply(ws, p, confirm=yes).report for p in earlier]
    assert all(r is not None and r.applied == 3 for r in runs)
    first = runs[0]
    assert first is not None
    undone = api.rollback(ws, first.run_id, confirm=yes).report  # a rollback run in the home as well
    assert undone is not None and undone.applied == 3
    target = api.apply(ws, last, confirm=yes).report
    assert target is not None and target.applied == 4

    opened: list[str] = []
    read_entries = runlog._read_entries

    def spy(log_path: Path) -> tuple[list[dict[str, object]], bool]:
        opened.append(log_path.parent.name)
        return read_entries(log_path)

    monkeypatch.setattr(runlog, "_read_entries", spy)
    back = api.rollback(ws, target.run_id, confirm=yes).report
    assert back is not None and back.applied == 4 and back.failed == 0
    assert set(opened) == {target.run_id, back.run_id}
    assert sorted(os.listdir(ws.home.runs_dir)) == sorted(
        [*(r.run_id for r in runs if r is not None), undone.run_id, target.run_id, back.run_id]
    )
    assert live_deleted(ws, plan_ids(last)) == set()

    # What `runs show` and `apply --resume` ask: the run, and its rollbacks as its log names them.
    opened.clear()
    details = api.run(ws, target.run_id)
    assert details.rollbacks == [back.run_id] and details.state.status == "rolled back"
    assert opened == [target.run_id]


@pytest.mark.usefixtures("test_pass_registered")
def test_apply_and_rollback_parse_each_plan_text_once(
    ws: api.Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (path,) = delete_plans(ws, tmp_path, [5])
    parsed: list[str] = []
    parse = PlanFile._parse

    def spy(text: str) -> PlanFile:
        parsed.append(text)
        return parse(text)

    monkeypatch.setattr(PlanFile, "_parse", staticmethod(spy))
    applied = api.apply(ws, path, confirm=yes).report
    assert applied is not None and applied.applied == 5
    # The file, then the run folder's copy checked against it: the same text, parsed once.
    assert parsed == [path.read_text(encoding="utf-8")]
    parsed.clear()
    back = api.rollback(ws, applied.run_id, confirm=yes).report
    assert back is not None and back.applied == 5
    assert live_deleted(ws, plan_ids(path)) == set()
    # The run's plan is still the parse above; the rollback's own plan, checked before its run and read
    # back from the run folder after it, is parsed once.
    assert parsed == [runlog.open_run(ws.home, back.run_id).plan_path.read_text(encoding="utf-8")]
