"""tests (red team, held): the org's lock refuses a rollback while another plan's apply writes to the org from the
same home, nothing written; a dry run of it still reads; the lock gone (its holder ended), the rollback runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsweep import api
from crmsweep.backup.runlog import org_lock
from crmsweep.errors import SafetyRefusal
from crmsweep.sandbox.server import start_sandbox
from tests.test_apply_live import other_admin
from tests.test_protected_cascade_at_apply import configure, deleted, yes


def test_a_rollback_is_refused_while_another_apply_writes_to_the_org(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        ws = configure(sandbox, "", tmp_path, monkeypatch)
        plan = api.scan(ws, "org", tmp_path / "plan.json", passes=["no_contact_info"], allow_over_cap=True).result.plan
        people = sorted(c.record_id for c in plan.changes if c.object == "Contact")
        report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
        assert report is not None and report.failed == 0
        sf = other_admin(sandbox)
        with org_lock(ws.home, plan.header.provider, plan.header.org_id):
            with pytest.raises(SafetyRefusal) as refused:
                api.rollback(ws, report.run_id, confirm=yes)
            assert str(refused.value).startswith("another apply or rollback (pid ")
            assert f"is writing to salesforce org {plan.header.org_id} from this home" in str(refused.value)
            assert deleted(sf, "Contact", people) == dict.fromkeys(people, True)
            dry = api.rollback(ws, report.run_id, confirm=yes, dry_run=True).report
            assert dry is not None and dry.dry_run
        undone = api.rollback(ws, report.run_id, confirm=yes).report
        assert undone is not None and undone.failed == 0
        assert deleted(sf, "Contact", people) == dict.fromkeys(people, False)
