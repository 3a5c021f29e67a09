"""`crmsweep report quality` end to end: seeded sandboxes of both providers over real TLS, snapshots on disk,
the CLI's outputs and refusals."""

from __future__ import annotations

import json
import os
import stat
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from crmsweep import providers
from crmsweep.backup.snapshot import open_snapshot
from crmsweep.cli import app
from crmsweep.concepts import DataQuality
from crmsweep.paths import Home
from crmsweep.sandbox.server import RunningSandbox, start_sandbox

TOKEN_ENV = "QUALITY_TEST_TOKEN"
runner = CliRunner()


def cli(*args: str) -> Any:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


@pytest.fixture(params=["salesforce", "hubspot"])
def org(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[RunningSandbox, list[str]]]:
    """A seeded sandbox of each provider as connection "org"; yields it and the --config/--home arguments."""
    provider = str(request.param)
    with start_sandbox(tmp_path / "state", provider=provider, records=250, seed=21) as running:
        info = running.info
        config = tmp_path / "crmsweep.toml"
        config.write_text(f'[connections.org]\nprovider = "{provider}"\nurl = "{info.url}"\n'
                          f'token_env = "{TOKEN_ENV}"\nca_file = "{info.ca_file}"\n', encoding="utf-8")
        monkeypatch.setenv(TOKEN_ENV, info.token)
        yield running, ["--config", str(config), "--home", str(tmp_path / "home")]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def expected_owners(home: Path, snapshot_id: str) -> dict[str | None, dict[str, int]]:
    """Per owner, from the snapshot's canonical records in plain Python: records and violations by severity
    under the provider's default rules (a second, independent count of what the report computes)."""
    reader = open_snapshot(Home(home), snapshot_id)
    vocab = providers.get(reader.manifest.provider).vocabulary
    quality = vocab.concept(DataQuality)
    assert quality is not None
    users = {str(u[vocab.id_field]): bool(u[vocab.user_active_field]) for u in reader.records(vocab.user_object)}
    owners: dict[str | None, Counter[str]] = {}
    for obj in quality.objects:
        rules = [r for r in quality.rules if r.object == obj]
        for row in reader.records(obj):
            if vocab.deleted_field and row.get(vocab.deleted_field):
                continue
            owner = None if _blank(row.get(vocab.owner_field)) else str(row[vocab.owner_field]).strip()
            counts = owners.setdefault(owner, Counter())
            counts["records"] += 1
            for rule in rules:
                broken = (not users.get(owner or "", False)) if rule.active_owner else all(
                    _blank(row.get(f)) for f in rule.any_of)
                counts[rule.severity] += broken
    return {k: {"records": v["records"], **{s: v[s] for s in ("critical", "major", "minor")}}
            for k, v in owners.items()}


def test_report_on_a_seeded_sandbox_counts_what_the_snapshot_holds(org: tuple[RunningSandbox, list[str]]) -> None:
    _sandbox, where = org
    backed = cli("backup", "-c", "org", "--json", *where)
    assert backed.exit_code == 0, backed.output
    snapshot = json.loads(backed.stdout)["snapshot"]

    answer = cli("report", "quality", "-c", "org", "--json", *where)
    assert answer.exit_code == 0, answer.output
    data = json.loads(answer.stdout)
    assert data["format"] == "crmsweep.quality/1" and data["snapshot_id"] == snapshot
    home = Path(where[3])
    expected = expected_owners(home, snapshot)
    got = {o["owner_id"]: {"records": o["records"], **o["violations"]} for o in data["owners"]}
    assert got == expected
    # The seed has departed owners still holding records: they rank first, with a critical gap on every record.
    worst = data["owners"][0]
    assert worst["active"] is False and worst["score"] == 0.0 and worst["violations"]["critical"] >= worst["records"]
    assert [o["score"] for o in data["owners"]] == sorted(o["score"] for o in data["owners"])
    assert "no earlier snapshot of connection 'org' to compare with" in data["notes"]

    text = cli("report", "quality", "-c", "org", *where)
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines()[0] == "crmsweep data-quality report (crmsweep.quality/1)"
    assert f"Data quality of the newest snapshot of 'org', {snapshot}." in text.stderr
    assert any(line.startswith("RANK  OWNER") for line in text.stdout.splitlines())


