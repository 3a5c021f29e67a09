"""A plan file begun while its scan waits for a report-only pass (crmsweep/plan_writing.py, issue 7: the scan's
wall time) is the very file written at the end without it, signed; and a draft never outlives a failed scan."""

from __future__ import annotations

import fcntl
import io
import operator
import os
import stat
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import pytest

from crmsweep import api, model, plan_writing
from crmsweep.cleanup import plan_auth
from crmsweep.cleanup import scan as scan_module
from crmsweep.cleanup.passes import PASSES, PassContext, PassOutput
from crmsweep.cleanup.plan_auth import Trust, signed_json, trust_of
from crmsweep.cleanup.plan_checks import read_plan_file
from crmsweep.errors import BadInput, SafetyRefusal
from crmsweep.model import Change, Plan
from crmsweep.paths import Home
from crmsweep.plan_writing import PlanDraft, write_plan
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY
from crmsweep.sandbox.server import RunningSandbox
from tests.test_passes import NOW
from tests.test_scan_beside import WAIT, _register, _spec
from tests.test_scan_core import _org


def _drafts(folder: Path) -> list[str]:
    """The plan drafts in `folder` (each named for itself: `.plan.json.<pid>-<random>.tmp`)."""
    return [p.name for p in folder.glob(".plan.json.*.tmp")]


def _scan(passes: list[str] | None = None, **extra: Any) -> Plan:
    result = scan_module.scan_snapshot(
        _org(), vocabulary=SALESFORCE_VOCABULARY, passes=passes, pass_settings={}, protect_recent_days=30,
        protect_objects=(), protect_ids=(), max_changes=None, max_changes_per_object=None, allow_over_cap=True,
        connection="c", config_digest="", now=NOW, **extra)
    assert result.plan.changes and result.plan.header.review  # changes, and the duplicates' findings in the header
    return result.plan


def _folder(tmp_path: Path) -> tuple[Home, Path]:
    (tmp_path / "plans").mkdir()
    return Home(tmp_path / "home"), tmp_path / "plans" / "plan.json"


def test_a_plan_begun_ahead_is_the_file_written_whole_and_nothing_else_is_left(tmp_path: Path) -> None:
    home, output = _folder(tmp_path)
    plan = _scan()
    output.write_text("the old plan")
    with PlanDraft(output, home) as draft:
        draft.begin(plan.changes)
        # Until it is written, the plan is a draft beside the old one, which is left as it was; only its owner reads it.
        (draft_name,) = _drafts(output.parent)
        assert sorted(os.listdir(output.parent)) == [draft_name, "plan.json"]
        assert stat.S_IMODE((output.parent / draft_name).stat().st_mode) == 0o600
        assert output.read_text() == "the old plan"
        draft.write(plan)
    assert output.read_text() == signed_json(plan, home)
    assert sorted(os.listdir(output.parent)) == ["plan.json"]
    parsed, _text = read_plan_file(output)
    assert trust_of(parsed, home) is Trust.SIGNED and parsed.plan.changes == plan.changes


def test_a_plan_whose_changes_are_not_those_begun_is_written_whole(tmp_path: Path) -> None:
    home, output = _folder(tmp_path)
    plan = _scan()
    for begun in ([replace(change) for change in plan.changes], list(plan.changes)[:-1]):
        with PlanDraft(output, home) as draft:
            draft.begin(begun)  # equal changes, but not these objects; or one fewer
            draft.write(plan)
        assert output.read_text() == signed_json(plan, home)
        assert sorted(os.listdir(output.parent)) == ["plan.json"]
    out = io.BytesIO()
    with pytest.raises(ValueError, match="begun with other changes"):
        plan.write_json(out, begun=model.begin_plan_file(out, begun))


def test_a_draft_not_written_is_removed_and_the_old_plan_kept(tmp_path: Path) -> None:
    home, output = _folder(tmp_path)
    output.write_text("the old plan")
    with pytest.raises(RuntimeError, match="the scan failed"), PlanDraft(output, home) as draft:
        draft.begin(_scan().changes)
        raise RuntimeError("the scan failed")
    assert sorted(os.listdir(output.parent)) == ["plan.json"] and output.read_text() == "the old plan"


