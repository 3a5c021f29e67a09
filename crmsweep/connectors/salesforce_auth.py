"""Signing in to Salesforce by each flow an admin's company may allow, besides a session id in `token_env`.

`sign_in(connection, session)` returns `(access_token, instance_url)` for the connection's `auth`
(`crmsweep.connectors.base.SignIn`):

- "jwt": the OAuth 2.0 JWT bearer flow. An RS256 assertion (iss = consumer key, sub = username,
  aud = login_url, or login/test.salesforce.com for a My Domain login url; exp under 3 minutes)
  signed with the key in `private_key_file` (0600, or refused).
- "client_credentials": the client credentials flow on the org's My Domain, client id and secret
  from the environment variables the config names.
- "password": the OAuth 2.0 username-password flow (client id and secret, username, password with
  the security token appended), chosen over SOAP `login()`: one token endpoint for every grant, and
  the connected app's policies (IP ranges, session length) apply as they do to the other flows.
- "sf-cli": the access token the admin's own Salesforce CLI holds (`sf org display --json`); the CLI
  refreshes it with its own refresh token, so running it again is how this flow signs in again.

The grants are posted here, through the connector's own `SalesforceSession` (its pinned TLS, its
refusal of redirects, its count of HTTP calls), rather than through simple-salesforce's login
helpers, which build https://{domain}.salesforce.com token urls of their own; simple-salesforce is
then handed the session id and instance url. Token requests are not API calls on Salesforce: they
show in `ApiUsage.calls` (every HTTP call) but not in the org's allowance.

Secrets (client secret, password, security token, private key, the token itself) are read from the
environment or the key file at each sign-in, held only in local variables, and masked out of every
message: nothing here stores one on an object.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from crmsweep.connectors.base import Connection, SignIn, env_variable
from crmsweep.connectors.http_failures import masked, one_line
from crmsweep.connectors.salesforce_errors import RETRIABLE_STATUS, http_error, map_failure
from crmsweep.errors import AuthError, BadInput, ConnectorError

TOKEN_PATH = "/services/oauth2/token"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Salesforce takes an assertion whose exp is at most 3 minutes ahead; a little less leaves room for a
# clock a few seconds fast.
JWT_LIFETIME_SECONDS = 170
SF_CLI_TIMEOUT_SECONDS = 60.0
_TOKEN = re.compile(r"[\x21-\x7e]+")  # a session id travels in an HTTP header: printable ASCII, no space
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,60}")  # an error name safe to repeat (the CLI's, OAuth's)


def sign_in(
    connection: Connection, session: requests.Session, *, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """(access token, instance url) for `connection.auth`; BadInput for a setting the admin must fix,
    AuthError for credentials Salesforce refused, RetriableError for a token endpoint that is down."""
    auth = connection.auth
    if auth is None:
        raise ValueError(f"connection '{connection.name}' signs in with the token in its token_env")
    env = os.environ if environ is None else environ
    if auth.kind == "sf-cli":
        token, instance = _from_sf_cli(connection, auth)
    else:
        form, secrets = _grant(connection, auth, env)
        token, instance = _post_grant(connection, auth, session, form, secrets)
    return token, _checked_instance(connection, instance)


# --- the grants ----------------------------------------------------------------------------------------


def _grant(connection: Connection, auth: SignIn, env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The token request's form, and the secrets in it (masked out of anything shown)."""
    if auth.kind == "jwt":
        key = _private_key(connection, auth.private_key_file)
        assertion = jwt_assertion(str(auth.client_id), str(auth.username), jwt_audience(str(auth.login_url)), key)
        return {"grant_type": JWT_GRANT, "assertion": assertion}, [assertion]
    client_id = _secret(connection, env, auth.client_id_env, "connected app's consumer key", "client_id_env")
    client_secret = _secret(connection, env, auth.client_secret_env, "connected app's consumer secret",
                            "client_secret_env")
    if auth.kind == "client_credentials":
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
        return form, [client_secret]
    if auth.kind == "password":
        password = _secret(connection, env, auth.password_env, "user's password", "password_env", strip=False)
        security_token = (
            _secret(connection, env, auth.security_token_env, "user's security token", "security_token_env")
            if auth.security_token_env else ""
        )
        form = {"grant_type": "password", "client_id": client_id, "client_secret": client_secret,
                "username": str(auth.username), "password": password + security_token}
        return form, [client_secret, password, security_token, password + security_token]
    raise BadInput(f"connection '{connection.name}': auth = {auth.kind!r} is not a Salesforce sign-in")


