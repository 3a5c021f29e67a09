"""A plan written on a worker thread (crmsweep/write_behind.py) fails as it did when written inline: a write
that fails midway (a full disk) is raised as it is, to api.write_plan's BadInput, no plan file is left, no
worker thread outlives the write, and the bytes written before it are in order."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import IO, Any, cast

import pytest

from crmsweep import api, model, plan_writing
from crmsweep.cleanup import plan_auth
from crmsweep.errors import BadInput
from crmsweep.model import Change, Op, Plan, PlanHeader
from crmsweep.paths import Home
from crmsweep.write_behind import WriteBehind


def _plan(count: int) -> Plan:
    header = PlanHeader(plan_id="p1", created="2026-06-01T00:00:00.000Z", tool_version="t", provider="p",
                        org_id="00D", connection="c", source={"kind": "snapshot", "id": "s1"})
    changes = tuple(Change(Op.DELETE, "Contact", f"003{n}", {"Id": f"003{n}", "Name": "é\n"}, {}, reason="r",
                           pass_name="p") for n in range(count))
    return Plan(header=header, changes=changes)


class _DiskFull(io.BytesIO):
    """Takes `room` writes, then fails the next as a full disk does (and takes those after it: an error
    must not be lost for the writes after it succeeding)."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def write(self, data: Any) -> int:
        self.room -= 1
        if self.room == -1:
            raise OSError(28, "No space left on device")
        return super().write(data)


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "crmsweep-write-behind"]


@pytest.mark.parametrize("room", [3, 4, 6, 9])  # the header written; then a batch's separator, lines, ...
def test_a_write_failing_midway_raises_its_error_and_leaves_no_worker(room: int, monkeypatch: Any) -> None:
    monkeypatch.setattr(model, "_BATCH", 2)
    out = _DiskFull(room)
    with pytest.raises(OSError) as raised:
        _plan(9).write_json(out)
    assert raised.value.errno == 28
    assert not _workers()
    # What was written before the failure is the start of the file, in order.
    assert _plan(9).to_json().encode().startswith(out.getvalue())


def test_api_write_plan_leaves_no_plan_file_when_the_disk_fills(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(model, "_BATCH", 2)
    home = Home(tmp_path / "home")
    output = tmp_path / "plans" / "plan.json"
    output.parent.mkdir()
    output.write_text("the old plan")
    real_write_signed = plan_auth.write_signed

    class Filling:
        """The plan file's handle, on a disk that fills after five writes."""

        def __init__(self, handle: Any) -> None:
            self.handle, self.writes = handle, 0

        def write(self, data: Any) -> int:
            self.writes += 1
            if self.writes == 6:
                raise OSError(28, "No space left on device")
            return int(self.handle.write(data))

    def signed_on_a_filling_disk(plan: Plan, handle: IO[bytes], home: Home) -> None:
        real_write_signed(plan, cast(IO[bytes], Filling(handle)), home)

    monkeypatch.setattr(plan_writing, "write_signed", signed_on_a_filling_disk)
    with pytest.raises(BadInput, match="No space left on device"):
        api.write_plan(_plan(9), output, home)
    monkeypatch.undo()
    assert output.read_text() == "the old plan"  # replaced only on success
    assert sorted(p.name for p in output.parent.iterdir()) == ["plan.json"]  # no half-written file left
    assert not _workers()
    monkeypatch.setattr(model, "_BATCH", 2)
    api.write_plan(_plan(9), output, home)  # and once the disk has room, the plan is written whole
    assert Plan.from_json(output.read_text())[0].digest == _plan(9).digest


def test_an_error_encoding_a_batch_stops_the_worker_and_is_raised(monkeypatch: Any) -> None:
    monkeypatch.setattr(model, "_BATCH", 2)
    plan = _plan(9)
    bad = Change(Op.DELETE, "Contact", "a\ud800b", {"Id": "x"}, {}, reason="r", pass_name="p")
    plan = Plan(header=plan.header, changes=(*plan.changes, bad))
    out = io.BytesIO()
    with pytest.raises(UnicodeEncodeError):
        plan.write_json(out)
    assert not _workers()


def test_pieces_are_written_then_hashed_in_order_and_an_error_surfaces_at_the_end() -> None:
    hashed: list[bytes] = []
    out = io.BytesIO()
    with WriteBehind(out, lambda piece: hashed.append(bytes(piece))) as behind:
        for n in range(50):
            behind.put((b"%d," % n, memoryview(b"x")), b"h%d" % n)
    assert out.getvalue() == b"".join(b"%d,x" % n for n in range(50))
    assert hashed == [b"h%d" % n for n in range(50)]
    failing = _DiskFull(1)
    with pytest.raises(OSError), WriteBehind(failing) as behind:
        behind.put((b"a", b"b"))  # the second write fails on the worker, after the last put
    assert failing.getvalue() == b"a" and not _workers()  # nothing written after the error


def test_an_interrupt_while_the_queue_is_full_still_ends_the_worker(monkeypatch: Any) -> None:
    # A slow disk keeps the queue full; a Ctrl-C landing in the end marker's `put` (red team R2) left the
    # worker waiting for it forever, holding the last batch and the handle. It must end by itself.
    gate = threading.Event()
    written: list[bytes] = []

    class Slow(io.BytesIO):
        def write(self, data: Any) -> int:
            gate.wait(5)
            written.append(bytes(data))
            return len(data)

    behind = WriteBehind(cast(IO[bytes], Slow()))
    plain_put = behind._pending.put

    def interrupted(item: Any, *args: Any, **kwargs: Any) -> None:
        if item is None:
            raise KeyboardInterrupt
        plain_put(item, *args, **kwargs)

    monkeypatch.setattr(behind._pending, "put", interrupted)
    with pytest.raises(KeyboardInterrupt), behind:
        behind.put([b"first"])
        behind.put([b"second"])  # the worker is held in the first write: this waits in the queue
        raise KeyboardInterrupt
    gate.set()
    behind._worker.join(2)
    assert not behind._worker.is_alive() and not _workers()
    assert written == [b"first"]  # what was still queued when the write was given up is not written
