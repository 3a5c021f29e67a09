"""Every way an admin signs in to Salesforce, end to end against the sandbox's OAuth token endpoint.

Each flow backs up Contact through the CLI and the snapshot is compared with the org read back through
its API; an expired session is replaced once (also when several threads meet it at once); a second
refusal, a bad setting or a refused credential is one line; and no secret of any flow appears in
anything a run printed or wrote.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from simple_salesforce.api import Salesforce
from typer.testing import CliRunner, Result

from crmsweep import api
from crmsweep.backup.snapshot_reader import open_snapshot
from crmsweep.cli import app
from crmsweep.connectors.base import Connection, SignIn
from crmsweep.connectors.salesforce_auth import JWT_GRANT, jwt_assertion, jwt_audience, sign_in
from crmsweep.errors import AuthError, BadInput
from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.salesforce_oauth import write_settings
from crmsweep.sandbox.server import RunningSandbox, start_sandbox

CLIENT_ID = "3MVG9testConsumerKey.forCrmsweep_0123456789"
CLIENT_SECRET = "C0FFEE1234567890ABCDEF1234567890ABCDEF1234567890ABCDEF12345678AB"
USERNAME = "integration@acme.example.com"
PASSWORD = "Pa55-word!with spaces"
SECURITY_TOKEN = "SecTok9zQ8yX7wV6uT5sR4"
ENV = {"SF_CLIENT_ID": CLIENT_ID, "SF_CLIENT_SECRET": CLIENT_SECRET, "SF_PASSWORD": PASSWORD,
       "SF_SECURITY_TOKEN": SECURITY_TOKEN}


def _certificate(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crmsweep test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture()
def org(tmp_path: Path, key: rsa.RSAPrivateKey) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path / "state", records=120, seed=5) as running:
        write_settings(running.info.state_dir, {
            "apps": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "certificate": _certificate(key),
                      "run_as": USERNAME}],
            "users": [{"username": USERNAME, "password": PASSWORD, "security_token": SECURITY_TOKEN}],
        })
        yield running


class Run:
    """A home and config for one connection named `prod`, and the CLI run against them."""

    def __init__(self, tmp_path: Path, org: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp_path
        self.org = org
        self.home = tmp_path / "home"
        self.config = tmp_path / "crmsweep.toml"
        self.key_file = tmp_path / "keys" / "server.key"
        self.outputs: list[str] = []
        for name, value in ENV.items():
            monkeypatch.setenv(name, value)

    def write(self, body: str) -> None:
        self.config.write_text(f'[connections.prod]\nprovider = "salesforce"\nca_file = "{self.org.info.ca_file}"\n'
                               f"{body}\n[retry]\nattempts = 2\ninitial_wait = 0.01\nmax_wait = 0.02\n",
                               encoding="utf-8")

    def cli(self, *args: str, expect: int = 0) -> Result:
        result = CliRunner().invoke(app, [*args, "--home", str(self.home), "--config", str(self.config)],
                                    catch_exceptions=False)
        self.outputs += [result.stdout, result.stderr]
        assert result.exit_code == expect, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        return result

    def error(self, *args: str, expect: int = 2) -> str:
        lines = [line for line in self.cli(*args, expect=expect).stderr.splitlines() if line.strip()]
        assert len(lines) == 1, lines
        return lines[0]

    def backup(self) -> set[str]:
        """Back up Contact; the ids in the snapshot."""
        summary = json.loads(self.cli("backup", "-c", "prod", "--object", "Contact", "--json").stdout)
        reader = open_snapshot(api.Workspace.load(self.config, self.home).home, summary["snapshot"])
        return {str(r["Id"]) for r in reader.records("Contact")}

    def contact_ids(self) -> set[str]:
        """The org's Contacts, read back through the API with the state folder's own token."""
        session = requests.Session()
        session.verify = str(self.org.info.ca_file)
        session.trust_env = False
        sf = Salesforce(instance_url=self.org.info.url, session_id=self.org.info.token, session=session)
        return {r["Id"] for r in sf.query_all("SELECT Id FROM Contact")["records"]}

    def secrets(self) -> list[str]:
        pem_lines = [line for line in _pem_text(self.key_file).splitlines() if len(line) > 40]
        return [CLIENT_SECRET, PASSWORD, SECURITY_TOKEN, PASSWORD + SECURITY_TOKEN, *pem_lines,
                *self.org.sessions.issued()]

    def assert_no_secret_anywhere(self) -> None:
        """No secret in what the CLI printed, nor in any file under the home (snapshots, runs, logs)."""
        texts = list(self.outputs)
        files = [p for p in self.home.rglob("*") if p.is_file()] if self.home.exists() else []
        assert files or not self.home.exists()
        texts += [p.read_bytes().decode("utf-8", "replace") for p in files]
        for secret in self.secrets():
            for text in texts:
                assert secret not in text


def _pem_text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@pytest.fixture()
def run(tmp_path: Path, org: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> Run:
    return Run(tmp_path, org, monkeypatch)


def _key_file(run: Run, key: rsa.RSAPrivateKey, mode: int = 0o600) -> Path:
    run.key_file.parent.mkdir(exist_ok=True)
    run.key_file.write_bytes(_pem(key))
    run.key_file.chmod(mode)
    return run.key_file


def _jwt(run: Run, key: rsa.RSAPrivateKey) -> None:
    path = _key_file(run, key)
    run.write(f'auth = "jwt"\nusername = "{USERNAME}"\nclient_id = "{CLIENT_ID}"\nprivate_key_file = "{path}"\n'
              f'login_url = "{run.org.info.url}"\n')


def _client_credentials(run: Run, key: rsa.RSAPrivateKey) -> None:
    run.write(f'auth = "client_credentials"\nurl = "{run.org.info.url}"\n'
              'client_id_env = "SF_CLIENT_ID"\nclient_secret_env = "SF_CLIENT_SECRET"\n')


def _password(run: Run, key: rsa.RSAPrivateKey) -> None:
    run.write(f'auth = "password"\nusername = "{USERNAME}"\nlogin_url = "{run.org.info.url}"\n'
              'password_env = "SF_PASSWORD"\nsecurity_token_env = "SF_SECURITY_TOKEN"\n'
              'client_id_env = "SF_CLIENT_ID"\nclient_secret_env = "SF_CLIENT_SECRET"\n')


def _fake_sf(run: Run, monkeypatch: pytest.MonkeyPatch, *, logged_in: bool = True, instance: str | None = None) -> Path:
    """A stand-in for the admin's Salesforce CLI: `sf org display --json` as the real one answers it,
    with a session the sandbox issued; it records its arguments."""
    bin_dir = run.tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    argv_file = run.tmp / "sf-argv.json"
    if logged_in:
        token = run.org.sessions.issue("00D000000000001")
        answer = {"status": 0, "result": {"id": "00D000000000001AAA", "accessToken": token,
                                          "instanceUrl": instance or run.org.info.url, "username": USERNAME,
                                          "alias": "acme-prod", "connectedStatus": "Connected"}, "warnings": []}
    else:
        answer = {"status": 1, "name": "NamedOrgNotFoundError", "exitCode": 1,
                  "message": "No authorization information found for acme-prod."}
    script = bin_dir / "sf"
    script.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(argv_file)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"print({json.dumps(json.dumps(answer))})\n"
        f"sys.exit({answer['status']})\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    run.write('auth = "sf-cli"\norg = "acme-prod"\n')
    return argv_file


# --- each flow, end to end -----------------------------------------------------------------------------


@pytest.mark.parametrize("flow", [_jwt, _client_credentials, _password], ids=["jwt", "client_credentials", "password"])
def test_each_oauth_flow_backs_up_every_contact_and_leaks_nothing(
    run: Run, key: rsa.RSAPrivateKey, flow: Any
) -> None:
    flow(run, key)
    assert run.backup() == run.contact_ids()
    assert len(run.org.sessions.issued()) == 1  # signed in once for the whole backup
    run.assert_no_secret_anywhere()


def test_sf_cli_flow_uses_the_clis_session_for_the_alias(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    argv_file = _fake_sf(run, monkeypatch)
    assert run.backup() == run.contact_ids()
    assert json.loads(argv_file.read_text()) == ["org", "display", "--target-org", "acme-prod", "--json"]
    run.assert_no_secret_anywhere()


def test_sf_cli_not_logged_in_is_one_line_without_the_clis_output(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_sf(run, monkeypatch, logged_in=False)
    line = run.error("backup", "-c", "prod", "--object", "Contact")
    assert "NamedOrgNotFoundError" in line and "sf org login web --alias acme-prod" in line
    assert "No authorization information" not in line


def test_an_instance_that_is_not_https_is_refused(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_sf(run, monkeypatch, instance=run.org.info.url.replace("https://", "http://"))
    line = run.error("backup", "-c", "prod", "--object", "Contact", expect=1)
    assert "not a plain https:// address: refused" in line
    run.assert_no_secret_anywhere()


def test_sf_cli_missing_from_path_is_bad_input(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(run.tmp / "empty-bin"))
    run.write('auth = "sf-cli"\norg = "acme-prod"\n')
    assert "sf is not on PATH" in run.error("backup", "-c", "prod", "--object", "Contact")


# --- expired sessions ----------------------------------------------------------------------------------


def test_session_expired_mid_backup_signs_in_once_and_carries_on(run: Run, key: rsa.RSAPrivateKey) -> None:
    _jwt(run, key)
    ws = api.Workspace.load(run.config, run.home)
    with api.connect(ws, "prod") as connector:
        connector.org_id()
        # The session answers one more request (the describe), then expires in the middle of the backup.
        run.org.sessions.expire(after=1)
        manifest = api.backup_with(connector, ws, ["Contact"])
    reader = open_snapshot(ws.home, manifest.snapshot_id)
    assert {str(r["Id"]) for r in reader.records("Contact")} == run.contact_ids()
    assert len(run.org.sessions.issued()) == 2


def test_threads_refused_with_one_expired_session_sign_in_once(run: Run, key: rsa.RSAPrivateKey) -> None:
    _password(run, key)
    ws = api.Workspace.load(run.config, run.home)
    expected = len(run.contact_ids())
    with api.connect(ws, "prod") as connector:
        run.org.sessions.expire()
        start = threading.Barrier(8)
        counts: list[int] = []
        errors: list[BaseException] = []

        def count() -> None:
            start.wait()
            try:
                counts.append(connector.count("Contact"))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=count) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == [] and counts == [expected] * 8
    assert len(run.org.sessions.issued()) == 2


def test_a_second_refusal_fails_with_one_auth_line(run: Run, key: rsa.RSAPrivateKey) -> None:
    _client_credentials(run, key)
    run.org.set_faults([FaultRule(kind="expired", path="/query")])
    line = run.error("backup", "-c", "prod", "--object", "Contact")
    assert "signed in again (client_credentials) and Salesforce refused that session too" in line
    assert len(run.org.sessions.issued()) == 2
    run.assert_no_secret_anywhere()


def test_the_token_flow_does_not_sign_in_again(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_TOKEN", run.org.info.token)
    run.write(f'url = "{run.org.info.url}"\ntoken_env = "SF_TOKEN"\n')
    run.org.set_faults([FaultRule(kind="expired", path="/query", times=1)])
    ws = api.Workspace.load(run.config, run.home)
    with api.connect(ws, "prod") as connector, pytest.raises(AuthError, match="environment variable SF_TOKEN"):
        connector.count("Contact")
    assert run.org.sessions.issued() == []


# --- refused credentials and bad settings --------------------------------------------------------------


def test_a_wrong_client_secret_is_one_line_naming_the_variables(
    run: Run, key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    _password(run, key)
    monkeypatch.setenv("SF_CLIENT_SECRET", "DEADBEEF" * 8)
    line = run.error("backup", "-c", "prod", "--object", "Contact")
    assert "invalid_client" in line and "SF_CLIENT_ID" in line and "SF_CLIENT_SECRET" in line
    assert "DEADBEEF" not in line


def test_a_wrong_password_is_invalid_grant(run: Run, key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch) -> None:
    _password(run, key)
    monkeypatch.setenv("SF_PASSWORD", "wrong-password")
    line = run.error("backup", "-c", "prod", "--object", "Contact")
    assert "invalid_grant: authentication failure" in line and "wrong-password" not in line


def test_a_key_the_connected_app_does_not_hold_is_refused(run: Run) -> None:
    _jwt(run, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    assert "invalid_grant: invalid assertion" in run.error("backup", "-c", "prod", "--object", "Contact")


def test_a_key_file_others_can_read_is_refused_with_chmod(run: Run, key: rsa.RSAPrivateKey) -> None:
    _jwt(run, key)
    run.key_file.chmod(0o644)
    line = run.error("backup", "-c", "prod", "--object", "Contact")
    assert f"chmod 600 {run.key_file}" in line
    assert run.org.sessions.issued() == []
    run.assert_no_secret_anywhere()


def test_an_encrypted_key_file_is_refused(run: Run, key: rsa.RSAPrivateKey) -> None:
    _jwt(run, key)
    run.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.BestAvailableEncryption(b"passphrase")))
    assert "is encrypted" in run.error("backup", "-c", "prod", "--object", "Contact")


def test_hubspot_signs_in_only_with_its_token(run: Run) -> None:
    run.config.write_text('[connections.prod]\nprovider = "hubspot"\nauth = "jwt"\n', encoding="utf-8")
    assert "auth: must be one of token for HubSpot" in run.error("backup", "-c", "prod")


def test_a_missing_environment_variable_is_named(
    run: Run, key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    _client_credentials(run, key)
    monkeypatch.delenv("SF_CLIENT_SECRET")
    assert "environment variable SF_CLIENT_SECRET is not set" in run.error("backup", "-c", "prod")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('auth = "kerberos"\nurl = "https://acme.my.salesforce.com"\n', 'auth: must be one of token, jwt'),
        ('auth = "jwt"\nusername = "a@b.co"\nclient_id = "3MVG9abcdefgh"\nprivate_key_file = "k"\ntoken_env = "T"\n',
         'token_env: is not used with auth = "jwt"'),
        ('auth = "jwt"\nusername = "a@b.co"\nprivate_key_file = "k"\n', 'client_id: is required with auth = "jwt"'),
        ('auth = "password"\nurl = "https://acme.my.salesforce.com"\nusername = "a@b.co"\npassword_env = "P"\n'
         'client_id_env = "C"\nclient_secret_env = "S"\n', 'url: is not used with auth = "password"'),
        ('auth = "client_credentials"\nclient_id_env = "C"\nclient_secret_env = "S"\n', "url: is required"),
        ('auth = "sf-cli"\norg = "--target-dev-hub"\n', "org: does not look like"),
        ('auth = "sf-cli"\norg = "x"\nlogin_url = "https://test.salesforce.com"\n',
         'login_url: is not used with auth = "sf-cli"'),
        ('auth = "client_credentials"\nurl = "https://acme.my.salesforce.com"\nclient_id_env = "C"\n'
         'client_secret_env = "S"\nclient_secret = "x"\n', "unknown key 'client_secret'"),
    ],
)
def test_wrong_settings_are_one_line_exit_2(run: Run, body: str, expected: str) -> None:
    run.write(body)
    assert expected in run.error("backup", "-c", "prod")


@pytest.mark.parametrize(
    ("key_name", "pasted"),
    [
        ("client_id", CLIENT_SECRET),
        ("username", PASSWORD),
        ("private_key_file", "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n"),
        ("client_secret_env", CLIENT_SECRET),
        ("password_env", PASSWORD),
    ],
)
def test_a_secret_pasted_into_the_config_is_refused_unshown(run: Run, key_name: str, pasted: str) -> None:
    settings = {"username": USERNAME, "client_id": CLIENT_ID, "private_key_file": "k.pem",
                "client_secret_env": "S", "password_env": "P"}
    kind = "jwt" if key_name in ("client_id", "private_key_file") else "password"
    keys = {"jwt": ("username", "client_id", "private_key_file"),
            "password": ("username", "password_env", "client_secret_env")}[kind]
    lines = [f'auth = "{kind}"'] + [f'{k} = "{pasted if k == key_name else settings[k]}"' for k in keys]
    if kind == "password":
        lines.append('client_id_env = "C"')
    run.write("\n".join(lines) + "\n")
    line = run.error("backup", "-c", "prod")
    assert f"{key_name}:" in line
    shown = pasted.replace("\\n", "\n")
    assert shown[:12] not in line and "MIIE" not in line


# --- the sandbox's endpoint, as Salesforce documents it --------------------------------------------------


def _post_token(org: RunningSandbox, form: dict[str, str]) -> requests.Response:
    session = requests.Session()
    session.verify = str(org.info.ca_file)
    session.trust_env = False
    return session.post(f"{org.info.url}/services/oauth2/token", data=form)


def test_token_endpoint_errors_are_the_documented_400_bodies(org: RunningSandbox, key: rsa.RSAPrivateKey) -> None:
    cases = [
        ({"grant_type": "password", "client_id": "nope", "client_secret": "x", "username": USERNAME,
          "password": "x"}, "invalid_client_id"),
        ({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "x"}, "invalid_client"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({"grant_type": JWT_GRANT, "assertion": jwt_assertion(CLIENT_ID, USERNAME, "https://evil.example", key)},
         "invalid_grant"),
        ({"grant_type": JWT_GRANT, "assertion": jwt_assertion(CLIENT_ID, USERNAME, org.info.url, key, now=0)},
         "invalid_grant"),
        ({"grant_type": JWT_GRANT, "assertion": jwt_assertion(CLIENT_ID, "nobody@acme.example.com", org.info.url, key)},
         "invalid_grant"),
    ]
    for form, error in cases:
        answer = _post_token(org, form)
        assert answer.status_code == 400, form
        body = answer.json()
        assert body["error"] == error and isinstance(body["error_description"], str), form
    assert org.sessions.issued() == []
    granted = _post_token(org, {"grant_type": JWT_GRANT,
                                "assertion": jwt_assertion(CLIENT_ID, USERNAME, "https://login.salesforce.com", key)})
    body = granted.json()
    assert granted.status_code == 200 and body["token_type"] == "Bearer" and body["instance_url"] == org.info.url
    assert org.stats()["api_calls"] == 0  # token requests are not API calls


def test_simple_salesforces_own_password_login_works_against_the_sandbox(org: RunningSandbox) -> None:
    """Another client than ours: simple-salesforce's OAuth password login, its login url pointed here."""
    target = org.info.url

    class Here(requests.Session):
        def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
            text = url.decode() if isinstance(url, bytes) else url
            return super().request(method, text.replace("https://login.salesforce.com", target), *args, **kwargs)

    session = Here()
    session.verify = str(org.info.ca_file)
    session.trust_env = False
    sf = Salesforce(username=USERNAME, password=PASSWORD + SECURITY_TOKEN, consumer_key=CLIENT_ID,
                    consumer_secret=CLIENT_SECRET, session=session)
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] > 0


