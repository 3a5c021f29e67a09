"""Apply through Bulk API 2.0 ingest jobs (issue 8 item 1, ingest side): both sides of the threshold,
the job logged before its data is uploaded, a kill -9 at each step and each injected fault settled on
resume without resending blindly, and a Bulk restore that writes back exactly the backed-up values.

The real connector (simple-salesforce over our session) against the sandbox over TLS; the org's state
is read back through the REST API. A threshold of 20 keeps the jobs small.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsweep.backup.rollback import build_rollback_plan, mark_rolled_back
from crmsweep.backup.runlog import Outcome, read_run
from crmsweep.backup.snapshot import open_snapshot
from crmsweep.backup.snapshot_writer import take_snapshot
from crmsweep.cleanup.apply import ApplyReport, apply_plan
from crmsweep.cleanup.labels import record_label
from crmsweep.cleanup.passes import ANY_VALUE, PASSES, PassContext, PassOutput, PassSpec, Proposal
from crmsweep.connectors.base import Connection
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.connectors.salesforce import SalesforceConnector
from crmsweep.connectors.salesforce_bulk_ingest import SalesforceIngestJob
from crmsweep.model import Change, Op, Plan, PlanHeader
from crmsweep.paths import Home
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY
from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.salesforce_api import SalesforceApi
from crmsweep.sandbox.server import RunningSandbox
from tests.plans import signed
from tests.test_apply import ProcessDied

THRESHOLD = 20


def _proposes_nothing(ctx: PassContext) -> PassOutput:
    return PassOutput(changes=[])

PASS_NAME = "bulk_test_pass"
FIELDS = ("Title", "Description", "Email", "MailingCity", "FirstName")
BULK_PASS = PassSpec(
    name=PASS_NAME,
    summary="Bulk changes made by hand for a test.",
    order=99,
    defaults={},
    run=_proposes_nothing,
    proposes=(
        Proposal(Op.DELETE, objects=lambda v: ("Contact",)),
        Proposal(Op.UPDATE, objects=lambda v: ("Contact",), writes=lambda v: dict.fromkeys(FIELDS, ANY_VALUE)),
    ),
)


@pytest.fixture(autouse=True)
def bulk_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PASSES, PASS_NAME, BULK_PASS)


@pytest.fixture()
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


@pytest.fixture()
def connector(sandbox: RunningSandbox) -> Iterator[SalesforceConnector]:
    with connect(sandbox) as made:
        yield made


class connect:
    def __init__(self, sandbox: RunningSandbox) -> None:
        info = sandbox.info
        self.connector = SalesforceConnector(
            Connection(name="bulk", provider="salesforce", url=info.url, token=info.token, ca_file=info.ca_file),
            retry=RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.02),
            bulk_threshold=THRESHOLD,
        )

    def __enter__(self) -> SalesforceConnector:
        return self.connector

    def __exit__(self, *exc: object) -> None:
        self.connector.close()


def jobs(sandbox: RunningSandbox) -> Any:
    api = sandbox.api
    assert isinstance(api, SalesforceApi)
    return api.ingest_jobs


def job_calls(sandbox: RunningSandbox, method: str) -> int:
    return int(sandbox.stats()["by_endpoint"].get(f"{method} jobs/ingest", 0))


def contact_ids(connector: SalesforceConnector, count: int) -> list[str]:
    """Contacts old enough that apply's protection of recent records does not hold them back."""
    old = (datetime.now(UTC) - timedelta(days=45)).strftime("%Y-%m-%dT%H:%M:%S")
    ids = [r["Id"] for page in connector.iter_pages("Contact", ["Id", "CreatedDate"]) for r in page
           if r["CreatedDate"] < old]
    assert len(ids) >= count
    return sorted(ids)[:count]


