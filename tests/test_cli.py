"""The CLI's promises: exit codes, one clear line for bad input, help on everything, no secrets.

Behaviour is tested on the library; here only what the command line adds. The built-in
`sandbox-salesforce` connection starts the sandbox in-process under a temporary home.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import typer
from typer.testing import CliRunner

from crmsweep.api import Workspace, connect
from crmsweep.cleanup.passes import PASSES
from crmsweep.cli import app
from crmsweep.model import Change, Plan
from crmsweep.paths import Home
from crmsweep.sandbox.store import Store
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
    cli("scan", "-c", "sandbox-salesforce", "-o", str(path), "--json", "--pass", "stale_contacts",
        "--pass", "inactive_users")
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
    assert summary["changes"] == len(plan.changes) == len(summary["listed"]) and summary["not_listed"] == 0
    assert sorted(c["record_id"] for c in summary["listed"]) == sorted(c.record_id for c in plan.changes)
    capped = json.loads(cli("preview", str(plan_file), "--json", "--limit", "1").stdout)
    assert len(capped["listed"]) + capped["not_listed"] == len(plan.changes)
    assert len(capped["listed"]) == len({(c.pass_name, c.object) for c in plan.changes})


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


# --- issue 5: the CLI fits an admin's habits -------------------------------------------------------------

SMALL_ORG = "[sandbox]\nrecords = 20\nseed = 5\n"
TYPE_LABEL = re.compile(r"<(bool|str|int|float|path|list\[[^\]]*\]|[a-z ]+ range)>")


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    """The CLI with exactly these arguments (no --home/--config appended, unlike `Cli`)."""
    result = runner.invoke(app, list(args), env=env or {}, catch_exceptions=False)
    assert "Traceback" not in result.stderr
    return result


def api_calls(home: Path) -> int:
    """The sandbox org's own count of the API calls it answered (kept in its state, across servers)."""
    store = Store(home / "sandbox" / "salesforce")
    try:
        return store.api_used()
    finally:
        store.close()


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# 13. Text is text: brackets in config errors, help, paths and CRM data are shown as written.


@pytest.mark.parametrize(
    ("config_text", "kept"),
    [
        ('[connections.t]\nprovider = "salesforce"\nurl = "http://x.example"\ntoken_env = "T"\n', "[connections.t]"),
        ("[connection]\n", "unknown section [connection] (did you mean 'connections'?)"),
    ],
)
def test_config_errors_keep_their_brackets(tmp_path: Path, config_text: str, kept: str) -> None:
    config = write_config(tmp_path / "c.toml", config_text)
    result = invoke("runs", "list", "--config", str(config), "--home", str(tmp_path / "home"))
    assert result.exit_code == 2
    assert kept in error_line(result)


