"""One link of a batch failing fails that link alone: HubSpot answers a batch link call (207) with an error
naming the failed pair, and the other links from the same record, made in that batch, are reported made.
Reported failed, they would be retried, counted as failures and undone by no one, though they exist."""

from __future__ import annotations

from typing import Any

from crmsweep.connectors.hubspot import _link_failures
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import hs, hubspot_sandbox
from tests.test_connector_hubspot import connect, live_ids

__all__ = ["hs", "hubspot_sandbox"]  # fixtures

MISSING = "987654321987"  # no contact has this id


def linked_contacts(hs: Any, company: str) -> set[str]:
    """The contacts the company is linked to, read back through HubSpot's own v4 call."""
    page = hs.crm.associations.v4.basic_api.get_page("companies", company, "contacts", limit=500)
    return {str(r.to_object_id) for r in page.results}


def test_a_failed_link_in_a_batch_fails_only_its_own_pair(hubspot_sandbox: RunningSandbox, hs: Any) -> None:
    connector = connect(hubspot_sandbox)
    company = live_ids(hs, "companies")[-1]
    had = linked_contacts(hs, company)
    first, second = [c for c in live_ids(hs, "contacts") if c not in had][:2]
    # The default link's call, and the one a link with types goes through (company to contact, unlabelled).
    typed = [{"category": "HUBSPOT_DEFINED", "typeId": 280, "label": None}]
    for types in (None, [typed] * 3):
        results = connector.create_associations("companies", "contacts",
                                                [(company, first), (company, MISSING), (company, second)], types)
        assert [(r.id, r.ok) for r in results] == [(company, True), (company, False), (company, True)]
        assert results[1].message and results[1].error_code
        assert linked_contacts(hs, company) == had | {first, second}


def test_an_error_naming_one_end_fails_the_links_with_it_the_answer_does_not_list_as_made() -> None:
    pairs = [("1", "10"), ("1", "11"), ("2", "12")]
    made = [{"fromObjectId": 1, "toObjectId": 10, "labels": []}, {"from": {"id": "2"}, "to": {"id": "12"}}]
    # HubSpot's INVALID_OBJECT_IDS names the bad record (objectId) without saying which end it is.
    invalid = {"status": "error", "category": "VALIDATION_ERROR", "message": "One or more associations are invalid",
               "context": {"INVALID_OBJECT_IDS": ["CONTACT=11 is not valid"], "objectId": ["11"],
                           "objectType": ["CONTACT"]}}
    failed = _link_failures({"results": made, "errors": [invalid]}, pairs)
    assert {n: (r.id, r.ok, r.error_code) for n, r in failed.items()} == {1: ("1", False, "VALIDATION_ERROR")}
    by_from = {**invalid, "context": {"fromId": ["1"]}}
    assert set(_link_failures({"results": made, "errors": [by_from]}, pairs)) == {1}
    by_pair = {**invalid, "context": {"fromId": ["1"], "toId": ["11"]}}
    assert set(_link_failures({"results": [], "errors": [by_pair]}, pairs)) == {1}
