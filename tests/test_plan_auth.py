"""A plan applies exactly what its preview showed, and nothing it could not have come from (issue 5, item 1).

Forged plans are made as an attacker with write access to a plan file would make them: edit the
JSON, recompute the sha256 digest. They are applied through the CLI against the built-in sandbox,
and the org is read back through the connector to show that nothing was written.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crmsweep import api
from crmsweep.cli import app
from crmsweep.model import Change, Op, Plan, Record, Severity

runner = CliRunner()

USER_FIELDS = ["Id", "Username", "IsActive", "LastName"]
FORGED_USER: Record = {
    "FirstName": "Jane", "LastName": "Doe", "Username": "jane@x.org", "Email": "jane@x.org", "Title": "Admin",
    "IsActive": True,
}


@dataclass
class Site:
    """A home with its own sandbox org, a config, and the CLI pointed at both."""

    root: Path
    home: Path
    config: Path

    def __call__(self, *args: str, expect: int = 0, input: str | None = None) -> Any:
        result = runner.invoke(app, [*args, "--home", str(self.home), "--config", str(self.config)], env={},
                               input=input, catch_exceptions=False)
        assert result.exit_code == expect, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        return result

    def workspace(self) -> api.Workspace:
        return api.Workspace.load(self.config, self.home)

    def org(self) -> dict[str, dict[str, Record]]:
        """Every live User and Contact and Lead, read back through the connector."""
        rows: dict[str, dict[str, Record]] = {}
        with api.connect(self.workspace(), "sandbox-salesforce") as connector:
            for obj, fields in (("User", USER_FIELDS), ("Contact", ["Id", "LastName"]), ("Lead", ["Id", "LastName"])):
                rows[obj] = {r["Id"]: r for page in connector.iter_pages(obj, fields) for r in page}
        return rows

    def runs(self) -> list[Any]:
        return list(json.loads(self("runs", "list", "--json").stdout))

    def scan(self, name: str, *passes: str) -> Path:
        path = self.root / name
        self("scan", "-c", "sandbox-salesforce", "-o", str(path), "--json", *[a for p in passes for a in ("--pass", p)])
        return path


def make_site(root: Path) -> Site:
    config = root / "crmsweep.toml"
    config.write_text("[sandbox]\nrecords = 150\nseed = 3\n", encoding="utf-8")
    return Site(root, root / "home", config)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Shared by the tests that only see refusals: none of them may change the org."""
    yield make_site(tmp_path_factory.mktemp("auth"))


@pytest.fixture(scope="module")
def scan_plan(site: Site) -> Path:
    return site.scan("plan.json")


def error_line(result: Any) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {result.stderr!r}"
    return str(lines[0])