def test_a_draft_that_cannot_be_begun_leaves_the_plan_to_be_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, output = _folder(tmp_path)
    plan = _scan()

    def full_disk(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    with PlanDraft(output, home) as draft:
        monkeypatch.setattr(plan_writing, "begin_plan_file", full_disk)
        draft.begin(plan.changes)
        assert os.listdir(output.parent) == []  # nothing half-begun left
        monkeypatch.undo()
        draft.write(plan)
    assert output.read_text() == signed_json(plan, home)


def test_a_disk_full_when_the_header_is_written_leaves_the_old_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, output = _folder(tmp_path)
    plan = _scan()
    output.write_text("the old plan")
    real = plan_auth.write_signed

    def header_on_a_full_disk(plan: Plan, handle: IO[bytes], home: Home, **how: Any) -> None:
        assert how["begun"] is not None  # the header goes after the changes begun
        raise OSError(28, "No space left on device")

    with PlanDraft(output, home) as draft:
        draft.begin(plan.changes)
        monkeypatch.setattr(plan_writing, "write_signed", header_on_a_full_disk)
        with pytest.raises(BadInput, match=f"cannot write the plan to {output}: No space left on device"):
            draft.write(plan)
    assert sorted(os.listdir(output.parent)) == ["plan.json"] and output.read_text() == "the old plan"
    monkeypatch.setattr(plan_writing, "write_signed", real)
    write_plan(plan, output, home)
    assert output.read_text() == signed_json(plan, home)


def test_the_scan_hands_over_its_final_changes_only_while_a_pass_beside_still_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handed: list[list[Change]] = []
    waiting = threading.Event()

    def twins(ctx: PassContext) -> PassOutput:
        # Ends only once the changes were handed over: the scan hands them over while it would wait for this pass.
        assert waiting.wait(WAIT)
        return PassOutput(changes=[])

    def meanwhile(changes: Sequence[Change]) -> None:
        handed.append(list(changes))
        waiting.set()

    _register(monkeypatch, _spec("twins", 902, twins, report_only=True))
    plan = _scan(while_waiting=meanwhile)
    assert len(handed) == 1 and len(handed[0]) == len(plan.changes)
    assert all(map(operator.is_, plan.changes, handed[0]))  # the plan's very changes, in its order

    # With no pass beside (none report-only), nothing is handed over: there is no wait to use.
    handed.clear()
    scan_module.scan_snapshot(
        _org(), vocabulary=SALESFORCE_VOCABULARY, passes=["stale_contacts", "no_contact_info"], pass_settings={},
        protect_recent_days=30, protect_objects=(), protect_ids=(), max_changes=None, max_changes_per_object=None,
        allow_over_cap=True, connection="c", config_digest="", now=NOW, while_waiting=meanwhile)
    assert handed == []


def test_a_refused_scan_hands_nothing_over(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def twins(ctx: PassContext) -> PassOutput:
        assert release.wait(WAIT)
        return PassOutput(changes=[])

    _register(monkeypatch, _spec("twins", 902, twins, report_only=True))
    handed: list[Any] = []
    timer = threading.Timer(0.2, release.set)  # twins still runs when the caps are judged
    timer.start()
    try:
        with pytest.raises(SafetyRefusal, match="max_changes"):
            scan_module.scan_snapshot(
                _org(), vocabulary=SALESFORCE_VOCABULARY, passes=None, pass_settings={}, protect_recent_days=30,
                protect_objects=(), protect_ids=(), max_changes=1, max_changes_per_object=None,
                allow_over_cap=False, connection="c", config_digest="", now=NOW, while_waiting=handed.append)
    finally:
        timer.cancel()
        release.set()
    assert handed == []


def test_crmsweep_scan_writes_the_changes_while_duplicates_runs_and_the_file_is_its_signed_plan(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    begun = threading.Event()
    real_begin = PlanDraft.begin
    seen: list[bool] = []

    def begin(self: PlanDraft, changes: Any) -> None:
        real_begin(self, changes)
        seen.append(sorted(os.listdir(tmp_path / "plans")) == _drafts(tmp_path / "plans") != [])
        begun.set()

    real_duplicates = PASSES["duplicates"]

    def late_duplicates(ctx: PassContext) -> PassOutput:
        assert begun.wait(WAIT)  # still running when the other passes are done
        return real_duplicates.run(ctx)

    monkeypatch.setattr(PlanDraft, "begin", begin)
    monkeypatch.setitem(PASSES, "duplicates", replace(real_duplicates, run=late_duplicates))
    (tmp_path / "plans").mkdir()
    output = tmp_path / "plans" / "plan.json"
    outcome = api.scan(ws, "flaky", output, allow_over_cap=True)
    plan = outcome.result.plan
    assert seen == [True] and plan.changes  # begun once, as the folder's only file
    assert output.read_text() == signed_json(plan, ws.home)
    assert sorted(os.listdir(output.parent)) == ["plan.json"]
    parsed, _text = read_plan_file(output)
    assert trust_of(parsed, ws.home) is Trust.SIGNED


def test_two_writers_of_one_plan_at_once_each_put_a_whole_plan_in_place(tmp_path: Path) -> None:
    """A second scan to the same file while the first is waiting: neither removes nor replaces the other's draft."""
    home, output = _folder(tmp_path)
    first, second = _scan(), _scan(passes=["stale_contacts", "duplicates"])
    with PlanDraft(output, home) as one, PlanDraft(output, home) as two:
        one.begin(first.changes)
        two.begin(second.changes)
        assert len(_drafts(output.parent)) == 2
        two.write(second)
        assert output.read_text() == signed_json(second, home)
        one.write(first)
    assert output.read_text() == signed_json(first, home)
    assert sorted(os.listdir(output.parent)) == ["plan.json"]


def test_a_draft_its_writer_left_behind_is_removed_by_the_next_write_and_a_live_one_kept(tmp_path: Path) -> None:
    """A kill -9 leaves its draft (before-images); the next write of that plan removes it, but never the draft of a
    writer still at work (it holds its draft's lock), nor one just made (empty: not locked yet), nor another
    file's. One with content its writer left a moment ago is removed too: it was locked before its first byte."""
    home, output = _folder(tmp_path)
    old = time.time() - 3600
    folder = output.parent
    abandoned, live, young, other = (folder / ".plan.json.deadbeef.tmp", folder / ".plan.json.0a0a0a0a.tmp",
                                     folder / ".plan.json.0b0b0b0b.tmp", folder / ".other.json.deadbeef.tmp")
    just_killed = folder / ".plan.json.0c0c0c0c.tmp"
    for draft in (abandoned, live, young, other, just_killed):
        draft.write_text("" if draft is young else "before-images")
        draft.chmod(0o600)
    for draft in (abandoned, live, other):
        os.utime(draft, (old, old))
    with open(live, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # its writer, still at work
        write_plan(_scan(), output, home)
        assert sorted(os.listdir(folder)) == sorted([live.name, young.name, other.name, "plan.json"])
    write_plan(_scan(), output, home)  # its writer gone now, the lock with it
    assert sorted(os.listdir(folder)) == sorted([young.name, other.name, "plan.json"])


def test_a_plan_folder_not_there_yet_is_made_only_when_the_plan_is_written(tmp_path: Path) -> None:
    home, output = Home(tmp_path / "home"), tmp_path / "new" / "deeper" / "plan.json"
    plan = _scan()
    with pytest.raises(RuntimeError, match="the scan failed"), PlanDraft(output, home) as draft:
        draft.begin(plan.changes)
        raise RuntimeError("the scan failed")
    assert not (tmp_path / "new").exists()  # a failed scan leaves no folders behind
    with PlanDraft(output, home) as draft:
        draft.begin(plan.changes)
        draft.write(plan)
    assert output.read_text() == signed_json(plan, home)
