"""Connection failures through the CLI: each says what failed in one line, with the exit code an admin
can act on, without retrying what no retry can fix, and without showing the session id.

The sandbox serves over real TLS; a refused port is a socket bound on 127.0.0.1 that does not listen;
an unknown host is a name under `.invalid`, which never resolves.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
from typer.testing import CliRunner

from crmsweep import api
from crmsweep.cleanup.passes import PASSES
from crmsweep.cli import app
from crmsweep.connectors.base import Connection
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.connectors.salesforce import SalesforceConnector
from crmsweep.connectors.salesforce_session import SalesforceSession
from crmsweep.errors import RetriableError
from crmsweep.model import Plan
from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.https_stub import CountHandler, HttpsStub

TOKEN_ENV = "FAILURES_TEST_TOKEN"
runner = CliRunner()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path_factory.mktemp("sf"), records=120, seed=5) as running:
        yield running


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every HTTP exchange the connector starts, by URL: what 'no retries' is counted on."""
    sent: list[str] = []
    original = SalesforceSession.send

    def counting(self: SalesforceSession, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        sent.append(str(request.url))
        return original(self, request, **kwargs)

    monkeypatch.setattr(SalesforceSession, "send", counting)
    return sent


def write_config(folder: Path, url: str, *, ca_file: Path | None = None) -> Path:
    config = folder / "crmsweep.toml"
    ca_line = f'ca_file = "{ca_file}"\n' if ca_file is not None else ""
    config.write_text(
        "[connections.prod]\n"
        'provider = "salesforce"\n'
        f'url = "{url}"\n'
        f'token_env = "{TOKEN_ENV}"\n'
        f"{ca_line}\n"
        # Patient retries, as an admin's config might have: a retried failure would show as attempts.
        "[retry]\nattempts = 4\ninitial_wait = 0.01\nmax_wait = 0.02\n",
        encoding="utf-8",
    )
    return config


def run(tmp_path: Path, config: Path, *args: str, token: str = "00Dxx0000001gPL!AQ4AQTestSession") -> Any:
    result = runner.invoke(app, [*args, "--config", str(config), "--home", str(tmp_path / "home")],
                           env={TOKEN_ENV: token}, catch_exceptions=False)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert token not in result.stderr and token not in result.stdout
    return result


def error_line(result: Any) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {result.stderr!r}"
    return str(lines[0])


# --- what the admin must fix in the config: exit 2 at once ---------------------------------------------


def test_a_token_outside_printable_ascii_is_refused_naming_the_variable(tmp_path: Path, sandbox: RunningSandbox,
                                                                        attempts: list[str]) -> None:
    config = write_config(tmp_path, sandbox.info.url, ca_file=sandbox.info.ca_file)
    result = run(tmp_path, config, "backup", "-c", "prod", token="00Dxx!AQ4€token")
    assert result.exit_code == 2
    assert error_line(result) == (
        f"crmsweep: environment variable {TOKEN_ENV} does not hold a session id for connection 'prod': it contains "
        "a space or a character outside printable ASCII (like €); export the session id again"
    )
    assert "AQ4" not in result.stderr
    assert attempts == []


def test_nothing_listening_is_exit_2_naming_host_and_port(tmp_path: Path, attempts: list[str]) -> None:
    # Bound but not listening: connecting is refused, and no other process can take the port meanwhile.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        result = run(tmp_path, write_config(tmp_path, f"https://127.0.0.1:{port}"), "backup", "-c", "prod")
    assert result.exit_code == 2
    assert error_line(result) == (
        f"crmsweep: Salesforce connection 'prod': nothing is listening at 127.0.0.1:{port}: check the url"
    )
    assert len(attempts) == 1


def test_an_unknown_host_is_exit_2_naming_the_host(tmp_path: Path, attempts: list[str]) -> None:
    result = run(tmp_path, write_config(tmp_path, "https://acme.crmsweep-test.invalid"), "backup", "-c", "prod")
    assert result.exit_code == 2
    assert error_line(result) == (
        "crmsweep: Salesforce connection 'prod': the host acme.crmsweep-test.invalid is not known "
        "(DNS lookup failed): check the url"
    )
    assert len(attempts) == 1


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not a certificate\n", "holds no PEM certificate: point it at the CA certificate in PEM form "
                                "(text that starts with -----BEGIN CERTIFICATE-----)"),
        ("", "holds no PEM certificate: point it at the CA certificate in PEM form "
             "(text that starts with -----BEGIN CERTIFICATE-----)"),
        (None, "does not exist: fix the path in the config"),
        ("folder", "is not a file: point it at the CA certificate (a .pem file)"),
    ],
    ids=["text", "empty", "missing", "folder"],
)
def test_a_ca_file_without_a_pem_certificate_is_refused_before_any_call(
    tmp_path: Path, sandbox: RunningSandbox, attempts: list[str], content: str | None, problem: str
) -> None:
    ca_file = tmp_path / "ca.pem"
    if content == "folder":
        ca_file.mkdir()
    elif content is not None:
        ca_file.write_text(content, encoding="utf-8")
    result = run(tmp_path, write_config(tmp_path, sandbox.info.url, ca_file=ca_file), "backup", "-c", "prod")
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith(f"crmsweep: ca_file {ca_file} of connection 'prod' ") and line.endswith(problem)
    assert attempts == []


