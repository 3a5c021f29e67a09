"""Settling a create of unknown outcome whose landed record was edited before the resume (on the test
fake and as pure verdicts): found by the key the CRM keeps on it, it is the create's record whatever its
values are now; told only by values, a record holding most of them stops the run rather than be copied.
HubSpot end to end: tests/test_resume_edited_copy_hubspot.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crmsweep.backup.rollback import build_rollback_plan
from crmsweep.backup.runlog import Outcome, read_run
from crmsweep.cleanup.apply import apply_plan
from crmsweep.cleanup.drift import created_matches, near_matches
from crmsweep.errors import SafetyRefusal
from crmsweep.model import CreateAttempt, Record
from crmsweep.paths import Home
from tests.fake_connector import FAKE_VOCABULARY
from tests.plans import signed
from tests.test_apply import copy_org, make_org
from tests.test_recreate_plain import LosesTheAnswer, archived, live_contacts

pytestmark = pytest.mark.usefixtures("test_pass_registered")

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
SENT = CreateAttempt(key="k1", values={"LastName": "Doe", "Email": "d@example.com", "Score": 1, "OwnerId": None},
                     sent_after="2030-01-01T00:00:00.000Z")


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


def test_a_record_carrying_the_creates_key_is_its_record_even_with_every_value_edited() -> None:
    edited = {"Id": "A", "Key": "k1", "LastName": "Roe", "Email": "r@example.com", "Score": 7}
    assert created_matches(SENT, [edited], "Id", key_field="Key") == ["A"]
    assert created_matches(SENT, [edited], "Id", key_field="Key", exclude=["A"]) == []
    # Without the key field, values decide as before: an edited record is not an exact match.
    assert created_matches(SENT, [edited], "Id") == []


def test_a_record_carrying_another_creates_key_is_never_it_even_with_the_same_values() -> None:
    twin = {"Id": "B", "Key": "k2", **SENT.values}
    assert created_matches(SENT, [twin], "Id", key_field="Key") == []
    assert near_matches(SENT, [{**twin, "Score": 2}], "Id", key_field="Key") == {}
    unkeyed = {"Id": "C", "Key": None, **SENT.values}
    assert created_matches(SENT, [twin, unkeyed], "Id", key_field="Key") == ["C"]


def test_a_record_holding_at_least_half_of_the_values_sent_is_a_near_match_naming_what_differs() -> None:
    one_edit = {"Id": "A", **SENT.values, "LastName": "Roe"}
    filled_in = {"Id": "B", **SENT.values, "OwnerId": "005X"}  # an empty value filled in since
    stranger = {"Id": "C", "LastName": "Roe", "Email": "r@example.com", "Score": 1, "OwnerId": None}
    exact = {"Id": "D", **SENT.values}
    found = near_matches(SENT, [one_edit, filled_in, stranger, exact], "Id", exclude=["X"])
    assert found == {"A": ["LastName"], "B": ["OwnerId"]}
    assert near_matches(SENT, [one_edit], "Id", exclude=["A"]) == {}
    # Empty fields shared are no likeness: a record agreeing only on them is a stranger.
    assert near_matches(replace(SENT, values={"LastName": "Doe", "OwnerId": None}),
                        [{"Id": "E", "LastName": "Roe", "OwnerId": None}], "Id") == {}


class KeepsKeys(LosesTheAnswer):
    """A CRM that keeps the create's key on the record, and returns it with what it finds."""

    def find_created(self, object_name: str, attempts: Sequence[CreateAttempt]) -> dict[str, list[Record]]:
        found = super().find_created(object_name, attempts)
        return {key: [{**r, "Key": key} for r in rows] for key, rows in found.items()}


def stopped_rollback(tmp_path: Path, home: Home, org: LosesTheAnswer) -> tuple[str, str, str]:
    """(rollback run, its plan's text, the landed copy someone edited since) of a rollback of one archive
    stopped with its create landed unanswered."""
    run_id = archived(tmp_path, home, org, 1)
    plan, text = signed(build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY), home)
    stopped = apply_plan(plan, text, org, home)
    assert stopped.stopped and read_run(home, stopped.run_id).count(Outcome.PENDING) == 1
    [(copy_id, _)] = [(k, v) for k, v in org.all_rows("Contact").items() if k.startswith("NEW")]
    org.touch_behind_our_back("Contact", copy_id, Email="edited@example.com")
    return stopped.run_id, text, copy_id


def test_a_copy_found_by_its_key_and_edited_since_is_settled_as_created_and_kept(
    tmp_path: Path, home: Home
) -> None:
    org: KeepsKeys = copy_org(make_org(contacts=2), KeepsKeys)
    org.vocabulary = replace(FAKE_VOCABULARY, create_key_field="Key")
    rollback_run, text, copy_id = stopped_rollback(tmp_path, home, org)
    plan = read_run(home, rollback_run).plan

    resumed = apply_plan(plan, text, org, home, resume_run=rollback_run)

    assert (resumed.applied, resumed.failed, resumed.remaining) == (1, 0, 0)
    assert len(live_contacts(org)) == 2  # no second copy
    assert org.row("Contact", copy_id)["Email"] == "edited@example.com"
    assert list(read_run(home, rollback_run).id_map["Contact"].values()) == [copy_id]


def test_told_by_values_alone_an_edited_copy_stops_the_resume_and_nothing_is_sent_again(
    tmp_path: Path, home: Home
) -> None:
    org: LosesTheAnswer = copy_org(make_org(contacts=2), LosesTheAnswer)
    rollback_run, text, copy_id = stopped_rollback(tmp_path, home, org)
    plan = read_run(home, rollback_run).plan

    with pytest.raises(SafetyRefusal, match=rf"{copy_id} \(differs in Email") as refused:
        apply_plan(plan, text, org, home, resume_run=rollback_run)

    assert "second copy" in str(refused.value)
    assert len(live_contacts(org)) == 2
    assert [w[0] for w in org.writes].count("create") == 1  # the one that landed, never again
    state = read_run(home, rollback_run)
    assert state.count(Outcome.PENDING) == 1 and state.status == "stopped"
