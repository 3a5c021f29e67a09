"""What a user can type never gets a traceback: a table of bad inputs, each one line and an exit code.

For every row: the exit code (2 bad input, 3 safety refusal), exactly one non-empty line on stderr,
no "Traceback" in either stream, nothing written to the CRM (the built-in sandbox's records, read
back from its SQLite state, are unchanged) and no secret shown (the token variable holds a
distinctive string, and the sandbox's own token is known). Rows run in-process through typer's
CliRunner (separate stderr) to stay fast; a few run as a real subprocess of `.venv/bin/crmsweep`,
which is what a user sees.

Rows with `says` also check the words of the line (brackets kept as text, the variable named); rows
given `--json` also check the error object printed on stdout.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crmsweep import config as settings_module
from crmsweep.cli import app
from crmsweep.model import Change, Op, Plan

SECRET = "00DSEKRET!5f3a9c.token-never-print"
TOKEN_ENV = "BADIN_TOKEN"
CRMSWEEP = Path(sys.executable).parent / "crmsweep"
LONG = "a" * 300

BASE_CONFIG = f"""
[sandbox]
records = 40
seed = 5

[connections.prod]
provider = "salesforce"
url = "https://127.0.0.1:9"
token_env = "{TOKEN_ENV}"
"""


@dataclass(frozen=True)
class Row:
    name: str
    args: tuple[str, ...]
    exit: int
    config: str | bytes | None = None  # a config of its own (appended to nothing: the whole file)
    env: Mapping[str, str | None] = field(default_factory=dict)
    defaults: bool = True  # append --home and --config
    says: str | None = None  # words the one line must hold, exactly as written


def row(name: str, args: str, exit: int = 2, **kw: Any) -> Row:
    return Row(name, tuple(args.split()), exit, **kw)


def config_row(name: str, text: str | bytes, command: str = "runs list") -> Row:
    return row(name, command, config=text)


ROWS = [
    # --- config files: bounds, types, names, syntax --------------------------------------------------
    config_row("years_huge", "[passes.stale_contacts]\nyears = 100000\n"),
    config_row("years_zero", "[passes.stale_contacts]\nyears = 0\n"),
    config_row("years_text", '[passes.stale_contacts]\nyears = "ten"\n'),
    config_row("years_bool", "[passes.stale_contacts]\nyears = true\n"),
    config_row("years_huge_before_scan", "[passes.stale_contacts]\nyears = 100000\n",
               "scan -c sandbox-salesforce -o {root}/never.json"),
    config_row("days_huge", "[passes.inactive_users]\ndays = 100000000\n"),
    config_row("recent_days_huge", "[protect]\nrecent_days = 99999999999\n"),
    config_row("recent_days_24_digits", "[protect]\nrecent_days = 999999999999999999999999\n"),
    config_row("recent_days_negative", "[protect]\nrecent_days = -1\n"),
    config_row("max_changes_zero", "[safety]\nmax_changes = 0\n"),
    config_row("max_changes_per_object_huge", "[safety]\nmax_changes_per_object = 100000000000000000000\n"),
    config_row("attempts_huge", "[retry]\nattempts = 1000000\n"),
    config_row("initial_wait_nan", "[retry]\ninitial_wait = nan\n"),
    config_row("max_wait_inf", "[retry]\nmax_wait = inf\n"),
    config_row("records_huge", "[sandbox]\nrecords = 100000000000\n"),
    config_row("seed_24_digits", "[sandbox]\nseed = 999999999999999999999999\n"),
    config_row("unknown_section", "[protekt]\nrecent_days = 3\n"),
    config_row("unknown_key", "[protect]\nrecent = 3\n"),
    config_row("unknown_pass", "[passes.stale_contact]\nyears = 3\n"),
    config_row("unknown_pass_setting", "[passes.stale_contacts]\nyeers = 3\n"),
    config_row("pass_action_word", '[passes.stale_contacts]\naction = "archive"\n'),
    config_row("invalid_toml", "[protect\n"),
    config_row("not_utf8", b"\xff\xfe[\x00p\x00"),
    config_row("password_in_url", f'[connections.x]\nprovider = "salesforce"\nurl = "https://u:{SECRET}@h.example"\n'
                                  f'token_env = "{TOKEN_ENV}"\n'),
    config_row("token_pasted_as_token_env", f'[connections.x]\nprovider = "salesforce"\nurl = "https://h.example"\n'
                                            f'token_env = "{SECRET}"\n'),
    row("config_is_a_folder", "runs list --config {root}/adir", defaults=False, env={"CRMSWEEP_HOME": "{home}"}),
    row("config_missing", "runs list --config {root}/missing.toml", defaults=False, env={"CRMSWEEP_HOME": "{home}"}),
    # --- arguments -------------------------------------------------------------------------------------
    row("verify_300_char_id", f"snapshots verify {LONG}"),
    row("rollback_300_char_run", f"rollback {LONG} --yes"),
    row("scan_300_char_snapshot", f"scan -c sandbox-salesforce --snapshot {LONG} -o {{root}}/never.json"),
    row("verify_unknown_snapshot", "snapshots verify nope-20200101T000000Z"),
    row("rollback_unknown_run", "rollback run-nope --yes"),
    row("unknown_connection", "backup -c prdo"),
    row("unknown_object", "backup -c sandbox-salesforce --object Nope"),
    row("sandbox_state_is_a_file", "sandbox serve --state {root}/afile"),
    row("sandbox_state_is_a_link", "sandbox serve --state {root}/home-link", exit=3, says="symbolic link"),
    row("sandbox_records_zero", "sandbox serve --records 0 --state {root}/never-state"),
    row("scan_output_under_a_file", "scan -c sandbox-salesforce --snapshot {snapshot} -o {root}/afile/plan.json"),
    row("apply_300_char_plan_path", f"apply {{root}}/{LONG}.json --yes"),
    # --- files -----------------------------------------------------------------------------------------
    row("preview_missing_plan", "preview {root}/missing.json"),
    row("apply_empty_plan", "apply {root}/empty.json --yes"),
    row("apply_binary_plan", "apply {root}/binary.json --yes"),
    row("apply_not_json_plan", "apply {root}/notjson.json --yes"),
    row("apply_json_array_plan", "apply {root}/array.json --yes"),
    row("apply_huge_plan", "apply {root}/huge.json --yes"),
    row("apply_plan_is_a_folder", "apply {root}/adir --yes"),
    row("apply_edited_plan", "apply {root}/edited.json --yes", exit=3),
    row("apply_without_terminal_or_yes", "apply {plan}", exit=3),
    row("scan_snapshot_without_manifest",
        "scan -c sandbox-salesforce --snapshot sandbox-salesforce-20200101T000000Z -o {root}/never.json"),
    row("scan_snapshot_manifest_not_json",
        "scan -c sandbox-salesforce --snapshot sandbox-salesforce-20200102T000000Z -o {root}/never.json"),
    # --- environment -----------------------------------------------------------------------------------
    row("home_env_empty", "runs list --config {config}", defaults=False, env={"CRMSWEEP_HOME": ""}),
    row("home_env_blank", "runs list --config {config}", defaults=False, env={"CRMSWEEP_HOME": "   "}),
    row("config_env_empty", "runs list --home {home}", defaults=False, env={"CRMSWEEP_CONFIG": ""}),
    row("config_env_missing", "runs list --home {home}", defaults=False,
        env={"CRMSWEEP_CONFIG": "{root}/missing.toml"}),
    row("home_env_dev_null", "runs list --config {config}", defaults=False, env={"CRMSWEEP_HOME": "/dev/null"}),
    row("home_env_proc_self", "runs list --config {config}", exit=3, defaults=False,
        env={"CRMSWEEP_HOME": "/proc/self"}),
    row("home_env_a_file", "runs list --config {config}", defaults=False, env={"CRMSWEEP_HOME": "{root}/afile"}),
    row("token_unset", "backup -c prod", env={TOKEN_ENV: None}),
    row("token_empty", "backup -c prod", env={TOKEN_ENV: ""}),
    row("token_blank", "backup -c prod", env={TOKEN_ENV: "   "}),
    # --- the home folder (item 11) ---------------------------------------------------------------------
    row("home_is_a_file", "runs list --home {root}/afile --config {config}", defaults=False),
    row("home_under_a_file", "snapshots list --home {root}/afile/h --config {config}", defaults=False),
    row("home_is_a_symlink", "runs list --home {root}/home-link --config {config}", exit=3, defaults=False),
    row("home_runs_is_a_symlink", "runs list --home {root}/home-runs-link --config {config}", exit=3, defaults=False),
    row("home_snapshots_is_a_file", "snapshots list --home {root}/home-snapshots-file --config {config}",
        defaults=False),
    row("home_of_another_user", "runs list --home {root}/home-foreign --config {config}", exit=3, defaults=False),
    row("home_unwritable", "runs list --home {unwritable} --config {config}", defaults=False),
    row("home_name_too_long", f"runs list --home {{root}}/{'d' * 300} --config {{config}}", defaults=False),
    # --- messages are text, options before the command, JSON errors -----------------------------------
    config_row("section_brackets_kept", "[connections.t]\nprovider = 1\n"),
    row("pass_section_brackets_kept", "runs list", config="[passes.stale_contacts]\nyears = 0\n",
        says="[passes.stale_contacts] years must be between 1 and 100"),
    row("preview_path_with_markup", "preview {root}/[/x].json", says="[/x].json does not exist"),
    row("config_before_the_command", "--config {root}/missing.toml runs list --home {home}", defaults=False,
        says="missing.toml"),
    row("home_before_the_command", "--home {root}/afile runs list --config {config}", defaults=False),
    row("json_error_unknown_connection", "backup -c prdo --json", says="prdo"),
    row("json_error_edited_plan", "apply {root}/edited.json --yes --json", exit=3),
    row("scan_output_is_the_config", "scan -c sandbox-salesforce --snapshot {snapshot} -o {config}",
        says="is not a crmsweep plan: refusing to overwrite it"),
    # --- the connection: token, url, CA (items 9 and 14) ----------------------------------------------
    row("token_not_ascii", "backup -c prod", env={TOKEN_ENV: "abc\u20acdef"}, says=TOKEN_ENV),
    row("nothing_listening", "backup -c prod", says="nothing is listening at 127.0.0.1:9"),
    config_row("unknown_host", f'[connections.x]\nprovider = "salesforce"\nurl = "https://crm.invalid"\n'
                               f'token_env = "{TOKEN_ENV}"\n', "backup -c x"),
    row("ca_file_not_pem", "backup -c x", config=f'[connections.x]\nprovider = "salesforce"\n'
                                                f'url = "https://127.0.0.1:9"\ntoken_env = "{TOKEN_ENV}"\n'
                                                'ca_file = "afile"\n'),
    # --- plan files and paths that once gave tracebacks or hung ---------------------------------------
    row("preview_plan_with_nan", "preview {root}/nan.json"),
    row("preview_plan_with_5000_digits", "preview {root}/bigint.json"),
    row("preview_plan_nested_past_all_use", "preview {root}/deep.json"),
    row("preview_plan_with_lone_surrogate", "preview {root}/surrogate.json"),
    row("preview_plan_with_number_notes", "preview {root}/notes.json"),
    row("preview_plan_whose_change_is_a_list", "preview {root}/listchange.json", says="must be an object"),
    # A KeyError's text ("malformed plan header: 'plan_id'") named neither the field nor what to do.
    row("apply_plan_missing_header_fields", "apply {root}/noplanid.json --yes",
        says="its header has no 'plan_id', 'org_id' fields: the file is not a crmsweep plan, or was edited"),
    row("preview_plan_without_header", "preview {root}/noheader.json",
        says="its header has no 'plan_id', 'created', 'tool_version', 'provider', 'org_id', 'connection', 'source' "
             "fields: the file is not a crmsweep plan, or was edited; use the plan file scan wrote, or scan again"),
    row("preview_dev_zero", "preview /dev/zero", says="not a regular file"),
    row("preview_fifo", "preview {root}/fifo", says="not a regular file"),
    row("config_is_a_fifo", "runs list --config {root}/fifo --home {home}", defaults=False,
        says="not a regular file"),
    row("config_of_unknown_user", "runs list --config ~nosuchuser-crmsweep/c.toml --home {home}", defaults=False),
    row("home_of_unknown_user", "runs list --home ~nosuchuser-crmsweep/h --config {config}", defaults=False),
    row("scan_output_name_too_long", f"scan -c sandbox-salesforce --snapshot {{snapshot}} -o {{root}}/{'p' * 300}"),
    row("scan_output_is_a_fifo", "scan -c sandbox-salesforce --snapshot {snapshot} -o {root}/fifo",
        says="is not a crmsweep plan"),
    # --- forged plans (item 1) ------------------------------------------------------------------------
    row("apply_plan_with_recomputed_digest", "apply {root}/rehashed.json --yes", exit=3, says="plan accept"),
    row("apply_plan_with_appended_create", "apply {root}/appended.json --yes", exit=3),
]

# The same rows, once more through the real executable.
SUBPROCESS_ROWS = ("recent_days_24_digits", "verify_300_char_id", "home_env_empty", "home_is_a_symlink",
                   "apply_without_terminal_or_yes", "token_not_ascii", "preview_path_with_markup")


@dataclass(frozen=True)
class World:
    root: Path
    home: Path
    config: Path
    plan: Path
    snapshot: str
    unwritable: Path

    def fill(self, text: str) -> str:
        return text.format(root=self.root, home=self.home, config=self.config, plan=self.plan,
                           snapshot=self.snapshot, unwritable=self.unwritable)

    def sandbox_token(self) -> str:
        return (self.home / "sandbox" / "salesforce" / "token").read_text(encoding="utf-8").strip()


def crm_state(home: Path) -> str:
    """A digest of every record (and id sequence) the sandbox holds; its API-call counter is left out,
    since reading is allowed."""
    db = home / "sandbox" / "salesforce" / "org.sqlite3"
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != '_sandbox_meta' ORDER BY name")]
        digest = hashlib.sha256()
        rows = 0
        for table in tables:
            content = connection.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
            rows += len(content)
            digest.update(repr((table, content)).encode("utf-8"))
    finally:
        connection.close()
    assert rows > 100, "the sandbox should hold an org"
    return digest.hexdigest()


runner = CliRunner()


def base_env() -> dict[str, str | None]:
    return {"CRMSWEEP_HOME": None, "CRMSWEEP_CONFIG": None, TOKEN_ENV: SECRET}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("bad")
    home, config = root / "home", root / "crmsweep.toml"
    config.write_text(BASE_CONFIG, encoding="utf-8")
    plan = root / "plan.json"
    result = runner.invoke(app, ["scan", "-c", "sandbox-salesforce", "-o", str(plan), "--json",
                                 "--home", str(home), "--config", str(config)], env=base_env())
    assert result.exit_code == 0, result.stderr
    snapshot = json.loads(result.stdout)["snapshot"]

    (root / "afile").write_text("not a folder\n", encoding="utf-8")
    (root / "adir").mkdir()
    (root / "empty.json").write_bytes(b"")
    (root / "binary.json").write_bytes(bytes(range(256)) * 4)
    (root / "notjson.json").write_text("{not json", encoding="utf-8")
    (root / "array.json").write_text("[]", encoding="utf-8")
    header = {"plan_id": "p", "created": "2026-01-01T00:00:00.000Z", "tool_version": "0", "provider": "salesforce",
              "org_id": "o", "connection": "c", "source": {"kind": "snapshot", "id": "s"}}
    shell = '{"format": "crmsweep.plan/1", "header": ' + json.dumps(header) + ', "changes": [%s]%s}'
    (root / "nan.json").write_text(shell % ('{"op": "delete", "object": "Contact", "record_id": "x", '
                                            '"before": {"a": NaN}}', ""), encoding="utf-8")
    (root / "bigint.json").write_text(shell % ("", ', "x": ' + "9" * 5000), encoding="utf-8")
    (root / "deep.json").write_text(shell % ("", ', "x": ' + "[" * 100_000 + "]" * 100_000), encoding="utf-8")
    (root / "surrogate.json").write_text(shell.replace('"p"', '"\\ud800"') % ("", ""), encoding="utf-8")
    (root / "notes.json").write_text(shell.replace('"source"', '"notes": [1, 2], "source"') % ("", ""),
                                     encoding="utf-8")
    (root / "listchange.json").write_text(shell % ("[1]", ""), encoding="utf-8")
    partial = {k: v for k, v in header.items() if k not in ("plan_id", "org_id")}
    (root / "noplanid.json").write_text(shell.replace(json.dumps(header), json.dumps(partial)) % ("", ""),
                                        encoding="utf-8")
    (root / "noheader.json").write_text('{"format": "crmsweep.plan/1", "changes": []}', encoding="utf-8")
    os.mkfifo(root / "fifo")
    (root / "huge.json").write_text('{"format": "crmsweep.plan/1", "pad": "' + "x" * 20_000_000 + '"}',
                                    encoding="utf-8")
    text = plan.read_text(encoding="utf-8")
    data = json.loads(text)
    assert data["changes"], "the seeded org should give the scan something to propose"
    data["changes"][0]["label"] = "edited by hand"
    (root / "edited.json").write_text(json.dumps(data), encoding="utf-8")
    # Forgeries that recompute the sha256: one edits a label, one appends a create the passes never propose.
    forged, _ = Plan.from_json(text)
    relabelled = replace(forged.changes[0], label="edited by hand")
    (root / "rehashed.json").write_text(Plan(forged.header, (relabelled, *forged.changes[1:])).to_json(),
                                        encoding="utf-8")
    create = Change(op=Op.CREATE, object="User", record_id="", before={}, reason="stale", pass_name="stale_contacts",
                    after={"LastName": "Doe", "FirstName": "Jane", "Email": "jane@x.org", "IsActive": True},
                    label="Jane Doe <jane@x.org>")
    (root / "appended.json").write_text(Plan(forged.header, (*forged.changes, create)).to_json(), encoding="utf-8")
    snapshots = home / "snapshots"
    (snapshots / "sandbox-salesforce-20200101T000000Z").mkdir()
    (snapshots / "sandbox-salesforce-20200102T000000Z").mkdir()
    (snapshots / "sandbox-salesforce-20200102T000000Z" / "manifest.json").write_text("{", encoding="utf-8")

    (root / "home-link").symlink_to(home)
    (root / "home-runs-link").mkdir()
    (root / "home-runs-link" / "runs").symlink_to(root / "adir")
    (root / "home-snapshots-file").mkdir()
    (root / "home-snapshots-file" / "snapshots").write_text("", encoding="utf-8")
    (root / "home-foreign").mkdir()
    unwritable = root / "unwritable"
    unwritable.mkdir(mode=0o500)
    if os.geteuid() == 0:
        os.chown(root / "home-foreign", 54321, 54321)
        unwritable = Path("/proc/1")  # root may write anywhere a mode allows, but not into /proc
    yield World(root, home, config, plan, snapshot, unwritable)


def _args(world: World, r: Row) -> list[str]:
    args = [world.fill(a) for a in r.args]
    if r.defaults:
        args += ["--home", str(world.home), "--config", str(_config_for(world, r))]
    return args


def _config_for(world: World, r: Row) -> Path:
    if r.config is None:
        return world.config
    path = world.root / f"config-{r.name}.toml"
    path.write_bytes(r.config if isinstance(r.config, bytes) else r.config.encode("utf-8"))
    return path


def _env(world: World, r: Row) -> dict[str, str | None]:
    env = base_env()
    env.update({k: (world.fill(v) if v is not None else None) for k, v in r.env.items()})
    return env


def _check_outcome(world: World, r: Row, exit_code: int, stdout: str, stderr: str, before: str) -> None:
    shown = f"{r.name}: exit {exit_code}\nstdout: {stdout[:2000]}\nstderr: {stderr[:2000]}"
    assert exit_code == r.exit, shown
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, shown
    assert lines[0].startswith("crmsweep: "), shown
    for stream in (stdout, stderr):
        assert "Traceback" not in stream, shown
        assert SECRET not in stream, shown
        assert world.sandbox_token() not in stream, shown
    if r.says is not None:
        assert r.says in lines[0], shown
    if "--json" in r.args:
        error = json.loads(stdout)["error"]
        assert error["exit_code"] == r.exit and error["message"] in lines[0], shown
    assert crm_state(world.home) == before, f"{r.name}: the CRM was written to"


def _rows(names: tuple[str, ...] | None = None) -> list[Any]:
    chosen = [r for r in ROWS if names is None or r.name in names]
    return [pytest.param(r, id=r.name) for r in chosen]


def test_the_table_is_large_enough() -> None:
    assert len(ROWS) >= 40
    assert len({r.name for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("r", _rows())
def test_bad_input_is_one_line_and_an_exit_code(world: World, r: Row) -> None:
    if r.name == "home_of_another_user" and os.geteuid() != 0:
        pytest.skip("needs root to give a folder to another user")
    before = crm_state(world.home)
    result = runner.invoke(app, _args(world, r), env=_env(world, r))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        pytest.fail(f"{r.name} raised:\n{''.join(traceback.format_exception(result.exception))}")
    _check_outcome(world, r, result.exit_code, result.stdout, result.stderr, before)


@pytest.mark.parametrize("r", _rows(SUBPROCESS_ROWS))
def test_bad_input_through_the_real_command(world: World, r: Row) -> None:
    before = crm_state(world.home)
    env = {k: v for k, v in os.environ.items() if k not in ("CRMSWEEP_HOME", "CRMSWEEP_CONFIG")}
    env.update({k: v for k, v in _env(world, r).items() if v is not None})
    for k, v in _env(world, r).items():
        if v is None:
            env.pop(k, None)
    done = subprocess.run([str(CRMSWEEP), *_args(world, r)], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120, check=False)
    _check_outcome(world, r, done.returncode, done.stdout, done.stderr, before)


# --- the bounds themselves --------------------------------------------------------------------------


@pytest.mark.parametrize("section", ["ProtectSettings", "SafetySettings", "RetrySettings", "SandboxSettings"])
def test_every_numeric_setting_declares_a_bound_that_holds_its_default(section: str) -> None:
    settings = getattr(settings_module, section)
    for f in fields(settings):
        if f.type in ("int", "float"):
            assert isinstance(f.default, int | float)
            assert settings_module.bound_of(settings, f.name).problem(f.default) is None, f.name


def test_pass_settings_declare_their_bounds() -> None:
    from crmsweep.cleanup.passes import PASSES

    for spec in PASSES.values():
        for key, default in spec.defaults.items():
            if isinstance(default, int | float) and not isinstance(default, bool):
                assert spec.bounds[key].problem(default) is None, (spec.name, key)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[passes.stale_contacts]\nyears = 100000\n", "years must be between 1 and 100, got 100000"),
        ("[passes.inactive_users]\ndays = 100000000\n", "days must be between 1 and 36500, got 100000000"),
        ("[protect]\nrecent_days = 99999999999\n", "recent_days: must be between 0 and 36500, got 99999999999"),
        ("[retry]\nmax_wait = inf\n", "max_wait: must be a number between 0 and 3600, got inf"),
    ],
)
def test_the_error_states_the_bound(world: World, text: str, expected: str) -> None:
    path = world.root / "bound.toml"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["runs", "list", "--home", str(world.home), "--config", str(path)], env=base_env())
    assert result.exit_code == 2
    assert expected in result.stderr and str(path) in result.stderr