def make_plan(connector: SalesforceConnector, home: Home, specs: Sequence[tuple[Op, str, dict[str, Any]]]) -> Plan:
    """A plan of Contact changes from a fresh snapshot, as a pass would propose them."""
    snapshot_id = take_snapshot(connector, home, objects=["Contact"]).snapshot_id
    reader = open_snapshot(home, snapshot_id)
    before = reader.record_map("Contact", [rid for _, rid, _ in specs])
    changes = [
        Change(op=op, object="Contact", record_id=rid, before=dict(before[rid]), after=dict(after), reason="test",
               pass_name=PASS_NAME, fingerprint=before[rid]["SystemModstamp"],
               label=record_label(SALESFORCE_VOCABULARY, "Contact", before[rid]))
        for op, rid, after in specs
    ]
    header = PlanHeader(plan_id="plan-20300101T000000Z-0001", created="2030-01-01T00:00:00.000Z",
                        tool_version="0.1.0", provider="salesforce", org_id=connector.org_id(), connection="bulk",
                        source={"kind": "snapshot", "id": snapshot_id}, passes=(PASS_NAME,))
    return Plan.build(header, changes)


def deletes(ids: Sequence[str]) -> list[tuple[Op, str, dict[str, Any]]]:
    return [(Op.DELETE, rid, {}) for rid in ids]


def apply(plan: Plan, connector: SalesforceConnector, home: Home, *, resume: str | None = None) -> ApplyReport:
    return apply_plan(*signed(plan, home), connector, home, resume_run=resume)


def live(connector: SalesforceConnector, ids: Sequence[str], *fields: str) -> dict[str, dict[str, Any]]:
    return connector.read("Contact", list(ids), ["Id", *fields], include_deleted=True)


def deleted(connector: SalesforceConnector, ids: Sequence[str]) -> set[str]:
    return {rid for rid, row in live(connector, ids, "IsDeleted").items() if row["IsDeleted"]}


def entries(home: Home, run_id: str) -> list[dict[str, Any]]:
    return read_run(home, run_id).entries


def only_run(home: Home) -> str:
    [folder] = list(home.runs_dir.iterdir())
    return folder.name


# --- both sides of the threshold -------------------------------------------------------------------


def test_at_the_threshold_collections_are_used_and_above_it_one_job(
    sandbox: RunningSandbox, connector: SalesforceConnector, home: Home, tmp_path: Path
) -> None:
    ids = contact_ids(connector, THRESHOLD + 1 + THRESHOLD)
    at, above = ids[:THRESHOLD], ids[THRESHOLD:]
    report = apply(make_plan(connector, home, deletes(at)), connector, home)
    assert (report.applied, report.failed) == (THRESHOLD, 0)
    assert job_calls(sandbox, "POST") == 0 and deleted(connector, at) == set(at)

    other = Home(tmp_path / "home2")
    report = apply(make_plan(connector, other, deletes(above)), connector, other)
    assert (report.applied, report.failed, report.stopped) == (len(above), 0, None), report
    assert deleted(connector, above) == set(above)
    assert (job_calls(sandbox, "POST"), job_calls(sandbox, "PUT")) == (1, 1)
    log = entries(other, report.run_id)
    kinds = [e["t"] for e in log]
    # The job is announced after its intent and before the results, naming the batch.
    assert kinds[kinds.index("intent"):kinds.index("intent") + 3] == ["intent", "job", "result"]
    job_entry = next(e for e in log if e["t"] == "job")
    assert job_entry["batch"] == next(e for e in log if e["t"] == "intent")["batch"]
    result = next(e for e in log if e["t"] == "result")
    assert sorted(r["id"] for r in result["results"]) == sorted(above)
    stamps = {rid: row["SystemModstamp"] for rid, row in live(connector, above, "SystemModstamp").items()}
    assert all(r["ok"] and r["fingerprint_after"] == stamps[r["id"]] for r in result["results"])


