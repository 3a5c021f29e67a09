"""Config loading, its one-line errors, the digest, connection resolution and the home folder."""

from __future__ import annotations

import contextlib
import stat
from datetime import date
from pathlib import Path

import pytest
import requests
import trustme

from crmsweep.config import Config, load_config, resolve_connection
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.errors import BadInput
from crmsweep.paths import Home

FULL = """
[connections.prod]
provider = "salesforce"
url = "https://acme.my.salesforce.com"
token_env = "ACME_SF_TOKEN"
ca_file = "certs/ca.pem"
api_version = "58.0"

[passes.stale_contacts]
years = 3
since = 2020-01-01

[protect]
recent_days = 10
objects = ["Contract", "Invoice"]
ids = ["003000000000001AAA"]

[safety]
max_changes = 100
max_changes_per_object = 50

[retry]
attempts = 3
initial_wait = 0.5
max_wait = 10

[sandbox]
records = 200
seed = 11
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(BadInput) as caught:
        load_config(path, environ={})
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_no_path_and_no_env_gives_defaults() -> None:
    config = load_config(None, environ={})
    assert config == Config()
    assert config.connections == {} and config.passes == {}
    assert (config.safety.max_changes, config.safety.max_changes_per_object) == (5000, 2000)
    assert (config.sandbox.records, config.sandbox.seed) == (1000, 7)
    assert config.retry.policy() == RetryPolicy(attempts=5, initial_wait=1.0, max_wait=60.0)
    assert config.connection_names == ["sandbox-hubspot", "sandbox-salesforce"]  # every provider's sandbox


def test_full_file_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "conf" / "crmsweep.toml", FULL)
    config = load_config(path, environ={})
    profile = config.connections["prod"]
    assert profile.provider == "salesforce" and profile.url == "https://acme.my.salesforce.com"
    assert profile.token_env == "ACME_SF_TOKEN" and profile.api_version == "58.0"
    assert profile.ca_file == tmp_path.resolve() / "conf" / "certs" / "ca.pem"
    assert dict(config.passes["stale_contacts"]) == {"years": 3, "since": date(2020, 1, 1)}
    assert config.protect.recent_days == 10
    assert config.protect.objects == ("Contract", "Invoice")
    assert config.protect.ids == ("003000000000001AAA",)
    assert (config.safety.max_changes, config.safety.max_changes_per_object) == (100, 50)
    assert config.retry.policy() == RetryPolicy(attempts=3, initial_wait=0.5, max_wait=10.0)
    assert (config.sandbox.records, config.sandbox.seed) == (200, 11)
    assert config.path == path


def test_env_var_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[sandbox]\nseed = 3\n")
    assert load_config(None, environ={"CRMSWEEP_CONFIG": str(path)}).sandbox.seed == 3
    # An explicit --config wins over the environment.
    other = write(tmp_path / "d.toml", "[sandbox]\nseed = 4\n")
    assert load_config(other, environ={"CRMSWEEP_CONFIG": str(path)}).sandbox.seed == 4


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert error_of(path) == f"config file {path} does not exist: check --config or CRMSWEEP_CONFIG"


def test_folder_instead_of_file(tmp_path: Path) -> None:
    assert "is a folder" in error_of(tmp_path)


def test_unreadable_file(tmp_path: Path) -> None:
    # A path through a regular file fails to open even for root (unlike a chmod 000 file).
    path = write(tmp_path / "plain", "") / "c.toml"
    assert error_of(path) == f"cannot read config file {path}: Not a directory"


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[retry]\nattempts = 3\nmax_wait 60\n")
    message = error_of(path)
    assert message.startswith(f"{path}: invalid TOML: ")
    assert "line 3" in message


def test_unknown_section_suggests_the_closest(tmp_path: Path) -> None:
    message = error_of(write(tmp_path / "c.toml", "[retyr]\nattempts = 3\n"))
    assert message.startswith(f"{tmp_path / 'c.toml'}: unknown section [retyr] (did you mean 'retry'?)")


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[retry]\natempts = 3\n")
    assert error_of(path) == (
        f"{path}: [retry] unknown key 'atempts' (did you mean 'attempts'?); "
        "known keys: attempts, initial_wait, max_wait, daily_reserve"
    )


def test_unknown_connection_key(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", FULL.replace('token_env = "', 'token_var = "'))
    assert "[connections.prod] unknown key 'token_var' (did you mean 'token_env'?)" in error_of(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[safety]\nmax_changes = "lots"\n', "[safety] max_changes: expected a whole number, got 'lots'"),
        ("[safety]\nmax_changes = true\n", "[safety] max_changes: expected a whole number, got True"),
        ("[retry]\ninitial_wait = \"1s\"\n", "[retry] initial_wait: expected a number, got '1s'"),
        ("[retry]\nattempts = 0\n", "[retry] attempts: must be between 1 and 100, got 0"),
        ("[retry]\ninitial_wait = 5\nmax_wait = 1\n", "[retry] max_wait: must not be below initial_wait (5)"),
        ("[protect]\nobjects = \"Contract\"\n", "[protect] objects: expected a list of strings, got 'Contract'"),
        ("[protect]\nids = [1, 2]\n", "[protect] ids: expected a list of strings, got [1, 2]"),
        ("retry = 3\n", "[retry] must be a table, not int"),
        ("[passes]\nstale_contacts = 3\n", "[passes.stale_contacts] must be a table, not int"),
    ],
)
def test_wrong_types_name_section_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "c.toml", text)
    assert error_of(path) == f"{path}: {expected}"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('provider = "salesforce"\n', ""), "[connections.prod] provider: is required"),
        (('"salesforce"', '"dynamics"'), "[connections.prod] provider: must be one of hubspot, salesforce"),
        (("https://acme", "http://acme"), "[connections.prod] url: must be an https:// address"),
        (('"ACME_SF_TOKEN"', '"00Dxx!secret value"'), "[connections.prod] token_env: does not look like"),
        (('"58.0"', '"latest"'), "[connections.prod] api_version: expected a version like \"59.0\""),
        (("[connections.prod]", "[connections.sandbox-salesforce]"), "is a built-in connection name"),
    ],
)
def test_connection_errors(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    path = write(tmp_path / "c.toml", FULL.replace(*change))
    assert expected in error_of(path)


SECRET = "00D5g000004Xyz!AQ4AQFakeSecretSessionIdAbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
FULL_URL = '"https://acme.my.salesforce.com"'


def test_token_pasted_into_token_env_is_never_echoed(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", FULL.replace("ACME_SF_TOKEN", SECRET))
    assert error_of(path) == (
        f"{path}: [connections.prod] token_env: does not look like an environment variable NAME "
        "(letters, digits, _): put the token in an environment variable and name that variable here "
        "(like ACME_SF_TOKEN)"
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("https://acme", f"https://admin:{SECRET}@acme"), "url: must be a plain address without user, password, "
                                                          "query or fragment (like https://acme.my.salesforce.com)"),
        (('my.salesforce.com"', f'my.salesforce.com?sid={SECRET}"'), "url: must be a plain address"),
        (('my.salesforce.com"', f'my.salesforce.com#{SECRET}"'), "url: must be a plain address"),
        ((FULL_URL, f'"{SECRET}"'),
         "url: must be an https:// address like https://acme.my.salesforce.com, "
         "got something that is not a web address (not shown)"),
        ((FULL_URL, f'"http://acme.example.com/{SECRET}"'), "got http://acme.example.com"),
        (('"salesforce"', f'"{SECRET}"'), "provider: must be one of hubspot, salesforce, got a value of 75 characters "
                                          "(not shown)"),
        (('"58.0"', f'"{SECRET}"'), "api_version: expected a version like \"59.0\", got a value of 75 characters"),
        (('token_env = "ACME_SF_TOKEN"', f'token_env = ["{SECRET}"]'), "token_env: expected a non-empty string, "
                                                                      "got a list"),
        (('provider = "salesforce"', 'provider = "  "'), "provider: expected a non-empty string, got an empty string"),
    ],
)
def test_values_that_may_be_secrets_are_never_echoed(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    assert change[0] in FULL
    path = write(tmp_path / "c.toml", FULL.replace(*change))
    message = error_of(path)
    assert expected in message
    assert SECRET not in message and "00D5g" not in message and "AQ4AQ" not in message


def test_short_typos_are_still_shown(tmp_path: Path) -> None:
    assert "got 'salesfroce'" in error_of(write(tmp_path / "c.toml", FULL.replace('"salesforce"', '"salesfroce"')))
    assert "got 'latest'" in error_of(write(tmp_path / "c.toml", FULL.replace('"58.0"', '"latest"')))
    assert "got http://acme.my.salesforce.com" in error_of(
        write(tmp_path / "c.toml", FULL.replace("https://acme", "http://acme"))
    )


def test_digest_ignores_layout_and_location_but_not_values(tmp_path: Path) -> None:
    a = load_config(write(tmp_path / "a.toml", "[retry]\nattempts = 3\nmax_wait = 9.0\n[sandbox]\nseed = 1\n"))
    reordered = "# comment\n[sandbox]\nseed = 1\n\n[retry]\nmax_wait = 9\nattempts = 3\n"
    b = load_config(write(tmp_path / "elsewhere" / "b.toml", reordered))
    c = load_config(write(tmp_path / "c.toml", "[retry]\nattempts = 4\nmax_wait = 9.0\n[sandbox]\nseed = 1\n"))
    assert a.digest == b.digest != c.digest
    assert a.digest.startswith("sha256:") and len(a.digest) == len("sha256:") + 64
    assert load_config(None, environ={}).digest == Config().digest


def test_digest_of_full_config_is_stable(tmp_path: Path) -> None:
    first = load_config(write(tmp_path / "a" / "c.toml", FULL), environ={})
    again = load_config(write(tmp_path / "a" / "c.toml", FULL), environ={})
    assert first.digest == again.digest
    assert "ACME_SF_TOKEN" in str(first.to_dict())  # the variable's name, never its value


# --- resolve_connection -------------------------------------------------------------------------------


def test_configured_connection_reads_its_token(tmp_path: Path) -> None:
    write(tmp_path / "certs" / "ca.pem", trustme.CA().cert_pem.bytes().decode())  # resolve checks it is PEM
    config = load_config(write(tmp_path / "c.toml", FULL), environ={})
    with contextlib.ExitStack() as stack:
        conn = resolve_connection(config, "prod", Home(tmp_path / "home"), stack, environ={"ACME_SF_TOKEN": "tok!"})
    assert (conn.name, conn.provider, conn.url, conn.token) == ("prod", "salesforce", config.connections["prod"].url,
                                                                 "tok!")
    assert conn.ca_file == tmp_path.resolve() / "certs" / "ca.pem"
    assert (conn.api_version, conn.token_env) == ("58.0", "ACME_SF_TOKEN")
    assert "tok!" not in repr(conn)


@pytest.mark.parametrize("environ", [{}, {"ACME_SF_TOKEN": "  "}])
def test_missing_token_env_var(tmp_path: Path, environ: dict[str, str]) -> None:
    config = load_config(write(tmp_path / "c.toml", FULL), environ={})
    with pytest.raises(BadInput) as caught, contextlib.ExitStack() as stack:
        resolve_connection(config, "prod", Home(tmp_path), stack, environ=environ)
    state = "is empty" if environ else "is not set"  # set to blanks: the admin must not hunt for a missing export
    assert str(caught.value) == (
        f"environment variable ACME_SF_TOKEN {state}: export the session id for connection 'prod'"
    )


def test_missing_ca_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "c.toml", FULL), environ={})
    with pytest.raises(BadInput, match=r"ca_file .*ca\.pem of connection 'prod' does not exist"), \
            contextlib.ExitStack() as stack:
        resolve_connection(config, "prod", Home(tmp_path), stack, environ={"ACME_SF_TOKEN": "t"})


def test_unknown_connection_lists_known_names(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "c.toml", FULL), environ={})
    with pytest.raises(BadInput) as caught, contextlib.ExitStack() as stack:
        resolve_connection(config, "prd", Home(tmp_path), stack, environ={})
    assert str(caught.value) == (
        "unknown connection 'prd' (did you mean 'prod'?): "
        "known connections are sandbox-hubspot, sandbox-salesforce, prod"
    )


def test_builtin_sandbox_starts_and_stops(tmp_path: Path) -> None:
    pytest.importorskip("crmsweep.sandbox.server")
    config = load_config(write(tmp_path / "c.toml", "[sandbox]\nrecords = 60\nseed = 5\n"), environ={})
    home = Home(tmp_path / "home")
    with contextlib.ExitStack() as stack:
        conn = resolve_connection(config, "sandbox-salesforce", home, stack, environ={})
        assert (conn.name, conn.provider) == ("sandbox-salesforce", "salesforce")
        assert conn.url.startswith("https://127.0.0.1:") and conn.token and conn.ca_file is not None
        session = requests.Session()
        session.trust_env = False
        answer = session.get(f"{conn.url}/services/data/v59.0/limits/", verify=str(conn.ca_file),
                             headers={"Authorization": f"Bearer {conn.token}"}, timeout=10)
        assert answer.status_code == 200
        assert home.sandbox_dir("salesforce") in conn.ca_file.parents
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"{conn.url}/services/data/v59.0/limits/", verify=str(conn.ca_file), timeout=5)


# --- home ------------------------------------------------------------------------------------------------


def test_home_folders_are_private(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    for folder in (home.snapshots_dir, home.runs_dir, home.sandbox_dir("salesforce")):
        assert folder.is_dir()
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert home.sandbox_dir("salesforce") == tmp_path / "home" / "sandbox" / "salesforce"
    with pytest.raises(ValueError):
        home.sandbox_dir("../etc")


def test_a_token_pasted_as_token_env_is_never_repeated_in_the_error(tmp_path: Path) -> None:
    config_file = tmp_path / "c.toml"
    config_file.write_text('[connections.prod]\nprovider = "salesforce"\nurl = "https://acme.my.salesforce.com"\n'
                           'token_env = "Hunter2Secret"\n', encoding="utf-8")
    config = load_config(config_file)
    with pytest.raises(BadInput) as refused, contextlib.ExitStack() as stack:
        resolve_connection(config, "prod", Home(tmp_path / "home"), stack, environ={})
    assert "Hunter2Secret" not in str(refused.value) and "token_env" in str(refused.value)


def test_an_unknown_connection_like_none_known_names_the_config_that_would_define_it(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "c.toml", FULL), environ={})
    with pytest.raises(BadInput) as caught, contextlib.ExitStack() as stack:
        resolve_connection(config, "slow", Home(tmp_path), stack, environ={})
    assert str(caught.value) == (
        "unknown connection 'slow': known connections are sandbox-hubspot, sandbox-salesforce, prod "
        f"(in {tmp_path / 'c.toml'}): pass the config file that defines it with --config PATH "
        "(or set CRMSWEEP_CONFIG=PATH)"
    )
