"""Not knowing the user the connection runs as, no plan that changes users gets out of a scan: the scan
refuses to write one, and `plan accept`, which re-runs the scan, refuses one written by hand. So the note a
scan once added to such a plan ("could not tell which user this connection runs as") could never be
reached, and is gone."""

from __future__ import annotations

import pytest

from crmsweep.cleanup.passes import PASSES
from crmsweep.cleanup.rescan import rescan_problems
from crmsweep.cleanup.scan import ScanResult, scan_snapshot
from crmsweep.errors import SafetyRefusal
from tests.fake_connector import FAKE_VOCABULARY
from tests.test_passes import NOW, make_view
from tests.test_scan import scan

SOMEONE = "005000000000099AAA"  # a user id no snapshot holds

USERS = FAKE_VOCABULARY.user_object


def scan_not_knowing_the_user(passes: list[str]) -> ScanResult:
    return scan_snapshot(
        make_view(), vocabulary=FAKE_VOCABULARY, passes=passes, pass_settings={}, protect_recent_days=30,
        protect_objects=(), protect_ids=(), max_changes=None, max_changes_per_object=None, allow_over_cap=False,
        connection="sandbox-salesforce", config_digest="sha256:config", now=NOW, running_user_id=None,
        running_user_unknown=True)


@pytest.mark.parametrize("passes", [[name] for name in PASSES] + [list(PASSES)], ids=lambda p: "+".join(p))
def test_a_scan_not_knowing_the_user_writes_no_plan_that_changes_users(passes: list[str]) -> None:
    known = scan(passes=passes, running_user_id=SOMEONE)
    changes_users = any(c.object == USERS for c in known.plan.changes)
    if changes_users:
        with pytest.raises(SafetyRefusal, match="cannot tell which user connection 'sandbox-salesforce' runs as"):
            scan_not_knowing_the_user(passes)
    else:
        result = scan_not_knowing_the_user(passes)
        assert [c.record_id for c in result.plan.changes] == [c.record_id for c in known.plan.changes]


def test_the_inactive_users_pass_changes_users_on_this_snapshot() -> None:
    # Else the test above would prove nothing: some pass must propose users here.
    assert any(c.object == USERS for c in scan(passes=["inactive_users"]).plan.changes)


def test_a_plan_changing_users_is_refused_at_accept_when_the_user_is_unknown() -> None:
    plan = scan(passes=["stale_contacts", "inactive_users"], running_user_id=SOMEONE).plan
    assert any(c.object == USERS for c in plan.changes)

    def problems(running_user_id: str | None) -> list[str]:
        return rescan_problems(plan, make_view(), vocabulary=FAKE_VOCABULARY, protect_recent_days=30,
                               protect_objects=(), protect_ids=(), running_user_id=running_user_id, now=NOW)

    assert problems(SOMEONE) == []
    with pytest.raises(SafetyRefusal, match="cannot tell which user"):
        problems(None)