def _clear_contact_details(sandbox: RunningSandbox, provider: str, home: Path, snapshot: str) -> tuple[str, str]:
    """Empty every email and phone of one person who has some and an active owner, through the CRM's own API;
    (that person's id, owner id)."""
    reader = open_snapshot(Home(home), snapshot)
    vocab = providers.get(provider).vocabulary
    active = {str(u[vocab.id_field]) for u in reader.records(vocab.user_object) if u[vocab.user_active_field]}
    people = vocab.people_objects[0]
    quality = vocab.concept(DataQuality)
    assert quality is not None
    fields = next(r.any_of for r in quality.rules if r.object == people and r.severity == "critical" and r.any_of)
    person = next(p for p in reader.records(people)
                  if p[vocab.owner_field] in active and not all(_blank(p[f]) for f in fields)
                  and not p.get(vocab.deleted_field or ""))
    info = sandbox.info
    body: dict[str, Any]
    if provider == "salesforce":
        url, body = f"{info.url}/services/data/v59.0/sobjects/{people}/{person['Id']}", {f: None for f in fields}
    else:
        url, body = f"{info.url}/crm/v3/objects/{people}/{person['id']}", {"properties": {f: "" for f in fields}}
    answer = requests.patch(url, json=body, verify=str(info.ca_file),
                            headers={"Authorization": f"Bearer {info.token}"}, timeout=30)
    assert answer.status_code in (200, 204), answer.text
    return str(person[vocab.id_field]), str(person[vocab.owner_field])


def test_the_trend_shows_a_gap_made_between_two_backups(org: tuple[RunningSandbox, list[str]],
                                                         request: pytest.FixtureRequest) -> None:
    sandbox, where = org
    provider = request.node.callspec.params["org"]
    home = Path(where[3])
    first = json.loads(cli("backup", "-c", "org", "--json", *where).stdout)["snapshot"]
    person, owner = _clear_contact_details(sandbox, provider, home, first)
    second = json.loads(cli("backup", "-c", "org", "--json", *where).stdout)["snapshot"]

    data = json.loads(cli("report", "quality", "-c", "org", "--json", *where).stdout)
    assert (data["snapshot_id"], data["compared"]["snapshot_id"]) == (second, first)
    assert (data["compared"]["new_violations"], data["compared"]["fixed_violations"]) == (1, 0)
    trends = {o["owner_id"]: o["trend"] for o in data["owners"]}
    assert trends[owner]["new_violations"] == 1 and trends[owner]["score_delta"] < 0
    assert all(t["new_violations"] == 0 for k, t in trends.items() if k != owner)
    # the same comparison named explicitly, and the detail lists the new gap under its owner
    again = json.loads(cli("report", "quality", "-c", "org", "--json", "--compare", first, *where).stdout)
    assert again["owners"] == data["owners"]
    # --since a day after both: the newest snapshot before it, other than the reported one, is the first
    since = json.loads(cli("report", "quality", "-c", "org", "--json", "--since", "2999-01-01", *where).stdout)
    assert since["compared"]["snapshot_id"] == first and since["owners"] == data["owners"]
    detail = cli("report", "quality", "-c", "org", "--detail", *where).stdout.splitlines()
    assert any(line.startswith(f"{owner},") and f",{person},email or phone,critical," in line for line in detail)
    # reporting the first snapshot itself has nothing before it to compare with
    old = json.loads(cli("report", "quality", "-c", "org", "--json", "--snapshot", first, *where).stdout)
    assert old["compared"] is None


# --- files, formats and refusals (no CRM needed) ------------------------------------------------------------


@pytest.fixture()
def saved(org: tuple[RunningSandbox, list[str]]) -> list[str]:
    _sandbox, where = org
    assert cli("backup", "-c", "org", *where).exit_code == 0
    return where


