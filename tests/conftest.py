"""Fixtures shared by several test modules: the sandbox and its workspace (connection "flaky"), the test pass."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from crmsweep import api
from crmsweep.cleanup.passes import PASSES
from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.plans import TEST_PASS, TEST_PASS_NAME
from tests.seeded_states import SeededStates, seeded_states

__all__ = ["seeded_states"]  # fixture, for every module

TOKEN_ENV = "FAULTS_TEST_TOKEN"

# The README's `pytest -n auto` shares two cores with sandboxes on a small machine: a 200 ms wall-clock
# deadline per example then fails a property test for the machine's load, not for the code's behaviour.
settings.register_profile("crmsweep", deadline=None)
settings.load_profile("crmsweep")


@pytest.fixture()
def sandbox(tmp_path: Path, seeded_states: SeededStates) -> Iterator[RunningSandbox]:
    state = seeded_states.copy_to(tmp_path / "state", provider="salesforce", records=250, seed=21)
    with start_sandbox(state, records=250, seed=21) as running:
        yield running


@pytest.fixture()
def ws(sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> api.Workspace:
    info = sandbox.info
    config = tmp_path / "crmsweep.toml"
    config.write_text(
        "[connections.flaky]\n"
        'provider = "salesforce"\n'
        f'url = "{info.url}"\n'
        f'token_env = "{TOKEN_ENV}"\n'
        f'ca_file = "{info.ca_file}"\n\n'
        "[retry]\nattempts = 4\ninitial_wait = 0.01\nmax_wait = 0.05\n",
        encoding="utf-8",
    )
    monkeypatch.setenv(TOKEN_ENV, info.token)
    return api.Workspace.load(config, tmp_path / "home")


@pytest.fixture
def test_pass_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """`test_pass` in the pass registry for one test, so plans under it pass the provenance checks."""
    monkeypatch.setitem(PASSES, TEST_PASS_NAME, TEST_PASS)
