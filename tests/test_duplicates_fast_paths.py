"""The duplicates pass's fast paths (integer keys, bulk-scored blocks, labels read from Arrow) answer as the
plain code does: the rules written out a row and a block at a time, on awkward people."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz

from crmsweep.cleanup.labels import labels_by_id, record_label
from crmsweep.cleanup.passes import _match_keys as keys
from crmsweep.cleanup.passes import _similar_names as similar
from crmsweep.cleanup.passes import duplicates
from crmsweep.cleanup.view import FrameView
from tests.pass_views import SF, audit, fields, manifest, run_one, sfid, std, view

FIRST = [None, "", " ", "Ann", "ann ", "Anne", "ANN", "Łukasz", "ŁUKASZ", "Zoë", "Zoe", "O'Neil", "Mary Ann", "İlker",
         "ß", "ǅemal", "Jo\tAnn", "\u3000", "Li-Wei", "李", "José", "José"]  # the last: e + combining accent
LAST = [None, "", "Smith", " smith", "Smyth", "Smith-Jones", "Smith Jones", "Ann Smith", "Ng", "Ñg", "de la Cruz",
        "Dela Cruz", "李", "Łęcki", "O'Brien", "OBrien", "Smi", "Sm", "x\u2028y", "Ünal", "Unal"]
COMPANY = [None, "", "Acme", "ACME, Inc.", "acme inc", "A / B", "a / b", "Acme / West", "\u00a0Acme", "Ünal GmbH"]
EMAIL = [None, "", " ", "a@x.io", "A@X.io ", " a@x.io", "b@x.io", "a+tag@x.io", "ÄÖ@x.io", "äö@x.io", "a.b@x.io"]
PHONE = [None, "", "+1 (555) 010-2030", "555.010.2030", "0044 20 7946 0958", "20 7946 0958", "12-34", "0000000",
         "000000", "007 1234567", "71234567", "12345678901234", "٣٤٥٦٧٨٩٠", "１２３４５６７", "5550102030x12", "ext. 9"]


def _row(n: int, first: str | None, last: str | None, company: str | None, email: str | None, phone: str | None,
         mobile: str | None) -> dict[str, Any]:
    return {"Id": sfid("00Q", n), "FirstName": first, "LastName": last, "Company": company, "Email": email,
            "Phone": phone, "MobilePhone": mobile, "IsDeleted": False, **audit(SF, n)}


PERSON = st.tuples(st.sampled_from(FIRST), st.sampled_from(LAST), st.sampled_from(COMPANY), st.sampled_from(EMAIL),
                   st.sampled_from(PHONE), st.sampled_from(PHONE))
LEAD_SPECS = {"Lead": std(SF, *fields("FirstName", "LastName", "Company", "Email", "Phone", "MobilePhone"))}


def _plain_sets(names: list[str], threshold: int) -> list[tuple[list[int], float]]:
    """A block's similar sets, a pair at a time: union-find over links, the lowest link per set, sets by
    first row. A block of three or more keeps cdist's float32 scores, as the pass always has."""
    root = list(range(len(names)))

    def find(i: int) -> int:
        while root[i] != i:
            i = root[i]
        return i

    links = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            score = fuzz.token_sort_ratio(names[i], names[j], score_cutoff=threshold)
            if score >= threshold:
                links.append((i, j, score if len(names) == 2 else float(np.float32(score))))
                a, b = find(i), find(j)
                root[max(a, b)] = min(a, b)
    sets: dict[int, list[int]] = {}
    for i in range(len(names)):
        sets.setdefault(find(i), []).append(i)
    return [(members, min(s for i, _, s in links if find(i) == label))
            for label, members in sorted(sets.items()) if len(members) > 1]


