"""The run log: folders and modes, fsynced append-only entries, reading state back, locks, listing."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from crmsweep.backup.runlog import (
    STATUS_DAMAGED,
    STATUS_DONE,
    STATUS_DONE_WITH_FAILURES,
    STATUS_ROLLED_BACK,
    STATUS_STOPPED,
    STATUS_UNFINISHED,
    Outcome,
    create_run,
    list_runs,
    open_run,
    read_run,
)
from crmsweep.errors import BadInput, SafetyRefusal
from crmsweep.model import Change, Op, Plan, PlanHeader
from crmsweep.paths import Home


def small_plan(n: int = 5, plan_id: str = "plan-test") -> Plan:
    header = PlanHeader(
        plan_id=plan_id,
        created="2030-01-01T00:00:00.000Z",
        tool_version="0.1.0",
        provider="fake",
        org_id="00DFAKE000000000AA",
        connection="fake",
        source={"kind": "snapshot", "id": "snap-1"},
    )
    changes = [
        Change(
            op=Op.DELETE,
            object="Contact",
            record_id=f"003{i:015d}",
            before={"Id": f"003{i:015d}", "LastName": f"N{i}"},
            after={},
            reason="stale",
            pass_name="stale_contacts",
        )
        for i in range(n)
    ]
    return Plan.build(header, changes)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


def log_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_create_run_makes_private_folder_with_plan_copy_and_start_entry(home: Home) -> None:
    plan = small_plan()
    text = plan.to_json()
    handle = create_run(home, plan, text, kind="apply")

    assert handle.run_id.startswith("run-") and len(handle.run_id) == len("run-20300101T000000Z-abcd")
    assert stat.S_IMODE(handle.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(handle.plan_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(handle.log_path.stat().st_mode) == 0o600
    assert handle.plan_path.read_bytes() == text.encode("utf-8")
    [start] = log_lines(handle.log_path)
    assert start["t"] == "start"
    assert start["run"] == handle.run_id
    assert start["plan_id"] == "plan-test"
    assert start["plan_digest"] == plan.digest
    assert start["org_id"] == "00DFAKE000000000AA"
    assert start["connection"] == "fake"
    assert start["kind"] == "apply"
    assert start["rollback_of"] is None
    assert isinstance(start["time"], str) and start["time"].endswith("Z")


def test_append_adds_one_complete_line_per_entry(home: Home) -> None:
    plan = small_plan()
    handle = create_run(home, plan, plan.to_json())
    handle.append({"t": "resume"})
    handle.append({"t": "stop", "reason": "limit"})
    raw = handle.log_path.read_bytes()
    assert raw.endswith(b"\n")
    assert [e["t"] for e in log_lines(handle.log_path)] == ["start", "resume", "stop"]


def test_text_with_a_lone_surrogate_is_logged_and_read_back_unchanged(home: Home) -> None:
    plan = small_plan(1)
    handle = create_run(home, plan, plan.to_json())
    message = "Zoë \ud83d broke"  # half of an emoji pair, as a CRM's JSON may send it
    handle.append({"t": "skip", "i": 0, "reason": "missing", "detail": message})
    handle.append({"t": "skip", "i": 0, "reason": "missing", "detail": "Zoë 😀"})
    assert read_run(home, handle.run_id).outcomes[0].detail == "Zoë 😀"
    assert [e.get("detail") for e in read_run(home, handle.run_id).entries] == [None, message, "Zoë 😀"]
    assert "Zoë 😀".encode() in handle.log_path.read_bytes()  # other entries stay readable text


def write_history(home: Home) -> str:
    plan = small_plan(5)
    handle = create_run(home, plan, plan.to_json())
    records = [{"i": i, "id": plan.changes[i].record_id, "before": plan.changes[i].before} for i in range(3)]
    handle.append({"t": "intent", "batch": 1, "op": "delete", "object": "Contact", "changes": [0, 1, 2],
                   "records": records})
    handle.append({"t": "result", "batch": 1, "results": [
        {"i": 0, "id": plan.changes[0].record_id, "ok": True, "error_code": None, "message": None,
         "fingerprint_after": "2030-01-01T00:00:00.001Z"},
        {"i": 1, "id": plan.changes[1].record_id, "ok": False, "error_code": "X", "message": "nope",
         "fingerprint_after": None},
    ]})
    handle.append({"t": "skip", "i": 3, "id": plan.changes[3].record_id, "reason": "drift", "detail": "changed"})
    return handle.run_id


def test_read_run_derives_each_change_outcome(home: Home) -> None:
    run_id = write_history(home)
    state = read_run(home, run_id)
    assert [o.outcome for o in state.outcomes] == [
        Outcome.APPLIED,
        Outcome.FAILED,
        Outcome.PENDING,
        Outcome.SKIPPED,
        Outcome.NOT_STARTED,
    ]
    assert state.outcomes[0].fingerprint_after == "2030-01-01T00:00:00.001Z"
    assert state.outcomes[2].before == {"Id": "003000000000000002", "LastName": "N2"}
    assert state.outcomes[1].error_code == "X"
    assert state.outcomes[3].reason == "drift"
    assert state.applied_order == [0]
    assert state.last_batch == 1
    assert state.status == STATUS_UNFINISHED


def test_status_follows_the_latest_session(home: Home) -> None:
    run_id = write_history(home)
    handle = open_run(home, run_id)
    handle.append({"t": "stop", "reason": "the org's API allowance is spent"})
    assert read_run(home, run_id).status == STATUS_STOPPED
    assert read_run(home, run_id).stop_reason == "the org's API allowance is spent"
    handle.append({"t": "resume"})
    assert read_run(home, run_id).status == STATUS_UNFINISHED
    handle.append({"t": "end", "applied": 1, "skipped": 1, "failed": 1})
    assert read_run(home, run_id).status == STATUS_DONE_WITH_FAILURES
    handle.append({"t": "rolled_back", "by": "run-x"})
    state = read_run(home, run_id)
    assert state.status == STATUS_ROLLED_BACK
    assert state.rolled_back_by == "run-x"


def test_done_without_failures(home: Home) -> None:
    plan = small_plan(1)
    handle = create_run(home, plan, plan.to_json())
    handle.append({"t": "skip", "i": 0, "id": plan.changes[0].record_id, "reason": "missing", "detail": "gone"})
    handle.append({"t": "end", "applied": 0, "skipped": 1, "failed": 0})
    assert read_run(home, handle.run_id).status == STATUS_DONE


def test_torn_last_line_is_ignored(home: Home) -> None:
    run_id = write_history(home)
    handle = open_run(home, run_id)
    with handle.log_path.open("ab") as f:
        f.write(b'{"t":"result","batch":1,"results":[{"i":2,"id":"003')
    state = read_run(home, run_id)
    assert state.torn_tail
    assert state.outcomes[2].outcome is Outcome.PENDING
    # The next append cuts the fragment off instead of gluing an entry onto it.
    handle.append({"t": "stop", "reason": "limit"})
    state = read_run(home, run_id)
    assert not state.torn_tail
    assert state.status == STATUS_STOPPED
    assert [e["t"] for e in log_lines(handle.log_path)][-2:] == ["skip", "stop"]


def test_damage_in_the_middle_is_refused(home: Home) -> None:
    run_id = write_history(home)
    handle = open_run(home, run_id)
    lines = handle.log_path.read_bytes().split(b"\n")
    lines[1] = b"{not json"
    handle.log_path.write_bytes(b"\n".join(lines))
    with pytest.raises(BadInput, match="damaged at line 2"):
        read_run(home, run_id)


@pytest.mark.parametrize("garbage", [b'{"t":"intent","ba\x00\x00\x00\n', b"\x00" * 40 + b"\n", b"[1, 2]\n"])
def test_torn_last_line_ending_in_a_newline_is_cut_by_the_next_append(home: Home, garbage: bytes) -> None:
    run_id = write_history(home)
    handle = open_run(home, run_id)
    good = handle.log_path.read_bytes()
    with handle.log_path.open("ab") as f:
        f.write(garbage)
    state = read_run(home, run_id)
    assert state.torn_tail and state.status == STATUS_UNFINISHED
    handle.append({"t": "resume"})
    handle.append({"t": "stop", "reason": "limit"})
    raw = handle.log_path.read_bytes()
    assert raw.startswith(good) and garbage not in raw
    assert [e["t"] for e in log_lines(handle.log_path)][-3:] == ["skip", "resume", "stop"]
    state = read_run(home, run_id)
    assert not state.torn_tail and state.status == STATUS_STOPPED


def test_a_long_last_line_is_found_across_read_blocks(home: Home) -> None:
    run_id = write_history(home)
    handle = open_run(home, run_id)
    handle.append({"t": "skip", "i": 4, "reason": "drift", "detail": "x" * 200_000})
    with handle.log_path.open("ab") as f:
        f.write(b'{"t":"result","detail":"' + b"y" * 150_000)
    handle.append({"t": "stop", "reason": "limit"})
    state = read_run(home, run_id)
    assert state.outcomes[4].detail == "x" * 200_000 and state.status == STATUS_STOPPED


def test_only_the_last_line_may_be_torn(home: Home) -> None:
    run_id = write_history(home)
    handle = open_run(home, run_id)
    with handle.log_path.open("ab") as f:
        f.write(b"\x00\x00\x00\n" + b'{"t":"resu')  # garbage, then an append cut short
    with pytest.raises(BadInput, match="damaged at line 5"):
        read_run(home, run_id)
    # Appending cuts only the torn last line; the damage before it stays, and stays refused.
    handle.append({"t": "stop", "reason": "limit"})
    with pytest.raises(BadInput, match="damaged at line 5"):
        read_run(home, run_id)


def test_unknown_run_is_bad_input(home: Home) -> None:
    with pytest.raises(BadInput, match="no run run-nope"):
        open_run(home, "run-nope")
    with pytest.raises(BadInput):
        read_run(home, "../etc")


def test_lock_refuses_a_second_holder_and_is_released(home: Home) -> None:
    plan = small_plan()
    handle = create_run(home, plan, plan.to_json())
    with handle.lock():
        assert handle.lock_path.read_text() == str(os.getpid())
        second = open_run(home, handle.run_id)
        with pytest.raises(SafetyRefusal, match=f"being applied by another process \\(pid {os.getpid()}\\)"), \
                second.lock():
            pass
    with handle.lock():
        pass


def test_stale_lock_of_a_dead_process_is_taken_over(home: Home) -> None:
    plan = small_plan()
    handle = create_run(home, plan, plan.to_json())
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    handle.lock_path.write_text(child.stdout.strip())
    with handle.lock():
        assert handle.lock_path.read_text() == str(os.getpid())


def test_a_pid_in_the_lock_file_is_no_lock_without_its_holder(home: Home) -> None:
    plan = small_plan()
    handle = create_run(home, plan, plan.to_json())
    handle.lock_path.write_text(str(os.getppid()))  # alive, but holds nothing (a reused pid after a reboot)
    with handle.lock():
        assert handle.lock_path.read_text() == str(os.getpid())


# Run in a child: waits for file argv[3], then takes the lock of run folder argv[1] for argv[2] seconds and
# says "locked"; or says "refused". With argv[4] = "contend", instead takes and releases the lock in a loop for
# argv[2] seconds, checking with an exclusive marker file that no one else held it at the same time.
_HOLDER = """
import os, sys, time
from pathlib import Path
from crmsweep.backup.runlog import RunHandle
from crmsweep.errors import SafetyRefusal
folder, seconds, go, mode = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
while not os.path.exists(go):
    time.sleep(0.002)
