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
