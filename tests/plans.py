"""Plans in tests are written the way crmsweep writes them: signed by the home that applies them.

Tests that build a plan by hand sign it through `plan_auth.signed_json`, the code path every plan
crmsweep writes goes through, so no check is skipped or weakened for them. `TEST_PASS` is a pass
that proposes what the engine tests need (deletes, updates, deactivations); a test registers it
with the `test_pass_registered` fixture (tests/conftest.py), as a real pass registers in
crmsweep/cleanup/passes.
"""

from __future__ import annotations

from pathlib import Path

from crmsweep.cleanup.passes import ANY_VALUE, PassContext, PassOutput, PassSpec, Proposal
from crmsweep.cleanup.plan_auth import signed_json
from crmsweep.model import Op, Plan
from crmsweep.paths import Home

TEST_PASS_NAME = "test_pass"


def _proposes_nothing(ctx: PassContext) -> PassOutput:
    return PassOutput(changes=[])


TEST_PASS = PassSpec(
    name=TEST_PASS_NAME,
    summary="Changes made by hand for a test.",
    order=99,
    defaults={},
    run=_proposes_nothing,
    proposes=(
        # Invoice__c: an object the test snapshots lack, so the snapshot check (not this one) is what refuses it.
        Proposal(Op.DELETE, objects=lambda v: ("Contact", "Account", "Invoice__c")),
        Proposal(Op.ARCHIVE, objects=lambda v: ("Contact",)),
        Proposal(Op.UPDATE, objects=lambda v: ("Contact",),
                 writes=lambda v: {"Email": ANY_VALUE, "Score": ANY_VALUE, "LastName": ANY_VALUE}),
        Proposal(Op.UPDATE, objects=lambda v: ("User",), writes=lambda v: {"Name": ANY_VALUE}),
        Proposal(Op.DEACTIVATE, objects=lambda v: ("User",), writes=lambda v: {"IsActive": False}),
    ),
)


def signed(plan: Plan, home: Home) -> tuple[Plan, str]:
    """The plan and its file text, signed by `home` (what `apply_plan` takes)."""
    return plan, signed_json(plan, home)


def write_signed(path: Path, plan: Plan, home: Home) -> Path:
    path.write_text(signed_json(plan, home), encoding="utf-8")
    return path
