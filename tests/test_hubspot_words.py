"""On HubSpot, what the admin is asked to confirm says archive where HubSpot archives: contacts go to the
recycle bin, and DELETE /marketing/v3/emails/{id} archives an email it keeps under its id (api-notes 2.4,
3.4). The plan's op for an email stays `delete` (ops are signed); the words come from the vocabulary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crmsweep.cli import app
from crmsweep.model import Op, Plan
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import CLI_TOKEN_ENV, hubspot_sandbox

__all__ = ["hubspot_sandbox"]

runner = CliRunner()


def test_the_typed_confirmation_on_hubspot_counts_archives_not_deletions(
    hubspot_sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = hubspot_sandbox.info
    config = tmp_path / "crmsweep.toml"
    config.write_text(f'[connections.e2e]\nprovider = "hubspot"\nurl = "{info.url}"\n'
                      f'token_env = "{CLI_TOKEN_ENV}"\nca_file = "{info.ca_file}"\n\n'
                      "[safety]\nconfirm_typed_over = 2\n", encoding="utf-8")
    monkeypatch.setenv(CLI_TOKEN_ENV, info.token)
    monkeypatch.setattr("crmsweep.commands.common.interactive", lambda: True)  # as if typed at a terminal
    monkeypatch.setattr("crmsweep.commands.apply.interactive", lambda: True, raising=False)

    def cli(*args: str, expect: int = 0, input: str | None = None) -> Any:
        done = runner.invoke(app, [*args, "--config", str(config), "--home", str(tmp_path / "home")],
                             input=input, catch_exceptions=False)
        assert done.exit_code == expect, f"{args}: exit {done.exit_code}\n{done.stdout}\n{done.stderr}"
        return done

    plan_file = tmp_path / "plan.json"
    cli("scan", "-c", "e2e", "-o", str(plan_file), "--pass", "stale_contacts", "--pass", "stale_templates")
    plan, _ = Plan.from_json(plan_file.read_text(encoding="utf-8"))
    contacts = sum(1 for c in plan.changes if c.object == "contacts" and c.op is Op.ARCHIVE)
    emails = sum(1 for c in plan.changes if c.object == "marketing_emails" and c.op is Op.DELETE)
    assert contacts and emails and len(plan.changes) == contacts + emails

    refused = cli("apply", str(plan_file), expect=4, input="y\n").stderr
    total = contacts + emails
    assert f"({contacts} archive contacts, {emails} archive marketing_emails)" in refused, refused
    assert f"This archives {total} records. Type {total} (or the connection name) to go on" in refused, refused
    assert "delete" not in refused, refused

    # A dry run counts what it would write the same way.
    dry = cli("apply", str(plan_file), "--dry-run", "--yes").stderr
    assert f"({contacts} archive contacts, {emails} archive marketing_emails)" in dry, dry
    assert "delete" not in dry, dry
