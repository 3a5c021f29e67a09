"""Benchmark `crmsweep backup` of HubSpot contacts against the rate-limit bound and a naive SDK script.

Run on demand only (never from tests or CI), from the repository root:

    .venv/bin/python -m bench.hubspot_backup_bench --sizes 10000,100000 --repeat 3 --repeat-large 1

For each size N the HubSpot sandbox is seeded with N contacts in a temporary folder and served by
`crmsweep sandbox serve --provider hubspot` in its own process, enforcing the Professional tier
(190 calls per rolling 10 s). Each repetition then runs, side by side and in alternating order:

- crmsweep: `crmsweep backup -c bench --object contacts --json` as a subprocess;
- baseline: what an admin would otherwise write: hubspot-api-client `crm.contacts.get_all()` of
  every property into a pandas DataFrame, `to_parquet`, with the SDK's default retry (urllib3's
  `Retry(total=3)`, which honours `Retry-After` on a GET), in a fresh interpreter (`--naive-worker`).

Before every run the rate limits are set again (`POST /__sandbox-hubspot/rate-limits`), which
empties the windows, so both tools start on an idle portal. The bound: one list page carries at
most 100 records and the window admits 190 calls per 10 s, so no client can sustain more than
19 calls/s × 100 = 1,900 records/s; throughput is reported as a share of that. 429s come from the
sandbox's own count of refused calls, API calls from its call count (refused calls not included),
peak RSS from the child's own rusage.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from bench.backup_bench import (
    CONNECTION,
    TOKEN_ENV,
    Sandbox,
    SandboxProcess,
    child_env,
    machine,
    parse_sizes,
    run_child,
)

OBJECT = "contacts"
TIER = "professional"
TEN_SECONDLY = 190  # calls per rolling window, Professional (api-notes §4.1)
WINDOW_S = 10.0
PAGE = 100  # records per list page, HubSpot's maximum
BOUND_RECORDS_PER_S = TEN_SECONDLY / WINDOW_S * PAGE  # 1,900
TOOLS = ("baseline", "crmsweep")
LIMITS_PATH = "/__sandbox-hubspot/rate-limits"
SNAPSHOT_FIXED_CALLS = 6  # metadata documents of one call each: see minimum_calls


@dataclass(frozen=True)
class Measurement:
    wall_s: float
    peak_rss_mib: float
    api_calls: int  # answered calls, counted by the sandbox
    refused_429: int  # calls the sandbox refused with a 429, any policy
    by_endpoint: dict[str, int]
    rows: int | None  # None when the tool failed
    minimum: int  # the fewest calls that could fetch what this tool keeps (see minimum_calls)
    failure: str | None = None


def _refused(stats: Mapping[str, Any]) -> int:
    return sum(int(v) for v in dict(stats.get("rate_limited", {})).values())


def measured(sandbox: Sandbox, argv: Sequence[str]) -> tuple[float, float, str, dict[str, Any], int]:
    """Run `argv` on an idle portal: (wall, RSS, stdout, stats after, 429s during the run)."""
    sandbox.post(LIMITS_PATH, {"tier": TIER, "tenSecondly": TEN_SECONDLY})  # fresh, empty windows
    sandbox.reset_stats()
    refused_before = _refused(sandbox.stats())  # the sandbox's 429 count is cumulative: take the delta
    wall, rss, stdout = run_child(argv, child_env(sandbox))
    stats = sandbox.stats()
    return wall, rss, stdout, stats, _refused(stats) - refused_before


def write_config(path: Path, sandbox: Sandbox) -> None:
    path.write_text(
        f"[connections.{CONNECTION}]\n"
        'provider = "hubspot"\n'
        f"url = {json.dumps(sandbox.url)}\n"
        f'token_env = "{TOKEN_ENV}"\n'
        f"ca_file = {json.dumps(sandbox.ca_file)}\n",
        encoding="utf-8",
    )


def measure_crmsweep(sandbox: Sandbox, config: Path, home: Path) -> Measurement:
    argv = [
        sys.executable, "-m", "crmsweep", "backup", "-c", CONNECTION, "--object", OBJECT, "--json",
        "--config", str(config), "--home", str(home),
    ]
    wall, rss, stdout, stats, refused = measured(sandbox, argv)
    summary = json.loads(stdout)
    rows = int(summary["objects"][OBJECT])
    users = json.loads((Path(summary["path"]) / "metadata" / "users.json").read_text(encoding="utf-8"))
    _remove(home)
    return Measurement(wall, rss, int(stats["api_calls"]), refused, dict(stats["by_endpoint"]), rows,
                       minimum_calls(rows, users=len(users)))


def measure_baseline(sandbox: Sandbox, output: Path) -> Measurement:
    argv = [sys.executable, "-m", "bench.hubspot_backup_bench", "--naive-worker", sandbox.url, sandbox.ca_file,
            str(output)]
    wall, rss, stdout, stats, refused = measured(sandbox, argv)
    output.unlink(missing_ok=True)
    answer = json.loads(stdout)
    rows = answer.get("rows")
    return Measurement(wall, rss, int(stats["api_calls"]), refused, dict(stats["by_endpoint"]), rows,
                       data_minimum(rows or 0), answer.get("failure"))


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)  # keep the disk (and its page cache) from filling up


def naive_worker(url: str, ca_file: str, output: str) -> None:
    """The script a user would write without crmsweep. Runs in its own interpreter to be measured."""
    import pandas as pd
    from hubspot import HubSpot

    client = HubSpot(access_token=os.environ[TOKEN_ENV], host=url, ssl_ca_cert=ca_file)
    try:
        names = [p.name for p in client.crm.properties.core_api.get_all(OBJECT).results]
        records = client.crm.contacts.get_all(properties=names)
    except Exception as exc:  # what the admin sees: the script dies; report it instead of a traceback
        print(json.dumps({"rows": None, "failure": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}))
        return
    frame = pd.DataFrame([{"id": r.id, **r.properties} for r in records])
    frame.to_parquet(output)
    print(json.dumps({"rows": len(frame)}))


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class SizeResult:
    size: int
    seed_seconds: float
    runs: dict[str, list[Measurement]] = field(default_factory=lambda: {tool: [] for tool in TOOLS})


def list_pages(rows: int) -> int:
    return max(1, math.ceil(rows / PAGE))


def bench_size(size: int, repeat: int, workdir: Path, log: TextIO) -> SizeResult:
    folder = workdir / f"n{size}"
    folder.mkdir()
    log.write(f"[{size}] seeding the HubSpot sandbox ...\n")
    with SandboxProcess(folder / "state", size, folder / "sandbox.log", provider="hubspot") as served:
        sandbox = served.sandbox
        log.write(f"[{size}] seeded and serving in {served.seed_seconds:.1f} s\n")
        config = folder / "config.toml"
        write_config(config, sandbox)
        result = SizeResult(size, served.seed_seconds)
        for n in range(repeat):
            # Alternate the order so neither tool always runs right after the other's cache effects.
            for tool in TOOLS if n % 2 == 0 else tuple(reversed(TOOLS)):
                if tool == "crmsweep":
                    m = measure_crmsweep(sandbox, config, folder / f"home-{n}")
                else:
                    m = measure_baseline(sandbox, folder / f"naive-{n}.parquet")
                result.runs[tool].append(m)
                log.write(f"[{size}] {tool:<8} run {n + 1}/{repeat}: {m.wall_s:6.2f} s  {m.peak_rss_mib:7.1f} MiB  "
                          f"{m.api_calls} calls  {m.refused_429} x 429  {m.rows} rows"
                          f"{'  FAILED ' + m.failure if m.failure else ''}\n")
                log.write(f"[{size}]          by endpoint: {json.dumps(m.by_endpoint)}\n")
                log.flush()
    return result


# --- the report ------------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _span(values: Sequence[float], fmt: str) -> str:
    return format(min(values), fmt) if min(values) == max(values) else f"{min(values):{fmt}}–{max(values):{fmt}}"


def markdown_table(results: Sequence[SizeResult]) -> str:
    smallest = min(results, key=lambda r: r.size)
    base_rss = {tool: _median([m.peak_rss_mib for m in smallest.runs[tool]]) for tool in TOOLS}
    lines = [
        "| size | tool | runs | wall median (s) | wall min–max (s) | window floor (s) | records/s | share of bound "
        "| 429s (share of calls) | API calls | its minimum | × its minimum | × data minimum "
        "| peak RSS (MiB) | RSS vs smallest size |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in sorted(results, key=lambda r: r.size):
        rows = next((m.rows for runs in result.runs.values() for m in runs if m.rows is not None), result.size)
        for tool in TOOLS:
            runs = result.runs[tool]
            done = [m for m in runs if m.failure is None]
            walls = [m.wall_s for m in done] or [m.wall_s for m in runs]
            wall = _median(walls)
            rss = _median([m.peak_rss_mib for m in runs])
            calls = [m.api_calls for m in runs]
            refused = [m.refused_429 for m in runs]
            share_429 = _median([m.refused_429 / max(1, m.api_calls + m.refused_429) for m in runs])
            failed = len(runs) - len(done)
            rate = f"{rows / wall:,.0f}" if done else "—"
            share = f"{rows / wall / BOUND_RECORDS_PER_S:.0%}" if done else "—"
            own = max(m.minimum for m in runs)
            lines.append(
                f"| {result.size:,} | {tool} | {len(runs)}{f' ({failed} failed)' if failed else ''} | {wall:.1f} "
                f"| {_span(walls, '.1f')} | {window_floor(int(_median(calls))):.0f} | {rate} | {share} "
                f"| {_span(refused, 'd')} ({share_429:.1%}) | {_span(calls, 'd')} | {own} "
                f"| {_median(calls) / own:.3f}× | {_median(calls) / data_minimum(rows):.3f}× "
                f"| {rss:.0f} | {rss / base_rss[tool]:.2f}× |"
            )
    return "\n".join(lines)


def window_floor(calls: int) -> float:
    """The earliest the last of `calls` can be sent when the window starts empty: any 190 calls in a
    row span at least 10 s, so call k + 190·j waits until 10·j s. Below the steady 19 calls/s bound
    by up to one window, because an idle portal grants its first 190 calls at once."""
    return (max(calls, 1) - 1) // TEN_SECONDLY * WINDOW_S


def data_minimum(rows: int) -> int:
    """What any backup of the contacts' values needs: ceil(N/100) list pages + 1 property list."""
    return list_pages(rows) + 1