def jwt_audience(login_url: str) -> str:
    """The JWT's `aud`. Salesforce documents login.salesforce.com, test.salesforce.com or an Experience
    Cloud site's url; an admin whose token endpoint is the org's My Domain still needs one of the first
    two (a sandbox org's My Domain is *.sandbox.my.salesforce.com). Any other login url is the audience."""
    host = (urlsplit(login_url).hostname or "").lower()
    if host.endswith(".sandbox.my.salesforce.com"):
        return "https://test.salesforce.com"
    if host.endswith(".my.salesforce.com"):
        return "https://login.salesforce.com"
    return login_url.rstrip("/")


def jwt_assertion(client_id: str, username: str, audience: str, key: rsa.RSAPrivateKey,
                  now: float | None = None) -> str:
    """The JWT bearer flow's assertion, RS256-signed (RFC 7523; Salesforce's claims)."""
    issued = int(time.time() if now is None else now)
    claims = {"iss": client_id, "sub": username, "aud": audience, "exp": issued + JWT_LIFETIME_SECONDS}
    signing_input = f"{_b64url(json.dumps({'alg': 'RS256'}).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _secret(connection: Connection, env: Mapping[str, str], name: str | None, what: str, key: str, *,
            strip: bool = True) -> str:
    value = env.get(name or "", "")
    value = value.strip() if strip else value.rstrip("\r\n")
    if not value:
        state = "is empty" if (name or "") in env else "is not set"
        raise BadInput(f"{env_variable(name or '', key)} {state}: export the {what} for connection "
                       f"'{connection.name}'")
    return value