@pytest.mark.parametrize("org", ["salesforce"], indirect=True)
def test_output_files_are_private_and_replace_only_reports(saved: list[str], tmp_path: Path) -> None:
    page = tmp_path / "out" / "quality.html"
    result = cli("report", "quality", "-c", "org", "--format", "html", "-o", str(page), *saved)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(page).st_mode) == 0o600
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and "<script" not in text
    # -o's suffix chooses the format when --format is not given, and must not contradict it
    inferred = tmp_path / "out" / "inferred.html"
    assert cli("report", "quality", "-c", "org", "-o", str(inferred), *saved).exit_code == 0
    assert inferred.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    clash = cli("report", "quality", "-c", "org", "--format", "csv", "-o", str(inferred), *saved)
    assert clash.exit_code == 2 and clash.stderr.strip() == (
        f"crmsweep: -o {inferred} looks like a html file but --format is csv: use --format html, or name the file "
        "for what it holds")
    # an earlier report (any format) may be replaced; any other file may not
    page = tmp_path / "out" / "quality-report"
    for fmt in ("html", "csv", "json", "text", "html"):
        assert cli("report", "quality", "-c", "org", "--format", fmt, "-o", str(page), *saved).exit_code == 0
    precious = tmp_path / "crmsweep.toml"
    before = precious.read_bytes()
    refused = cli("report", "quality", "-c", "org", "-o", str(precious), *saved)
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (f"crmsweep: {precious} exists and is not a crmsweep report: refusing to "
                                      "overwrite it; choose another file with -o")
    assert precious.read_bytes() == before
    summary = json.loads(cli("report", "quality", "-c", "org", "--json", "--format", "csv", "-o", str(page),
                             *saved).stdout)
    assert summary["output"] == str(page) and summary["format"] == "csv"
    assert page.read_text(encoding="utf-8").startswith("rank,owner_id,owner_name,")


@pytest.mark.parametrize("org", ["salesforce"], indirect=True)
@pytest.mark.parametrize(("args", "message"), [
    (["--since", "1.12.2026"], "--since: expected a date like 2026-12-01, got '1.12.2026'"),
    (["--since", "2000-01-01"], "no snapshot of connection 'org' was taken before 2000-01-01: see "
                                "`crmsweep snapshots list -c org"),
    (["--compare", "x", "--since", "2026-01-01"], "give --compare SNAPSHOT or --since DATE, not both"),
    (["--detail", "--format", "html"], "--detail writes CSV (one row per violation): drop --format html or use "
                                       "--format csv"),
    (["--json", "--format", "html"], "--json prints the report as JSON on stdout: write the html report with -o FILE"),
    (["--snapshot", "nope"], "nope"),
])
def test_bad_requests_are_one_line(saved: list[str], args: list[str], message: str) -> None:
    result = cli("report", "quality", "-c", "org", *args, *saved)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_no_snapshot_yet_says_how_to_take_one(tmp_path: Path) -> None:
    result = cli("report", "quality", "-c", "sandbox-hubspot", "--home", str(tmp_path / "home"))
    assert result.exit_code == 2
    assert result.stderr.strip() == ("crmsweep: no snapshot of connection 'sandbox-hubspot' yet: take one with "
                                     f"`crmsweep backup -c sandbox-hubspot --home {tmp_path / 'home'}`")


@pytest.mark.parametrize(("toml", "message"), [
    ('[quality]\nworst = 0\n', "[quality] worst: "),
    ('[quality]\ncolour = "red"\n', "[quality] unknown key 'colour'"),
    ('[quality]\ndefaults = "yes"\n', "[quality] defaults: expected true or false, got 'yes'"),
    ('[quality]\ndefaults = false\n', "[quality] defaults: is false but no [[quality.rules]] are given"),
    ('[[quality.rules]]\nobject = "Contact"\nany_of = ["Email"]\nseverity = "high"\n',
     "[[quality.rules]] #1 severity: must be one of critical, major, minor, got 'high'"),
    ('[[quality.rules]]\nobject = "Contact"\nseverity = "minor"\n',
     "[[quality.rules]] #1 any_of: give either any_of = [\"Field\", ...] (a value in at least one of them) or "
     "active_owner = true, not both and not neither"),
    ('[[quality.rules]]\nany_of = ["Email"]\nseverity = "minor"\n', "[[quality.rules]] #1 object: is required"),
    ('[[quality.rules]]\nobject = "Contact"\nany_of = ["Email"]\nseverity = "minor"\nfields = 1\n',
     "[[quality.rules]] #1 unknown key 'fields'"),
    ('[[quality.rules]]\nobject = "Contact"\nany_of = "Email"\nseverity = "minor"\n',
     "[[quality.rules]] #1 any_of: expected a list of strings, got 'Email'"),
    ('[[quality.rules]]\nobject = "Contact"\nany_of = ["Email"]\nseverity = "minor"\nprovider = "acme"\n',
     "[[quality.rules]] #1 provider: must be one of hubspot, salesforce, got 'acme'"),
])
def test_bad_quality_config_is_one_line_naming_the_key(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "crmsweep.toml"
    config.write_text(toml, encoding="utf-8")
    result = cli("report", "quality", "-c", "sandbox-salesforce", "--config", str(config),
                 "--home", str(tmp_path / "home"))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"crmsweep: {config}: ") and message in lines[0], lines


