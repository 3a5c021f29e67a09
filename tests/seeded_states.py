"""Seeded sandbox state folders, seeded once per test process and copied for each test that starts from one.

A sandbox's first start seeds its state folder (certificates, token, SQLite state, planted.json); seeding
was most of what the per-test `sandbox` and `hubspot_sandbox` fixtures cost, repeated for a hundred and
fifty tests with the same (provider, records, seed). A copy of a folder seeded once is the state a first
start would have left, byte for byte, but for the anchor time the seed dates everything from: it is the
template's, minutes older than the test. Every seeded age keeps a margin of weeks from any cut-off
(hubspot_seed_assets.MARGIN, seed_candidates), and tests that date things from the seed read the anchor
from the store, so those minutes change no outcome. Each test still gets its own folder: nothing it
writes reaches another test.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from crmsweep.sandbox.apis import sandbox_provider
from crmsweep.sandbox.server import open_state


class SeededStates:
    """Templates under `root`, one per (provider, records, seed), made on first use."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._made: dict[tuple[str, int, int], Path] = {}

    def copy_to(self, state_dir: Path, *, provider: str, records: int, seed: int) -> Path:
        """`state_dir` (which must not exist yet) as a first sandbox start with these arguments leaves it."""
        key = (provider, records, seed)
        template = self._made.get(key)
        if template is None:
            template = self._root / f"{provider}-{records}-{seed}"
            # What start_sandbox does before it serves: the same seeding, with nothing served or counted.
            _files, _token, store = open_state(template, sandbox_provider(provider), records=records, seed=seed,
                                               reset=False)
            store.close()
            self._made[key] = template
        shutil.copytree(template, state_dir, symlinks=True)
        return state_dir


@pytest.fixture(scope="session")
def seeded_states(tmp_path_factory: pytest.TempPathFactory) -> SeededStates:
    """Per test process (each xdist worker has its own): the seeded folders tests copy."""
    return SeededStates(tmp_path_factory.mktemp("seeded"))
