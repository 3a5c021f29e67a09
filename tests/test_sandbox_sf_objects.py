"""The Salesforce sandbox's cleanup objects (reports, dashboards, templates, campaigns, cases,
contracts, files...) as Salesforce documents them, read and written through simple-salesforce."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

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
