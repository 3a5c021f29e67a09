"""A stop signal while a private file is written (a plan: before-images, personal data) removes the half-written
file instead of leaving it behind, and a stop handler someone else set (apply's) is left in charge."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crmsweep import paths

_WRITER = """
import sys, time
from pathlib import Path
from crmsweep.paths import replace_private_file_with

def slow(handle):
    for _ in range(600):
        handle.write(b"personal data " * 1000)
        handle.flush()
        Path(sys.argv[2]).touch()
        time.sleep(0.05)

replace_private_file_with(Path(sys.argv[1]), slow)
"""


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_mid_write_leaves_no_half_written_file(tmp_path: Path, stop: signal.Signals) -> None:
    target, started = tmp_path / "plan.json", tmp_path / "started"
    child = subprocess.Popen([sys.executable, "-c", _WRITER, str(target), str(started)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert started.exists() and len(list(tmp_path.glob(".plan.json.*.tmp"))) == 1
    child.send_signal(stop)
    child.wait(30)
    assert child.returncode != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["started"]


def test_a_handler_already_set_is_left_in_charge(tmp_path: Path) -> None:
    noted: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: noted.append(signum))
    try:
        def write(handle: object) -> None:
            signal.raise_signal(signal.SIGTERM)  # held by the handler set before: the write goes on

        paths.replace_private_file_with(tmp_path / "state.json", write)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert noted == [signal.SIGTERM] and (tmp_path / "state.json").exists()
