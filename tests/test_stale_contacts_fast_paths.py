"""stale_contacts finds each person's last date and writes its reason a column at a time in numpy
(crmsweep/cleanup/passes/stale_contacts.py): the same dates, sources and reason texts as the per-row
pandas chain it replaced, on awkward dates (NaT, the epoch, a millisecond either side of it and of
midnight, 29 February, years 1 and 9999, whole columns empty)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsweep.cleanup.passes import stale_contacts
from crmsweep.cleanup.passes.stale_contacts import _reason, _reasons, last_dates
from crmsweep.cleanup.view import DATETIME_DTYPE
from crmsweep.providers.hubspot import HUBSPOT_VOCABULARY
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MOMENTS = [EPOCH, EPOCH - timedelta(milliseconds=1), EPOCH + timedelta(milliseconds=1),
           datetime(2000, 2, 29, 23, 59, 59, 999000, tzinfo=UTC), datetime(2000, 3, 1, tzinfo=UTC),
           datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
           datetime(1969, 12, 31, tzinfo=UTC), datetime(2021, 6, 1, 12, tzinfo=UTC)]
MOMENT = st.one_of(st.none(), st.sampled_from(MOMENTS), st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC)))


def _reference(frame: pd.DataFrame, chain: list[str], vocab: Any) -> tuple[list[Any], list[str], list[str | None]]:
    """The chain a row at a time, as the pass first wrote it: the first date set, its column, its reason."""
    whens: list[Any] = []
    sources: list[str] = []
    reasons: list[str | None] = []
    for row in range(len(frame)):
        when, source = pd.NaT, ""
        for column in chain:
            value = frame[column].iloc[row]
            if not pd.isna(value):
                when, source = value, column
                break
        whens.append(when)
        sources.append(source)
        reasons.append(None if pd.isna(when) else _reason(vocab, source, when.date().isoformat()))
    return whens, sources, reasons


@settings(max_examples=200, deadline=None)
@given(columns=st.integers(1, 3).flatmap(lambda n: st.lists(
    st.lists(MOMENT, min_size=12, max_size=12), min_size=n, max_size=n)), empty=st.booleans())
def test_last_dates_and_reasons_are_the_per_row_chains(columns: list[list[datetime | None]], empty: bool) -> None:
    if empty:
        columns[0] = [None] * len(columns[0])
    for vocab in (SALESFORCE_VOCABULARY, HUBSPOT_VOCABULARY):
        chain = [*vocab.last_activity_fields, vocab.created_field][-len(columns):]
        frame = pd.DataFrame({name: pd.Series(values, dtype=object).astype(DATETIME_DTYPE)
                              for name, values in zip(chain, columns, strict=False)})
        chain = list(frame.columns)
        when, source = last_dates(frame, chain)
        whens, sources, reasons = _reference(frame, chain, vocab)
        assert [None if np.isnat(w) else pd.Timestamp(w, tz=UTC) for w in when] == [
            None if pd.isna(w) else w for w in whens]
        assert [chain[s] if s >= 0 else "" for s in source] == sources
        dated = np.flatnonzero(~np.isnat(when))
        assert _reasons(vocab, chain, when[dated], source[dated]) == [reasons[at] for at in dated]


def test_no_stale_row_has_no_reason() -> None:
    chain = ["LastActivityDate"]
    assert _reasons(SALESFORCE_VOCABULARY, chain, np.array([], dtype="datetime64[ms]"), np.array([], np.int8)) == []
    assert stale_contacts._day_texts(np.array([-719_162, -1, 0, 2_932_896])) == [
        "0001-01-01", "1969-12-31", "1970-01-01", "9999-12-31"]
