"""`same_value`, which every drift check and the plan's before-image check stand on: the shortcut for
equal values of one type must not change what counts as the same value."""

import math

import pytest

from crmsweep.cleanup.drift import same_value


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("x", "x", True),
        ("x", "y", False),
        (None, None, True),
        (math.nan, math.nan, True),  # a Parquet reader's "no value"
        (math.nan, None, True),
        (math.nan, 0.0, False),
        (None, "", False),
        (1, 1.0, True),
        (True, True, True),
        (True, 1, False),  # a checkbox is not a number
        (1, True, False),
        (False, 0, False),
        ("2026-01-02T03:04:05.000+0000", "2026-01-02T03:04:05.000Z", True),
        ("2026-01-02T03:04:05.000+0000", "2026-01-02T03:04:06.000Z", False),
        # A number kept as its exact text (FieldKind.DECIMAL) and a JSON number read live: exactly equal.
        ("123456789012345678", 123456789012345678, True),
        ("123456789012345678", 123456789012345679, False),
        ("125000.00", 125000.0, True),
        ("99999999999999.99", 99999999999999.98, False),  # the double nearest 99999999999999.99
        ("1e3", 1000, True),
        ("abc", 1, False),
        ("1", True, False),
        ({"a": 1}, {"a": 1}, True),
        ({"a": 1}, {"a": 2}, False),
    ],
)
def test_same_value(a: object, b: object, same: bool) -> None:
    assert same_value(a, b) is same
    assert same_value(b, a) is same
