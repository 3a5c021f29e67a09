"""The apply estimate against the calls really made, on a plan holding every pass's changes (the default
seeded sandbox of each provider): applied, rolled back, and both as dry runs. The `[budget] reserve`
check refuses by the estimate, so an estimate below the calls lets a run spend what the admin reserved:
it must cover `api_calls` (the JSON answer's figure), and stay within 1.6x of it (upper bounds for the
calls no cheap request can tell ahead, such as a HubSpot property read re-describing its object type).
Measured on the default seed (estimate / made): HubSpot apply 180/137, its dry run 94/68, rollback
147/129, its dry run 53/53, apply of the rollback plan 131/113; Salesforce 106/89, 57/47, 70/56, 21/21,
64/50.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsweep import api
from crmsweep.model import Plan
from crmsweep.providers import names as provider_names
from crmsweep.sandbox.server import start_sandbox
from tests.sandbox_workspace import org_workspace
from tests.test_planted_passes import SETTINGS

TOKEN_ENV = "BUDGET_EVERY_PASS_TOKEN"
FIELDS = "\n[passes.unused_custom_fields]\nmax_fill = 0.5\n"  # filled fields too: the rollback writes values
CEILING = 1.6


def yes(plan: Plan) -> bool:
    return True


def held(outcome: api.ApplyOutcome) -> tuple[int, int]:
    assert outcome.report is not None and outcome.budget is not None
    return outcome.budget.to_dict()["estimated_calls"], outcome.report.api_calls


@pytest.mark.parametrize("undo", ["rollback", "apply of rollback -o"])
@pytest.mark.parametrize("provider", provider_names())
def test_estimates_cover_the_calls_of_every_pass_applied_and_rolled_back(provider: str, undo: str, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with start_sandbox(tmp_path / "state", provider=provider) as sandbox:
        ws = org_workspace(sandbox.info, tmp_path, monkeypatch, provider=provider, token_env=TOKEN_ENV,
                           extra=SETTINGS[provider] + FIELDS)
        plan_file = tmp_path / "plan.json"
        api.scan(ws, "org", plan_file, snapshot_id=api.backup(ws, "org").snapshot_id, allow_over_cap=True)
        figures = {"apply --dry-run": held(api.apply(ws, plan_file, confirm=yes, dry_run=True))}
        applied = api.apply(ws, plan_file, confirm=yes)
        figures["apply"] = held(applied)
        assert applied.report is not None and applied.report.failed == 0
        run = applied.report.run_id
        figures["rollback --dry-run"] = held(api.rollback(ws, run, confirm=yes, dry_run=True))
        if undo == "rollback":
            figures[undo] = held(api.rollback(ws, run, confirm=yes))
        else:  # the inverse plan written for review, then applied: its recycle-bin reads are not in this apply
            api.rollback(ws, run, confirm=yes, output=tmp_path / "undo.json")
            figures[undo] = held(api.apply(ws, tmp_path / "undo.json", confirm=yes))
    low = {k: v for k, v in figures.items() if v[0] < v[1]}
    assert not low, f"estimated_calls below api_calls (estimate, made): {low}"
    high = {k: v for k, v in figures.items() if v[0] > CEILING * v[1]}
    assert not high, f"estimated_calls over {CEILING}x api_calls (estimate, made): {high}"