def test_settings_and_expiry_through_the_admin_endpoints(org: RunningSandbox, key: rsa.RSAPrivateKey) -> None:
    session = requests.Session()
    session.verify = str(org.info.ca_file)
    session.trust_env = False
    admin = {"Authorization": f"Bearer {org.info.token}"}
    settings = {"apps": [{"client_id": "3MVG9other", "client_secret": "s3cret", "run_as": USERNAME}], "users": []}
    url = f"{org.info.url}/services/oauth2/__sandbox/settings"
    assert session.put(url, json=settings).status_code == 401  # the state token only
    assert session.put(url, json=settings, headers=admin).status_code == 200
    granted = _post_token(org, {"grant_type": "client_credentials", "client_id": "3MVG9other",
                                "client_secret": "s3cret"}).json()
    issued = {"Authorization": f"Bearer {granted['access_token']}"}
    limits = f"{org.info.url}/services/data/v59.0/limits"
    assert session.get(limits, headers=issued).status_code == 200
    # An issued session opens the API, never the admin endpoints.
    assert session.post(f"{org.info.url}/__sandbox/expire-sessions", headers=issued).status_code == 401
    assert session.post(f"{org.info.url}/__sandbox/expire-sessions", json={"after": 1}, headers=admin).ok
    assert session.get(limits, headers=issued).status_code == 200
    refused = session.get(limits, headers=issued)
    assert refused.status_code == 401 and refused.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert session.get(limits, headers=admin).status_code == 200  # the state token never expires