def _plain_findings(records: Sequence[dict[str, Any]], threshold: int, max_block: int, max_group: int
                    ) -> list[tuple[tuple[str, ...], str, float]]:
    """What the pass reports for leads, the rules applied a row at a time with the plain normalisers."""
    frame = pd.DataFrame(records, columns=["Id", "FirstName", "LastName", "Company", "Email", "Phone", "MobilePhone"])
    ids = frame["Id"].tolist()
    found: list[tuple[tuple[str, ...], str, float]] = []

    def exact(columns: list[pd.Series], reason: str, score: float) -> None:
        by: dict[str, set[str]] = {}
        for column in columns:
            for rid, key in zip(ids, column.tolist(), strict=True):
                if key is not pd.NA:
                    by.setdefault(key, set()).add(rid)
        found.extend((tuple(sorted(by[k])), f"{reason} {k}", score) for k in sorted(by) if len(by[k]) > 1)

    exact([duplicates.normal_email(frame["Email"])], "same email", 1.0)
    exact([duplicates.normal_phone(frame[f]) for f in ("Phone", "MobilePhone")], "same phone", 0.8)
    last = duplicates.normal_name(frame["LastName"]).tolist()
    company = duplicates.normal_name(frame["Company"]).tolist()
    first = [f if isinstance(f, str) else "" for f in frame["FirstName"]]
    full = [pd.NA if a is pd.NA else duplicates.normal_name(pd.Series([f"{f} {a}"]))[0]
            for f, a in zip(first, last, strict=True)]
    both = [pd.NA if n is pd.NA or c is pd.NA else f"{n} / {c}" for n, c in zip(full, company, strict=True)]
    exact([pd.Series(both, dtype=object)], "same name and company", 0.95)
    blocks: dict[str, list[int]] = {}
    for row, (a, c) in enumerate(zip(last, company, strict=True)):
        if a is not pd.NA and c is not pd.NA:
            blocks.setdefault(f"{a[:duplicates.BLOCK_LETTERS]} / {c}", []).append(row)
    exact_sets = {ids for ids, _, _ in found}
    for block in sorted(blocks):
        rows = blocks[block]
        if len(rows) < 2 or len(rows) > max_block:
            continue
        for members, low in _plain_sets([str(full[r]) for r in rows], threshold):
            group = tuple(sorted(ids[rows[m]] for m in members))
            if group not in exact_sets:
                found.append((group, f"similar names at the same company {block.split(' / ', 1)[1]}", low / 100 * 0.95))
    merged: dict[tuple[str, ...], tuple[str, float]] = {}
    for group, reason, score in found:
        was = merged.get(group)
        merged[group] = (reason, score) if was is None else (f"{was[0]}; {reason}", max(was[1], score))
    return [(g, r, round(s, 4)) for g, (r, s) in merged.items() if len(g) <= max_group]


@settings(max_examples=100, deadline=None)
@given(people=st.lists(PERSON, min_size=0, max_size=40), threshold=st.sampled_from([50, 80, 92]),
       max_block=st.sampled_from([3, 1000]))
def test_the_pass_reports_what_the_rules_applied_a_row_at_a_time_find(
    people: list[tuple[str | None, ...]], threshold: int, max_block: int
) -> None:
    records = [_row(n, *person) for n, person in enumerate(people)]
    was = duplicates.MAX_BLOCK
    try:
        duplicates.MAX_BLOCK = max_block
        out = run_one("duplicates", view(SF, LEAD_SPECS, {"Lead": records}), SF, threshold=threshold, max_group=6)
        arrow = run_one("duplicates", _ArrowStrings(manifest(SF), LEAD_SPECS, {"Lead": records}), SF,
                        threshold=threshold, max_group=6)
    finally:
        duplicates.MAX_BLOCK = was
    assert [(i.record_ids, i.reason, i.score) for i in out.review] == _plain_findings(records, threshold, max_block, 6)
    assert arrow.review == out.review