def minimum_calls(rows: int, *, users: int) -> int:
    """The least crmsweep could call for what its snapshot keeps: the data minimum, one page of
    archived contacts (the seed archives fewer than 100), and the metadata documents: archived
    property definitions, property groups, the account (the manifest's org id), lists, live and
    archived marketing emails (one page each here), and users at 100 a page."""
    return data_minimum(rows) + 1 + SNAPSHOT_FIXED_CALLS + list_pages(users)


def versions() -> str:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    return f"hubspot-api-client {version('hubspot-api-client')}, urllib3 {version('urllib3')}"


def failures(results: Sequence[SizeResult]) -> list[str]:
    return [f"{r.size:,} {tool} run {i + 1}: {m.failure}" for r in results for tool in TOOLS
            for i, m in enumerate(r.runs[tool]) if m.failure]


def check_rows(results: Sequence[SizeResult]) -> None:
    for result in results:
        rows = {m.rows for runs in result.runs.values() for m in runs if m.rows is not None}
        if len(rows) > 1:
            raise RuntimeError(f"size {result.size}: the tools backed up different row counts {sorted(rows)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hubspot_backup_bench",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=[10_000, 100_000],
                        help="contacts per run, e.g. 10000,100000")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs per tool at the smallest size")
    parser.add_argument("--repeat-large", type=int, default=1,
                        help="measured runs per tool at the other sizes (100k takes about a minute at the bound)")
    parser.add_argument("--naive-worker", nargs=3, metavar=("URL", "CA_FILE", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.naive_worker:
        naive_worker(*args.naive_worker)
        return 0
    if args.repeat < 1 or args.repeat_large < 1:
        parser.error("--repeat and --repeat-large must be at least 1")

    sizes = sorted(args.sizes)
    with tempfile.TemporaryDirectory(prefix="crmsweep-hsbench-") as tmp:
        workdir = Path(tmp)
        results = [bench_size(n, args.repeat if i == 0 else args.repeat_large, workdir, sys.stderr)
                   for i, n in enumerate(sizes)]
    check_rows(results)
    print(f"Machine: {machine()}, {versions()}\n")
    print(f"HubSpot contacts backup, tier {TIER} ({TEN_SECONDLY} calls per {WINDOW_S:.0f} s), medians; "
          f"bound = {BOUND_RECORDS_PER_S:,.0f} records/s; data minimum = ceil(N/{PAGE}) list pages + 1 "
          f"property list, crmsweep's own adds the archived page and the metadata documents (users paged); "
          f"seeding took {', '.join(f'{r.seed_seconds:.0f} s' for r in results)}.\n")
    print(markdown_table(results))
    for line in failures(results):
        print(f"\n- failed: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
