"""The HubSpot sandbox through hubspot-api-client, unmodified, over real TLS: list paging, the SDK's
wire quirks, batch read/create/update/archive with 207 and the 100-input cap, properties, owners,
users, bearer auth."""

from __future__ import annotations

import json
from typing import Any

import pytest

from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import RECORDS, hs, hubspot_sandbox, sdk_client

__all__ = ["hs", "hubspot_sandbox"]  # fixtures


def _all_pages(api: Any, **kwargs: Any) -> list[Any]:
    results, after, pages = [], None, 0
    while True:
        page = api.get_page(limit=100, after=after, **kwargs)
        pages += 1
        results += page.results
        if page.paging is None or page.paging.next is None:
            return results
        after = page.paging.next.after
        assert pages < 100


def test_contacts_list_pages_by_100_with_after_and_ends_without_next(hs: Any, hubspot_sandbox: RunningSandbox) -> None:
    contacts = _all_pages(hs.crm.contacts.basic_api, properties=["email", "firstname"], archived=False)
    ids = [int(c.id) for c in contacts]
    assert len(ids) == RECORDS == len(set(ids))
    assert ids == sorted(ids)
    assert hubspot_sandbox.stats()["by_endpoint"]["GET /crm/v3/objects/contacts"] == 3  # 100 + 100 + 50
    assert set(contacts[0].properties) == {"email", "firstname"}  # only what was asked for


def test_repeated_and_comma_joined_properties_and_a_limit_above_100(hs: Any) -> None:
    page = hs.crm.contacts.basic_api.get_page(limit=500, properties=["email", "lastname,phone"])
    assert len(page.results) == 100
    assert set(page.results[0].properties) == {"email", "lastname", "phone"}
    default = hs.crm.contacts.basic_api.get_page(limit=1)
    assert set(default.results[0].properties) == {"createdate", "email", "firstname", "hs_object_id",
                                                  "lastmodifieddate", "lastname"}


def test_batch_read_answers_207_naming_the_missing_ids(hs: Any) -> None:
    first = hs.crm.contacts.basic_api.get_page(limit=2).results
    answer = hs.crm.contacts.batch_api.read(
        {"inputs": [{"id": first[0].id}, {"id": "999999"}, {"id": first[1].id}], "properties": ["email"],
         "propertiesWithHistory": []}
    )
    assert answer.num_errors == 1
    assert sorted(r.id for r in answer.results) == sorted([first[0].id, first[1].id])
    assert answer.errors[0].category == "OBJECT_NOT_FOUND"
    assert answer.errors[0].context == {"ids": ["999999"]}


def test_batch_create_update_archive_round_trip(hs: Any) -> None:
    batch = hs.crm.contacts.batch_api
    created = batch.create({"inputs": [
        {"properties": {"email": "new.one@example.org", "firstname": "New", "lastname": "One"}},
        {"properties": {"email": "new.two@example.org", "firstname": "New", "lastname": "Two"}},
    ]})
    ids = sorted(r.id for r in created.results)
    assert len(ids) == 2 and created.results[0].properties["hs_object_id"] in ids
    before = {r.id: r.properties["lastmodifieddate"] for r in created.results}

    batch.update({"inputs": [{"id": ids[0], "properties": {"firstname": "Renamed"}}]})
    read = {r.id: r for r in batch.read({"inputs": [{"id": i} for i in ids],
                                         "properties": ["firstname", "lastmodifieddate"],
                                         "propertiesWithHistory": []}).results}
    assert read[ids[0]].properties["firstname"] == "Renamed"
    assert read[ids[0]].properties["lastmodifieddate"] > before[ids[0]]
    assert read[ids[0]].updated_at > read[ids[1]].created_at or read[ids[0]].updated_at >= read[ids[1]].updated_at

    batch.archive({"inputs": [{"id": ids[1]}]})
    live = {c.id for c in _all_pages(hs.crm.contacts.basic_api)}
    archived = _all_pages(hs.crm.contacts.basic_api, archived=True)
    assert ids[0] in live and ids[1] not in live
    assert [c.id for c in archived] == [ids[1]]
    assert archived[0].archived is True and archived[0].archived_at is not None


def test_batch_update_with_a_missing_id_is_a_207_and_the_rest_is_applied(hs: Any) -> None:
    first = hs.crm.contacts.basic_api.get_page(limit=1).results[0]
    answer = hs.crm.contacts.batch_api.update({"inputs": [
        {"id": first.id, "properties": {"jobtitle": "Buyer"}},
        {"id": "424242", "properties": {"jobtitle": "Buyer"}},
        {"id": first.id, "properties": {"no_such_property": "x"}},
    ]})
    assert answer.num_errors == 2
    assert {e.category for e in answer.errors} == {"OBJECT_NOT_FOUND", "VALIDATION_ERROR"}
    assert hs.crm.contacts.basic_api.get_by_id(first.id, properties=["jobtitle"]).properties["jobtitle"] == "Buyer"


