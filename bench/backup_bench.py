"""Benchmark `crmsweep backup` of Contact against the naive simple-salesforce + pandas script.

Run on demand only (never from tests or CI), from the repository root:

    .venv/bin/python -m bench.backup_bench --sizes 10000,100000 --latency-ms 0,50 --repeat 3 [--all-objects]

`--latency-ms` serves the same seeded sandbox once per latency (`crmsweep sandbox serve --latency-ms`),
so a real network's round trip can be charged to every call. `--all-objects` backs up every object of
Salesforce's standard backup set instead of Contact alone (the naive script reads them one after the
other, as a user's loop would).

For each size N the embedded sandbox is seeded with N contacts in a temporary folder and served
by `crmsweep sandbox serve` in its own process, so the server's CPU and memory are not charged to
the client. Each repetition then runs, side by side and in alternating order:

- crmsweep: `crmsweep backup -c bench --object Contact --json` as a subprocess;
- baseline: what an admin would otherwise write — `Salesforce(session_id=...)`, `query_all` of every
  describe field, a pandas DataFrame, `to_parquet` — in a fresh interpreter (this module's
  `--naive-worker` mode).

Each measurement is a fresh child process: wall time from spawn to exit, and peak RSS from that
child's own rusage (`os.wait4`), so no other process's peak can leak into it. API calls are
counted by the sandbox (`/__sandbox/stats`, reset before every run) and, for crmsweep, compared
with the count it reports in its JSON. The REST minimum is one describe plus ceil(N / 2000) query
pages per object; the Bulk minimum (objects over 10,000 rows) is one describe, one job creation, one
status poll and ceil(N / 50,000) result pages. The output is a Markdown table of medians and ratios.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import pstats
import selectors
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

TOKEN_ENV = "BENCH_TOKEN"  # the token travels by environment, never on a command line `ps` can show
CONNECTION = "bench"
OBJECT = "Contact"
REST_PAGE = 2000  # Salesforce's default (and maximum) REST query page
BULK_PAGE = 50_000  # rows per Bulk result page crmsweep asks for
BULK_OVER = 10_000  # crmsweep's default threshold for the Bulk path
SEED = 7
SEED_TIMEOUT_S = 3600.0  # seeding 100k took over 10 minutes on the loaded 2-core box
RUN_TIMEOUT_S = 1800.0
TOOLS = ("baseline", "crmsweep")


# --- the sandbox, in its own process ---------------------------------------------------------------


@dataclass(frozen=True)
class Sandbox:
    url: str
    ca_file: str
    token: str

    def _admin(self, path: str, method: str, payload: object = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        context = ssl.create_default_context(cafile=self.ca_file)
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def reset_stats(self) -> None:
        self._admin("/__sandbox/reset-stats", "POST")

    def api_calls(self) -> int:
        return int(self.stats()["api_calls"])

    def stats(self) -> dict[str, Any]:
        return self._admin("/__sandbox/stats", "GET")

    def post(self, path: str, payload: object) -> dict[str, Any]:
        return self._admin(path, "POST", payload)


class SandboxProcess:
    """`crmsweep sandbox serve` seeded with `records` contacts; stopped with SIGTERM on exit."""

    def __init__(self, state_dir: Path, records: int, log: Path, *, provider: str = "salesforce",
                 latency_ms: int = 0) -> None:
        self._log = log
        argv = [
            sys.executable, "-m", "crmsweep", "sandbox", "serve", "--provider", provider, "--state", str(state_dir),
            "--records", str(records), "--seed", str(SEED), "--latency-ms", str(latency_ms),
            # A generous allowance: repeated runs at 100k must never hit the simulated daily limit.
            "--api-limit", "100000000", "--latency-ms", str(latency_ms),
        ]
        with log.open("wb") as stderr:
            self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True)
        started = time.perf_counter()
        try:
            info = json.loads(self._first_line())
        except BaseException:
            self.stop()
            raise
        self.seed_seconds = time.perf_counter() - started
        self.sandbox = Sandbox(url=info["url"], ca_file=info["ca_file"], token=info["token"])

    def _first_line(self) -> str:
        stdout = self._proc.stdout
        assert stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            if not selector.select(timeout=SEED_TIMEOUT_S):
                raise RuntimeError(f"the sandbox did not start within {SEED_TIMEOUT_S:.0f} s; see {self._log}")
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the sandbox exited before it was ready; see {self._log}")
        return line

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- one measured child process --------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    wall_s: float
    peak_rss_mib: float
    api_calls: int  # counted by the sandbox
    reported_calls: int | None  # what the tool says it used, if it says
    rows: int
    objects: dict[str, int] = field(default_factory=dict)  # rows per object, where the tool says


def run_child(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run `argv` to completion: (wall seconds, peak RSS in MiB, stdout). Fails on a non-zero exit."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, env=env)
        # wait4 returns this one child's rusage: ru_maxrss is its own peak, not the max over all
        # children this process ever reaped (which is what RUSAGE_CHILDREN would give).
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            tail = err.read().decode("utf-8", "replace").strip().splitlines()[-5:]
            raise RuntimeError(f"{argv[2:5]} exited with {proc.returncode}: " + " | ".join(tail))
        return wall, usage.ru_maxrss / 1024, out.read().decode("utf-8")  # Linux reports KiB


def child_env(sandbox: Sandbox) -> dict[str, str]:
    env = dict(os.environ)
    env[TOKEN_ENV] = sandbox.token
    return env


def write_config(path: Path, sandbox: Sandbox) -> None:
    path.write_text(
        f"[connections.{CONNECTION}]\n"
        'provider = "salesforce"\n'
        f"url = {json.dumps(sandbox.url)}\n"
        f'token_env = "{TOKEN_ENV}"\n'
        f"ca_file = {json.dumps(sandbox.ca_file)}\n",
        encoding="utf-8",
    )


def measure_crmsweep(sandbox: Sandbox, config: Path, home: Path, objects: Sequence[str]) -> Measurement:
    argv = [
        sys.executable, "-m", "crmsweep", "backup", "-c", CONNECTION, *[a for o in objects for a in ("--object", o)],
        "--json", "--config", str(config), "--home", str(home),
    ]
    sandbox.reset_stats()
    wall, rss, stdout = run_child(argv, child_env(sandbox))
    calls = sandbox.api_calls()
    summary = json.loads(stdout)
    shutil.rmtree(home, ignore_errors=True)  # keep the disk (and its page cache) from filling up
    rows = {str(k): int(v) for k, v in summary["objects"].items()}
    return Measurement(wall, rss, calls, int(summary["api_calls"]), sum(rows.values()), rows)


def measure_baseline(sandbox: Sandbox, output: Path, objects: Sequence[str]) -> Measurement:
    argv = [sys.executable, "-m", "bench.backup_bench", "--naive-worker", sandbox.url, sandbox.ca_file, str(output),
            ",".join(objects)]
    sandbox.reset_stats()
    wall, rss, stdout = run_child(argv, child_env(sandbox))
    calls = sandbox.api_calls()
    for name in objects:
        output.with_name(f"{output.stem}-{name}.parquet").unlink(missing_ok=True)
    return Measurement(wall, rss, calls, None, int(json.loads(stdout)["rows"]))


def naive_worker(url: str, ca_file: str, output: str, objects: str) -> None:
    """The script a user would write without crmsweep: one object after the other, each read with
    `query_all` into a DataFrame and written with `to_parquet`. Runs in its own interpreter to be measured."""
    import pandas as pd
    import requests
    from simple_salesforce.api import Salesforce, SFType

    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides `verify` (see api-notes 1.2)
    session.verify = ca_file
    sf = Salesforce(instance_url=url, session_id=os.environ[TOKEN_ENV], session=session)
    rows = 0
    for name in objects.split(","):
        sobject = getattr(sf, name)  # sf.Contact, as a user types it; the assert narrows the union for mypy
        assert isinstance(sobject, SFType)
        fields = [f["name"] for f in sobject.describe()["fields"] if f["type"] not in ("address", "location")]
        result = sf.query_all(f"SELECT {', '.join(fields)} FROM {name}")
        frame = pd.DataFrame(result["records"]).drop(columns="attributes", errors="ignore")
        target = Path(output)
        frame.to_parquet(target.with_name(f"{target.stem}-{name}.parquet"))
        rows += len(frame)
        del result, frame
    print(json.dumps({"rows": rows}))


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class SizeResult:
    size: int
    seed_seconds: float
    latency_ms: int = 0
    runs: dict[str, list[Measurement]] = field(default_factory=lambda: {tool: [] for tool in TOOLS})

    def object_rows(self) -> dict[str, int]:
        """Rows per object, as crmsweep's summaries gave them."""
        return next((m.objects for m in self.runs["crmsweep"] if m.objects), {OBJECT: self.size})


