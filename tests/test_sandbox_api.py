"""The sandbox's Salesforce REST and SOAP API, through the real simple-salesforce client over TLS."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from crmsweep.sandbox.ids import to_18
from crmsweep.sandbox.server import RunningSandbox, SandboxInfo, start_sandbox

PARTNER = "urn:partner.soap.sforce.com"

# simple-salesforce builds sf.Contact and friends dynamically; its annotations do not describe that.
Client = Any


def content(error: SalesforceError) -> Any:
    return error.content


def connect(info: SandboxInfo, token: str | None = None) -> Client:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(info.ca_file)
    return Salesforce(instance_url=info.url, session_id=token or info.token, session=session)


def undelete(sf: Client, info: SandboxInfo, ids: Sequence[str], session_id: str | None = None) -> requests.Response:
    envelope = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:urn="{PARTNER}"><soapenv:Header><urn:SessionHeader>'
        f"<urn:sessionId>{session_id or info.token}</urn:sessionId></urn:SessionHeader></soapenv:Header>"
        "<soapenv:Body><urn:undelete>" + "".join(f"<urn:ids>{i}</urn:ids>" for i in ids)
        + "</urn:undelete></soapenv:Body></soapenv:Envelope>"
    )
    return sf.session.post(  # type: ignore[no-any-return]
        f"{info.url}/services/Soap/u/59.0",
        data=envelope.encode(),
        headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "undelete"},
    )


def undelete_results(response: requests.Response) -> list[dict[str, str]]:
    root = ET.fromstring(response.content)
    return [
        {
            "id": result.findtext(f"{{{PARTNER}}}id") or "",
            "success": result.findtext(f"{{{PARTNER}}}success") or "",
            "statusCode": result.findtext(f"{{{PARTNER}}}errors/{{{PARTNER}}}statusCode") or "",
        }
        for result in root.iter(f"{{{PARTNER}}}result")
    ]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path_factory.mktemp("sf"), records=300) as running:
        yield running


@pytest.fixture(scope="module")
def sf(sandbox: RunningSandbox) -> Client:
    return connect(sandbox.info)


def ids_of(sf: Client, soql: str, *, deleted: bool = False) -> list[str]:
    return [r["Id"] for r in sf.query_all_iter(soql, include_deleted=deleted)]


def one(sf: Client, soql: str, *, deleted: bool = False) -> dict[str, Any]:
    records = sf.query(soql, include_deleted=deleted)["records"]
    assert len(records) == 1, records
    return dict(records[0])


def soql_in(ids: Sequence[str]) -> str:
    return "(" + ", ".join(f"'{i}'" for i in ids) + ")"


def collections(sf: Client, method: str, records: list[dict[str, Any]], all_or_none: bool = False) -> Any:
    return sf.restful("composite/sobjects", method=method, json={"allOrNone": all_or_none, "records": records})


# --- discovery ----------------------------------------------------------------------------------


def test_version_list_needs_no_session_and_has_no_limit_header(sandbox: RunningSandbox, sf: Client) -> None:
    response = sf.session.get(f"{sandbox.info.url}/services/data")
    assert response.status_code == 200
    versions = response.json()
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in versions
    assert next(v["version"] for v in versions) == "50.0" and versions[-1]["version"] == "62.0"
    assert "Sforce-Limit-Info" not in response.headers


def test_resource_map_and_trailing_slash(sf: Client) -> None:
    assert sf.restful("")["queryAll"] == "/services/data/v59.0/queryAll"
    response = sf.session.get(f"{sf.base_url}limits", headers=sf.headers)
    assert response.status_code == 200 and "DailyApiRequests" in response.json()


# --- query ----------------------------------------------------------------------------------------


def test_query_pages_by_batch_size_without_losing_or_repeating_rows(sf: Client) -> None:
    count = sf.query("SELECT COUNT() FROM Contact")["totalSize"]
    tasks = sf.query("SELECT COUNT() FROM Task")["totalSize"]
    assert 200 < tasks <= 400
    seen = [
        r["Id"] for r in sf.query_all_iter("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=200"})
    ]
    assert len(seen) == count == len(set(seen))

    first = sf.query("SELECT Id FROM Task", headers={"Sforce-Query-Options": "batchSize=50"})
    assert first["totalSize"] == tasks and first["done"] is False
    assert len(first["records"]) == 200  # below the minimum: raised to 200
    assert re.fullmatch(r"/services/data/v59\.0/query/01g[0-9A-Za-z]{15}-200", first["nextRecordsUrl"])
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert second["done"] is True and "nextRecordsUrl" not in second and len(second["records"]) == tasks - 200


def test_default_page_is_2000_and_limit_counts_in_total(sf: Client) -> None:
    page = sf.query("SELECT Id FROM Contact LIMIT 250", headers={"Sforce-Query-Options": "batchSize=200"})
    assert page["totalSize"] == 250 and len(page["records"]) == 200
    rest = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    assert len(rest["records"]) == 50 and rest["done"] is True
    everything = sf.query("SELECT Id FROM Contact")  # one default page of up to 2,000
    assert everything["done"] is True and len(everything["records"]) == everything["totalSize"] > 200


def test_later_pages_are_not_shifted_by_writes_between_pages(sf: Client) -> None:
    first = sf.query("SELECT Id, Subject FROM Task ORDER BY Subject", headers={"Sforce-Query-Options": "batchSize=200"})
    everything = ids_of(sf, "SELECT Id FROM Task")
    got = [r["Id"] for r in first["records"]]
    # Between pages, delete a task from the first page (shifting every later row) and add one.
    sf.Task.delete(got[0])
    sf.Task.create({"Subject": "Aardvark"})
    result = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    got += [r["Id"] for r in result["records"]]
    assert sorted(got) == sorted(everything) and len(got) == len(set(got))


def test_query_errors(sandbox: RunningSandbox, sf: Client) -> None:
    with pytest.raises(SalesforceMalformedRequest) as bad:
        sf.query("SELECT FROM Contact")
    assert content(bad.value)[0]["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as field:
        sf.query("SELECT Nope FROM Contact")
    assert content(field.value)[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as locator:
        sf.query_more("/services/data/v59.0/query/01g000000000000AAA-2000", identifier_is_url=True)
    assert content(locator.value) == [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]


def test_relationship_fields_and_non_ascii_values(sf: Client) -> None:
    record = sf.query("SELECT Id, Name, Owner.IsActive FROM Contact WHERE Name LIKE '%é%' LIMIT 1")["records"][0]
    assert "é" in record["Name"] and isinstance(record["Owner"]["IsActive"], bool)


# --- describe -------------------------------------------------------------------------------------


def test_global_and_object_describe(sf: Client) -> None:
    listing = sf.describe()
    assert listing["encoding"] == "UTF-8" and listing["maxBatchSize"] == 200
    contact = next(o for o in listing["sobjects"] if o["name"] == "Contact")
    assert (contact["keyPrefix"], contact["custom"], contact["undeletable"]) == ("003", False, True)
    user = next(o for o in listing["sobjects"] if o["name"] == "User")
    assert user["deletable"] is False

    described = sf.Contact.describe()
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["IsEmailBounced"]["calculated"] is True and fields["IsEmailBounced"]["updateable"] is False
    assert fields["AccountId"]["referenceTo"] == ["Account"] and fields["AccountId"]["relationshipName"] == "Account"
    assert next(p["value"] for p in fields["LeadSource"]["picklistValues"]) == "Web"
    assert fields["Description"]["filterable"] is False
    required = {"name", "label", "type", "custom", "nillable", "createable", "updateable", "filterable", "sortable",
                "groupable", "aggregatable", "calculated", "length", "referenceTo", "relationshipName",
                "defaultedOnCreate", "externalId", "unique", "picklistValues"}
    assert required <= set(fields["Email"])
    children = {(c["childSObject"], c["field"]): c for c in sf.Account.describe()["childRelationships"]}
    assert children[("Contact", "AccountId")]["cascadeDelete"] is True
    assert children[("Contact", "AccountId")]["restrictedDelete"] is False


def test_unknown_type_path_and_method(sandbox: RunningSandbox, sf: Client) -> None:
    with pytest.raises(SalesforceResourceNotFound) as missing:
        sf.restful("sobjects/Nope/describe")
    assert content(missing.value) == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("nothing/here")
    response = sf.session.put(f"{sf.base_url}limits", headers=sf.headers)
    assert response.status_code == 405 and response.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"
    response = sf.session.post(f"{sf.base_url}sobjects/Contact", headers=sf.headers, data=b"{not json")
    assert response.status_code == 400 and response.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    long_url = f"{sf.base_url}query?q=" + "x" * 17000
    assert sf.session.get(long_url, headers=sf.headers).status_code == 414


# --- auth and limits ------------------------------------------------------------------------------


def test_wrong_session_is_401_list_and_expired_session(sandbox: RunningSandbox) -> None:
    bad = connect(sandbox.info, token="not-the-token")
    with pytest.raises(SalesforceExpiredSession) as expired:
        bad.query("SELECT Id FROM Contact")
    assert content(expired.value) == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    response = requests.Session()
    response.trust_env = False
    answer = response.get(f"{sandbox.info.url}/services/data/v59.0/limits", verify=str(sandbox.info.ca_file))
    assert answer.status_code == 401 and answer.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_userinfo_names_the_api_user_and_costs_no_api_call(sandbox: RunningSandbox, sf: Client) -> None:
    used = sandbox.stats()["api_usage"]
    info = sf.oauth2("userinfo")
    assert info["organization_id"] == sandbox.info.org_id
    assert info["sub"].endswith(f"/{sandbox.info.org_id}/{info['user_id']}")
    user = sf.query(f"SELECT Username, IsActive FROM User WHERE Id = '{info['user_id']}'")["records"][0]
    assert user["IsActive"] is True and user["Username"] == info["preferred_username"]
    assert sandbox.stats()["api_usage"] == used + 1  # the query above, not userinfo
    with pytest.raises(SalesforceRefusedRequest):
        connect(sandbox.info, token="not-the-token").oauth2("userinfo")


def test_limits_and_usage_header(sandbox: RunningSandbox, sf: Client) -> None:
    limits = sf.limits()
    usage = sf.api_usage["api-usage"]
    assert usage.total == 15000 and usage.used == sandbox.stats()["api_usage"]
    assert limits["DailyApiRequests"] == {"Max": 15000, "Remaining": 15000 - usage.used}
    assert {"DailyBulkApiBatches", "DataStorageMB"} <= set(limits)
    sf.query("SELECT Id FROM User LIMIT 1")
    assert sf.api_usage["api-usage"].used == usage.used + 1


# --- single-record writes -------------------------------------------------------------------------


def test_create_read_update_delete_one_record(sf: Client) -> None:
    account_id = one(sf, "SELECT Id FROM Account ORDER BY Id LIMIT 1")["Id"]
    created = sf.Contact.create({"FirstName": "Zoë", "LastName": "Ærø", "AccountId": account_id})
    assert created["success"] is True and created["errors"] == [] and created["id"].startswith("003")
    record = sf.Contact.get(created["id"])
    assert record["Name"] == "Zoë Ærø" and record["IsDeleted"] is False and record["OwnerId"].startswith("005")
    assert record["LastModifiedById"] == record["CreatedById"]
    assert sf.Contact.update(created["id"], {"EmailBouncedReason": "550 5.1.1 mailbox does not exist",
                                              "FirstName": None}) == 204
    after = sf.Contact.get(created["id"])
    assert after["Name"] == "Ærø" and after["FirstName"] is None and after["IsEmailBounced"] is True
    assert after["SystemModstamp"] > record["SystemModstamp"]
    assert sf.Contact.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound) as gone:
        sf.Contact.get(created["id"])
    assert content(gone.value)[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_systemmodstamp_strictly_increases_on_rapid_writes(sf: Client) -> None:
    contact_id = one(sf, "SELECT Id FROM Contact ORDER BY Id LIMIT 1")["Id"]
    stamps = []
    for n in range(5):
        sf.Contact.update(contact_id, {"Title": f"Title {n}"})
        stamps.append(sf.Contact.get(contact_id)["SystemModstamp"])
    assert stamps == sorted(set(stamps))


def test_calculated_opportunity_and_task_fields(sf: Client) -> None:
    opp = one(sf, "SELECT Id FROM Opportunity WHERE IsClosed = false ORDER BY Id LIMIT 1")
    sf.Opportunity.update(opp["Id"], {"StageName": "Closed Won"})
    closed = one(sf, f"SELECT IsClosed, IsWon FROM Opportunity WHERE Id = '{opp['Id']}'")
    assert (closed["IsClosed"], closed["IsWon"]) == (True, True)
    task = one(sf, "SELECT Id FROM Task WHERE IsClosed = false ORDER BY Id LIMIT 1")
    sf.Task.update(task["Id"], {"Status": "Completed"})
    assert one(sf, f"SELECT IsClosed FROM Task WHERE Id = '{task['Id']}'")["IsClosed"] is True


# --- sObject Collections --------------------------------------------------------------------------


def test_collections_patch_reports_each_record_in_order(sf: Client) -> None:
    a, b = ids_of(sf, "SELECT Id FROM Contact WHERE IsDeleted = false ORDER BY Id LIMIT 2")
    unknown = "003" + a[3:5] + "ZZZZZZZZZZ"
    records: list[dict[str, Any]] = [
        {"attributes": {"type": "Contact"}, "id": a, "Title": "Boss", "MailingCity": None},
        {"attributes": {"type": "Contact"}, "id": b, "Nope__c": 1},
        {"attributes": {"type": "Contact"}, "id": b, "IsEmailBounced": True},
        {"attributes": {"type": "Contact"}, "Id": b, "HasOptedOutOfEmail": "yes"},
        {"attributes": {"type": "Contact"}, "id": to_18(unknown), "Title": "x"},
        {"attributes": {"type": "Contact"}, "id": "003notanid", "Title": "x"},
        {"attributes": {"type": "Contact"}, "id": b, "LastName": None},
    ]
    results = collections(sf, "PATCH", records)
    codes = [r["errors"][0]["statusCode"] if r["errors"] else "ok" for r in results]
    assert codes == ["ok", "INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "INVALID_TYPE_ON_FIELD_IN_RECORD",
                     "INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID", "REQUIRED_FIELD_MISSING"]
    assert results[0] == {"id": a, "success": True, "errors": []}
    assert results[2]["errors"][0]["fields"] == ["IsEmailBounced"]
    written = sf.Contact.get(a)
    assert written["Title"] == "Boss" and written["MailingCity"] is None
    assert sf.Contact.get(b)["LastName"] is not None


def test_collections_all_or_none_rolls_back_everything(sf: Client) -> None:
    a, b = ids_of(sf, "SELECT Id FROM Contact WHERE IsDeleted = false ORDER BY Id DESC LIMIT 2")
    before = sf.Contact.get(a)["Title"]
    results = collections(sf, "PATCH", [
        {"attributes": {"type": "Contact"}, "id": a, "Title": "Changed"},
        {"attributes": {"type": "Contact"}, "id": b, "Email": "not an email"},
    ], all_or_none=True)
    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
    assert sf.Contact.get(a)["Title"] == before


def test_collections_post_creates_and_reports_missing_fields(sf: Client) -> None:
    results = collections(sf, "POST", [
        {"attributes": {"type": "Lead"}, "LastName": "Łukasiewicz", "Company": "Kraków Logic Sp. z o.o."},
        {"attributes": {"type": "Lead"}, "FirstName": "No", "Company": "Last Name Inc."},
        {"attributes": {"type": "Lead"}, "id": "00Q000000000001AAA", "LastName": "X", "Company": "Y"},
    ])
    assert results[0]["success"] is True and results[0]["id"].startswith("00Q")
    assert results[1] == {"id": None, "success": False, "errors": [
        {"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]",
         "fields": ["LastName"]}]}
    assert results[2]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    lead = sf.Lead.get(results[0]["id"])
    assert (lead["Name"], lead["IsConverted"]) == ("Łukasiewicz", False)


def test_collections_delete_and_recycle_bin_visibility(sf: Client) -> None:
    a, b = ids_of(sf, "SELECT Id FROM Lead WHERE IsDeleted = false ORDER BY Id LIMIT 2")
    sf.Lead.delete(b)
    user = one(sf, "SELECT Id FROM User WHERE IsActive = true ORDER BY Id LIMIT 1")["Id"]
    results = sf.restful("composite/sobjects", method="DELETE", params={"ids": f"{a},{b},{user}", "allOrNone": "false"})
    assert [r["success"] for r in results] == [True, False, False]
    assert results[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert results[2]["errors"][0]["statusCode"] == "DELETE_FAILED"
    assert ids_of(sf, f"SELECT Id FROM Lead WHERE Id IN ('{a}', '{b}')") == []
    binned = sf.query_all(f"SELECT Id, IsDeleted FROM Lead WHERE Id IN ('{a}', '{b}')", include_deleted=True)
    assert sorted((r["Id"], r["IsDeleted"]) for r in binned["records"]) == sorted([(a, True), (b, True)])


def test_more_than_200_records_refused_whole(sf: Client) -> None:
    ids = ids_of(sf, "SELECT Id FROM Task ORDER BY Id LIMIT 201")
    with pytest.raises(SalesforceMalformedRequest) as too_many:
        sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(ids)})
    assert content(too_many.value)[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    with pytest.raises(SalesforceMalformedRequest):
        collections(sf, "PATCH", [{"attributes": {"type": "Task"}, "id": i, "Priority": "Low"} for i in ids])
    assert len(ids_of(sf, f"SELECT Id FROM Task WHERE Id IN {soql_in(ids)}")) == 201


def test_mixed_setup_and_data_objects_refused(sf: Client) -> None:
    user = one(sf, "SELECT Id FROM User WHERE IsActive = true ORDER BY Id DESC LIMIT 1")["Id"]
    contact = one(sf, "SELECT Id FROM Contact WHERE IsDeleted = false ORDER BY Id LIMIT 1")["Id"]
    results = collections(sf, "PATCH", [
        {"attributes": {"type": "User"}, "id": user, "Title": "x"},
        {"attributes": {"type": "Contact"}, "id": contact, "Title": "x"},
    ])
    assert {r["errors"][0]["statusCode"] for r in results} == {"MIXED_DML_OPERATION"}


# --- cascade delete and SOAP undelete -------------------------------------------------------------


def test_cascade_delete_and_exact_undelete(sandbox: RunningSandbox, sf: Client) -> None:
    account = one(sf, "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Opportunity) "
                      "AND Id IN (SELECT AccountId FROM Contact) ORDER BY Id LIMIT 1")["Id"]
    contacts = ids_of(sf, f"SELECT Id FROM Contact WHERE AccountId = '{account}' ORDER BY Id")
    opps = ids_of(sf, f"SELECT Id FROM Opportunity WHERE AccountId = '{account}'")
    roles = ids_of(sf, "SELECT Id FROM OpportunityContactRole WHERE OpportunityId IN "
                       f"(SELECT Id FROM Opportunity WHERE AccountId = '{account}')")
    tasks = ids_of(sf, f"SELECT Id FROM Task WHERE WhatId = '{account}'")
    # A contact deleted on its own earlier must stay in the bin when the account comes back.
    separately = sf.Contact.create({"LastName": "Separate", "AccountId": account})["id"]
    sf.Contact.delete(separately)
    stamp_before = one(sf, f"SELECT SystemModstamp FROM Account WHERE Id = '{account}'")["SystemModstamp"]

    assert sf.Account.delete(account) == 204
    cascaded = [account, *contacts, *opps, *roles, *tasks]
    assert len(contacts) >= 1 and len(opps) >= 1
    for obj, wanted in (("Contact", contacts), ("Opportunity", opps), ("OpportunityContactRole", roles)):
        if wanted:
            assert ids_of(sf, f"SELECT Id FROM {obj} WHERE Id IN {soql_in(wanted)}") == []
    binned = ids_of(sf, f"SELECT Id FROM Contact WHERE AccountId = '{account}' AND IsDeleted = true", deleted=True)
    assert sorted(binned) == sorted([*contacts, separately])

    response = undelete(sf, sandbox.info, [account])
    assert response.status_code == 200
    assert undelete_results(response) == [{"id": account, "success": "true", "statusCode": ""}]
    assert sorted(ids_of(sf, f"SELECT Id FROM Contact WHERE AccountId = '{account}'")) == sorted(contacts)
    assert sorted(ids_of(sf, f"SELECT Id FROM Opportunity WHERE AccountId = '{account}'")) == sorted(opps)
    assert sorted(ids_of(sf, f"SELECT Id FROM Task WHERE WhatId = '{account}'")) == sorted(tasks)
    assert len(cascaded) == len(set(cascaded))
    stamp_after = one(sf, f"SELECT SystemModstamp FROM Account WHERE Id = '{account}'")["SystemModstamp"]
    assert stamp_after > stamp_before

    again = undelete_results(undelete(sf, sandbox.info, [account, separately, "garbage"]))
    assert again[0] == {"id": account, "success": "false", "statusCode": "UNDELETE_FAILED"}
    assert again[1] == {"id": separately, "success": "true", "statusCode": ""}
    assert again[2]["statusCode"] == "MALFORMED_ID"


def test_undelete_refuses_a_bad_session_with_a_soap_fault(sandbox: RunningSandbox, sf: Client) -> None:
    response = undelete(sf, sandbox.info, ["001000000000001AAA"], session_id="wrong")
    assert response.status_code == 500
    root = ET.fromstring(response.content)
    assert root.findtext(".//faultcode") == "sf:INVALID_SESSION_ID"
    assert "wrong" not in response.text


def test_undelete_refuses_more_than_200_ids(sandbox: RunningSandbox, sf: Client) -> None:
    response = undelete(sf, sandbox.info, ["001000000000001AAA"] * 201)
    assert response.status_code == 500 and ET.fromstring(response.content).findtext(".//faultcode") == (
        "sf:EXCEEDED_ID_LIMIT")


def test_admin_stats_are_not_api_calls(sandbox: RunningSandbox, sf: Client) -> None:
    headers = {"Authorization": f"Bearer {sandbox.info.token}"}
    sf.query("SELECT Id FROM Account LIMIT 1")  # an API call of its own: the test holds alone, in any order
    before = sf.session.get(f"{sandbox.info.url}/__sandbox/stats", headers=headers)
    after = sf.session.get(f"{sandbox.info.url}/__sandbox/stats", headers=headers).json()
    assert before.json()["api_usage"] == after["api_usage"] and "Sforce-Limit-Info" not in before.headers
    assert after["by_endpoint"]["GET query"] >= 1
    assert sf.session.get(f"{sandbox.info.url}/__sandbox/stats").status_code == 401


def test_path_forms_are_kept(tmp_path: Path) -> None:
    assert SandboxInfo("salesforce", "https://127.0.0.1:1", tmp_path / "ca.pem", "t", tmp_path, "00D").to_json_line() \
        == '{"provider": "salesforce", "url": "https://127.0.0.1:1", "ca_file": "' + str(tmp_path / "ca.pem") \
        + '", "token": "t"}'
