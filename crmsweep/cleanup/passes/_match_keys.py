"""Matching keys of people and companies as integer codes, for exact grouping without a Python step per row.

A key column is a code per row (-1 where the row has none) and a way to name a code in a finding. Names
repeat (a few thousand surnames hold a million people), so a name column is normalised once per distinct
value and mapped back to its rows; a phone is reduced to its digits on the column's bytes (Arrow's regex
kernel cost a third of a second per million numbers). Codes are grouped by counting, so only the rows of
a shared key are ever sorted or named.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crmsweep.cleanup.passes._guards import starts_visible
from crmsweep.cleanup.view import text_array

PHONE_DIGITS = 10
MIN_PHONE_DIGITS = 7
_PHONE_SPAN = 10**PHONE_DIGITS  # a phone key is its digit count times this plus its value: "007" is not "7"
_CHUNK = 1 << 18  # rows of a phone column turned to digits at once: bounds the per-byte arrays
_SPREAD = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: nearby keys (consecutive codes) land far apart


@dataclass(frozen=True)
class Keys:
    """A key per row as an integer code (-1: no key), and the texts of an array of codes."""

    codes: np.ndarray
    texts: Callable[[np.ndarray], list[str]]
    distinct: pa.Array | None = None  # the text of each code, in code order, where the codes are a column's


def arrow_text(series: pd.Series) -> pa.Array:
    """The column as Arrow strings, null where missing, whatever the column's dtype (as `astype("string")`).
    A column of text is taken through `text_array`, which does not copy an Arrow-backed one."""
    text = text_array(series)
    if text is not None:
        return text
    # Not all text: each value as its str, as pandas makes it.
    array = pa.array(series.astype("string"), type=pa.string(), from_pandas=True)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def trimmed(values: pa.Array) -> pa.Array:
    """Surrounding whitespace gone, null for an empty cell: also one that shows nothing (whitespace and
    invisible format characters only, as `_guards.blank_text`), so no two records match on it."""
    text = pc.utf8_trim_whitespace(values)
    empty = pc.fill_null(pc.equal(text, ""), False).to_numpy(zero_copy_only=False).copy()
    # Only a text that does not start with a visible ASCII character can be invisible: nearly none is looked at.
    unsure = np.flatnonzero(~starts_visible(text) & ~empty & np.asarray(text.is_valid().to_numpy(zero_copy_only=False)))
    if len(unsure):
        empty[unsure] = pc.match_substring_regex(text.take(pa.array(unsure)), _INVISIBLE).to_numpy(zero_copy_only=False)
    return pc.if_else(pa.array(empty), pa.scalar(None, pa.string()), text) if empty.any() else text


# What `str.isspace` calls space (RE2's \s is ASCII only) and the format characters: as `_guards.blank_text`.
_INVISIBLE = r"^[\t-\r\x1c-\x1f\x85\p{Z}\p{Cf}]*$"


def email_text(values: pa.Array) -> pa.Array:
    # Lowering neither makes nor removes whitespace, so one trim after it is the trim before and after.
    return trimmed(pc.utf8_lower(values))


# Every run of characters that are neither letters nor digits becomes one space: what turning each such
# character into a space and then each run of spaces into one does, in one pass that leaves a single space
# alone (rewriting every space between two words cost twice the rest of the normalising).
_NOT_WORD = r"[^\p{L}\p{N}]{2,}|[^\p{L}\p{N} ]"


def name_text(values: pa.Array) -> pa.Array:
    """Case, punctuation and spacing ignored (letters and digits of any script kept, joined by one space)."""
    return trimmed(pc.replace_substring_regex(pc.utf8_lower(trimmed(values)), _NOT_WORD, " "))


def domain_text(values: pa.Array) -> pa.Array:
    """Scheme, credentials, www., port, path and a final dot gone."""
    text = pc.utf8_lower(trimmed(values))
    for pattern in (r"^[a-z][a-z0-9+.-]*://", r"^[^/@]*@", r"[/?#:].*$", r"^www\.", r"\.+$"):
        text = pc.replace_substring_regex(text, pattern, "")
    return trimmed(text)


def phone_text(values: pa.Array) -> pa.Array:
    """The last PHONE_DIGITS digits, null under MIN_PHONE_DIGITS of them (the plain form of `phone_keys`)."""
    digits = pc.utf8_slice_codeunits(pc.replace_substring_regex(trimmed(values), r"\D", ""), -PHONE_DIGITS)
    return trimmed(pc.if_else(pc.less(pc.utf8_length(digits), MIN_PHONE_DIGITS), pa.scalar(None, pa.string()),
                              digits))


def _codes(values: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(code per value, -1 for null; the distinct values in code order)."""
    encoded = pc.dictionary_encode(values)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary


def _texts(uniques: pa.Array) -> Callable[[np.ndarray], list[str]]:
    return lambda codes: [str(t) for t in uniques.take(pa.array(codes, type=pa.int64())).to_pylist()]


def coded(values: pa.Array, normalise: Callable[[pa.Array], pa.Array]) -> Keys:
    """Codes of `normalise(values)`; each row's value normalised once (for columns of mostly distinct values)."""
    codes, uniques = _codes(normalise(values))
    return Keys(codes, _texts(uniques), uniques)


def coded_shared(values: pa.Array, normalise: Callable[[pa.Array], pa.Array]) -> Keys:
    """`coded`, where only a key two or more values hold gets a code (-1 for the rest: it groups nothing).

    For columns of mostly distinct values (addresses): hashing a million distinct texts exactly is most of the
    cost, so the keys are first counted by a fingerprint of their bytes in hashed buckets (equal texts have
    equal fingerprints), and only the texts of a shared bucket, a few in a hundred, are coded exactly."""
    text = normalise(values)
    if pa.types.is_large_string(text.type):
        text = text.cast(pa.string())
    candidates = _shared_buckets(fingerprints(text), text.is_valid().to_numpy(zero_copy_only=False))
    found, uniques = _codes(text.take(pa.array(candidates, type=pa.int64())))
    shared = found >= 0
    shared[shared] = np.bincount(found[shared])[found[shared]] > 1
    codes = np.full(len(text), -1, np.int64)
    codes[candidates[shared]] = found[shared]
    return Keys(codes, _texts(uniques), uniques)


_WORD = 8  # bytes read at once for a fingerprint
_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(_WORD + 1)], dtype=np.uint64)  # the first n bytes of a word
_MIX = np.uint64(0xBF58476D1CE4E5B9)


def fingerprints(values: pa.Array) -> np.ndarray:
    """Per text (of a string array), 64 bits hashed from its length and bytes: equal texts of one array have
    equal fingerprints. A text of up to 32 bytes is hashed whole, a longer one by its first 32 and last 8 bytes (a
    pair of long texts differing only in between shares a fingerprint: a caller compares texts after)."""
    rows = len(values)
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[values.offset:values.offset + rows + 1].astype(np.int64)
    data = np.zeros(0, np.uint8) if data_buffer is None else np.frombuffer(data_buffer, dtype=np.uint8)
    padded = np.concatenate([data, np.zeros(_WORD, np.uint8)])
    # The 8 bytes from each byte on, as one (unaligned) word: a word is gathered at once, not a byte at a time.
    words = np.ndarray(shape=(len(padded) - _WORD + 1,), dtype="<u8", buffer=padded, strides=(1,))
    last = len(words) - 1
    start, length = offsets[:-1], np.diff(offsets)
    hashed = length.astype(np.uint64) * _SPREAD
    longest = int(length.max(initial=0))
    # Words past the longest text are left out (fingerprints are compared within one call).
    for at in [*range(0, min(longest, 4 * _WORD), _WORD), *([None] if longest > 4 * _WORD else [])]:
        if at is None:  # the last word of a text over 32 bytes (the words before cover a shorter one whole)
            at_byte, kept = np.maximum(start + length - _WORD, 0), np.where(length > 4 * _WORD, _WORD, 0)
        else:
            at_byte, kept = start + at, np.clip(length - at, 0, _WORD)
        word = words[np.minimum(at_byte, last)] & _MASKS[kept]  # little-endian: the first bytes are the low ones
        hashed = (hashed ^ word) * _MIX
        hashed ^= hashed >> np.uint64(31)
    return hashed


