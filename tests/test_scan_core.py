"""The scan core's fast paths answer as the plain code they stand in for: columns shared within a scan,
removed rows matched once per view, protections compared as text (issue 7: plans stay byte-identical)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsweep.backup.snapshot_reader import SnapshotReader, open_snapshot
from crmsweep.cleanup import scan as scan_module
from crmsweep.cleanup.effects import EffectsView
from crmsweep.cleanup.protect import Protections
from crmsweep.cleanup.shared_columns import SharedColumns
from crmsweep.cleanup.view import FrameView, ViewOver, id_set, id_text, in_ids
from crmsweep.model import (
    ASSOCIATION_FROM_FIELD,
    ASSOCIATION_TO_FIELD,
    Change,
    FieldKind,
    ObjectEntry,
    Op,
    Record,
    association_object,
    canonical_datetime,
)
from crmsweep.paths import Home
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY
from tests.pass_views import fields, manifest
from tests.record_orgs import sf_org
from tests.test_passes import NOW, make_view
from tests.test_scan_fast_paths import WORD
from tests.test_snapshot import make_fake, snap


class CountingView(FrameView):
    """A FrameView that notes every (object, column) a frame was asked for."""

    asked: list[tuple[str, str]]

    def frame(self, object_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        names = [s.name for s in self.fields(object_name)] if columns is None else list(columns)
        self.asked.extend((object_name, name) for name in names)
        return super().frame(object_name, columns)


class Unshared(ViewOver):
    """The scan's view of its snapshot as it was before columns were shared."""

    def keep(self, wanted: Any) -> None:
        pass

    def expect(self, wanted: Any) -> None:
        pass

    def read_ahead(self, order: Any) -> None:
        pass

    def stop_reading_ahead(self) -> None:
        pass


def counting(view: FrameView) -> CountingView:
    counted = CountingView.__new__(CountingView)
    counted.__dict__.update(view.__dict__)
    counted.asked = []
    return counted


def _org() -> FrameView:
    org = sf_org()
    for n in range(12):
        org.add("Account", f"001{n:015d}", Name=f"Acme {n % 5}")
        org.add("Contact", f"003{n:015d}", Name=f"Ann Lee{n % 3}", Email=f"a{n % 4}@x.org" if n % 3 else None,
                LastModifiedDate="2019-01-01T00:00:00.000Z", AccountId=f"001{n % 4:015d}",
                EmailBouncedDate="2020-01-01T00:00:00.000Z" if n % 5 == 0 else None)
        org.add("Lead", f"00Q{n:015d}", Name=f"Bo {n % 2}", Company="Acme", Email=None, IsConverted=False,
                LastModifiedDate="2018-01-01T00:00:00.000Z")
        org.add("Opportunity", f"006{n:015d}", Name="D", StageName="Prospecting", IsClosed=n % 2 == 0,
                CloseDate="2020-01-01", AccountId=f"001{n % 6:015d}")
    return org.view()


def _scan(view: Any) -> Any:
    return scan_module.scan_snapshot(
        view, vocabulary=SALESFORCE_VOCABULARY, passes=None, pass_settings={}, protect_recent_days=30,
        protect_objects=(), protect_ids=(), max_changes=None, max_changes_per_object=None,
        allow_over_cap=True, connection="c",
        config_digest="", now=NOW)


def test_a_scan_asks_its_snapshot_for_each_column_once_and_plans_as_without_sharing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared = counting(_org())
    result = _scan(shared)
    assert len(shared.asked) == len(set(shared.asked)) and shared.asked

    monkeypatch.setattr(scan_module, "SharedColumns", Unshared)
    plain = counting(_org())
    again = _scan(plain)
    assert len(plain.asked) > len(set(plain.asked))  # without sharing, columns are read again
    assert result.plan.changes and result.plan.with_header(plan_id="x").digest == again.plan.with_header(
        plan_id="x").digest
    assert (result.held_back, result.skipped, result.plan.header.notes) == (
        again.held_back, again.skipped, again.plan.header.notes)