def rest_minimum(rows: dict[str, int]) -> int:
    return sum(1 + max(1, math.ceil(n / REST_PAGE)) for n in rows.values())


def path_minimum(rows: dict[str, int]) -> int:
    """The minimum for the path crmsweep takes per object: REST at or below BULK_OVER rows, else a job."""
    return sum(3 + math.ceil(n / BULK_PAGE) if n > BULK_OVER else 1 + max(1, math.ceil(n / REST_PAGE))
               for n in rows.values())


def bench_size(size: int, repeat: int, workdir: Path, warmup: bool, log: TextIO, *, latency_ms: int = 0,
               objects: Sequence[str] = (OBJECT,), state_cache: Path | None = None) -> SizeResult:
    folder = workdir / f"n{size}"
    folder.mkdir(exist_ok=True)  # one seeded state per size, served again at each latency
    state = folder / "state" if state_cache is None else state_cache / f"n{size}-seed{SEED}"
    state.mkdir(parents=True, exist_ok=True)
    tag = f"{size} @{latency_ms}ms"
    log.write(f"[{tag}] seeding (or reopening) the sandbox ...\n")
    with SandboxProcess(state, size, folder / f"sandbox-{latency_ms}.log", latency_ms=latency_ms) as served:
        sandbox = served.sandbox
        log.write(f"[{tag}] seeded and serving in {served.seed_seconds:.1f} s\n")
        config = folder / "config.toml"
        write_config(config, sandbox)
        result = SizeResult(size, served.seed_seconds, latency_ms)

        def one(tool: str, n: int) -> Measurement:
            if tool == "crmsweep":
                return measure_crmsweep(sandbox, config, folder / f"home-{n}", objects)
            return measure_baseline(sandbox, folder / f"naive-{n}.parquet", objects)

        if warmup:  # first runs pay for cold imports from disk; keep them out of the medians
            for tool in TOOLS:
                one(tool, -1)
        for n in range(repeat):
            # Alternate the order so neither tool always runs right after the other's cache effects.
            for tool in TOOLS if n % 2 == 0 else tuple(reversed(TOOLS)):
                m = one(tool, n)
                result.runs[tool].append(m)
                log.write(f"[{tag}] {tool:<8} run {n + 1}/{repeat}: {m.wall_s:6.2f} s  {m.peak_rss_mib:7.1f} MiB  "
                          f"{m.api_calls} calls  {m.rows} rows\n")
                log.flush()
    return result


