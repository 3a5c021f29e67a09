"""A SnapshotView that reads each (object, column) of its base once and hands the same column to every frame.

A scan's passes read the same columns over and over (Contact's ids by six of them); reading and converting
them from Parquet each time was a third of the scan core's cost at 1M contacts. The scan wraps its snapshot
in one `SharedColumns` for its own lifetime, and after each pass lets go of the columns no later pass says it
reads (`keep`): a scan holds no more columns than it would without sharing, and the shared ones once.

Each frame handed out holds its own copy of the shared columns' values (a copy of memory, not a read): pandas
copies on write through `.loc` and assignment, but not through the arrays `to_numpy()` and `.array` give of a
nullable column, so a pass writing there would have changed what every later pass reads.

A report-only pass runs on a worker beside the others (crmsweep/cleanup/scan.py), and the columns later
passes read are decoded ahead on another (`read_ahead`): the held columns are changed under one lock, a
column being read ahead is waited for rather than read twice, and the scan keeps every column a pass still
running reads until it ends.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from crmsweep.cleanup.view import SnapshotView, ViewOver
from crmsweep.model import FieldKind

# The Arrow type a snapshot stores each kind as, where a frame column holds it exactly: pandas' float64 has
# one NaN for a stored NaN and a null, and a DECIMAL column holds the nearest double, not the text.
_EXACT: Mapping[FieldKind, pa.DataType] = {
    FieldKind.STRING: pa.string(),
    FieldKind.BOOL: pa.bool_(),
    FieldKind.INT: pa.int64(),
    FieldKind.DATE: pa.timestamp("ms", tz="UTC"),  # a date is its midnight in a frame
    FieldKind.DATETIME: pa.timestamp("ms", tz="UTC"),
}


class SharedColumns(ViewOver):
    """A SnapshotView over `base` whose frames share columns read once (see the module docstring)."""

    def __init__(self, base: SnapshotView) -> None:
        super().__init__(base)
        self._columns: dict[str, dict[str, pd.Series]] = {}
        # object -> the columns the passes still to run (the current one included) say they read (`expect`).
        self._expected: Mapping[str, Collection[str] | None] = {}
        # Held while the columns are read or let go: a read is not made twice, nor a dict changed while
        # another thread walks it. Re-entrant: `before_images` reads through `frame`.
        self._lock = threading.RLock()
        # (object, column) -> set once the read ahead (`read_ahead`) that is decoding it has it, or gave up.
        self._reading: dict[tuple[str, str], threading.Event] = {}
        self._stop_ahead = threading.Event()

    def frame(self, object_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        names = None if columns is None else list(dict.fromkeys(columns))
        while True:
            with self._lock:
                # A column the read ahead is decoding is waited for, not decoded a second time; the lock is
                # let go meanwhile, so that the read ahead can hand it over.
                pending = [self._reading[(object_name, name)] for name in names or ()
                           if (object_name, name) in self._reading]
                if not pending:
                    return self._frame(object_name, names)
            for done in pending:
                done.wait()

    def read_ahead(self, order: Sequence[tuple[str, str]]) -> None:
        """Decode these (object, column)s, in this order, on a worker thread, each held as a frame asking for it
        would hold it; one the passes from now on no longer read (`expect`) is passed over. Parquet's decoding
        lets go of the GIL: a scan's passes, mostly Python and one core, run while the columns of the passes
        after them are read on the other. An error stops the read ahead: the pass that asks for that column
        reads it itself, and meets the error in its turn."""
        threading.Thread(target=self._read_ahead, args=(list(order),), name="crmsweep-read-ahead",
                         daemon=True).start()

    def stop_reading_ahead(self) -> None:
        """The read ahead ends after the column it is decoding, if any (the scan is over)."""
        self._stop_ahead.set()

    def _still_read(self, object_name: str, name: str) -> bool:
        return name in (self._expected.get(object_name) or ())

    def _read_ahead(self, order: list[tuple[str, str]]) -> None:
        for object_name, name in order:
            if self._stop_ahead.is_set():
                return
            with self._lock:
                if (name in self._columns.get(object_name, {}) or not self._still_read(object_name, name)
                        or (object_name, name) in self._reading):
                    continue
                done = self._reading[(object_name, name)] = threading.Event()
            try:
                read = self._base.frame(object_name, [name])
                with self._lock:
                    held = self._columns.setdefault(object_name, {})
                    rows = len(next(iter(held.values()))) if held else len(read)
                    # Held only where a frame would have held it; a frame reads any other itself.
                    if name not in held and len(read) == rows and self._still_read(object_name, name):
                        held[name] = read[name].reset_index(drop=True)
            except Exception:
                return
            finally:
                with self._lock:
                    del self._reading[(object_name, name)]
                done.set()

    def _frame(self, object_name: str, columns: Sequence[str] | None) -> pd.DataFrame:
        names = [s.name for s in self._base.fields(object_name)] if columns is None else list(dict.fromkeys(columns))
        held = self._columns.setdefault(object_name, {})
        missing = [name for name in names if name not in held]
        if missing or not held:
            # The base names unknown columns and objects in its own words; it is asked for all the missing
            # columns at once, so an object is read at most once per new set of columns.
            read = self._base.frame(object_name, missing)
            rows = len(next(iter(held.values()))) if held else len(read)
            if len(read) != rows:
                raise RuntimeError(f"{object_name} gave {rows} rows, then {len(read)}: its rows changed under the scan")
            for name in missing:
                held[name] = read[name].reset_index(drop=True)
            if not held:
                return read
        return pd.DataFrame({name: held[name] for name in names}, columns=names, copy=True)

    def keep(self, wanted: Mapping[str, Collection[str] | None]) -> None:
        """Let go of every column but these (None: all of that object's): what is still to be read.

        A column let go is read again if asked for after all, so this only ever costs time, never an answer."""
        with self._lock:
            self._keep(wanted)

    def _keep(self, wanted: Mapping[str, Collection[str] | None]) -> None:
        for obj in list(self._columns):
            if obj not in wanted:
                del self._columns[obj]
                continue
            names = wanted[obj]
            if names is not None:
                held = self._columns[obj]
                for name in [n for n in held if n not in names]:
                    del held[name]

    def expect(self, wanted: Mapping[str, Collection[str] | None]) -> None:
        """The columns the passes from now on say they read (None: they do not say which), told before each
        pass: `before_images` then reads whole, once, those it would otherwise decode a row group at a time
        for the images and again whole when a later pass asks for them."""
        self._expected = wanted

    def _read_expected(self, object_name: str) -> None:
        names = self._expected.get(object_name)
        if not names:  # not read later, or no list of what is (reading every column whole would cost memory)
            return
        held = self._columns.get(object_name, {})
        kinds = {spec.name: spec.kind for spec in self._base.fields(object_name)}
        # Only the kinds a held column gives back exactly: the others are decoded for the images anyway.
        missing = sorted(n for n in names if n not in held and kinds.get(n) in _EXACT)
        if missing:
            self.frame(object_name, missing)

    def before_images(self, object_name: str, ids: Iterable[str]) -> Mapping[str, Mapping[str, Any]]:
        """The base's before-images; from a snapshot reader, with the columns held here taken from them, not
        decoded from Parquet a second time (at 1M contacts the stale ones are a quarter of every row group)."""
        using = getattr(self._base, "before_images_using", None)
        if using is not None:
            self._read_expected(object_name)  # through `frame`, which may wait for the read ahead: not locked here
        with self._lock:
            # The object's columns as they stand (a copy of the dict, not of a column): a column let go on another
            # thread meanwhile is still here.
            held = dict(self._columns.get(object_name, {}))
        if using is None or not held:
            return self._base.before_images(object_name, ids)
        kinds = {spec.name: spec.kind for spec in self._base.fields(object_name)}

        def stored(name: str, rows: np.ndarray | None, count: int) -> pa.Array | None:
            series = held.get(name)
            return None if series is None or len(series) != count else stored_values(series, kinds[name], rows)

        images: Mapping[str, Mapping[str, Any]] = using(object_name, ids, stored)
        return images


def stored_values(series: pd.Series, kind: FieldKind, rows: np.ndarray | None) -> pa.Array | None:
    """These rows (None: all) of a frame column (as the snapshot reader makes it) back as the snapshot stores
    them, or None where the frame does not hold them exactly (FLOAT, DECIMAL) or the column is not of its
    kind's type. A whole text column is its Arrow buffers, not copied."""
    arrow_type = _EXACT.get(kind)
    if arrow_type is None:
        return None
    try:
        values = pa.array(series if rows is None else series.take(rows), type=arrow_type, from_pandas=True)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        return values.cast(pa.date32()) if kind is FieldKind.DATE else values
    except (pa.ArrowException, ArithmeticError, ValueError, TypeError):  # not the type the reader gives
        return None