def test_a_bulk_delete_makes_only_the_calls_its_path_needs_and_no_describe(
    sandbox: RunningSandbox, connector: SalesforceConnector, home: Home
) -> None:
    ids = contact_ids(connector, THRESHOLD + 5)
    plan = make_plan(connector, home, deletes(ids))
    sandbox.reset_stats()
    with connect(sandbox) as fresh:  # as a new `crmsweep apply` would: nothing described yet
        report = apply(plan, fresh, home)
    spent = dict(sandbox.stats()["by_endpoint"])
    assert (report.applied, report.failed, report.stopped) == (len(ids), 0, None), report
    assert deleted(connector, ids) == set(ids)
    polls = spent.pop("GET jobs/ingest")
    # A CSV of ids alone needs no field types: the describe the job's CSV writer used to make is gone.
    assert spent == {"GET query": 1, "GET queryAll": 2, "POST jobs/ingest": 1, "PUT jobs/ingest": 1,
                     "PATCH jobs/ingest": 1}
    assert polls >= 1


def test_a_bulk_delete_rolls_back_by_undelete_and_failed_rows_are_reported(
    sandbox: RunningSandbox, connector: SalesforceConnector, home: Home
) -> None:
    ids = contact_ids(connector, 30)
    bad = ids[3]
    specs: list[tuple[Op, str, dict[str, Any]]] = [(Op.UPDATE, rid, {"Title": "Bulk title"}) for rid in ids]
    specs[3] = (Op.UPDATE, bad, {"Email": "not an email"})  # the platform refuses this one row
    report = apply(make_plan(connector, home, specs), connector, home)
    assert (report.applied, report.failed) == (29, 1)
    assert [(f["id"], f["error_code"]) for f in report.failed_items] == [(bad, "INVALID_EMAIL_ADDRESS")]
    assert {r["Title"] for rid, r in live(connector, ids, "Title").items() if rid != bad} == {"Bulk title"}

    plan = make_plan(connector, Home(home.root / "second"), deletes(ids))
    applied = apply(plan, connector, Home(home.root / "second"))
    assert applied.applied == 30 and deleted(connector, ids) == set(ids)
    back = roll_back(connector, Home(home.root / "second"), applied.run_id)
    assert (back.applied, back.failed) == (30, 0) and not deleted(connector, ids)


def roll_back(connector: SalesforceConnector, home: Home, run_id: str) -> ApplyReport:
    plan = build_rollback_plan(home, run_id, now=datetime.now(UTC), vocabulary=SALESFORCE_VOCABULARY)
    report = apply_plan(*signed(plan, home), connector, home)
    assert not (report.failed or report.stopped)
    mark_rolled_back(home, run_id, report.run_id)
    return report


# --- fidelity through a Bulk update and its Bulk restore -------------------------------------------

TRICKY: list[dict[str, Any]] = [
    {"Title": None, "Description": "comma, and \"quotes\" and 'single'"},
    {"Title": "Ünïcødé – 東京 🚀", "Description": "line one\nline two\r\nline three"},
    {"Title": "#N/A-ish but not", "Description": "  leading and trailing spaces  "},
    {"Title": "trailing comma,", "Description": None, "MailingCity": "São Paulo"},
    {"Title": '"', "Description": ",,,", "Email": None},
]


def test_a_bulk_restore_writes_back_exactly_the_backed_up_values(
    sandbox: RunningSandbox, connector: SalesforceConnector, home: Home
) -> None:
    ids = contact_ids(connector, 25)
    for rid, values in zip(ids, TRICKY * 5, strict=True):
        assert connector.update("Contact", [{"Id": rid, **values}])[0].ok
    fields = list(FIELDS)
    before = live(connector, ids, *fields)
    specs = [(Op.UPDATE, rid, {"Title": "Changed", "Description": None, "Email": "x@example.com",
                               "MailingCity": "", "FirstName": "Ana"}) for rid in ids]
    plan = make_plan(connector, home, specs)
    applied = apply(plan, connector, home)
    assert (applied.applied, applied.failed) == (25, 0)
    changed = live(connector, ids, *fields)
    assert {(r["Title"], r["Description"], r["MailingCity"]) for r in changed.values()} == {("Changed", None, None)}

    posts = job_calls(sandbox, "POST")
    back = roll_back(connector, home, applied.run_id)
    assert back.applied == 25 and job_calls(sandbox, "POST") == posts + 1  # the restore was a job too
    assert live(connector, ids, *fields) == before


