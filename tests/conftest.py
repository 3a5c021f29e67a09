"""Fixtures shared by several test modules."""

from __future__ import annotations

import pytest

from crmsweep.cleanup.passes import PASSES
from tests.plans import TEST_PASS, TEST_PASS_NAME


@pytest.fixture
def test_pass_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """`test_pass` in the pass registry for one test, so plans under it pass the provenance checks."""
    monkeypatch.setitem(PASSES, TEST_PASS_NAME, TEST_PASS)
