"""`planted.json` in a sandbox's state folder: the candidates each seed module planted for each pass.

Shape: `{"<pass>": {"proposed": [ids], "held": [ids], ...}}` (held = candidates the protections must
hold back; other keys are notes for the reader, such as near-misses). Several seed modules write it:
each merges its passes into what is there, so the file names every pass some module planted for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PLANTED_FILE = "planted.json"


def read_planted(state_dir: Path) -> dict[str, dict[str, Any]]:
    path = state_dir / PLANTED_FILE
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def record_planted(state_dir: Path, planted: Mapping[str, Mapping[str, Any]]) -> None:
    """Merge `planted` (by pass) into the state folder's file, written whole then renamed into place."""
    merged = {**read_planted(state_dir), **{name: dict(entry) for name, entry in planted.items()}}
    path = state_dir / PLANTED_FILE
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial, path)
