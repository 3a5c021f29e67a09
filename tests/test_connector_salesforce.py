"""SalesforceConnector against the sandbox: real simple-salesforce, real TLS, state read back."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from crmsweep.connectors import open_connector
from crmsweep.connectors.base import AssociationsUnsupported, Connection, Connector
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.connectors.salesforce import SalesforceConnector
from crmsweep.errors import AuthError, BadInput, ConnectorError, LimitExceeded
from crmsweep.model import ApiUsage, FieldKind, canonical_datetime
from crmsweep.sandbox import ids as sandbox_ids
from crmsweep.sandbox import schema
from crmsweep.sandbox.faults import FaultRule
from tests.https_stub import HttpsStub, https_stub

CONTACTS = 450  # with 200-row pages: three pages


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = pytest.importorskip("crmsweep.sandbox.server")
    running = server.start_sandbox(tmp_path_factory.mktemp("sf"), records=CONTACTS, seed=7)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def connection(sandbox: Any) -> Connection:
    info = sandbox.info
    return Connection(name="sandbox-salesforce", provider="salesforce", url=info.url, token=info.token,
                      ca_file=Path(info.ca_file))


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def sf(connection: Connection, sandbox: Any, waits: list[float]) -> Iterator[SalesforceConnector]:
    policy = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05, jitter=False, sleep=waits.append)
    connector = SalesforceConnector(connection, retry=policy, query_batch_size=200)
    yield connector
    connector.close()
    sandbox.set_faults([])


def new_contacts(sf: SalesforceConnector, *names: str) -> list[str]:
    results = sf.create("Contact", [{"LastName": n, "Email": f"{n.lower()}@example.org"} for n in names])
    assert all(r.ok for r in results), results
    return [str(r.id) for r in results]


def test_open_connector_gives_a_connector(connection: Connection) -> None:
    connector = open_connector(connection, retry=RetryPolicy.immediate())
    assert isinstance(connector, Connector)
    assert connector.provider == "salesforce" and connector.connection_name == "sandbox-salesforce"
    connector.close()


def test_org_id_and_version(sf: SalesforceConnector, sandbox: Any) -> None:
    assert sf.org_id() == sandbox.info.org_id
    assert sf.org_id().startswith("00D")
    assert sf.api_version() == "59.0"
    calls = sf.api_usage().calls
    sf.org_id()
    assert sf.api_usage().calls == calls  # cached


def test_current_user_is_the_one_the_token_belongs_to(sf: SalesforceConnector) -> None:
    user_id = sf.current_user_id()
    assert user_id is not None
    user = sf.read("User", [user_id], ["Id", "Username", "IsActive"])[user_id]
    assert user["IsActive"] is True and user["Username"].startswith("integration@")


def test_fields_follow_describe(sf: SalesforceConnector) -> None:
    fields = sf.fields("Contact")
    # The standard fields, then the org's custom ones (the seed defines some: salesforce_seed_fields.py).
    assert [f.name for f in fields if not f.custom] == [f.name for f in schema.CONTACT.fields]
    assert [f.name for f in fields if f.custom] == ["Favourite_Colour__c", "Legacy_Id__c", "acme_pkg__Score__c",
                                                    "Campaign_Tag__c", "Partner_Code__c", "Tier__c"]
    by_name = {f.name: f for f in fields}
    assert by_name["IsDeleted"].kind is FieldKind.BOOL
    assert by_name["CreatedDate"].kind is FieldKind.DATETIME
    assert by_name["LastActivityDate"].kind is FieldKind.DATE
    assert by_name["Email"].kind is FieldKind.STRING and by_name["Email"].provider_type == "email"
    assert by_name["AccountId"].reference_to == ("Account",)
    assert by_name["LastName"].createable and not by_name["Name"].updateable
    account = {f.name: f for f in sf.fields("Account")}
    assert account["NumberOfEmployees"].kind is FieldKind.INT
    assert account["AnnualRevenue"].kind is FieldKind.DECIMAL  # up to 18 digits: kept as exact text
    assert sf.describe("Contact")["name"] == "Contact"


def test_pages_add_up_to_the_count(sf: SalesforceConnector) -> None:
    pages = list(sf.iter_pages("Contact", ["Id", "Email", "Owner.Name"]))
    assert len(pages) >= 3
    rows = [r for page in pages for r in page]
    assert len(rows) == sf.count("Contact") == len({r["Id"] for r in rows})
    assert all("attributes" not in r and "attributes" not in (r.get("Owner") or {}) for r in rows)
    with_email = sum(1 for r in rows if r["Email"] is not None)
    assert sf.count("Contact", has_value=["Email"]) == with_email


def test_typed_filters_select_the_same_records_as_reading_everything(sf: SalesforceConnector) -> None:
    """since=, ids=, equals= and has_value= become SOQL on the sandbox: each selects exactly the rows a
    client-side pass over every record picks, and they combine with AND."""
    columns = ["Id", "SystemModstamp", "Email", "LastName", "IsDeleted"]
    rows = [r for page in sf.iter_pages("Contact", columns) for r in page]
    stamps = sorted(canonical_datetime(r["SystemModstamp"]) or "" for r in rows)
    since = stamps[len(stamps) // 2]
    later = {r["Id"] for r in rows if (canonical_datetime(r["SystemModstamp"]) or "") >= since}
    assert 0 < len(later) < len(rows)
    picked = {r["Id"] for page in sf.iter_pages("Contact", ["Id"], since=since) for r in page}
    assert picked == later and sf.count("Contact", since=since) == len(later)

    some = sorted(r["Id"] for r in rows)[: sf.capabilities.max_ids_per_read + 5]  # two chunks
    assert {r["Id"] for page in sf.iter_pages("Contact", ["Id"], ids=some) for r in page} == set(some)
    assert sf.count("Contact", ids=some) == len(some)
    assert sf.count("Contact", ids=[]) == 0 and list(sf.iter_pages("Contact", ["Id"], ids=[])) == []

    name = rows[0]["LastName"]
    named = {r["Id"] for r in rows if r["LastName"] == name}
    assert {r["Id"] for page in sf.iter_pages("Contact", ["Id"], equals={"LastName": name}) for r in page} == named
    no_email = {r["Id"] for r in rows if r["Email"] is None}
    assert sf.count("Contact", equals={"Email": None}) == len(no_email)
    assert sf.count("Contact", has_value=["Email"]) == len(rows) - len(no_email)
    both = {r["Id"] for r in rows if r["Id"] in later and r["Email"] is not None}
    assert sf.count("Contact", since=since, has_value=["Email"]) == len(both)
    with pytest.raises(BadInput, match=r"since='yesterday' is not a datetime"):
        sf.count("Contact", since="yesterday")


def test_salesforce_has_no_association_calls(sf: SalesforceConnector) -> None:
    assert sf.capabilities.has_associations is False
    with pytest.raises(AssociationsUnsupported, match=r"^Salesforce has no associations between Contact and "
                                                      r"Opportunity: its records are linked by lookup fields"):
        sf.read_associations("Contact", "Opportunity", ["003000000000001AAA"])
    with pytest.raises(AssociationsUnsupported):
        sf.create_associations("Contact", "Opportunity", [("003000000000001AAA", "006000000000001AAA")])


def test_include_deleted_and_read_in_chunks(sf: SalesforceConnector, monkeypatch: pytest.MonkeyPatch) -> None:
    # Fewer ids per read than the org holds contacts, so the read below takes more than one chunk.
    monkeypatch.setattr(sf, "capabilities", dataclasses.replace(sf.capabilities, max_ids_per_read=300))
    kept, gone = new_contacts(sf, "Kept", "Gone")
    assert sf.delete("Contact", [gone])[0].ok
    live = {r["Id"] for page in sf.iter_pages("Contact", ["Id"]) for r in page}
    everything = {r["Id"]: r for page in sf.iter_pages("Contact", ["Id", "IsDeleted"], include_deleted=True)
                  for r in page}
    assert kept in live and gone not in live
    assert everything[gone]["IsDeleted"] is True and everything[kept]["IsDeleted"] is False

    ids = sorted(live)
    assert len(ids) > sf.capabilities.max_ids_per_read  # more than one chunk
    before = sf.api_usage().calls
    records = sf.read("Contact", [*ids, gone, "003000000000000AAA"], ["Id", "LastName", "IsDeleted"])
    assert set(records) == {*ids, gone}
    assert records[gone]["IsDeleted"] is True
    assert 2 <= sf.api_usage().calls - before <= 4
    assert gone not in sf.read("Contact", [gone], ["Id"], include_deleted=False)


def test_read_chunks_by_uri_length(connection: Connection) -> None:
    narrow = SalesforceConnector(connection, retry=RetryPolicy.immediate(), max_uri_bytes=1000)
    ids = sorted(r["Id"] for page in narrow.iter_pages("Contact", ["Id"]) for r in page)[:100]
    before = narrow.api_usage().calls
    assert set(narrow.read("Contact", ids, ["Id"])) == set(ids)
    assert narrow.api_usage().calls - before >= 3
    narrow.close()


def test_write_round_trip(sf: SalesforceConnector) -> None:
    ids = new_contacts(sf, "Ada", "Grace", "Edsger")
    fields = ["Id", "LastName", "Title", "IsDeleted"]
    assert {i: r["LastName"] for i, r in sf.read("Contact", ids, fields).items()} == dict(
        zip(ids, ["Ada", "Grace", "Edsger"], strict=True)
    )

    results = sf.update("Contact", [{"Id": i, "Title": f"T{n}"} for n, i in enumerate(ids)])
    assert [(r.id, r.ok) for r in results] == [(i, True) for i in ids]
    assert [sf.read("Contact", ids, fields)[i]["Title"] for i in ids] == ["T0", "T1", "T2"]

    deleted = sf.delete("Contact", ids)
    assert [(r.id, r.ok) for r in deleted] == [(i, True) for i in ids]
    assert all(r["IsDeleted"] for r in sf.read("Contact", ids, fields).values())
    again = sf.delete("Contact", ids[:1])
    assert not again[0].ok and again[0].error_code

    restored = sf.undelete("Contact", ids)
    assert [(r.id, r.ok) for r in restored] == [(i, True) for i in ids]
    back = sf.read("Contact", ids, fields, include_deleted=False)
    assert {i: (r["Title"], r["IsDeleted"]) for i, r in back.items()} == {
        ids[0]: ("T0", False), ids[1]: ("T1", False), ids[2]: ("T2", False)
    }


def test_per_record_error_is_reported_in_order(sf: SalesforceConnector) -> None:
    results = sf.create("Contact", [{"LastName": "Fine"}, {"Email": "no-last-name@example.org"}])
    assert results[0].ok and results[0].id
    assert not results[1].ok and results[1].id is None and results[1].error_code


def test_locked_rows_are_retried_until_they_succeed(sf: SalesforceConnector, sandbox: Any, waits: list[float]) -> None:
    free, locked = new_contacts(sf, "Free", "Locked")
    sandbox.set_faults([FaultRule(kind="lock", ids=(locked,), times=2)])
    results = sf.update("Contact", [{"Id": free, "Title": "a"}, {"Id": locked, "Title": "b"}])
    assert [(r.id, r.ok) for r in results] == [(free, True), (locked, True)]
    assert len(waits) == 2
    assert {i: r["Title"] for i, r in sf.read("Contact", [free, locked], ["Id", "Title"]).items()} == {
        free: "a", locked: "b"
    }


def test_lock_that_never_clears_is_reported(sf: SalesforceConnector, sandbox: Any) -> None:
    (locked,) = new_contacts(sf, "Stuck")
    sandbox.set_faults([FaultRule(kind="lock", ids=(locked,))])
    (result,) = sf.delete("Contact", [locked])
    assert (result.id, result.ok, result.error_code) == (locked, False, "UNABLE_TO_LOCK_ROW")
    sandbox.set_faults([])
    assert sf.read("Contact", [locked], ["Id", "IsDeleted"])[locked]["IsDeleted"] is False


@pytest.mark.parametrize("op", ["delete", "undelete"])
def test_delete_or_undelete_that_lands_after_the_client_gave_up_is_not_resent(
    connection: Connection, sandbox: Any, op: str
) -> None:
    # The sandbox sleeps, then carries the call out; the client stops waiting before that.
    impatient = SalesforceConnector(connection, retry=RetryPolicy.immediate(), timeout=(5.0, 0.3))
    ids = new_contacts(impatient, "Late1", "Late2")
    if op == "undelete":
        assert all(r.ok for r in impatient.delete("Contact", ids))
    endpoint = "POST" if op == "undelete" else "DELETE"
    endpoint_name = "DELETE composite/sobjects" if op == "delete" else "POST soap/undelete"
    sent_before = sandbox.stats()["by_endpoint"].get(endpoint_name, 0)
    sandbox.set_faults([FaultRule(kind="timeout", method=endpoint, delay=0.8, times=1)])
    try:
        with pytest.raises(ConnectorError) as caught:
            getattr(impatient, op)("Contact", ids)
        assert caught.value.code == "OUTCOME_UNKNOWN"
        time.sleep(1.0)  # the sandbox finishes the call it was given
        sandbox.set_faults([])
        wanted = op == "delete"
        assert {i: r["IsDeleted"] for i, r in impatient.read("Contact", ids, ["Id", "IsDeleted"]).items()} == {
            i: wanted for i in ids
        }
        # Sent once: a resend would have answered ENTITY_IS_DELETED / UNDELETE_FAILED for written records.
        assert sandbox.stats()["by_endpoint"].get(endpoint_name, 0) == sent_before + 1
    finally:
        sandbox.set_faults([])
        impatient.close()


def test_bad_object_name_is_bad_input_before_any_call(sf: SalesforceConnector, sandbox: Any) -> None:
    calls = sf.api_usage().calls
    for name in ("Bad Name", "Contact;Lead"):
        with pytest.raises(BadInput, match=f"'{name}' is not a Salesforce object name"):
            sf.describe(name)
    with pytest.raises(BadInput, match="'003bad' is not a Salesforce record id"):
        sf.read("Contact", ["003bad"], ["Id"])
    assert sf.api_usage().calls == calls


def test_sandbox_matches_ids_and_emails_whole(sf: SalesforceConnector) -> None:
    (contact,) = new_contacts(sf, "Newline")
    (result,) = sf.update("Contact", [{"Id": contact, "Email": "newline@example.org\n"}])
    assert (result.ok, result.error_code) == (False, "INVALID_EMAIL_ADDRESS")
    assert sandbox_ids.normalize(contact) == contact and sandbox_ids.normalize(contact + "\n") is None


def test_503_twice_then_success(sf: SalesforceConnector, sandbox: Any, waits: list[float]) -> None:
    expected = sf.count("Lead")
    sandbox.set_faults([FaultRule(kind="status", status=503, times=2)])
    assert sf.count("Lead") == expected
    assert waits == [0.01, 0.02]


def test_request_limit_exceeded(sf: SalesforceConnector, sandbox: Any, waits: list[float]) -> None:
    sandbox.set_faults([FaultRule(kind="limit", times=1)])
    with pytest.raises(LimitExceeded, match="API request limit"):
        sf.count("Account")
    assert waits == []


def test_dropped_create_is_not_resent(sf: SalesforceConnector, sandbox: Any) -> None:
    before = sf.count("Contact", equals={"LastName": "Dropped"})
    injected = sandbox.stats()["faults_injected"]
    sandbox.set_faults([FaultRule(kind="drop", method="POST", path="composite/sobjects", times=1)])
    with pytest.raises(ConnectorError) as caught:
        sf.create("Contact", [{"LastName": "Dropped"}])
    assert caught.value.code == "OUTCOME_UNKNOWN"
    sandbox.set_faults([])
    # The sandbox drops before writing, and nothing was resent: no record, one injected fault.
    assert sf.count("Contact", equals={"LastName": "Dropped"}) == before
    assert sandbox.stats()["faults_injected"] == injected + 1


def test_bad_token_is_an_auth_error(connection: Connection) -> None:
    bad = Connection(name="prod", provider="salesforce", url=connection.url, token="00Dbogus!nope",
                     ca_file=connection.ca_file, token_env="ACME_SF_TOKEN")
    connector = SalesforceConnector(bad, retry=RetryPolicy.immediate())
    with pytest.raises(AuthError) as caught:
        connector.org_id()
    assert "ACME_SF_TOKEN" in str(caught.value) and "00Dbogus" not in str(caught.value)
    with pytest.raises(AuthError):
        connector.undelete("Contact", ["003000000000000AAA"])
    connector.close()


def test_connection_ca_wins_over_requests_ca_bundle(connection: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    connector = SalesforceConnector(connection, retry=RetryPolicy.immediate())
    assert connector.count("Account") > 0
    connector.close()


def test_without_ca_file_requests_defaults_apply(connection: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    assert connection.ca_file is not None
    plain = Connection(name="plain", provider="salesforce", url=connection.url, token=connection.token)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    connector = SalesforceConnector(plain, retry=RetryPolicy.immediate())
    with pytest.raises(ConnectorError, match="TLS verification failed"):
        connector.count("Account")
    connector.close()
    # The environment's bundle is honoured when no ca_file is configured.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(connection.ca_file))
    connector = SalesforceConnector(plain, retry=RetryPolicy.immediate())
    assert connector.count("Account") > 0
    connector.close()


def test_api_usage_reports_the_org_counter(sf: SalesforceConnector) -> None:
    sf.count("Account")
    usage = sf.api_usage()
    assert usage.calls >= 1
    assert usage.org_used is not None and usage.org_max is not None and usage.org_used <= usage.org_max


# --- TLS against a minimal local HTTPS server (no sandbox needed) ----------------------------------------


@pytest.fixture(scope="module")
def tls_stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    with https_stub(tmp_path_factory.mktemp("tls")) as stub:
        yield stub.url, stub.ca_file


def test_stub_ca_file_wins_over_requests_ca_bundle(
    tls_stub: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca_file = tls_stub
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    pinned = SalesforceConnector(Connection(name="t", provider="salesforce", url=url, token="t", ca_file=ca_file),
                                 retry=RetryPolicy.immediate())
    assert pinned.count("Contact") == 5
    assert pinned.api_usage() == ApiUsage(calls=1, org_used=3, org_max=15000)
    pinned.close()


def test_stub_without_ca_file_uses_requests_defaults(
    tls_stub: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca_file = tls_stub
    plain = Connection(name="t", provider="salesforce", url=url, token="t")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    refused = SalesforceConnector(plain, retry=RetryPolicy.immediate())
    with pytest.raises(ConnectorError, match="TLS verification failed"):
        refused.count("Contact")
    refused.close()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    trusting = SalesforceConnector(plain, retry=RetryPolicy.immediate())
    assert trusting.count("Contact") == 5
    trusting.close()


# --- redirects are never followed: a real listener that redirects, and a real one that must hear nothing ----


class _Listener:
    """A plain-TCP HTTP listener on 127.0.0.1 that keeps every byte it receives and answers 200 `{}`."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.connections = 0
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                data = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                        data += chunk
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    while len(body) < length and (chunk := conn.recv(65536)):
                        body += chunk
                    data = head + b"\r\n\r\n" + body
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
                self.received += data

    def close(self) -> None:
        self._socket.close()


