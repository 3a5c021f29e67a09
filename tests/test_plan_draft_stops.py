"""A plan draft stopped part way: no draft (personal data) left, no signal handler left (crmsweep/plan_writing.py)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from crmsweep import model
from crmsweep.plan_writing import PlanDraft
from tests.test_plan_writing import _drafts, _folder, _scan


def test_a_sigterm_while_the_changes_are_begun_leaves_no_draft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scheduler's `timeout` (SIGTERM) landing while the draft's changes are encoded: the draft (before-images:
    personal data) must be removed, and the SIGTERM handler put back."""
    home, output = _folder(tmp_path)
    plan = _scan()
    real = model._joined_texts
    calls = []

    def then_stopped(batch: Any, **kw: Any) -> Any:
        texts = real(batch, **kw)
        calls.append(1)
        os.kill(os.getpid(), signal.SIGTERM)  # becomes KeyboardInterrupt while the draft is open
        return texts

    before = signal.getsignal(signal.SIGTERM)
    if before != signal.SIG_DFL:
        pytest.skip("SIGTERM is handled by someone else here: the draft leaves it as it is")
    monkeypatch.setattr(model, "_joined_texts", then_stopped)
    with pytest.raises(KeyboardInterrupt), PlanDraft(output, home) as draft:
        draft.begin(plan.changes)
    monkeypatch.undo()
    assert calls
    left = [(name, (output.parent / name).stat().st_size) for name in _drafts(output.parent)]
    handler = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, before)
    assert left == []
    assert handler == before

