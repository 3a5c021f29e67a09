"""Objects backed up concurrently against the sandbox: same snapshot as one at a time, every call counted,
and one object's failure fails the whole snapshot with nothing left behind."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from crmsweep import api
from crmsweep.backup import snapshot_writer
from crmsweep.backup.snapshot_writer import take_snapshot
from crmsweep.connectors.base import Connection
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.connectors.salesforce import SalesforceConnector
from crmsweep.connectors.salesforce_bulk_query import PollSchedule
from crmsweep.errors import ConnectorError
from crmsweep.model import SnapshotManifest
from crmsweep.paths import Home
from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.server import RunningSandbox, start_sandbox

OBJECTS = ("Contact", "Account", "Lead", "Task", "Opportunity")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path_factory.mktemp("conc"), records=600, seed=13) as running:
        yield running


@pytest.fixture
def sf(sandbox: RunningSandbox) -> Iterator[SalesforceConnector]:
    info = sandbox.info
    connection = Connection(name="conc", provider="salesforce", url=info.url, token=info.token,
                            ca_file=Path(info.ca_file))
    policy = RetryPolicy(attempts=3, initial_wait=0.0, max_wait=0.0, jitter=False, sleep=lambda _s: None)
    connector = SalesforceConnector(connection, retry=policy, query_batch_size=200, bulk_query_rows=500,
                                    bulk_polls=PollSchedule(first=0.001, longest=0.01))
    yield connector
    connector.close()
    sandbox.set_faults([])


def _tables(home: Path, manifest: SnapshotManifest) -> dict[str, object]:
    folder = home / "snapshots" / manifest.snapshot_id
    return {name: pq.read_table(folder / entry.file) for name, entry in manifest.objects.items()}


def test_concurrent_backup_equals_one_at_a_time_and_counts_every_call(
    sf: SalesforceConnector, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    one = take_snapshot(sf, Home(tmp_path / "one"), objects=OBJECTS, workers=1)
    sandbox.reset_stats()
    fresh = SalesforceConnector(sf.connection, retry=RetryPolicy.immediate(), query_batch_size=200,
                                bulk_query_rows=500, bulk_polls=PollSchedule(first=0.001, longest=0.01))
    many = take_snapshot(fresh, Home(tmp_path / "many"), objects=OBJECTS, workers=4)
    fresh.close()
    assert list(many.objects) == list(one.objects) == list(OBJECTS)  # manifest order is the asked order
    first, second = _tables(tmp_path / "one", one), _tables(tmp_path / "many", many)
    assert all(second[name].equals(first[name]) for name in OBJECTS)  # type: ignore[attr-defined]
    assert many.api_calls == sandbox.stats()["api_calls"] == one.api_calls


def test_objects_really_overlap(sf: SalesforceConnector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    active, peak = [0], [0]
    lock = threading.Lock()
    real = snapshot_writer._write_object

    def tracked(*args: object, **kwargs: object) -> object:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.05)
            return real(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(snapshot_writer, "_write_object", tracked)
    take_snapshot(sf, Home(tmp_path), objects=OBJECTS, workers=3)
    assert peak[0] == 3


def test_one_object_failing_fails_the_snapshot_and_stops_the_others(
    sf: SalesforceConnector, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    # Contact and Task (over the 500-row threshold) are read through jobs whose result pages never come;
    # the other objects are read over REST at the same time.
    sandbox.set_faults([FaultRule(kind="status", status=503, method="GET", path=r"/results$")])
    with pytest.raises(ConnectorError, match=r"bulk query (Contact|Task)"):
        take_snapshot(sf, Home(tmp_path), objects=OBJECTS, workers=4)
    assert os.listdir(tmp_path / "snapshots") == []  # no manifest, no partial folder
    assert not [t for t in threading.enumerate() if t.name.startswith(("backup", "bulk-page"))]
    assert sandbox.api._query_jobs._jobs == {}  # type: ignore[attr-defined]  # the job was deleted


def test_interrupt_in_a_worker_leaves_nothing_behind(sf: SalesforceConnector, tmp_path: Path) -> None:
    def progress(obj: str, rows: int, done: bool) -> None:
        if obj == "Task" and rows:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        take_snapshot(sf, Home(tmp_path), objects=OBJECTS, workers=4, progress=progress)
    assert os.listdir(tmp_path / "snapshots") == []
    assert not [t for t in threading.enumerate() if t.name.startswith("backup")]


def test_planned_totals_reach_the_progress(sf: SalesforceConnector, tmp_path: Path) -> None:
    planned: dict[str, tuple[int | None, str]] = {}
    finished: dict[str, int] = {}

    class Bars:
        def planned(self, obj: str, rows: int | None, method: str) -> None:
            planned[obj] = (rows, method)

        def __call__(self, obj: str, rows: int, done: bool) -> None:
            if done:
                finished[obj] = rows

    manifest = take_snapshot(sf, Home(tmp_path), objects=("Contact", "Account"), progress=Bars())
    assert planned == {"Contact": (600, "bulk"), "Account": (manifest.objects["Account"].rows, "rest")}
    assert finished == {name: entry.rows for name, entry in manifest.objects.items()}


def test_the_config_sets_workers_and_the_bulk_threshold(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = sandbox.info
    config = tmp_path / "crmsweep.toml"
    config.write_text(
        f'[connections.conc]\nprovider = "salesforce"\nurl = "{info.url}"\ntoken_env = "CONC_TOKEN"\n'
        f'ca_file = "{info.ca_file}"\n\n[backup]\nworkers = 2\nbulk_query_rows = 100\n', encoding="utf-8")
    monkeypatch.setenv("CONC_TOKEN", info.token)
    seen: dict[str, int] = {}
    real = snapshot_writer._write_objects

    def spy(connector: object, folder: Path, names: object, progress: object, live: object, workers: int) -> object:
        seen["workers"] = workers
        return real(connector, folder, names, progress, live, workers)  # type: ignore[arg-type]

    monkeypatch.setattr(snapshot_writer, "_write_objects", spy)
    sandbox.reset_stats()
    ws = api.Workspace.load(config, tmp_path / "home")
    manifest = api.backup(ws, "conc", ["Contact", "Account"])
    assert seen["workers"] == 2
    assert sandbox.stats()["by_endpoint"]["POST jobs/query"] == 2  # both objects are over 100 rows
    assert manifest.objects["Contact"].rows == 600
