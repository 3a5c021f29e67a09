"""`planted.json` in a sandbox state folder: the candidates each seed module planted, per pass.

`{"<pass>": {"proposed": [ids], "held": [ids]}}`: what the pass must propose on the default seed, and
the candidates the protections must hold back. Seed modules each add their passes, merged with what
the others wrote, so one test can scan the seed with every pass and compare.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PLANTED_FILE = "planted.json"


def read_planted(state_dir: Path) -> dict[str, dict[str, list[str]]]:
    path = state_dir / PLANTED_FILE
    if not path.exists():
        return {}
    data: Any = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def record_planted(state_dir: Path, pass_name: str, *, proposed: Sequence[str], held: Sequence[str]) -> None:
    """Add (or replace) one pass's entry, written whole to a temporary name and renamed into place."""
    data = read_planted(state_dir)
    data[pass_name] = {"proposed": list(proposed), "held": list(held)}
    path = state_dir / PLANTED_FILE
    temporary = path.with_name(f".{PLANTED_FILE}.{os.getpid()}")
    temporary.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
