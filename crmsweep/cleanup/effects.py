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

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crmsweep.cleanup.view import SnapshotView, ViewOver, id_text, rows_where, typed_series
from crmsweep.model import (
    ASSOCIATION_FROM_FIELD,
    ASSOCIATION_TO_FIELD,
    Change,
    Op,
    Vocabulary,
    association_object,
)

# Ops after which the record is no longer among the live ones a pass should see.
_REMOVING = frozenset({Op.DELETE, Op.ARCHIVE})
# Ops whose `after` values the record holds once they are applied.
_WRITING = frozenset({Op.UPDATE, Op.DEACTIVATE, Op.REACTIVATE})


class EffectsView(ViewOver):
    """A SnapshotView: `base` with `changes` applied (see the module docstring).

    Which rows of an object are gone is worked out once per scan, not per frame: the object's key
    columns are taken as text once (shared by every view of the scan), and each view matches only the
    ids its own changes remove, on top of its parent's answer. So `base` must list an object's rows in
    one order in every frame it gives (the snapshot reader and FrameView do; SharedColumns holds it).
    """

    def __init__(self, base: SnapshotView, vocabulary: Vocabulary, changes: Sequence[Change] = ()) -> None:
        super().__init__(base)
        self._vocab = vocabulary
        # Frozen sets and per-object maps shared with the views before it: a pass's view copies only what its
        # own changes touch, not every earlier pass's ids again (hundreds of thousands at scale).
        self._removed: dict[str, frozenset[str]] = {}
        self._written: dict[str, dict[str, dict[str, Any]]] = {}
        # The ids this view's own changes remove (per object), and the view they were laid on.
        self._added: dict[str, frozenset[str]] = {}
        self._parent: EffectsView | None = None
        # (object, column) -> that column as text, in the base's row order: one per scan, shared by all views.
        self._keys: dict[tuple[str, str], pa.Array] = {}
        # (object, column, removed object) -> rows whose `column` names a removed record: per view.
        self._hits: dict[tuple[str, str, str], np.ndarray] = {}
        # object -> column -> the column as this view's pass sees it (patched, filtered), made on first read.
        self._live: dict[str, dict[str, pd.Series]] = {}
        self._lay(changes)

    def _lay(self, changes: Iterable[Change]) -> None:
        removed: dict[str, set[str]] = {}
        written: dict[str, dict[str, dict[str, Any]]] = {}
        for change in changes:
            op = change.op
            if op in _REMOVING:
                ids = removed.get(change.object)
                if ids is None:
                    ids = removed[change.object] = set()
                ids.add(change.record_id)
            elif op in _WRITING and change.after:
                rows = written.get(change.object)
                if rows is None:
                    rows = written[change.object] = dict(self._written.get(change.object, {}))
                rows[change.record_id] = {**rows.get(change.record_id, {}), **change.after}
        for obj, ids in removed.items():
            self._removed[obj] = self._removed.get(obj, frozenset()) | ids
            self._added[obj] = self._added.get(obj, frozenset()) | ids
        self._written.update(written)

    def with_changes(self, changes: Iterable[Change]) -> EffectsView:
        """This view with more changes laid on top (the next pass's view)."""
        view = EffectsView(self._base, self._vocab)
        view._removed = dict(self._removed)
        view._written = dict(self._written)
        view._keys = self._keys
        view._parent = self
        view._lay(changes)
        self._live = {}  # the scan reads on through the new view: let this one's columns go
        return view

    def removed(self, object_name: str) -> frozenset[str]:
        """Ids of `object_name` the earlier passes remove."""
        return self._removed.get(object_name, frozenset())

    def _key(self, object_name: str, column: str) -> pa.Array:
        found = self._keys.get((object_name, column))
        if found is None:
            found = self._keys[(object_name, column)] = id_text(self._base.frame(object_name, [column])[column])
        return found

    def _removed_rows(self, object_name: str, column: str, gone: str) -> np.ndarray:
        """Per row of `object_name`, whether its `column` names a record of `gone` that is removed."""
        key = (object_name, column, gone)
        found = self._hits.get(key)
        if found is not None:
            return found
        if self._parent is None:
            found = _matches(self._key(object_name, column), self._removed.get(gone, frozenset()))
        else:
            found = self._parent._removed_rows(object_name, column, gone)
            added = self._added.get(gone)
            if added:
                found = found | _matches(self._key(object_name, column), added)
        self._hits[key] = found
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
        removed = self._removed.get(object_name, frozenset())
        written = self._written.get(object_name, {})
        ends = self._link_ends(object_name)
        if not removed and not written and not ends:
            return self._base.frame(object_name, columns)
        asked = [s.name for s in self._base.fields(object_name)] if columns is None else list(columns)
        names = list(dict.fromkeys(asked))
        # Each column is patched and filtered once per view: a pass reads an object more than once.
        held = self._live.setdefault(object_name, {})
        missing = [name for name in names if name not in held]
        if missing or not names:
            drops = [self._removed_rows(object_name, self._vocab.id_field, object_name)] if removed else []
            drops += [self._removed_rows(object_name, column, gone) for column, gone in ends]
            drop = np.logical_or.reduce(drops) if drops else None
            if not names:  # no columns: only how many rows are left
                rows = len(drop) if drop is not None else len(self._key(object_name, self._vocab.id_field))
                left = rows - int(drop.sum()) if drop is not None else rows
                return pd.DataFrame(index=pd.RangeIndex(left), columns=pd.Index([], dtype=object))
            frame = self._base.frame(object_name, missing)
            if written:
                frame = self._patched(object_name, frame, written)
            if drop is not None and drop.any():
                frame = rows_where(frame, ~drop)
            held.update((name, frame[name]) for name in missing)
        # Copied as SharedColumns copies (see there): a write through `to_numpy()` stays in the pass's frame.
        frame = pd.DataFrame({name: held[name] for name in names}, columns=names, copy=True)
        return frame if len(names) == len(asked) else frame.loc[:, asked]

    def _patched(self, object_name: str, frame: pd.DataFrame, written: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
        frame = frame.copy(deep=False)
        for name in frame.columns:
            patch = self._patch(object_name, name, written)
            if patch is None:
                continue
            hit, new = patch
            column = frame[name].copy()
            column.loc[hit] = new.set_axis(column.index[hit])
            frame[name] = column
        return frame

    def _patch(
        self, object_name: str, name: str, written: Mapping[str, Mapping[str, Any]]
    ) -> tuple[np.ndarray, pd.Series] | None:
        """The rows of `object_name` whose `name` an earlier pass writes, and the values it writes there."""
        rows = {rid: values[name] for rid, values in written.items() if name in values}
        found: tuple[np.ndarray, pd.Series] | None = None
        if rows:
            ids = self._key(object_name, self._vocab.id_field)
            at = pc.index_in(ids, value_set=pa.array(list(rows), type=pa.string())).to_numpy(zero_copy_only=False)
            hit = ~np.isnan(at) if at.dtype.kind == "f" else np.ones(len(at), dtype=bool)
            if hit.any():
                spec = next(s for s in self._base.fields(object_name) if s.name == name)
                chosen = list(rows.values())
                found = (hit, typed_series(spec, [chosen[int(i)] for i in at[hit]]))
        return found


def _matches(keys: pa.Array, ids: frozenset[str]) -> np.ndarray:
    """Per value of `keys`, whether it is one of `ids`; an empty cell never is."""
    if not ids or not len(keys):
        return np.zeros(len(keys), dtype=bool)
    hit = pc.fill_null(pc.is_in(keys, value_set=pa.array(list(ids), type=pa.string())), False)
    return np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)
