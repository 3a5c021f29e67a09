"""The config file: TOML from `--config` or CRMSWEEP_CONFIG, validated into frozen settings.

Every mistake becomes one `BadInput` line naming the file, the section and the key, so an admin can
fix it without reading code. Secrets never live here: a connection names the environment variable
that holds its token (`token_env`), and the token is read only by `resolve_connection`.
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import stat
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from crmsweep import providers
from crmsweep.bounds import BOUND_KEY, Bound
from crmsweep.budget import DEFAULT_RESERVE, Reserve
from crmsweep.concepts import SEVERITIES, QualityRule
from crmsweep.connectors.base import TOKEN_AUTH, Connection, SignIn, env_variable
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.errors import BadInput
from crmsweep.model import canonical_json, sha256_text
from crmsweep.paths import Home, expand_user, path_from_env
from crmsweep.suggest import did_you_mean

CONFIG_ENV = "CRMSWEEP_CONFIG"

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A value short and plain enough to be a typo of a word, not a secret: safe to repeat in an error.
_WORD = re.compile(r"[A-Za-z0-9_.+-]{1,20}")
# An HTTP header carries the token as latin-1; every provider's tokens are printable ASCII without spaces.
_TOKEN = re.compile(r"[\x21-\x7e]+")


# --- settings ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionProfile:
    """A configured connection, without its secret."""

    name: str
    provider: str
    url: str  # for a flow whose sign-in names the instance (jwt, password, sf-cli): where it signs in
    token_env: str | None
    ca_file: Path | None = None
    api_version: str | None = None
    auth: SignIn | None = None  # None: the token in `token_env`
    bulk_threshold: int | None = None  # records per (op, object) above which apply uses a bulk job

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "provider": self.provider,
            "url": self.url,
            "token_env": self.token_env,
            "ca_file": str(self.ca_file) if self.ca_file else None,
            "api_version": self.api_version,
        }
        # Each only when set, so a token connection's digest (in existing plans' headers) stays the same.
        if self.bulk_threshold is not None:
            data["bulk_threshold"] = self.bulk_threshold
        if self.auth is not None:
            data["auth"] = self.auth.to_dict()
        return data


# Every number a config may set carries its bound (`Bound.metadata()`), checked when the file is read.
_DAYS_100_YEARS = 36500
_HOUR = 3600.0


@dataclass(frozen=True)
class ProtectSettings:
    recent_days: int = field(default=30, metadata=Bound(0, _DAYS_100_YEARS).metadata())
    objects: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class SafetySettings:
    max_changes: int = field(default=5000, metadata=Bound(1, 10_000_000).metadata())
    max_changes_per_object: int = field(default=2000, metadata=Bound(1, 10_000_000).metadata())
    # Above this many deletions, apply and rollback ask for the number (or the connection name) typed out.
    confirm_typed_over: int = field(default=100, metadata=Bound(0, 10_000_000).metadata())


@dataclass(frozen=True)
class RetrySettings:
    attempts: int = field(default=5, metadata=Bound(1, 100).metadata())
    # Seconds; more than an hour between two tries of one call is a stuck run, not a retry.
    initial_wait: float = field(default=1.0, metadata=Bound(0.0, _HOUR).metadata())
    max_wait: float = field(default=60.0, metadata=Bound(0.0, _HOUR).metadata())
    # Share of the daily API allowance (where the CRM reports one) left unused for other integrations;
    # a run stops (exit 3, resumable) before it would eat into it. Above half would starve crmsweep itself.
    daily_reserve: float = field(default=0.05, metadata=Bound(0.0, 0.5).metadata())

    def policy(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.attempts, initial_wait=self.initial_wait, max_wait=self.max_wait,
                           daily_reserve=self.daily_reserve)


@dataclass(frozen=True)
class BackupSettings:
    """[backup]: how a backup reads. `workers` objects at once (where the connector can); above
    `bulk_query_rows` rows an object is read through the CRM's bulk export where it has one."""

    workers: int = field(default=4, metadata=Bound(1, 32).metadata())
    bulk_query_rows: int = field(default=10_000, metadata=Bound(0, 1_000_000_000).metadata())


