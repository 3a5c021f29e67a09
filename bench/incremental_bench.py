"""Benchmark `crmsweep backup --incremental` after 1% of the contacts changed, against a full backup.

Run on demand only (never from tests or CI), from the repository root:

    .venv/bin/python -m bench.incremental_bench --size 100000 --latency-ms 0,50 --repeat 3

The sandbox is seeded once with `--size` contacts and served by `crmsweep sandbox serve` in its own
process, once per latency (the same state folder, served again with `--latency-ms N`). Each
repetition, in a fresh home:

1. `crmsweep backup -c bench --object Contact --json` (the parent; not measured);
2. 1% of the contacts change through the API, as an admin's users would change them: 0.8% updated,
   0.2% deleted (sObject Collections, 200 a call; not measured);
3. measured side by side, alternating order: `crmsweep backup --incremental` (the new snapshot reads
   as a full copy), `crmsweep backup` (full) and the naive script of `backup_bench` (a full
   simple-salesforce `query_all` to Parquet: what an admin would otherwise run each night).

Wall time is spawn to exit of each child (interpreter start-up and imports included; the table
shows that floor, `crmsweep --help`, measured in the same round); API calls are counted by the
sandbox. The target (issue 8): the incremental at most 5% of a full backup's time and calls. The
output is a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import requests
from simple_salesforce.api import Salesforce

from bench.backup_bench import (
    CONNECTION,
    OBJECT,
    Sandbox,
    SandboxProcess,
    child_env,
    measure_baseline,
    run_child,
    write_config,
)

CHANGED = 0.01  # of the contacts, per repetition
DELETED_SHARE = 0.2  # of the changed ones
BATCH = 200  # records per sObject Collections call
TOOLS = ("incremental", "full", "baseline")


@dataclass
class Run:
    wall_s: float
    calls: int
    rows: int


@dataclass
class LatencyResult:
    latency_ms: int
    runs: dict[str, list[Run]] = field(default_factory=lambda: {t: [] for t in TOOLS})
    startup: list[float] = field(default_factory=list)


def backup(sandbox: Sandbox, config: Path, home: Path, *, incremental: bool) -> Run:
    argv = [sys.executable, "-m", "crmsweep", "backup", "-c", CONNECTION, "--object", OBJECT, "--json",
            "--config", str(config), "--home", str(home), *(["--incremental"] if incremental else [])]
    sandbox.reset_stats()
    wall, _rss, stdout = run_child(argv, child_env(sandbox))
    summary: dict[str, Any] = json.loads(stdout)
    if incremental and summary.get("parent") is None:
        raise RuntimeError("the incremental backup found no parent snapshot")
    return Run(wall, sandbox.api_calls(), int(summary["objects"][OBJECT]))


def change_one_percent(sandbox: Sandbox, round_no: int) -> None:
    session = requests.Session()
    session.trust_env = False
    session.verify = sandbox.ca_file
    sf = Salesforce(instance_url=sandbox.url, session_id=sandbox.token, session=session)
    ids = [r["Id"] for r in sf.query_all(f"SELECT Id FROM {OBJECT}")["records"]]
    count = max(1, int(len(ids) * CHANGED))
    chosen = ids[round_no :: max(1, len(ids) // count)][:count]
    deleted = chosen[: int(count * DELETED_SHARE)]
    updated = chosen[len(deleted) :]
    for start in range(0, len(updated), BATCH):
        records = [{"attributes": {"type": OBJECT}, "id": i, "Title": f"Changed in round {round_no}"}
                   for i in updated[start : start + BATCH]]
        sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records})
    for start in range(0, len(deleted), BATCH):
        sf.restful("composite/sobjects", method="DELETE",
                   params={"ids": ",".join(deleted[start : start + BATCH]), "allOrNone": "false"})


def bench_latency(state: Path, size: int, latency: int, repeat: int, folder: Path, log: TextIO) -> LatencyResult:
    result = LatencyResult(latency)
    with SandboxProcess(state, size, folder / f"sandbox-{latency}.log",
                        latency_ms=latency) as served:
        sandbox = served.sandbox
        config = folder / f"config-{latency}.toml"
        write_config(config, sandbox)
        for n in range(repeat):
            home = folder / f"home-{latency}-{n}"
            backup(sandbox, config, home, incremental=False)
            change_one_percent(sandbox, latency + n)
            order = TOOLS if n % 2 == 0 else tuple(reversed(TOOLS))
            for tool in order:
                if tool == "baseline":
                    m = measure_baseline(sandbox, folder / "naive.parquet", (OBJECT,))  # what the backups take
                    run = Run(m.wall_s, m.api_calls, m.rows)
                else:
                    run = backup(sandbox, config, home, incremental=tool == "incremental")
                result.runs[tool].append(run)
                log.write(f"[{latency} ms] {tool:<11} run {n + 1}/{repeat}: {run.wall_s:6.2f} s  {run.calls} calls  "
                          f"{run.rows} rows\n")
                log.flush()
            # What any crmsweep command costs before its first call: interpreter start-up and imports.
            wall, _rss, _out = run_child([sys.executable, "-m", "crmsweep", "--help"], child_env(sandbox))
            result.startup.append(wall)
            rows = {tool: result.runs[tool][-1].rows for tool in TOOLS}
            if len(set(rows.values())) != 1:
                raise RuntimeError(f"the backups disagree on the number of rows: {rows}")
    return result


def markdown(size: int, results: Sequence[LatencyResult]) -> str:
    lines = [
        f"Contacts: {size:,}; {CHANGED:.0%} changed before each measured round "
        f"({1 - DELETED_SHARE:.0%} of them updated, {DELETED_SHARE:.0%} deleted).",
        "",
        "| latency | tool | wall median (s) | vs full backup | API calls | calls vs full |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for result in results:
        full_wall = statistics.median(r.wall_s for r in result.runs["full"])
        full_calls = statistics.median(r.calls for r in result.runs["full"])
        for tool in TOOLS:
            runs = result.runs[tool]
            wall = statistics.median(r.wall_s for r in runs)
            calls = statistics.median(r.calls for r in runs)
            lines.append(f"| {result.latency_ms} ms | {tool} | {wall:.2f} | {wall / full_wall:.1%} | {calls:.0f} "
                         f"| {calls / full_calls:.1%} |")
        startup = statistics.median(result.startup)
        lines.append(f"| {result.latency_ms} ms | `crmsweep --help` (start-up floor) | {startup:.2f} "
                     f"| {startup / full_wall:.1%} | 0 | |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--latency-ms", default="0,50", help="comma-separated latencies to serve at")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    latencies = [int(v) for v in args.latency_ms.split(",") if v.strip()]
    with tempfile.TemporaryDirectory(prefix="crmsweep-incremental-bench-") as tmp:
        folder = Path(tmp)
        results = [bench_latency(folder / "state", args.size, latency, args.repeat, folder, sys.stderr)
                   for latency in latencies]
    sys.stdout.write(markdown(args.size, results))


if __name__ == "__main__":
    main()