if mode == "hold":
    try:
        with RunHandle(folder.name, folder).lock():
            print("locked", flush=True)
            time.sleep(seconds)
    except SafetyRefusal:
        print("refused", flush=True)
    sys.exit()
held = overlaps = 0
end = time.monotonic() + seconds
marker = folder / "holding"
while time.monotonic() < end:
    try:
        with RunHandle(folder.name, folder).lock():
            held += 1
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                overlaps += 1
                continue
            time.sleep(0.0005)
            os.unlink(marker)
    except SafetyRefusal:
        pass
print(held, overlaps)
"""


def start_holder(folder: Path, seconds: float, go: Path, mode: str = "hold") -> subprocess.Popen[str]:
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root}
    return subprocess.Popen([sys.executable, "-c", _HOLDER, str(folder), str(seconds), str(go), mode],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=root)


def test_processes_contending_for_the_lock_never_hold_it_together(home: Home, tmp_path: Path) -> None:
    plan = small_plan()
    handle = create_run(home, plan, plan.to_json())
    go = tmp_path / "go"
    children = [start_holder(handle.path, 1.0, go, "contend") for _ in range(3)]
    go.touch()
    counts = [tuple(int(n) for n in child.communicate(timeout=60)[0].split()) for child in children]
    assert sum(held for held, _ in counts) > 3  # they did take turns
    assert [overlaps for _, overlaps in counts] == [0, 0, 0]


def test_lock_of_a_killed_holder_is_free_at_once(home: Home, tmp_path: Path) -> None:
    plan = small_plan()
    handle = create_run(home, plan, plan.to_json())
    go = tmp_path / "go"
    go.touch()
    child = start_holder(handle.path, 60, go)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        with pytest.raises(SafetyRefusal) as caught, handle.lock():
            pass
        assert str(caught.value) == (
            f"run {handle.run_id} is being applied by another process (pid {child.pid}); wait for it to finish"
        )
    finally:
        child.kill()
        child.communicate(timeout=30)
    with handle.lock():
        assert handle.lock_path.read_text() == str(os.getpid())


def test_list_runs_oldest_first_with_statuses(home: Home) -> None:
    first = write_history(home)
    open_run(home, first).append({"t": "stop", "reason": "limit"})
    plan = small_plan(1, plan_id="plan-two")
    second = create_run(home, plan, plan.to_json(), kind="rollback", rollback_of=first)
    second.append({"t": "end", "applied": 0, "skipped": 0, "failed": 0})
    broken = home.runs_dir / "run-20000101T000000Z-dead"
    broken.mkdir()
    (broken / "log.jsonl").write_text("garbage\nmore garbage\n")

    runs = list_runs(home)
    assert [r.run_id for r in runs] == ["run-20000101T000000Z-dead", first, second.run_id]
    assert runs[0].status == STATUS_DAMAGED and runs[0].problem
    assert runs[1].status == STATUS_STOPPED
    assert runs[1].counts["applied"] == 1 and runs[1].counts["failed"] == 1 and runs[1].counts["pending"] == 1
    assert runs[1].total == 5
    assert runs[2].kind == "rollback" and runs[2].rollback_of == first and runs[2].plan_id == "plan-two"
    assert runs[2].status == STATUS_DONE


def test_applied_order_follows_the_latest_result_of_each_change(home: Home) -> None:
    plan = small_plan(4)
    handle = create_run(home, plan, plan.to_json())
    ok = [{"i": i, "ok": True} for i in range(4)]
    handle.append({"t": "intent", "batch": 1, "records": [{"i": i} for i in range(4)]})
    handle.append({"t": "result", "batch": 1, "results": ok})
    # Change 1 written again (a resume's reconcile) moves to the end; change 2 is back to pending.
    handle.append({"t": "intent", "batch": 2, "records": [{"i": 1}, {"i": 2}]})
    handle.append({"t": "result", "batch": 2, "results": [{"i": 1, "ok": True}]})
    state = read_run(home, handle.run_id)
    assert state.applied_order == [0, 3, 1]
    assert state.outcomes[2].outcome is Outcome.PENDING


def test_a_log_edited_in_place_is_read_again_not_served_from_memory(home: Home) -> None:
    plan = small_plan(2)
    handle = create_run(home, plan, plan.to_json())
    handle.append({"t": "intent", "batch": 1, "records": [{"i": 0}]})
    handle.append({"t": "result", "batch": 1, "results": [{"i": 0, "ok": True, "fingerprint_after": "A1"}]})
    first = read_run(home, handle.run_id)
    assert first.outcomes[0].fingerprint_after == "A1"
    first.outcomes[0].fingerprint_after = "changed by a caller"  # a caller's copy, never the shared one
    # The same size, and possibly the same mtime tick: only the content tells the change.
    text = handle.log_path.read_bytes()
    handle.log_path.write_bytes(text.replace(b'"A1"', b'"B2"'))
    again = read_run(home, handle.run_id)
    assert again.outcomes[0].fingerprint_after == "B2"
    handle.log_path.write_bytes(text)
    assert read_run(home, handle.run_id).outcomes[0].fingerprint_after == "A1"
