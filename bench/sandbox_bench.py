"""Benchmark the embedded sandbox itself: small answers per second, and query page time by page index.

Run on demand only (never from tests or CI), from the repository root:

    .venv/bin/python -m bench.sandbox_bench --before e419952 --records 200000 --repeat 3

Sandboxes run at once, each `crmsweep sandbox serve --latency-ms 0` in its own process: one from
the source at each git revision in `--before` (exported with `git archive` into a temporary
folder), and one from this checkout. Each is seeded with `--records` contacts in its own state
folder. Then, rotating which goes first, `--repeat` times each:

- tiny GET: `--calls` sequential `GET /services/data/v59.0/limits/` on one keep-alive connection
  (requests, as simple-salesforce uses it); the median call time and calls per second;
- paging: `SELECT Id, Name, Email FROM Contact` followed to its end through `nextRecordsUrl`
  (pages of 2,000); each page's time by page index, and the total.

The report (Markdown, medians over the repetitions) goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
SEED = 7
START_TIMEOUT_S = 900.0
QUERY = "SELECT Id, Name, Email FROM Contact"
API = "/services/data/v59.0"


@dataclass(frozen=True)
class Served:
    label: str
    url: str
    session: requests.Session


@contextmanager
def serve(label: str, source_root: Path, state: Path, records: int) -> Iterator[Served]:
    """`crmsweep sandbox serve` from `source_root`'s crmsweep package, until the block ends."""
    argv = [sys.executable, "-m", "crmsweep", "sandbox", "serve", "--state", str(state), "--records",
            str(records), "--seed", str(SEED), "--api-limit", "100000000", "--latency-ms", "0"]
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    # cwd first on sys.path: `-m crmsweep` imports that tree's package, not the installed one.
    proc = subprocess.Popen(argv, cwd=source_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=START_TIMEOUT_S):
                raise RuntimeError(f"{label}: the sandbox did not start within {START_TIMEOUT_S:.0f} s")
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{label}: the sandbox exited before it was ready")
        info = json.loads(line)
        session = requests.Session()
        session.trust_env = False
        session.verify = info["ca_file"]
        session.headers.update({"Authorization": f"Bearer {info['token']}", "Content-Type": "application/json"})
        yield Served(label, info["url"], session)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tiny_gets(served: Served, calls: int) -> list[float]:
    """Seconds per call of a small GET, one keep-alive connection."""
    url = f"{served.url}{API}/limits/"
    served.session.get(url).raise_for_status()  # connection and TLS set up outside the timing
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        served.session.get(url).raise_for_status()
        times.append(time.perf_counter() - started)
    return times


def page_times(served: Served) -> tuple[list[float], int]:
    """Seconds per page (index 0 = the first query call) and the rows read."""
    times, rows = [], 0
    started = time.perf_counter()
    answer = served.session.get(f"{served.url}{API}/query/", params={"q": QUERY})
    while True:
        answer.raise_for_status()
        body = answer.json()
        times.append(time.perf_counter() - started)
        rows += len(body["records"])
        if body["done"]:
            return times, rows
        started = time.perf_counter()
        answer = served.session.get(f"{served.url}{body['nextRecordsUrl']}")


def export(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "crmsweep"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def median_ms(values: Sequence[float]) -> float:
    return statistics.median(values) * 1000


def band_ms(runs: Sequence[Sequence[float]], lo: int, hi: int) -> float:
    """Median ms of the follow-up pages lo..hi-1 over all runs."""
    count = min(len(run) for run in runs)
    return median_ms([run[i] for run in runs for i in range(max(lo, 1), min(hi, count))])


def slope_ms(times: Sequence[float]) -> float:
    """Least-squares ms per page index over the follow-up pages (index 1 on)."""
    points = list(enumerate(times))[1:]
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return num / den * 1000 if den else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="e419952",
                        help="git revision(s) to compare with this checkout, comma-separated")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        revisions = [r.strip() for r in args.before.split(",") if r.strip()]
        print(f"seeding {len(revisions) + 1} sandboxes with {args.records:,} contacts ...", file=sys.stderr)
        variants = []
        for n, revision in enumerate(revisions):
            (root / f"src-{n}").mkdir()
            source = export(revision, root / f"src-{n}")
            variants.append(stack.enter_context(serve(revision, source, root / f"state-{n}", args.records)))
        variants.append(stack.enter_context(serve("this checkout", REPO, root / "state-checkout", args.records)))
        gets: dict[str, list[float]] = {v.label: [] for v in variants}
        pages: dict[str, list[list[float]]] = {v.label: [] for v in variants}
        rows: dict[str, set[int]] = {v.label: set() for v in variants}
        for n in range(args.repeat):
            for served in variants[n % len(variants):] + variants[: n % len(variants)]:  # rotate who goes first
                print(f"run {n + 1}: {served.label}", file=sys.stderr)
                gets[served.label].extend(tiny_gets(served, args.calls))
                times, count = page_times(served)
                pages[served.label].append(times)
                rows[served.label].add(count)
        report(args, variants, gets, pages, rows)
    return 0


def report(
    args: argparse.Namespace,
    variants: Sequence[Served],
    gets: dict[str, list[float]],
    pages: dict[str, list[list[float]]],
    rows: dict[str, set[int]],
) -> None:
    print(f"Machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}; "
          f"{args.records:,} contacts, --latency-ms 0, {args.repeat} runs of each, rotating which goes first.\n")
    print("| sandbox | tiny GET median (ms) | calls/s | first page (ms) | pages 1–10 (ms) | middle 10 pages (ms) "
          "| last 10 pages (ms) | ms per page index | all pages (s) | rows |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for served in variants:
        runs = pages[served.label]
        count = min(len(run) for run in runs)
        per_index = [statistics.median(run[i] for run in runs) for i in range(count)]
        middle = count // 2

        tiny = median_ms(gets[served.label])
        counts = ", ".join(map(str, sorted(rows[served.label])))
        print(f"| {served.label} | {tiny:.2f} | {1000 / tiny:.0f} | {median_ms([run[0] for run in runs]):.0f} "
              f"| {band_ms(runs, 1, 11):.0f} | {band_ms(runs, middle - 5, middle + 5):.0f} "
              f"| {band_ms(runs, count - 10, count):.0f} "
              f"| {slope_ms(per_index):.3f} | {statistics.median(sum(run) for run in runs):.2f} | {counts} |")


if __name__ == "__main__":
    raise SystemExit(main())