# --- kill -9 at each step, settled on resume ---------------------------------------------------------


def die_at(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, *, after: bool = False) -> None:
    """The process ends at `target.name` (before it, or just after it returned): nothing of ours runs."""
    real = getattr(target, name)

    def dying(*args: Any, **kwargs: Any) -> Any:
        if after:
            real(*args, **kwargs)
        raise ProcessDied

    monkeypatch.setattr(target, name, dying)


@pytest.mark.parametrize(
    ("point", "target", "name", "after", "processed_by_first_job"),
    [
        ("after the intent, before the job is created", SalesforceConnector, "ingest", False, False),
        ("after the job is created, before upload", SalesforceIngestJob, "upload", False, False),
        ("after upload, before close", SalesforceIngestJob, "upload", True, False),
        ("after close, before the results", SalesforceIngestJob, "close", True, True),
    ],
)
def test_a_kill_at_each_step_of_a_job_is_settled_on_resume_never_resent_blindly(
    sandbox: RunningSandbox, home: Home, monkeypatch: pytest.MonkeyPatch,
    point: str, target: Any, name: str, after: bool, processed_by_first_job: bool,
) -> None:
    with connect(sandbox) as connector:
        ids = contact_ids(connector, 25)
        plan = make_plan(connector, home, deletes(ids))
        with monkeypatch.context() as patch:
            die_at(patch, target, name, after=after)
            with pytest.raises(ProcessDied):
                apply(plan, connector, home)
    run_id = only_run(home)
    state = read_run(home, run_id)
    assert state.count(Outcome.PENDING) == 25, point
    logged_jobs = [e["job"] for e in state.entries if e["t"] == "job"]
    assert len(logged_jobs) == (0 if target is SalesforceConnector else 1)
    first_posts = job_calls(sandbox, "POST")

    with connect(sandbox) as connector:  # a new process
        report = apply(plan, connector, home, resume=run_id)
        assert (report.applied, report.failed, report.skipped, report.stopped) == (25, 0, 0, None), point
        assert deleted(connector, ids) == set(ids)
    new_jobs = job_calls(sandbox, "POST") - first_posts
    settled = read_run(home, run_id)
    assert settled.status == "done" and settled.count(Outcome.APPLIED) == 25
    if processed_by_first_job:
        # The closed job did the work: settled from its results, no second job, nothing failed twice.
        assert new_jobs == 0
        reconciled = [e for e in settled.entries if e["t"] == "result" and e.get("reconciled")]
        assert sorted(r["id"] for e in reconciled for r in e["results"]) == sorted(ids)
    else:
        assert new_jobs == 1
        if logged_jobs:
            # The job never closed was aborted, so it can never run after the resend.
            assert jobs(sandbox)._jobs[logged_jobs[0]].state == "Aborted"
            assert not jobs(sandbox)._jobs[logged_jobs[0]].successful