@dataclass(frozen=True)
class BudgetSettings:
    """[budget]: what backup, scan, apply and rollback leave of the daily API allowance (see crmsweep.budget)."""

    reserve: Reserve = DEFAULT_RESERVE


@dataclass(frozen=True)
class SandboxSettings:
    records: int = field(default=1000, metadata=Bound(1, 10_000_000).metadata())
    seed: int = field(default=7, metadata=Bound(0, 2**32 - 1).metadata())


@dataclass(frozen=True)
class QualitySettings:
    """[quality]: what `report quality` checks beyond (or instead of) the provider's default rules."""

    # False: only the rules given here. True: these are added to the defaults, and one with the object
    # and label of a default rule replaces it (to change its severity or fields).
    defaults: bool = True
    worst: int = field(default=5, metadata=Bound(1, 1000).metadata())  # worst records listed per owner
    rules: tuple[QualityRule, ...] = ()


def bound_of(settings: type[Any], name: str) -> Bound:
    """The bound declared on a numeric setting of one of the settings classes above."""
    found = next(f for f in fields(settings) if f.name == name).metadata.get(BOUND_KEY)
    if not isinstance(found, Bound):
        raise TypeError(f"{settings.__name__}.{name} declares no bound")
    return found


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    connections: Mapping[str, ConnectionProfile] = field(default_factory=dict)
    # Free-form per-pass tables; each pass validates its own.
    passes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    protect: ProtectSettings = field(default_factory=ProtectSettings)
    safety: SafetySettings = field(default_factory=SafetySettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)

    def to_dict(self) -> dict[str, Any]:
        """The effective settings as JSON data (no secrets: tokens are never part of a Config)."""
        return {
            "connections": {name: p.to_dict() for name, p in sorted(self.connections.items())},
            "passes": _jsonable(self.passes),
            "protect": {
                "recent_days": self.protect.recent_days,
                "objects": list(self.protect.objects),
                "ids": list(self.protect.ids),
            },
            "safety": {
                "max_changes": self.safety.max_changes,
                "max_changes_per_object": self.safety.max_changes_per_object,
                "confirm_typed_over": self.safety.confirm_typed_over,
            },
            "retry": {
                "attempts": self.retry.attempts,
                "initial_wait": self.retry.initial_wait,
                "max_wait": self.retry.max_wait,
                "daily_reserve": self.retry.daily_reserve,
            },
            "budget": {"reserve": self.budget.reserve.to_config()},
            "sandbox": {"records": self.sandbox.records, "seed": self.sandbox.seed},
            "backup": {"workers": self.backup.workers, "bulk_query_rows": self.backup.bulk_query_rows},
            "quality": {
                "defaults": self.quality.defaults,
                "worst": self.quality.worst,
                "rules": [
                    {"object": r.object, "severity": r.severity, "label": r.label, "any_of": list(r.any_of),
                     "active_owner": r.active_owner, "provider": r.provider}
                    for r in self.quality.rules
                ],
            },
        }

    @property
    def digest(self) -> str:
        """Stable across key order, comments and file location; recorded in plan headers."""
        return sha256_text(canonical_json(self.to_dict()))

    @property
    def connection_names(self) -> list[str]:
        return [*providers.builtin_connections(), *sorted(self.connections)]


def _jsonable(value: Any) -> Any:
    # TOML has date and time values; JSON does not.
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


# --- validation ---------------------------------------------------------------------------------------


def _suggest(word: str, known: Sequence[str]) -> str:
    return did_you_mean(word, known)


