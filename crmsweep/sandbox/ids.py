"""Salesforce record ids: 15 case-sensitive characters plus the 3-character case-safe checksum.

Layout of the ids we mint: key prefix (3) + pod (2, from the seed, so two seeds never share ids)
+ a per-object sequence in base 62 (10). The checksum is the platform's: for each 5-character
chunk, a bit per upper-case letter, mapped onto A-Z0-5.
"""

from __future__ import annotations

import re

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[0-9A-Za-z]{15}([0-9A-Za-z]{3})?$")


def checksum(id15: str) -> str:
    """The 3-character suffix that makes a 15-character id safe in case-insensitive systems."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for position, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _CHECKSUM_ALPHABET[bits]
    return suffix


def to_18(id15: str) -> str:
    return id15 + checksum(id15)


def base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    if number:
        raise ValueError(f"{number} does not fit in {width} base-62 digits")
    return "".join(reversed(digits))


def pod_for_seed(seed: int) -> str:
    return base62(seed % (62 * 62), 2)


def make_id(key_prefix: str, pod: str, sequence: int) -> str:
    return to_18(key_prefix + pod + base62(sequence, 10))


def normalize(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id; None if it is not a well-formed id.

    An 18-character id whose suffix does not match its first 15 characters is malformed, as on the
    platform.
    """
    if not _ID_RE.fullmatch(value):
        return None
    full = to_18(value[:15])
    if len(value) == 18 and value[15:] != full[15:]:
        return None
    return full


def key_prefix(value: str) -> str:
    return value[:3]
