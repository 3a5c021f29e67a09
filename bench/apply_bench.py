"""Benchmark apply and rollback of N Contact deletes (the Bulk API 2.0 ingest path) against the naive
script an admin would otherwise write.

Run on demand only (never from tests or CI), from the repository root:

    .venv/bin/python -m bench.apply_bench --sizes 5000,50000 --latencies 0,50 > result.md

For each latency the sandbox is served by `crmsweep sandbox serve --latency-ms L` in its own process
(so its CPU is not charged to the client), seeded once with a small org to which one Bulk insert job
adds contacts up to the largest size (not measured). For each
size N, side by side in one run:

- crmsweep apply: the library's `apply_plan` of a signed plan of N deletes (built from a snapshot, as a
  pass would propose them): drift read, intent, one Bulk job, read-back of the fingerprints;
- crmsweep rollback: `build_rollback_plan` + `apply_plan` of its undeletes (SOAP, 200 a call: Bulk API 2.0
  has no undelete);
- naive: simple-salesforce's `sf.bulk2.Contact.delete(records=[{"Id": ...}])` of the same ids, no
  backup, no drift check, no log; its records are then put back (untimed) for the next run.

API calls are counted by the sandbox (`/__sandbox/stats`, reset before each measured step). The
minimum for each path (k = ids one read query holds, 500; s = 200 records per SOAP undelete call):
- apply (one Bulk job): 1 org id + ceil(N/k) drift reads + 4 job calls (create, upload, close, one
  poll) + ceil(N/k) read-backs = 5 + 2 ceil(N/k); the describes come from the plan's snapshot, and a
  delete job's CSV (ids only) needs none;
- rollback (undelete, W = ceil(N/s) calls): 1 org id + 1 drift read of the first batch + W undeletes +
  W read-backs (each also the next batch's drift read: the one call between two writes) = 2 + 2W.
  This is the library path (`build_rollback_plan` + `apply_plan`); `crmsweep rollback` adds ceil(N/k)
  recycle-bin reads before the admin confirms;
- naive Bulk delete: 4 (create, upload, close, one poll), plus simple-salesforce's closing job GET.
Polls beyond the first are waiting, not work: the table shows them apart, and a table of calls by
endpoint follows the main one.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from simple_salesforce.api import Salesforce

from bench.backup_bench import Sandbox, SandboxProcess
from crmsweep.backup.rollback import build_rollback_plan, mark_rolled_back
from crmsweep.backup.snapshot import open_snapshot
from crmsweep.backup.snapshot_writer import take_snapshot
from crmsweep.cleanup.apply import ApplyReport, apply_plan
from crmsweep.cleanup.labels import record_label
from crmsweep.cleanup.live_check import ApplyTimeRules
from crmsweep.cleanup.passes import PASSES, PassContext, PassOutput, PassSpec, Proposal
from crmsweep.cleanup.plan_auth import signed_json
from crmsweep.connectors.base import Connection
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.connectors.salesforce import SalesforceConnector
from crmsweep.model import Change, Op, Plan, PlanHeader
from crmsweep.paths import Home
from crmsweep.providers.salesforce import SALESFORCE_CAPABILITIES, SALESFORCE_VOCABULARY

PASS_NAME = "bench_deletes"
UNDELETE_PER_CALL = 200
# The sandbox seeds a small org (seeding scales every object with --records and is slow at 50k);
# the contacts the benchmark deletes are then loaded by one Bulk insert job (not measured).
SEED_RECORDS = 2000


def _nothing(ctx: PassContext) -> PassOutput:
    return PassOutput(changes=[])


BENCH_PASS = PassSpec(name=PASS_NAME, summary="N Contact deletes for the apply benchmark.", order=99,
                      defaults={}, run=_nothing, proposes=(Proposal(Op.DELETE, objects=lambda v: ("Contact",)),))
# Every contact is fair game here: the protection of recent records would hold some back.
RULES = ApplyTimeRules(recent_days=0)


@dataclass(frozen=True)
class Step:
    wall_s: float
    calls: int
    polls: int
    by_endpoint: dict[str, int]


@dataclass(frozen=True)
class Row:
    latency_ms: int
    size: int
    apply: Step
    rollback: Step
    naive: Step


def connector_for(sandbox: Sandbox) -> SalesforceConnector:
    connection = Connection(name="bench", provider="salesforce", url=sandbox.url, token=sandbox.token,
                            ca_file=Path(sandbox.ca_file))
    return SalesforceConnector(connection, retry=RetryPolicy(attempts=5))


def measured(sandbox: Sandbox, action: Any) -> tuple[Step, Any]:
    sandbox.reset_stats()
    started = time.perf_counter()
    result = action()
    wall = time.perf_counter() - started
    stats = sandbox.stats()
    by = {k: int(v) for k, v in stats["by_endpoint"].items()}
    # Every GET of a job but the one that saw it end is a poll spent waiting.
    polls = by.get("GET jobs/ingest", 0)
    return Step(wall, int(stats["api_calls"]), polls, by), result


def delete_plan(connector: SalesforceConnector, home: Home, ids: Sequence[str]) -> tuple[Plan, str]:
    snapshot_id = take_snapshot(connector, home, objects=["Contact"]).snapshot_id
    before = open_snapshot(home, snapshot_id).record_map("Contact", list(ids))
    changes = [Change(op=Op.DELETE, object="Contact", record_id=rid, before=dict(before[rid]), after={},
                      reason="bench", pass_name=PASS_NAME, fingerprint=before[rid]["SystemModstamp"],
                      label=record_label(SALESFORCE_VOCABULARY, "Contact", before[rid])) for rid in ids]
    header = PlanHeader(plan_id="plan-20300101T000000Z-0001", created="2030-01-01T00:00:00.000Z",
                        tool_version="bench", provider="salesforce", org_id=connector.org_id(),
                        connection="bench", source={"kind": "snapshot", "id": snapshot_id}, passes=(PASS_NAME,))
    plan = Plan.build(header, changes)
    return plan, signed_json(plan, home)


def crmsweep_steps(sandbox: Sandbox, ids: Sequence[str], workdir: Path) -> tuple[Step, Step]:
    home = Home(workdir / f"home-{len(ids)}-{time.monotonic_ns()}")
    connector = connector_for(sandbox)
    plan, text = delete_plan(connector, home, ids)
    connector.close()

    def do_apply() -> ApplyReport:
        fresh = connector_for(sandbox)  # as a new `crmsweep apply` process would: no cached describe
        try:
            return apply_plan(plan, text, fresh, home, rules=RULES)
        finally:
            fresh.close()

    applied_step, applied = measured(sandbox, do_apply)
    if (applied.applied, applied.failed, applied.stopped) != (len(ids), 0, None):
        raise RuntimeError(f"apply of {len(ids)} deletes did not go through: {applied.stopped or applied.failed}")

    def do_rollback() -> ApplyReport:
        fresh = connector_for(sandbox)
        try:
            back = build_rollback_plan(home, applied.run_id, now=datetime.now(UTC), vocabulary=fresh.vocabulary)
            report = apply_plan(back, signed_json(back, home), fresh, home, rules=RULES)
            mark_rolled_back(home, applied.run_id, report.run_id)
            return report
        finally:
            fresh.close()

    rollback_step, back = measured(sandbox, do_rollback)
    if (back.applied, back.failed, back.stopped) != (len(ids), 0, None):
        raise RuntimeError(f"rollback of {len(ids)} deletes did not go through: {back.stopped or back.failed}")
    return applied_step, rollback_step


def naive_step(sandbox: Sandbox, ids: Sequence[str]) -> Step:
    session = requests.Session()
    session.trust_env = False
    session.verify = sandbox.ca_file

    def do_delete() -> Any:
        # Any: simple-salesforce types `sf.bulk2.<Object>` as a union with its other handlers.
        sf: Any = Salesforce(instance_url=sandbox.url, session_id=sandbox.token, session=session, version="59.0")
        return sf.bulk2.Contact.delete(records=[{"Id": rid} for rid in ids])

    step, results = measured(sandbox, do_delete)
    if sum(r["numberRecordsProcessed"] - r["numberRecordsFailed"] for r in results) != len(ids):
        raise RuntimeError(f"the naive delete did not delete all {len(ids)}: {results}")
    connector = connector_for(sandbox)  # put them back for the next run (not measured)
    try:
        for start in range(0, len(ids), UNDELETE_PER_CALL):
            connector.undelete("Contact", list(ids[start:start + UNDELETE_PER_CALL]))
    finally:
        connector.close()
    return step


def load_contacts(sandbox: Sandbox, count: int) -> None:
    session = requests.Session()
    session.trust_env = False
    session.verify = sandbox.ca_file
    # Any: simple-salesforce types `sf.bulk2.<Object>` as a union with its other handlers.
    sf: Any = Salesforce(instance_url=sandbox.url, session_id=sandbox.token, session=session, version="59.0")
    have = int(sf.query("SELECT COUNT() FROM Contact")["totalSize"])
    if have < count:
        sf.bulk2.Contact.insert(records=[{"LastName": f"Bench {n}", "FirstName": "Ana", "Email": f"b{n}@example.com"}
                                         for n in range(count - have)])


def oldest_contacts(sandbox: Sandbox, count: int) -> list[str]:
    connector = connector_for(sandbox)
    try:
        ids = sorted(r["Id"] for page in connector.iter_pages("Contact", ["Id"]) for r in page)
    finally:
        connector.close()
    if len(ids) < count:
        raise RuntimeError(f"the sandbox holds {len(ids)} contacts, fewer than {count}")
    return ids[:count]


def ids_per_read() -> int:
    return SALESFORCE_CAPABILITIES.max_ids_per_read


def minimum(path: str, size: int) -> int:
    k = ids_per_read()
    if path == "apply":
        return 5 + 2 * math.ceil(size / k)
    if path == "rollback":
        return 2 + 2 * math.ceil(size / UNDELETE_PER_CALL)
    return 4


def markdown(rows: Sequence[Row]) -> str:
    lines = [
        "| latency | N | tool | wall (s) | API calls | minimum | calls / minimum | polls | vs naive |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for name, step, path in (("naive bulk2 delete", row.naive, "naive"), ("crmsweep apply", row.apply, "apply"),
                                 ("crmsweep rollback", row.rollback, "rollback")):
            least = minimum(path, row.size)
            # Polls beyond the first are waiting for the job: the minimum counts one.
            work = step.calls - max(step.polls - 1, 0)
            ratio = f"{step.wall_s / row.naive.wall_s:.2f}x" if name != "naive bulk2 delete" else ""
            lines.append(
                f"| {row.latency_ms} ms | {row.size:,} | {name} | {step.wall_s:.2f} | {step.calls} "
                f"({work} without extra polls) | {least} | {work / least:.2f} | {step.polls} | {ratio} |"
            )
    lines += ["", "Calls by endpoint (sandbox `/__sandbox/stats`):", "",
              "| latency | N | tool | calls by endpoint |", "|---:|---:|---|---|"]
    for row in rows:
        for name, step in (("naive bulk2 delete", row.naive), ("crmsweep apply", row.apply),
                           ("crmsweep rollback", row.rollback)):
            spent = ", ".join(f"{endpoint} {count}" for endpoint, count in sorted(step.by_endpoint.items()))
            lines.append(f"| {row.latency_ms} ms | {row.size:,} | {name} | {spent} |")
    return "\n".join(lines)


def machine() -> str:
    return f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,50000")
    parser.add_argument("--latencies", default="0,50")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    latencies = [int(s) for s in args.latencies.split(",")]
    PASSES[PASS_NAME] = BENCH_PASS
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="apply-bench-") as temp:
        workdir = Path(temp)
        state = workdir / "state"
        for latency in latencies:
            log = workdir / f"sandbox-{latency}.log"
            with SandboxProcess(state, SEED_RECORDS, log, latency_ms=latency) as served:
                sandbox = served.sandbox
                load_contacts(sandbox, max(sizes))
                print(f"sandbox at {latency} ms ready ({served.seed_seconds:.0f} s)", file=sys.stderr)
                for size in sizes:
                    ids = oldest_contacts(sandbox, size)
                    naive = naive_step(sandbox, ids)
                    applied, rolled_back = crmsweep_steps(sandbox, ids, workdir)
                    rows.append(Row(latency, size, applied, rolled_back, naive))
                    print(f"{latency} ms, N={size}: naive {naive.wall_s:.1f} s, apply {applied.wall_s:.1f} s, "
                          f"rollback {rolled_back.wall_s:.1f} s", file=sys.stderr)
    print(f"Machine: {machine()}; k = {ids_per_read()} ids per read query\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
