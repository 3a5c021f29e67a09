"""Benchmark `crmsweep scan` with every registered pass against reading the same columns into pandas.

Run on demand only (never from tests or CI), from the repository root:

    .venv/bin/python -m bench.scan_bench --sizes 100000,300000,1000000 --repeat 3 [--before REV] [--profile N]

For each size N a Salesforce snapshot of N contacts (with leads, accounts, opportunities, contact roles,
users and tasks in the proportions below, about a quarter of the people stale) is written with the
snapshot writer itself (`take_snapshot` over a connector that generates the pages: no sandbox, no
HTTP), and cached under `bench/.cache/` keyed by N, the seed and the field lists, so a later run
reuses it. Field lists come from the sandbox's Salesforce schema, so objects and fields other work
adds appear here by themselves, filled with plain values of their type.

Then, side by side and in alternating order, each measurement a fresh child process:

- read: `pyarrow.parquet.read_table(file, columns=...).to_pandas()` of exactly the (object, columns)
  the scan reads from the snapshot (recorded once per run by a scan that notes every `frame` call, and
  every column of an object it takes before-images of through `record_map`: those are whole rows),
  all frames held until the last is read;
- scan: `open_snapshot` + `scan_snapshot` with every registered pass at its defaults, then
  `api.write_plan` (what `crmsweep scan --snapshot ID -o FILE` does after its connection checks);
- with `--before REV`, the same scan with the code of git revision REV (exported with `git archive`,
  put first on the child's PYTHONPATH).

Time is measured inside the child around the work itself (imports excluded, the same for all);
peak RSS is the child's own `ru_maxrss` (`os.wait4`). The report is Markdown on stdout; progress on
stderr. `--profile N` adds a cProfile summary of one scan at size N.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parent.parent
# CRMSWEEP_BENCH_CACHE shares one cache of generated snapshots between checkouts (a 1M build takes minutes).
CACHE = Path(os.environ.get("CRMSWEEP_BENCH_CACHE") or REPO / "bench" / ".cache") / "scan"
SEED = 7
PAGE = 2000
# The scan's clock; the data is dated against it, so a cached snapshot scans the same way on any day.
NOW = datetime(2026, 6, 1, tzinfo=UTC)
CONNECTION = "bench"
ORG_ID = "00D000000000001AAA"
GENERATOR_VERSION = "2"  # bump when the generated data changes, so cached snapshots are rebuilt


# --- proportions: per contact, how many of each object ------------------------------------------------


def counts(contacts: int) -> dict[str, int]:
    """Rows per object for `contacts` contacts: a mid-sized sales org's shape."""
    return {
        "User": max(50, contacts // 1000),
        "Account": contacts // 10,
        "Contact": contacts,
        "Lead": contacts // 4,
        "Opportunity": contacts // 10,
        "OpportunityContactRole": contacts // 10,
        "Task": contacts // 2,
    }


STALE_SHARE = 0.25  # people whose last activity is older than stale_contacts' default 3 years
IDLE_USER_SHARE = 0.1  # active users with no login for a year
DUPLICATE_SHARE = 0.015  # people planted as a likely duplicate of someone entered shortly before
ACCOUNT_DUPLICATE_SHARE = 0.01  # accounts entered twice (the same name spelled another way)
NAMES = ("realistic", "dense")


# --- people and companies as an org holds them ------------------------------------------------------------
# "realistic": 164 first names and 2,754 surnames (2% double-barrelled), each drawn with Zipf-like weights
# as in a real customer base (a few first names are common, surnames a long tail); accounts with distinct
# names and sites, leads typing one of them as their company; and a small planted share of true duplicates
# (1.5% of people: the same address in other case, the same name at the same company, a misspelt name;
# 1% of accounts: the same name in capitals). "dense" keeps generator 1's filler
# ("LastName 456" for every person): every name alike, one name block per company, a worst case for the
# duplicates pass rather than an org.

def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FIRST = _words(
    "James Mary John Patricia Robert Jennifer Michael Linda David Elizabeth William Barbara Richard Susan "
    "Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty Anthony Sandra Mark "
    "Margaret Donald Ashley Steven Kimberly Andrew Emily Paul Donna Joshua Michelle Kenneth Carol Kevin Amanda "
    "Brian Melissa George Deborah Timothy Stephanie Ronald Rebecca Jason Laura Edward Helen Jeffrey Sharon Ryan "
    "Cynthia Jacob Kathleen Gary Amy Nicholas Angela Eric Shirley Jonathan Anna Stephen Brenda Larry Pamela "
    "Justin Emma Scott Nicole Brandon Samantha Benjamin Katherine Samuel Christine Gregory Debra Alexander "
    "Rachel Patrick Carolyn Frank Janet Raymond Maria Jack Olivia Dennis Heather Jerry Helena Tyler Catherine "
    "Aaron Virginia Jose Julie Adam Victoria Nathan Joan Henry Lauren Zachary Evelyn Douglas Judith Peter "
    "Megan Kyle Andrea Noah Cheryl Ethan Hannah Jeremy Jacqueline Walter Martha Christian Gloria Keith Teresa "
    "Roger Ann Terry Sara Austin Madison Sean Frances Gerald Kathryn Carl Janice Harold Jean Dylan Abigail "
    "Łukasz Zoë José Søren Małgorzata Jürgen François Siobhán Renée Çağla Chloé Dmitri Aiko Wei Priya Omar"
)
_ONSETS = _words("B Br C Ch Cl D Dr F G Gr H J K Kl L M N P Pr R S Sch Sh St T Th V W Y Z Al An Ar El Ev "
           "Ol Or Ha Ma Mc Ro Ka Sa Be Da Fa Ga Lo Mo Pe Ta")
_RESTS = _words("ard aker ell erson ington ley man ner ovich ows ston tz ers ing ton ski ez ier ault"
          " olds ett ins ick ock oyle ung ane ace amp anner ary ason ault elli ens ford gren horn ios "
          "kin land lund more ney quist rose sen son ter ville wick wood yama zell")
_COMPANY_WORDS = _words("Acme Apex Blue Bright Cedar Cobalt Crest Delta Eagle Echo Ever First Frontier Global "
                  "Granite Harbor Horizon Iron Keystone Lake Liberty Maple Meridian Metro North Nova Oak "
                  "Omega Pacific Peak Pine Pioneer Prime Quantum Red River Rock Silver Summit Sun Terra "
                  "Titan Union United Valley Vertex West Zen")
_COMPANY_KINDS = _words("Systems Logistics Foods Health Labs Partners Capital Energy Media Retail Motors Studio "
                  "Robotics Analytics Freight Dental Legal Farms Textiles Software Consulting Realty "
                  "Aerospace Pharma Marine Builders Insurance Telecom Security Printing Travel Supply "
                  "Networks Water Solar Design Events Outdoor Optics Tools Mining Bakery Brewing Clinic "
                  "Academy Hotels Fitness Games Paper")
_COMPANY_SUFFIXES = ("Inc.", "LLC", "Ltd", "GmbH", "Corp.", "Group", "S.A.", "Co.")


def _zipf_weights(count: int, exponent: float) -> list[float]:
    weights, total = [], 0.0
    for rank in range(count):
        total += 1.0 / (rank + 1) ** exponent
        weights.append(total)
    return weights


_SURNAMES = [a + b for a in _ONSETS for b in _RESTS]  # 2,754 surnames, and rarer double-barrelled ones (see _people)
_FIRST_WEIGHTS = _zipf_weights(len(_FIRST), 0.9)
_SURNAME_WEIGHTS = _zipf_weights(len(_SURNAMES), 0.7)


def company_name(n: int) -> str:
    """Account n's name: distinct for every n below the count of word triples (a bijective scramble of n
    picks the words: 1,000,003 is a prime, so coprime to that count)."""
    words, kinds = len(_COMPANY_WORDS), len(_COMPANY_KINDS)
    k = (n * 1_000_003) % (words * kinds * words)
    first, kind = _COMPANY_WORDS[k % words], _COMPANY_KINDS[(k // words) % kinds]
    second = _COMPANY_WORDS[k // (words * kinds)]
    return f"{first} {second} {kind} {_COMPANY_SUFFIXES[n % len(_COMPANY_SUFFIXES)]}"


def _slug(name: str, words: int = 3) -> str:
    """The first `words` words of a name as one lower-case token (a company's legal suffix left out)."""
    return "".join(ch for ch in "".join(name.lower().split(" ")[:words]) if ch.isalnum())


def _typo(text: str, rng: random.Random) -> str:
    """One letter doubled, dropped or swapped: the misspelling a second entry of a person has."""
    if len(text) < 4:
        return text + text[-1]
    at = 1 + rng.randrange(len(text) - 2)
    kind = rng.randrange(3)
    if kind == 0:
        return text[:at] + text[at] + text[at:]
    if kind == 1:
        return text[:at] + text[at + 1 :]
    return text[:at] + text[at + 1] + text[at] + text[at + 2 :]


# --- the generated org, behind the connector calls the snapshot writer makes ---------------------------


def record_id(prefix: str, n: int) -> str:
    return f"{prefix}{n:012d}AAA"


def _sf_datetime(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class GeneratedOrg:
    """A Salesforce org made up on the fly, page by page; the same for the same seed and sizes."""

    provider = "salesforce"
    connection_name = CONNECTION

    def __init__(self, contacts: int, seed: int = SEED, names: str = "realistic") -> None:
        from crmsweep.providers.salesforce import SALESFORCE_CAPABILITIES, SALESFORCE_VOCABULARY
        from crmsweep.sandbox import schema

        self.vocabulary = SALESFORCE_VOCABULARY
        self.capabilities = SALESFORCE_CAPABILITIES
        self.sizes = counts(contacts)
        self.seed = seed
        self.names = names
        self._schema = schema
        # The last people of each object, for a planted duplicate to copy (a second entry comes soon after).
        self._recent: dict[str, list[dict[str, Any]]] = {}

    # -- what take_snapshot asks ----------------------------------------------------------------------

    def api_usage(self) -> Any:
        from crmsweep.model import ApiUsage

        return ApiUsage(calls=0)

    def org_id(self) -> str:
        return ORG_ID

    def api_version(self) -> str:
        return "59.0"

    def describe(self, object_name: str) -> dict[str, Any]:
        from crmsweep.sandbox.describe import describe

        found = self._schema.get_object(object_name)
        if found is None:
            raise KeyError(object_name)
        return describe(found, "59.0")

    def fields(self, object_name: str) -> list[Any]:
        from crmsweep.connectors.salesforce import field_spec

        specs = [field_spec(f) for f in self.describe(object_name)["fields"]]
        return [s for s in specs if s is not None]

    def metadata_documents(self) -> Iterator[tuple[str, Any]]:
        return iter(())

    def iter_pages(self, object_name: str, fields: Sequence[str], **_: Any) -> Iterator[list[dict[str, Any]]]:
        obj = self._schema.get_object(object_name)
        assert obj is not None
        types = {f.name: f for f in obj.fields}
        total = self.sizes.get(object_name, 100)  # an object other work adds: a few plain rows
        rng = random.Random(f"{self.seed}:{object_name}")
        for start in range(0, total, PAGE):
            yield [self._row(obj, types, fields, n, rng) for n in range(start, min(start + PAGE, total))]

    # -- one row ----------------------------------------------------------------------------------------

    def _row(
        self, obj: Any, types: dict[str, Any], fields: Sequence[str], n: int, rng: random.Random
    ) -> dict[str, Any]:
        created = NOW - timedelta(days=40 + rng.randrange(8 * 365), seconds=rng.randrange(86400))
        stale = rng.random() < STALE_SHARE
        if stale:
            modified = NOW - timedelta(days=3 * 366 + 30 + rng.randrange(3 * 365))
            created = min(created, modified - timedelta(days=1))
        else:
            modified = NOW - timedelta(days=rng.randrange(365 * 2))
            modified = max(modified, created)
        row: dict[str, Any] = {}
        for name in fields:
            row[name] = self._value(obj, types[name], n, rng, created, modified)
        self._shape(obj.name, row, n, rng, modified)
        return row

    def _value(self, obj: Any, f: Any, n: int, rng: random.Random, created: datetime, modified: datetime) -> Any:
        s = self._schema
        if f.name == "Id":
            return record_id(obj.key_prefix, n)
        if f.name in ("CreatedDate",):
            return _sf_datetime(created)
        if f.name in ("LastModifiedDate", "SystemModstamp"):
            return _sf_datetime(modified)
        if f.name == "LastActivityDate":
            return modified.date().isoformat()
        if f.name == "IsDeleted":
            return False
        if f.name in ("OwnerId", "CreatedById", "LastModifiedById"):
            return record_id("005", rng.randrange(self.sizes["User"]))
        if f.type == s.REFERENCE:
            target = f.reference_to[0] if f.reference_to else ""
            parent = self._schema.get_object(target) if self.sizes.get(target) else None
            return record_id(parent.key_prefix, rng.randrange(self.sizes[target])) if parent else None
        if f.type == s.BOOLEAN:
            return f.default if isinstance(f.default, bool) else False
        if f.type == s.PICKLIST:
            return f.picklist[rng.randrange(len(f.picklist))] if f.picklist else None
        if f.type == s.INT:
            return rng.randrange(10_000)
        if f.type in (s.DOUBLE, s.CURRENCY, s.PERCENT):
            return float(rng.randrange(100_000))
        if f.type == s.DATE:
            return (created + timedelta(days=rng.randrange(400))).date().isoformat()
        if f.type == s.DATETIME:
            return None
        if f.type == s.EMAIL:
            return f"person{n}@example{n % 97}.com"
        if f.type == s.PHONE:
            return f"+1 555 {n % 10_000_000:07d}"
        if f.type == s.TEXTAREA:
            return None
        return f"{f.name} {n % 1009}"

    def _shape(self, name: str, row: dict[str, Any], n: int, rng: random.Random, modified: datetime) -> None:
        """The fields the passes judge by, set as a real org holds them."""
        if self.names == "realistic":
            self._people(name, row, n, rng)
        if name in ("Contact", "Lead") and "Name" in row:
            row["Name"] = f"{row.get('FirstName') or ''} {row.get('LastName') or ''}".strip()
        if name == "Lead" and "IsConverted" in row:
            row["IsConverted"] = rng.random() < 0.05
        if name == "User":
            idle = rng.random() < IDLE_USER_SHARE
            row["IsActive"] = n == 0 or rng.random() < 0.9
            days = 200 + rng.randrange(500) if idle and n else rng.randrange(30)
            row["LastLoginDate"] = _sf_datetime(NOW - timedelta(days=days))
            row["Username"] = f"user{n}@bench.example"
            row["UserType"] = "Standard"
        if name == "Opportunity":
            stage = row.get("StageName") or "Prospecting"
            row["IsClosed"] = stage.startswith("Closed")
            row["IsWon"] = stage == "Closed Won"
            row["CloseDate"] = (modified + timedelta(days=rng.randrange(120))).date().isoformat()
        if name == "OpportunityContactRole":
            # A few roles point at the stale quarter too, so protection has people to hold back.
            row["ContactId"] = record_id("003", rng.randrange(self.sizes["Contact"]))
        if name == "Task":
            status = row.get("Status") or "Not Started"
            row["IsClosed"] = status == "Completed"
            row["WhoId"] = record_id("003", rng.randrange(self.sizes["Contact"]))


    def _people(self, name: str, row: dict[str, Any], n: int, rng: random.Random) -> None:
        """Names, companies and addresses of a real customer base, with a few true duplicates planted."""
        if name == "Account":
            company = company_name(n)
            if n and rng.random() < ACCOUNT_DUPLICATE_SHARE:  # the same company entered again, spelled otherwise
                company = company_name(n - 1).upper().replace(".", "")
            row["Name"] = company
            if "Website" in row:
                row["Website"] = f"https://www.{_slug(company)}.example.com/"
            return
        if name not in ("Contact", "Lead"):
            return
        first = rng.choices(_FIRST, cum_weights=_FIRST_WEIGHTS)[0]
        last = rng.choices(_SURNAMES, cum_weights=_SURNAME_WEIGHTS)[0]
        if rng.random() < 0.02:
            last = f"{last}-{rng.choices(_SURNAMES, cum_weights=_SURNAME_WEIGHTS)[0]}"
        recent = self._recent.setdefault(name, [])
        email = f"{_slug(first + ' ' + last, 2)}.{n}@example{n % 97}.com"
        company = company_name(rng.randrange(max(1, self.sizes["Account"])))  # a lead's, as typed
        if recent and rng.random() < DUPLICATE_SHARE:
            other = recent[rng.randrange(len(recent))]
            kind = rng.randrange(3)  # the same mailbox in other case; the same name; a misspelt name
            first, last = other["FirstName"], other["LastName"] if kind != 2 else _typo(other["LastName"], rng)
            company = other.get("Company") or company
            if "AccountId" in row:
                row["AccountId"] = other.get("AccountId")
            if kind == 0:
                email = str(other.get("Email") or email).upper()
        if "Email" in row:
            row["Email"] = email
        if "Company" in row:
            row["Company"] = company
        row["FirstName"], row["LastName"] = first, last
        recent.append({k: row.get(k) for k in ("FirstName", "LastName", "Email", "AccountId", "Company")})
        if len(recent) > 500:
            del recent[:250]

def snapshot_key(contacts: int, seed: int, names: str = "realistic") -> str:
    """A cache key: size, seed, names, generator version and the field lists the schema gives today."""
    org = GeneratedOrg(contacts, seed, names)
    shape = {name: [s.name for s in org.fields(name)] for name in backup_objects(org)}
    digest = hashlib.sha256(json.dumps([GENERATOR_VERSION, shape], sort_keys=True).encode()).hexdigest()[:12]
    return f"n{contacts}-s{seed}-{names}-{digest}"


def backup_objects(org: GeneratedOrg) -> list[str]:
    """What `crmsweep backup` takes by default: the provider's objects and what every pass reads,
    those the sandbox schema knows."""
    from crmsweep.cleanup.passes import objects_read

    wanted = list(dict.fromkeys([*org.vocabulary.default_backup_objects, *objects_read(org.vocabulary)]))
    return [name for name in wanted if org._schema.get_object(name) is not None]


def build_snapshot(contacts: int, seed: int, log: Any, names: str = "realistic") -> tuple[Path, str]:
    """(home folder, snapshot id) of a cached snapshot of `contacts` contacts, built if missing."""
    from crmsweep.backup.snapshot_reader import list_snapshots
    from crmsweep.backup.snapshot_writer import take_snapshot
    from crmsweep.connectors.base import Connector
    from crmsweep.paths import Home

    folder = CACHE / snapshot_key(contacts, seed, names)
    home = Home(folder / "home")
    if folder.exists():
        found = list_snapshots(home)
        if found:
            return home.root, found[-1].snapshot_id
        shutil.rmtree(folder)
    org = GeneratedOrg(contacts, seed, names)
    started = time.perf_counter()
    print(f"building a snapshot of {contacts:,} contacts in {folder}", file=log, flush=True)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial_home = Home(partial / "home")
    manifest = take_snapshot(cast(Connector, org), partial_home, objects=backup_objects(org), clock=lambda: NOW)
    os.rename(partial, folder)
    print(f"  built in {time.perf_counter() - started:.1f} s", file=log, flush=True)
    return home.root, manifest.snapshot_id


# --- the measured work, each in its own child -----------------------------------------------------------


def _scan_kwargs() -> dict[str, Any]:
    from crmsweep.config import Config

    config = Config()
    return {
        "passes": None,
        "pass_settings": {},
        "protect_recent_days": config.protect.recent_days,
        "protect_objects": config.protect.objects,
        "protect_ids": config.protect.ids,
        "max_changes": None,
        "max_changes_per_object": None,
        "allow_over_cap": True,
        "connection": CONNECTION,
        "config_digest": "",
        "now": NOW,
        "running_user_id": record_id("005", 0),
    }


def work_scan(home_root: Path, snapshot_id: str, output: Path, record_columns: Path | None) -> dict[str, Any]:
    from crmsweep import api
    from crmsweep.backup.snapshot_reader import SnapshotReader, open_snapshot
    from crmsweep.cleanup.scan import scan_snapshot
    from crmsweep.paths import Home
    from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY

    home = Home(home_root)
    started, cpu = time.perf_counter(), time.process_time()
    reader = open_snapshot(home, snapshot_id)
    read: dict[str, list[str]] = {}
    if record_columns is not None:
        plain = reader

        class Recording(SnapshotReader):
            def frame(self, object_name: str, columns: Sequence[str] | None = None) -> Any:
                names = [s.name for s in self.fields(object_name)] if columns is None else list(columns)
                read.setdefault(object_name, [])
                read[object_name] = list(dict.fromkeys([*read[object_name], *names]))
                return super().frame(object_name, columns)

            def _whole_rows(self, object_name: str) -> None:
                # Before-images are whole rows: every column of the object is read for them.
                names = [s.name for s in self.fields(object_name)]
                read[object_name] = list(dict.fromkeys([*read.get(object_name, []), *names]))

            def record_map(self, object_name: str, ids: Any) -> Any:
                self._whole_rows(object_name)
                return super().record_map(object_name, ids)

            def before_images(self, object_name: str, ids: Any) -> Any:
                self._whole_rows(object_name)
                return super().before_images(object_name, ids)

        reader = Recording(plain.path, plain.manifest)
    try:  # as `api.scan` does: the changes written while the scan waits for its report-only passes
        from crmsweep.plan_writing import PlanDraft
    except ImportError:  # a --before revision from before it
        result = scan_snapshot(reader, vocabulary=SALESFORCE_VOCABULARY, **_scan_kwargs())
        scanned = time.perf_counter()
        api.write_plan(result.plan, output, home)
    else:
        with PlanDraft(output, home) as draft:
            result = scan_snapshot(reader, vocabulary=SALESFORCE_VOCABULARY, **_scan_kwargs(),
                                   while_waiting=draft.begin)
            scanned = time.perf_counter()
            draft.write(result.plan)
    written, cpu = time.perf_counter(), time.process_time() - cpu
    if record_columns is not None:
        record_columns.write_text(json.dumps(read))
    return {
        "seconds": written - started,
        "cpu_seconds": cpu,
        "scan_seconds": scanned - started,
        "write_seconds": written - scanned,
        "changes": len(result.plan.changes),
        "per_pass": result.per_pass,
        "skipped": result.skipped,
        "plan_bytes": output.stat().st_size,
        # plan_id is random: the content is compared under a fixed one, after the clock stopped.
        "digest": result.plan.with_header(plan_id="bench").digest,
    }


def work_read(home_root: Path, snapshot_id: str, columns_file: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from crmsweep.backup.snapshot_reader import open_snapshot
    from crmsweep.paths import Home

    columns: dict[str, list[str]] = json.loads(columns_file.read_text())
    started, cpu = time.perf_counter(), time.process_time()
    reader = open_snapshot(Home(home_root), snapshot_id)
    frames = [
        pq.read_table(reader.path / reader.manifest.objects[name].file, columns=wanted).to_pandas()
        for name, wanted in columns.items()
    ]
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    rows, width = sum(len(f) for f in frames), sum(f.shape[1] for f in frames)
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": rows, "columns": width}


def work_profile(home_root: Path, snapshot_id: str, output: Path) -> dict[str, Any]:
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    work_scan(home_root, snapshot_id, output, None)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
    own = io.StringIO()
    pstats.Stats(profiler, stream=own).sort_stats("tottime").print_stats(25)
    return {"cumulative": text.getvalue(), "own": own.getvalue()}


# --- the parent: children, medians, the table -------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    peak_mib: float
    answer: dict[str, Any]


def child(kind: str, args: Sequence[str], *, python_path: Path | None = None) -> Run:
    """One measurement in a fresh interpreter; its own peak RSS from wait4."""
    env = dict(os.environ)
    if python_path is not None:
        env["PYTHONPATH"] = str(python_path)
    with tempfile.NamedTemporaryFile("r", suffix=".json") as answer_file:
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--answer", answer_file.name,
                   *args]
        # cwd outside the checkout, so a --before tree on PYTHONPATH is the crmsweep imported.
        process = subprocess.Popen(command, env=env, cwd=tempfile.gettempdir())
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"{kind} worker failed with exit {process.returncode}")
        answer = json.loads(Path(answer_file.name).read_text())
    return Run(seconds=float(answer["seconds"]), cpu_seconds=float(answer.get("cpu_seconds", 0.0)),
               peak_mib=usage.ru_maxrss / 1024, answer=answer)


def export(revision: str, into: Path) -> Path:
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "crmsweep"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def machine() -> str:
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("pandas", "pyarrow"))
    return (f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"{versions}, load average {os.getloadavg()[0]:.1f} at start")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--before", default="", help="git revision to measure the scan of, side by side")
    parser.add_argument("--profile", type=int, default=0, help="size to profile one scan at (0: none)")
    parser.add_argument("--names", choices=NAMES, default="realistic",
                        help="people as an org holds them, or generator 1's filler (a duplicates worst case)")
    parser.add_argument("--worker", choices=("scan", "read", "profile"), help=argparse.SUPPRESS)
    parser.add_argument("--answer", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--columns", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args)
        return
    log = sys.stderr
    sizes = [int(s) for s in args.sizes.split(",") if s]
    with tempfile.TemporaryDirectory(prefix="crmsweep-scan-bench-") as scratch:
        before_tree = export(args.before, Path(scratch) / "before") if args.before else None
        rows: list[dict[str, Any]] = []
        profile: dict[str, Any] | None = None
        for size in sizes:
            home, snapshot = build_snapshot(size, args.seed, log, args.names)
            plan = Path(scratch) / f"plan-{size}.json"
            columns = Path(scratch) / f"columns-{size}.json"
            base = ["--home", str(home), "--snapshot", snapshot]
            # The columns the scan reads, noted by an unmeasured scan (also a warm-up of the page cache).
            child("scan", [*base, "--output", str(plan), "--columns", str(columns)])
            tools: dict[str, list[Run]] = {"read": [], "scan": []}
            if before_tree is not None:
                tools["scan before"] = []
            for n in range(args.repeat):
                order = list(tools) if n % 2 == 0 else list(reversed(tools))
                for tool in order:
                    if tool == "read":
                        run = child("read", [*base, "--columns", str(columns)])
                    else:
                        plan.unlink(missing_ok=True)
                        run = child("scan", [*base, "--output", str(plan)],
                                    python_path=before_tree if tool == "scan before" else None)
                    tools[tool].append(run)
                    print(f"  {size:,} {tool}: {run.seconds:.2f} s, {run.peak_mib:.0f} MiB", file=log, flush=True)
            rows.append({"size": size, "tools": tools})
            if args.profile == size:
                profile = child("profile", [*base, "--output", str(plan)]).answer
        print(report(rows, args, profile))


def _worker(args: argparse.Namespace) -> None:
    home, snapshot = Path(args.home), args.snapshot
    if args.worker == "read":
        answer = work_read(home, snapshot, Path(args.columns))
    elif args.worker == "profile":
        answer = {"seconds": 0.0, "cpu_seconds": 0.0, **work_profile(home, snapshot, Path(args.output))}
    else:
        answer = work_scan(home, snapshot, Path(args.output), Path(args.columns) if args.columns else None)
    Path(args.answer).write_text(json.dumps(answer))


def report(rows: list[dict[str, Any]], args: argparse.Namespace, profile: dict[str, Any] | None) -> str:
    lines = [
        f"Machine: {machine()}. Medians of {args.repeat} runs each, seed {args.seed}, {args.names} names.",
        "",
        "| contacts | rows in snapshot | what | wall (s) | min–max (s) | × read | CPU (s) | CPU × read "
        "| peak RSS (MiB) | RSS vs smallest | changes | plan on disk (MB) |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    smallest: dict[str, float] = {}
    for row in rows:
        size, tools = row["size"], row["tools"]
        read_time = statistics.median(r.seconds for r in tools["read"])
        read_cpu = statistics.median(r.cpu_seconds for r in tools["read"])
        total_rows = sum(counts(size).values())
        for tool, runs in tools.items():
            seconds = statistics.median(r.seconds for r in runs)
            cpu = statistics.median(r.cpu_seconds for r in runs)
            peak = statistics.median(r.peak_mib for r in runs)
            smallest.setdefault(tool, peak)
            answer = runs[0].answer
            changes = f"{answer['changes']:,}" if "changes" in answer else "—"
            size_mb = f"{answer['plan_bytes'] / 1e6:.1f}" if "plan_bytes" in answer else "—"
            lines.append(
                f"| {size:,} | {total_rows:,} | {tool} | {seconds:.2f} | {min(r.seconds for r in runs):.2f}–"
                f"{max(r.seconds for r in runs):.2f} | {seconds / read_time:.2f}× | {cpu:.2f} | "
                f"{cpu / read_cpu:.2f}× | {peak:.0f} | {peak / smallest[tool]:.2f}× | {changes} | {size_mb} |"
            )
    lines.append("")
    for row in rows:
        runs = row["tools"]["scan"]
        scan_part = statistics.median(r.answer["scan_seconds"] for r in runs)
        write_part = statistics.median(r.answer["write_seconds"] for r in runs)
        answer = runs[0].answer
        digests = {r.answer["digest"] for tool, rs in row["tools"].items() if tool != "read" for r in rs}
        lines.append(
            f"- {row['size']:,}: scan {scan_part:.2f} s (the plan's changes written as it waits for duplicates) "
            f"+ the rest of the plan write {write_part:.2f} s; per pass "
            f"{json.dumps(answer['per_pass'])}; skipped {json.dumps(answer['skipped'])}; "
            f"{'one digest for every scan' if len(digests) == 1 else f'{len(digests)} different digests'}"
        )
    if profile is not None:
        lines += ["", f"cProfile of one scan at {args.profile:,} (cumulative):", "", "```",
                  profile["cumulative"].strip(), "```", "", "By own time:", "", "```", profile["own"].strip(), "```"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
