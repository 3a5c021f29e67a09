"""An accepted plan holds only what this home's scan of its snapshot would propose (issue 5, item 1, review).

A forger who can write a plan file and have the admin accept it must not get in a change the passes
would never propose (a contact that is not stale, the user crmsweep runs as, a protected id), nor
more changes than the [safety] caps allow, nor terminal escapes that hide lines from the preview.
Everything goes through the CLI against the built-in sandbox; the org is read back to show what
was written.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crmsweep import api
from crmsweep.backup.snapshot import open_snapshot
from crmsweep.cleanup.labels import record_label
from crmsweep.model import Change, Op, Plan, Severity, canonical_datetime
from tests.test_plan_auth import Site, error_line, make_site, read

ESC = "\x1b"
HIDING_NOTE = "stale_contacts: \x1b[2K\x1b[G\x1b[1A\x1b[2K- Contact 003000000000027AAA \"Victim\""


def unsigned(path: Path, plan: Plan) -> Path:
    """What a colleague's script (or a forger) writes: a well-formed plan with its digest, no signature."""
    path.write_text(plan.to_json(), encoding="utf-8")
    return path


def snapshot_rows(site: Site, plan: Plan, obj: str) -> dict[str, dict[str, object]]:
    reader = open_snapshot(site.workspace().home, str(plan.header.snapshot_id))
    ids = [str(i) for i in reader.frame(obj, ["Id"])["Id"]]
    return reader.record_map(obj, ids)


def running_user(site: Site) -> str:
    with api.connect(site.workspace(), "sandbox-salesforce") as connector:
        user = connector.current_user_id()
    assert user
    return user


def forged_change(site: Site, op: Op, obj: str, row: dict[str, object], pass_name: str, reason: str) -> Change:
    with api.connect(site.workspace(), "sandbox-salesforce") as connector:
        vocabulary = connector.vocabulary
    after = {"IsActive": False} if op is Op.DEACTIVATE else {}
    return Change(op=op, object=obj, record_id=str(row["Id"]), before=dict(row), after=after, reason=reason,
                  pass_name=pass_name, severity=Severity.MINOR, fingerprint=str(row["SystemModstamp"]),
                  label=record_label(vocabulary, obj, row))