class _ArrowStrings(FrameView):
    """Frames whose text columns are Arrow-backed (a reader may hand them so): the same findings."""

    def frame(self, object_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        frame = super().frame(object_name, columns)
        return frame.astype({c: pd.ArrowDtype(pa.string()) for c in frame.columns if frame[c].dtype == object})


# --- the pieces, each against its plain form -------------------------------------------------------------------

TEXTS = st.lists(st.one_of(st.none(), st.sampled_from(FIRST + LAST + COMPANY + EMAIL + PHONE),
                           st.text(max_size=6)), max_size=30)


def _partition(codes: np.ndarray, texts: list[Any]) -> None:
    """Codes are equal exactly where the plain texts are, -1 exactly where there is none."""
    present = [t is not pd.NA and t is not None for t in texts]
    assert [c >= 0 for c in codes.tolist()] == present
    for i, a in enumerate(texts):
        for j, b in enumerate(texts):
            if present[i] and present[j]:
                assert (codes[i] == codes[j]) == (a == b)


def _normalised(values: list[str | None]) -> Iterator[tuple[pa.Array, Callable[[pa.Array], pa.Array], list[Any]]]:
    """(the values as Arrow text, a key normaliser, the plain normalised texts), for each normaliser."""
    array = pa.array(values, type=pa.string())
    for normalise in (keys.name_text, keys.email_text, keys.domain_text, keys.trimmed):
        yield array, normalise, normalise(array).to_pylist()


@settings(max_examples=200, deadline=None)
@given(values=TEXTS)
def test_coded_keys_are_the_plain_normalised_texts(values: list[str | None]) -> None:
    for array, normalise, plain in _normalised(values):
        assert "" not in plain  # no key is an empty text: a cell of spaces is no key, not one shared by all such
        for coded in (keys.coded(array, normalise), keys.coded_distinct(array, normalise)):
            _partition(coded.codes, plain)
            assert coded.texts(coded.codes[coded.codes >= 0]) == [t for t in plain if t is not None]


def _plain_groups(columns: list[list[Any]]) -> list[tuple[Any, list[int]]]:
    """(key, rows) of each key two or more rows hold, over columns of one length (None: no key)."""
    by: dict[Any, set[int]] = {}
    for column in columns:
        for row, key in enumerate(column):
            if key is not None:
                by.setdefault(key, set()).add(row)
    return sorted((key, sorted(rows)) for key, rows in by.items() if len(rows) > 1)


def _named_groups(found: Sequence[keys.Keys]) -> list[tuple[Any, list[int]]]:
    shared = keys.shared_rows([k.codes for k in found], len(found[0].codes))
    names = found[0].texts(np.array([code for code, _ in shared], dtype=np.int64))
    return sorted((name, rows.tolist()) for name, (_, rows) in zip(names, shared, strict=True))


def _coded_cells_are_their_texts(found: Sequence[keys.Keys], plain: Sequence[list[Any]]) -> None:
    for column, texts in zip(found, plain, strict=True):
        coded = column.codes >= 0
        assert column.texts(column.codes[coded]) == [t for t, c in zip(texts, coded.tolist(), strict=True) if c]


PHONES = st.one_of(st.none(), st.sampled_from(PHONE), st.text(alphabet="0123456789 +-٣１x", max_size=16))


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.one_of(st.tuples(PHONES, PHONES), PHONES.map(lambda p: (p, p))), max_size=20))
def test_phone_keys_group_the_rows_sharing_the_digits_the_regex_keeps(rows: list[tuple[str | None, str | None]]
                                                                      ) -> None:
    """Only numbers two rows hold are coded, and a row's mobile typed as its phone is not read twice: the
    groups are still those of the plain digits of every cell."""
    columns = [pa.array([p for p, _ in rows], type=pa.string()), pa.array([m for _, m in rows], type=pa.string())]
    plain = [keys.phone_text(c).to_pylist() for c in columns]
    found = keys.phone_keys(columns)
    assert _named_groups(found) == _plain_groups(plain)
    _coded_cells_are_their_texts(found, plain)
    phone = [p for p, _ in rows]
    sliced = pa.array([None, "x", *phone], type=pa.string()).slice(2)  # an array that starts inside its buffers
    assert np.array_equal(keys.phone_keys([sliced])[0].codes, keys.phone_keys([columns[0]])[0].codes)


@settings(max_examples=200, deadline=None)
@given(values=TEXTS)
def test_shared_text_keys_are_the_plain_normalised_texts_two_values_hold(values: list[str | None]) -> None:
    for array, normalise, plain in _normalised(values):
        found = keys.coded_shared(array, normalise)
        assert _named_groups([found]) == _plain_groups([plain])
        _coded_cells_are_their_texts([found], [plain])
        assert [c >= 0 for c in found.codes.tolist()] == [t is not None and plain.count(t) > 1 for t in plain]