def profile_crmsweep(size: int, workdir: Path, top: int) -> str:
    """One crmsweep backup at `size` under cProfile; the `top` functions by cumulative and own time."""
    folder = workdir / f"profile-{size}"
    folder.mkdir()
    with SandboxProcess(folder / "state", size, folder / "sandbox.log") as served:
        config = folder / "config.toml"
        write_config(config, served.sandbox)
        profile = folder / "backup.prof"
        argv = [
            sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "crmsweep", "backup", "-c", CONNECTION,
            "--object", OBJECT, "--json", "--config", str(config), "--home", str(folder / "home"),
        ]
        run_child(argv, child_env(served.sandbox))
    # Cumulative time is shown only for our code and the libraries it drives, so that the import
    # machinery and runpy frames (which wrap everything) do not crowd out where the time goes.
    views = (("cumulative", r"crmsweep/|simple_salesforce/|requests/sessions|pyarrow/parquet"), ("tottime", "."))
    text: list[str] = []
    for order, restriction in views:
        stream = io.StringIO()
        stats = pstats.Stats(str(profile), stream=stream).sort_stats(order)
        stats.print_stats(restriction, top)
        text.append(f"### by {order}\n\n```\n{_shorten(stream.getvalue(), profile)}\n```\n")
    return "\n".join(text)


def _shorten(report: str, profile: Path) -> str:
    prefixes = sorted({p + "/" for p in (*sys.path, str(Path.cwd())) if p}, key=len, reverse=True)
    lines = [line for line in report.strip().splitlines() if str(profile) not in line]
    for prefix in prefixes:
        lines = [line.replace(prefix, "") for line in lines]
    return "\n".join(lines).strip()