class _Table:
    """One TOML table being validated, with error messages that say where."""

    def __init__(self, source: str, section: str, data: Any, *, where: str | None = None) -> None:
        self.source = source
        self.section = section
        # How messages name the table: "[section]", or e.g. "[[quality.rules]] #2" for one of an array.
        self.where = where or f"[{section}]"
        if not isinstance(data, Mapping):
            raise BadInput(f"{source}: {self.where} must be a table, not {_type_name(data)}")
        self.data: Mapping[str, Any] = data

    def fail(self, key: str, problem: str) -> BadInput:
        return BadInput(f"{self.source}: {self.where} {key}: {problem}")

    def only(self, known: Sequence[str]) -> None:
        for key in self.data:
            if key not in known:
                raise BadInput(
                    f"{self.source}: {self.where} unknown key '{key}'{_suggest(key, known)}; "
                    f"known keys: {', '.join(known)}"
                )

    def has(self, key: str) -> bool:
        return key in self.data

    def get_number(self, key: str, default: int | float, bound: Bound) -> Any:
        """A whole number if `default` is one, else any number; within `bound` either way."""
        value = self.data.get(key, default)
        whole = isinstance(default, int)
        if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
            raise self.fail(key, f"expected {'a whole number' if whole else 'a number'}, got {_shown(value)}")
        problem = bound.problem(value)
        if problem:
            raise self.fail(key, problem)
        return value if whole else float(value)

    def numbers(self, settings: type[Any]) -> dict[str, Any]:
        """Every bounded number a settings class declares, read from this table."""
        return {
            f.name: self.get_number(f.name, f.default, f.metadata[BOUND_KEY])  # type: ignore[arg-type]
            for f in fields(settings)
            if BOUND_KEY in f.metadata
        }

    def get_str(self, key: str, *, required: bool = False) -> str | None:
        if key not in self.data:
            if required:
                raise self.fail(key, "is required")
            return None
        value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            # Only a number or flag is repeated: a list or table here may hold a token pasted in.
            if isinstance(value, str):
                got = "an empty string"
            else:
                got = _shown(value) if isinstance(value, int | float) else _type_name(value)
            raise self.fail(key, f"expected a non-empty string, got {got}")
        return value.strip()

    def get_strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(key, f"expected a list of strings, got {_shown(value)}")
        return tuple(v.strip() for v in value)


def _type_name(value: Any) -> str:
    return {"dict": "a table", "list": "a list", "str": "a string", "bool": "a boolean"}.get(
        type(value).__name__, type(value).__name__
    )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _shown_word(value: str) -> str:
    """`value` quoted if it looks like the short word the key expects; otherwise not shown at all,
    since a long or punctuated value in a connection table may well be a token pasted in the wrong place."""
    return repr(value) if _WORD.fullmatch(value) else f"a value of {len(value)} characters (not shown)"