def test_scan_apply_rollback_by_password_flow_survive_an_expired_session_and_leak_nothing(
    run: Run, key: rsa.RSAPrivateKey
) -> None:
    _password(run, key)
    before = run.contact_ids()
    run.backup()
    plan = run.home / "plan.json"
    run.cli("scan", "-c", "prod", "-o", str(plan), "--json", "--pass", "stale_contacts")
    applied = json.loads(run.cli("apply", str(plan), "--yes", "--json").stdout)
    assert applied["applied"] > 0 and run.contact_ids() < before
    signed_in = len(run.org.sessions.issued())
    # The rollback's own session answers three requests, then expires in the middle of the rollback.
    run.org.sessions.expire(after=3)
    run.cli("rollback", applied["run"], "--yes", "--json")
    assert run.contact_ids() == before
    assert len(run.org.sessions.issued()) == signed_in + 2
    run.assert_no_secret_anywhere()


@pytest.mark.parametrize(
    ("login_url", "audience"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com/", "https://test.salesforce.com"),
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
        ("https://acme.my.site.com/customers", "https://acme.my.site.com/customers"),
    ],
)
def test_the_jwt_audience_is_one_salesforce_documents(login_url: str, audience: str) -> None:
    assert jwt_audience(login_url) == audience


def test_an_sf_cli_that_hangs_is_given_up_on_in_one_line(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = run.tmp / "bin"
    bin_dir.mkdir()
    script = bin_dir / "sf"
    script.write_text("#!/usr/bin/env python3\nimport time\ntime.sleep(30)\n", encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr("crmsweep.connectors.salesforce_auth.SF_CLI_TIMEOUT_SECONDS", 0.5)
    run.write('auth = "sf-cli"\norg = "acme-prod"\n')
    assert "gave no answer within" in run.error("backup", "-c", "prod", "--object", "Contact", expect=1)


@pytest.mark.parametrize("pasted", ["Winter2026pass", "my_client_secret_value_is_this_long_one_and_99",
                                    "abcdEFGHijklMNOPqrstUVWXy"])
def test_a_secret_pasted_as_a_variable_name_is_never_repeated_in_the_error(pasted: str) -> None:
    """Red team: a *_env key holding the secret itself (short, with underscores, letters only) was printed
    back in "environment variable ... is not set"."""
    auth = SignIn(kind="password", login_url="https://login.example.com", username="a@b.example",
                  client_id_env="SF_CLIENT_ID", client_secret_env="SF_CLIENT_SECRET", password_env=pasted)
    connection = Connection(name="prod", provider="salesforce", url="https://login.example.com", token="",
                            auth=auth)
    with pytest.raises(BadInput) as refused:
        sign_in(connection, requests.Session(), environ={"SF_CLIENT_ID": "id", "SF_CLIENT_SECRET": "s"})
    assert pasted not in str(refused.value) and "password_env" in str(refused.value)
    conventional = SignIn(**{**auth.__dict__, "password_env": "ACME_SF_PASSWORD"})
    with pytest.raises(BadInput, match="environment variable ACME_SF_PASSWORD is not set"):
        sign_in(replace(connection, auth=conventional), requests.Session(),
                environ={"SF_CLIENT_ID": "id", "SF_CLIENT_SECRET": "s"})