def test_batch_of_more_than_100_inputs_is_refused_with_400(hs: Any) -> None:
    from hubspot.crm.contacts.exceptions import ApiException

    with pytest.raises(ApiException) as caught:
        hs.crm.contacts.batch_api.read({"inputs": [{"id": str(i)} for i in range(101)], "properties": [],
                                        "propertiesWithHistory": []})
    assert caught.value.status == 400
    body = json.loads(caught.value.body)
    assert body["category"] == "VALIDATION_ERROR" and "(101)" in body["message"] and "(100)" in body["message"]


def test_batch_create_without_trace_ids_is_all_or_nothing_and_with_them_partial(hs: Any) -> None:
    from hubspot.crm.contacts.exceptions import ApiException

    def count() -> int:
        return len(_all_pages(hs.crm.contacts.basic_api))

    good = {"properties": {"email": "ok@example.org"}}
    bad = {"properties": {"email": "not an email"}}
    with pytest.raises(ApiException) as caught:
        hs.crm.contacts.batch_api.create({"inputs": [good, bad]})
    assert caught.value.status == 400 and json.loads(caught.value.body)["category"] == "VALIDATION_ERROR"
    assert count() == RECORDS
    answer = hs.crm.contacts.batch_api.create({"inputs": [{**good, "objectWriteTraceId": "a"},
                                                          {**bad, "objectWriteTraceId": "b"}]})
    assert answer.num_errors == 1 and answer.errors[0].context == {"objectWriteTraceId": ["b"]}
    assert [r.properties["email"] for r in answer.results] == ["ok@example.org"]
    assert count() == RECORDS + 1


def test_read_only_and_unknown_properties_are_refused_on_write(hs: Any) -> None:
    from hubspot.crm.contacts.exceptions import ApiException

    first = hs.crm.contacts.basic_api.get_page(limit=1).results[0]
    for name in ("createdate", "hs_email_hard_bounce_reason_enum", "not_a_property"):
        with pytest.raises(ApiException) as caught:
            hs.crm.contacts.basic_api.update(first.id, {"properties": {name: "x"}})
        assert caught.value.status == 400
        error = json.loads(caught.value.body)["errors"][0]
        assert error["context"] == {"propertyName": [name]}
        assert error["code"] == ("PROPERTY_DOESNT_EXIST" if name == "not_a_property" else "READ_ONLY_VALUE")


def test_a_second_contact_with_the_same_email_is_a_409_conflict(hs: Any) -> None:
    from hubspot.crm.contacts.exceptions import ApiException

    email = hs.crm.contacts.basic_api.get_page(limit=1, properties=["email"]).results[0].properties["email"]
    with pytest.raises(ApiException) as caught:
        hs.crm.contacts.basic_api.create({"properties": {"email": email.upper()}})
    assert caught.value.status == 409
    assert json.loads(caught.value.body)["message"].startswith("Contact already exists. Existing ID: ")


def test_a_wrong_bearer_token_is_401_and_not_counted(hubspot_sandbox: RunningSandbox) -> None:
    from hubspot.crm.contacts.exceptions import UnauthorizedException

    with pytest.raises(UnauthorizedException) as caught:
        sdk_client(hubspot_sandbox, token="pat-na1-wrong").crm.contacts.basic_api.get_page()
    assert json.loads(caught.value.body)["category"] == "INVALID_AUTHENTICATION"
    assert hubspot_sandbox.stats()["api_calls"] == 0


def test_properties_and_groups_list_hubspot_defined_and_custom_ones(hs: Any) -> None:
    props = {p.name: p for p in hs.crm.properties.core_api.get_all("contacts", archived=False).results}
    assert props["email"].hubspot_defined is True
    assert props["createdate"].modification_metadata.read_only_value is True
    assert props["legacy_fax_number"].hubspot_defined in (False, None)
    assert props["legacy_fax_number"].modification_metadata.archivable is True
    groups = {g.name for g in hs.crm.properties.groups_api.get_all("contacts").results}
    assert {p.group_name for p in props.values()} <= groups


def test_owners_of_deactivated_users_are_archived_and_found_by_user_id_including_inactive(hs: Any) -> None:
    owners = hs.crm.owners.owners_api
    active = owners.get_page(limit=100, archived=False).results
    gone = owners.get_page(limit=100, archived=True).results
    assert len(active) == 6 and len(gone) == 2  # 8 owners for 250 contacts, a quarter deactivated
    assert all(o.user_id is None and o.user_id_including_inactive for o in gone)
    by_user = owners.get_by_id(str(gone[0].user_id_including_inactive), id_property="userIdIncludingInactive",
                               archived=True)
    assert by_user.id == gone[0].id
    users = {u.id for u in hs.settings.users.users_api.get_page().results}
    assert {str(o.user_id) for o in active} == users
