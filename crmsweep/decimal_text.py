"""Numbers kept as the CRM wrote them (`FieldKind.DECIMAL`). Pure: no I/O, imports nothing of ours.

A CRM that answers numbers as text can hold more digits than a double: "12345678901234567890"
or "0.1000000000000000055" read as floats come back different, and a restore would write the rounded
value. So such a value is kept as its text, unchanged (no normalising: the CRM's own spelling is what a
restore writes back), and compared as an exact decimal where two spellings may meet.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from decimal import Decimal
from typing import Any

# A finite decimal in plain or exponent notation, ASCII digits only. Written for both Python's `re` and
# Arrow's RE2, so a whole column is checked in one call. (Decimal() alone would also take "1_000",
# non-ASCII digits, "NaN" and "Infinity"; an exponent of 10 digits or more it refuses.)
DECIMAL_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,9})?$"
_DECIMAL = re.compile(DECIMAL_PATTERN)


def decimal_text(value: Any) -> str:
    """`value` as the text a DECIMAL field keeps: a CRM's text unchanged but for surrounding blanks; a
    number as its exact (int, Decimal) or shortest round-trip (float) spelling. ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        text = repr(value) if isinstance(value, float) else str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise ValueError("not a number")
    if not _DECIMAL.fullmatch(text):
        raise ValueError("not a decimal number")
    return text


def same_decimal(a: str, b: str) -> bool:
    """Whether two decimal texts are the same number, exactly ("1000" and "1e3" are; the 18th digit
    counts). False when either is not a decimal."""
    a, b = a.strip(), b.strip()
    return bool(_DECIMAL.fullmatch(a) and _DECIMAL.fullmatch(b)) and Decimal(a) == Decimal(b)



def dumps_exact(data: Any, **options: Any) -> str:
    """`json.dumps(data, **options)`, but a Decimal anywhere in `data` is written as a JSON number with
    exactly its digits (json.dumps refuses a Decimal; a float would round it). A non-finite Decimal is
    refused (ValueError), as JSON has no NaN."""
    marker = f"\x00{uuid.uuid4().hex}:"  # no text a CRM holds contains it, so only our numbers match
    found = False

    def swap(value: Any) -> Any:
        nonlocal found
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise ValueError(f"{value} is not a finite number")
            found = True
            return marker + str(value)
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [swap(v) for v in value]
        return value

    text = json.dumps(swap(data), **options)
    if not found:
        return text
    quoted = re.escape(json.dumps(marker, **options)[:-1])  # the opening quote and the escaped marker
    return re.sub(quoted + r'([-+0-9.eE]+)"', r"\1", text)
