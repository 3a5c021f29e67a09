"""A report-only pass runs on a worker beside the passes after it (issue 7: the scan's wall time), and the plan is
the one a scan in order makes: its findings, notes and errors in its place, its columns kept while it reads."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from crmsweep.backup.snapshot_reader import SnapshotReader, open_snapshot
from crmsweep.cleanup import passes as passes_module
from crmsweep.cleanup import scan as scan_module
from crmsweep.cleanup.passes import PASSES, ObjectRead, PassContext, PassOutput, PassSpec
from crmsweep.cleanup.shared_columns import SharedColumns
from crmsweep.cleanup.view import ViewOver
from crmsweep.errors import BadInput
from crmsweep.model import ReviewItem
from crmsweep.paths import Home
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY
from tests.test_passes import NOW as _NOW
from tests.test_scan_core import _org, _scan, counting
from tests.test_snapshot import make_fake, snap

# Long enough never to be reached by a passing test, short enough that a broken one ends.
WAIT = 30.0


class InOrder:
    """`scan._Background` as a scan in order runs it: the work at once, on the caller's thread."""

    def __init__(self, work: Callable[[], Any]) -> None:
        try:
            self._outcome, self._error = work(), None
        except Exception as exc:
            self._outcome, self._error = None, exc

    def done(self) -> bool:
        return True

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._outcome


def _spec(name: str, order: int, run: Callable[[PassContext], PassOutput], *, report_only: bool = False,
          reads: Sequence[ObjectRead] = ()) -> PassSpec:
    return PassSpec(name=name, summary="x", order=order, defaults={}, run=run, report_only=report_only,
                    reads=lambda _vocabulary: reads)


def _register(monkeypatch: pytest.MonkeyPatch, *specs: PassSpec) -> list[str]:
    """These passes, in this order, after the registered ones (a scan runs the registry's order)."""
    registry = {**PASSES, **{spec.name: spec for spec in specs}}
    monkeypatch.setattr(passes_module, "PASSES", registry)
    monkeypatch.setattr(scan_module, "PASSES", registry)
    return [spec.name for spec in specs]


def _only(names: list[str]) -> Any:
    return scan_module.scan_snapshot(
        _org(), vocabulary=SALESFORCE_VOCABULARY, passes=names, pass_settings={}, protect_recent_days=0,
        protect_objects=(), protect_ids=(), max_changes=None, max_changes_per_object=None, allow_over_cap=True,
        connection="c", config_digest="", now=_NOW)


def test_every_registered_pass_plans_as_a_scan_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    beside = _scan(_org())
    monkeypatch.setattr(scan_module, "_Background", InOrder)
    in_order = _scan(_org())
    assert beside.plan.changes and beside.plan.header.review  # duplicates finds the org's twins
    assert beside.plan.with_header(plan_id="x").digest == in_order.plan.with_header(plan_id="x").digest
    assert (beside.per_pass, beside.held_back, beside.skipped) == (in_order.per_pass, in_order.held_back,
                                                                   in_order.skipped)
    assert list(beside.per_pass) == list(in_order.per_pass)


