"""The HubSpot sandbox's entry for the provider registry (`providers/hubspot.py`): the one core's
`start_sandbox` with the HubSpot API (`hubspot_api.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crmsweep.sandbox.server import RunningSandbox
from crmsweep.sandbox.server import start_sandbox as start_core


def start_sandbox(state_dir: Path, /, **options: Any) -> RunningSandbox:
    return start_core(state_dir, provider="hubspot", **options)