AWKWARD = [None, "", " ", "nan", "NaN", "ß", "STRASSE", "Straße", "İstanbul", "ISTANBUL", "ıi", "a\u00a0b", "a\u2028b",
           "a\vb", "a\x1cb", "a\tb\n", "  a  ", "a--b", "a - b", "a \t b", "O'Neil", '"q"', "back\\slash", "e\u0301",
           "١٢٣", "Ⅻ", "½", "a_b", "😀a", "\u3000x\u3000", "x\u200by", "ACME, Inc.", "a.b@x.io", "1e16", "-0.0"]
WORDY = st.lists(st.one_of(st.none(), st.sampled_from(AWKWARD),
                           st.text(alphabet=" \t\n\u00a0\u3000.,-_/'\"\\aAßİıé\u0301李٣Ⅻ½😀", max_size=8)), max_size=30)


def _python_name(text: str | None) -> str | None:
    """The rule a character at a time: after Arrow's trim and lowering (its case mapping is one character to
    one), each character neither a letter nor a digit is a space, and the words are joined by one space."""
    if text is None:
        return None
    words = "".join(c if unicodedata.category(c)[0] in "LN" else " " for c in text).split(" ")
    return " ".join(w for w in words if w) or None


@settings(max_examples=300, deadline=None)
@given(values=WORDY)
def test_a_normalised_name_is_its_words_a_character_at_a_time(values: list[str | None]) -> None:
    array = pa.array(values, type=pa.string())
    lowered = pc.utf8_lower(keys.trimmed(array)).to_pylist()
    assert keys.name_text(array).to_pylist() == [_python_name(t) for t in lowered]
    # and as the rule used to be written: each such character a space, then each run of spaces one
    spaced = pc.replace_substring_regex(pc.utf8_lower(keys.trimmed(array)), r"[^\p{L}\p{N}\s]", " ")
    assert keys.name_text(array).equals(keys.trimmed(pc.replace_substring_regex(spaced, r"\s+", " ")))


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(alphabet="ab\x00é李😀", max_size=40), max_size=20), cut=st.integers(0, 3))
def test_equal_texts_have_equal_fingerprints_and_a_byte_apart_do_not(texts: list[str], cut: int) -> None:
    array = pa.array(["x" * 9] * cut + texts, type=pa.string()).slice(cut)  # starting inside its buffers
    found = keys.fingerprints(array).tolist()
    for i, a in enumerate(texts):
        for j, b in enumerate(texts):
            if a == b or (len(a.encode()) <= 32 and len(b.encode()) <= 32):
                assert (found[i] == found[j]) == (a == b)
    for n in range(41):  # every byte of a text of up to 32 bytes counts, and the length does
        base = "a" * n
        changed = {*range(min(n, 32)), *(range(n - 8, n) if n > 32 else ())}  # a longer one's last 8 count too
        variants = [base, *(base[:k] + "b" + base[k + 1:] for k in sorted(changed)), "a" * (n + 1)]
        assert len(set(keys.fingerprints(pa.array(variants, type=pa.string())).tolist())) == len(variants)


BIG = [0, 1, 2, 2**31 - 1, 2**31, 2**32, 2**40 + 7, 10**12, 10**16 + 1, 2**62, 2**63 - 1]


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.integers(-3, 40), st.sampled_from(BIG), st.integers(0, 2**63 - 1)), max_size=3000))
def test_shared_codes_are_the_values_two_hold(values: list[int]) -> None:
    """Hashed buckets collide (a few thousand values in a thousand buckets): only equal values share a code."""
    array = np.array(values, dtype=np.int64)
    codes, uniques = keys.shared_codes(array)
    count: dict[int, int] = {}
    for v in values:
        count[v] = count.get(v, 0) + 1
    assert [c >= 0 for c in codes.tolist()] == [v >= 0 and count[v] > 1 for v in values]
    assert uniques[codes[codes >= 0]].tolist() == [v for v in values if v >= 0 and count[v] > 1]


NAME_PARTS = st.one_of(st.none(), st.sampled_from(FIRST + LAST), st.text(max_size=6))