def _shared_buckets(hashes: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The rows (ascending) where `present` whose hash's bucket another present row's falls in too: every
    row whose value another row holds, and a few others (4 to 8 buckets per row)."""
    rows = np.flatnonzero(present)
    if len(rows) < 2:
        return np.zeros(0, np.int64)
    bits = max(10, (len(rows) - 1).bit_length() + 2)
    bucket = (hashes[rows] >> np.uint64(64 - bits)).astype(np.intp)
    return rows[np.bincount(bucket, minlength=1 << bits)[bucket] > 1]


def coded_distinct(values: pa.Array, normalise: Callable[[pa.Array], pa.Array]) -> Keys:
    """`coded`, normalising each distinct value once and mapping the answer back to its rows: the same
    codes (values equal after normalising share one), for a fraction of the work on repetitive columns."""
    raw, distinct = _codes(values)
    per_distinct, uniques = _codes(normalise(distinct))
    return Keys(_through(per_distinct, raw), _texts(uniques), uniques)


def _through(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """table[code] per code, -1 kept."""
    return np.where(codes >= 0, np.append(table, -1)[codes], -1)


def distinct_of(values: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """The raw values as codes and their distinct values (for a caller normalising pairs of them)."""
    return _codes(values)


def paired(first: Keys, second: Keys, separator: str) -> Keys:
    """One key for each pair of keys present in both columns that two or more rows hold, named
    "first{separator}second" (-1 for a pair only one row holds: it groups nothing, and most pairs are such).

    Pairs and texts are one to one when `separator` cannot occur in a first key (a normalised name holds no
    "/"), so equal texts are equal pairs and grouping by pair is grouping by text."""
    present = (first.codes >= 0) & (second.codes >= 0)
    span = int(second.codes.max(initial=-1)) + 1
    codes, uniques = shared_codes(np.where(present, first.codes * span + second.codes, -1))

    def texts(chosen: np.ndarray) -> list[str]:
        pairs = uniques[chosen]
        named = zip(first.texts(pairs // span), second.texts(pairs % span), strict=True)
        return [f"{a}{separator}{b}" for a, b in named]

    return Keys(codes, texts)


def shared_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per value, a code where it is >= 0 and another value equals it, else -1; the value of each code).

    Values are first counted in hashed buckets (4 to 8 per value): a value alone in its bucket is alone, and
    only the values of a shared bucket, a fifth of a column of mostly distinct keys, are hashed exactly."""
    codes = np.full(len(values), -1, np.int64)
    candidates = _shared_buckets(values.astype(np.uint64) * _SPREAD, values >= 0)
    found, uniques = pd.factorize(values[candidates])
    found = np.asarray(found, dtype=np.int64)
    shared = np.bincount(found)[found] > 1
    codes[candidates[shared]] = found[shared]
    return codes, np.asarray(uniques, dtype=np.int64)


def phone_keys(columns: Sequence[pa.Array]) -> list[Keys]:
    """Per column, a code for each number (`phone_text`) two or more rows hold, in one code space: a number
    in one column and the same in another share a code. -1 for no number, a number only one row holds, and a
    row's later column holding the same text as an earlier one (often a number is typed in both): the same
    row twice is no group, and its digits are not read again."""
    raw = []
    for at, column in enumerate(columns):
        repeat = np.zeros(len(column), dtype=bool)
        for earlier in columns[:at]:
            repeat |= pc.fill_null(pc.equal(column, earlier), False).to_numpy(zero_copy_only=False)
        read = column if not repeat.any() else column.filter(pa.array(~repeat))
        found = np.concatenate([np.zeros(0, np.int64),
                                *(_digit_keys(read.slice(s, _CHUNK)) for s in range(0, len(read), _CHUNK))])
        if len(read) < len(column):
            found = _scatter(found, ~repeat)
        raw.append(found)
    stacked = np.concatenate(raw) if raw else np.zeros(0, np.int64)
    codes, uniques = shared_codes(stacked)

    def texts(chosen: np.ndarray) -> list[str]:
        count, value = np.divmod(uniques[chosen], _PHONE_SPAN)
        return [str(v).zfill(c) for c, v in zip(count.tolist(), value.tolist(), strict=True)]

    bounds = np.cumsum([0, *(len(c) for c in columns)])
    return [Keys(codes[bounds[i]:bounds[i + 1]], texts) for i in range(len(columns))]


def _scatter(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """`values` laid at the True places of `where`, -1 at the others."""
    out = np.full(len(where), -1, np.int64)
    out[where] = values
    return out


def _digit_keys(values: pa.Array) -> np.ndarray:
    """Per row, the last PHONE_DIGITS ASCII digits as one integer tagged with how many there are, or -1 where
    fewer than MIN_PHONE_DIGITS. Digits are read off the UTF-8 bytes: a byte 0-9 is only ever that digit
    (a multi-byte character's bytes are all >= 0x80), and `\\D` (RE2) counts only ASCII 0-9 as digits.

    The kept bytes are laid out as a column of digit-only texts and Arrow cuts and parses those: a numpy
    gather per digit place cost two and a half times as much."""
    rows = len(values)
    if rows == 0:
        return np.zeros(0, np.int64)
    values = values.cast(pa.string())
    validity, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[values.offset:values.offset + rows + 1]
    if data_buffer is None or offsets[-1] == offsets[0]:
        return np.full(rows, -1, np.int64)
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0]:offsets[-1]]
    digit = data - np.uint8(48)  # wraps: under 10 only for "0".."9"
    is_digit = digit < 10
    before = np.zeros(len(data) + 1, np.int32)  # digits before each byte
    np.cumsum(is_digit, dtype=np.int32, out=before[1:])
    ends = before[offsets - offsets[0]]  # a digit-only text's offsets: where each row's digits start, then end
    count = np.diff(ends)
    valid = count >= MIN_PHONE_DIGITS
    if validity is not None:
        valid &= values.is_valid().to_numpy(zero_copy_only=False)
    if not valid.any():
        return np.full(rows, -1, np.int64)
    digits = pa.Array.from_buffers(pa.string(), rows, [
        pa.py_buffer(np.packbits(valid, bitorder="little")), pa.py_buffer(ends), pa.py_buffer(data[is_digit])])
    # Every kept byte is an ASCII digit, so bytes are characters: a byte slice is the character slice, at a
    # fifth of the cost (the UTF-8 slice walks each text from its end a code point at a time).
    last = pc.binary_slice(digits.view(pa.binary()), -PHONE_DIGITS).view(pa.string())
    value = pc.cast(last, pa.int64())
    value = pc.fill_null(value, -1).to_numpy(zero_copy_only=False)
    return np.where(valid, np.minimum(count, PHONE_DIGITS).astype(np.int64) * _PHONE_SPAN + value, -1)


