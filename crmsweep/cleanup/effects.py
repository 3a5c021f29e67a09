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

from collections.abc import Iterable, Sequence
from itertools import groupby
from operator import attrgetter
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
_OP_AND_OBJECT, _RECORD_ID = attrgetter("op", "object"), attrgetter("record_id")


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
        # object -> the ids removed, one Arrow array per view that removed some (this view's own last). The
        # lists are copied from the view before, the arrays shared: a pass's view makes only its own ids.
        self._gone: dict[str, list[pa.Array]] = {}
        # object -> field -> the writes to it, one (ids, values) run per view that made some, in order (a
        # later write of a record wins). Copied as `_gone` is: per field, so a column nobody wrote costs nothing.
        self._writes: dict[str, dict[str, list[tuple[list[str], list[Any]]]]] = {}
        # The ids this view's own changes remove (per object), and the view they were laid on.
        self._added: dict[str, pa.Array] = {}
        self._parent: EffectsView | None = None
        # (object, column) -> that column as text, in the base's row order: one per scan, shared by all views.
        self._keys: dict[tuple[str, str], pa.Array] = {}
        # (object, column, removed object) -> rows whose `column` names a removed record: per view.
        self._hits: dict[tuple[str, str, str], np.ndarray] = {}
        # object -> per row, whether it is gone (None: none is), and (object, column) -> the column with this
        # view's writes laid in, every row: per view, made on first read.
        self._drops: dict[str, np.ndarray | None] = {}
        self._patched: dict[tuple[str, str], pd.Series] = {}
        # object -> column -> the column as this view's pass sees it (patched, filtered), made on first read.
        self._live: dict[str, dict[str, pd.Series]] = {}
        self._lay(changes)

    def _lay(self, changes: Iterable[Change]) -> None:
        # A pass's changes come in runs of one op and object (hundreds of thousands at scale): each run is
        # taken whole, its ids by one C loop, instead of a set insertion and two dicts per change.
        laid = changes if isinstance(changes, Sequence) else list(changes)
        removed: dict[str, list[str]] = {}
        start = 0
        for (op, obj), run in groupby(map(_OP_AND_OBJECT, laid)):
            stop = start + sum(1 for _ in run)
            chunk = laid[start:stop]
            start = stop
            if op in _REMOVING:
                removed.setdefault(obj, []).extend(map(_RECORD_ID, chunk))
            elif op in _WRITING:
                self._lay_writes(obj, chunk)
        for obj, ids in removed.items():
            own = pa.array(ids, type=pa.string())
            self._gone[obj] = [*self._gone.get(obj, ()), own]
            had = self._added.get(obj)
            self._added[obj] = own if had is None else pa.concat_arrays([had, own])

    def _lay_writes(self, obj: str, chunk: Sequence[Change]) -> None:
        runs: dict[str, tuple[list[str], list[Any]]] = {}
        for change in chunk:
            for name, value in change.after.items():
                run = runs.get(name)
                if run is None:
                    run = runs[name] = ([], [])
                run[0].append(change.record_id)
                run[1].append(value)
        if not runs:
            return
        fields = self._writes[obj] = dict(self._writes.get(obj, {}))
        for name, run in runs.items():
            fields[name] = [*fields.get(name, ()), run]

    def with_changes(self, changes: Iterable[Change]) -> EffectsView:
        """This view with more changes laid on top (the next pass's view)."""
        view = EffectsView(self._base, self._vocab)
        view._gone = dict(self._gone)
        view._writes = dict(self._writes)
        view._keys = self._keys
        view._parent = self
        view._lay(changes)
        # The scan reads on through the new view: let this one's columns go.
        self._live, self._patched = {}, {}
        return view

    def branch(self) -> EffectsView:
        """This view again, for a pass that reads it beside the scan's later passes (on another thread): the
        same changes, its own columns, so `with_changes` here does not let go of what that pass reads."""
        view = EffectsView(self._base, self._vocab)
        view._gone, view._writes, view._keys = dict(self._gone), dict(self._writes), self._keys
        view._parent = self
        return view

    def removed(self, object_name: str) -> frozenset[str]:
        """Ids of `object_name` the earlier passes remove."""
        return frozenset(id for ids in self._gone.get(object_name, ()) for id in ids.to_pylist())

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
            found = _matches(self._key(object_name, column), self._gone.get(gone, ()))
        else:
            found = self._parent._removed_rows(object_name, column, gone)
            added = self._added.get(gone)
            if added is not None:
                found = found | _matches(self._key(object_name, column), [added])
        self._hits[key] = found
        return found

    def _link_ends(self, object_name: str) -> list[tuple[str, str]]:
        """(column, removed object) pairs whose rows go when `object_name` links a removed record."""
        ends: list[tuple[str, str]] = []
        names = list(self._base.manifest.objects)
        for gone in self._gone:
            for other in names:
                if object_name == association_object(gone, other):
                    ends.append((ASSOCIATION_FROM_FIELD, gone))
                if object_name == association_object(other, gone):
                    ends.append((ASSOCIATION_TO_FIELD, gone))
        return ends

    def _drop(self, object_name: str) -> np.ndarray | None:
        """Per row of the base's frames of `object_name`, whether it is gone; None when no earlier pass removes
        the object's records nor records it links."""
        if object_name in self._drops:
            return self._drops[object_name]
        drops = [self._removed_rows(object_name, self._vocab.id_field, object_name)] \
            if object_name in self._gone else []
        drops += [self._removed_rows(object_name, column, gone) for column, gone in self._link_ends(object_name)]
        drop = self._drops[object_name] = np.logical_or.reduce(drops) if drops else None
        return drop

    def masked_frame(self, object_name: str, columns: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray | None]:
        """Every row of the base's frame of these columns with the earlier passes' writes laid in, and per row
        whether an earlier pass removes it (None: none does). For a pass that tests a column on every row and
        proposes few (`view.LiveColumns`): `frame` filters every column it hands out."""
        frame = self._base.frame(object_name, columns)
        written = self._writes.get(object_name)
        if written:
            names = [name for name in dict.fromkeys(columns) if name in written]
            if names:
                frame = frame.copy(deep=False)
                for name in names:
                    frame[name] = self._patched_column(object_name, name, frame[name])
        return frame, self._drop(object_name)

    def frame(self, object_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        drop = self._drop(object_name)
        if drop is None and object_name not in self._writes:
            return self._base.frame(object_name, columns)
        asked = [s.name for s in self._base.fields(object_name)] if columns is None else list(columns)
        names = list(dict.fromkeys(asked))
        if not names:  # no columns: only how many rows are left
            rows = len(drop) if drop is not None else len(self._key(object_name, self._vocab.id_field))
            left = rows - int(drop.sum()) if drop is not None else rows
            return pd.DataFrame(index=pd.RangeIndex(left), columns=pd.Index([], dtype=object))
        # Each column is patched and filtered once per view: a pass reads an object more than once.
        held = self._live.setdefault(object_name, {})
        missing = [name for name in names if name not in held]
        if missing:
            frame, _ = self.masked_frame(object_name, missing)
            if drop is not None and drop.any():
                frame = rows_where(frame, ~drop)
            held.update((name, frame[name]) for name in missing)
        # Copied as SharedColumns copies (see there): a write through `to_numpy()` stays in the pass's frame.
        frame = pd.DataFrame({name: held[name] for name in names}, columns=names, copy=True)
        return frame if len(names) == len(asked) else frame.loc[:, asked]

    def _patched_column(self, object_name: str, name: str, column: pd.Series) -> pd.Series:
        """`column` (every row of the base's) with the values the earlier passes write to `name` laid in."""
        found = self._patched.get((object_name, name))
        if found is not None:
            return found
        runs = self._writes[object_name][name]
        # Reversed, so the first match `index_in` names is a record's last write.
        ids = [rid for run in reversed(runs) for rid in reversed(run[0])]
        values = [value for run in reversed(runs) for value in reversed(run[1])]
        at = pc.index_in(self._key(object_name, self._vocab.id_field), value_set=pa.array(ids, type=pa.string()))
        hit = _bools(at.is_valid())
        found = column
        if hit.any():
            spec = next(s for s in self._base.fields(object_name) if s.name == name)
            new = typed_series(spec, [values[i] for i in at.filter(at.is_valid()).to_numpy()])
            found = column.copy()
            found.loc[hit] = new.set_axis(column.index[hit])
        self._patched[(object_name, name)] = found
        return found


def _matches(keys: pa.Array, ids: Sequence[pa.Array]) -> np.ndarray:
    """Per value of `keys`, whether it is one of `ids`; an empty cell never is."""
    present = [each for each in ids if len(each)]
    if not present or not len(keys):
        return np.zeros(len(keys), dtype=bool)
    return _bools(pc.is_in(keys, value_set=pa.concat_arrays(present)))


def _bools(array: pa.Array) -> np.ndarray:
    """A boolean Arrow array as a writable numpy one, null as False."""
    return np.array(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)
