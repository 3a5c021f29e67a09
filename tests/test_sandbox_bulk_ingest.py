"""The sandbox's Bulk API 2.0 ingest jobs, held to Salesforce's documentation: simple-salesforce's own
bulk2 module works against them, and each documented state, status code and CSV rule is answered.

Over real TLS; the org's state is read back through the REST API.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce

from crmsweep.sandbox.salesforce_api import SalesforceApi
from crmsweep.sandbox.server import RunningSandbox, start_sandbox

VERSION = "59.0"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path_factory.mktemp("bulk") / "state", records=250, seed=5) as running:
        yield running


# Any: simple-salesforce types `sf.<Object>` and `sf.bulk2.<Object>` as unions with its other handlers, so
# `sf.bulk2.Contact.update(records=...)` fails mypy; the helpers below keep the Salesforce type.
@pytest.fixture()
def sf(sandbox: RunningSandbox) -> Any:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.info.ca_file)
    return Salesforce(instance_url=sandbox.info.url, session_id=sandbox.info.token, session=session, version=VERSION)


def jobs_of(sandbox: RunningSandbox) -> Any:
    api = sandbox.api
    assert isinstance(api, SalesforceApi)
    return api.ingest_jobs


def url(sf: Salesforce, tail: str = "") -> str:
    return f"{sf.base_url}jobs/ingest{tail}"


def call(sf: Salesforce, method: str, tail: str = "", **kwargs: Any) -> requests.Response:
    headers = {**sf.headers, **kwargs.pop("headers", {})}
    return sf.session.request(method, url(sf, tail), headers=headers, **kwargs)


def contacts(sf: Salesforce, count: int, offset: int) -> list[str]:
    rows = sf.query(f"SELECT Id FROM Contact ORDER BY Id LIMIT {count} OFFSET {offset}")["records"]
    return [r["Id"] for r in rows]


def read(sf: Salesforce, ids: list[str], fields: str) -> dict[str, dict[str, Any]]:
    quoted = ",".join(f"'{i}'" for i in ids)
    rows = sf.query_all(f"SELECT Id, {fields} FROM Contact WHERE Id IN ({quoted})", include_deleted=True)["records"]
    return {r["Id"]: {k: v for k, v in r.items() if k != "attributes"} for r in rows}


def wait(sf: Salesforce, job_id: str) -> dict[str, Any]:
    for _ in range(400):
        info = call(sf, "GET", f"/{job_id}").json()
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            return dict(info)
        time.sleep(0.02)
    raise AssertionError("job never ended")


def open_job(sf: Salesforce, operation: str = "delete") -> str:
    answer = call(sf, "POST", json={"object": "Contact", "operation": operation, "contentType": "CSV",
                                    "lineEnding": "LF", "columnDelimiter": "COMMA"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["state"] == "Open"
    assert body["contentUrl"] == f"services/data/v{VERSION}/jobs/ingest/{body['id']}/batches"
    return str(body["id"])


def upload(sf: Salesforce, job_id: str, text: str) -> requests.Response:
    return call(sf, "PUT", f"/{job_id}/batches", data=text.encode(), headers={"Content-Type": "text/csv"})


def rows(response: requests.Response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"), newline="")))


def test_simple_salesforce_bulk2_deletes_and_updates(sf: Any) -> None:
    ids = contacts(sf, 6, 0)
    updated = sf.bulk2.Contact.update(records=[
        {"Id": ids[0], "Description": 'comma, "quote"\nnew line – ü', "Title": "#N/A"},
        {"Id": ids[1], "Description": "#N/A"},
    ])
    assert updated[0]["numberRecordsProcessed"] == 2 and updated[0]["numberRecordsFailed"] == 0
    after = read(sf, ids[:2], "Description, Title")
    assert after[ids[0]]["Description"] == 'comma, "quote"\nnew line – ü' and after[ids[0]]["Title"] is None
    assert after[ids[1]]["Description"] is None

    deleted = sf.bulk2.Contact.delete(records=[{"Id": i} for i in ids[2:5]])
    assert deleted[0]["numberRecordsProcessed"] == 3 and deleted[0]["numberRecordsFailed"] == 0
    assert {i: r["IsDeleted"] for i, r in read(sf, ids[2:6], "IsDeleted").items()} == {
        ids[2]: True, ids[3]: True, ids[4]: True, ids[5]: False}
    # Deleting one in the recycle bin again fails that record, as collections would.
    again = sf.bulk2.Contact.delete(records=[{"Id": ids[2]}])
    assert again[0]["numberRecordsFailed"] == 1


def test_a_job_goes_open_upload_complete_job_complete_with_results_and_deletes_with_204(sf: Any) -> None:
    ids = contacts(sf, 3, 20)
    sf.bulk2.Contact.delete(records=[{"Id": ids[0]}])  # already in the recycle bin
    job_id = open_job(sf)
    put = upload(sf, job_id, "Id\n" + "\n".join(ids) + "\n")
    assert (put.status_code, put.content) == (201, b"")
    # One upload per job: a second is refused while the first stands.
    assert upload(sf, job_id, "Id\n" + ids[1] + "\n").status_code == 409
    assert call(sf, "GET", f"/{job_id}/successfulResults/").status_code == 409  # not before it is complete
    closed = call(sf, "PATCH", f"/{job_id}", json={"state": "UploadComplete"})
    assert closed.status_code == 200 and closed.json()["state"] in ("UploadComplete", "InProgress", "JobComplete")
    info = wait(sf, job_id)
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == ("JobComplete", 3, 1)

    ok = call(sf, "GET", f"/{job_id}/successfulResults/")
    assert ok.headers["Sforce-NumberOfRecords"] == "2"
    assert ok.content.decode().splitlines()[0] == "sf__Id,sf__Created,Id"
    assert sorted((r["sf__Id"], r["sf__Created"]) for r in rows(ok)) == sorted((i, "false") for i in ids[1:])
    failed = rows(call(sf, "GET", f"/{job_id}/failedResults/"))
    assert [(r["Id"], r["sf__Error"].split(":")[0]) for r in failed] == [(ids[0], "ENTITY_IS_DELETED")]
    for spelling in ("unprocessedrecords", "unprocessedRecords"):
        unprocessed = call(sf, "GET", f"/{job_id}/{spelling}/")
        assert unprocessed.status_code == 200 and rows(unprocessed) == []
    assert upload(sf, job_id, "Id\n").status_code == 409  # closed jobs take no data
    deleted = call(sf, "DELETE", f"/{job_id}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert call(sf, "GET", f"/{job_id}").status_code == 404


def test_an_open_job_is_aborted_untouched_and_cannot_be_deleted_while_open(sf: Any) -> None:
    ids = contacts(sf, 2, 40)
    job_id = open_job(sf)
    assert call(sf, "DELETE", f"/{job_id}").status_code == 409
    assert upload(sf, job_id, "Id\n" + "\n".join(ids) + "\n").status_code == 201
    aborted = call(sf, "PATCH", f"/{job_id}", json={"state": "Aborted"})
    assert aborted.json()["state"] == "Aborted"
    assert call(sf, "PATCH", f"/{job_id}", json={"state": "UploadComplete"}).status_code == 409
    assert not any(r["IsDeleted"] for r in read(sf, ids, "IsDeleted").values())
    assert call(sf, "DELETE", f"/{job_id}").status_code == 204


def test_csv_rules_empty_cell_leaves_the_field_and_na_sets_null_typed_from_describe(sf: Any) -> None:
    ids = contacts(sf, 2, 60)
    sf.Contact.update(ids[0], {"Title": "Keep me", "Description": "Clear me", "HasOptedOutOfEmail": False})
    job_id = open_job(sf, "update")
    text = f"Id,Title,Description,HasOptedOutOfEmail\n{ids[0]},,#N/A,true\n{ids[1]},x,y,maybe\n"
    assert upload(sf, job_id, text).status_code == 201
    call(sf, "PATCH", f"/{job_id}", json={"state": "UploadComplete"})
    assert wait(sf, job_id)["numberRecordsFailed"] == 1
    after = read(sf, ids, "Title, Description, HasOptedOutOfEmail")
    assert after[ids[0]] == {"Id": ids[0], "Title": "Keep me", "Description": None, "HasOptedOutOfEmail": True}
    [failed] = rows(call(sf, "GET", f"/{job_id}/failedResults/"))
    assert failed["sf__Error"].startswith("INVALID_TYPE_ON_FIELD_IN_RECORD:")


def test_bad_jobs_are_refused_as_documented(sf: Any) -> None:
    refused = call(sf, "POST", json={"object": "Contact", "operation": "hardDelete", "contentType": "CSV"})
    assert refused.status_code == 400 and "Hard Delete" in refused.json()[0]["message"]
    assert call(sf, "POST", json={"object": "Nope__c", "operation": "delete"}).status_code == 404
    assert call(sf, "POST", json={"object": "Contact", "operation": "merge"}).status_code == 400
    # A delete job takes the Id column alone: the job fails, every row unprocessed.
    job_id = open_job(sf)
    upload(sf, job_id, "Id,Title\n003000000000001AAA,x\n")
    call(sf, "PATCH", f"/{job_id}", json={"state": "UploadComplete"})
    info = wait(sf, job_id)
    assert info["state"] == "Failed" and "Id" in info["errorMessage"]
    assert len(rows(call(sf, "GET", f"/{job_id}/unprocessedRecords/"))) == 1


def test_a_job_failed_part_way_reports_what_it_did_and_what_it_did_not(sandbox: RunningSandbox, sf: Any) -> None:
    ids = contacts(sf, 5, 80)
    jobs_of(sandbox).settings.fail_after = 2
    job_id = open_job(sf)
    upload(sf, job_id, "Id\n" + "\n".join(ids) + "\n")
    call(sf, "PATCH", f"/{job_id}", json={"state": "UploadComplete"})
    info = wait(sf, job_id)
    assert (info["state"], info["numberRecordsProcessed"]) == ("Failed", 2)
    done = {r["Id"] for r in rows(call(sf, "GET", f"/{job_id}/successfulResults/"))}
    left = {r["Id"] for r in rows(call(sf, "GET", f"/{job_id}/unprocessedrecords/"))}
    assert done | left == set(ids) and not done & left and len(left) == 3
    assert {i for i, r in read(sf, ids, "IsDeleted").items() if r["IsDeleted"]} == done


def test_the_daily_batch_allowance_is_enforced(sandbox: RunningSandbox, sf: Any) -> None:
    jobs = jobs_of(sandbox)
    saved = jobs.daily_batches
    jobs.daily_batches = jobs.batches_used
    try:
        refused = call(sf, "POST", json={"object": "Contact", "operation": "delete"})
        assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "LIMIT_EXCEEDED"
    finally:
        jobs.daily_batches = saved


def test_jobs_answer_only_with_the_token(sandbox: RunningSandbox, tmp_path: Path) -> None:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.info.ca_file)
    answer = session.post(f"{sandbox.info.url}/services/data/v{VERSION}/jobs/ingest",
                          json={"object": "Contact", "operation": "delete"},
                          headers={"Authorization": "Bearer wrong"})
    assert answer.status_code == 401 and answer.json()[0]["errorCode"] == "INVALID_SESSION_ID"