def test_a_certificate_the_ca_file_does_not_trust_is_exit_2(tmp_path: Path, sandbox: RunningSandbox,
                                                            attempts: list[str]) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    result = run(tmp_path, write_config(tmp_path, sandbox.info.url, ca_file=other_ca), "backup", "-c", "prod")
    assert result.exit_code == 2
    port = sandbox.info.url.rsplit(":", 1)[1]
    assert error_line(result) == (
        "crmsweep: Salesforce connection 'prod': TLS verification failed when crmsweep tried to read the org "
        "id: the certificate "
        f"of 127.0.0.1:{port} is not trusted (wrong ca_file, or not the server you think): check the connection's "
        "url and ca_file"
    )
    assert len(attempts) == 1


# --- a server that went away in the middle of a run is retried, as before -------------------------------


def test_a_refused_connection_after_the_server_answered_is_retried(tmp_path: Path) -> None:
    stub = HttpsStub(tmp_path, CountHandler)
    waits: list[float] = []
    connection = Connection(name="prod", provider="salesforce", url=stub.url, token="t", ca_file=stub.ca_file)
    connector = SalesforceConnector(
        connection, retry=RetryPolicy(attempts=3, initial_wait=0.0, max_wait=0.0, jitter=False, sleep=waits.append)
    )
    try:
        assert connector.count("Contact") == 5
        stub.stop()  # the port now refuses: the server went away mid-run
        with pytest.raises(RetriableError, match="lost the connection") as caught:
            connector.count("Contact")
        assert caught.value.exit_code == 1
        assert connector.api_usage().calls == 1 + 3 and len(waits) == 2
    finally:
        connector.close()
        stub.stop()


# --- per-record messages from the CRM are masked like whole-call errors ---------------------------------


def test_a_per_record_error_echoing_the_session_is_masked_everywhere(tmp_path: Path, sandbox: RunningSandbox) -> None:
    token = sandbox.info.token
    config = write_config(tmp_path, sandbox.info.url, ca_file=sandbox.info.ca_file)
    plan_file = tmp_path / "plan.json"
    scanned = run(tmp_path, config, "scan", "-c", "prod", "-o", str(plan_file), "--pass", "stale_contacts",
                  "--json", token=token)
    assert scanned.exit_code == 0, scanned.stderr
    plan, _digest = Plan.from_json(plan_file.read_text(encoding="utf-8"))
    victim = plan.changes[0].record_id
    # As an Apex trigger's addError(UserInfo.getSessionId()) would: the record fails, its message holds the session.
    echo = FaultRule.from_dict({"kind": "lock", "ids": [victim], "message": f"trigger refused, session {token} in use"})
    sandbox.set_faults([echo])
    try:
        applied = run(tmp_path, config, "apply", str(plan_file), "--yes", "--json", token=token)
        again = run(tmp_path, config, "scan", "-c", "prod", "-o", str(tmp_path / "again.json"),
                    "--pass", "stale_contacts", token=token)
        assert again.exit_code == 0, again.stderr
        shown = run(tmp_path, config, "apply", str(tmp_path / "again.json"), "--yes", token=token)
    finally:
        sandbox.set_faults([])
    assert applied.exit_code == 1 and shown.exit_code == 1
    (failed,) = json.loads(applied.stdout)["failed_items"]
    assert failed["id"] == victim and failed["message"] == "trigger refused, session *** in use"
    assert f"{victim}  UNABLE_TO_LOCK_ROW  trigger refused, session *** in use" in shown.stderr
    logs = list((tmp_path / "home").rglob("*.jsonl"))
    assert logs and all(token not in path.read_text(encoding="utf-8") for path in logs)
    assert any("trigger refused, session *** in use" in path.read_text(encoding="utf-8") for path in logs)


