"""A backup's Bulk API 2.0 path against the sandbox: the threshold, fidelity against the REST path, faults.

Real simple-salesforce session, real TLS; outcomes read back from the snapshot's Parquet files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crmsweep.backup.snapshot_writer import take_snapshot
from crmsweep.connectors.base import Connection
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.connectors.salesforce import SalesforceConnector
from crmsweep.connectors.salesforce_bulk_query import PollSchedule
from crmsweep.errors import ConnectorError
from crmsweep.model import SnapshotManifest
from crmsweep.paths import Home
from crmsweep.sandbox import salesforce_bulk_query as sandbox_bulk
from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.server import RunningSandbox, start_sandbox

CONTACTS = 400  # the seed makes this many contacts


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path_factory.mktemp("bulk"), records=CONTACTS, seed=11) as running:
        yield running


@pytest.fixture
def connection(sandbox: RunningSandbox) -> Iterator[Connection]:
    info = sandbox.info
    yield Connection(name="bulk", provider="salesforce", url=info.url, token=info.token, ca_file=Path(info.ca_file))
    sandbox.set_faults([])


def connector(connection: Connection, bulk_query_rows: int, *, version: str | None = None) -> SalesforceConnector:
    if version is not None:
        connection = Connection(name=connection.name, provider="salesforce", url=connection.url,
                                token=connection.token, ca_file=connection.ca_file, api_version=version)
    policy = RetryPolicy(attempts=4, initial_wait=0.0, max_wait=0.0, jitter=False, sleep=lambda _s: None)
    return SalesforceConnector(connection, retry=policy, bulk_query_rows=bulk_query_rows,
                               bulk_polls=PollSchedule(first=0.001, longest=0.01))


def backup(sf: SalesforceConnector, home: Path, objects: tuple[str, ...] = ("Contact",)) -> SnapshotManifest:
    return take_snapshot(sf, Home(home), objects=objects)


def table(home: Path, manifest: SnapshotManifest, name: str) -> pa.Table:
    return pq.read_table(home / "snapshots" / manifest.snapshot_id / manifest.objects[name].file)


def jobs_created(sandbox: RunningSandbox) -> int:
    return int(sandbox.stats()["by_endpoint"].get("POST jobs/query", 0))


@pytest.mark.parametrize(("threshold", "bulk"), [(CONTACTS, False), (CONTACTS - 1, True)])
def test_the_path_is_chosen_on_either_side_of_the_threshold(
    connection: Connection, sandbox: RunningSandbox, tmp_path: Path, threshold: int, bulk: bool
) -> None:
    sf = connector(connection, threshold)
    sandbox.reset_stats()
    manifest = backup(sf, tmp_path)
    assert sf.read_plan("Contact").method == ("bulk" if bulk else "rest")
    assert jobs_created(sandbox) == (1 if bulk else 0)
    assert manifest.objects["Contact"].rows == CONTACTS
    assert table(tmp_path, manifest, "Contact").num_rows == CONTACTS
    # Every call the backup made is in the manifest (the session counts from every thread).
    assert manifest.api_calls == sandbox.stats()["api_calls"]


def test_one_count_per_object_and_the_bulk_calls(connection: Connection, sandbox: RunningSandbox,
                                                 tmp_path: Path) -> None:
    sf = connector(connection, 10)
    sandbox.reset_stats()
    plan = sf.read_plan("Contact")
    assert sf.read_plan("Contact") is plan  # cached: never counted twice
    manifest = backup(sf, tmp_path)
    by_endpoint = sandbox.stats()["by_endpoint"]
    assert by_endpoint["GET query"] == 2  # the org id and one COUNT()
    # create, two polls, one result page (a single page needs no resultPages listing), delete
    assert by_endpoint["POST jobs/query"] == 1 and by_endpoint["DELETE jobs/query"] == 1
    assert by_endpoint["GET jobs/query"] == 3
    # org id, describe, create, two polls, the page, delete: the COUNT() was spent before the backup began
    assert manifest.api_calls == 7 == sandbox.stats()["api_calls"] - 1
    assert plan.calls == manifest.api_calls - 1  # the plan counts neither the org id nor its own COUNT()


TRICKY = [
    'Comma, "quote" and\nnewline',
    "Ünïcödé — 名前 🙂",
    "   spaced   ",
    "line\r\nwindows",
    "back\\slash",
]


@pytest.fixture
def tricky_records(connection: Connection) -> Iterator[tuple[list[str], list[str]]]:
    sf = connector(connection, 10**9)
    contacts = sf.create("Contact", [
        {"LastName": text, "Description": text if i % 2 else "", "HasOptedOutOfEmail": bool(i % 2),
         "EmailBouncedDate": "2024-02-29T23:59:59.123Z" if i % 2 else None}
        for i, text in enumerate(TRICKY)
    ])
    accounts = sf.create("Account", [
        {"Name": text, "NumberOfEmployees": [0, -3, 2_000_000_000, None, 7][i],
         "AnnualRevenue": [0.0, 1234.56, -1e-3, None, 1e15][i]}
        for i, text in enumerate(TRICKY)
    ])
    ids = ([r.id for r in contacts if r.id], [r.id for r in accounts if r.id])
    assert all(r.ok for r in [*contacts, *accounts]), [r for r in [*contacts, *accounts] if not r.ok]
    yield ids
    sf.delete("Contact", ids[0])
    sf.delete("Account", ids[1])
    sf.close()


def test_a_bulk_backup_equals_a_rest_backup_value_for_value(
    connection: Connection, tmp_path: Path, tricky_records: tuple[list[str], list[str]]
) -> None:
    objects = ("Contact", "Account")
    rest = backup(connector(connection, 10**9), tmp_path / "rest", objects)
    bulk = backup(connector(connection, 10), tmp_path / "bulk", objects)
    for name in objects:
        via_rest, via_bulk = table(tmp_path / "rest", rest, name), table(tmp_path / "bulk", bulk, name)
        assert via_bulk.schema == via_rest.schema
        assert via_bulk.equals(via_rest), name
    contacts = {r["Id"]: r for r in table(tmp_path / "bulk", bulk, "Contact").to_pylist()}
    mine = [contacts[i] for i in tricky_records[0]]
    # Seeded dates (LastActivityDate) and datetimes are in the table-wide equality above.
    assert [r["LastName"] for r in mine] == TRICKY
    assert [r["Description"] for r in mine] == [None, TRICKY[1], None, TRICKY[3], None]  # "" is stored as null
    assert [r["HasOptedOutOfEmail"] for r in mine] == [False, True, False, True, False]
    assert mine[1]["EmailBouncedDate"] is not None and mine[0]["EmailBouncedDate"] is None
    accounts = {r["Id"]: r for r in table(tmp_path / "bulk", bulk, "Account").to_pylist()}
    assert [accounts[i]["NumberOfEmployees"] for i in tricky_records[1]] == [0, -3, 2_000_000_000, None, 7]
    # AnnualRevenue is currency(18,0): Salesforce rounds to the scale, and the snapshot keeps the exact text.
    assert [accounts[i]["AnnualRevenue"] for i in tricky_records[1]] == ["0", "1235", "0", None, "1000000000000000"]


@pytest.mark.parametrize("version", ["57.0", "59.0"])
def test_many_pages_by_locator_chain_and_by_parallel_result_pages(
    connection: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    sf = connector(connection, 10, version=version)
    monkeypatch.setattr(sf._bulk, "max_records", 37)  # 400 rows: 11 pages, three resultPages listings
    rest = backup(connector(connection, 10**9, version=version), tmp_path / "rest")
    bulk = backup(sf, tmp_path / "bulk")
    assert table(tmp_path / "bulk", bulk, "Contact").equals(table(tmp_path / "rest", rest, "Contact"))


def _no_snapshot(home: Path) -> None:
    snapshots = home / "snapshots"
    assert not snapshots.exists() or os.listdir(snapshots) == []


def _jobs_left(sandbox: RunningSandbox) -> list[Any]:
    return list(sandbox.api._query_jobs._jobs)  # type: ignore[attr-defined]


def test_a_failed_job_fails_the_backup_loudly_and_leaves_nothing(
    connection: Connection, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    sandbox.set_faults([FaultRule(kind="job_failed", method="GET", path=r"/jobs/query/750[^/]*$", times=1)])
    with pytest.raises(ConnectorError, match="Failed") as failure:
        backup(connector(connection, 10), tmp_path)
    assert failure.value.code == "BULK_JOB_FAILED"
    _no_snapshot(tmp_path)
    assert _jobs_left(sandbox) == []  # the failed job was deleted


@pytest.mark.parametrize("rule", [
    FaultRule(kind="status", status=503, method="GET", path=r"/results$", times=2),
    FaultRule(kind="drop", method="GET", path=r"/results$", times=1),
    FaultRule(kind="status", status=503, method="POST", path=r"/jobs/query$", times=1),
], ids=["503-page", "dropped-page", "503-create"])
def test_a_retried_page_or_call_completes_the_backup_correctly(
    connection: Connection, sandbox: RunningSandbox, tmp_path: Path, rule: FaultRule
) -> None:
    rest = backup(connector(connection, 10**9), tmp_path / "rest")
    sandbox.set_faults([rule])
    bulk = backup(connector(connection, 10), tmp_path / "bulk")
    assert sandbox.stats()["faults_injected"] >= 1
    assert table(tmp_path / "bulk", bulk, "Contact").equals(table(tmp_path / "rest", rest, "Contact"))


def test_a_page_lost_for_good_fails_the_backup_with_no_manifest(
    connection: Connection, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    sandbox.set_faults([FaultRule(kind="status", status=503, method="GET", path=r"/results$")])
    with pytest.raises(ConnectorError):
        backup(connector(connection, 10), tmp_path)
    _no_snapshot(tmp_path)
    assert _jobs_left(sandbox) == []


def test_a_short_page_is_caught_by_its_announced_count(
    connection: Connection, sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sandbox_bulk.QueryJobs.results

    def short(self: Any, job: Any, version: str, request: Any) -> Any:
        response = real(self, job, version, request)
        lines = response.body.split(b"\n")
        response.body = b"\n".join([*lines[:-2], b""])  # one row lost, the header still says all
        return response

    monkeypatch.setattr(sandbox_bulk.QueryJobs, "results", short)
    with pytest.raises(ConnectorError, match="Sforce-NumberOfRecords"):
        backup(connector(connection, 10), tmp_path)
    _no_snapshot(tmp_path)


def test_a_job_that_processed_more_than_its_pages_hold_fails(
    connection: Connection, sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sandbox_bulk.QueryJobs._info

    def inflated(self: Any, job: Any, *, brief: bool = False) -> Any:
        info = real(self, job, brief=brief)
        if info.get("numberRecordsProcessed"):
            info["numberRecordsProcessed"] += 1
        return info

    monkeypatch.setattr(sandbox_bulk.QueryJobs, "_info", inflated)
    with pytest.raises(ConnectorError, match="processed"):
        backup(connector(connection, 10), tmp_path)
    _no_snapshot(tmp_path)


def test_a_result_url_on_another_host_is_not_followed(
    connection: Connection, sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sandbox_bulk.QueryJobs.result_pages

    def elsewhere(self: Any, job: Any, version: str, request: Any) -> Any:
        response = real(self, job, version, request)
        response.body = response.body.replace(b'"resultUrl":"/', b'"resultUrl":"https://attacker.example/')
        return response

    monkeypatch.setattr(sandbox_bulk.QueryJobs, "result_pages", elsewhere)
    sf = connector(connection, 10)
    monkeypatch.setattr(sf._bulk, "max_records", 100)  # several pages: the resultPages listing is used
    with pytest.raises(ConnectorError, match="not followed"):
        backup(sf, tmp_path)
    _no_snapshot(tmp_path)


def test_a_job_still_polled_is_stopped_when_another_object_fails(
    connection: Connection, sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmsweep.backup import snapshot_writer

    monkeypatch.setattr(sandbox_bulk.QueryJobs, "poll", lambda self, job: job)  # never completes
    real = snapshot_writer._write_object

    def account_fails(sf: Any, folder: Path, name: str, *rest: Any) -> Any:
        if name == "Account":
            raise ConnectorError("Account could not be read")
        return real(sf, folder, name, *rest)

    monkeypatch.setattr(snapshot_writer, "_write_object", account_fails)
    sf = SalesforceConnector(connection, retry=RetryPolicy.immediate(), bulk_query_rows=10**9,
                             bulk_polls=PollSchedule(first=0.05, longest=0.05))
    sf.bulk_query_rows = CONTACTS - 1  # Contact by a job; Account (fewer rows) over REST
    with pytest.raises(ConnectorError, match="Account could not be read"):
        take_snapshot(sf, Home(tmp_path), objects=("Contact", "Account"), workers=2)
    _no_snapshot(tmp_path)
    assert _jobs_left(sandbox) == []  # aborted, then deleted


def test_an_include_deleted_read_through_a_job_holds_the_recycle_bin(
    connection: Connection, sandbox: RunningSandbox
) -> None:
    sf = connector(connection, 10)
    [made] = sf.create("Contact", [{"LastName": "Binned"}])
    assert made.id is not None and sf.delete("Contact", [made.id])[0].ok
    try:
        assert sf.read_plan("Contact").method == "bulk"
        sandbox.reset_stats()
        rows = [r for page in sf.iter_pages("Contact", ["Id", "IsDeleted"], include_deleted=True) for r in page]
        assert {"Id": made.id, "IsDeleted": True} in rows
        assert sandbox.stats()["by_endpoint"]["POST jobs/query"] == 1  # queryAll, through the job
        live = [r for page in sf.iter_pages("Contact", ["Id"]) for r in page]
        assert {"Id": made.id} not in live
        # Earlier tests of this module add and bin contacts in the shared sandbox: the job must hold exactly
        # what a REST queryAll holds, recycle bin included.
        rest = [r for page in sf._query_pages("Contact", "SELECT Id, IsDeleted FROM Contact", include_deleted=True)
                for r in page]
        assert sorted(rows, key=lambda r: r["Id"]) == sorted(rest, key=lambda r: r["Id"])
        assert len(live) == sum(not r["IsDeleted"] for r in rest) >= CONTACTS
    finally:
        sf.close()


def test_result_pages_a_killed_backup_left_are_swept_and_a_live_ones_kept(tmp_path: Path) -> None:
    """Red team: kill -9 during a Bulk read left the object's whole CSV in the temporary folder for good."""
    import os
    import subprocess

    from crmsweep.connectors.salesforce_bulk_query import sweep_stale_pages

    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = tmp_path / f"crmsweep-bulk-{gone.pid}-abc"
    live = tmp_path / f"crmsweep-bulk-{os.getpid()}-def"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "page-0.csv").write_text("Id\n003\n", encoding="utf-8")
    assert sweep_stale_pages(tmp_path) == [stale]
    assert not stale.exists() and (live / "page-0.csv").exists()