@settings(max_examples=150, deadline=None)
@given(people=st.lists(st.tuples(NAME_PARTS, NAME_PARTS), max_size=30))
def test_full_names_are_the_normalised_first_and_last_name(people: list[tuple[str | None, str | None]]) -> None:
    first = pa.array([f for f, _ in people], type=pa.string())
    last = keys.coded_distinct(pa.array([n for _, n in people], type=pa.string()), keys.name_text)
    full = duplicates._full_names(first, last)
    lasts = keys.name_text(pa.array([n for _, n in people], type=pa.string())).to_pylist()
    joined = keys.name_text(pa.array([f"{f or ''} {n}" for f, n in people], type=pa.string())).to_pylist()
    plain = [text if n is not None else None for n, text in zip(lasts, joined, strict=True)]
    _partition(full.codes, plain)
    assert full.texts(full.codes[full.codes >= 0]) == [t for t in plain if t is not None]


def test_a_phone_keeps_its_leading_zeros_and_last_ten_digits() -> None:
    numbers = ["007 1234567", "71234567", "+44 (0)12 3456 7890", "0000000", "12-34"]
    (found,) = keys.phone_keys([pa.array(numbers * 2)])  # each held by two rows: a number one row holds is no key
    assert found.codes[4] == found.codes[9] == -1
    assert found.texts(found.codes[:4]) == found.texts(found.codes[5:9]) == [
        "0071234567", "71234567", "1234567890", "0000000"]


def _plain_walk(blocks: list[int], names: list[str], threshold: int, max_block: int
                ) -> tuple[list[similar.SimilarSet], int]:
    by: dict[int, list[int]] = {}
    for row, block in enumerate(blocks):
        if block >= 0:
            by.setdefault(block, []).append(row)
    out, too_big = [], 0
    for block in sorted(by):
        rows = by[block]
        if len(rows) > max_block:
            too_big += 1
        elif len(rows) > 1:
            out += [similar.SimilarSet(block, tuple(rows[m] for m in members), low)
                    for members, low in _plain_sets([names[r] for r in rows], threshold)]
    return out, too_big


NAMES = ["john smith", "jon smith", "john smyth", "smith john", "ann lee", "anne lee", "li wei", "wei li", "bob",
         "łukasz nowak", "lukasz nowak", "zoë", "zoe", "a", "ab", " john  smith ", "john\u3000smith", "smith\x1cjon",
         "ann\u00a0lee", "lee ann"]


def _bulk(blocks: list[int], names: list[str], threshold: int, max_block: int) -> tuple[list[similar.SimilarSet], int]:
    distinct = list(dict.fromkeys(names))
    codes = np.array([distinct.index(n) for n in names], dtype=np.int64)
    return similar.similar_sets(np.array(blocks, dtype=np.int64), codes,
                                lambda c: [distinct[i] for i in c.tolist()], threshold, max_block)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-1, 6), st.sampled_from(NAMES)), max_size=60),
       threshold=st.sampled_from([50, 80, 92, 100]), max_block=st.sampled_from([2, 3, 5, 1000]))
def test_blocks_scored_in_bulk_are_the_plain_walk_of_each_block(
    rows: list[tuple[int, str]], threshold: int, max_block: int
) -> None:
    blocks, names = [b for b, _ in rows], [n for _, n in rows]
    plain = _plain_walk(blocks, names, threshold, max_block)
    assert _bulk(blocks, names, threshold, max_block) == plain
    was = similar._PAIR_CHUNK
    try:
        similar._PAIR_CHUNK = 2  # blocks taken a few pairs at a time, as a dense org's are
        assert _bulk(blocks, names, threshold, max_block) == plain
    finally:
        similar._PAIR_CHUNK = was


@pytest.mark.parametrize("size", [2, 3, similar.PAIR_BLOCK, similar.PAIR_BLOCK + 1, duplicates.MAX_BLOCK,
                                  duplicates.MAX_BLOCK + 1])
def test_blocks_at_each_size_limit_are_the_plain_walk(size: int) -> None:
    rng = np.random.default_rng(size)
    names = [NAMES[i] for i in rng.integers(0, len(NAMES), size)]
    blocks = [7] * size + [3, 3]  # and a pair in another block, listed after it
    names += ["ann lee", "anne lee"]
    assert _bulk(blocks, names, 80, duplicates.MAX_BLOCK) == _plain_walk(blocks, names, 80, duplicates.MAX_BLOCK)


