"""Recorded Salesforce edge cases, served by `responses`: gateway pages, Retry-After, paging loops,
SOAP faults, and a create whose outcome is unknown."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from crmsweep.connectors.base import Connection
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.connectors.salesforce import SalesforceConnector, id_chunks
from crmsweep.connectors.salesforce_errors import map_failure, outcome_unknown, parse_retry_after
from crmsweep.connectors.salesforce_session import SalesforceSession
from crmsweep.errors import AuthError, BadInput, ConnectorError, LimitExceeded, RetriableError

HOST = "https://acme.my.salesforce.com"
BASE = f"{HOST}/services/data/v59.0"
TOKEN = "00Dxx0000001gPL!AQ4AQFakeSessionTokenThatMustNeverLeak"
SOAP_URL = f"{HOST}/services/Soap/u/59.0"
Mock = responses.RequestsMock
IDS = ["003000000000001AAA", "003000000000002AAA"]

GATEWAY_PAGE = """<!DOCTYPE html>
<html><head><title>503 Service Temporarily Unavailable</title></head>
<body><center><h1>503 Service Temporarily Unavailable</h1></center><hr><center>nginx</center></body>
</html>"""


def soap_fault(code: str, text: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {text}</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )


class Waits(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as requests_mock:
        yield requests_mock


@pytest.fixture
def connector(waits: Waits, mock: Mock) -> Iterator[SalesforceConnector]:
    conn = Connection(name="prod", provider="salesforce", url=HOST, token=TOKEN, token_env="ACME_SF_TOKEN")
    policy = RetryPolicy(attempts=3, initial_wait=1.0, max_wait=30.0, jitter=False, sleep=waits)
    connector = SalesforceConnector(conn, retry=policy)
    yield connector
    connector.close()


def test_gateway_html_page_is_retried_then_reported(connector: SalesforceConnector, mock: Mock, waits: Waits) -> None:
    mock.get(f"{BASE}/query/", body=GATEWAY_PAGE, status=503, content_type="text/html")
    with pytest.raises(RetriableError) as caught:
        connector.count("Contact")
    message = str(caught.value)
    assert "503" in message and "\n" not in message and "<" not in message and TOKEN not in message
    assert caught.value.status == 503
    assert len(mock.calls) == 3
    assert waits == [1.0, 2.0]
    assert connector.api_usage().calls == 3


def test_retry_after_is_honoured(connector: SalesforceConnector, mock: Mock, waits: Waits) -> None:
    mock.get(f"{BASE}/query/", body="busy", status=503, headers={"Retry-After": "7"})
    mock.get(
        f"{BASE}/query/",
        json={"totalSize": 42, "done": True, "records": []},
        headers={"Sforce-Limit-Info": "api-usage=18/15000"},
    )
    assert connector.count("Contact", has_value=["Email"]) == 42
    assert waits == [7.0]
    usage = connector.api_usage()
    assert (usage.calls, usage.org_used, usage.org_max) == (2, 18, 15000)
    assert "WHERE+Email+%21%3D+null" in str(mock.calls[1].request.url)


def test_repeating_next_records_url_is_a_loop(connector: SalesforceConnector, mock: Mock) -> None:
    record = {"attributes": {"type": "Contact"}, "Id": IDS[0]}
    next_url = "/services/data/v59.0/query/01gXX0000000001-2000"
    mock.get(f"{BASE}/query/", json={"totalSize": 9, "done": False, "nextRecordsUrl": next_url, "records": [record]})
    mock.get(f"{HOST}{next_url}", json={"totalSize": 9, "done": False, "nextRecordsUrl": next_url, "records": [record]})
    pages = connector.iter_pages("Contact", ["Id"])
    assert next(pages) == [{"Id": IDS[0]}]
    assert next(pages) == [{"Id": IDS[0]}]
    with pytest.raises(ConnectorError, match="repeated a nextRecordsUrl"):
        next(pages)


def test_pages_strip_nested_attributes(connector: SalesforceConnector, mock: Mock) -> None:
    record = {
        "attributes": {"type": "Contact", "url": "/x"},
        "Id": IDS[0],
        "Owner": {"attributes": {"type": "User"}, "Name": "Ada"},
    }
    mock.get(f"{BASE}/queryAll/", json={"totalSize": 1, "done": True, "records": [record]})
    assert list(connector.iter_pages("Contact", ["Id", "Owner.Name"], include_deleted=True)) == [
        [{"Id": IDS[0], "Owner": {"Name": "Ada"}}]
    ]


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        ("INVALID_SESSION_ID", AuthError),
        ("REQUEST_LIMIT_EXCEEDED", LimitExceeded),
        ("INVALID_ID_FIELD", ConnectorError),
    ],
)
def test_soap_fault_maps_like_rest(
    connector: SalesforceConnector, mock: Mock, code: str, error_type: type[Exception]
) -> None:
    mock.post(SOAP_URL, body=soap_fault(code, "something went wrong"), status=500, content_type="text/xml")
    with pytest.raises(error_type) as caught:
        connector.undelete("Contact", IDS)
    assert type(caught.value) is error_type
    assert code in str(caught.value) and TOKEN not in str(caught.value)
    assert len(mock.calls) == 1
    if error_type is AuthError:
        assert "ACME_SF_TOKEN" in str(caught.value)


def test_undelete_envelope_and_results(connector: SalesforceConnector, mock: Mock) -> None:
    answer = (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">'
        "<soapenv:Body><undeleteResponse>"
        f"<result><id>{IDS[0]}</id><success>true</success></result>"
        f"<result><errors><statusCode>UNDELETE_FAILED</statusCode><message>not in the recycle bin</message></errors>"
        f"<id>{IDS[1]}</id><success>false</success></result>"
        "</undeleteResponse></soapenv:Body></soapenv:Envelope>"
    )
    mock.post(SOAP_URL, body=answer, content_type="text/xml; charset=utf-8")
    results = connector.undelete("Contact", IDS)
    assert [r.to_dict() for r in results] == [
        {"id": IDS[0], "ok": True, "error_code": None, "message": None},
        {"id": IDS[1], "ok": False, "error_code": "UNDELETE_FAILED", "message": "not in the recycle bin"},
    ]
    sent = mock.calls[0].request
    assert sent.headers["SOAPAction"] == "undelete"
    assert sent.headers["Content-Type"] == "text/xml; charset=UTF-8"
    body = sent.body.decode() if isinstance(sent.body, bytes) else str(sent.body)
    assert f"<urn:sessionId>{TOKEN}</urn:sessionId>" in body
    assert body.index(IDS[0]) < body.index(IDS[1])


def test_timeout_on_create_is_not_retried(connector: SalesforceConnector, mock: Mock, waits: Waits) -> None:
    mock.post(f"{BASE}/composite/sobjects", body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(ConnectorError) as caught:
        connector.create("Contact", [{"LastName": "Lovelace"}])
    assert not isinstance(caught.value, RetriableError)
    assert caught.value.code == "OUTCOME_UNKNOWN"
    assert "could create duplicates" in str(caught.value)
    assert len(mock.calls) == 1
    assert waits == []


UNDELETED = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">'
    "<soapenv:Body><undeleteResponse>"
    + "".join(f"<result><id>{i}</id><success>true</success></result>" for i in IDS)
    + "</undeleteResponse></soapenv:Body></soapenv:Envelope>"
)


def fail_with(mock: Mock, method: str, url: str, failure: str) -> None:
    """Register one failed exchange of the kind named by `failure`."""
    if failure == "read timeout":
        mock.add(method, url, body=requests.exceptions.ReadTimeout("read timed out"))
    elif failure == "dropped after sending":
        mock.add(method, url, body=requests.exceptions.ConnectionError("Connection aborted: RemoteDisconnected"))
    elif failure == "connect timeout":
        mock.add(method, url, body=requests.exceptions.ConnectTimeout("connect timed out"))
    elif failure == "xml gateway page":
        mock.add(method, url, body="<html><body>Bad Gateway</body>", status=502, content_type="text/xml")
    else:
        mock.add(method, url, body=GATEWAY_PAGE.replace("503", failure), status=int(failure), content_type="text/html")


def send_delete_or_undelete(connector: SalesforceConnector, mock: Mock, op: str, failure: str) -> list[bool]:
    """One failed exchange, then (if the connector sends again) a success: the ok flags it reports."""
    if op == "delete":
        url = f"{BASE}/composite/sobjects"
        fail_with(mock, "DELETE", url, failure)
        mock.delete(url, json=[{"id": i, "success": True, "errors": []} for i in IDS])
        return [r.ok for r in connector.delete("Contact", IDS)]
    fail_with(mock, "POST", SOAP_URL, failure)
    mock.post(SOAP_URL, body=UNDELETED, content_type="text/xml")
    return [r.ok for r in connector.undelete("Contact", IDS)]


@pytest.mark.parametrize("op", ["delete", "undelete"])
@pytest.mark.parametrize("failure", ["read timeout", "dropped after sending", "500", "502", "504", "xml gateway page"])
def test_delete_or_undelete_whose_outcome_is_unknown_is_not_resent(
    connector: SalesforceConnector, waits: Waits, op: str, failure: str
) -> None:
    # A resend of a delete that had landed answers ENTITY_IS_DELETED: written records reported as failed.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        with pytest.raises(ConnectorError) as caught:
            send_delete_or_undelete(connector, mock, op, failure)
        assert len(mock.calls) == 1
    assert not isinstance(caught.value, RetriableError)
    assert caught.value.code == "OUTCOME_UNKNOWN"
    message = str(caught.value)
    assert message.startswith(f"{op} Contact on Salesforce connection 'prod' may or may not have been carried out")
    assert "\n" not in message and TOKEN not in message
    assert waits == []


@pytest.mark.parametrize("op", ["delete", "undelete"])
@pytest.mark.parametrize("failure", ["connect timeout", "503", "429"])
def test_delete_or_undelete_that_never_reached_salesforce_is_retried(
    connector: SalesforceConnector, mock: Mock, waits: Waits, op: str, failure: str
) -> None:
    assert send_delete_or_undelete(connector, mock, op, failure) == [True, True]
    assert len(mock.calls) == 2 and waits == [1.0]


def test_update_whose_outcome_is_unknown_is_resent(connector: SalesforceConnector, mock: Mock, waits: Waits) -> None:
    url = f"{BASE}/composite/sobjects"
    mock.patch(url, body=requests.exceptions.ReadTimeout("read timed out"))
    mock.patch(url, json=[{"id": i, "success": True, "errors": []} for i in IDS])
    results = connector.update("Contact", [{"Id": i, "Title": "CEO"} for i in IDS])
    assert [(r.id, r.ok) for r in results] == [(IDS[0], True), (IDS[1], True)]
    first, second = (json.loads(c.request.body or b"") for c in mock.calls)
    assert first == second


def test_expired_session_names_the_env_var_not_the_token(connector: SalesforceConnector, mock: Mock) -> None:
    mock.get(
        f"{BASE}/sobjects/Contact/describe",
        json=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
        status=401,
    )
    with pytest.raises(AuthError) as caught:
        connector.describe("Contact")
    assert "ACME_SF_TOKEN" in str(caught.value) and TOKEN not in str(caught.value)
    assert caught.value.exit_code == 2
    assert len(mock.calls) == 1


def test_bad_request_carries_salesforce_code(connector: SalesforceConnector, mock: Mock) -> None:
    mock.get(
        f"{BASE}/query/",
        json=[{"message": "unexpected token: FORM", "errorCode": "MALFORMED_QUERY"}],
        status=400,
    )
    with pytest.raises(ConnectorError) as caught:
        connector.count("Contact", equals={"Name": "x"})
    assert caught.value.code == "MALFORMED_QUERY" and caught.value.status == 400
    assert "unexpected token: FORM" in str(caught.value)


def test_other_403_is_insufficient_access(connector: SalesforceConnector, mock: Mock) -> None:
    mock.get(
        f"{BASE}/query/",
        json=[{"message": "not allowed", "errorCode": "INSUFFICIENT_ACCESS"}],
        status=403,
    )
    with pytest.raises(ConnectorError, match="insufficient access") as caught:
        connector.count("Contact")
    assert not isinstance(caught.value, LimitExceeded | RetriableError)


def test_update_body_and_lock_retry(connector: SalesforceConnector, mock: Mock, waits: Waits) -> None:
    url = f"{BASE}/composite/sobjects"
    locked = {"success": False, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked"}]}
    mock.patch(url, json=[{"id": IDS[0], "success": True, "errors": []}, {"id": IDS[1], **locked}])
    mock.patch(url, json=[{"id": IDS[1], **locked}])
    mock.patch(url, json=[{"id": IDS[1], "success": True, "errors": []}])
    results = connector.update("Contact", [{"Id": IDS[0], "Title": "CEO"}, {"Id": IDS[1], "Title": None}])
    assert [(r.id, r.ok) for r in results] == [(IDS[0], True), (IDS[1], True)]
    bodies = [json.loads(call.request.body or b"") for call in mock.calls]
    assert bodies[0] == {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Contact"}, "id": IDS[0], "Title": "CEO"},
            {"attributes": {"type": "Contact"}, "id": IDS[1], "Title": None},
        ],
    }
    assert [r["id"] for r in bodies[1]["records"]] == [IDS[1]]
    assert waits == [1.0, 2.0]


def test_batches_above_200_are_refused(connector: SalesforceConnector, mock: Mock) -> None:
    with pytest.raises(ValueError, match="at most 200"):
        connector.delete("Contact", [f"003{n:015d}" for n in range(201)])


def test_id_chunks_respect_the_byte_budget() -> None:
    ids = [f"003{n:015d}" for n in range(1000)]
    chunks = list(id_chunks(500, ids, max_ids=300, max_bytes=2000))
    assert [i for c in chunks for i in c] == ids
    per_id = len("%27003000000000000000%27%2C")
    assert all(500 + len(c) * per_id <= 2000 for c in chunks)
    assert len(chunks[0]) == (2000 - 500) // per_id


def test_session_forces_the_connection_ca_but_keeps_env_proxies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not used for a handshake here")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    pinned = SalesforceSession(ca).merge_environment_settings(HOST, {}, None, None, None)
    assert pinned["verify"] == str(ca)
    assert pinned["proxies"]["https"] == "http://proxy.corp.example:3128"
    default = SalesforceSession(None).merge_environment_settings(HOST, {}, None, None, None)
    assert default["verify"] == "/etc/ssl/certs/ca-certificates.crt"
    assert default["proxies"]["https"] == "http://proxy.corp.example:3128"


LOCKED = {"success": False, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked"}]}


@pytest.mark.parametrize(
    ("answer", "error_type"),
    [
        ({"json": [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
          "status": 403}, LimitExceeded),
        ({"json": [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], "status": 401},
         AuthError),
        ({"json": [{"message": "bad", "errorCode": "INVALID_FIELD"}], "status": 400}, ConnectorError),
    ],
)
def test_failure_while_retrying_locked_rows_is_raised_not_reported_per_record(
    connector: SalesforceConnector, mock: Mock, answer: dict[str, Any], error_type: type[ConnectorError]
) -> None:
    # Nothing is known about the records in flight: the caller must stop and read them back.
    url = f"{BASE}/composite/sobjects"
    mock.patch(url, json=[{"id": IDS[0], "success": True, "errors": []}, {"id": IDS[1], **LOCKED}])
    mock.patch(url, **answer)
    with pytest.raises(error_type) as caught:
        connector.update("Contact", [{"Id": i, "Title": "CEO"} for i in IDS])
    assert type(caught.value) is error_type
    assert [r["id"] for r in json.loads(mock.calls[1].request.body or b"")["records"]] == [IDS[1]]


def test_retries_spent_while_retrying_locked_rows_are_raised(
    connector: SalesforceConnector, mock: Mock, waits: Waits
) -> None:
    url = f"{BASE}/composite/sobjects"
    mock.delete(url, json=[{"id": IDS[0], "success": True, "errors": []}, {"id": IDS[1], **LOCKED}])
    for _ in range(3):
        mock.delete(url, body=GATEWAY_PAGE, status=503, content_type="text/html")
    with pytest.raises(RetriableError) as caught:
        connector.delete("Contact", IDS)
    assert caught.value.status == 503
    assert len(mock.calls) == 4


def test_timeout_while_retrying_locked_rows_of_a_delete_is_outcome_unknown(
    connector: SalesforceConnector, mock: Mock
) -> None:
    url = f"{BASE}/composite/sobjects"
    mock.delete(url, json=[{"id": IDS[0], "success": True, "errors": []}, {"id": IDS[1], **LOCKED}])
    mock.delete(url, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(ConnectorError) as caught:
        connector.delete("Contact", IDS)
    assert caught.value.code == "OUTCOME_UNKNOWN"
    assert len(mock.calls) == 2


def test_row_still_locked_after_the_last_round_is_a_per_record_failure(
    connector: SalesforceConnector, mock: Mock, waits: Waits
) -> None:
    url = f"{BASE}/composite/sobjects"
    mock.delete(url, json=[{"id": IDS[0], "success": True, "errors": []}, {"id": IDS[1], **LOCKED}])
    mock.delete(url, json=[{"id": IDS[1], **LOCKED}])
    mock.delete(url, json=[{"id": IDS[1], **LOCKED}])
    results = connector.delete("Contact", IDS)
    assert [r.to_dict() for r in results] == [
        {"id": IDS[0], "ok": True, "error_code": None, "message": None},
        {"id": IDS[1], "ok": False, "error_code": "UNABLE_TO_LOCK_ROW", "message": "locked"},
    ]
    assert waits == [1.0, 2.0]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda c: c.describe("Bad Name"), "'Bad Name' is not a Salesforce object name: use one API name"),
        (lambda c: c.describe("Contact;Lead"), "'Contact;Lead' is not a Salesforce object name"),
        (lambda c: c.count("Contact WHERE"), "'Contact WHERE' is not a Salesforce object name"),
        (lambda c: list(c.iter_pages("Contact", ["Id", "Name, Email"])), "'Name, Email' is not a Salesforce field"),
        (lambda c: c.read("Contact", ["003xyz"], ["Id"]), "'003xyz' is not a Salesforce record id: expected 15 or 18"),
        (lambda c: c.read("Contact", ["003000000000001AAA' OR Id != '"], ["Id"]), "is not a Salesforce record id"),
        (lambda c: c.delete("Contact", [IDS[0], "nope"]), "'nope' is not a Salesforce record id"),
        (lambda c: c.update("Contact", [{"Title": "x"}]), "None is not a Salesforce record id"),
        (lambda c: c.undelete("Contact", ["x" * 500]), "'xxxxxxxx"),
        # A `$`-anchored match lets a final newline through; names and ids are matched whole.
        (lambda c: c.describe("Contact\n"), "'Contact\\n' is not a Salesforce object name"),
        (lambda c: list(c.iter_pages("Contact", ["Id\n"])), "'Id\\n' is not a Salesforce field name"),
        (lambda c: c.delete("Contact", [IDS[0] + "\n"]), "'003000000000001AAA\\n' is not a Salesforce record id"),
    ],
)
def test_bad_names_and_ids_are_bad_input(
    connector: SalesforceConnector, mock: Mock, call: Callable[[SalesforceConnector], object], expected: str
) -> None:
    with pytest.raises(BadInput) as caught:
        call(connector)
    message = str(caught.value)
    assert expected in message and "\n" not in message and len(message) < 200
    assert caught.value.exit_code == 2
    assert len(mock.calls) == 0


def test_query_batch_size_is_asked_on_every_page(mock: Mock) -> None:
    conn = Connection(name="prod", provider="salesforce", url=HOST, token=TOKEN)
    connector = SalesforceConnector(conn, retry=RetryPolicy.immediate(), query_batch_size=200)
    next_url = "/services/data/v59.0/query/01gXX0000000001-200"
    mock.get(f"{BASE}/query/", json={"done": False, "nextRecordsUrl": next_url, "records": [{"Id": IDS[0]}]})
    mock.get(f"{HOST}{next_url}", json={"done": True, "records": [{"Id": IDS[1]}]})
    assert list(connector.iter_pages("Contact", ["Id"])) == [[{"Id": IDS[0]}], [{"Id": IDS[1]}]]
    assert [c.request.headers["Sforce-Query-Options"] for c in mock.calls] == ["batchSize=200"] * 2


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after("Sun, 01 Mar 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("\u00b2", now=now) is None  # a digit to str.isdigit, not to float()
    assert parse_retry_after(None) is None


def test_a_tls_failure_after_sending_is_a_lost_connection_not_a_certificate_problem() -> None:
    conn = Connection(name="prod", provider="salesforce", url=HOST, token=TOKEN)
    refused = requests.exceptions.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed (_ssl.c:1006)")
    broken = requests.exceptions.SSLError("EOF occurred in violation of protocol (_ssl.c:2427)")

    assert not outcome_unknown(refused)
    refused_error = map_failure(refused, conn, action="delete Contact", retry_after=None)
    assert type(refused_error).__name__ == "EndpointError" and refused_error.exit_code == 2
    assert "is not trusted (wrong ca_file, or not the server you think)" in str(refused_error)

    assert outcome_unknown(broken)
    broken_error = map_failure(broken, conn, action="delete Contact", retry_after=None)
    assert isinstance(broken_error, RetriableError) and "lost the connection" in str(broken_error)


def test_a_redirect_without_location_or_with_a_session_in_it_shows_neither(connector: SalesforceConnector,
                                                                          mock: Mock) -> None:
    mock.get(f"{BASE}/query/", status=302)
    with pytest.raises(ConnectorError, match=r"HTTP 302 from https://acme\.my\.salesforce\.com/services/data/v59\.0/"
                                             r"query/ to nowhere \(no Location header\)"):
        connector.count("Contact")
    mock.get(f"{BASE}/limits/", status=301, headers={"Location": f"http://evil.example/x?sid={TOKEN}"})
    with pytest.raises(ConnectorError) as caught:
        connector._call("read limits", lambda: connector._sf.limits())
    assert "to http://evil.example/x)" in str(caught.value) and TOKEN not in str(caught.value)
    assert len(mock.calls) == 2


def test_per_record_messages_are_masked_like_whole_call_errors(connector: SalesforceConnector, mock: Mock) -> None:
    # What an Apex trigger's addError(UserInfo.getSessionId()) sends back, for each record it refuses.
    echo = {"statusCode": f"FIELD_CUSTOM_VALIDATION_EXCEPTION {TOKEN}", "message": f"session\n{TOKEN} is busy"}
    mock.delete(f"{BASE}/composite/sobjects", json=[{"id": i, "success": False, "errors": [echo]} for i in IDS])
    results = connector.delete("Contact", IDS)
    assert [(r.id, r.ok, r.error_code, r.message) for r in results] == [
        (i, False, "FIELD_CUSTOM_VALIDATION_EXCEPTION ***", "session *** is busy") for i in IDS
    ]


def test_an_error_code_echoing_the_session_is_masked_in_every_spelling(
    connector: SalesforceConnector, mock: Mock
) -> None:
    # A hostile or broken server may echo the session in the error code of a 401, URL-encoded or base64.
    import base64
    from urllib.parse import quote

    encoded = base64.b64encode(TOKEN.encode()).decode()
    mock.get(f"{BASE}/sobjects/Contact/describe",
             json=[{"errorCode": TOKEN, "message": f"bad {quote(TOKEN, safe='')} and {encoded}"}], status=401)
    with pytest.raises(AuthError) as raised:
        connector.describe("Contact")
    shown = f"{raised.value} {raised.value.code}"
    assert TOKEN not in shown and quote(TOKEN, safe="") not in shown and "***" in shown
    mock.get(f"{BASE}/sobjects/Lead/describe",
             json=[{"errorCode": "X", "message": f"bad {quote(TOKEN, safe='')} and {encoded}"}], status=400)
    with pytest.raises(ConnectorError) as raised_400:
        connector.describe("Lead")
    assert quote(TOKEN, safe="") not in str(raised_400.value) and encoded not in str(raised_400.value)


def test_per_record_messages_lose_terminal_escapes_and_ids_must_look_like_ids(
    connector: SalesforceConnector, mock: Mock
) -> None:
    clear_screen = {"statusCode": "LOCKED", "message": "\x1b[2J\x1b[HAll 255 changes applied.\x1b[8m"}
    mock.delete(f"{BASE}/composite/sobjects",
                json=[{"id": f"{TOKEN}", "success": False, "errors": [clear_screen]} for _ in IDS])
    results = connector.delete("Contact", IDS)
    assert [(r.id, r.message) for r in results] == [(i, "[2J [HAll 255 changes applied. [8m") for i in IDS]
    assert all("\x1b" not in (r.message or "") for r in results)


def test_a_session_echoed_in_another_case_is_masked(connector: SalesforceConnector, mock: Mock) -> None:
    mock.get(f"{BASE}/sobjects/Contact/describe",
             json=[{"errorCode": "INSUFFICIENT_ACCESS", "message": TOKEN.lower()}], status=403)
    with pytest.raises(ConnectorError) as raised:
        connector.describe("Contact")
    assert TOKEN.lower() not in str(raised.value) and "***" in str(raised.value)
