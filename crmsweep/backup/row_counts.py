"""How a snapshot's row counts read to an admin: live records apart from removed ones.

A snapshot keeps the removed (deleted, archived) records of an object the CRM cannot bring back,
because it is their only copy; an admin comparing the count with the CRM's must see which rows are
live. The manifest's `rows` stays the rows in the file (what verify re-counts); `removed_rows` says
how many of them the vocabulary's deleted field marks removed, and is None in a manifest written
before that was counted (such a snapshot may hold removed rows, so none is not assumed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from crmsweep.model import ObjectEntry, SnapshotManifest, Vocabulary

# A total over objects whose CRM names their removed records in different words.
MIXED_WORD = "removed"


@dataclass(frozen=True)
class RowCounts:
    rows: int
    removed: int | None  # None: not counted (a manifest from before the count)
    word: str  # how the CRM names the removed state ("archived", "deleted")
    # Whether a row can be removed at all: links (and objects with no deleted field) are all live, and
    # saying "0 archived" of each would bury the objects that matter.
    removable: bool = True

    @property
    def live(self) -> int | None:
        return None if self.removed is None else self.rows - self.removed

    def split(self) -> str | None:
        """ "1,200 live, 34 archived", or why the rows are not told apart; None where none can be removed."""
        if not self.removable:
            return None
        if self.removed is None:
            return f"live and {self.word} not counted apart: an older backup"
        return f"{self.rows - self.removed:,} live, {self.removed:,} {self.word}"


def object_counts(entry: ObjectEntry, vocabulary: Vocabulary) -> RowCounts:
    removable = vocabulary.deleted_field is not None and any(f.name == vocabulary.deleted_field for f in entry.fields)
    # Where no row can be removed, none was: an older manifest's count is exact there too.
    removed = entry.removed_rows if removable else 0
    return RowCounts(entry.rows, removed, vocabulary.removed_word(entry.name), removable)


def total_counts(entries: Iterable[ObjectEntry], vocabulary: Vocabulary) -> RowCounts:
    """All the entries' rows together; removed unknown if any entry's is."""
    counted = [object_counts(e, vocabulary) for e in entries]
    words = {c.word for c in counted if c.removable}
    word = words.pop() if len(words) == 1 else MIXED_WORD if words else vocabulary.removed_word("")
    removed = [c.removed for c in counted]
    known = None if any(r is None for r in removed) else sum(r for r in removed if r is not None)
    return RowCounts(sum(c.rows for c in counted), known, word, any(c.removable for c in counted))


def counted_text(counts: RowCounts) -> str:
    """ "1,234 (1,200 live, 34 archived)", or just the rows where none can be removed."""
    split = counts.split()
    return f"{counts.rows:,}" + (f" ({split})" if split else "")


def snapshot_counts(manifest: SnapshotManifest, vocabulary: Vocabulary) -> RowCounts:
    return total_counts(manifest.objects.values(), vocabulary)
