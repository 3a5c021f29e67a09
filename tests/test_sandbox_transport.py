"""How the sandbox answers on the wire, and paging deep into a frozen query result."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest

from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.test_sandbox_api import Client, connect, ids_of

BATCH = {"Sforce-Query-Options": "batchSize=200"}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path_factory.mktemp("transport"), records=1500) as running:
        yield running


@pytest.fixture(scope="module")
def sf(sandbox: RunningSandbox) -> Client:
    return connect(sandbox.info)


def tls_connection(sandbox: RunningSandbox) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(sandbox.info.ca_file))
    host, port = sandbox.info.url.removeprefix("https://").split(":")
    return context.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host)


def test_accepted_connections_have_tcp_nodelay(sandbox: RunningSandbox, sf: Client) -> None:
    sf.query("SELECT Id FROM Contact LIMIT 1")  # the client's keep-alive connection stays open
    # The server's own sockets: the option is set on the server side, where the answers are written.
    with sandbox._server._open_lock:
        open_sockets = list(sandbox._server._open)
    assert open_sockets
    assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in open_sockets)


def test_an_answer_is_one_write_headers_and_body_together(sandbox: RunningSandbox) -> None:
    # OpenSSL's read returns at most one TLS record, and one write of a small answer is one record:
    # so the first read holds the whole answer only if headers and body were written together.
    with tls_connection(sandbox) as conn:
        conn.sendall(b"GET /services/data/v59.0/limits/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Authorization: Bearer " + sandbox.info.token.encode() + b"\r\n\r\n")
        first = conn.recv(1 << 16)
    head, sep, body = first.partition(b"\r\n\r\n")
    assert sep and head.startswith(b"HTTP/1.1 200 ")
    lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    assert len(lengths) == 1
    length = lengths[0]
    assert len(body) == length > 0 and body.startswith(b"{") and b"DailyApiRequests" in body


def test_error_answers_before_routing_are_one_write_and_close(sandbox: RunningSandbox) -> None:
    with tls_connection(sandbox) as conn:
        conn.sendall(b"GET /services/data/v59.0/query/?q=" + b"x" * 17_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = conn.recv(1 << 16)
        assert conn.recv(1 << 16) == b""  # closed after answering
    head, _, body = first.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414 ") and b"Connection: close" in head and b"URI_TOO_LONG" in body


def test_deep_pages_return_exactly_the_frozen_rows_in_order(sf: Client) -> None:
    soql = "SELECT Id FROM Contact ORDER BY LastName, Id"
    frozen = ids_of(sf, soql)
    assert len(frozen) == 1500
    page = sf.query(soql, headers=BATCH)
    got = [r["Id"] for r in page["records"]]
    # Between pages: delete rows of later pages, add rows that would sort first, rename one.
    for record_id in frozen[700:705]:
        sf.Contact.delete(record_id)
    for n in range(3):
        sf.Contact.create({"LastName": f"Aaa{n}"})
    sf.Contact.update(frozen[1400], {"LastName": "Aardvark"})
    positions = []
    while not page["done"]:
        positions.append(int(page["nextRecordsUrl"].rsplit("-", 1)[1]))
        page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True, headers=BATCH)
        assert page["totalSize"] == 1500
        got += [r["Id"] for r in page["records"]]
    assert got == frozen
    assert positions == list(range(200, 1500, 200))


def test_soql_offset_and_limit_are_honoured_across_pages(sf: Client) -> None:
    everything = ids_of(sf, "SELECT Id FROM Contact ORDER BY Id")
    page = sf.query("SELECT Id FROM Contact ORDER BY Id LIMIT 700 OFFSET 150", headers=BATCH)
    assert page["totalSize"] == 700 and len(page["records"]) == 200
    got = [r["Id"] for r in page["records"]]
    while not page["done"]:
        page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True, headers=BATCH)
        got += [r["Id"] for r in page["records"]]
    assert got == everything[150:850]


def test_a_locator_may_be_resumed_at_any_position_it_named(sf: Client) -> None:
    soql = "SELECT Id FROM Contact ORDER BY Id"
    frozen = ids_of(sf, soql)
    first = sf.query(soql, headers=BATCH)
    cursor = first["nextRecordsUrl"].rsplit("-", 1)[0]
    again = sf.query_more(f"{cursor}-200", identifier_is_url=True, headers=BATCH)
    later = sf.query_more(f"{cursor}-1000", identifier_is_url=True)  # default batch: the rest
    assert [r["Id"] for r in again["records"]] == frozen[200:400]
    assert [r["Id"] for r in later["records"]] == frozen[1000:] and later["done"] is True
