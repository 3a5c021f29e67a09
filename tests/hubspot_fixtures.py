"""The HubSpot sandbox for tests, and hubspot-api-client pointed at it (api-notes §1.4-1.5)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot

from crmsweep.sandbox.server import RunningSandbox, start_sandbox

RECORDS = 250
SEED = 21
DAILY = 625_000  # Professional (api-notes §4.1)


def sdk_client(sandbox: RunningSandbox, *, token: str | None = None) -> Any:
    """The real SDK, unmodified: the sandbox's URL as host and its CA file for TLS."""
    info = sandbox.info
    return HubSpot(access_token=token or info.token, host=info.url, ssl_ca_cert=str(info.ca_file))


@pytest.fixture()
def hubspot_sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path / "hubspot", provider="hubspot", records=RECORDS, seed=SEED,
                       api_limit=DAILY) as running:
        yield running


@pytest.fixture()
def hs(hubspot_sandbox: RunningSandbox) -> Any:
    return sdk_client(hubspot_sandbox)
