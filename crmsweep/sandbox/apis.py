"""The sandbox-side table of provider APIs: which module serves which CRM.

The sandbox is a separate world, reached by the product only over HTTP: this table names sandbox
modules, never the product's connectors. Each module exposes `SANDBOX`, a
`provider_api.SandboxProvider`; it is imported only when that provider is started, so the core
never loads a provider it does not serve.
"""

from __future__ import annotations

import importlib

from crmsweep.errors import BadInput
from crmsweep.sandbox.provider_api import SandboxProvider

SANDBOX_APIS: dict[str, str] = {
    "salesforce": "crmsweep.sandbox.salesforce_api",
}


def names() -> tuple[str, ...]:
    return tuple(SANDBOX_APIS)


def sandbox_provider(name: str) -> SandboxProvider:
    """The provider's sandbox API; BadInput naming the ones there are when it has none."""
    module = SANDBOX_APIS.get(name)
    if module is None:
        raise BadInput(f"the sandbox has no API for provider {name!r} yet; it serves {', '.join(SANDBOX_APIS)}")
    provider: SandboxProvider = importlib.import_module(module).SANDBOX
    return provider
