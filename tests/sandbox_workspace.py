"""A workspace with one connection (default "org") to a running sandbox: what tests that scan and apply start from."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsweep import api
from crmsweep.sandbox.server import SandboxInfo


def org_workspace(info: SandboxInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, provider: str,
                  token_env: str, extra: str = "", connection: str = "org") -> api.Workspace:
    """Config `tmp_path/crmsweep.toml` naming the sandbox as `connection` (its token in `token_env`),
    followed by `extra` TOML; home `tmp_path/home`."""
    config = tmp_path / "crmsweep.toml"
    config.write_text(
        f'[connections.{connection}]\nprovider = "{provider}"\nurl = "{info.url}"\ntoken_env = "{token_env}"\n'
        f'ca_file = "{info.ca_file}"\n\n{extra}',
        encoding="utf-8",
    )
    monkeypatch.setenv(token_env, info.token)
    return api.Workspace.load(config, tmp_path / "home")