def test_a_job_still_running_at_resume_is_waited_for_then_settled(
    sandbox: RunningSandbox, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = threading.Event()
    jobs(sandbox).settings.hold = hold
    try:
        with connect(sandbox) as connector:
            ids = contact_ids(connector, 22)
            plan = make_plan(connector, home, deletes(ids))
            with monkeypatch.context() as patch:
                die_at(patch, SalesforceIngestJob, "close", after=True)
                with pytest.raises(ProcessDied):
                    apply(plan, connector, home)
        timer = threading.Timer(0.5, hold.set)
        timer.start()
        with connect(sandbox) as connector:
            report = apply(plan, connector, home, resume=only_run(home))
        timer.join()
    finally:
        jobs(sandbox).settings.hold = None
        hold.set()
    assert (report.applied, report.failed, report.stopped) == (22, 0, None)
    assert job_calls(sandbox, "POST") == 1


# --- injected faults --------------------------------------------------------------------------------


def test_a_503_on_upload_is_retried_and_the_job_goes_through(
    sandbox: RunningSandbox, connector: SalesforceConnector, home: Home
) -> None:
    ids = contact_ids(connector, 24)
    plan = make_plan(connector, home, deletes(ids))
    sandbox.set_faults([FaultRule(kind="status", status=503, method="PUT", path="/batches$", times=1)])
    report = apply(plan, connector, home)
    sandbox.set_faults([])
    assert (report.applied, report.failed, report.stopped) == (24, 0, None)
    # The refused upload never reached the job (the core answers faults uncounted): one job, one upload.
    assert sandbox.stats()["faults_injected"] == 1
    assert (job_calls(sandbox, "POST"), job_calls(sandbox, "PUT")) == (1, 1)
    assert deleted(connector, ids) == set(ids)


def test_a_connection_dropped_after_close_stops_the_run_and_resume_settles_it_from_the_job(
    sandbox: RunningSandbox, connector: SalesforceConnector, home: Home
) -> None:
    ids = contact_ids(connector, 23)
    plan = make_plan(connector, home, deletes(ids))
    sandbox.set_faults([FaultRule(kind="drop", after=True, method="PATCH", path="jobs/ingest/", times=1)])
    report = apply(plan, connector, home)
    sandbox.set_faults([])
    assert report.stopped is not None and "may or may not" in report.stopped
    state = read_run(home, report.run_id)
    assert state.count(Outcome.PENDING) == 23
    resumed = apply(plan, connector, home, resume=report.run_id)
    assert (resumed.applied, resumed.failed, resumed.stopped) == (23, 0, None)
    assert job_calls(sandbox, "POST") == 1 and deleted(connector, ids) == set(ids)


def test_a_job_failed_part_way_logs_what_it_did_and_resume_sends_only_the_rest(
    sandbox: RunningSandbox, connector: SalesforceConnector, home: Home
) -> None:
    ids = contact_ids(connector, 30)
    plan = make_plan(connector, home, deletes(ids))
    jobs(sandbox).settings.fail_after = 12
    report = apply(plan, connector, home)
    assert report.stopped is not None and "Failed" in report.stopped
    assert "18 records were not processed" in report.stopped
    state = read_run(home, report.run_id)
    assert [state.count(o) for o in (Outcome.APPLIED, Outcome.NOT_STARTED, Outcome.PENDING)] == [12, 18, 0]
    assert len(deleted(connector, ids)) == 12
    resumed = apply(plan, connector, home, resume=report.run_id)
    assert (resumed.applied, resumed.failed, resumed.stopped) == (30, 0, None)
    assert deleted(connector, ids) == set(ids) and job_calls(sandbox, "POST") == 1 + 0  # 18 <= 20: collections


def test_the_threshold_is_set_per_connection_in_the_config(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmsweep import api

    info = sandbox.info
    config = tmp_path / "crmsweep.toml"
    config.write_text(
        f'[connections.big]\nprovider = "salesforce"\nurl = "{info.url}"\ntoken_env = "BULK_TOKEN"\n'
        f'ca_file = "{info.ca_file}"\nbulk_threshold = 5000\n\n'
        f'[connections.plain]\nprovider = "salesforce"\nurl = "{info.url}"\ntoken_env = "BULK_TOKEN"\n'
        f'ca_file = "{info.ca_file}"\n', encoding="utf-8")
    monkeypatch.setenv("BULK_TOKEN", info.token)
    ws = api.Workspace.load(config, tmp_path / "home")
    with api.connect(ws, "big") as big, api.connect(ws, "plain") as plain:
        assert (getattr(big, "bulk_threshold", None), getattr(plain, "bulk_threshold", None)) == (5000, 2000)


def test_rows_one_job_cannot_hold_stop_the_run_with_nothing_sent(
    sandbox: RunningSandbox, connector: SalesforceConnector, home: Home
) -> None:
    ids = contact_ids(connector, 21)
    plan = make_plan(connector, home, [(Op.UPDATE, rid, {"Title": {"not": "a scalar"}}) for rid in ids])
    report = apply(plan, connector, home)
    assert report.stopped is not None and "cannot go as one bulk job" in report.stopped
    assert "bulk_threshold" in report.stopped
    state = read_run(home, report.run_id)
    assert (state.count(Outcome.NOT_STARTED), state.count(Outcome.PENDING)) == (21, 0)
    assert job_calls(sandbox, "POST") == 0


def test_a_dry_run_writes_nothing_and_a_killed_jobs_run_is_settled_then_rolled_back(
    sandbox: RunningSandbox, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmsweep.cleanup.apply import settle_run

    with connect(sandbox) as connector:
        ids = contact_ids(connector, 24)
        plan = make_plan(connector, home, deletes(ids))
        dry = apply_plan(*signed(plan, home), connector, home, dry_run=True)
        assert (dry.applied, dry.dry_run) == (24, True) and job_calls(sandbox, "POST") == 0
        assert not deleted(connector, ids)
        with monkeypatch.context() as patch:
            die_at(patch, SalesforceIngestJob, "close", after=True)
            with pytest.raises(ProcessDied):
                apply(plan, connector, home)
    run_id = only_run(home)
    with connect(sandbox) as connector:
        in_memory = settle_run(home, run_id, connector, dry_run=True)
        assert in_memory.count(Outcome.APPLIED) == 24 and read_run(home, run_id).count(Outcome.PENDING) == 24
        settled = settle_run(home, run_id, connector)
        assert settled.count(Outcome.APPLIED) == 24 and settled.count(Outcome.PENDING) == 0
        back = roll_back(connector, home, run_id)
        assert back.applied == 24 and not deleted(connector, ids)
    assert job_calls(sandbox, "POST") == 1


def test_a_value_reading_hash_na_is_written_over_rest_not_as_a_bulk_null(
    sandbox: RunningSandbox, connector: SalesforceConnector, home: Home
) -> None:
    """Bulk CSV reads the text "#N/A" as "set null": the records writing it go through the regular API,
    the rest as one job, and every value is stored as it was sent."""
    ids = contact_ids(connector, THRESHOLD + 3)
    specs = [(Op.UPDATE, rid, {"Title": "#N/A" if n < 2 else f"plain {n}"}) for n, rid in enumerate(ids)]
    plan = make_plan(connector, home, specs)
    posts = job_calls(sandbox, "POST")
    report = apply(plan, connector, home)
    assert (report.applied, report.failed) == (len(ids), 0)
    assert job_calls(sandbox, "POST") == posts + 1  # the others still went as one job
    titles = {rid: row["Title"] for rid, row in live(connector, ids, "Title").items()}
    assert titles == {rid: "#N/A" if n < 2 else f"plain {n}" for n, rid in enumerate(ids)}


def test_one_job_of_records_writing_different_fields_changes_only_each_ones_own(
    sandbox: RunningSandbox, connector: SalesforceConnector, home: Home
) -> None:
    """Red team: a job's columns are every field any of its records writes; a record that writes Title
    only must not have its Description set to null (nor the reverse), and the rollback puts back both."""
    ids = contact_ids(connector, THRESHOLD + 4)
    for n, rid in enumerate(ids):
        assert connector.update("Contact", [{"Id": rid, "Title": f"old title {n}",
                                             "Description": f"old description {n}"}])[0].ok
    before = live(connector, ids, "Title", "Description")
    specs = [(Op.UPDATE, rid, {"Title": "new title"} if n % 2 == 0 else {"Description": "new description"})
             for n, rid in enumerate(ids)]
    plan = make_plan(connector, home, specs)
    posts = job_calls(sandbox, "POST")
    report = apply(plan, connector, home)
    assert (report.applied, report.failed) == (len(ids), 0) and job_calls(sandbox, "POST") == posts + 1
    after = live(connector, ids, "Title", "Description")
    for n, rid in enumerate(ids):
        if n % 2 == 0:
            assert (after[rid]["Title"], after[rid]["Description"]) == ("new title", f"old description {n}")
        else:
            assert (after[rid]["Title"], after[rid]["Description"]) == (f"old title {n}", "new description")
    back = roll_back(connector, home, report.run_id)
    assert back.applied == len(ids) and live(connector, ids, "Title", "Description") == before