def _redirecting_handler(target: str) -> type[BaseHTTPRequestHandler]:
    class Redirect(BaseHTTPRequestHandler):
        def _redirect(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(307)
            self.send_header("Location", f"{target}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PATCH = do_DELETE = _redirect

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Redirect


@pytest.fixture
def redirect_to_http(tmp_path: Path) -> Iterator[tuple[SalesforceConnector, _Listener]]:
    """A connector whose https:// server answers every call with 307 to an http:// listener."""
    plain = _Listener()
    stub = HttpsStub(tmp_path, _redirecting_handler(f"http://127.0.0.1:{plain.port}"))
    connection = Connection(name="prod", provider="salesforce", url=stub.url,
                            token="00Dxx0000001gPL!AQ4AQRedirectedSessionId", ca_file=stub.ca_file,
                            token_env="ACME_SF_TOKEN")
    connector = SalesforceConnector(connection, retry=RetryPolicy.immediate(), timeout=(5.0, 5.0))
    yield connector, plain
    connector.close()
    stub.stop()
    plain.close()


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda c: c.count("Contact"), "/services/data/v59.0/query/"),
        (lambda c: c.delete("Contact", ["003000000000001AAA"]), "/services/data/v59.0/composite/sobjects"),
        (lambda c: c.current_user_id(), None),
        (lambda c: c.undelete("Contact", ["003000000000001AAA"]), "/services/Soap/u/59.0"),
    ],
    ids=["rest-query", "rest-delete", "userinfo", "soap-undelete"],
)
def test_a_redirect_is_an_error_and_the_target_hears_nothing(
    redirect_to_http: tuple[SalesforceConnector, _Listener], call: Any, path: str | None
) -> None:
    connector, plain = redirect_to_http
    try:
        outcome: Any = call(connector)
    except ConnectorError as exc:
        outcome = exc
    # First of all: not one byte, session or envelope, reached the http:// address.
    assert (plain.connections, bytes(plain.received)) == (0, b"")
    # No retry, no second request (userinfo is an OAuth endpoint, not an API call the org meters).
    session = connector._session
    assert (session.calls, session.oauth_calls) == ((0, 1) if path is None else (1, 0))
    if path is None:  # userinfo: the running user is unknown, which the scan handles
        assert outcome is None
        return
    assert isinstance(outcome, ConnectorError)
    message = str(outcome)
    assert outcome.code == "REDIRECT" and outcome.exit_code == 1
    assert f"HTTP 307 from {connector.connection.url}{path} to http://127.0.0.1:{plain.port}{path}" in message
    assert "never follows redirects" in message and "\n" not in message
    assert connector.connection.token not in message and "RedirectedSessionId" not in message
