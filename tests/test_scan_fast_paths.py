"""Each fast path the scan takes answers exactly as the plain code it stands in for (issue 7: plans must
stay byte-identical for the same snapshot), on generated values, the awkward ones included."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsweep import model
from crmsweep.cleanup.labels import labels_by_id, record_label, record_labels
from crmsweep.cleanup.passes._guards import blank_text, filled
from crmsweep.cleanup.view import FrameView, id_set, in_ids
from crmsweep.model import Change, Op, Severity, canonical_json
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY
from tests.pass_views import fields, manifest

# Texts as a CRM may hold them: controls, quotes, backslashes, line and bidi separators, astral characters.
TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=10)
AWKWARD = st.sampled_from(["", " ", "\t", "\x1c", "\u3000", "\u2028", '"', "\\", "\x00", "\x1b[2J", "é", "😀"])
WORD = st.one_of(TEXT, AWKWARD, st.builds(lambda a, b: a + b, AWKWARD, TEXT))
VALUE = st.one_of(st.none(), WORD, st.integers(-(10**20), 10**20), st.floats(allow_nan=False, allow_infinity=False),
                  st.booleans())


@settings(max_examples=400, deadline=None)
@given(op=st.sampled_from(list(Op)), texts=st.lists(WORD, min_size=5, max_size=5),
       severity=st.sampled_from(list(Severity)), fingerprint=st.one_of(st.none(), WORD),
       before=st.dictionaries(WORD, VALUE, max_size=5),
       after=st.dictionaries(WORD, VALUE, max_size=3))
def test_a_change_formatted_from_its_values_is_the_encoders_text(
    op: Op, texts: list[str], severity: Severity, fingerprint: str | None, before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    obj, record_id, label, reason, name = texts
    change = Change(op=op, object=obj, record_id=record_id, before=before, after=after, reason=reason,
                    pass_name=name, severity=severity, fingerprint=fingerprint, label=label).to_dict()
    before_text = canonical_json(before)
    fast = model._known_change_texts(change, before_text)
    assert fast is not None
    assert fast == model._encoded_change_texts(change, before_text)
    assert fast[1] == canonical_json(change) == model._canonical_change(change)
    assert json.loads(fast[0]) == change


def test_a_change_of_another_shape_is_left_to_the_encoders() -> None:
    change = Change(Op.DELETE, "Contact", "003", {"Id": "003"}, {}, reason="r", pass_name="p").to_dict()
    for odd in ({**change, "extra": 1}, {**change, "fingerprint": 5}, {**change, "label": None},
                {k: change[k] for k in reversed(list(change))}):
        assert model._known_change_texts(odd, canonical_json(odd["before"])) is None
        assert model._change_texts(odd)[1] == canonical_json(odd)


SPECS = fields("Id", "Name", "Email")


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.one_of(st.none(), WORD), st.one_of(st.none(), WORD)), max_size=8))
def test_labels_made_a_column_at_a_time_are_record_label(rows: list[tuple[str | None, str | None]]) -> None:
    records = [{"Name": name, "Email": email} for name, email in rows]
    expected = [record_label(SALESFORCE_VOCABULARY, "Contact", r) for r in records]
    columns = {"Name": [n for n, _ in rows], "Email": [e for _, e in rows]}
    assert record_labels(SALESFORCE_VOCABULARY, "Contact", columns) == expected
    # A label field the columns lack is empty, and keeps the others in their places.
    assert record_labels(SALESFORCE_VOCABULARY, "Contact", {"Email": columns["Email"]}) == [
        record_label(SALESFORCE_VOCABULARY, "Contact", {"Email": e}) for _, e in rows]


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.none(), WORD, st.integers(), st.just(float("nan"))), max_size=12))
def test_filled_answers_as_blank_text_does(values: list[Any]) -> None:
    series = pd.Series(values, dtype=object, index=[i // 2 for i in range(len(values))])  # repeated labels too
    # The one rule for Python values (`blank_text`: a soft hyphen alone shows nothing, though strip() keeps it).
    plain = series.notna() & series.map(lambda v: not isinstance(v, str) or not blank_text(v)).astype(bool)
    got = filled(series)
    assert got.tolist() == plain.tolist() and list(got.index) == list(series.index)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.none(), WORD), max_size=12), ids=st.lists(WORD, max_size=6))
def test_in_ids_is_isin(values: list[str | None], ids: list[str]) -> None:
    for dtype in (object, "string"):
        series = pd.Series(values, dtype=dtype)
        assert in_ids(series, id_set(ids)).tolist() == series.astype(str).isin(ids).tolist()


def test_in_ids_and_labels_by_id_on_a_view() -> None:
    view = FrameView(manifest(SALESFORCE_VOCABULARY), {"Contact": SPECS}, {"Contact": [
        {"Id": "0031", "Name": "Ann\nLee", "Email": " "}, {"Id": "0032", "Name": None, "Email": "b@x.org"},
        {"Id": "0033", "Name": "Cy", "Email": "c@x.org"}]})
    ids = ["0033", "0032", "0031", "0039"]
    records = view.record_map("Contact", ids)
    assert labels_by_id(view, SALESFORCE_VOCABULARY, "Contact", ids) == {
        rid: record_label(SALESFORCE_VOCABULARY, "Contact", records.get(rid, {})) for rid in ids}
    assert labels_by_id(view, SALESFORCE_VOCABULARY, "Contact", ids)["0031"] == "Ann\\nLee"
