"""A SnapshotView that reads each (object, column) of its base once and hands the same column to every frame.

A scan's passes read the same columns over and over (Contact's ids by six of them); reading and converting
them from Parquet each time was a third of the scan core's cost at 1M contacts. The scan wraps its snapshot
in one `SharedColumns` for its own lifetime, and after each pass lets go of the columns no later pass says it
reads (`keep`): a scan holds no more columns than it would without sharing, and the shared ones once.

Each frame handed out holds its own copy of the shared columns' values (a copy of memory, not a read): pandas
copies on write through `.loc` and assignment, but not through the arrays `to_numpy()` and `.array` give of a
nullable column, so a pass writing there would have changed what every later pass reads.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import pandas as pd

from crmsweep.cleanup.view import SnapshotView, ViewOver


class SharedColumns(ViewOver):
    """A SnapshotView over `base` whose frames share columns read once (see the module docstring)."""

    def __init__(self, base: SnapshotView) -> None:
        super().__init__(base)
        self._columns: dict[str, dict[str, pd.Series]] = {}

    def frame(self, object_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
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
        for obj in list(self._columns):
            if obj not in wanted:
                del self._columns[obj]
                continue
            names = wanted[obj]
            if names is not None:
                held = self._columns[obj]
                for name in [n for n in held if n not in names]:
                    del held[name]
