"""Salesforce's OAuth 2.0 token endpoint, `POST /services/oauth2/token`, for the grants crmsweep signs in with.

Grants (Salesforce Help, "OAuth Authorization Flows"): `password` (username-password flow: client id
and secret, username, password with the security token appended), `client_credentials` (client id
and secret in the body or as HTTP Basic; the connected app's run-as user), and
`urn:ietf:params:oauth:grant-type:jwt-bearer` (an RS256 JWT: iss = consumer key, sub = username, aud =
the login url, exp within 3 minutes, signed by the key whose certificate the connected app holds).
Errors are the documented 400 `{"error": ..., "error_description": ...}`. Token calls are not API
calls: they are not counted against the daily allowance.

The connected apps and users live in the state folder (`oauth.json`, 0600), written by tests through
`write_settings` or the admin endpoint (`PUT /services/oauth2/__sandbox/settings`, the state folder's
token): read on every token request, so a change applies at once. Every issued session belongs to the
org's API user (the sandbox has one user who calls the API).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import load_pem_x509_certificate

from crmsweep.sandbox.provider_api import Request, Response, json_response
from crmsweep.sandbox.sessions import IssuedSessions
from crmsweep.sandbox.tls import write_private

TOKEN_PATH = "/services/oauth2/token"
SETTINGS_PATH = "/services/oauth2/__sandbox/settings"
SETTINGS_FILE = "oauth.json"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# The audiences Salesforce documents for the JWT bearer flow; the token endpoint's own address is
# accepted too, as an Experience Cloud site's is.
DOCUMENTED_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
MAX_JWT_LIFETIME_SECONDS = 180
_CLOCK_SKEW_SECONDS = 5


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def write_settings(state_dir: Path, settings: Mapping[str, Any]) -> None:
    """The connected apps and users: `{"apps": [{"client_id", "client_secret", "certificate" (PEM
    certificate or public key), "run_as" (username, for client_credentials)}], "users": [{"username",
    "password", "security_token"}]}`."""
    write_private(Path(state_dir) / SETTINGS_FILE, json.dumps(settings).encode("utf-8"))


def read_settings(state_dir: Path) -> dict[str, Any]:
    path = Path(state_dir) / SETTINGS_FILE
    if not path.exists():
        return {"apps": [], "users": []}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {"apps": [], "users": []}


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


class OAuthEndpoint:
    def __init__(
        self, state_dir: Path, sessions: IssuedSessions, org_id: Callable[[], str], user_id: Callable[[], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state_dir = state_dir
        self.sessions = sessions
        self.org_id = org_id
        self.user_id = user_id
        self.clock = clock

    # --- the admin endpoint --------------------------------------------------------------------

    def configure(self, request: Request) -> Response:
        if request.method != "PUT":
            return _error(OAuthError("invalid_request", "use PUT with the settings as JSON", 405))
        try:
            data = json.loads(request.body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict) or not all(isinstance(data.get(k, []), list) for k in ("apps", "users")):
            return _error(OAuthError("invalid_request", 'send {"apps": [...], "users": [...]}'))
        write_settings(self.state_dir, data)
        return json_response(200, {"apps": len(data.get("apps", [])), "users": len(data.get("users", []))})

    # --- the token endpoint --------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        try:
            if request.method != "POST":
                raise OAuthError("invalid_request", "must use HTTP POST", 405)
            form = self._form(request)
            grant = form.get("grant_type")
            settings = read_settings(self.state_dir)
            if grant == "password":
                app = self._client(settings, form, request)
                self._user(settings, form.get("username"), form.get("password"), check_password=True)
            elif grant == "client_credentials":
                app = self._client(settings, form, request)
                if not app.get("run_as"):
                    raise OAuthError("invalid_grant", "no client credentials user enabled")
            elif grant == JWT_GRANT:
                app = self._jwt(settings, form.get("assertion"), request)
            elif not grant:
                raise OAuthError("invalid_request", "grant type not supported")
            else:
                raise OAuthError("unsupported_grant_type", "grant type not supported")
        except OAuthError as exc:
            return _error(exc)
        instance = self._instance(request)
        issued_at = str(int(self.clock() * 1000))
        answer: dict[str, Any] = {
            "access_token": self.sessions.issue(self.org_id()),
            "instance_url": instance,
            "id": f"{instance}/id/{self.org_id()}/{self.user_id()}",
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": base64.b64encode(
                hmac.digest(str(app.get("client_secret", "")).encode(), issued_at.encode(), "sha256")
            ).decode(),
        }
        if grant == JWT_GRANT:
            answer["scope"] = "api id"
        return json_response(200, answer)

    @staticmethod
    def _form(request: Request) -> dict[str, str]:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
        try:
            fields = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise OAuthError("invalid_request", "the body is not UTF-8") from None
        return {k: v[0] for k, v in fields.items() if v}

    @staticmethod
    def _instance(request: Request) -> str:
        return f"https://{request.headers.get('host', '127.0.0.1')}"

    @staticmethod
    def _app(settings: Mapping[str, Any], client_id: str | None) -> dict[str, Any]:
        for app in settings.get("apps", []):
            if isinstance(app, dict) and _same(str(app.get("client_id", "")), client_id):
                return app
        raise OAuthError("invalid_client_id", "client identifier invalid")

    def _client(self, settings: Mapping[str, Any], form: Mapping[str, str], request: Request) -> dict[str, Any]:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic" and client_id is None:
            try:
                client_id, _, secret = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise OAuthError("invalid_client", "invalid client credentials") from None
        app = self._app(settings, client_id)
        if not _same(str(app.get("client_secret", "")), secret):
            raise OAuthError("invalid_client", "invalid client credentials")
        return app

    @staticmethod
    def _user(settings: Mapping[str, Any], username: str | None, password: str | None, *,
              check_password: bool) -> dict[str, Any]:
        for user in settings.get("users", []):
            if not isinstance(user, dict) or str(user.get("username", "")).lower() != (username or "").lower():
                continue
            expected = f"{user.get('password', '')}{user.get('security_token', '')}"
            if check_password and not _same(expected, password):
                break
            return user
        raise OAuthError("invalid_grant", "authentication failure")

    def _jwt(self, settings: Mapping[str, Any], assertion: str | None, request: Request) -> dict[str, Any]:
        parts = (assertion or "").split(".")
        if len(parts) != 3:
            raise OAuthError("invalid_grant", "invalid assertion")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
            raise OAuthError("invalid_grant", "invalid assertion")
        app = self._app(settings, str(claims.get("iss", "")))
        if not _verified(str(app.get("certificate", "")), f"{parts[0]}.{parts[1]}".encode(), signature):
            raise OAuthError("invalid_grant", "invalid assertion")
        audiences = (*DOCUMENTED_AUDIENCES, self._instance(request))
        if str(claims.get("aud", "")).rstrip("/") not in audiences:
            raise OAuthError("invalid_grant", "audience is invalid")
        exp = claims.get("exp")
        now = self.clock()
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise OAuthError("invalid_grant", "invalid assertion")
        if exp < now - _CLOCK_SKEW_SECONDS:
            raise OAuthError("invalid_grant", "expired authorization code")
        if exp > now + MAX_JWT_LIFETIME_SECONDS + _CLOCK_SKEW_SECONDS:
            raise OAuthError("invalid_grant", "invalid assertion: exp must be within 3 minutes")
        self._user(settings, str(claims.get("sub", "")), None, check_password=False)
        return app


def _verified(certificate: str, signed: bytes, signature: bytes) -> bool:
    """Whether `signature` is the RS256 signature of `signed` by the key of `certificate` (PEM)."""
    pem = certificate.encode()
    key: object
    try:
        if b"BEGIN CERTIFICATE" in pem:
            key = load_pem_x509_certificate(pem).public_key()
        else:
            key = serialization.load_pem_public_key(pem)
    except ValueError:
        return False
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _error(exc: OAuthError) -> Response:
    return json_response(exc.status, {"error": exc.error, "error_description": exc.description})