# --- the user crmsweep runs as is never deactivated, even when the CRM will not say who that is ----------

USERINFO = FaultRule(kind="status", status=503, path="^/services/oauth2/userinfo$")


def test_userinfo_answering_503_once_is_retried_and_the_running_user_held_back(
    tmp_path: Path, sandbox: RunningSandbox, attempts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, sandbox.info.token)
    ws = api.Workspace.load(write_config(tmp_path, sandbox.info.url, ca_file=sandbox.info.ca_file), tmp_path / "home")
    with api.connect(ws, "prod") as connector:
        me = connector.current_user_id()
    assert me is not None
    sandbox.set_faults([dataclasses.replace(USERINFO, times=1)])
    try:
        # Years from now every user, the API user included, has stopped logging in.
        outcome = api.scan(ws, "prod", tmp_path / "plan.json", passes=["inactive_users"],
                           now=datetime.now(UTC) + timedelta(days=3650))
    finally:
        sandbox.set_faults([])
    assert sum(1 for url in attempts if url.endswith("/services/oauth2/userinfo")) == 1 + 2  # 503, then answered
    plan = outcome.result.plan
    assert outcome.result.held_back["inactive_users"]["the user crmsweep runs as"] == 1
    assert plan.changes and me not in {c.record_id for c in plan.changes}
    assert all(c.object == "User" for c in plan.changes)


def test_userinfo_that_never_answers_refuses_a_scan_that_would_change_users(
    tmp_path: Path, sandbox: RunningSandbox, attempts: list[str]
) -> None:
    config = write_config(tmp_path, sandbox.info.url, ca_file=sandbox.info.ca_file)
    token = sandbox.info.token
    snapshot = run(tmp_path, config, "backup", "-c", "prod", "--json", token=token)
    assert snapshot.exit_code == 0, snapshot.stderr
    snapshot_id = json.loads(snapshot.stdout)["snapshot"]
    plan_file = tmp_path / "plan.json"
    sandbox.set_faults([USERINFO])
    try:
        attempts.clear()
        refused = run(tmp_path, config, "scan", "-c", "prod", "--snapshot", snapshot_id, "-o", str(plan_file),
                      token=token)
        userinfo_calls = sum(1 for url in attempts if url.endswith("/services/oauth2/userinfo"))
        contacts_only = run(tmp_path, config, "scan", "-c", "prod", "--snapshot", snapshot_id,
                            "-o", str(tmp_path / "contacts.json"), "--pass", "stale_contacts", token=token)
    finally:
        sandbox.set_faults([])
    assert refused.exit_code == 3
    assert userinfo_calls == 4  # every attempt of [retry] attempts = 4
    line = error_line(refused)
    assert line.startswith("crmsweep: cannot tell which user connection 'prod' runs as (the CRM did not say, even "
                           "after retries), and inactive_users proposes changes to ")
    others = " --pass ".join(name for name in PASSES if name != "inactive_users")
    assert line.endswith(f" User records, which could include it: scan again with --snapshot {snapshot_id} once "
                         f"the CRM answers, or leave inactive_users out (--pass {others})")
    assert not plan_file.exists()
    # A pass that cannot touch users has nothing to fear from an unknown running user.
    assert contacts_only.exit_code == 0, contacts_only.stderr
    assert (tmp_path / "contacts.json").exists()