@pytest.mark.parametrize("org", ["hubspot"], indirect=True)
def test_an_unknown_rule_object_is_refused_at_report_time(saved: list[str], tmp_path: Path) -> None:
    config = Path(saved[1])
    config.write_text(config.read_text(encoding="utf-8") + '[[quality.rules]]\nobject = "contcats"\n'
                      'any_of = ["email"]\nseverity = "minor"\n', encoding="utf-8")
    result = cli("report", "quality", "-c", "org", *saved)
    assert result.exit_code == 2
    assert result.stderr.startswith("crmsweep: [[quality.rules]] object 'contcats' is not an object of this hubspot "
                                    "connection (did you mean 'contacts'?); known objects: ")
    # a rule for the other provider's objects is left out on this one, not refused
    config.write_text(config.read_text(encoding="utf-8").replace('"contcats"', '"Contact"\nprovider = "salesforce"'),
                      encoding="utf-8")
    assert cli("report", "quality", "-c", "org", *saved).exit_code == 0


@pytest.mark.parametrize("org", ["hubspot"], indirect=True)
def test_a_rule_naming_a_field_its_object_lacks_is_a_typo_refused_at_report_time(
    saved: list[str], tmp_path: Path
) -> None:
    # A backup keeps every field the CRM describes: one the snapshot lacks does not exist (the rule would
    # silently check nothing).
    config = Path(saved[1])
    config.write_text(config.read_text(encoding="utf-8") + '[[quality.rules]]\nobject = "contacts"\n'
                      'any_of = ["phone", "emial"]\nseverity = "minor"\nlabel = "reachable"\n', encoding="utf-8")
    result = cli("report", "quality", "-c", "org", *saved)
    assert result.exit_code == 2
    assert result.stderr.strip() == ("crmsweep: [[quality.rules]] 'reachable': contacts has no field 'emial' "
                                     "(did you mean 'email'?)")


def test_a_backup_of_some_objects_tells_no_violation_fixed_or_removed(org: tuple[RunningSandbox, list[str]],
                                                                      request: pytest.FixtureRequest) -> None:
    """A `backup --object` of the deals alone, taken after a full one with nothing changed in the CRM between
    them, is the newest snapshot the report reads: the people, companies and owners it lacks were not checked
    (its notes say so), so their violations in the full snapshot are neither fixed nor gone with removed records,
    and the deals' active-owner gaps (unchecked without the owners) are not mended either."""
    _sandbox, where = org
    deals = {"salesforce": "Opportunity", "hubspot": "deals"}[request.node.callspec.params["org"]]
    full = cli("backup", "-c", "org", "--json", *where)
    assert full.exit_code == 0, full.output
    some = cli("backup", "-c", "org", "--object", deals, "--json", *where)
    assert some.exit_code == 0, some.output

    data = json.loads(cli("report", "quality", "-c", "org", "--json", *where).stdout)
    assert data["snapshot_id"] == json.loads(some.stdout)["snapshot"]
    assert data["compared"]["snapshot_id"] == json.loads(full.stdout)["snapshot"]
    assert (data["compared"]["fixed_violations"], data["compared"]["removed_violations"]) == (0, 0)
    assert data["compared"]["new_violations"] == 0 and data["compared"]["score_delta"] == 0.0
    assert any("only on the rules both snapshots checked" in n for n in data["notes"]), data["notes"]
    assert all((o["trend"]["fixed_violations"], o["trend"]["removed_violations"]) == (0, 0)
               for o in data["owners"] if o["trend"] is not None)
