"""The provider registry: every CRM crmsweep speaks is one entry, found here by itself.

A provider is one module `crmsweep/providers/<name>.py` defining `PROVIDER = Provider(...)`. Generic
code asks this registry (`get`, `names`, `all`, `by_builtin_connection`) and never tests a provider's
name, so adding a third CRM is adding one module here (plus its connector and sandbox), and touches no
generic module.

Importing the registry is cheap: entries hold data and two factories, and each factory imports its
connector or sandbox module only when called.

The two factories (the shapes the connector and sandbox modules implement):

- `connect(connection, retry) -> Connector`: a connector for a resolved `Connection` whose provider
  is this one (`retry` None: the connector's default policy). Close it when done.
- `start_sandbox(state_dir, *, port=0, records=1000, seed=7, api_limit=15000, latency_ms=0,
  faults=None, reset=False) -> SandboxHandle`: the embedded sandbox of this provider serving
  `state_dir` on https://127.0.0.1:`port` (0: any free port), already serving when it returns.
  `faults` is the `--faults` text ("503:0.05,lock:0.02"); `reset` wipes the state and seeds afresh.
  The handle has `.info` (provider, url, ca_file, token, state_dir, org_id and `to_json_line()`, like
  `crmsweep.sandbox.server.SandboxInfo`) and `.stop()`, and is a context manager that stops on exit
  (like `crmsweep.sandbox.server.RunningSandbox`). A provider whose sandbox is not built yet raises
  BadInput saying so.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from crmsweep.errors import BadInput
from crmsweep.model import Capabilities, Vocabulary

if TYPE_CHECKING:  # annotations only: the connectors package imports this registry
    from crmsweep.connectors.base import Connection, Connector
    from crmsweep.connectors.retry import RetryPolicy


class SandboxDetails(Protocol):
    """What a running sandbox tells its clients (`crmsweep.sandbox.server.SandboxInfo` has this shape)."""

    @property
    def provider(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def ca_file(self) -> Path: ...
    @property
    def token(self) -> str: ...
    @property
    def state_dir(self) -> Path: ...
    @property
    def org_id(self) -> str: ...

    def to_json_line(self) -> str: ...


class SandboxHandle(Protocol):
    """A sandbox serving in the background (`crmsweep.sandbox.server.RunningSandbox` has this shape)."""

    @property
    def info(self) -> SandboxDetails: ...

    def stop(self) -> None: ...

    def __enter__(self) -> SandboxHandle: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class ConnectorFactory(Protocol):
    def __call__(self, connection: Connection, retry: RetryPolicy | None, /) -> Connector: ...


class SandboxFactory(Protocol):
    def __call__(
        self,
        state_dir: Path,
        /,
        *,
        port: int = 0,
        records: int = 1000,
        seed: int = 7,
        api_limit: int = 15000,
        latency_ms: int = 0,
        faults: str | None = None,
        reset: bool = False,
    ) -> SandboxHandle: ...


@dataclass(frozen=True)
class AuthKind:
    """One way a connection to a CRM signs in (`auth = "<name>"` in the config), by the config keys it takes
    beside the common ones (provider, auth, url, ca_file, api_version). The config checks each key's
    value by the key's own rules, whichever CRM takes it."""

    name: str
    keys: tuple[str, ...]
    required: tuple[str, ...]
    # Where the sign-in happens: "url" (the connection's url), "login_url" (that key, `login_url` by
    # default) or "elsewhere" (a tool the admin runs, which also knows the instance).
    signs_in_at: str = "url"
    login_url: str | None = None

    def __post_init__(self) -> None:
        if self.signs_in_at not in ("url", "login_url", "elsewhere") or not set(self.required) <= set(self.keys):
            raise ValueError(f"auth kind {self.name!r} is declared wrongly")


TOKEN_AUTH_KIND = AuthKind("token", keys=("token_env",), required=("token_env",))