def test_a_late_finding_pass_keeps_its_place_and_its_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    later_ran = threading.Event()
    seen: list[pd.DataFrame] = []

    def twins(ctx: PassContext) -> PassOutput:
        seen.append(ctx.view.frame("Contact", ["Id", "Email"]))
        # Finishes only after the pass after it: its outcome arrives last and must still land in its place.
        assert later_ran.wait(WAIT)
        seen.append(ctx.view.frame("Contact", ["Id", "Email"]))
        return PassOutput(changes=[], notes=["twins note"],
                          review=[ReviewItem("twins", "Contact", ("a", "b"), "same email", 1.0, ("A", "B"))])

    def first(ctx: PassContext) -> PassOutput:
        return PassOutput(changes=[], notes=["first note"])

    def later(ctx: PassContext) -> PassOutput:
        ctx.view.frame("Account", ["Id"])
        later_ran.set()
        return PassOutput(changes=[], notes=["later note"])

    names = _register(
        monkeypatch,
        _spec("first", 901, first),
        _spec("twins", 902, twins, report_only=True, reads=(ObjectRead("Contact", ("Id", "Email")),)),
        _spec("later", 903, later, reads=(ObjectRead("Account", ("Id",)),)),
    )
    base = counting(_org())
    result = scan_module.scan_snapshot(
        base, vocabulary=SALESFORCE_VOCABULARY, passes=names, pass_settings={}, protect_recent_days=30,
        protect_objects=(), protect_ids=(), max_changes=None, max_changes_per_object=None, allow_over_cap=True,
        connection="c", config_digest="", now=_NOW)
    assert list(result.plan.header.notes) == ["first: first note", "twins: twins note", "later: later note"]
    assert [item.pass_name for item in result.plan.header.review] == ["twins"]
    assert list(result.per_pass) == names
    # The later pass let go of what it does not read, but not of what the pass still running reads: its second
    # frame is the first one, not a second read of the snapshot.
    pd.testing.assert_frame_equal(seen[0], seen[1])
    assert base.asked.count(("Contact", "Email")) == 1


def test_the_error_of_a_pass_still_running_is_the_one_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    later_ran = threading.Event()

    def twins(ctx: PassContext) -> PassOutput:
        assert later_ran.wait(WAIT)
        raise BadInput("twins cannot run")

    def later(ctx: PassContext) -> PassOutput:
        later_ran.set()
        raise BadInput("later cannot run")

    names = _register(monkeypatch, _spec("twins", 902, twins, report_only=True), _spec("later", 903, later))
    # A scan in order would have stopped at twins: its error, not the later pass's.
    with pytest.raises(BadInput, match="twins cannot run"):
        _only(names)


def test_an_error_of_a_pass_beside_is_raised_when_the_scan_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    def twins(ctx: PassContext) -> PassOutput:
        raise BadInput("twins cannot run")

    ran: list[str] = []

    def later(ctx: PassContext) -> PassOutput:
        ran.append("later")
        return PassOutput(changes=[])

    names = _register(monkeypatch, _spec("twins", 902, twins, report_only=True), _spec("later", 903, later))
    with pytest.raises(BadInput, match="twins cannot run"):
        _only(names)


def test_a_report_only_pass_that_proposes_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # stale_contacts under another name, said to be report-only: it proposes the org's stale contacts.
    proposing = replace(PASSES["stale_contacts"], name="twins", order=902, report_only=True, proposes=())
    names = _register(monkeypatch, proposing)
    with pytest.raises(RuntimeError, match="twins is report-only but proposed"):
        _only(names)