def test_frames_read_twice_come_from_one_parquet_read_and_keep_the_reader_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = Home(tmp_path / "home")
    reader = open_snapshot(home, snap(home, make_fake(), ("Contact", "Note")).snapshot_id)
    reads: list[list[str]] = []
    plain_table = SnapshotReader._table

    def counted(self: SnapshotReader, object_name: str, columns: list[str]) -> Any:
        reads.append(list(columns))
        return plain_table(self, object_name, columns)

    monkeypatch.setattr(SnapshotReader, "_table", counted)
    shared = SharedColumns(reader)
    first = shared.frame("Contact", ["Id", "Email"])
    second = shared.frame("Contact", ["Email", "Id", "Email"])
    everything = shared.frame("Contact")
    assert reads[0] == ["Id", "Email"] and len(reads) == 2  # the rest of the columns, once
    assert not set(reads[0]) & set(reads[1])
    reads.clear()
    plain = reader.frame("Contact")
    pd.testing.assert_frame_equal(everything, plain)
    pd.testing.assert_frame_equal(second, plain[["Email", "Id"]])
    pd.testing.assert_frame_equal(first, plain[["Id", "Email"]])
    assert shared.frame("Note").empty and list(shared.frame("Note").columns) == list(reader.frame("Note").columns)
    # A pass writing into its frame writes into its own copy: the next frame is the snapshot's.
    first.loc[0, "Email"] = "changed"
    assert shared.frame("Contact", ["Email"])["Email"].tolist() == plain["Email"].tolist()
    with pytest.raises(KeyError, match="Nope"):
        shared.frame("Contact", ["Id", "Nope"])
    # What no later pass reads is let go, and read again if asked for after all.
    reads.clear()
    shared.keep({"Contact": {"Id"}})
    pd.testing.assert_frame_equal(shared.frame("Contact", ["Id", "Email"]), plain[["Id", "Email"]])
    shared.keep({})
    pd.testing.assert_frame_equal(shared.frame("Contact", ["Id"]), plain[["Id"]])
    assert reads == [["Email"], ["Id"]]


def test_shared_frames_of_a_frame_view_keep_its_types(tmp_path: Path) -> None:
    view = make_view()
    shared = SharedColumns(view)
    for obj in view._fields:
        shared.frame(obj, [s.name for s in view.fields(obj)][:2])
        pd.testing.assert_frame_equal(shared.frame(obj), view.frame(obj))


# --- EffectsView against the plain definition: a FrameView of the records as the changes leave them ----

SPECS = {
    "Contact": fields("Id", "Name", ("Score", FieldKind.FLOAT), ("Seen", FieldKind.DATETIME),
                      ("Active", FieldKind.BOOL)),
    "Account": fields("Id", "Name"),
}
LINKS = association_object("Contact", "Account")
SPECS[LINKS] = fields(ASSOCIATION_FROM_FIELD, ASSOCIATION_TO_FIELD, "Id")
CONTACT_IDS = [f"003{n}" for n in range(8)] + ["", "é😀", "a\nb", "q\"\\"]
ACCOUNT_IDS = [f"001{n}" for n in range(4)]
SCORE = st.one_of(st.none(), st.sampled_from([0.1, -0.0, 1e16, 2.5]))
SEEN = st.one_of(st.none(), st.sampled_from(["1970-01-01T00:00:00.000Z", "2026-03-01T12:00:00.001Z"]))


# The manifest names the objects: links are found by the object names a snapshot holds.
MANIFEST = replace(manifest(SALESFORCE_VOCABULARY), objects={
    obj: ObjectEntry(obj, 0, f"{obj}.parquet", "sha256:0", tuple(specs)) for obj, specs in SPECS.items()})


def _records(contacts: list[tuple[str, str | None]], links: list[tuple[str, str]]) -> dict[str, list[Record]]:
    return {
        "Contact": [{"Id": rid, "Name": name, "Score": None, "Seen": None, "Active": None} for rid, name in contacts],
        "Account": [{"Id": rid, "Name": f"A{rid}"} for rid in ACCOUNT_IDS],
        LINKS: [{ASSOCIATION_FROM_FIELD: c, ASSOCIATION_TO_FIELD: a, "Id": f"L{n}"} for n, (c, a) in enumerate(links)],
    }


def _change(op: Op, obj: str, rid: str, after: dict[str, Any]) -> Change:
    return Change(op, obj, rid, {"Id": rid}, after if op is Op.UPDATE else {}, reason="r", pass_name="p")


CHANGE = st.one_of(
    st.builds(lambda rid: _change(Op.DELETE, "Contact", rid, {}), st.sampled_from([*CONTACT_IDS, "003x"])),
    st.builds(lambda rid: _change(Op.ARCHIVE, "Account", rid, {}), st.sampled_from(ACCOUNT_IDS)),
    st.builds(lambda rid, name, score, seen, active: _change(
        Op.UPDATE, "Contact", rid, {k: v for k, v in {"Name": name, "Score": score, "Seen": seen,
                                                       "Active": active}.items() if v != "skip"}),
              st.sampled_from(CONTACT_IDS), st.one_of(st.just("skip"), st.none(), WORD),
              st.one_of(st.just("skip"), SCORE), st.one_of(st.just("skip"), SEEN),
              st.one_of(st.just("skip"), st.none(), st.booleans())),
)


