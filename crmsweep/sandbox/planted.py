"""`planted.json` in a sandbox state folder: which records a seed planted for each cleanup pass.

Shape: `{"<pass>": {"proposed": [ids], "held": [ids], "near_misses": [ids]}}` — `proposed` the
records the pass must propose with default settings, `held` the candidates the protections must
hold back, `near_misses` records that look like candidates but must not be proposed (not
exhaustive: filler records never qualify either). A report-only pass (duplicates) has `groups`
instead: lists of ids that belong together. Several seed modules write it (the org's seed,
then the custom-field seed...), so each merges its passes into what is there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FILE_NAME = "planted.json"
PLANTED_FILE = FILE_NAME

# Per pass: "proposed", "held", "near_misses" (lists of ids), "groups" (lists of lists of ids), and any
# notes a seed module adds for the reader.
Planted = Mapping[str, Mapping[str, Any]]


def read_planted(state_dir: Path) -> dict[str, dict[str, Any]]:
    path = state_dir / FILE_NAME
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(name): dict(entry) for name, entry in data.items()} if isinstance(data, dict) else {}


def forget_planted(state_dir: Path) -> None:
    """A reset org is seeded afresh: what was planted in the old one no longer holds."""
    (state_dir / FILE_NAME).unlink(missing_ok=True)


def record_planted(state_dir: Path, planted: Planted) -> None:
    """Merge `planted` (per pass, replacing that pass's entry) into the folder's file, atomically."""
    merged = read_planted(state_dir)
    for name, entry in planted.items():
        merged[name] = dict(entry)
    path = state_dir / FILE_NAME
    temporary = path.with_name(f".{FILE_NAME}.{os.getpid()}")
    temporary.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def planted_ids(state_dir: Path) -> set[str]:
    """Every id the folder's file names for any pass (proposed, held, near misses, groups)."""
    found: set[str] = set()
    for entry in read_planted(state_dir).values():
        for kind, values in entry.items():
            if not isinstance(values, list):
                continue  # a note for the reader, not ids
            for value in values:
                found.update(map(str, value) if kind == "groups" and isinstance(value, list) else [str(value)])
    return found