def _private_key(connection: Connection, path: Path | None) -> rsa.RSAPrivateKey:
    """The RSA key in the key file; refused, never shown, unless only its owner can read it."""
    where = f"private_key_file {path} of connection '{connection.name}'"
    if path is None:
        raise BadInput(f"connection '{connection.name}' has no private_key_file")
    try:
        info = path.stat()
    except FileNotFoundError:
        raise BadInput(f"{where} does not exist: fix the path in the config") from None
    except OSError as exc:
        raise BadInput(f"cannot read {where}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise BadInput(f"{where} is not a file: point it at the PEM private key of the connected app's certificate")
    if info.st_mode & 0o077:
        raise BadInput(f"{where} can be read by other users (mode {stat.S_IMODE(info.st_mode):04o}): "
                       f"run chmod 600 {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {where}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise BadInput(f"{where} is encrypted: save it unencrypted (openssl pkey -in KEY -out {path}) "
                       "and keep it chmod 600") from None
    except ValueError:
        raise BadInput(f"{where} holds no PEM private key (text that starts with -----BEGIN PRIVATE KEY-----)") \
            from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise BadInput(f"{where} is not an RSA key: the JWT bearer flow signs with RS256")
    return key


def _post_grant(connection: Connection, auth: SignIn, session: requests.Session, form: dict[str, str],
                secrets: list[str]) -> tuple[str, str]:
    url = f"{str(auth.login_url).rstrip('/')}{TOKEN_PATH}"
    action = f"the {auth.kind} sign-in"
    try:
        response = session.post(url, data=form, headers={"Accept": "application/json"})
    except requests.exceptions.RequestException as exc:
        raise map_failure(exc, connection, action=action, first_contact=True) from None
    if response.status_code in RETRIABLE_STATUS:
        raise map_failure(http_error(response, action), connection, action=action) from None
    try:
        answer: Any = response.json()
    except ValueError:
        answer = None
    if response.status_code != 200 or not isinstance(answer, dict):
        raise _refused(connection, auth, response.status_code, answer, secrets)
    token, instance = answer.get("access_token"), answer.get("instance_url")
    if not isinstance(token, str) or not _TOKEN.fullmatch(token) or not isinstance(instance, str):
        raise ConnectorError(f"Salesforce connection '{connection.name}': {action} answered without a usable "
                             "access_token and instance_url: check login_url (the org's token endpoint)")
    return token, instance


_HINTS = {
    "invalid_client_id": "check the consumer key in {client_id}",
    "invalid_client": "check the consumer key and secret in {client_id} and {client_secret}",
}
_GRANT_HINTS = {
    "jwt": "check that the connected app holds the certificate of private_key_file, that {username} is "
           "pre-authorized for it, and login_url (https://test.salesforce.com for a sandbox org)",
    "password": "check {username}, the password in {password} and the security token in {security_token} "
                "(a password reset mails a new one)",
    "client_credentials": "check that the connected app has a run-as user for the client credentials flow",
}


def _refused(connection: Connection, auth: SignIn, status: int, answer: Any, secrets: list[str]) -> AuthError:
    """The documented OAuth error ({"error", "error_description"}) as one line, every secret masked."""
    error = answer.get("error") if isinstance(answer, dict) else None
    code = str(error) if isinstance(error, str) and _WORD.fullmatch(error) else None
    description = answer.get("error_description") if isinstance(answer, dict) else None
    said = str(description) if isinstance(description, str) else ""
    for secret in secrets:
        said = masked(said, secret) if secret else said
    names = {"client_id": auth.client_id_env or "client_id", "client_secret": auth.client_secret_env,
             "username": f"username {auth.username}", "password": auth.password_env,
             "security_token": auth.security_token_env or "security_token_env"}
    hint = _HINTS.get(code or "") or _GRANT_HINTS.get(auth.kind, "check the connection's sign-in settings")
    detail = f"{code}: {one_line(said)}" if code and said else (code or f"HTTP {status}")
    return AuthError(
        f"Salesforce connection '{connection.name}' refused the {auth.kind} sign-in ({detail}): "
        f"{hint.format(**names)}",
        status=status,
        code=code or "SIGN_IN_REFUSED",
    )


# --- the Salesforce CLI --------------------------------------------------------------------------------


def _from_sf_cli(connection: Connection, auth: SignIn) -> tuple[str, str]:
    """The CLI's own session for the org alias. Its output is never shown: it holds the token."""
    org = str(auth.org)
    login = f"run sf org login web --alias {org}"
    exe = shutil.which("sf")
    if exe is None:
        raise BadInput(f"connection '{connection.name}' signs in through the Salesforce CLI, but sf is not on "
                       f"PATH: install it (npm install --global @salesforce/cli), {login}, and try again")
    # No update check or prompt from the CLI: it runs unattended, and only its JSON is read.
    env = {**os.environ, "SF_AUTOUPDATE_DISABLE": "true", "SF_SKIP_NEW_VERSION_CHECK": "true"}
    try:
        # A fixed command line; org is checked in the config as an alias (never starting with "-", an option).
        done = subprocess.run(
            [exe, "org", "display", "--target-org", org, "--json"],
            capture_output=True, timeout=SF_CLI_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL, env=env, check=False,
        )
    except subprocess.TimeoutExpired:
        raise ConnectorError(f"connection '{connection.name}': sf org display --target-org {org} gave no answer "
                             f"within {SF_CLI_TIMEOUT_SECONDS:.0f} s: check that the CLI works "
                             f"(sf org list) and try again") from None
    except OSError as exc:
        raise BadInput(f"connection '{connection.name}': cannot run sf ({exc.strerror or type(exc).__name__}): "
                       "check the Salesforce CLI's installation") from None
    try:
        data: Any = json.loads(done.stdout.decode("utf-8", "replace"))
    except ValueError:
        data = None
    result = data.get("result") if isinstance(data, dict) else None
    token = result.get("accessToken") if isinstance(result, dict) else None
    instance = result.get("instanceUrl") if isinstance(result, dict) else None
    if done.returncode != 0 or not isinstance(token, str) or not isinstance(instance, str):
        name = data.get("name") if isinstance(data, dict) else None
        said = f" ({name})" if isinstance(name, str) and _WORD.fullmatch(name) else ""
        raise AuthError(f"connection '{connection.name}': the Salesforce CLI holds no session for org "
                        f"'{org}'{said}: {login} and try again", code="SF_CLI_NOT_LOGGED_IN")
    if not _TOKEN.fullmatch(token):
        raise AuthError(f"connection '{connection.name}': the Salesforce CLI's session for org '{org}' is not an "
                        f"access token (not shown): {login} and try again", code="SF_CLI_NOT_LOGGED_IN")
    return token, instance


def _checked_instance(connection: Connection, instance: str) -> str:
    """The instance url the sign-in named, if the session may travel to it: https, a plain address."""
    try:
        parts = urlsplit(instance.strip())
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme != "https" or not parts.hostname or parts.username is not None \
            or parts.password is not None or parts.query or parts.fragment:
        raise ConnectorError(f"Salesforce connection '{connection.name}': the sign-in named an instance that is not "
                             "a plain https:// address: refused, since the session would travel to it")
    port = f":{parts.port}" if parts.port else ""
    return f"https://{parts.hostname}{port}{parts.path.rstrip('/')}"


__all__ = ["JWT_GRANT", "jwt_assertion", "jwt_audience", "sign_in"]