def test_ctrl_c_does_not_wait_for_a_pass_beside(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def twins(ctx: PassContext) -> PassOutput:
        release.wait(WAIT)
        return PassOutput(changes=[])

    def later(ctx: PassContext) -> PassOutput:
        raise KeyboardInterrupt

    names = _register(monkeypatch, _spec("twins", 902, twins, report_only=True), _spec("later", 903, later))
    try:
        with pytest.raises(KeyboardInterrupt):
            _only(names)
        # Raised while twins still runs: the scan did not wait for it.
        assert any(t.name == "crmsweep-pass" and t.is_alive() for t in threading.enumerate())
    finally:
        release.set()


# --- columns read ahead -----------------------------------------------------------------------------------


class GatedReader(ViewOver):
    """A snapshot view whose reads of `gated` wait for `gate`, noting every (object, column) read."""

    def __init__(self, base: Any, gated: str) -> None:
        super().__init__(base)
        self.gated, self.gate, self.started = gated, threading.Event(), threading.Event()
        self.asked: list[tuple[str, str]] = []

    def frame(self, object_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        names = [s.name for s in self.fields(object_name)] if columns is None else list(columns)
        self.asked.extend((object_name, name) for name in names)
        if self.gated in names:
            self.started.set()
            assert self.gate.wait(WAIT)
        return super().frame(object_name, columns)


def _snapshot_reader(tmp_path: Path) -> SnapshotReader:
    home = Home(tmp_path / "home")
    return open_snapshot(home, snap(home, make_fake(), ("Contact",)).snapshot_id)


def test_a_column_being_read_ahead_is_waited_for_not_read_twice(tmp_path: Path) -> None:
    base = GatedReader(_snapshot_reader(tmp_path), "Email")
    shared = SharedColumns(base)
    shared.expect({"Contact": frozenset({"Id", "Email"})})
    shared.read_ahead([("Contact", "Email"), ("Contact", "Id")])
    assert base.started.wait(WAIT)  # the read ahead is decoding Email
    asked: list[pd.DataFrame] = []
    frame = threading.Thread(target=lambda: asked.append(shared.frame("Contact", ["Id", "Email"])))
    frame.start()
    base.gate.set()
    frame.join(WAIT)
    shared.stop_reading_ahead()
    pd.testing.assert_frame_equal(asked[0], base.frame("Contact", ["Id", "Email"]))
    assert base.asked.count(("Contact", "Email")) == 2  # the read ahead's, and this test's own just above


def test_the_read_ahead_passes_over_what_no_pass_still_reads_and_stops_at_an_error(tmp_path: Path) -> None:
    reader = _snapshot_reader(tmp_path)
    base = GatedReader(reader, "-")
    shared = SharedColumns(base)
    shared.expect({"Contact": frozenset({"Email"})})
    done = threading.Event()
    real = shared._read_ahead

    def then_note(order: list[tuple[str, str]]) -> None:
        real(order)
        done.set()

    shared._read_ahead = then_note  # type: ignore[method-assign]
    shared.read_ahead([("Contact", "Id"), ("Contact", "Email"), ("Nope", "Id"), ("Contact", "Phone")])
    assert done.wait(WAIT)
    # Id: no pass reads it from now on; Nope: the error ends the read ahead, so Phone is never read.
    assert base.asked == [("Contact", "Email")]
    with pytest.raises(KeyError):
        shared.frame("Nope", ["Id"])  # the pass that asks meets the error itself
    assert shared.frame("Contact", ["Email"])["Email"].tolist() == reader.frame("Contact", ["Email"])["Email"].tolist()
    assert base.asked == [("Contact", "Email"), ("Nope", "Id")]


def test_before_images_wait_for_the_read_ahead_without_holding_it_up(tmp_path: Path) -> None:
    reader = _snapshot_reader(tmp_path)
    shared = SharedColumns(reader)
    ids = reader.frame("Contact", ["Id"])["Id"].tolist()[:5]
    gate = threading.Event()
    plain_frame = type(reader).frame

    def slow(self: SnapshotReader, object_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        if threading.current_thread().name == "crmsweep-read-ahead":
            assert gate.wait(WAIT)
        return plain_frame(self, object_name, columns)

    expected = reader.before_images("Contact", ids)
    reader.frame = slow.__get__(reader)  # type: ignore[method-assign]
    shared.expect({"Contact": frozenset({"Email", "LastName"})})
    shared.read_ahead([("Contact", "Email")])
    images: list[Any] = []
    worker = threading.Thread(target=lambda: images.append(shared.before_images("Contact", ids)))
    worker.start()
    gate.set()  # were the images taken under the lock the read ahead needs, this would never end
    worker.join(WAIT)
    assert not worker.is_alive()
    assert {i: dict(r) for i, r in images[0].items()} == {i: dict(r) for i, r in expected.items()}


def test_a_failed_pass_beside_leaves_nothing_held_once_its_error_is_handled(monkeypatch: pytest.MonkeyPatch) -> None:
    kept: list[weakref.ref[Any]] = []

    def twins(ctx: PassContext) -> PassOutput:
        work = _Big()  # what a failing pass's frame holds (its frames, at 1M contacts)
        kept.append(weakref.ref(work))
        raise BadInput("twins cannot run")

    names = _register(monkeypatch, _spec("twins", 902, twins, report_only=True))
    gc.disable()  # freed by reference counting alone: no cycle through the error and the worker
    try:
        try:
            _only(names)
        except BadInput as error:
            assert "twins cannot run" in str(error)
        else:
            raise AssertionError("the scan did not raise")
        assert kept[0]() is None
    finally:
        gc.enable()


class _Big:
    pass