# --- the report ------------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def markdown_table(results: Sequence[SizeResult]) -> str:
    smallest = min(r.size for r in results)
    base_rss = {(tool, r.latency_ms): _median([m.peak_rss_mib for m in r.runs[tool]])
                for r in results if r.size == smallest for tool in TOOLS}
    lines = [
        "| size | latency | tool | wall median (s) | wall min–max (s) | time vs baseline | API calls "
        "| minimum: REST / crmsweep's path | calls reported | peak RSS median (MiB) | RSS vs smallest size |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in sorted(results, key=lambda r: (r.latency_ms, r.size)):
        baseline_wall = _median([m.wall_s for m in result.runs["baseline"]])
        rows = result.object_rows()
        for tool in TOOLS:
            runs = result.runs[tool]
            walls = [m.wall_s for m in runs]
            wall = _median(walls)
            rss = _median([m.peak_rss_mib for m in runs])
            calls = sorted({m.api_calls for m in runs})
            reported = sorted({m.reported_calls for m in runs if m.reported_calls is not None})
            lines.append(
                f"| {result.size:,} | {result.latency_ms} ms | {tool} | {wall:.2f} | {min(walls):.2f}–{max(walls):.2f} "
                f"| {wall / baseline_wall:.2f}× | {'/'.join(map(str, calls))} "
                f"| {rest_minimum(rows)} / {path_minimum(rows)} "
                f"| {'/'.join(map(str, reported)) or '—'} | {rss:.0f} "
                f"| {rss / base_rss.get((tool, result.latency_ms), rss):.2f}× |"
            )
    return "\n".join(lines)


def machine() -> str:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{cpus} CPUs ({platform.processor() or platform.machine()}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, simple-salesforce {version('simple-salesforce')}, "
        f"pandas {version('pandas')}, pyarrow {version('pyarrow')}, crmsweep {version('crmsweep')}"
    )


def check_rows(results: Sequence[SizeResult]) -> None:
    for result in results:
        rows = {m.rows for runs in result.runs.values() for m in runs}
        if len(rows) != 1:
            raise RuntimeError(f"size {result.size} at {result.latency_ms} ms: the tools backed up different row "
                               f"counts {sorted(rows)}")


def standard_objects() -> tuple[str, ...]:
    from crmsweep import providers

    return tuple(providers.get("salesforce").vocabulary.default_backup_objects)


def parse_sizes_or_zero(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--latency-ms takes comma-separated integers, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError("--latency-ms needs at least one value, none negative")
    return values


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes takes comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("--sizes needs at least one positive size")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backup_bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=parse_sizes, default=[10_000, 100_000], help="contacts per run, e.g. 10000,100000"
    )
    parser.add_argument("--repeat", type=int, default=3, help="measured repetitions per tool and size (default 3)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the unmeasured first run of each tool")
    parser.add_argument("--profile", action="store_true", help="also cProfile one crmsweep backup at the largest size")
    parser.add_argument("--latency-ms", type=parse_sizes_or_zero, default=[0],
                        help="delay before every sandbox answer, one run set per value, e.g. 0,50 (default 0)")
    parser.add_argument("--state-cache", type=Path, default=None,
                        help="keep each size's seeded sandbox state here and reuse it next time (seeding is slow)")
    parser.add_argument("--all-objects", action="store_true",
                        help="back up every object of Salesforce's standard backup set, not Contact alone")
    parser.add_argument("--naive-worker", nargs=4, metavar=("URL", "CA_FILE", "OUTPUT", "OBJECTS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.naive_worker:
        naive_worker(*args.naive_worker)
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    with tempfile.TemporaryDirectory(prefix="crmsweep-bench-") as tmp:
        workdir = Path(tmp)
        objects = standard_objects() if args.all_objects else (OBJECT,)
        results = [bench_size(n, args.repeat, workdir, not args.no_warmup, sys.stderr, latency_ms=latency,
                              objects=objects, state_cache=args.state_cache)
                   for latency in args.latency_ms for n in args.sizes]
        check_rows(results)
        print(f"Machine: {machine()}\n")
        what = f"Backup of {', '.join(objects)}" if args.all_objects else "Contact backup"
        print(f"{what}, medians of {args.repeat} runs; REST minimum = 1 describe + ceil(N/{REST_PAGE}) pages per "
              f"object; Bulk minimum = describe, create, poll, ceil(N/{BULK_PAGE:,}) pages; seeding and serving took "
              f"{', '.join(f'{r.seed_seconds:.0f} s' for r in results)}.\n")
        print(markdown_table(results))
        if args.profile:
            print(f"\n## cProfile of one crmsweep backup at {max(args.sizes):,}\n")
            print(profile_crmsweep(max(args.sizes), workdir, top=15))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
