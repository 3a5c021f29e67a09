"""A Ctrl-C while the command line is still being imported (most of a second: pandas, Arrow) is answered as any
other Ctrl-C: one line, exit 130, the JSON error under --json; never a traceback from inside pandas."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

# Ctrl-C lands during the import of the command line, wherever in it: simulated by that import raising it.
_INTERRUPTED_IMPORT = """
import builtins, sys
real = builtins.__import__
def interrupted(name, *args, **kwargs):
    if name == "crmsweep.cli":
        raise KeyboardInterrupt
    return real(name, *args, **kwargs)
builtins.__import__ = interrupted
sys.argv = ["crmsweep", *sys.argv[1:]]
from crmsweep.launch import main
main()
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _INTERRUPTED_IMPORT, *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_a_ctrl_c_while_the_command_line_loads_is_one_line_and_exit_130() -> None:
    done = _run("preview", "plan.json")
    assert (done.returncode, done.stderr, done.stdout) == (130, "crmsweep: interrupted\n", "")
    as_json = _run("preview", "plan.json", "--json")
    assert as_json.returncode == 130 and as_json.stderr == "crmsweep: interrupted\n"
    assert json.loads(as_json.stdout) == {"error": {"message": "interrupted", "exit_code": 130}}


def test_the_command_and_python_m_start_through_the_launcher() -> None:
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["crmsweep"] == "crmsweep.launch:main"
    done = subprocess.run([sys.executable, "-m", "crmsweep", "--version"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.startswith("crmsweep ")