def _url_parts(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        return None
    return parts


def _shown_url(parts: SplitResult | None) -> str:
    """Only scheme, host and port: the rest of a url may carry a password or a session id."""
    if parts is None or not parts.scheme or not parts.hostname or not _WORD.fullmatch(parts.scheme):
        return "something that is not a web address (not shown)"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


SECTIONS = ("connections", "passes", "protect", "safety", "retry", "budget", "sandbox", "backup", "quality")
_MAX_BULK_THRESHOLD = 100_000_000
_PROTECT_KEYS = ("recent_days", "objects", "ids")
_SAFETY_KEYS = ("max_changes", "max_changes_per_object", "confirm_typed_over")
_RETRY_KEYS = ("attempts", "initial_wait", "max_wait", "daily_reserve")
_BUDGET_KEYS = ("reserve",)
_SANDBOX_KEYS = ("records", "seed")
_BACKUP_KEYS = ("workers", "bulk_query_rows")
_QUALITY_KEYS = ("defaults", "worst", "rules")
_QUALITY_RULE_KEYS = ("object", "any_of", "active_owner", "severity", "label", "provider")


_COMMON_CONNECTION_KEYS = ("provider", "auth", "url", "ca_file", "api_version", "bulk_threshold")
_USERNAME = re.compile(r"[^\s@]{1,80}@[^\s@]{1,80}\.[^\s@]{1,40}")
# An OAuth client id (a connected app's consumer key): letters, digits, dots and underscores.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._]{8,256}")
# What a client SECRET looks like (a long hex run, or a long decimal one): refused as a client_id.
_CLIENT_SECRET_SHAPE = re.compile(r"[0-9A-Fa-f]{32,}|[0-9]{16,}")
_CLI_ORG = re.compile(r"[A-Za-z0-9._@+][A-Za-z0-9._@+-]{0,79}")  # never "-...": the CLI would take an option


def _connection_keys() -> tuple[str, ...]:
    kinds = [kind for provider in providers.all() for kind in provider.auth_kinds]
    return tuple(dict.fromkeys([*_COMMON_CONNECTION_KEYS, *(key for kind in kinds for key in kind.keys)]))


def _https_url(table: _Table, key: str, example: str, *, required: bool) -> str | None:
    """A plain https:// address from `key`; never shown beyond scheme, host and port."""
    url = table.get_str(key, required=required)
    if url is None:
        return None
    url = url.rstrip("/")
    parts = _url_parts(url)
    if parts is None or parts.scheme != "https" or not parts.hostname:
        raise table.fail(key, f"must be an https:// address like {example}, got {_shown_url(parts)}")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        # A user, password or query string in the url is where a secret would hide: refuse, never echo.
        raise table.fail(key, f"must be a plain address without user, password, query or fragment "
                              f"(like {_shown_url(parts)}): put secrets in the environment variables the "
                              "connection names")
    return url


def _looks_generated(value: str) -> bool:
    """A long run of letters mixed with digits and no underscore: a key or token, not a variable's name
    (names people give have words: ACME_SF_CLIENT_SECRET)."""
    return (len(value) >= 16 and "_" not in value and any(c.isdigit() for c in value)
            and any(c.isalpha() for c in value)) or bool(_CLIENT_SECRET_SHAPE.fullmatch(value))


def _env_name(table: _Table, key: str, example: str, what: str = "secret") -> str | None:
    value = table.get_str(key)
    if value is not None and (not _ENV_NAME.fullmatch(value) or _looks_generated(value)):
        # Most often the secret itself, pasted here: so the value is never shown.
        raise table.fail(key, "does not look like an environment variable NAME (letters, digits, _): "
                              f"put the {what} in an environment variable and name that variable here "
                              f"(like {example})")
    return value


def _auth_kind(table: _Table, provider: providers.Provider) -> providers.AuthKind:
    kinds = {kind.name: kind for kind in provider.auth_kinds}
    name = table.get_str("auth") or provider.auth_kinds[0].name
    if name not in kinds:
        raise table.fail("auth", f"must be one of {', '.join(kinds)} for {provider.title}, "
                                 f"got {_shown_word(name)}{_suggest(name, list(kinds))}")
    kind = kinds[name]
    for key in table.data:
        if key in _COMMON_CONNECTION_KEYS or key in kind.keys:
            continue
        owners = [k.name for k in provider.auth_kinds if key in k.keys]
        belongs = f" (it belongs to auth = {' or '.join(repr(o) for o in owners)})" if owners else ""
        raise table.fail(key, f"is not used with auth = \"{name}\"{belongs}; auth = \"{name}\" takes "
                              f"{', '.join(kind.keys)}")
    for key in kind.required:
        if not table.has(key):
            raise table.fail(key, f"is required with auth = \"{name}\" (which takes {', '.join(kind.keys)})")
    if kind.signs_in_at != "url" and table.has("url"):
        raise table.fail("url", f"is not used with auth = \"{name}\": the sign-in names the instance"
                                + ("; set login_url for where to sign in" if kind.signs_in_at == "login_url" else ""))
    return kind


def _sign_in(table: _Table, kind: providers.AuthKind, base_dir: Path, provider: providers.Provider) -> SignIn:
    """The non-secret settings of a sign-in flow; each value that could be a pasted secret is checked
    for the shape its key expects and refused, unshown, when it has another."""
    username = table.get_str("username")
    if username is not None and not _USERNAME.fullmatch(username):
        raise table.fail("username", "does not look like a username (like admin@acme.com; not shown): "
                                     "passwords go in the environment variable named by password_env")
    client_id = table.get_str("client_id")
    if client_id is not None and (not _CLIENT_ID.fullmatch(client_id) or _CLIENT_SECRET_SHAPE.fullmatch(client_id)):
        raise table.fail("client_id", "does not look like a connected app's consumer key (not shown): "
                                      "a client secret never goes in the config")
    key_file = None
    key_text = table.get_str("private_key_file")
    if key_text is not None:
        if "-----BEGIN" in key_text or "\n" in key_text or len(key_text) > 1024:
            raise table.fail("private_key_file", "looks like the key itself (not shown): save the key to a file, "
                                                 "chmod 600 it, and put the file's path here")
        key_path = expand_user(Path(key_text), f"{table.section} private_key_file")
        key_file = key_path if key_path.is_absolute() else (base_dir / key_path)
    org = table.get_str("org")
    if org is not None and not _CLI_ORG.fullmatch(org):
        raise table.fail("org", "does not look like an org alias or username of the CLI (not shown): "
                                "use an alias `org list` shows")
    if kind.signs_in_at == "url":
        login_url = _https_url(table, "url", provider.url_example, required=True)
    elif kind.signs_in_at == "login_url":
        login_url = _https_url(table, "login_url", kind.login_url or provider.url_example, required=False)
        login_url = login_url or kind.login_url
    else:
        login_url = None
    return SignIn(
        kind=kind.name,
        login_url=login_url,
        username=username,
        client_id=client_id,
        client_id_env=_env_name(table, "client_id_env", "ACME_CLIENT_ID"),
        client_secret_env=_env_name(table, "client_secret_env", "ACME_CLIENT_SECRET"),
        private_key_file=key_file,
        password_env=_env_name(table, "password_env", "ACME_PASSWORD"),
        security_token_env=_env_name(table, "security_token_env", "ACME_SECURITY_TOKEN"),
        org=org,
    )


def _connection(source: str, base_dir: Path, name: str, data: Any) -> ConnectionProfile:
    table = _Table(source, f"connections.{name}", data)
    table.only(_connection_keys())
    if providers.by_builtin_connection(name) is not None:
        raise BadInput(f"{source}: [connections.{name}] is a built-in connection name: choose another name")
    provider_name = table.get_str("provider", required=True) or ""
    if provider_name not in providers.names():
        raise table.fail("provider", f"must be one of {', '.join(providers.names())}, got {_shown_word(provider_name)}")
    provider = providers.get(provider_name)
    kind = _auth_kind(table, provider)
    sign_in = None if kind.name == TOKEN_AUTH else _sign_in(table, kind, base_dir, provider)
    if kind.signs_in_at == "url":
        url = _https_url(table, "url", provider.url_example, required=True) or ""
    else:
        # Until the sign-in names the instance, the connection is where it signs in (or nowhere yet).
        url = (sign_in.login_url if sign_in else None) or ""
    token_env = _env_name(table, "token_env", provider.token_env_example, "token")
    ca_text = table.get_str("ca_file")
    ca_file = None
    if ca_text is not None:
        ca_path = expand_user(Path(ca_text), f"{table.section} ca_file")
        ca_file = ca_path if ca_path.is_absolute() else (base_dir / ca_path)
    api_version = table.get_str("api_version")
    if api_version is not None:
        api_version = api_version.removeprefix("v")
        if not provider.api_version_pattern.fullmatch(api_version):
            raise table.fail("api_version", f"expected a version like \"{provider.api_version_example}\", "
                                            f"got {_shown_word(api_version)}")
    bulk_threshold = (table.get_number("bulk_threshold", 1, Bound(1, _MAX_BULK_THRESHOLD))
                      if table.has("bulk_threshold") else None)
    return ConnectionProfile(name=name, provider=provider.name, url=url, token_env=token_env,
                             ca_file=ca_file, api_version=api_version, auth=sign_in,
                             bulk_threshold=bulk_threshold)


def _quality_rule(source: str, number: int, data: Any) -> QualityRule:
    table = _Table(source, "quality.rules", data, where=f"[[quality.rules]] #{number}")
    table.only(_QUALITY_RULE_KEYS)
    obj = table.get_str("object", required=True) or ""
    severity = table.get_str("severity", required=True) or ""
    if severity not in SEVERITIES:
        raise table.fail("severity", f"must be one of {', '.join(SEVERITIES)}, got {_shown_word(severity)}")
    any_of = table.get_strings("any_of")
    active_owner = table.data.get("active_owner", False)
    if not isinstance(active_owner, bool):
        raise table.fail("active_owner", f"expected true or false, got {_shown(active_owner)}")
    if bool(any_of) == active_owner:
        raise table.fail("any_of", "give either any_of = [\"Field\", ...] (a value in at least one of them) "
                                   "or active_owner = true, not both and not neither")
    provider = table.get_str("provider")
    if provider is not None and provider not in providers.names():
        raise table.fail("provider", f"must be one of {', '.join(providers.names())}, got {_shown_word(provider)}")
    label = table.get_str("label") or ("active owner" if active_owner else " or ".join(any_of))
    return QualityRule(object=obj, severity=severity, label=label, any_of=any_of, active_owner=active_owner,
                       provider=provider)


def _quality(source: str, data: Any) -> QualitySettings:
    table = _Table(source, "quality", data)
    table.only(_QUALITY_KEYS)
    defaults = table.data.get("defaults", True)
    if not isinstance(defaults, bool):
        raise table.fail("defaults", f"expected true or false, got {_shown(defaults)}")
    raw_rules = table.data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise table.fail("rules", "expected [[quality.rules]] tables, one per rule")
    rules = tuple(_quality_rule(source, n, rule) for n, rule in enumerate(raw_rules, 1))
    if not defaults and not rules:
        raise table.fail("defaults", "is false but no [[quality.rules]] are given: the report would check nothing")
    return QualitySettings(defaults=defaults, rules=rules, **table.numbers(QualitySettings))


def parse_config(data: Mapping[str, Any], *, source: str, base_dir: Path, path: Path | None = None) -> Config:
    """Validate parsed TOML; `source` names the file in messages, `base_dir` anchors relative paths."""
    for section in data:
        if section not in SECTIONS:
            raise BadInput(
                f"{source}: unknown section [{section}]{_suggest(section, SECTIONS)}; "
                f"known sections: {', '.join(SECTIONS)}"
            )
    connections_table = _Table(source, "connections", data.get("connections", {}))
    connections = {
        name: _connection(source, base_dir, name, profile) for name, profile in connections_table.data.items()
    }
    passes_table = _Table(source, "passes", data.get("passes", {}))
    passes: dict[str, dict[str, Any]] = {}
    for name, settings in passes_table.data.items():
        passes[name] = dict(_Table(source, f"passes.{name}", settings).data)

    protect = _Table(source, "protect", data.get("protect", {}))
    protect.only(_PROTECT_KEYS)
    safety = _Table(source, "safety", data.get("safety", {}))
    safety.only(_SAFETY_KEYS)
    retry = _Table(source, "retry", data.get("retry", {}))
    retry.only(_RETRY_KEYS)
    sandbox = _Table(source, "sandbox", data.get("sandbox", {}))
    sandbox.only(_SANDBOX_KEYS)
    backup = _Table(source, "backup", data.get("backup", {}))
    backup.only(_BACKUP_KEYS)
    budget = _Table(source, "budget", data.get("budget", {}))
    budget.only(_BUDGET_KEYS)
    reserve = budget.data.get("reserve")

    retry_settings = RetrySettings(**retry.numbers(RetrySettings))
    if retry_settings.max_wait < retry_settings.initial_wait:
        raise retry.fail("max_wait", f"must not be below initial_wait ({retry_settings.initial_wait:g})")
    return Config(
        path=path,
        connections=connections,
        passes=passes,
        protect=ProtectSettings(
            **protect.numbers(ProtectSettings),
            objects=protect.get_strings("objects"),
            ids=protect.get_strings("ids"),
        ),
        safety=SafetySettings(**safety.numbers(SafetySettings)),
        retry=retry_settings,
        budget=BudgetSettings(DEFAULT_RESERVE if reserve is None
                              else Reserve.parse(reserve, f"{source}: [budget] reserve")),
        sandbox=SandboxSettings(**sandbox.numbers(SandboxSettings)),
        backup=BackupSettings(**backup.numbers(BackupSettings)),
        quality=_quality(source, data.get("quality", {})),
    )


# --- loading and resolving ------------------------------------------------------------------------------


def load_config(path: Path | None, *, environ: Mapping[str, str] | None = None) -> Config:
    """The config at `path`, else at $CRMSWEEP_CONFIG, else the built-in defaults."""
    if path is None:
        path = path_from_env(CONFIG_ENV, environ)
    if path is None:
        return Config()
    path = expand_user(path, "config file")
    try:
        if os.path.exists(path) and not os.path.isdir(path) and not stat.S_ISREG(os.stat(path).st_mode):
            # A FIFO would hang the command and /dev/zero fill the memory.
            raise BadInput(f"config file {path} is not a regular file: point --config or {CONFIG_ENV} at a .toml file")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"config file {path} does not exist: check --config or {CONFIG_ENV}") from None
    except IsADirectoryError:
        raise BadInput(f"config file {path} is a folder: point --config or {CONFIG_ENV} at a .toml file") from None
    except OSError as exc:
        raise BadInput(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text: save the config file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: invalid TOML: {exc}") from None
    return parse_config(data, source=str(path), base_dir=path.resolve().parent, path=path)


def _check_ca_file(path: Path, connection: str) -> None:
    """BadInput unless `path` holds at least one PEM certificate: found here, with the config, rather
    than as a TLS error retried for seconds and reported as a lost connection."""
    where = f"ca_file {path} of connection '{connection}'"
    if not path.exists():
        raise BadInput(f"{where} does not exist: fix the path in the config")
    if not path.is_file():
        raise BadInput(f"{where} is not a file: point it at the CA certificate (a .pem file)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=str(path))
    except OSError as exc:  # ssl.SSLError is an OSError too
        if not isinstance(exc, ssl.SSLError):
            raise BadInput(f"cannot read {where}: {exc.strerror or exc}") from None
    stats = context.cert_store_stats()
    if not stats.get("x509", 0):
        raise BadInput(f"{where} holds no PEM certificate: point it at the CA certificate in PEM form "
                       "(text that starts with -----BEGIN CERTIFICATE-----)")


def resolve_connection(
    config: Config,
    name: str,
    home: Home,
    stack: contextlib.ExitStack,
    *,
    environ: Mapping[str, str] | None = None,
) -> Connection:
    """The named connection, secret included. A built-in sandbox is started and its stop put on `stack`."""
    builtin = providers.by_builtin_connection(name)
    if builtin is not None:
        running = builtin.start_sandbox(
            home.sandbox_dir(builtin.name), records=config.sandbox.records, seed=config.sandbox.seed
        )
        stack.callback(running.stop)
        info = running.info
        return Connection(
            name=name,
            provider=builtin.name,
            url=info.url,
            token=info.token,
            ca_file=Path(info.ca_file),
        )
    profile = config.connections.get(name)
    if profile is None:
        close = _suggest(name, config.connection_names)
        raise BadInput(
            f"unknown connection '{name}'{close}: known connections are {', '.join(config.connection_names)}"
            # Not a typo, the likeliest cause is that the config defining it was not given to this command.
            + ("" if close else f" ({'the built-in ones' if config.path is None else f'in {config.path}'}): "
               "pass the config file that defines it with --config PATH (or set CRMSWEEP_CONFIG=PATH)")
        )
    if profile.auth is not None:
        # The connector signs in, reading the secrets it needs then.
        if profile.ca_file is not None:
            _check_ca_file(profile.ca_file, name)
        return Connection(name=name, provider=profile.provider, url=profile.url, token="", ca_file=profile.ca_file,
                          api_version=profile.api_version, auth=profile.auth,
                          bulk_threshold=profile.bulk_threshold)
    env = os.environ if environ is None else environ
    token_env = profile.token_env or ""
    token = env.get(token_env, "").strip()
    token_name = providers.get(profile.provider).token_name
    if not token:
        state = "is empty" if token_env in env else "is not set"
        raise BadInput(
            f"{env_variable(token_env, 'token_env')} {state}: export the {token_name} for connection '{name}'"
        )
    if not _TOKEN.fullmatch(token):
        # The value is never shown: it is, or is meant to be, the secret.
        raise BadInput(
            f"{env_variable(token_env, 'token_env')} does not hold a {token_name} for connection '{name}': "
            f"it contains a space or a character outside printable ASCII (like €); export the {token_name} again"
        )
    if profile.ca_file is not None:
        _check_ca_file(profile.ca_file, name)
    return Connection(
        name=name,
        provider=profile.provider,
        url=profile.url,
        token=token,
        ca_file=profile.ca_file,
        api_version=profile.api_version,
        token_env=profile.token_env,
        bulk_threshold=profile.bulk_threshold,
    )
