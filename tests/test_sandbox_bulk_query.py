"""The sandbox's Bulk API 2.0 query jobs, held to the Bulk API 2.0 Developer Guide, over real HTTPS.

simple-salesforce's own bulk2 client is one of the clients that must work against it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.server import RunningSandbox, start_sandbox

CONTACTS = 300


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path_factory.mktemp("bulkq"), records=CONTACTS, seed=5) as running:
        yield running


@pytest.fixture
def http(sandbox: RunningSandbox) -> Iterator[requests.Session]:
    session = requests.Session()
    session.verify = str(sandbox.info.ca_file)
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {sandbox.info.token}"
    yield session
    session.close()
    sandbox.set_faults([])


def _url(sandbox: RunningSandbox, path: str, version: str = "59.0") -> str:
    return f"{sandbox.info.url}/services/data/v{version}/jobs/query{path}"


def _create(http: requests.Session, sandbox: RunningSandbox, soql: str, operation: str = "query",
            version: str = "59.0") -> dict[str, Any]:
    response = http.post(_url(sandbox, "", version), json={"operation": operation, "query": soql})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _complete(http: requests.Session, sandbox: RunningSandbox, job_id: str, version: str = "59.0") -> dict[str, Any]:
    states = []
    for _ in range(10):
        info = http.get(_url(sandbox, f"/{job_id}", version)).json()
        states.append(info["state"])
        if info["state"] == "JobComplete":
            break
    assert states[0] == "InProgress" and states[-1] == "JobComplete"  # a client really polls
    return dict(info)


def test_simple_salesforce_bulk2_reads_every_contact_in_pages(sandbox: RunningSandbox) -> None:
    session = requests.Session()
    session.verify = str(sandbox.info.ca_file)
    session.trust_env = False
    # Any: simple-salesforce types `sf.bulk2` as a union with SFType and `wait` as int (it takes seconds).
    sf: Any = Salesforce(instance_url=sandbox.info.url, session_id=sandbox.info.token, session=session)
    pages = list(sf.bulk2.Contact.query("SELECT Id, LastName FROM Contact", max_records=120, wait=0.01))
    rows = [row for page in pages for row in csv.DictReader(io.StringIO(page))]
    assert [len(list(csv.DictReader(io.StringIO(p)))) for p in pages] == [120, 120, CONTACTS - 240]
    expected = sf.query_all("SELECT Id, LastName FROM Contact")["records"]
    assert [(r["Id"], r["LastName"]) for r in rows] == [(r["Id"], r["LastName"]) for r in expected]


def test_job_lifecycle_results_locators_and_delete(http: requests.Session, sandbox: RunningSandbox) -> None:
    created = _create(http, sandbox, "SELECT Id, Email, HasOptedOutOfEmail FROM Contact")
    assert created["state"] == "UploadComplete" and created["id"].startswith("750")
    assert created["operation"] == "query" and created["object"] == "Contact"
    early = http.get(_url(sandbox, f"/{created['id']}/results"))
    assert early.status_code == 400  # results only once JobComplete
    info = _complete(http, sandbox, created["id"])
    assert info["numberRecordsProcessed"] == CONTACTS
    first = http.get(_url(sandbox, f"/{created['id']}/results"), params={"maxRecords": 200})
    assert first.status_code == 200 and first.headers["Content-Type"].startswith("text/csv")
    assert first.headers["Sforce-NumberOfRecords"] == "200"
    locator = first.headers["Sforce-Locator"]
    assert locator != "null"
    second = http.get(_url(sandbox, f"/{created['id']}/results"), params={"maxRecords": "200", "locator": locator})
    assert second.headers["Sforce-NumberOfRecords"] == str(CONTACTS - 200)
    assert second.headers["Sforce-Locator"] == "null"
    for page in (first, second):
        assert page.text.split("\n", 1)[0] == "Id,Email,HasOptedOutOfEmail"  # a header row on every page
        assert "\r" not in page.text  # lineEnding LF
    flags = {row["HasOptedOutOfEmail"] for row in csv.DictReader(io.StringIO(first.text))}
    assert flags <= {"true", "false"}
    assert http.delete(_url(sandbox, f"/{created['id']}")).status_code == 204
    assert http.get(_url(sandbox, f"/{created['id']}")).status_code == 404


def test_a_job_keeps_its_result_set_while_the_org_changes(http: requests.Session, sandbox: RunningSandbox) -> None:
    created = _create(http, sandbox, "SELECT Id FROM Contact")
    base = f"{sandbox.info.url}/services/data/v59.0"
    added = http.post(f"{base}/sobjects/Contact", json={"LastName": "Later"})
    assert added.status_code == 201
    try:
        _complete(http, sandbox, created["id"])
        page = http.get(_url(sandbox, f"/{created['id']}/results"))
        ids = [row["Id"] for row in csv.DictReader(io.StringIO(page.text))]
        assert len(ids) == CONTACTS and added.json()["id"] not in ids
    finally:
        http.delete(f"{base}/sobjects/Contact/{added.json()['id']}")


def test_csv_quotes_commas_quotes_newlines_and_writes_null_and_empty_alike(
    http: requests.Session, sandbox: RunningSandbox
) -> None:
    base = f"{sandbox.info.url}/services/data/v59.0"
    tricky = 'Ünïcode, "quoted"\nsecond line'
    made = http.post(f"{base}/sobjects/Contact", json={"LastName": tricky, "Description": "", "Phone": None})
    new_id = made.json()["id"]
    try:
        created = _create(http, sandbox, f"SELECT Id, LastName, Description, Phone FROM Contact WHERE Id = '{new_id}'")
        _complete(http, sandbox, created["id"])
        text = http.get(_url(sandbox, f"/{created['id']}/results")).content.decode("utf-8")
        assert text == f'Id,LastName,Description,Phone\n{new_id},"Ünïcode, ""quoted""\nsecond line",,\n'
    finally:
        http.delete(f"{base}/sobjects/Contact/{new_id}")


def test_query_all_includes_the_recycle_bin(http: requests.Session, sandbox: RunningSandbox) -> None:
    base = f"{sandbox.info.url}/services/data/v59.0"
    new_id = http.post(f"{base}/sobjects/Contact", json={"LastName": "Binned"}).json()["id"]
    http.delete(f"{base}/sobjects/Contact/{new_id}")
    soql = f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{new_id}'"
    for operation, expected in (("query", ""), ("queryAll", f"{new_id},true\n")):
        created = _create(http, sandbox, soql, operation)
        _complete(http, sandbox, created["id"])
        assert http.get(_url(sandbox, f"/{created['id']}/results")).text == "Id,IsDeleted\n" + expected


@pytest.mark.parametrize("soql", [
    "SELECT Id FROM Contact ORDER BY LastName",
    "SELECT Id FROM Contact LIMIT 5",
    "SELECT Id FROM Contact LIMIT 5 OFFSET 2",
    "SELECT COUNT() FROM Contact",
    "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
    "SELECT LeadSource FROM Contact GROUP BY LeadSource",
    "SELECT TYPEOF What WHEN Account THEN Name END FROM Task",
])
def test_unsupported_soql_is_refused_at_creation(http: requests.Session, sandbox: RunningSandbox, soql: str) -> None:
    response = http.post(_url(sandbox, ""), json={"operation": "query", "query": soql})
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "API_ERROR"


def test_simple_salesforce_sees_the_refusal(sandbox: RunningSandbox) -> None:
    session = requests.Session()
    session.verify = str(sandbox.info.ca_file)
    session.trust_env = False
    # Any: simple-salesforce types `sf.bulk2` as a union with SFType and `wait` as int (it takes seconds).
    sf: Any = Salesforce(instance_url=sandbox.info.url, session_id=sandbox.info.token, session=session)
    with pytest.raises(SalesforceMalformedRequest, match="not supported"):
        list(sf.bulk2.Contact.query("SELECT COUNT() FROM Contact", wait=0.01))


def test_abort_then_delete_and_deleting_a_running_job_is_refused(
    http: requests.Session, sandbox: RunningSandbox
) -> None:
    created = _create(http, sandbox, "SELECT Id FROM Contact")
    job = _url(sandbox, f"/{created['id']}")
    assert http.delete(job).status_code == 400  # not in a terminal state
    aborted = http.patch(job, json={"state": "Aborted"})
    assert aborted.status_code == 200 and aborted.json()["state"] == "Aborted"
    assert http.get(job).json()["state"] == "Aborted"
    assert http.patch(job, json={"state": "Aborted"}).status_code == 400
    assert http.get(f"{job}/results").status_code == 400
    assert http.delete(job).status_code == 204


def test_result_pages_hand_out_five_urls_at_a_time_from_v58(http: requests.Session, sandbox: RunningSandbox) -> None:
    created = _create(http, sandbox, "SELECT Id FROM Contact", version="60.0")
    _complete(http, sandbox, created["id"], "60.0")
    listing = http.get(_url(sandbox, f"/{created['id']}/resultPages", "60.0"), params={"maxRecords": 40}).json()
    assert len(listing["resultPages"]) == 5 and listing.get("done") is False  # .get: no narrowing of the loop below
    ids: list[str] = []
    while True:
        for page in listing["resultPages"]:
            answer = http.get(sandbox.info.url + page["resultUrl"])
            rows = list(csv.DictReader(io.StringIO(answer.text)))
            assert answer.headers["Sforce-NumberOfRecords"] == str(len(rows))
            ids += [r["Id"] for r in rows]
        if listing["done"]:
            break
        listing = http.get(sandbox.info.url + listing["nextRecordsUrl"]).json()
    assert len(ids) == CONTACTS == len(set(ids))
    assert http.get(_url(sandbox, f"/{created['id']}/resultPages", "57.0")).status_code == 404


def test_list_jobs_and_every_request_is_an_api_call(http: requests.Session, sandbox: RunningSandbox) -> None:
    sandbox.reset_stats()
    created = _create(http, sandbox, "SELECT Id FROM Contact")
    listed = http.get(_url(sandbox, "")).json()
    assert created["id"] in [j["id"] for j in listed["records"]] and listed["done"] is True
    assert sandbox.stats()["api_calls"] == 2


def test_injected_job_failure_and_page_faults(http: requests.Session, sandbox: RunningSandbox) -> None:
    created = _create(http, sandbox, "SELECT Id FROM Contact")
    sandbox.set_faults([FaultRule(kind="job_failed", method="GET", path=r"/jobs/query/750", times=1)])
    info = http.get(_url(sandbox, f"/{created['id']}")).json()
    assert info["state"] == "Failed" and info["errorMessage"]
    other = _create(http, sandbox, "SELECT Id FROM Contact")
    _complete(http, sandbox, other["id"])
    sandbox.set_faults([FaultRule(kind="status", status=503, path=r"/results$", times=1)])
    assert http.get(_url(sandbox, f"/{other['id']}/results")).status_code == 503
    assert http.get(_url(sandbox, f"/{other['id']}/results")).status_code == 200


def test_the_daily_query_job_limit(http: requests.Session, sandbox: RunningSandbox,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from crmsweep.sandbox import salesforce_bulk_query

    monkeypatch.setattr(salesforce_bulk_query, "DAILY_QUERY_JOBS", 0)
    response = http.post(_url(sandbox, ""), json={"operation": "query", "query": "SELECT Id FROM Contact"})
    assert response.status_code == 400 and response.json()[0]["errorCode"] == "LIMIT_EXCEEDED"