def test_pass_setting_error_keeps_its_section(cli: Cli, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", cli.config.read_text() + "\n[passes.stale_contacts]\nyears = 0\n")
    result = invoke("scan", "-c", "sandbox-salesforce", "-o", str(tmp_path / "p.json"),
                    "--config", str(config), "--home", str(cli.home))
    assert result.exit_code == 2
    assert error_line(result) == f"crmsweep: {config}: [passes.stale_contacts] years must be between 1 and 100, got 0"


def test_help_text_shows_brackets_as_written() -> None:
    assert "exceeds the [safety] caps" in invoke("scan", "--help").stdout


def test_a_plan_path_with_markup_characters_is_just_a_path(cli: Cli, plan_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "a["
    folder.mkdir()
    odd = folder / "x].json"  # on the command line: a[/x].json, which rich read as a closing tag
    odd.write_bytes(plan_file.read_bytes())
    shown = cli("preview", str(odd), "--limit", "1").stdout
    assert shown.startswith("plan ")
    missing = cli("preview", str(folder / "y].json"), expect=2)
    assert error_line(missing) == f"crmsweep: plan file {folder / 'y].json'} does not exist"


# 15. --config and --home before the command.


def test_config_and_home_before_the_command_are_used(tmp_path: Path) -> None:
    config = write_config(tmp_path / "small.toml", SMALL_ORG)
    home = tmp_path / "home"
    result = invoke("--config", str(config), "--home", str(home), "backup", "-c", "sandbox-salesforce", "--json")
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert Path(answer["path"]).parent == home / "snapshots"
    assert answer["objects"]["Contact"] == 20  # the config's [sandbox] records, not the default 1000


def test_a_connection_of_the_root_config_is_found(cli: Cli) -> None:
    result = invoke("--config", str(cli.config), "--home", str(cli.home), "backup", "-c", "prod")
    assert result.exit_code == 2
    assert "CLI_TEST_TOKEN" in error_line(result)


def test_the_command_option_beats_the_root_option_which_beats_the_environment(tmp_path: Path) -> None:
    good = write_config(tmp_path / "good.toml", SMALL_ORG)
    bad = write_config(tmp_path / "bad.toml", "[nonsense]\n")
    home = str(tmp_path / "home")
    assert invoke("--config", str(bad), "runs", "list", "--config", str(good), "--home", home).exit_code == 0
    env = {"CRMSWEEP_CONFIG": str(bad)}
    assert invoke("--config", str(good), "runs", "list", "--home", home, env=env).exit_code == 0
    assert invoke("runs", "list", "--home", home, env=env).exit_code == 2
    assert invoke("--home", str(tmp_path / "other"), "runs", "list", "--json", "--home", home).exit_code == 0
    assert not (tmp_path / "other").exists()


# 16. scan checks what it can before it backs up, and never overwrites what is not a plan.


@pytest.mark.parametrize("case", ["pass", "setting", "config-as-output", "folder", "under-a-file", "unwritable"])
def test_scan_refuses_bad_input_before_any_api_call(cli: Cli, plan_file: Path, tmp_path: Path, case: str) -> None:
    config = cli.config
    output = tmp_path / "plan.json"
    extra: list[str] = []
    if case == "pass":
        extra = ["--pass", "stale_contact"]
    elif case == "setting":
        config = write_config(tmp_path / "c.toml", cli.config.read_text() + "\n[passes.inactive_users]\ndayz = 3\n")
    elif case == "config-as-output":  # a copy: on the old code this very file was replaced by the plan
        config = output = write_config(tmp_path / "crmsweep.toml", cli.config.read_text())
    elif case == "folder":
        output = tmp_path
    elif case == "unwritable":  # sysfs takes no new files, even from root (chmod would not stop root)
        output = Path("/sys/crmsweep-plan.json")
    else:  # a file where a folder must be
        output = config / "such" / "plan.json"
    before_bytes = config.read_bytes()
    before_calls = api_calls(cli.home)
    result = invoke("scan", "-c", "sandbox-salesforce", "-o", str(output), *extra,
                    "--config", str(config), "--home", str(cli.home))
    assert result.exit_code == 2, result.stderr
    line = error_line(result)
    assert api_calls(cli.home) == before_calls
    assert config.read_bytes() == before_bytes
    assert not (tmp_path / "plan.json").exists() and not (tmp_path / "no").exists()
    if case == "config-as-output":
        assert line == f"crmsweep: {config} exists and is not a crmsweep plan: refusing to overwrite it; " \
                       "choose another file with -o"


def test_scan_replaces_an_older_plan(cli: Cli, plan_file: Path, tmp_path: Path) -> None:
    older = tmp_path / "older.json"
    older.write_bytes(plan_file.read_bytes())
    cli("scan", "-c", "sandbox-salesforce", "-o", str(older), "--json")
    def plan_id(path: Path) -> str:
        return Plan.from_json(path.read_text())[0].header.plan_id

    assert plan_id(older) != plan_id(plan_file)


@pytest.mark.parametrize("layout", ["sorted-keys", "damaged"])
def test_scan_replaces_a_plan_laid_out_otherwise_or_damaged(cli: Cli, plan_file: Path, tmp_path: Path,
                                                              layout: str) -> None:
    """A plan is known by how it begins (no parse of a 370 MB file); one an admin re-laid-out (`jq -S`) reads as one;
    one cut short (a full disk) still begins as one. A JSON file of another format is still no plan."""
    target = tmp_path / f"{layout}.json"
    text = plan_file.read_text()
    if layout == "sorted-keys":
        target.write_text(json.dumps(json.loads(text), sort_keys=True, indent=1))
        assert not target.read_text().startswith('{\n "format"')
    else:
        target.write_text(text[: len(text) // 2])
    cli("scan", "-c", "sandbox-salesforce", "-o", str(target), "--json", "--pass", "inactive_users")
    assert Plan.from_json(target.read_text())[0].header.plan_id != Plan.from_json(text)[0].header.plan_id
    other = tmp_path / "other.json"
    other.write_text('{"format": "crmsweep.plan/0", "changes": []}')
    result = cli("scan", "-c", "sandbox-salesforce", "-o", str(other), "--pass", "inactive_users", expect=2)
    assert "is not a crmsweep plan" in error_line(result)
    assert other.read_text() == '{"format": "crmsweep.plan/0", "changes": []}'


def test_scan_of_a_tampered_snapshot_is_refused_and_writes_no_plan(tmp_path: Path) -> None:
    config = write_config(tmp_path / "small.toml", SMALL_ORG)
    home = tmp_path / "home"
    common = ("--config", str(config), "--home", str(home))
    snapshot = json.loads(invoke("backup", "-c", "sandbox-salesforce", "--json", *common).stdout)
    data = Path(snapshot["path"]) / "data" / "Contact.parquet"
    data.write_bytes(data.read_bytes() + b"\0")
    output = tmp_path / "plan.json"
    calls = api_calls(home)
    result = invoke("scan", "-c", "sandbox-salesforce", "--snapshot", snapshot["snapshot"], "-o", str(output), *common)
    assert result.exit_code == 3
    assert "no longer matches its manifest" in error_line(result)
    assert not output.exists()
    assert api_calls(home) == calls


# 17. --json errors are JSON on stdout too.


def test_json_error_is_an_object_on_stdout_and_one_line_on_stderr(cli: Cli, tmp_path: Path) -> None:
    result = cli("scan", "-c", "sandbox-salesforce", "--pass", "tidy_up", "-o", str(tmp_path / "p.json"), "--json",
                 expect=2)
    line = error_line(result)
    answer = json.loads(result.stdout)
    assert answer == {"error": {"message": line.removeprefix("crmsweep: "), "exit_code": 2}}
    refused = cli("runs", "show", "run-nope", "--json", expect=2)
    assert json.loads(refused.stdout)["error"]["exit_code"] == 2
    assert cli("runs", "show", "run-nope", expect=2).stdout == ""


# 20. Help like the sf CLI's, tables with headers, runs show, completion.


def all_command_paths() -> list[list[str]]:
    def walk(cmd: Any, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(app), []))


def test_help_has_no_python_type_labels() -> None:
    for path in all_command_paths():
        shown = invoke(*path, "--help").stdout
        assert not TYPE_LABEL.search(shown), f"crmsweep {' '.join(path)} --help: {TYPE_LABEL.search(shown)}"
    assert "--pass NAME" in invoke("scan", "--help").stdout


def test_scan_help_lists_the_passes_and_root_help_the_exit_codes() -> None:
    scan_help = " ".join(invoke("scan", "--help").stdout.split())
    for name, spec in PASSES.items():
        assert f"{name} {spec.summary}" in scan_help
    root_help = invoke("--help").stdout
    for code, meaning in (("0", "done"), ("1", "done, but some"), ("2", "bad input"), ("3", "refused by a safety")):
        assert re.search(rf"^\s+{code}\s+{meaning}", root_help, re.MULTILINE), code


class Edited(NamedTuple):
    config: Path
    home: Path
    common: tuple[str, ...]  # --config and --home
    plan_path: Path
    plan: Plan
    drifted: Change  # the change to the record edited since the scan


def _scanned_then_edited(tmp_path: Path) -> Edited:
    """A small org scanned to tmp_path/plan.json, then one of the plan's contacts edited (a drift skip at apply)."""
    config = write_config(tmp_path / "small.toml", SMALL_ORG)
    home = tmp_path / "home"
    common = ("--config", str(config), "--home", str(home))
    plan_path = tmp_path / "plan.json"
    assert invoke("scan", "-c", "sandbox-salesforce", "-o", str(plan_path), *common).exit_code == 0
    plan, _ = Plan.from_json(plan_path.read_text())
    drifted = next(c for c in plan.changes if c.object == "Contact")
    with connect(Workspace.load(config, home), "sandbox-salesforce") as connector:
        assert connector.update("Contact", [{"Id": drifted.record_id, "Title": "Edited since the scan"}])[0].ok
    return Edited(config, home, common, plan_path, plan, drifted)


def test_lists_have_column_headers_and_runs_show_tells_a_run(tmp_path: Path) -> None:
    _, _, common, plan_path, plan, drifted = _scanned_then_edited(tmp_path)
    applied = invoke("apply", str(plan_path), "--yes", "--json", *common)
    run_id = json.loads(applied.stdout)["run"]

    assert invoke("snapshots", "list", *common).stdout.split()[:3] == ["SNAPSHOT", "FINISHED", "CONNECTION"]
    listed = invoke("runs", "list", *common).stdout.splitlines()
    assert listed[0].split()[:4] == ["RUN", "STARTED", "KIND", "STATUS"] and listed[1].startswith(run_id)

    shown = invoke("runs", "show", run_id, *common)
    assert shown.exit_code == 0
    assert re.search(rf"^Plan\s+{plan.header.plan_id}$", shown.stdout, re.MULTILINE)
    assert re.search(r"^Status\s+done$", shown.stdout, re.MULTILINE)
    assert f"Changes         {len(plan.changes)}: applied {len(plan.changes) - 1}, skipped 1" in shown.stdout
    skipped_row = next(line for line in shown.stdout.splitlines() if drifted.record_id in line)
    assert skipped_row.startswith("Contact")

    answer = json.loads(invoke("runs", "show", run_id, "--json", *common).stdout)
    assert (answer["run"], answer["plan"], answer["kind"], answer["status"]) == (
        run_id, plan.header.plan_id, "apply", "done")
    assert answer["counts"]["applied"] == len(plan.changes) - 1 and answer["finished"]
    assert [i["id"] for i in answer["skipped_items"]] == [drifted.record_id]

    rolled = json.loads(invoke("rollback", run_id, "--yes", "--json", *common).stdout)
    again = json.loads(invoke("runs", "show", run_id, "--json", *common).stdout)
    assert again["rollbacks"] == [rolled["run"]] and again["rolled_back_by"] == rolled["run"]
    assert json.loads(invoke("runs", "show", rolled["run"], "--json", *common).stdout)["rollback_of"] == run_id


def test_a_drift_skip_shows_one_time_format_and_the_scan_that_plans_it_again(tmp_path: Path) -> None:
    config, home, common, plan_path, _, drifted = _scanned_then_edited(tmp_path)
    with connect(Workspace.load(config, home), "sandbox-salesforce") as connector:
        now = connector.read("Contact", [drifted.record_id], ["SystemModstamp"])[drifted.record_id]["SystemModstamp"]
    assert now.endswith("+0000")  # the CRM's own spelling, which the message must not show
    shown_now = now[:-5] + "Z"
    detail = (f"changed since the backup the plan was scanned from: SystemModstamp was {drifted.fingerprint}, "
              f"now {shown_now}")
    scan = f"crmsweep scan -c sandbox-salesforce -o {plan_path} --config {config} --home {home}"
    means = ("1 skipped as drift: changed in the CRM since the backup the plan was scanned from, so left as they "
             "are. To plan them again, back up and scan again (scan takes a fresh backup first): ")

    dry = json.loads(invoke("apply", str(plan_path), "--dry-run", "--json", *common).stdout)
    # A dry run skipped nothing: it says what apply would skip.
    assert dry["drift_means"] == (
        "1 would be skipped as drift: changed in the CRM since the backup the plan was scanned from, so apply leaves "
        f"them as they are. To plan them again, back up and scan again (scan takes a fresh backup first): `{scan}`")
    assert [i["detail"] for i in dry["would_skip_items"]] == [detail]
    applied = invoke("apply", str(plan_path), "--yes", *common)
    assert f"  skipped: Contact {drifted.record_id}  drift  {detail}\n{means}`{scan}`\n" in applied.stderr
    # Applied again, nothing is done now: the earlier run's drift is not this answer's to advise on.
    again = json.loads(invoke("apply", str(plan_path), "--yes", "--json", *common).stdout)
    assert (again["nothing_to_do"], again["skipped_items"], again["drift_means"]) == (True, [], None)
    [run] = json.loads(invoke("runs", "list", "--json", *common).stdout)

    shown = invoke("runs", "show", run["run"], *common).stdout
    assert f"\nDrift           {means}`{scan.replace(str(plan_path), 'PLAN')}`\n" in shown
    assert re.search(rf"^Contact\s+{drifted.record_id}\s+.*drift\s+{re.escape(detail)}$", shown, re.MULTILINE)
    answer = json.loads(invoke("runs", "show", run["run"], "--json", *common).stdout)
    assert answer["drift_means"] == f"{means}`{scan.replace(str(plan_path), 'PLAN')}`"
    assert [i["detail"] for i in answer["skipped_items"]] == [detail]


def test_a_stopped_run_finishes_before_the_scan_its_drift_calls_for() -> None:
    # A scan over the plan's file before its resume would leave `apply PLAN --resume RUN` another plan than its run's.
    from crmsweep.commands.apply import drift_means

    skipped = [{"reason": "drift"}, {"reason": "missing"}]
    assert drift_means(skipped, "crmsweep scan -c c -o p.json", stopped=True) == (
        "1 skipped as drift: changed in the CRM since the backup the plan was scanned from, so left as they are. To "
        "plan them again, once this run is resumed and done (below), back up and scan again (scan takes a fresh "
        "backup first): `crmsweep scan -c c -o p.json`")
    assert drift_means([{"reason": "missing"}], "crmsweep scan", stopped=True) is None


def test_no_snapshots_of_a_connection_names_it_and_the_backup_that_takes_one(cli: Cli) -> None:
    told = cli("snapshots", "list", "-c", "nope").stderr
    assert told.strip() == (f"No snapshots of connection 'nope' under {cli.home / 'snapshots'}. Take one with "
                            f"`crmsweep backup -c nope --config {cli.config} --home {cli.home}`.")


def test_shell_completion_is_available(monkeypatch: pytest.MonkeyPatch) -> None:
    # Typer finds the shell by walking the process tree (shellingham), which under a loaded test run may
    # find none and exit 1: that is Typer's detection, not crmsweep's completion, so the shell is given.
    import shellingham  # type: ignore[import-untyped]

    monkeypatch.setattr(shellingham, "detect_shell", lambda: ("bash", "/bin/bash"))
    script = invoke("--show-completion")
    assert script.exit_code == 0 and "_CRMSWEEP_COMPLETE" in script.stdout
    env = {"_CRMSWEEP_COMPLETE": "complete_bash", "COMP_WORDS": "crmsweep runs s", "COMP_CWORD": "2"}
    done = runner.invoke(app, [], env=env, prog_name="crmsweep")
    assert done.stdout.split() == ["show"]


def test_usage_errors_are_one_line_and_json_under_json(cli: Cli) -> None:
    missing = invoke("apply")
    assert missing.exit_code == 2
    assert error_line(missing) == "crmsweep: Missing argument 'PLAN' (see `crmsweep apply --help`)"
    out_of_range = cli("preview", "plan.json", "--limit", "0", "--json", expect=2)
    message = error_line(out_of_range).removeprefix("crmsweep: ")
    assert "--limit" in message
    assert json.loads(out_of_range.stdout) == {"error": {"message": message, "exit_code": 2}}
    assert "No such command 'shw'" in error_line(invoke("runs", "shw"))