def test_accept_refuses_a_delete_and_a_deactivation_the_passes_would_not_propose(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    plan, _doc = read(site.scan("plan.json"))
    proposed = {c.record_id for c in plan.changes}
    contacts = snapshot_rows(site, plan, "Contact")
    fresh = next(row for rid, row in contacts.items() if rid not in proposed)
    me = running_user(site)
    myself = snapshot_rows(site, plan, "User")[me]
    forged = Plan(plan.header, (
        *plan.changes,
        forged_change(site, Op.DELETE, "Contact", fresh, "stale_contacts", "last modified 2019-01-01"),
        forged_change(site, Op.DEACTIVATE, "User", myself, "inactive_users", "no login since 2019-01-01"),
    ))
    path = unsigned(tmp_path / "forged.json", forged)
    before, org = path.read_bytes(), site.org()

    refused = error_line(site("plan", "accept", str(path), "--yes", expect=3))
    assert refused.startswith("crmsweep: 2 change(s) of plan ")
    assert f"Contact {fresh['Id']}: " in refused and f"User {me}: " in refused
    assert path.read_bytes() == before
    assert "review it with `crmsweep plan accept" in error_line(site("apply", str(path), "--yes", expect=3))
    assert site.org() == org and site.runs() == []


def test_accept_refuses_a_change_to_a_record_this_home_protects(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    plan, _doc = read(site.scan("plan.json", "stale_contacts"))
    victim = plan.changes[0].record_id
    path = unsigned(tmp_path / "copy.json", plan)
    site.config.write_text(site.config.read_text() + f'\n[protect]\nids = ["{victim}"]\n', encoding="utf-8")
    org = site.org()

    refused = error_line(site("plan", "accept", str(path), "--yes", expect=3))
    assert f"Contact {victim}: " in refused and "protect" in refused
    assert site.org() == org and victim in site.org()["Contact"]


def test_a_trimmed_plan_from_another_home_is_accepted_and_applies(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    plan, _doc = read(site.scan("plan.json", "stale_contacts"))
    kept = plan.changes[::2]
    path = unsigned(tmp_path / "trimmed.json", Plan(plan.header, kept))
    accepted = json.loads(site("plan", "accept", str(path), "--yes", "--json").stdout)
    assert accepted["accepted"] is True
    applied = json.loads(site("apply", str(path), "--yes", "--json").stdout)
    assert (applied["applied"], applied["failed"], applied["skipped"]) == (len(kept), 0, 0)
    live = site.org()
    assert all(c.record_id not in live[c.object] for c in kept)
    assert all(c.record_id in live[c.object] for c in plan.changes[1::2])


def test_accept_refuses_a_plan_without_pass_settings_or_created_in_the_future(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    plan, _doc = read(site.scan("plan.json", "stale_contacts"))
    bare = unsigned(tmp_path / "bare.json", plan.with_header(pass_settings={}))
    assert "does not record the settings its passes ran with" in error_line(
        site("plan", "accept", str(bare), "--yes", expect=3))
    bad = unsigned(tmp_path / "bad.json", plan.with_header(
        pass_settings={"stale_contacts": {**plan.header.pass_settings["stale_contacts"], "years": -1}}))
    assert "settings" in error_line(site("plan", "accept", str(bad), "--yes", expect=3))
    later = canonical_datetime(datetime.now(UTC) + timedelta(days=3))
    future = unsigned(tmp_path / "future.json", plan.with_header(created=later))
    assert "in the future" in error_line(site("plan", "accept", str(future), "--yes", expect=3))
    garbled = unsigned(tmp_path / "garbled.json", plan.with_header(created="yesterday"))
    assert "created" in error_line(site("plan", "accept", str(garbled), "--yes", expect=3))


def test_the_safety_caps_hold_at_accept_and_at_apply(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    plan, _doc = read(site.scan("plan.json"))
    assert len(plan.changes) > 2
    site.config.write_text(site.config.read_text() + "\n[safety]\nmax_changes = 2\n", encoding="utf-8")
    org = site.org()

    # Signed by this home, but made under other caps: the caps in force now refuse it.
    refused = error_line(site("apply", str(tmp_path / "plan.json"), "--yes", expect=3))
    assert f"the plan holds {len(plan.changes)} changes, over [safety] max_changes = 2" in refused
    # Accepting never carries an over-cap allowance, whatever the file says.
    copy = unsigned(tmp_path / "copy.json", plan)
    assert "over [safety] max_changes = 2" in error_line(site("plan", "accept", str(copy), "--yes", expect=3))
    allowed = unsigned(tmp_path / "allowed.json", plan.with_header(over_cap_allowed=True))
    assert "allowed over the [safety] caps" in error_line(site("plan", "accept", str(allowed), "--yes", expect=3))
    assert site.org() == org and site.runs() == []

    # A scan of this home allowed over them is applied: the signature proves the admin asked for it here.
    over = site.root / "over.json"
    site("scan", "-c", "sandbox-salesforce", "-o", str(over), "--allow-over-cap", "--snapshot",
         str(plan.header.snapshot_id))
    assert "already signed by this crmsweep home" in site("plan", "accept", str(over), "--yes").stderr
    applied = json.loads(site("apply", str(over), "--yes", "--json").stdout)
    assert applied["applied"] == len(read(over)[0].changes) > 2


def test_terminal_escapes_in_a_plan_never_reach_the_screen_and_accept_refuses_them(tmp_path: Path) -> None:
    from tests.plans import write_signed

    site = make_site(tmp_path)
    plan, _doc = read(site.scan("plan.json", "stale_contacts"))
    hiding = plan.with_header(notes=(*plan.header.notes, HIDING_NOTE), plan_id=plan.header.plan_id + ESC + "[2K",
                              held_back={"stale_contacts": {"open deal" + ESC + "[1A\u202e\x9b": 1}})
    path = unsigned(tmp_path / "hiding.json", hiding)
    shown = site("preview", str(path))
    assert ESC not in shown.stdout and ESC not in shown.stderr
    assert "\\x1b[2K\\x1b[G\\x1b[1A\\x1b[2K- Contact 003000000000027AAA" in shown.stdout
    assert "held back: 1 open deal\\x1b[1A\\u202e\\x9b" in shown.stdout
    as_json = site("preview", str(path), "--json").stdout
    assert all(ch.isprintable() or ch == "\n" for ch in as_json)
    assert json.loads(as_json)["held_back"] == {"stale_contacts": {"open deal" + ESC + "[1A\u202e\x9b": 1}}
    refused = site("plan", "accept", str(path), "--yes", expect=3)
    assert ESC not in refused.stdout + refused.stderr
    assert "control character" in error_line(refused)

    # A signed plan with an escape in its id: neither the prompt, the report nor the run log shows it raw.
    signed = write_signed(tmp_path / "signed.json", replace(hiding.with_header(notes=plan.header.notes)),
                          site.workspace().home)
    done = site("apply", str(signed), "--yes")
    assert ESC not in done.stdout + done.stderr
    run = site.runs()[0]["run"]
    for args in (("runs", "list"), ("runs", "show", run), ("apply", str(signed), "--yes")):
        result = site(*args)
        assert ESC not in result.stdout + result.stderr, args


def test_the_apply_prompt_names_the_connection_written_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from crmsweep.commands import apply as apply_command
    from crmsweep.commands import common
    from tests.plans import write_signed

    site = make_site(tmp_path)
    site.config.write_text(site.config.read_text() + "\n[safety]\nconfirm_typed_over = 1\n", encoding="utf-8")
    plan, _doc = read(site.scan("plan.json", "stale_contacts"))
    elsewhere = write_signed(tmp_path / "elsewhere.json", plan.with_header(connection="prod-eu"),
                             site.workspace().home)
    monkeypatch.setattr(common, "interactive", lambda: True)
    monkeypatch.setattr(apply_command, "interactive", lambda: True, raising=False)
    org = site.org()

    # The plan's connection is not the one written to: typing it does not confirm.
    declined = site("apply", str(elsewhere), "-c", "sandbox-salesforce", input="prod-eu\n", expect=4)
    assert "('sandbox-salesforce')? Plan" in declined.stderr and "prod-eu" not in declined.stderr.split("You typed")[0]
    assert site.org() == org and site.runs() == []
    applied = site("apply", str(elsewhere), "-c", "sandbox-salesforce", input="sandbox-salesforce\n")
    assert f"applied {len(plan.changes)}, skipped 0, failed 0" in applied.stderr


def test_accept_refuses_the_rollback_plan_of_a_run_already_rolled_back(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    path = site.scan("plan.json", "stale_contacts")
    run = json.loads(site("apply", str(path), "--yes", "--json").stdout)["run"]
    written = tmp_path / "undo.json"
    site("rollback", run, "-o", str(written))
    copy = unsigned(tmp_path / "copy.json", read(written)[0])
    site("rollback", run, "--yes")
    org = site.org()
    refused = error_line(site("plan", "accept", str(copy), "--yes", expect=3))
    assert refused.startswith(f"crmsweep: run {run} was already rolled back by run ")
    # Applied, it is a repeat that writes nothing, answered as a second `rollback RUN` is (exit 0).
    assert f"Nothing to do: run {run} was already rolled back by run " in site("apply", str(written), "--yes").stderr
    assert site.org() == org
