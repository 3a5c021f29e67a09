"""The CLI's promises: exit codes, one clear line for bad input, help on everything, no secrets.

Behaviour is tested on the library; here only what the command line adds. The built-in
`sandbox-salesforce` connection starts the sandbox in-process under a temporary home.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from crmsweep.cli import app
from crmsweep.model import Plan
from crmsweep.paths import Home
from tests.plans import write_signed

runner = CliRunner()


class Cli:
    def __init__(self, home: Path, config: Path) -> None:
        self.home = home
        self.config = config

    def __call__(self, *args: str, expect: int = 0, env: dict[str, str] | None = None) -> Any:
        result = runner.invoke(
            app, [*args, "--home", str(self.home), "--config", str(self.config)], env=env or {}, catch_exceptions=False
        )
        assert result.exit_code == expect, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        return result


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    root = tmp_path_factory.mktemp("cli")
    config = root / "crmsweep.toml"
    config.write_text(
        "[sandbox]\nrecords = 150\nseed = 3\n\n"
        "[connections.prod]\nprovider = \"salesforce\"\n"
        "url = \"https://127.0.0.1:9\"\ntoken_env = \"CLI_TEST_TOKEN\"\n",
        encoding="utf-8",
    )
    return Cli(root / "home", config)


@pytest.fixture(scope="module")
def plan_file(cli: Cli) -> Iterator[Path]:
    path = cli.home.parent / "plan.json"
    cli("scan", "-c", "sandbox-salesforce", "-o", str(path), "--json")
    yield path


def error_line(result: Any) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {result.stderr!r}"
    return str(lines[0])


def test_every_command_and_option_has_help() -> None:
    root = typer.main.get_command(app)

    # Typer vendors its own click; walk the tree by its public attributes.
    def walk(cmd: Any, path: str) -> Iterator[tuple[str, Any]]:
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, f"{path} {name}")

    seen = 0
    for path, cmd in walk(root, "crmsweep"):
        seen += 1
        assert (cmd.help or "").strip(), f"{path} has no help"
        for param in cmd.params:
            if param.param_type_name in ("option", "argument"):
                assert (getattr(param, "help", None) or "").strip(), f"{path} {param.opts} has no help"
    assert seen >= 12


def test_unknown_connection_is_bad_input(cli: Cli) -> None:
    result = cli("backup", "-c", "nope", expect=2)
    assert "nope" in error_line(result)


def test_unknown_object_is_bad_input_and_leaves_no_snapshot(cli: Cli) -> None:
    before = sorted((cli.home / "snapshots").glob("*")) if (cli.home / "snapshots").exists() else []
    result = cli("backup", "-c", "sandbox-salesforce", "--object", "Contact", "--object", "Foo__c", expect=2)
    assert "Foo__c" in error_line(result)
    assert sorted((cli.home / "snapshots").glob("*")) == before


def test_missing_token_variable_names_it(cli: Cli) -> None:
    result = cli("backup", "-c", "prod", expect=2)
    assert "CLI_TEST_TOKEN" in error_line(result)


def test_missing_plan_file_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    result = cli("preview", str(tmp_path / "absent.json"), expect=2)
    assert "absent.json" in error_line(result)


def test_not_a_plan_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.json"
    bogus.write_text("{\"hello\": 1}", encoding="utf-8")
    error_line(cli("preview", str(bogus), expect=2))


def test_scan_writes_a_plan_that_previews(cli: Cli, plan_file: Path) -> None:
    plan, digest = Plan.from_json(plan_file.read_text(encoding="utf-8"))
    assert plan.digest == digest and plan.changes
    assert plan_file.stat().st_mode & 0o777 == 0o600
    shown = cli("preview", str(plan_file)).stdout
    assert f"{len(plan.changes)}" in shown
    summary = json.loads(cli("preview", str(plan_file), "--json").stdout)
    assert summary["changes"] == len(plan.changes)


def test_edited_plan_is_refused(cli: Cli, plan_file: Path, tmp_path: Path) -> None:
    doc = json.loads(plan_file.read_text(encoding="utf-8"))
    doc["changes"][0]["after"] = {"Email": "someone@else.example"}
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc), encoding="utf-8")
    assert "digest" in error_line(cli("apply", str(edited), "--yes", expect=3))
    # Preview reads it, to review it before `plan accept`, and says plainly that apply will refuse it.
    shown = cli("preview", str(edited)).stdout
    assert "signature: changed after it was written (its digest does not match its content): apply refuses it" in shown
    assert json.loads(cli("preview", str(edited), "--json").stdout)["signed_by_this_home"] is False


def test_plan_for_another_org_is_bad_input(cli: Cli, plan_file: Path, tmp_path: Path) -> None:
    plan, _ = Plan.from_json(plan_file.read_text(encoding="utf-8"))
    other = plan.with_header(org_id="00D000000000001AAA")
    path = tmp_path / "other.json"
    write_signed(path, other, Home(cli.home))  # signed here, so the org check is what refuses it
    assert "00D000000000001AAA" in error_line(cli("apply", str(path), "--yes", expect=2))


def test_apply_without_yes_and_no_terminal_is_refused(cli: Cli, plan_file: Path) -> None:
    assert "--yes" in error_line(cli("apply", str(plan_file), expect=3))
    runs = json.loads(cli("runs", "list", "--json").stdout)
    assert runs == []


def test_unknown_snapshot_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    result = cli("scan", "-c", "sandbox-salesforce", "--snapshot", "nope", "-o", str(tmp_path / "p.json"), expect=2)
    assert "nope" in error_line(result)
    assert not (tmp_path / "p.json").exists()


def test_unknown_pass_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    result = cli("scan", "-c", "sandbox-salesforce", "--pass", "tidy_up", "-o", str(tmp_path / "p.json"), expect=2)
    assert "tidy_up" in error_line(result)
    assert not (tmp_path / "p.json").exists()


def test_unknown_rollback_run_is_bad_input(cli: Cli) -> None:
    assert "run-nope" in error_line(cli("rollback", "run-nope", "--yes", expect=2))
