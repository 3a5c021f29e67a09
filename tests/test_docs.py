"""The README's set-up commands are the contract with a new user and with CI; keep them honest."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.+?)\n```", text)


def test_readme_opens_with_the_demo_and_the_test_command() -> None:
    first, second = readme_commands()[:2]
    assert first.endswith("crmsweep demo")
    assert "pytest" in second and "ruff check" in second and "mypy" in second


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == readme_commands()[1]


def test_every_config_key_of_the_example_is_documented() -> None:
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for line in example.splitlines():
        stripped = line.strip()
        if "=" in stripped and not stripped.startswith("#"):
            assert "#" in stripped, f"config.example.toml: key without an explaining comment: {stripped}"


def test_the_example_config_loads_and_lists_every_pass_setting() -> None:
    from crmsweep.cleanup.passes import PASSES
    from crmsweep.config import load_config

    config = load_config(ROOT / "config.example.toml")
    assert "prod" in config.connections
    for name, spec in PASSES.items():
        assert set(config.passes.get(name, {})) == set(spec.defaults), f"[passes.{name}] in config.example.toml"
