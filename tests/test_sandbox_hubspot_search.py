"""CRM search on the HubSpot sandbox through the SDK: filters, paging with `after`, at most 200 a
page, the 10,000-result cap answered with 400, archived records never found."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.hubspot_fixtures import RECORDS, admin, hs, hubspot_sandbox, sdk_client

__all__ = ["hs", "hubspot_sandbox"]  # fixtures


def _search(hs: Any, body: dict[str, Any]) -> Any:
    return hs.crm.contacts.search_api.do_search(body)


@pytest.fixture(autouse=True)
def _no_search_window(hubspot_sandbox: RunningSandbox) -> None:
    admin(hubspot_sandbox, "rate-limits", {"searchPerSecond": 10_000})  # these tests search many times a second


def test_search_pages_with_after_and_finds_every_match_once(hs: Any) -> None:
    body: dict[str, Any] = {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}],
                            "properties": ["email"], "limit": 40}
    seen: list[str] = []
    first = _search(hs, body)
    total, page = first.total, first
    while True:
        seen += [r.id for r in page.results]
        if page.paging is None:
            break
        page = _search(hs, {**body, "after": page.paging.next.after})
    assert len(seen) == len(set(seen)) == total
    assert all(r.properties["email"] for r in first.results)
    without = _search(hs, {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "NOT_HAS_PROPERTY"}]}],
                           "limit": 1})
    assert total + without.total == RECORDS


def test_a_page_of_more_than_200_is_refused(hs: Any) -> None:
    from hubspot.crm.contacts.exceptions import ApiException

    assert len(_search(hs, {"limit": 200}).results) == 200
    with pytest.raises(ApiException) as caught:
        _search(hs, {"limit": 201})
    assert caught.value.status == 400 and json.loads(caught.value.body)["category"] == "VALIDATION_ERROR"


def test_groups_are_ored_filters_anded_and_one_sort_orders(hs: Any) -> None:
    page = hs.crm.contacts.basic_api.get_page(limit=3, properties=["email", "lastname"]).results
    a, b = page[0], page[1]
    either = _search(hs, {"filterGroups": [
        {"filters": [{"propertyName": "email", "operator": "EQ", "value": a.properties["email"].upper()}]},
        {"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": b.id}]},
    ], "sorts": [{"propertyName": "hs_object_id", "direction": "DESCENDING"}]})
    assert [r.id for r in either.results] == sorted([a.id, b.id], key=int, reverse=True)
    both = _search(hs, {"filterGroups": [{"filters": [
        {"propertyName": "email", "operator": "EQ", "value": a.properties["email"]},
        {"propertyName": "hs_object_id", "operator": "EQ", "value": b.id},
    ]}]})
    assert both.total == 0


def test_archived_records_are_never_found(hs: Any) -> None:
    first = hs.crm.contacts.basic_api.get_page(limit=1).results[0]
    one = {"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": first.id}]}]}
    assert _search(hs, one).total == 1
    hs.crm.contacts.basic_api.archive(first.id)
    assert _search(hs, one).total == 0


def test_datetime_filters_take_epoch_milliseconds(hs: Any) -> None:
    newest = _search(hs, {"sorts": [{"propertyName": "createdate", "direction": "DESCENDING"}], "limit": 1,
                          "properties": ["createdate"]}).results[0]
    stamp = newest.properties["createdate"]
    from crmsweep.sandbox.hubspot_values import parse_ts

    moment = parse_ts(stamp)
    assert moment is not None
    millis = str(int(moment.timestamp() * 1000))
    after = _search(hs, {"filterGroups": [{"filters": [{"propertyName": "createdate", "operator": "GTE",
                                                         "value": millis}]}]})
    assert [r.id for r in after.results] == [newest.id]


def test_too_many_filter_groups_or_an_unknown_property_is_a_validation_error(hs: Any) -> None:
    from hubspot.crm.contacts.exceptions import ApiException

    group = {"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}
    for body in ({"filterGroups": [group] * 6},
                 {"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "HAS_PROPERTY"}]}]}):
        with pytest.raises(ApiException) as caught:
            _search(hs, body)
        assert caught.value.status == 400


@pytest.fixture()
def big_portal(tmp_path: Path) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path / "big", provider="hubspot", records=10_050, seed=5, api_limit=625_000) as running:
        admin(running, "rate-limits", {"searchPerSecond": 10_000})
        yield running


def test_paging_past_10000_results_is_answered_400(big_portal: RunningSandbox) -> None:
    from hubspot.crm.contacts.exceptions import ApiException

    hs = sdk_client(big_portal)
    body: dict[str, Any] = {"limit": 200, "properties": ["email"],
                            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]}
    page = _search(hs, {**body, "after": "9800"})
    assert page.total == 10_050 and len(page.results) == 200
    assert page.paging.next.after == "10000"
    with pytest.raises(ApiException) as caught:
        _search(hs, {**body, "after": page.paging.next.after})
    assert caught.value.status == 400
    assert "10000" in json.loads(caught.value.body)["message"]
    # Keyset windowing on hs_object_id, as the notes advise, reaches the rest.
    last_id = page.results[-1].id
    rest = _search(hs, {**body, "filterGroups": [{"filters": [
        {"propertyName": "hs_object_id", "operator": "GT", "value": last_id}]}]})
    assert rest.total == 50
