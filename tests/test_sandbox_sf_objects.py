"""The Salesforce sandbox's cleanup objects (reports, dashboards, templates, campaigns, cases,
contracts, files...) as Salesforce documents them, read and written through simple-salesforce."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from crmsweep.backup.snapshot_writer import take_snapshot
from crmsweep.connectors.base import Connection
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.connectors.salesforce import SalesforceConnector
from crmsweep.model import WriteResult
from crmsweep.paths import Home
from crmsweep.sandbox.salesforce_store import SalesforceStore
from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.test_sandbox_api import Client, connect, content, ids_of, one, undelete, undelete_results


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path_factory.mktemp("sfobjects"), records=200) as running:
        yield running


@pytest.fixture(scope="module")
def sf(sandbox: RunningSandbox) -> Client:
    return connect(sandbox.info)


def describe_fields(sf: Client, name: str) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in getattr(sf, name).describe()["fields"]}


def analytics(sf: Client, method: str, path: str) -> Any:
    return sf.session.request(method, f"{sf.base_url}analytics/{path}", headers=sf.headers)


# --- reports and dashboards ------------------------------------------------------------------------


def test_report_and_dashboard_are_read_only_sobjects(sf: Client) -> None:
    for name in ("Report", "Dashboard"):
        described = getattr(sf, name).describe()
        assert (described["createable"], described["updateable"], described["deletable"]) == (False, False, False)
        assert described["undeletable"] is True  # the sandbox's choice: SOAP undelete restores them
        assert not any(f["createable"] or f["updateable"] for f in described["fields"])
    report = describe_fields(sf, "Report")
    assert {"Name", "DeveloperName", "FolderName", "Format", "LastRunDate", "LastViewedDate",
            "LastReferencedDate", "OwnerId", "IsDeleted", "CreatedDate", "LastModifiedDate",
            "SystemModstamp"} <= set(report)
    assert report["LastRunDate"]["type"] == "datetime" and report["OwnerId"]["referenceTo"] == ["Organization", "User"]
    dashboard = describe_fields(sf, "Dashboard")
    assert {"Title", "DeveloperName", "FolderName", "LastViewedDate", "LastRefreshDate", "RunningUserId",
            "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp"} <= set(dashboard)
    assert dashboard["RunningUserId"]["referenceTo"] == ["User"]


def test_collections_delete_of_a_report_is_refused(sf: Client) -> None:
    report_id = ids_of(sf, "SELECT Id FROM Report WHERE Name = 'Open Pipeline'")[0]
    results = sf.restful("composite/sobjects", method="DELETE", params={"ids": report_id})
    assert results == [{"id": report_id, "success": False, "errors": [
        {"statusCode": "DELETE_FAILED", "message": "entity type cannot be deleted: Report", "fields": []}]}]
    assert ids_of(sf, f"SELECT Id FROM Report WHERE Id = '{report_id}'") == [report_id]


def test_analytics_delete_moves_reports_to_the_bin_and_soap_undelete_restores_them(
    sandbox: RunningSandbox, sf: Client
) -> None:
    report = one(sf, "SELECT Id, SystemModstamp FROM Report WHERE Name = 'Renewals Due'")
    dashboard = one(sf, "SELECT Id, SystemModstamp FROM Dashboard WHERE Title = 'Weekly Pipeline'")
    for path, record in (("reports", report), ("dashboards", dashboard)):
        response = analytics(sf, "DELETE", f"{path}/{record['Id']}")
        assert (response.status_code, response.content) == (204, b"")
        again = analytics(sf, "DELETE", f"{path}/{record['Id']}")
        assert again.status_code == 404
        assert again.json() == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
    assert ids_of(sf, f"SELECT Id FROM Report WHERE Id = '{report['Id']}'") == []
    binned = one(sf, f"SELECT Id, IsDeleted, SystemModstamp FROM Report WHERE Id = '{report['Id']}'", deleted=True)
    assert binned["IsDeleted"] is True and binned["SystemModstamp"] > report["SystemModstamp"]

    results = undelete_results(undelete(sf, sandbox.info, [report["Id"], dashboard["Id"]]))
    assert results == [{"id": report["Id"], "success": "true", "statusCode": ""},
                       {"id": dashboard["Id"], "success": "true", "statusCode": ""}]
    assert ids_of(sf, f"SELECT Id FROM Report WHERE Id = '{report['Id']}'") == [report["Id"]]
    assert one(sf, f"SELECT IsDeleted FROM Dashboard WHERE Id = '{dashboard['Id']}'")["IsDeleted"] is False


def test_analytics_delete_of_unknown_ids_is_404(sf: Client) -> None:
    for path in ("reports/00O000000000000AAA", "dashboards/01Z000000000000AAA", "reports/not-an-id",
                 "dashboards/003000000000000AAA"):
        response = analytics(sf, "DELETE", path)
        assert response.status_code == 404, path
        assert response.json() == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]


def test_report_describe_lists_its_detail_columns(sandbox: RunningSandbox, sf: Client) -> None:
    report_id = ids_of(sf, "SELECT Id FROM Report WHERE Name = 'Contacts Missing Email'")[0]
    response = analytics(sf, "GET", f"reports/{report_id}/describe")
    assert response.status_code == 200
    metadata = response.json()["reportMetadata"]
    assert metadata["id"] == report_id and metadata["name"] == "Contacts Missing Email"
    assert metadata["reportType"] == {"type": "ContactList", "label": "Contacts & Accounts"}
    assert metadata["detailColumns"] == ["FIRST_NAME", "LAST_NAME", "EMAIL", "ACCOUNT.NAME", "PHONE1"]

    # What a seeder of custom fields uses to put its field in a report.
    store = SalesforceStore(sandbox.info.state_dir)
    try:
        with store.transaction():
            store.add_report_columns(report_id, ["Contact.Favourite_Colour__c", "EMAIL"])
    finally:
        store.close()
    columns = analytics(sf, "GET", f"reports/{report_id}/describe").json()["reportMetadata"]["detailColumns"]
    assert columns == ["FIRST_NAME", "LAST_NAME", "EMAIL", "ACCOUNT.NAME", "PHONE1", "Contact.Favourite_Colour__c"]

    dashboard_id = ids_of(sf, "SELECT Id FROM Dashboard LIMIT 1")[0]
    assert analytics(sf, "GET", f"dashboards/{dashboard_id}/describe").status_code == 404
    assert analytics(sf, "GET", "reports/00O000000000000AAA/describe").status_code == 404


def test_report_fields_cannot_be_written(sf: Client) -> None:
    report_id = ids_of(sf, "SELECT Id FROM Report LIMIT 1")[0]
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Report.update(report_id, {"Name": "Renamed"})
    assert content(refused.value)[0]["errorCode"] == "INVALID_TYPE_FOR_OPERATION"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Report.get("00O000000000000AAA")


# --- the other cleanup objects: describe, derived fields, writes ------------------------------------

DESCRIBED = {
    "Case": {"ContactId": ("reference", True, True, ["Contact"]), "AccountId": ("reference", True, True, ["Account"]),
             "IsClosed": ("boolean", False, False, []), "Status": ("picklist", True, True, []),
             "OwnerId": ("reference", True, True, ["User"]), "Subject": ("string", True, True, [])},
    "Campaign": {"Name": ("string", True, True, []), "IsActive": ("boolean", True, True, []),
                 "Status": ("picklist", True, True, []), "StartDate": ("date", True, True, []),
                 "EndDate": ("date", True, True, []), "OwnerId": ("reference", True, True, ["User"])},
    "Contract": {"AccountId": ("reference", True, True, ["Account"]), "ContractNumber": ("string", False, False, [])},
    "Order": {"AccountId": ("reference", True, True, ["Account"]), "EffectiveDate": ("date", True, True, [])},
    "Quote": {"AccountId": ("reference", False, False, ["Account"]),
              "OpportunityId": ("reference", True, False, ["Opportunity"])},
    "Invoice": {"AccountId": ("reference", True, True, ["Account"]), "TotalAmount": ("currency", False, False, [])},
    "EmailTemplate": {"IsActive": ("boolean", True, True, []), "TimesUsed": ("int", False, False, []),
                      "LastUsedDate": ("datetime", False, False, []), "FolderName": ("string", False, False, []),
                      "FolderId": ("reference", True, True, ["Organization", "User"]),
                      "TemplateType": ("picklist", True, False, []), "DeveloperName": ("string", True, True, [])},
    "ContentDocument": {"Title": ("string", True, True, []), "FileType": ("string", False, False, []),
                        "ContentSize": ("int", False, False, []), "OwnerId": ("reference", False, True, ["User"])},
    "ContentDocumentLink": {"ContentDocumentId": ("reference", True, False, ["ContentDocument"]),
                            "ShareType": ("picklist", True, True, []), "Visibility": ("picklist", True, True, []),
                            "SystemModstamp": ("datetime", False, False, [])},
}


def test_cleanup_objects_describe_their_documented_fields(sf: Client) -> None:
    for name, expected in DESCRIBED.items():
        fields = describe_fields(sf, name)
        for field_name, (kind, createable, updateable, reference_to) in expected.items():
            f = fields[field_name]
            assert (f["type"], f["createable"], f["updateable"], f["referenceTo"]) == (
                kind, createable, updateable, reference_to), (name, field_name)
    assert "CreatedDate" not in describe_fields(sf, "ContentDocumentLink")
    template = sf.EmailTemplate.describe()
    assert (template["deletable"], template["undeletable"]) == (True, False)
    assert "IsDeleted" not in describe_fields(sf, "EmailTemplate")
    links = {(r["childSObject"], r["field"]): r for r in sf.ContentDocument.describe()["childRelationships"]}
    assert links[("ContentDocumentLink", "ContentDocumentId")]["cascadeDelete"] is True


def account_with_people(sf: Client) -> str:
    return str(sf.query("SELECT AccountId FROM Contact WHERE AccountId != null LIMIT 1")["records"][0]["AccountId"])


def test_platform_derives_closed_flags_numbers_and_links(sf: Client) -> None:
    account = account_with_people(sf)
    deal = sf.Opportunity.create({"Name": "Derived", "AccountId": account, "StageName": "Prospecting",
                                  "CloseDate": "2026-01-31"})["id"]
    read = "SELECT IsClosed, IsWon, SystemModstamp FROM Opportunity WHERE Id = '{}'"
    first = one(sf, read.format(deal))
    assert (first["IsClosed"], first["IsWon"]) == (False, False)
    sf.Opportunity.update(deal, {"StageName": "Closed Won"})
    won = one(sf, read.format(deal))
    assert (won["IsClosed"], won["IsWon"]) == (True, True) and won["SystemModstamp"] > first["SystemModstamp"]
    sf.Opportunity.update(deal, {"StageName": "Closed Lost"})
    assert (one(sf, read.format(deal))["IsClosed"], one(sf, read.format(deal))["IsWon"]) == (True, False)

    task = sf.Task.create({"Subject": "Call", "WhatId": account})["id"]
    assert one(sf, f"SELECT IsClosed FROM Task WHERE Id = '{task}'")["IsClosed"] is False
    sf.Task.update(task, {"Status": "Completed"})
    assert one(sf, f"SELECT IsClosed FROM Task WHERE Id = '{task}'")["IsClosed"] is True

    case = sf.Case.create({"Subject": "Broken", "AccountId": account})["id"]
    opened = one(sf, f"SELECT Status, IsClosed, ClosedDate FROM Case WHERE Id = '{case}'")
    assert (opened["Status"], opened["IsClosed"], opened["ClosedDate"]) == ("New", False, None)
    sf.Case.update(case, {"Status": "Closed"})
    closed = one(sf, f"SELECT IsClosed, ClosedDate FROM Case WHERE Id = '{case}'")
    assert closed["IsClosed"] is True and closed["ClosedDate"]

    numbers = [one(sf, f"SELECT ContractNumber FROM Contract WHERE Id = '{i}'")["ContractNumber"] for i in (
        sf.Contract.create({"AccountId": account, "StartDate": "2026-01-01"})["id"],
        sf.Contract.create({"AccountId": account, "StartDate": "2026-02-01"})["id"])]
    assert numbers[1] == f"{int(numbers[0]) + 1:08d}"

    quote = sf.Quote.create({"Name": "Q", "OpportunityId": deal})["id"]
    assert one(sf, f"SELECT AccountId FROM Quote WHERE Id = '{quote}'")["AccountId"] == account
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Quote.create({"Name": "Q2", "OpportunityId": deal, "AccountId": account})
    assert content(refused.value)[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_campaigns_and_templates_are_written_through_collections(sf: Client) -> None:
    campaigns = ids_of(sf, "SELECT Id FROM Campaign WHERE IsActive = true AND Status = 'Completed'")
    templates = ids_of(sf, "SELECT Id FROM EmailTemplate WHERE IsActive = true AND TimesUsed = 0")
    assert campaigns and templates
    before = one(sf, f"SELECT SystemModstamp FROM Campaign WHERE Id = '{campaigns[0]}'")["SystemModstamp"]
    body = [{"attributes": {"type": "Campaign"}, "id": campaigns[0], "IsActive": False},
            {"attributes": {"type": "EmailTemplate"}, "id": templates[0], "IsActive": False}]
    results = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": body})
    assert [r["success"] for r in results] == [True, True]
    after = one(sf, f"SELECT IsActive, SystemModstamp FROM Campaign WHERE Id = '{campaigns[0]}'")
    assert after["IsActive"] is False and after["SystemModstamp"] > before
    assert one(sf, f"SELECT IsActive FROM EmailTemplate WHERE Id = '{templates[0]}'")["IsActive"] is False
    refused = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "EmailTemplate"}, "id": templates[0], "TimesUsed": 3}]})
    assert refused[0]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_a_deleted_email_template_is_gone_for_good(sandbox: RunningSandbox, sf: Client) -> None:
    template = ids_of(sf, "SELECT Id FROM EmailTemplate WHERE Name = 'Legacy Renewal Reminder'")[0]
    assert sf.restful("composite/sobjects", method="DELETE", params={"ids": template})[0]["success"] is True
    assert ids_of(sf, f"SELECT Id FROM EmailTemplate WHERE Id = '{template}'", deleted=True) == []
    assert undelete_results(undelete(sf, sandbox.info, [template]))[0]["success"] == "false"


# --- ContentDocumentLink: the id-filter restriction, and files' cascade ------------------------------

RESTRICTION = ("Implementation restriction: ContentDocumentLink requires a filter by a single Id on "
               "ContentDocumentId or LinkedEntityId using the equals operator or multiple Id's using the IN "
               "operator.")


def test_content_document_link_queries_need_an_id_filter(sf: Client) -> None:
    documents = ids_of(sf, "SELECT Id FROM ContentDocument")
    for soql in ("SELECT Id FROM ContentDocumentLink",
                 "SELECT COUNT() FROM ContentDocumentLink",
                 "SELECT Id FROM ContentDocumentLink WHERE ShareType = 'V'",
                 f"SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId != '{documents[0]}'",
                 f"SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId = '{documents[0]}' OR ShareType = 'V'",
                 f"SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId NOT IN ('{documents[0]}')"):
        with pytest.raises(SalesforceMalformedRequest) as refused:
            sf.query(soql)
        assert content(refused.value) == [{"message": RESTRICTION, "errorCode": "MALFORMED_QUERY"}], soql
    one_doc = ids_of(sf, f"SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId = '{documents[0]}'")
    assert one_doc
    listed = "(" + ",".join(f"'{d}'" for d in documents) + ")"
    every = ids_of(sf, f"SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId IN {listed} AND ShareType = 'V'")
    assert set(every) >= set(ids_of(sf, "SELECT Id FROM ContentDocumentLink WHERE ShareType = 'V' AND "
                                        f"ContentDocumentId = '{documents[0]}'"))
    owner = one(sf, f"SELECT OwnerId FROM ContentDocument WHERE Id = '{documents[0]}'")["OwnerId"]
    assert ids_of(sf, f"SELECT Id FROM ContentDocumentLink WHERE LinkedEntityId = '{owner}'")


def test_deleting_a_file_deletes_its_links_and_undelete_restores_them(sandbox: RunningSandbox, sf: Client) -> None:
    document = ids_of(sf, "SELECT Id FROM ContentDocument WHERE Title = 'Kickoff deck'")[0]
    soql = f"SELECT Id, IsDeleted FROM ContentDocumentLink WHERE ContentDocumentId = '{document}'"
    links = ids_of(sf, soql)
    assert len(links) == 3  # its owner and two accounts
    sf.ContentDocument.delete(document)
    assert ids_of(sf, soql) == []
    assert sorted(ids_of(sf, soql, deleted=True)) == sorted(links)
    assert undelete_results(undelete(sf, sandbox.info, [document]))[0]["success"] == "true"
    assert sorted(ids_of(sf, soql)) == sorted(links)


# --- the connector and backup over these objects ---------------------------------------------------


@pytest.fixture
def connector(sandbox: RunningSandbox) -> Iterator[SalesforceConnector]:
    info = sandbox.info
    connection = Connection(name="sandbox-salesforce", provider="salesforce", url=info.url, token=info.token,
                            ca_file=Path(info.ca_file))
    # A small URI limit, so the reads below take several id chunks.
    opened = SalesforceConnector(connection, retry=RetryPolicy.immediate(), max_uri_bytes=450)
    yield opened
    opened.close()


def test_connector_deletes_reports_through_the_analytics_api_and_undeletes_them(
    sf: Client, connector: SalesforceConnector
) -> None:
    reports = ids_of(sf, "SELECT Id FROM Report WHERE Name IN ('Pipeline by Stage FY2019', 'Open Pipeline')")
    dashboard = ids_of(sf, "SELECT Id FROM Dashboard WHERE Title = 'Sales Overview 2020'")[0]
    unknown = "00O000000000000AAA"
    calls = connector.api_usage().calls
    results = connector.delete("Report", [reports[0], unknown, reports[1]])
    assert connector.api_usage().calls - calls == 3  # the Analytics API deletes one report per call
    assert results == [
        WriteResult(id=reports[0], ok=True),
        WriteResult(id=unknown, ok=False, error_code="NOT_FOUND", message="The requested resource does not exist"),
        WriteResult(id=reports[1], ok=True),
    ]
    assert connector.delete("Dashboard", [dashboard]) == [WriteResult(id=dashboard, ok=True)]
    binned = connector.read("Report", reports, ["IsDeleted", "SystemModstamp"], include_deleted=True)
    assert {i: r["IsDeleted"] for i, r in binned.items()} == {reports[0]: True, reports[1]: True}
    assert connector.read("Report", reports, ["IsDeleted"], include_deleted=False) == {}

    assert connector.undelete("Report", reports) == [WriteResult(id=r, ok=True) for r in reports]
    assert connector.undelete("Dashboard", [dashboard]) == [WriteResult(id=dashboard, ok=True)]
    back = connector.read("Report", reports, ["IsDeleted", "SystemModstamp"])
    assert all(r["IsDeleted"] is False for r in back.values()) and len(back) == 2
    assert all(back[i]["SystemModstamp"] > binned[i]["SystemModstamp"] for i in reports)


def test_connector_reads_content_document_links_through_their_documents(
    sf: Client, connector: SalesforceConnector
) -> None:
    documents = ids_of(sf, "SELECT Id FROM ContentDocument")
    expected: dict[str, str] = {}
    for document in documents:
        for r in sf.query_all(f"SELECT Id, LinkedEntityId FROM ContentDocumentLink "
                              f"WHERE ContentDocumentId = '{document}'")["records"]:
            expected[r["Id"]] = r["LinkedEntityId"]
    assert len(expected) > len(documents)
    pages = list(connector.iter_pages("ContentDocumentLink", ["Id", "LinkedEntityId"]))
    assert len(pages) > 1  # the documents' ids did not fit one query under the URI limit
    assert {r["Id"]: r["LinkedEntityId"] for page in pages for r in page} == expected
    assert connector.count("ContentDocumentLink") == len(expected)
    assert connector.count("ContentDocumentLink", equals={"ShareType": "I"}) == len(documents)  # one owner each
    some = sorted(expected)[:3]
    assert set(connector.read("ContentDocumentLink", some, ["ShareType"])) == set(some)
    owner = one(sf, f"SELECT OwnerId FROM ContentDocument WHERE Id = '{documents[0]}'")["OwnerId"]
    related = connector.read_related("ContentDocumentLink", "LinkedEntityId", [owner], ["ContentDocumentId"])
    assert documents[0] in {r["ContentDocumentId"] for r in related}


def test_backup_takes_every_content_document_link(
    sf: Client, connector: SalesforceConnector, tmp_path: Path
) -> None:
    manifest = take_snapshot(connector, Home(tmp_path / "home"), objects=["ContentDocument", "ContentDocumentLink"])
    documents = ids_of(sf, "SELECT Id FROM ContentDocument")
    links = sum(sf.query(f"SELECT COUNT() FROM ContentDocumentLink WHERE ContentDocumentId = '{d}'")["totalSize"]
                for d in documents)
    assert manifest.objects["ContentDocument"].rows == len(documents)
    assert manifest.objects["ContentDocumentLink"].rows == links > len(documents)