def shared_rows(keys: Sequence[np.ndarray], rows: int) -> list[tuple[int, np.ndarray]]:
    """(code, rows ascending) of each code two or more distinct rows hold, over one or more key columns of
    `rows` rows, in code order. Codes are counted first, so only the rows of a shared code are sorted."""
    if rows == 0 or not keys:
        return []
    if len(keys) == 1:  # one column: a row holds one key, nothing to make unique
        row = np.flatnonzero(keys[0] >= 0)
        if len(row) == 0:
            return []
        row = row[np.bincount(keys[0][row])[keys[0][row]] > 1]
        code = keys[0][row]
        order = np.argsort(code, kind="stable")
        code, row = code[order], row[order]
    else:
        # A row holding the same key in two columns is one row: its later copies go first (a few compares of
        # whole columns), so only the rows of a shared key are ever sorted, even where most rows repeat a key.
        kept = []
        for at, column in enumerate(keys):
            keep = column >= 0
            for earlier in keys[:at]:
                keep &= column != earlier
            kept.append(np.flatnonzero(keep))
        codes = np.concatenate([column[where] for column, where in zip(keys, kept, strict=True)])
        row = np.concatenate(kept).astype(np.int64)
        if len(codes) == 0:
            return []
        shared = np.bincount(codes)[codes] > 1
        pairs = np.sort(codes[shared] * rows + row[shared])  # by code, then row (each pair once)
        code, row = pairs // rows, pairs % rows
    if len(code) == 0:
        return []
    bounds = np.flatnonzero(np.diff(code)) + 1
    return [(int(c), members) for c, members in zip(code[np.r_[0, bounds]], np.split(row, bounds), strict=True)]
