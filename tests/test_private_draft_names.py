"""A write of `path` removes only its own abandoned drafts (".NAME.<8 hex>.tmp", and the older fixed
".NAME.tmp"), never a file that merely shares the prefix: writing plan `a` must not remove the draft of plan
`a.json` (perhaps still being written where flock does not reach), nor a user's ".a.notes.tmp"."""

from __future__ import annotations

import os
import time
from pathlib import Path

from crmsweep.paths import replace_private_file


def test_only_this_file_s_own_abandoned_drafts_are_removed(tmp_path: Path) -> None:
    others = [".a.json.0123abcd.tmp", ".a.my notes.tmp", ".a.backup.old.tmp", ".a.0123ABCD.tmp", ".a.123.tmp"]
    own = [".a.0123abcd.tmp", ".a.tmp"]
    old = time.time() - 3600
    for name in [*others, *own]:
        (tmp_path / name).write_text("x", encoding="utf-8")
        os.utime(tmp_path / name, (old, old))
    replace_private_file(tmp_path / "a", b"{}")
    assert sorted(os.listdir(tmp_path)) == sorted(["a", *others])


def test_a_killed_writer_s_draft_is_removed_by_the_next_write_however_soon(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    target = tmp_path / "plan.json"
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom pathlib import Path\nfrom crmsweep.paths import PrivateFileDraft\n"
        "d = PrivateFileDraft(Path(sys.argv[1]))\nh = d.begin(); h.write(b'jane@example.com'); h.flush()\n"
        "print('ready', flush=True); time.sleep(60)\n"), str(target)], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    [left] = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    replace_private_file(target, b"{}")  # the admin scans again at once
    assert os.listdir(tmp_path) == ["plan.json"], left


def test_a_live_writer_s_draft_is_kept_however_old(tmp_path: Path) -> None:
    from crmsweep.paths import PrivateFileDraft

    target = tmp_path / "plan.json"
    with PrivateFileDraft(target) as live:
        live.begin().write(b"x" * 10)
        live.begin().flush()
        [name] = os.listdir(tmp_path)
        old = time.time() - 3600
        os.utime(tmp_path / name, (old, old))
        replace_private_file(target, b"{}")
        assert sorted(os.listdir(tmp_path)) == sorted([name, "plan.json"])
        live.commit()
    assert os.listdir(tmp_path) == ["plan.json"] and target.read_bytes() == b"x" * 10
