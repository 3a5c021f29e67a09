"""Benchmark `crmsweep apply` and `crmsweep rollback` of Contact deletes: calls against the minimum, and
time against the number of earlier runs in the home.

Run on demand only (never from tests or CI), from the repository root:

    .venv/bin/python -m bench.rollback_bench --records 5000 --runs 2,12,50 --latency-ms 0,50 [--before eb093df]

The sandbox is seeded with `--records` records and served in this process (its threads answer while
the tools run as child processes, so client and server never share an interpreter). A scan proposes
its Contact deletes; the plan keeps those (signed by the home, as `accept` would). For each latency
and each count K of earlier runs, a fresh copy of the home holds K finished runs of other plans of the
same size, then `crmsweep apply PLAN --yes --json` and `crmsweep rollback RUN --yes --json` run as
subprocesses, each timed from spawn to exit; the sandbox counts the calls (`/__sandbox/stats`).
With `--before REV`, the same runs are made by the code of git revision REV (exported with
`git archive`, put first on the children's PYTHONPATH), side by side in the same sandbox.

The minimum (docs/design.md, "Apply and rollback at the minimum") for N deletes in W = ceil(N / 200)
batches, P = 500 ids per read: apply 2W + 2 + L (L: the live re-check's related reads, W per related
object the pass checks), rollback 2W + 2 + ceil(N / P).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from crmsweep import api
from crmsweep.backup.runlog import create_run
from crmsweep.cleanup.plan_auth import signed_json
from crmsweep.model import Op, Plan
from crmsweep.paths import Home
from crmsweep.providers.salesforce import SALESFORCE_CAPABILITIES
from crmsweep.sandbox.server import RunningSandbox, start_sandbox

TOKEN_ENV = "BENCH_TOKEN"  # the token travels by environment, never on a command line `ps` can show
CONNECTION = "bench"
SEED = 7
BATCH = SALESFORCE_CAPABILITIES.max_batch_write
PER_READ = SALESFORCE_CAPABILITIES.max_ids_per_read


@dataclass(frozen=True)
class Row:
    code: str
    latency_ms: int
    runs: int
    deletes: int
    apply_s: float
    apply_cpu: float
    apply_calls: int
    live_reads: int
    rollback_s: float
    rollback_cpu: float
    rollback_calls: int


def write_config(path: Path, sandbox: RunningSandbox) -> None:
    info = sandbox.info
    path.write_text(
        f'[connections.{CONNECTION}]\nprovider = "salesforce"\nurl = "{info.url}"\n'
        f'token_env = "{TOKEN_ENV}"\nca_file = "{info.ca_file}"\n',
        encoding="utf-8",
    )


def earlier_runs(home: Home, plan: Plan, count: int) -> None:
    """`count` finished runs of other plans (new ids, so other digests) of the same size, in `home`."""
    for number in range(count):
        other = Plan.build(replace(plan.header, plan_id=f"plan-20300101T000000Z-e{number:03d}"), plan.changes)
        handle = create_run(home, other, signed_json(other, home))
        for start in range(0, len(other.changes), BATCH):
            batch = range(start, min(start + BATCH, len(other.changes)))
            handle.append({"t": "intent", "batch": start // BATCH + 1, "op": "delete", "object": "Contact",
                           "changes": list(batch),
                           "records": [{"i": i, "id": other.changes[i].record_id, "before": other.changes[i].before}
                                       for i in batch]})
            handle.append({"t": "result", "batch": start // BATCH + 1,
                           "results": [{"i": i, "id": other.changes[i].record_id, "ok": True, "error_code": None,
                                        "message": None, "fingerprint_after": "2030-01-01T00:00:00.000Z"}
                                       for i in batch]})
        handle.append({"t": "end", "applied": len(other.changes), "skipped": 0, "failed": 0})


def child_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run_cli(argv: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float, dict[str, object]]:
    """Wall seconds, CPU seconds of the child (user + system: what a loaded machine distorts least)
    and its JSON answer."""
    cpu = child_cpu()
    started = time.perf_counter()
    # Not from the repository root: `-m` puts the working folder first on sys.path, before PYTHONPATH.
    done = subprocess.run([sys.executable, "-m", "crmsweep", *argv], capture_output=True, text=True, env=env,
                          timeout=1800, check=False, cwd=cwd)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"crmsweep {argv[0]} exited {done.returncode}: {done.stderr[-2000:]}")
    answer: dict[str, object] = json.loads(done.stdout)
    return elapsed, child_cpu() - cpu, answer


def measure(sandbox: RunningSandbox, workdir: Path, runs: int, code: str, pythonpath: str | None,
            latency_ms: int) -> Row:
    """A fresh home: a scan (the previous rollback changed every fingerprint), `runs` earlier runs, then
    the apply and the rollback, each a child process."""
    home = workdir / f"home-{code}-{latency_ms}-{runs}"
    ws = api.Workspace.load(workdir / "crmsweep.toml", home)
    scanned = api.scan(ws, CONNECTION, workdir / "scan.json").result.plan
    plan = Plan.build(scanned.header, [c for c in scanned.changes if c.op is Op.DELETE and c.object == "Contact"])
    plan_file = workdir / "plan.json"
    plan_file.write_text(signed_json(plan, ws.home), encoding="utf-8")
    earlier_runs(ws.home, plan, runs)
    env = {**os.environ, TOKEN_ENV: sandbox.info.token}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    common = ["--yes", "--json", "--config", str(workdir / "crmsweep.toml"), "--home", str(home)]
    sandbox.reset_stats()
    apply_s, apply_cpu, applied = run_cli(["apply", str(plan_file), *common], env, workdir)
    stats = sandbox.stats()
    apply_calls = int(stats["api_calls"])
    by_endpoint = stats["by_endpoint"]
    live_reads = int(by_endpoint.get("GET query", 0)) - 1  # all but the org id: the live re-check's reads
    if applied.get("applied") != len(plan.changes):
        raise RuntimeError(f"apply wrote {applied.get('applied')} of {len(plan.changes)}")
    sandbox.reset_stats()
    rollback_s, rollback_cpu, back = run_cli(["rollback", str(applied["run"]), *common], env, workdir)
    rollback_calls = sandbox.stats()["api_calls"]
    if back.get("applied") != len(plan.changes):
        raise RuntimeError(f"rollback wrote {back.get('applied')} of {len(plan.changes)}")
    shutil.rmtree(home)
    return Row(code, latency_ms, runs, len(plan.changes), apply_s, apply_cpu, apply_calls, live_reads, rollback_s,
               rollback_cpu, int(rollback_calls))


def minimum_apply(n: int, live_reads: int) -> int:
    return 2 * math.ceil(n / BATCH) + 2 + live_reads


def minimum_rollback(n: int) -> int:
    return 2 * math.ceil(n / BATCH) + 2 + math.ceil(n / PER_READ)


def markdown(rows: Sequence[Row]) -> str:
    lines = [
        "| code | latency | earlier runs | deletes | apply wall s | apply CPU s | apply calls (min; live re-check) "
        "| rollback wall s | rollback CPU s | rollback calls (min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.code} | {r.latency_ms} ms | {r.runs} | {r.deletes} | {r.apply_s:.2f} | {r.apply_cpu:.2f} | "
            f"{r.apply_calls} ({minimum_apply(r.deletes, r.live_reads)}; {r.live_reads}) | "
            f"{r.rollback_s:.2f} | {r.rollback_cpu:.2f} | {r.rollback_calls} ({minimum_rollback(r.deletes)}) |"
        )
    return "\n".join(lines)


def export(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision], capture_output=True, check=True).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--runs", default="2,12,50")
    parser.add_argument("--latency-ms", default="0,50")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--before", default=None, help="also measure this git revision, side by side")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.runs.split(",")]
    latencies = [int(x) for x in args.latency_ms.split(",")]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="rollback-bench-") as tmp:
        workdir = Path(tmp)
        codes: list[tuple[str, str | None]] = [("this", None)]
        if args.before:
            codes.insert(0, (args.before, str(export(args.before, workdir / "before"))))
        for latency in latencies:
            with start_sandbox(workdir / f"state-{latency}", records=args.records, seed=SEED,
                               api_limit=100_000_000, latency_ms=latency) as sandbox:
                write_config(workdir / "crmsweep.toml", sandbox)
                os.environ[TOKEN_ENV] = sandbox.info.token
                for runs in counts:
                    for code, path in codes:
                        samples = [measure(sandbox, workdir, runs, code, path, latency) for _ in range(args.repeat)]
                        row = replace(samples[0], apply_s=statistics.median(s.apply_s for s in samples),
                                      apply_cpu=statistics.median(s.apply_cpu for s in samples),
                                      rollback_s=statistics.median(s.rollback_s for s in samples),
                                      rollback_cpu=statistics.median(s.rollback_cpu for s in samples))
                        print(f"  {row}", file=sys.stderr)
                        rows.append(row)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
