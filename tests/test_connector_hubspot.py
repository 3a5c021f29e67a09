"""The HubSpot connector through hubspot-api-client against the HubSpot sandbox over real TLS: backup of
the seeded portal, rate-limit pacing and 429s, the daily stop and resume, 207 partial batches, the
portal's validation rules, search past the 10,000 cap, and creates that never duplicate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

from crmsweep.backup.snapshot_verify import verify_snapshot
from crmsweep.backup.snapshot_writer import take_snapshot
from crmsweep.connectors.base import Connection
from crmsweep.connectors.hubspot import RESTORE_KEY_PROPERTY, HubSpotConnector
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.errors import ConnectorError, LimitExceeded, ReserveKept
from crmsweep.model import association_object
from crmsweep.paths import Home
from crmsweep.sandbox import faults
from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.fake_clock import FakeClock
from tests.hubspot_fixtures import RECORDS, SEED, all_pages, hs, hubspot_sandbox

__all__ = ["hs", "hubspot_sandbox"]  # fixtures

ADMIN = "/__sandbox-hubspot/"


def connect(sandbox: RunningSandbox, retry: RetryPolicy | None = None, **options: Any) -> HubSpotConnector:
    info = sandbox.info
    connection = Connection(name="hs", provider="hubspot", url=info.url, token=info.token,
                            ca_file=Path(info.ca_file))
    return HubSpotConnector(connection, retry=retry or RetryPolicy.immediate(4), **options)


def admin(sandbox: RunningSandbox, path: str, body: Any) -> Any:
    info = sandbox.info
    pool = urllib3.PoolManager(ca_certs=str(info.ca_file))
    answer = pool.request("POST", f"{info.url}{ADMIN}{path}", body=json.dumps(body).encode(),
                          headers={"Authorization": f"Bearer {info.token}", "Content-Type": "application/json"})
    assert answer.status == 200, answer.data
    return json.loads(answer.data)


def share_clock(sandbox: RunningSandbox, clock: FakeClock, ten_secondly: int, search_per_second: int = 5) -> None:
    """The sandbox's rate windows on the test's clock, so waiting costs no real time."""
    limits = sandbox._server.core.api.limits  # type: ignore[attr-defined]
    limits._clock = clock
    limits.configure(ten_secondly, search_per_second)


def live_ids(hs: Any, object_type: str) -> list[str]:
    return [r.id for r in all_pages(hs.crm.objects.basic_api, object_type=object_type, archived=False)]


# --- backup ---------------------------------------------------------------------------------------


def test_a_backup_of_the_seeded_portal_holds_what_the_portal_holds(hubspot_sandbox: RunningSandbox, hs: Any,
                                                                    tmp_path: Path) -> None:
    gone = live_ids(hs, "contacts")[:3]
    hs.crm.contacts.batch_api.archive({"inputs": [{"id": i} for i in gone]})
    # The backup counts each object by a search first (its read plan), in a burst the sandbox's search
    # limit may refuse once: a policy that waits the Retry-After out, as the configured one does.
    connector = connect(hubspot_sandbox, RetryPolicy(attempts=4, initial_wait=0.2, max_wait=1.5))
    home = Home(tmp_path / "home")
    objects = list(connector.vocabulary.default_backup_objects)
    manifest = take_snapshot(connector, home, objects=objects)

    crm = [o for o in objects if o != "owners"]
    for name in crm:
        live = len(all_pages(hs.crm.objects.basic_api, object_type=name, archived=False))
        archived = len(all_pages(hs.crm.objects.basic_api, object_type=name, archived=True))
        assert manifest.objects[name].rows == live + archived, name
    assert manifest.objects["contacts"].rows == RECORDS  # the three archived contacts are kept too
    owners = all_pages(hs.crm.owners.owners_api, archived=False) + all_pages(hs.crm.owners.owners_api, archived=True)
    assert manifest.objects["owners"].rows == len(owners)
    assert any(o.archived for o in owners)  # owners of deactivated users are in the backup
    # The links between every pair of backed-up objects, one row per link, read through v4.
    for i, source in enumerate(crm):
        for target in crm[i + 1 :]:
            ids = live_ids(hs, source)
            links = 0
            for start in range(0, len(ids), 1000):
                answer = hs.crm.associations.v4.batch_api.get_page(
                    source, target, {"inputs": [{"id": x} for x in ids[start : start + 1000]]})
                links += sum(len(r.to) for r in answer.results)
            assert manifest.objects[association_object(source, target)].rows == links, (source, target)
    assert manifest.objects[association_object("companies", "contacts")].rows > 0
    assert manifest.objects[association_object("contacts", "deals")].rows > 0
    # Property definitions and groups are each object's describe; users, lists, emails are documents.
    assert {"metadata/users.json", "metadata/lists.json", "metadata/marketing_emails.json",
            "metadata/describe/contacts.json"} <= set(manifest.metadata)
    folder = home.snapshots_dir / manifest.snapshot_id
    describe = json.loads((folder / "metadata/describe/contacts.json").read_text())
    assert {"properties", "archivedProperties", "groups"} <= set(describe) and describe["groups"]
    emails = json.loads((folder / "metadata/marketing_emails.json").read_text())
    assert any(e.get("archived") for e in emails)  # old, archived emails are kept
    users = json.loads((folder / "metadata/users.json").read_text())
    assert len(users) == len(all_pages(hs.settings.users.users_api))
    assert verify_snapshot(home, manifest.snapshot_id).ok


def test_wide_property_lists_are_split_so_no_url_grows_too_long(hubspot_sandbox: RunningSandbox) -> None:
    connector = connect(hubspot_sandbox, max_property_query=200)
    names = [f.name for f in connector.fields("contacts")]
    whole = {r["id"]: r for page in connect(hubspot_sandbox).iter_pages("contacts", names) for r in page}
    hubspot_sandbox.reset_stats()
    split = {r["id"]: r for page in connector.iter_pages("contacts", names) for r in page}
    assert split == whole and len(split) == RECORDS
    by_endpoint = hubspot_sandbox.stats()["by_endpoint"]
    # Three list pages of 100, each completed by one batch/read with the rest of the properties in the body.
    assert by_endpoint["GET /crm/v3/objects/contacts"] == 3
    assert by_endpoint["POST /crm/v3/objects/contacts/batch/read"] == 3


# --- rate limits ------------------------------------------------------------------------------------


def test_calls_are_paced_under_the_ten_second_window_with_no_429(hubspot_sandbox: RunningSandbox) -> None:
    clock = FakeClock()
    share_clock(hubspot_sandbox, clock, ten_secondly=10)
    connector = connect(hubspot_sandbox, RetryPolicy(attempts=3, initial_wait=0, max_wait=30, jitter=False,
                                                     sleep=clock.sleep, clock=clock))
    rows = sum(len(page) for page in connector.iter_pages("contacts", ["email"]))  # 3 pages
    for _ in range(20):
        connector._org_id = None  # ask again: twenty more calls
        connector.org_id()
    assert rows == RECORDS
    assert connector.rate_limited == 0
    assert hubspot_sandbox.stats()["rate_limited"] == {}
    # 23 calls at 9 a window (one kept spare): two full waits for the window to roll.
    assert connector.pacer.window_limit == 10
    assert len(clock.slept) == 2


def test_a_429_from_a_window_others_spent_is_waited_out_as_retry_after_says(hubspot_sandbox: RunningSandbox) -> None:
    clock = FakeClock()
    share_clock(hubspot_sandbox, clock, ten_secondly=5)
    other = connect(hubspot_sandbox)
    for _ in range(5):  # another integration spends the window, unseen by the connector under test
        other._org_id = None
        other.org_id()
    connector = connect(hubspot_sandbox, RetryPolicy(attempts=3, initial_wait=0, max_wait=30, jitter=False,
                                                     sleep=clock.sleep, clock=clock))
    assert connector.org_id() == hubspot_sandbox.info.org_id
    assert connector.rate_limited == 1
    assert hubspot_sandbox.stats()["rate_limited"] == {"TEN_SECONDLY_ROLLING": 1}
    assert clock.slept == [10.0]  # the sandbox's Retry-After, whole seconds


def test_search_keeps_to_five_a_second(hubspot_sandbox: RunningSandbox) -> None:
    clock = FakeClock()
    share_clock(hubspot_sandbox, clock, ten_secondly=100, search_per_second=5)
    connector = connect(hubspot_sandbox, RetryPolicy(attempts=3, initial_wait=0, max_wait=30, jitter=False,
                                                     sleep=clock.sleep, clock=clock))
    counts = [connector.count("contacts", has_value=["email"]) for _ in range(12)]
    assert len(set(counts)) == 1
    assert hubspot_sandbox.stats()["rate_limited"] == {}
    assert len(clock.slept) == 2  # after the 5th and the 10th search


def test_the_daily_allowance_stops_a_backup_cleanly_and_it_resumes_after_the_reset(tmp_path: Path) -> None:
    state = tmp_path / "hubspot"
    home = Home(tmp_path / "home")
    with start_sandbox(state, provider="hubspot", records=RECORDS, seed=SEED, api_limit=15) as running:
        connector = connect(running, RetryPolicy(attempts=4, initial_wait=0, max_wait=0, jitter=False,
                                                 sleep=lambda _s: None, daily_reserve=0.0))
        with pytest.raises(LimitExceeded) as caught:
            take_snapshot(connector, home, objects=["contacts", "companies", "deals"])
        assert caught.value.code == "DAILY"
        assert running.stats()["rate_limited"] == {"DAILY": 1}  # stopped at the first, not retried
    assert list(home.snapshots_dir.iterdir()) == []  # nothing half-written left behind
    # The allowance resets (here: a bigger one); the same backup then completes.
    with start_sandbox(state, provider="hubspot", records=RECORDS, seed=SEED, api_limit=625_000) as running:
        manifest = take_snapshot(connect(running), home, objects=["contacts", "companies", "deals"])
    assert manifest.objects["contacts"].rows == RECORDS


def test_the_daily_reserve_stops_before_it_is_crossed(tmp_path: Path) -> None:
    with start_sandbox(tmp_path / "hubspot", provider="hubspot", records=RECORDS, seed=SEED,
                       api_limit=40) as running:
        connector = connect(running, RetryPolicy(attempts=3, initial_wait=0, max_wait=0, jitter=False,
                                                 sleep=lambda _s: None, daily_reserve=0.5))
        with pytest.raises(ReserveKept) as caught:
            take_snapshot(connector, Home(tmp_path / "home"), objects=["contacts", "companies", "deals", "tasks"])
        assert caught.value.exit_code == 3
        assert running.stats()["rate_limited"] == {}  # HubSpot never had to refuse
        assert running.stats()["api_usage"] == 20  # half the allowance used, half kept


# --- writes -----------------------------------------------------------------------------------------


def test_a_207_batch_reports_each_record_in_request_order(hubspot_sandbox: RunningSandbox, hs: Any) -> None:
    connector = connect(hubspot_sandbox)
    results = connector.create("contacts", [
        {"email": "first@example.com", "firstname": "First"},
        {"email": "second@example.com", "no_such_property": "x"},
        {"email": "third@example.com", "firstname": "Third"},
    ])
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error_code == "VALIDATION_ERROR" and "no_such_property" in (results[1].message or "")
    made = hs.crm.contacts.batch_api.read({"inputs": [{"id": results[0].id}, {"id": results[2].id}],
                                           "properties": ["email"], "propertiesWithHistory": []})
    assert sorted(r.properties["email"] for r in made.results) == ["first@example.com", "third@example.com"]
    ids = live_ids(hs, "contacts")
    updated = connector.update("contacts", [{"id": ids[0], "firstname": "Renamed"},
                                            {"id": "999999999", "firstname": "Nobody"},
                                            {"id": ids[1], "lastname": "Also"}])
    assert [(r.id, r.ok) for r in updated] == [(ids[0], True), ("999999999", False), (ids[1], True)]


def test_a_portal_validation_rule_fails_the_record_and_is_named(hubspot_sandbox: RunningSandbox, hs: Any) -> None:
    admin(hubspot_sandbox, "validation-rules",
          [{"name": "Contacts need a phone", "objectType": "contacts", "requiredProperties": ["phone"]}])
    connector = connect(hubspot_sandbox)
    before = len(live_ids(hs, "contacts"))
    results = connector.create("contacts", [{"email": "nophone@example.com"},
                                            {"email": "phone@example.com", "phone": "+1 555 0100"}])
    assert [r.ok for r in results] == [False, True]
    assert results[0].error_code == "VALIDATION_ERROR"
    assert "Contacts need a phone" in (results[0].message or "")
    assert len(live_ids(hs, "contacts")) == before + 1
    alone = connector.create("contacts", [{"email": "alone@example.com"}])
    assert not alone[0].ok and "Contacts need a phone" in (alone[0].message or "")


def add_key_property(hs: Any) -> None:
    """The one-time admin step that lets creates carry their idempotency key."""
    hs.crm.properties.core_api.create("contacts", {"name": RESTORE_KEY_PROPERTY, "label": "crmsweep restore key",
                                                   "type": "string", "fieldType": "text",
                                                   "groupName": "contactinformation"})


def emails_of(hs: Any) -> list[str]:
    return [r.properties.get("email") for r in all_pages(hs.crm.contacts.basic_api, properties=["email"])]


def test_a_create_that_landed_before_the_connection_dropped_is_not_made_twice(hubspot_sandbox: RunningSandbox,
                                                                               hs: Any) -> None:
    add_key_property(hs)
    hubspot_sandbox.set_faults([faults.FaultRule.from_dict(
        {"kind": "drop_after", "method": "POST", "path": "batch/create$", "times": 1})])
    connector = connect(hubspot_sandbox)
    results = connector.create("contacts", [{"email": "keyed@example.com"}, {"email": "other@example.com"}],
                               keys=["run1-0", "run1-1"])
    assert [r.ok for r in results] == [True, True]
    assert hubspot_sandbox.stats()["faults_injected"] == 1
    # Both were made by the first sending; the look-up found them, nothing was sent again.
    assert hubspot_sandbox.stats()["by_endpoint"]["POST /crm/v3/objects/contacts/batch/create"] == 1
    made = [r for r in all_pages(hs.crm.contacts.basic_api, properties=["email", RESTORE_KEY_PROPERTY])
            if r.properties.get(RESTORE_KEY_PROPERTY)]
    assert sorted((r.properties["email"], r.id) for r in made) == sorted(
        [("keyed@example.com", results[0].id), ("other@example.com", results[1].id)])


def test_without_the_key_property_a_dropped_create_is_left_to_find_created(hubspot_sandbox: RunningSandbox,
                                                                          hs: Any) -> None:
    hubspot_sandbox.set_faults([faults.FaultRule.from_dict(
        {"kind": "drop_after", "method": "POST", "path": "batch/create$", "times": 1})])
    connector = connect(hubspot_sandbox)
    with pytest.raises(ConnectorError) as caught:
        connector.create("contacts", [{"email": "unkeyed@example.com"}], keys=["run2-0"])
    assert caught.value.code == "OUTCOME_UNKNOWN"
    assert emails_of(hs).count("unkeyed@example.com") == 1  # made once, never resent
    # Resume's look-up: the records created since the attempt, for the caller to match by values.

    class Attempt:
        key, values, sent_after = "run2-0", {"email": "unkeyed@example.com"}, "2020-01-01T00:00:00.000Z"

    found = connector.find_created("contacts", [Attempt()])
    assert [r["email"] for r in found["run2-0"]].count("unkeyed@example.com") == 1


def test_find_created_finds_a_create_by_its_key(hubspot_sandbox: RunningSandbox, hs: Any) -> None:
    add_key_property(hs)
    connector = connect(hubspot_sandbox)
    made = connector.create("contacts", [{"email": "a@example.com"}, {"email": "b@example.com"}],
                            keys=["run7-0", "run7-1"])

    class Attempt:
        def __init__(self, key: str, values: dict[str, Any]) -> None:
            self.key, self.values, self.sent_after = key, values, "2020-01-01T00:00:00.000Z"

    found = connector.find_created("contacts", [Attempt("run7-1", {"email": "b@example.com"}),
                                                Attempt("run7-9", {"email": "z@example.com"})])
    assert [r["id"] for r in found["run7-1"]] == [made[1].id]
    assert found["run7-1"][0]["email"] == "b@example.com"
    assert found["run7-9"] == []


# --- search -----------------------------------------------------------------------------------------


@pytest.fixture()
def big_portal(tmp_path: Path) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path / "big", provider="hubspot", records=10_700, seed=3, api_limit=625_000) as running:
        yield running


def test_search_past_the_10000_cap_restarts_after_the_last_id(big_portal: RunningSandbox) -> None:
    clock = FakeClock()
    share_clock(big_portal, clock, ten_secondly=190)
    connector = connect(big_portal, RetryPolicy(attempts=3, initial_wait=0, max_wait=30, jitter=False,
                                                sleep=clock.sleep, clock=clock))
    total = connector.count("contacts", has_value=["email"])
    assert total > 10_000
    rows = [r for page in connector.iter_pages("contacts", ["email"], has_value=["email"]) for r in page]
    assert len(rows) == total == len({r["id"] for r in rows})
    assert all(r["email"] for r in rows)
    by_endpoint = big_portal.stats()["by_endpoint"]
    assert by_endpoint["POST /crm/v3/objects/contacts/search"] == 1 + -(-total // 200)  # the count, then pages
    assert big_portal.stats()["rate_limited"] == {}


# --- typed filters and associations -----------------------------------------------------------------


def test_typed_filters_become_search_and_batch_reads(hubspot_sandbox: RunningSandbox, hs: Any) -> None:
    connector = connect(hubspot_sandbox)
    everyone = [r for page in connector.iter_pages("contacts", ["email", "updatedAt"]) for r in page]
    stamps = sorted(str(r["updatedAt"]) for r in everyone)
    middle = stamps[len(stamps) // 2]
    recent = [r for page in connector.iter_pages("contacts", ["email"], since=middle) for r in page]
    assert {r["id"] for r in recent} == {r["id"] for r in everyone if str(r["updatedAt"]) >= middle}
    picked = [everyone[5]["id"], everyone[9]["id"]]
    assert [r["id"] for page in connector.iter_pages("contacts", ["email"], ids=picked) for r in page] == picked
    without = connector.count("contacts", equals={"email": None})
    assert without == sum(1 for r in everyone if not r.get("email")) > 0
    # An archived record is read back with its flag; a live-only read does not see it.
    hs.crm.contacts.basic_api.archive(picked[0])
    assert connector.read("contacts", picked, ["email"])[picked[0]]["archived"] is True
    assert set(connector.read("contacts", picked, ["email"], include_deleted=False)) == {picked[1]}


def test_associations_are_read_and_made_through_v4(hubspot_sandbox: RunningSandbox, hs: Any) -> None:
    connector = connect(hubspot_sandbox)
    company = live_ids(hs, "companies")[0]
    contacts = live_ids(hs, "contacts")[:2]
    before = connector.read_associations("contacts", "companies", contacts)
    results = connector.create_associations("contacts", "companies", [(c, company) for c in contacts])
    assert [r.ok for r in results] == [True, True]
    after = connector.read_associations("contacts", "companies", contacts)
    assert all(company in after[c] for c in contacts)
    assert set(after) == set(before) == set(contacts)
