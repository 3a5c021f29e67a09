"""The snapshot as the earlier passes' changes would leave it: what a later pass sees.

Passes run in order (`PassSpec.order`); each one reads an `EffectsView` over the snapshot with the
changes of the passes before it laid on top: a record they delete or archive is gone from `frame`, and
so are the links (association rows) to and from it; a field they write reads as they would write it.
So "accounts left with no contacts" counts the contacts the contact passes remove, and a task a
hand-over reassigns is not reported as orphaned.

`record_map` still answers with the snapshot's own rows: a before-image is what the CRM held when it
was backed up, and that is what apply checks for drift and rollback writes back. A record an earlier
pass already changes is not proposed again (scan keeps the first claim).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from crmsweep.cleanup.view import SnapshotView, id_set, in_ids, typed_series
from crmsweep.model import (
    ASSOCIATION_FROM_FIELD,
    ASSOCIATION_TO_FIELD,
    Change,
    FieldSpec,
    Op,
    Record,
    SnapshotManifest,
    Vocabulary,
    association_object,
)

# Ops after which the record is no longer among the live ones a pass should see.
_REMOVING = frozenset({Op.DELETE, Op.ARCHIVE})
# Ops whose `after` values the record holds once they are applied.
_WRITING = frozenset({Op.UPDATE, Op.DEACTIVATE, Op.REACTIVATE})


class EffectsView:
    """A SnapshotView: `base` with `changes` applied (see the module docstring)."""

    def __init__(self, base: SnapshotView, vocabulary: Vocabulary, changes: Sequence[Change] = ()) -> None:
        self._base = base
        self._vocab = vocabulary
        # Frozen sets and per-object maps shared with the views before it: a pass's view copies only what its
        # own changes touch, not every earlier pass's ids again (hundreds of thousands at scale).
        self._removed: dict[str, frozenset[str]] = {}
        self._written: dict[str, dict[str, dict[str, Any]]] = {}
        # The removed ids as Arrow arrays, made on first use: each frame read of an object looks them up.
        self._removed_arrays: dict[str, pa.Array] = {}
        self._lay(changes)

    def _lay(self, changes: Iterable[Change]) -> None:
        removed: dict[str, set[str]] = {}
        written: dict[str, dict[str, dict[str, Any]]] = {}
        for change in changes:
            if change.op in _REMOVING:
                removed.setdefault(change.object, set()).add(change.record_id)
            elif change.op in _WRITING and change.after:
                rows = written.get(change.object)
                if rows is None:
                    rows = written[change.object] = dict(self._written.get(change.object, {}))
                rows[change.record_id] = {**rows.get(change.record_id, {}), **change.after}
        for obj, ids in removed.items():
            self._removed[obj] = self._removed.get(obj, frozenset()) | ids
            self._removed_arrays.pop(obj, None)
        self._written.update(written)

    def with_changes(self, changes: Iterable[Change]) -> EffectsView:
        """This view with more changes laid on top (the next pass's view)."""
        view = EffectsView(self._base, self._vocab)
        view._removed = dict(self._removed)
        view._written = dict(self._written)
        view._removed_arrays = dict(self._removed_arrays)
        view._lay(changes)
        return view

    @property
    def manifest(self) -> SnapshotManifest:
        return self._base.manifest

    def has(self, object_name: str) -> bool:
        return self._base.has(object_name)

    def fields(self, object_name: str) -> tuple[FieldSpec, ...]:
        return self._base.fields(object_name)

    def removed(self, object_name: str) -> frozenset[str]:
        """Ids of `object_name` the earlier passes remove."""
        return self._removed.get(object_name, frozenset())

    def _removed_array(self, object_name: str) -> pa.Array:
        found = self._removed_arrays.get(object_name)
        if found is None:
            found = self._removed_arrays[object_name] = id_set(self._removed.get(object_name, ()))
        return found

    def _link_ends(self, object_name: str) -> list[tuple[str, str]]:
        """(column, removed object) pairs whose rows go when `object_name` links a removed record."""
        ends: list[tuple[str, str]] = []
        names = list(self._base.manifest.objects)
        for gone in self._removed:
            for other in names:
                if object_name == association_object(gone, other):
                    ends.append((ASSOCIATION_FROM_FIELD, gone))
                if object_name == association_object(other, gone):
                    ends.append((ASSOCIATION_TO_FIELD, gone))
        return ends

    def frame(self, object_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        id_field = self._vocab.id_field
        removed = self._removed.get(object_name, frozenset())
        written = self._written.get(object_name, {})
        ends = self._link_ends(object_name)
        if not removed and not written and not ends:
            return self._base.frame(object_name, columns)
        wanted = None if columns is None else list(columns)
        extra = [id_field] if removed or written else []
        extra += [column for column, _ in ends]
        read = None if wanted is None else list(dict.fromkeys([*wanted, *extra]))
        frame = self._base.frame(object_name, read)
        keep = pd.Series(True, index=frame.index)
        if removed:
            keep &= ~in_ids(frame[id_field], self._removed_array(object_name))
        for column, gone in ends:
            keep &= ~in_ids(frame[column], self._removed_array(gone))
        frame = frame[keep]
        if written:
            frame = self._patched(object_name, frame, written)
        frame = frame.reset_index(drop=True)
        return frame if wanted is None else frame.loc[:, wanted]

    def _patched(self, object_name: str, frame: pd.DataFrame, written: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
        specs = {s.name: s for s in self._base.fields(object_name)}
        ids = frame[self._vocab.id_field].astype(str)
        frame = frame.copy()
        columns = {name for values in written.values() for name in values if name in frame.columns}
        for name in columns:
            rows = {rid: values[name] for rid, values in written.items() if name in values}
            hit = ids.isin(rows)
            if not hit.any():
                continue
            new = typed_series(specs[name], [rows[rid] for rid in ids[hit]])
            new.index = frame.index[hit]
            frame.loc[hit, name] = new
        return frame

    def record_map(self, object_name: str, ids: Iterable[str]) -> dict[str, Record]:
        return self._base.record_map(object_name, ids)

    def before_images(self, object_name: str, ids: Iterable[str]) -> Mapping[str, Mapping[str, Any]]:
        return self._base.before_images(object_name, ids)
