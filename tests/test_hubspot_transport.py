"""The HubSpot connector's transport through the real hubspot-api-client (urllib3) over real TLS:
redirects refused, no SDK retries behind the product's policy, auth errors that never show the token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest

from crmsweep.connectors.base import Connection
from crmsweep.connectors.hubspot import RESTORE_KEY_PROPERTY, HubSpotConnector
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.errors import AuthError, ConnectorError, EndpointError, LimitExceeded, RetriableError
from crmsweep.model import WriteResult
from tests.https_stub import HttpsStub, https_stub

TOKEN = "pat-na1-0123456789-secret"
DROP = -1


class Scripted(BaseHTTPRequestHandler):
    """Answers each request with the next scripted (status, body, headers); records what it was asked."""

    script: ClassVar[list[tuple[int, Any, dict[str, str]]]] = []
    seen: ClassVar[list[tuple[str, str, str | None]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        type(self).seen.append((self.command, self.path, self.headers.get("Authorization")))
        status, body, headers = type(self).script.pop(0) if type(self).script else (200, {"results": []}, {})
        if status == DROP:  # carried out, but the answer is lost: the connection closes unanswered
            self.close_connection = True
            return
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture()
def stub(tmp_path: Path) -> Iterator[HttpsStub]:
    Scripted.script, Scripted.seen = [], []
    with https_stub(tmp_path, Scripted) as running:
        yield running


def connector(stub: HttpsStub, attempts: int = 3) -> HubSpotConnector:
    connection = Connection(name="acme", provider="hubspot", url=stub.url, token=TOKEN, ca_file=stub.ca_file,
                            token_env="ACME_HUBSPOT_TOKEN")
    return HubSpotConnector(connection, retry=RetryPolicy.immediate(attempts))


def test_a_redirect_is_refused_and_the_other_host_never_asked(stub: HttpsStub, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    with https_stub(tmp_path / "other", Scripted) as other:
        Scripted.script = [(302, None, {"Location": f"{other.url}/steal"})]
        hs = connector(stub)
        with pytest.raises(ConnectorError) as caught:
            hs.org_id()
    assert caught.value.code == "REDIRECT"
    assert [path for _m, path, _a in Scripted.seen] == ["/account-info/v3/details"]  # nothing followed
    assert "crmsweep never follows redirects" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_the_sdk_does_not_retry_only_the_product_policy_does(stub: HttpsStub) -> None:
    Scripted.script = [(503, {"message": "down"}, {}), (503, {"message": "down"}, {}),
                       (200, {"portalId": 7}, {})]
    hs = connector(stub, attempts=3)
    assert hs.org_id() == "7"
    assert len(Scripted.seen) == 3 and hs.calls == 3  # one request per policy attempt, none of urllib3's
    Scripted.script, Scripted.seen = [(503, {"message": "down"}, {})] * 3, []
    hs2 = connector(stub, attempts=2)
    with pytest.raises(RetriableError):
        hs2.org_id()
    assert len(Scripted.seen) == 2


def test_a_refused_token_names_the_variable_and_never_the_token(stub: HttpsStub) -> None:
    Scripted.script = [(401, {"status": "error", "message": f"Authentication credentials not found {TOKEN}",
                              "category": "INVALID_AUTHENTICATION"}, {})]
    with pytest.raises(AuthError) as caught:
        connector(stub).org_id()
    assert str(caught.value) == (
        "HubSpot connection 'acme' refused the token when crmsweep tried to read the portal id: put a valid "
        "private-app token "
        "or service key in environment variable ACME_HUBSPOT_TOKEN and try again"
    )
    assert Scripted.seen[0][2] == f"Bearer {TOKEN}"  # the bearer scheme serves tokens and service keys alike


def test_a_daily_429_stops_at_once_and_a_ten_secondly_one_is_waited_for(stub: HttpsStub) -> None:
    ten = {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
           "policyName": "TEN_SECONDLY_ROLLING", "errorType": "RATE_LIMIT"}
    daily = {"status": "error", "message": "You have reached your daily limit.", "policyName": "DAILY",
             "errorType": "RATE_LIMIT"}
    Scripted.script = [(429, ten, {"Retry-After": "1"}), (200, {"portalId": 9}, {})]
    hs = connector(stub)
    assert hs.org_id() == "9" and hs.rate_limited == 1
    Scripted.script, Scripted.seen = [(429, daily, {})], []
    with pytest.raises(LimitExceeded) as caught:
        connector(stub).org_id()
    assert caught.value.code == "DAILY" and len(Scripted.seen) == 1  # not retried


def test_an_untrusted_certificate_is_the_connections_fault(stub: HttpsStub, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    with https_stub(tmp_path / "other", Scripted) as other:
        connection = Connection(name="acme", provider="hubspot", url=stub.url, token=TOKEN, ca_file=other.ca_file)
        with pytest.raises(EndpointError) as caught:
            HubSpotConnector(connection, retry=RetryPolicy.immediate(3)).org_id()
    assert "certificate" in str(caught.value) and TOKEN not in str(caught.value)
    assert Scripted.seen == []


def test_a_create_whose_answer_was_lost_is_looked_up_not_resent(stub: HttpsStub) -> None:
    keyed = {"name": RESTORE_KEY_PROPERTY, "type": "string", "fieldType": "text"}
    found = {"total": 1, "results": [{"id": "7001", "properties": {RESTORE_KEY_PROPERTY: "run1-0",
                                                                    "hs_object_id": "7001"}}]}
    Scripted.script = [
        (200, {"results": [keyed]}, {}), (200, {"results": []}, {}), (200, {"results": []}, {}),  # describe
        (DROP, None, {}),  # batch/create: it landed, the answer never came
        (200, found, {}),  # the look-up by key finds it
    ]
    results = connector(stub).create("contacts", [{"email": "a@example.com"}, {"email": "b@example.com"}],
                                     keys=["run1-0", "run1-1"])
    paths = [path for _m, path, _a in Scripted.seen]
    # One was found by its key; only the other was sent again.
    assert paths[3:] == ["/crm/v3/objects/contacts/batch/create", "/crm/v3/objects/contacts/search",
                         "/crm/v3/objects/contacts/batch/create"]
    assert results[0] == WriteResult(id="7001", ok=True)
    assert not results[1].ok and results[1].error_code == "NO_RESULT"  # the stub's empty answer named nothing


def test_without_a_key_a_create_of_unknown_outcome_is_never_resent(stub: HttpsStub) -> None:
    Scripted.script = [(200, {"results": []}, {})] * 3 + [(DROP, None, {})]
    with pytest.raises(ConnectorError) as caught:
        connector(stub).create("contacts", [{"email": "a@example.com"}], keys=["run1-0"])
    assert caught.value.code == "OUTCOME_UNKNOWN"
    assert [p for _m, p, _a in Scripted.seen].count("/crm/v3/objects/contacts/batch/create") == 1