def test_a_record_in_two_findings_and_tied_scores() -> None:
    # 1 shares an address with 2, and a similar name with 3 and 4 at its company (the same score for both).
    records = [_row(1, "Jon", "Smith", "Acme", "a@x.io", None, None),
               _row(2, "Ann", "Lee", "Globex", "A@x.io", None, None),
               _row(3, "John", "Smith", "Acme", None, None, None), _row(4, "John", "Smith", "Acme", None, None, None)]
    out = run_one("duplicates", view(SF, LEAD_SPECS, {"Lead": records}), SF)
    assert [(i.record_ids, i.reason, i.score) for i in out.review] == _plain_findings(records, 92, 1000, 50)
    assert {sfid("00Q", 1)} <= set(out.review[0].record_ids) & set(out.review[-1].record_ids)


class _ArrowFrameView(FrameView):
    """A FrameView that also reads columns as Arrow, as the snapshot reader does."""

    def table(self, object_name: str, columns: Sequence[str]) -> pa.Table:
        frame = self.frame(object_name, columns)
        return pa.table({c: pa.array(frame[c], type=pa.string(), from_pandas=True) for c in columns})


LABELLED = st.one_of(st.none(), st.sampled_from(["", " ", "\t", "Ann\nLee", "\x1b[2J", "é", "😀", '"q"', "\\"]),
                     st.text(max_size=5))


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.tuples(LABELLED, LABELLED), max_size=8), extra=st.lists(st.sampled_from(["0039", "00310"])))
def test_labels_read_from_arrow_are_record_label(rows: list[tuple[str | None, str | None]], extra: list[str]) -> None:
    specs = {"Contact": fields("Id", "Name", "Email")}
    records = [{"Id": f"003{n}", "Name": name, "Email": email} for n, (name, email) in enumerate(rows)]
    ids = [str(r["Id"]) for r in records][::-1] + extra
    for cls in (FrameView, _ArrowFrameView, _ArrowStrings):  # frames of Python or Arrow text, and Arrow tables
        found = cls(manifest(SF), specs, {"Contact": records})
        held = found.record_map("Contact", ids)
        assert labels_by_id(found, SF, "Contact", ids) == {
            rid: record_label(SF, "Contact", held.get(rid, {})) for rid in ids}


@settings(max_examples=200, deadline=None)
@given(columns=st.integers(1, 3).flatmap(lambda n: st.lists(
    st.lists(st.integers(-1, 5), min_size=n, max_size=n), max_size=25)))
def test_shared_rows_are_the_keys_two_rows_hold(columns: list[list[int]]) -> None:
    width = len(columns[0]) if columns else 1
    by: dict[int, set[int]] = {}
    for row, codes in enumerate(columns):
        for code in codes:
            if code >= 0:
                by.setdefault(code, set()).add(row)
    plain = [(code, sorted(rows)) for code, rows in sorted(by.items()) if len(rows) > 1]
    keys_by_column = [np.array([codes[i] for codes in columns], dtype=np.int64) for i in range(width)]
    assert [(c, r.tolist()) for c, r in keys.shared_rows(keys_by_column, len(columns))] == plain


def _texts_of(names: list[str]) -> Any:
    return lambda codes: [names[c] for c in codes.tolist()]


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-1, 4), st.integers(-1, 3)), max_size=30))
def test_paired_keys_group_the_rows_holding_the_same_pair(rows: list[tuple[int, int]]) -> None:
    """Pairs only one row holds are dropped (-1) before hashing: the rows sharing each pair, and its name, are
    still those of pairing every row."""
    first = keys.Keys(np.array([a for a, _ in rows], dtype=np.int64), _texts_of(["a", "b", "c", "d", "e"]))
    second = keys.Keys(np.array([b for _, b in rows], dtype=np.int64), _texts_of(["w", "x", "y", "z"]))
    by: dict[str, list[int]] = {}
    for row, (a, b) in enumerate(rows):
        if a >= 0 and b >= 0:
            by.setdefault(f"{'abcde'[a]} / {'wxyz'[b]}", []).append(row)
    plain = sorted((name, members) for name, members in by.items() if len(members) > 1)
    both = keys.paired(first, second, " / ")
    shared = keys.shared_rows([both.codes], len(rows))
    names = both.texts(np.array([code for code, _ in shared], dtype=np.int64))
    assert sorted((name, members.tolist()) for name, (_, members) in zip(names, shared, strict=True)) == plain
