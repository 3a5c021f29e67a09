"""Bounds on numeric settings, declared next to each setting and checked when the config is loaded.

A number outside what makes sense ("years = 100000", a 24-digit count) is refused with a line that
states the bound, instead of overflowing deep inside a pass or the retry policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

BOUND_KEY = "bound"  # the dataclass field metadata key that carries a setting's Bound


@dataclass(frozen=True)
class Bound:
    low: int | float
    high: int | float

    def problem(self, value: int | float) -> str | None:
        """None when `value` is within the bounds, else what to write in the error."""
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a number between {_number(self.low)} and {_number(self.high)}, got {value}"
        if self.low <= value <= self.high:
            return None
        shown = str(value) if len(str(value)) <= 30 else f"{str(value)[:27]}..."
        return f"must be between {_number(self.low)} and {_number(self.high)}, got {shown}"

    def metadata(self) -> dict[str, Any]:
        """For `dataclasses.field(metadata=...)`."""
        return {BOUND_KEY: self}


def _number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"
