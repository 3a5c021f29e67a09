"""The default seeded Salesforce org and its planted.json: what each pass must find is written down,
names records that exist, and (for the passes on main) is exactly what the passes propose."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crmsweep import api
from crmsweep.sandbox.ids import key_prefix
from crmsweep.sandbox.planted import read_planted
from crmsweep.sandbox.schema import BY_KEY_PREFIX
from crmsweep.sandbox.seed import generate
from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.sandbox_workspace import org_workspace
from tests.test_sandbox_api import Client, connect, ids_of

TOKEN_ENV = "PLANTED_TEST_TOKEN"
# The Salesforce passes of issue 7's table; unused_custom_fields is planted by the custom-field seed.
PASSES = ("stale_contacts", "no_contact_info", "bounced_emails", "duplicates", "inactive_users", "orphaned_tasks",
          "stale_open_deals", "finished_campaigns", "empty_accounts", "stale_reports", "stale_templates",
          "old_files")
# Where no held-back candidate can exist with default settings: a report or template old enough to
# qualify was created long before the 30 recent days, and so was a user idle for 90 days.
NOTHING_TO_HOLD = ("inactive_users", "stale_reports", "stale_templates")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path_factory.mktemp("planted")) as running:  # the default size and seed
        yield running


@pytest.fixture(scope="module")
def sf(sandbox: RunningSandbox) -> Client:
    return connect(sandbox.info)


@pytest.fixture(scope="module")
def planted(sandbox: RunningSandbox) -> dict[str, dict[str, list[object]]]:
    return read_planted(sandbox.info.state_dir)


def test_planted_json_covers_every_pass_with_true_held_and_near_miss_candidates(
    planted: dict[str, dict[str, list[object]]],
) -> None:
    assert set(PASSES) <= set(planted)
    for name in PASSES:
        entry = planted[name]
        if name == "duplicates":
            assert len(entry["groups"]) >= 2 and all(len(g) >= 2 for g in entry["groups"])  # type: ignore[arg-type]
            continue
        assert len(entry["proposed"]) >= 2, name
        assert name in NOTHING_TO_HOLD or len(entry["held"]) >= 1, name
        assert name == "inactive_users" or len(entry["near_misses"]) >= 1, name
        ids = [*entry["proposed"], *entry["held"], *entry["near_misses"]]
        assert len(ids) == len(set(ids)), name  # each record planted once per pass


def test_every_planted_id_names_a_live_record(sf: Client, planted: dict[str, dict[str, list[object]]]) -> None:
    wanted: dict[str, set[str]] = {}
    for name, entry in planted.items():
        if name == "unused_custom_fields":
            continue  # Tooling records (CustomField), not sObjects: tests/test_unused_fields_salesforce.py reads them
        groups = [g for g in entry.get("groups", []) if isinstance(g, list)]
        for record_id in [*entry["proposed"], *entry["held"], *entry["near_misses"], *(i for g in groups for i in g)]:
            wanted.setdefault(BY_KEY_PREFIX[key_prefix(str(record_id))].name, set()).add(str(record_id))
    for object_name, expected in wanted.items():
        found: set[str] = set()
        ordered = sorted(expected)
        for start in range(0, len(ordered), 200):
            chunk = ", ".join(f"'{i}'" for i in ordered[start : start + 200])
            found.update(ids_of(sf, f"SELECT Id FROM {object_name} WHERE Id IN ({chunk})"))
        assert found == expected, object_name


def test_the_seed_plants_the_same_org_and_answer_each_time() -> None:
    anchor = datetime(2026, 6, 1, tzinfo=UTC)
    first, again = generate(400, 3, anchor), generate(400, 3, anchor)
    assert first.planted == again.planted and first.tables == again.tables
    assert first.planted["stale_reports"]["near_misses"]  # small orgs are planted too


def test_the_passes_on_main_propose_exactly_what_was_planted(
    sandbox: RunningSandbox, planted: dict[str, dict[str, list[object]]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = org_workspace(sandbox.info, tmp_path, monkeypatch, provider="salesforce", token_env=TOKEN_ENV,
                       extra="[safety]\nmax_changes = 100000\nmax_changes_per_object = 100000\n")
    passes = ["stale_contacts", "inactive_users"]
    outcome = api.scan(ws, "org", tmp_path / "plan.json", passes=passes)
    for name in passes:
        proposed = sorted(c.record_id for c in outcome.result.plan.changes if c.pass_name == name)
        assert proposed == sorted(str(i) for i in planted[name]["proposed"]), name
        held = sum(outcome.result.held_back.get(name, {}).values())
        assert held == len(planted[name]["held"]), name


RULES = {  # each pass's rule as SOQL over the seeded org: its candidates (proposed and held back)
    "finished_campaigns": [
        "SELECT Id FROM Campaign WHERE IsActive = true AND (Status = 'Completed' OR EndDate < TODAY)",
    ],
    "stale_open_deals": ["SELECT Id FROM Opportunity WHERE IsClosed = false AND CloseDate < LAST_N_DAYS:90"],
    "stale_reports": [
        "SELECT Id FROM Report WHERE LastRunDate < LAST_N_DAYS:365 OR "
        "(LastRunDate = null AND CreatedDate < LAST_N_DAYS:365)",
        "SELECT Id FROM Dashboard WHERE LastRefreshDate < LAST_N_DAYS:365 OR "
        "(LastRefreshDate = null AND CreatedDate < LAST_N_DAYS:365)",
    ],
    "stale_templates": [
        "SELECT Id FROM EmailTemplate WHERE IsActive = true AND (LastUsedDate < LAST_N_DAYS:365 OR "
        "((TimesUsed = 0 OR TimesUsed = null) AND CreatedDate < LAST_N_DAYS:365))",
    ],
}


def test_the_planted_candidates_are_what_each_rule_finds_in_the_org(
    sf: Client, planted: dict[str, dict[str, list[object]]]
) -> None:
    for name, queries in RULES.items():
        found = {i for soql in queries for i in ids_of(sf, soql)}
        assert found == {*planted[name]["proposed"], *planted[name]["held"]}, name
    old = ids_of(sf, "SELECT Id FROM ContentDocument WHERE CreatedDate < LAST_N_DAYS:730")
    bound: set[str] = set()
    for document in old:
        linked = sf.query(f"SELECT LinkedEntityId FROM ContentDocumentLink WHERE ContentDocumentId = '{document}'")
        if any(str(r["LinkedEntityId"])[:3] in ("800", "801", "0Q0", "3tt") for r in linked["records"]):
            bound.add(document)
    assert set(old) - bound == set(planted["old_files"]["proposed"]) and bound


def test_the_seed_plants_hard_bounces_to_clear_and_soft_ones_to_keep(
    sf: Client, planted: dict[str, dict[str, list[object]]]
) -> None:
    entry = planted["bounced_emails"]
    replies: dict[str, str | None] = {}
    for name in ("Contact", "Lead"):
        for row in sf.query_all_iter(f"SELECT Id, Email, EmailBouncedReason, CreatedDate FROM {name} "
                                     "WHERE EmailBouncedDate != null"):
            if row["Email"]:
                replies[row["Id"]] = row["EmailBouncedReason"]
    proposed = {replies[str(i)] for i in entry["proposed"]}
    held = [replies[str(i)] for i in entry["held"]]
    # Hard: the address is bad (5.1.1 or in words), or no reply at all; all of them are proposed.
    assert {None, "550 No such user here", "550 5.1.1 mailbox does not exist"} <= proposed
    assert not proposed & {"552 5.2.2 mailbox full", "554 5.7.1 message rejected as spam"}
    # Soft: a full mailbox, spam, a deferral by its words, one by its 4xx code only; held back, never proposed.
    assert {"552 5.2.2 mailbox full", "554 5.7.1 message rejected as spam", "452 4.2.2 Mailbox over quota",
            "421 4.7.0 Temporarily deferred", "450 4.2.0 Greylisted, please retry later"} <= set(held)
    assert held.count("552 5.2.2 mailbox full") >= 2 and held.count("554 5.7.1 message rejected as spam") >= 2
