"""Fault injection: each kind, through the real simple-salesforce client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)

from crmsweep.sandbox.faults import FaultRule, parse_faults
from crmsweep.sandbox.server import RunningSandbox, start_sandbox

# simple-salesforce builds sf.Contact and friends dynamically; its annotations do not describe that.
Client = Any


def content(error: SalesforceError) -> Any:
    return error.content


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path_factory.mktemp("sf"), records=200) as running:
        yield running


@pytest.fixture
def sf(sandbox: RunningSandbox) -> Iterator[Client]:
    sandbox.set_faults([])
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.info.ca_file)
    yield Salesforce(instance_url=sandbox.info.url, session_id=sandbox.info.token, session=session)
    sandbox.set_faults([])


QUERY = "SELECT Id FROM Contact LIMIT 1"


def test_status_503_is_a_gateway_page_and_stops_after_times(sandbox: RunningSandbox, sf: Client) -> None:
    sandbox.reset_stats()
    sandbox.set_faults([FaultRule(kind="status", status=503, path="query", times=2)])
    for _ in range(2):
        with pytest.raises(SalesforceGeneralError) as failed:
            sf.query(QUERY)
        assert failed.value.status == 503 and "<h1>503 Service Unavailable</h1>" in content(failed.value)
    assert sf.query(QUERY)["totalSize"] == 1
    stats = sandbox.stats()
    assert stats["faults_injected"] == 2 and stats["api_calls"] == 1 and stats["api_usage"] == 1


def test_status_500_is_a_json_error(sandbox: RunningSandbox, sf: Client) -> None:
    sandbox.set_faults([FaultRule(kind="status", status=500, times=1)])
    with pytest.raises(SalesforceGeneralError) as failed:
        sf.query(QUERY)
    assert failed.value.status == 500 and content(failed.value)[0]["errorCode"] == "UNKNOWN_EXCEPTION"


def test_method_and_path_filters(sandbox: RunningSandbox, sf: Client) -> None:
    sandbox.set_faults([FaultRule(kind="status", status=502, method="PATCH", path="composite", times=1)])
    assert sf.query(QUERY)["totalSize"] == 1  # GET: not matched
    contact = sf.query(QUERY)["records"][0]["Id"]
    with pytest.raises(SalesforceGeneralError) as failed:
        sf.restful("composite/sobjects", method="PATCH",
                   json={"records": [{"attributes": {"type": "Contact"}, "id": contact, "Title": "x"}]})
    assert failed.value.status == 502
    assert sf.Contact.get(contact)["Title"] != "x"


def test_timeout_delays_the_answer(sandbox: RunningSandbox, sf: Client) -> None:
    sandbox.set_faults([FaultRule(kind="timeout", delay=0.6, times=1)])
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf.query(QUERY, timeout=0.2)
    assert sf.query(QUERY, timeout=5)["totalSize"] == 1


def test_drop_closes_the_connection(sandbox: RunningSandbox, sf: Client) -> None:
    sandbox.set_faults([FaultRule(kind="drop", times=1)])
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.query(QUERY)
    assert sf.query(QUERY)["totalSize"] == 1


def test_limit_and_expired(sandbox: RunningSandbox, sf: Client) -> None:
    sandbox.set_faults([FaultRule(kind="limit", times=1), FaultRule(kind="expired", times=1)])
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query(QUERY)
    assert content(refused.value) == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    with pytest.raises(SalesforceExpiredSession) as expired:
        sf.query(QUERY)
    assert content(expired.value)[0]["errorCode"] == "INVALID_SESSION_ID"
    assert sf.query(QUERY)["totalSize"] == 1


def test_lock_fails_chosen_records_per_id(sandbox: RunningSandbox, sf: Client) -> None:
    a, b = (r["Id"] for r in sf.query("SELECT Id FROM Contact ORDER BY Id LIMIT 2")["records"])
    sandbox.set_faults([FaultRule(kind="lock", ids=(a,), times=1)])
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "Contact"}, "id": a, "Title": "Locked?"},
        {"attributes": {"type": "Contact"}, "id": b, "Title": "Free"},
    ]}
    first = sf.restful("composite/sobjects", method="PATCH", json=body)
    locked = {"statusCode": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access to this record",
              "fields": []}
    assert first[0] == {"id": a, "success": False, "errors": [locked]}
    assert first[1]["success"] is True
    assert sf.Contact.get(a)["Title"] != "Locked?"
    second = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert [r["success"] for r in second] == [True, True]
    assert sf.Contact.get(a)["Title"] == "Locked?"


def test_admin_endpoint_sets_faults_from_json(sandbox: RunningSandbox, sf: Client) -> None:
    headers = {"Authorization": f"Bearer {sandbox.info.token}"}
    url = sandbox.info.url
    answer = sf.session.post(f"{url}/__sandbox/faults", headers=headers,
                             json=[{"kind": "status", "status": 503, "path": "query", "times": 1}])
    assert answer.status_code == 200 and answer.json() == {"rules": 1}
    with pytest.raises(SalesforceGeneralError):
        sf.query(QUERY)
    assert sf.query(QUERY)["totalSize"] == 1
    bad = sf.session.post(f"{url}/__sandbox/faults", headers=headers, json=[{"kind": "meteor"}])
    assert bad.status_code == 400 and "meteor" in bad.json()[0]["message"]
    reset = sf.session.post(f"{url}/__sandbox/reset-stats", headers=headers)
    assert reset.json()["api_calls"] == 0 and reset.json()["faults_injected"] == 0


def test_rate_faults_from_the_cli_string_are_seeded(sandbox: RunningSandbox, sf: Client) -> None:
    sandbox.set_faults(parse_faults("503:0.5"))
    outcomes = []
    for _ in range(20):
        try:
            sf.query(QUERY)
            outcomes.append(True)
        except SalesforceGeneralError:
            outcomes.append(False)
    assert 0 < outcomes.count(False) < 20


def test_parse_faults() -> None:
    assert parse_faults("503:0.05, lock:0.02,timeout:0.01,drop") == [
        FaultRule(kind="status", status=503, rate=0.05),
        FaultRule(kind="lock", rate=0.02),
        FaultRule(kind="timeout", rate=0.01),
        FaultRule(kind="drop", rate=1.0),
    ]
    with pytest.raises(ValueError, match="meteor"):
        parse_faults("meteor:0.1")
    with pytest.raises(ValueError, match="probability"):
        parse_faults("503:2")
    assert FaultRule.from_dict({"kind": "lock", "ids": ["003A"], "times": 1}).ids == ("003A",)
    with pytest.raises(ValueError, match="regular expression"):
        FaultRule.from_dict({"kind": "status", "path": "("})


def test_start_options_for_latency_and_faults(tmp_path: Path) -> None:
    with start_sandbox(tmp_path, records=20, latency_ms=150, faults="503:1") as sandbox:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(sandbox.info.ca_file)
        sf = Salesforce(instance_url=sandbox.info.url, session_id=sandbox.info.token, session=session)
        started = time.monotonic()
        with pytest.raises(SalesforceGeneralError) as failed:
            sf.query(QUERY)
        assert failed.value.status == 503 and time.monotonic() - started >= 0.15
        assert sandbox.stats()["faults_injected"] == 1


def test_requests_without_the_session_do_not_use_up_an_armed_fault(sandbox: RunningSandbox, sf: Client) -> None:
    sandbox.reset_stats()
    sandbox.set_faults([FaultRule(kind="status", status=503, times=1)])
    url = f"{sandbox.info.url}/services/data/v59.0/query/"
    assert sf.session.get(url, params={"q": QUERY}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert sf.session.get(url, params={"q": QUERY}).status_code == 401
    assert sf.session.get(f"{sandbox.info.url}/services/oauth2/userinfo").status_code == 403
    envelope = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader><urn:sessionId>wrong'
        "</urn:sessionId></urn:SessionHeader></soapenv:Header><soapenv:Body><urn:undelete>"
        "<urn:ids>003000000000001AAA</urn:ids></urn:undelete></soapenv:Body></soapenv:Envelope>"
    )
    soap = sf.session.post(f"{sandbox.info.url}/services/Soap/u/59.0", data=envelope,
                           headers={"Content-Type": "text/xml", "SOAPAction": "undelete"})
    assert soap.status_code == 500 and "INVALID_SESSION_ID" in soap.text
    assert sandbox.stats()["faults_injected"] == 0
    with pytest.raises(SalesforceGeneralError) as failed:  # still armed for the real client
        sf.query(QUERY)
    assert failed.value.status == 503
    assert sf.query(QUERY)["totalSize"] == 1 and sandbox.stats()["faults_injected"] == 1