def read(path: Path) -> tuple[Plan, dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    return Plan.from_json(text)[0], json.loads(text)


def forge(path: Path, plan: Plan, doc: dict[str, Any]) -> Path:
    """What an attacker writes: the edited plan, its sha256 recomputed, the old signature (if any) kept."""
    forged = json.loads(plan.to_json())
    if "signature" in doc:
        forged["signature"] = doc["signature"]
    path.write_text(json.dumps(forged, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def sign_here(path: Path, plan: Plan, site: Site) -> Path:
    """As if the forger could sign with this home's key: provenance must still refuse."""
    from tests.plans import write_signed

    return write_signed(path, plan, site.workspace().home)


def jane_doe_create() -> Change:
    return Change(op=Op.CREATE, object="User", record_id="", before={}, after=dict(FORGED_USER),
                  reason="stale: no activity since 2019-01-01", pass_name="stale_contacts", severity=Severity.MINOR,
                  label="Jane Doe <jane@x.org>")


# --- forged plans ------------------------------------------------------------------------------------------


def test_an_appended_create_with_a_recomputed_digest_is_refused_and_writes_nothing(
    site: Site, scan_plan: Path, tmp_path: Path
) -> None:
    plan, doc = read(scan_plan)
    forged_plan = Plan(plan.header, (*plan.changes, jane_doe_create()))
    forged = forge(tmp_path / "forged.json", forged_plan, doc)
    org, runs = site.org(), site.runs()

    refused = error_line(site("apply", str(forged), "--yes", expect=3))
    assert refused == (
        f"crmsweep: plan {forged} was not written by this crmsweep home, or was edited after it was written: "
        f"review it with `crmsweep plan accept {forged} --config {site.config} --home {site.home}`"
    )
    assert site.org() == org and site.runs() == runs
    assert not any(u["Username"] == "jane@x.org" for u in site.org()["User"].values())

    # The preview shows every value the create would write, and that this home did not sign it.
    shown = site("preview", str(forged)).stdout
    create = next(line for line in shown.splitlines() if line.startswith("+ User"))
    assert create.startswith(
        '+ User (new record) "Jane Doe <jane@x.org>"  create (new id) with FirstName: "Jane", LastName: "Doe", '
        'Username: "jane@x.org", Email: "jane@x.org", Title: "Admin", IsActive: true  stale: no activity since'
    )
    assert "signature: not signed by this crmsweep home (written by another home, or edited after it was written)" \
        in shown

    # Accepting it does not help: stale_contacts deletes people, it never creates anything.
    before_accept = forged.read_bytes()
    refused = error_line(site("plan", "accept", str(forged), "--yes", expect=3))
    assert "1 change(s) of plan" in refused and "User (new record): pass stale_contacts does not propose create" \
        in refused
    assert forged.read_bytes() == before_accept

    # Nor does a signature made with this home's key: apply checks provenance itself.
    signed = sign_here(tmp_path / "signed.json", forged_plan, site)
    assert "pass stale_contacts does not propose create" in error_line(site("apply", str(signed), "--yes", expect=3))
    assert site.org() == org and site.runs() == runs


def test_before_images_shrunk_to_the_id_are_refused_even_signed(site: Site, tmp_path: Path) -> None:
    path = site.scan("deletes.json", "stale_contacts")
    plan, doc = read(path)
    assert plan.changes and all(c.op is Op.DELETE for c in plan.changes)
    shrunk = Plan(plan.header, tuple(replace(c, before={"Id": c.record_id}) for c in plan.changes))
    org, runs = site.org(), site.runs()

    forged = forge(tmp_path / "shrunk.json", shrunk, doc)
    assert "was not written by this crmsweep home" in error_line(site("apply", str(forged), "--yes", expect=3))

    signed = sign_here(tmp_path / "signed.json", shrunk, site)
    refused = error_line(site("apply", str(signed), "--yes", expect=3))
    # Before the id, the label and fingerprint give it away; with those kept, the snapshot row does.
    assert f"{len(plan.changes)} change(s) of plan" in refused and "scan again" in refused
    kept = Plan(plan.header, tuple(
        replace(c, before={k: v for k, v in c.before.items() if k in ("Id", "SystemModstamp", "Name", "Email")})
        for c in plan.changes
    ))
    refused = error_line(site("apply", str(sign_here(tmp_path / "kept.json", kept, site)), "--yes", expect=3))
    assert f"{len(plan.changes)} before-image(s) of the plan are not those of snapshot" in refused
    assert "its before-image lacks" in refused and "of the snapshot's fields" in refused
    assert error_line(site("plan", "accept", str(forged), "--yes", expect=3)).startswith(
        f"crmsweep: {len(plan.changes)} change(s) of plan")
    assert site.org() == org and site.runs() == runs


def test_a_deactivation_that_writes_more_than_the_pass_does_is_refused(
    site: Site, scan_plan: Path, tmp_path: Path
) -> None:
    plan, _doc = read(scan_plan)
    index = next(i for i, c in enumerate(plan.changes) if c.op is Op.DEACTIVATE)
    target = plan.changes[index]
    widened = replace(target, after={"IsActive": False, "Username": "attacker@example.com"})
    forged = Plan(plan.header, (*plan.changes[:index], widened, *plan.changes[index + 1:]))
    refused = error_line(site("apply", str(sign_here(tmp_path / "wide.json", forged, site)), "--yes", expect=3))
    assert f"User {target.record_id}: pass inactive_users writes IsActive=false, not " in refused


# --- accepting a plan from another home ----------------------------------------------------------------------


def test_a_plan_from_another_home_is_refused_then_accepted_then_applies(tmp_path: Path) -> None:
    from crmsweep.cleanup.plan_auth import signature_with

    site = make_site(tmp_path)
    path = site.scan("plan.json", "stale_contacts")
    plan, _doc = read(path)
    # Written by another home: same content, signed with another key.
    path.write_text(plan.to_json(signature=signature_with(secrets.token_bytes(32), plan)), encoding="utf-8")
    org = site.org()

    refused = error_line(site("apply", str(path), "--yes", expect=3))
    assert "was not written by this crmsweep home" in refused and f"crmsweep plan accept {path}" in refused
    assert "--yes" in error_line(site("plan", "accept", str(path), expect=3))  # no terminal to confirm on
    assert site.org() == org and site.runs() == []

    accepted = json.loads(site("plan", "accept", str(path), "--yes", "--json").stdout)
    assert accepted == {"plan": plan.header.plan_id, "digest": plan.digest, "file": str(path), "accepted": True,
                        "was": "foreign"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "signature: signed by this crmsweep home\n" in site("preview", str(path)).stdout
    again = site("plan", "accept", str(path), "--yes")
    assert "already signed by this crmsweep home" in again.stderr

    applied = json.loads(site("apply", str(path), "--yes", "--json").stdout)
    assert (applied["applied"], applied["failed"], applied["skipped"]) == (len(plan.changes), 0, 0)
    # The run keeps the very text it applied, signed, so `apply --resume` and rollback can trust it.
    assert (site.home / "runs" / applied["run"] / "plan.json").read_bytes() == path.read_bytes()
    live = site.org()
    for change in plan.changes:
        assert change.record_id in org[change.object] and change.record_id not in live[change.object]


def test_accept_shows_the_full_preview_and_declining_writes_nothing(
    site: Site, scan_plan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmsweep.commands import common

    plan, _doc = read(scan_plan)
    copy = tmp_path / "copy.json"
    copy.write_text(plan.to_json(), encoding="utf-8")  # unsigned, as a colleague's script might write it
    before = copy.read_bytes()
    monkeypatch.setattr(common, "interactive", lambda: True)
    result = site("plan", "accept", str(copy), input="n\n", expect=4)  # declined: exit 4
    # Every change, not the first few per object.
    assert sum(line[:2] in ("- ", "~ ", "+ ") for line in result.stdout.splitlines()) == len(plan.changes)
    assert "signature: not signed by this crmsweep home (no signature)" in result.stdout
    assert f"Accept plan {plan.header.plan_id} (" in result.stderr and plan.digest in result.stderr
    assert "Nothing accepted: declined at the confirmation." in result.stderr
    assert copy.read_bytes() == before


# --- what the admin is shown -----------------------------------------------------------------------------


def test_the_apply_prompt_shows_the_breakdown_and_the_digest(
    site: Site, scan_plan: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmsweep.commands import common

    plan, _doc = read(scan_plan)
    counts: dict[tuple[str, str], int] = {}
    for change in plan.changes:
        counts[(change.op.value, change.object)] = counts.get((change.op.value, change.object), 0) + 1
    # Each op in Salesforce's words: removing a custom field (op archive) is deleting it there.
    from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY as words

    breakdown = ", ".join(f"{n} {words.op_word(op, obj)} {obj}" for (op, obj), n in counts.items())
    assert ("delete", "Contact") in counts and ("deactivate", "User") in counts
    org, runs = site.org(), site.runs()
    monkeypatch.setattr(common, "interactive", lambda: True)
    result = site("apply", str(scan_plan), input="n\n", expect=4)  # declined: exit 4, nothing written
    assert (
        f"Apply {len(plan.changes)} changes ({breakdown}) to salesforce org {plan.header.org_id} "
        f"('sandbox-salesforce')? Plan {plan.header.plan_id}, {plan.digest} [y/N]:"
    ) in result.stderr
    assert "Nothing applied: declined at the confirmation." in result.stderr
    assert site.org() == org and site.runs() == runs


def test_preview_shows_every_value_a_create_or_update_writes() -> None:
    from crmsweep.cleanup.preview import change_line

    long = "a note that is much longer than forty characters, to the very end"
    create = Change(op=Op.CREATE, object="Contact", record_id="", before={},
                    after={"LastName": "Doe", "Description": long, "Score": 3}, reason="restore", pass_name="p")
    assert change_line(create) == (
        f'+ Contact (new record)  create (new id) with LastName: "Doe", Description: "{long}", Score: 3  restore'
    )
    update = Change(op=Op.UPDATE, object="Contact", record_id="003A", before={"Id": "003A", "Title": "x" * 50},
                    after={"Title": "line one\nline two\u200b" + "y" * 40}, reason="fix", pass_name="p")
    assert change_line(update) == (
        '~ Contact 003A  Title: "' + "x" * 39 + '…" → "line one\\nline two\\u200b' + "y" * 40 + '"  fix'
    )


# --- the key --------------------------------------------------------------------------------------------------


def test_the_key_is_made_once_private_and_a_readable_one_is_refused(tmp_path: Path) -> None:
    from crmsweep.cleanup.plan_auth import Trust, key_path, plan_key, signed_json, trust_of
    from crmsweep.errors import SafetyRefusal
    from crmsweep.model import PlanFile
    from crmsweep.paths import Home
    from tests.test_scan import scan

    home = Home(tmp_path / "home")
    plan = scan().plan
    assert trust_of(PlanFile.parse(plan.to_json()), home) is Trust.UNSIGNED
    assert not key_path(home).exists()  # reading a plan makes no key
    text = signed_json(plan, home)
    key = key_path(home)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert len(key.read_bytes()) == 32 and plan_key(home) == key.read_bytes()
    assert json.loads(text)["signature"].startswith("hmac-sha256:")
    assert trust_of(PlanFile.parse(text), home) is Trust.SIGNED
    assert trust_of(PlanFile.parse(text), Home(tmp_path / "other")) is Trust.FOREIGN
    edited = text.replace('"reason": "stale', '"reason": "Stale')
    assert trust_of(PlanFile.parse(edited), home) is Trust.EDITED

    os.chmod(key, 0o644)
    with pytest.raises(SafetyRefusal, match=r"plan key .* is readable by others \(mode 0644\)"):
        trust_of(PlanFile.parse(text), home)
    os.chmod(key, 0o600)
    key.write_bytes(b"short")
    with pytest.raises(SafetyRefusal, match=r"plan key .* is damaged \(5 bytes, not 32\)"):
        signed_json(plan, home)


def test_a_home_where_no_key_can_be_made_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    from crmsweep.cleanup.plan_auth import signed_json
    from crmsweep.errors import BadInput
    from crmsweep.paths import Home
    from tests.test_scan import scan

    home = Home(tmp_path / "home")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "keys").write_text("not a folder", encoding="utf-8")
    with pytest.raises(BadInput, match=r"^cannot read the plan key .*keys/plan\.key: Not a directory$"):
        signed_json(scan().plan, home)