@dataclass(frozen=True)
class Provider:
    """One CRM: its data (vocabulary, capabilities, texts people read) and how to reach it."""

    name: str  # the `provider` of a connection, plan, snapshot: "acme"
    title: str  # how people write it: "Acme CRM"
    vocabulary: Vocabulary
    capabilities: Capabilities
    connect: ConnectorFactory
    start_sandbox: SandboxFactory
    builtin_connection: str  # the connection that starts this provider's sandbox: "sandbox-acme"
    url_example: str  # shown when a configured url is wrong: "https://acme.example.com"
    token_name: str  # what the token environment variable holds: "session id", "api key"
    token_env_example: str  # a variable name to suggest: "ACME_CRM_TOKEN"
    api_version_pattern: re.Pattern[str]  # what [connections.x] api_version accepts (after an optional "v")
    api_version_example: str
    client_library: str  # the client library the connector drives, named in the demo
    sandbox_speaks: str  # what the embedded sandbox serves, for the demo: "the REST API"
    # The objects `crmsweep demo` counts before and after, to show that rollback put everything back.
    demo_objects: tuple[str, ...] = ()
    # The provider commands use when none is named (`sandbox serve`, `demo`): exactly one entry is.
    default: bool = False
    # The ways a connection to this CRM may sign in; the first is the default ("token": the token in
    # `token_env`). The connector carries out any other (see `Connection.auth`).
    auth_kinds: tuple[AuthKind, ...] = (TOKEN_AUTH_KIND,)

    def __post_init__(self) -> None:
        if self.vocabulary.provider != self.name:
            raise ValueError(f"provider {self.name!r} carries the vocabulary of {self.vocabulary.provider!r}")


def import_part(module: str, what: str) -> Any:
    """`module`, imported when a factory first needs it; BadInput "<what> is not built yet" while the
    module does not exist (a provider may be registered before its connector or sandbox is written)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise BadInput(f"{what} is not built yet") from None


@functools.cache
def _registry() -> dict[str, Provider]:
    found: dict[str, Provider] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        entry = getattr(module, "PROVIDER", None)
        if not isinstance(entry, Provider):
            raise TypeError(f"{module.__name__} defines no PROVIDER = Provider(...)")
        if entry.name != module_info.name:
            raise TypeError(f"{module.__name__} defines provider {entry.name!r}: name the module after it")
        taken = [p.name for p in found.values() if p.builtin_connection == entry.builtin_connection]
        if taken:
            raise TypeError(
                f"providers {taken[0]} and {entry.name} share built-in connection {entry.builtin_connection}"
            )
        found[entry.name] = entry
    defaults = [p.name for p in found.values() if p.default]
    if len(defaults) != 1:
        raise TypeError(f"exactly one provider must be the default, not {defaults or 'none'}")
    return found


def names() -> tuple[str, ...]:
    """Every provider's name, sorted."""
    return tuple(_registry())


def all() -> tuple[Provider, ...]:
    return tuple(_registry().values())


def get(name: str) -> Provider:
    """The provider called `name`; BadInput naming the known ones otherwise."""
    entry = _registry().get(name)
    if entry is None:
        raise BadInput(f"unknown provider {_shown(name)}: use one of {', '.join(names())}")
    return entry


def default() -> Provider:
    """The provider a command takes when none is named."""
    return next(p for p in _registry().values() if p.default)


def by_builtin_connection(name: str) -> Provider | None:
    """The provider whose built-in sandbox connection is called `name`, if any."""
    return next((p for p in _registry().values() if p.builtin_connection == name), None)


def builtin_connections() -> tuple[str, ...]:
    return tuple(p.builtin_connection for p in _registry().values())


_WORD = re.compile(r"[A-Za-z0-9_.+-]{1,20}")


def _shown(name: str) -> str:
    # A provider name is a short word; anything else may be a pasted secret, so it is not repeated.
    return repr(name) if _WORD.fullmatch(name) else "(not shown)"


__all__ = [
    "ConnectorFactory",
    "Provider",
    "SandboxDetails",
    "SandboxFactory",
    "SandboxHandle",
    "all",
    "builtin_connections",
    "by_builtin_connection",
    "default",
    "get",
    "import_part",
    "names",
]