def _expected(records: dict[str, list[Record]], batches: list[list[Change]]) -> FrameView:
    removed: dict[str, set[str]] = {}
    rows = {obj: [dict(r) for r in recs] for obj, recs in records.items()}
    for batch in batches:
        for change in batch:
            if change.op in (Op.DELETE, Op.ARCHIVE):
                removed.setdefault(change.object, set()).add(change.record_id)
            elif change.after:
                for row in rows[change.object]:
                    if row["Id"] == change.record_id:
                        row.update(change.after)
    left = {obj: [r for r in recs if r.get("Id") not in removed.get(obj, set())] for obj, recs in rows.items()}
    left[LINKS] = [r for r in left[LINKS] if r[ASSOCIATION_FROM_FIELD] not in removed.get("Contact", set())
                   and r[ASSOCIATION_TO_FIELD] not in removed.get("Account", set())]
    return FrameView(MANIFEST, SPECS, left)


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.one_of(st.none(), WORD), min_size=len(CONTACT_IDS), max_size=len(CONTACT_IDS)),
       links=st.lists(st.tuples(st.sampled_from(CONTACT_IDS), st.sampled_from(ACCOUNT_IDS)), max_size=6),
       batches=st.lists(st.lists(CHANGE, max_size=5), max_size=4), size=st.integers(0, len(CONTACT_IDS)))
def test_effects_views_answer_as_the_records_the_changes_leave(
    names: list[str | None], links: list[tuple[str, str]], batches: list[list[Change]], size: int,
) -> None:
    records = _records(list(zip(CONTACT_IDS, names, strict=True))[:size], links)
    base = FrameView(MANIFEST, SPECS, records)
    view = EffectsView(SharedColumns(base), SALESFORCE_VOCABULARY)
    views = [view]
    for batch in batches:
        view = view.with_changes(batch)
        views.append(view)
    for n, each in enumerate(views):  # every view answers with the changes before it, and none after
        expected = _expected(records, batches[:n])
        for obj, specs in SPECS.items():
            columns = [s.name for s in specs]
            pd.testing.assert_frame_equal(each.frame(obj, columns[::-1]), expected.frame(obj, columns[::-1]))
            pd.testing.assert_frame_equal(each.frame(obj), expected.frame(obj))


def test_ids_removed_by_two_views_and_an_object_with_none_removed() -> None:
    records = _records([(rid, "n") for rid in CONTACT_IDS], [(CONTACT_IDS[0], ACCOUNT_IDS[0])])
    base = FrameView(MANIFEST, SPECS, records)
    first = EffectsView(base, SALESFORCE_VOCABULARY, [_change(Op.DELETE, "Contact", CONTACT_IDS[1], {})])
    second = first.with_changes([_change(Op.DELETE, "Contact", CONTACT_IDS[1], {}),
                                 _change(Op.DELETE, "Contact", CONTACT_IDS[0], {})])
    assert first.frame("Contact", ["Id"])["Id"].tolist() == [r for r in CONTACT_IDS if r != CONTACT_IDS[1]]
    assert second.frame("Contact", ["Id"])["Id"].tolist() == CONTACT_IDS[2:]
    assert len(first.frame(LINKS)) == 1 and second.frame(LINKS).empty
    pd.testing.assert_frame_equal(second.frame("Account"), base.frame("Account"))
    # No columns still counts the rows left; a column asked twice comes twice, as from the base.
    assert second.frame("Contact", []).shape == (len(CONTACT_IDS) - 2, 0)
    assert list(second.frame("Contact", ["Id", "Name", "Id"]).columns) == ["Id", "Name", "Id"]


# --- in_ids and the protections' text comparison --------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.none(), WORD, st.integers(-(10**20), 10**20)), max_size=12),
       ids=st.lists(WORD, max_size=6))
def test_id_text_is_astype_str(values: list[Any], ids: list[str]) -> None:
    series = pd.Series(values, dtype=object)
    text = id_text(series).to_pylist()
    assert text == [None if pd.isna(v) else v for v in series.astype(str).tolist()]
    assert in_ids(series, id_set(ids)).tolist() == series.astype(str).isin(ids).tolist()


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RUNNING = "005000000000001"  # 15 characters: its 18-character spelling is the same user
CREATED = st.one_of(
    st.none(), st.just(""), WORD, st.sampled_from(["2026-03-01", "2026-02-13T12:00:00.000+0000", "1970-01-01"]),
    st.builds(lambda ms: canonical_datetime(EPOCH + timedelta(milliseconds=ms)),
              st.integers(0, 2**42)),
)


