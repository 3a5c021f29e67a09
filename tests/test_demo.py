"""`crmsweep demo` is the README's first command: it must tell the whole story and leave the org as it was."""

from __future__ import annotations

from pathlib import Path

from crmsweep.api import Workspace
from crmsweep.demo import run_demo
from crmsweep.model import Plan


def test_the_demo_tells_the_story_and_restores_the_org(tmp_path: Path) -> None:
    config = tmp_path / "crmsweep.toml"
    config.write_text("[sandbox]\nrecords = 200\nseed = 5\n", encoding="utf-8")
    lines: list[str] = []

    result = run_demo(Workspace.load(config, tmp_path / "home"), lines.append)

    assert result.org_restored and result.applied > 0 and result.restored == result.applied
    told = "\n".join(lines)
    for step in ("1. The org", "2. Back up", "3. Scan", "4. Preview", "5. Apply", "6. Roll back"):
        assert step in told
    assert "Every record is back under its own id" in told
    assert Path(result.plan_path).is_file()


def test_the_demo_on_hubspot_archives_re_creates_and_says_what_it_cannot_do(tmp_path: Path) -> None:
    config = tmp_path / "crmsweep.toml"
    config.write_text("[sandbox]\nrecords = 250\nseed = 21\n", encoding="utf-8")
    lines: list[str] = []

    result = run_demo(Workspace.load(config, tmp_path / "home"), lines.append, provider="hubspot")

    told = "\n".join(lines)
    assert result.org_restored, told
    assert result.applied == len(Plan.from_json(Path(result.plan_path).read_text(encoding="utf-8"))[0].changes)
    assert "stale_contacts: 48 proposed; held back 2" in told
    assert "skipped: this CRM cannot deactivate users through its API; set [passes.inactive_users] reassign_to" in told
    shown = f"`crmsweep runs show {result.rollback_run_id} --json`"
    assert f"Every record is back (re-created under a new id: {shown}" in told
    # Said, not hidden: the re-created records look new to the next scan, and how to keep the originals.
    assert "records were re-created under new ids (" in told and "54 contacts" in told
    assert "createdate" in told and "the next scan sees them as new" in told and "recycle bin" in told