@settings(max_examples=400, deadline=None)
@given(created=st.lists(CREATED, max_size=6), days=st.sampled_from([0, 1, 30, 20000]),
       micro=st.integers(0, 999_999), ids=st.lists(st.sampled_from(["003A", "003B", "003AAA"]), max_size=2))
def test_protections_hold_what_the_plain_rules_hold(created: list[Any], days: int, micro: int, ids: list[str]) -> None:
    now = datetime(2026, 3, 15, 12, 0, tzinfo=UTC).replace(microsecond=micro)
    protections = Protections(SALESFORCE_VOCABULARY, now, recent_days=days, ids=tuple(ids), running_user_id=RUNNING)
    changes = [Change(Op.DELETE, "Contact", rid, {"Id": rid, "CreatedDate": value}, {}, reason="r", pass_name="p")
               for rid, value in zip(["003A", f"{RUNNING}AAA", RUNNING, f"{RUNNING}AA", "003E", "005R"], created,
                                     strict=False)]

    def plain(change: Change) -> str | None:
        key = SALESFORCE_VOCABULARY.id_key(change.record_id)
        if key == SALESFORCE_VOCABULARY.id_key(RUNNING):
            return "the user crmsweep runs as"
        if key in {SALESFORCE_VOCABULARY.id_key(i) for i in ids}:
            return "listed in [protect] ids"
        value = change.before.get("CreatedDate")
        if days and value:
            text = canonical_datetime(str(value)) or ""
            if datetime.fromisoformat(text.replace("Z", "+00:00")) > now - timedelta(days=days):
                return f"created in the last {days} days"
        return None

    for change in changes:
        try:
            expected = plain(change)
        except ValueError:  # not a date: both refuse it
            with pytest.raises(ValueError):
                protections.hold_reason(change)
            continue
        assert protections.hold_reason(change) == expected


@pytest.mark.parametrize("micro", [0, 500, 999_999])
def test_a_record_created_on_the_recent_threshold_is_held_as_the_datetimes_say(micro: int) -> None:
    now = datetime(2026, 3, 15, 12, 0, tzinfo=UTC).replace(microsecond=micro)
    protections = Protections(SALESFORCE_VOCABULARY, now, recent_days=30)
    since = now - timedelta(days=30)
    for moment in (since - timedelta(milliseconds=1), since, since + timedelta(milliseconds=1)):
        created = canonical_datetime(moment)
        change = Change(Op.DELETE, "Contact", "003A", {"CreatedDate": created}, {}, reason="r", pass_name="p")
        parsed = datetime.fromisoformat((created or "").replace("Z", "+00:00"))
        assert (protections.hold_reason(change) is not None) == (parsed > since), created


def test_a_pass_writing_through_the_arrays_of_its_frame_changes_no_later_frame() -> None:
    # pandas copies on write through .loc and assignment, not through the arrays `to_numpy()` and `.array`
    # give of a nullable column: a shared column handed out as it is let one pass change what every later
    # pass reads (every user inactive, say).
    records: dict[str, list[Record]] = {
        "Contact": [{"Id": "0031", "Name": "a", "Score": 1.0, "Seen": None, "Active": True},
                    {"Id": "0032", "Name": "b", "Score": 2.0, "Seen": None, "Active": True}],
        "Account": [{"Id": "0011", "Name": "A"}], LINKS: []}
    base = FrameView(MANIFEST, SPECS, records)
    shared = SharedColumns(base)
    for view in (shared, EffectsView(shared, SALESFORCE_VOCABULARY).with_changes(
            [_change(Op.UPDATE, "Contact", "0032", {"Name": "renamed"})])):
        frame = view.frame("Contact", ["Id", "Active", "Score", "Name"])
        frame["Active"].to_numpy()[:] = False
        frame["Active"].array[0] = False
        frame["Score"].array[0] = -1.0
        names = frame["Name"].to_numpy()
        if names.flags.writeable:
            names[0] = "written"
        frame["Name"].array[0] = "written"  # an Arrow-backed column swaps its array in place
        again = view.frame("Contact", ["Id", "Active", "Score", "Name"])
        assert again["Active"].tolist() == [True, True]
        assert again["Score"].tolist() == [1.0, 2.0]
        assert again["Name"].tolist()[0] == "a"
