"""Sets of similar names within blocks (records sharing a blocking key), scored in bulk.

Most blocks hold two or three people. Their pairs are listed for all small blocks at once and scored by
one rapidfuzz `cpdist` call over the distinct name pairs among them (a pair of equal names is 100 without
scoring), and the linked rows joined into sets by label propagation over the links: no Python step per
block. A block of more than PAIR_BLOCK records is scored as a square matrix (`cdist`) and walked on its own.

A set is the rows linked, directly or through others, by a score at or over the threshold, with the lowest
such score inside it. Scores of a block of three or more are rapidfuzz's float32 matrix values (what
`cdist` gives), those of a block of two the scorer's own float: findings keep the scores they had.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

# Up to this many records a block's pairs are scored with every other small block's.
PAIR_BLOCK = 64
# Pairs listed and scored at once: bounds the memory of a worst case (every name alike).
_PAIR_CHUNK = 1 << 19


@dataclass(frozen=True, slots=True)
class SimilarSet:
    block: int  # the block's code
    rows: tuple[int, ...]  # ascending
    score: float  # the lowest link inside, 0..100


Texts = Callable[[np.ndarray], list[str]]


def similar_sets(
    blocks: np.ndarray, names: np.ndarray, texts: Texts, threshold: int, max_block: int
) -> tuple[list[SimilarSet], int]:
    """The sets of similar names in each block, by block code then first row; and how many blocks had more
    than `max_block` records (not compared). `blocks` and `names` are codes per row (-1: none); `texts`
    gives the names of an array of name codes (only those of rows sharing a block are asked for)."""
    rows = np.flatnonzero((blocks >= 0) & (names >= 0))
    order = np.argsort(blocks[rows], kind="stable")
    rows = rows[order]
    block = blocks[rows]
    if len(rows) == 0:
        return [], 0
    starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]])
    sizes = np.diff(np.r_[starts, len(rows)])
    paired = min(PAIR_BLOCK, max_block)
    chosen = np.flatnonzero((sizes >= 2) & (sizes <= paired))
    # Blocks taken a bounded number of pairs at a time: a dense org's millions of pairs never all in memory.
    batch = (np.cumsum(sizes[chosen] * (sizes[chosen] - 1) // 2) - 1) // _PAIR_CHUNK
    cuts = [0, *(np.flatnonzero(np.diff(batch)) + 1).tolist(), len(chosen)]
    found = [found_set for start, end in pairwise(cuts) if end > start
             for found_set in _small_blocks(rows, names, texts, threshold, starts, sizes, block, chosen[start:end])]
    square = (sizes > paired) & (sizes <= max_block)
    for start, size in zip(starts[square].tolist(), sizes[square].tolist(), strict=True):
        members = rows[start:start + size]
        scores = block_scores(texts(names[members]), threshold)
        found += [SimilarSet(int(block[start]), tuple(int(members[i]) for i in local), low)
                  for local, low in matrix_sets(scores, threshold)]
    found.sort(key=lambda s: (s.block, s.rows[0]))
    return found, int(np.count_nonzero(sizes > max_block))


def _small_blocks(rows: np.ndarray, names: np.ndarray, texts: Texts, threshold: int, starts: np.ndarray,
                  sizes: np.ndarray, block: np.ndarray, chosen: np.ndarray) -> list[SimilarSet]:
    """The sets of the `chosen` blocks (indices into `starts` and `sizes`, in the rows sorted by block), their
    pairs scored together."""
    left, right = _pairs(starts[chosen], sizes[chosen])
    if len(left) == 0:
        return []
    scores = np.zeros(len(left), np.float64)
    a, b = names[rows[left]], names[rows[right]]
    scores[a == b] = 100.0  # a name and itself: token_sort_ratio's 100 whatever the cutoff
    differ = np.flatnonzero(a != b)
    if len(differ):
        span = int(names.max()) + 1
        low, high = np.minimum(a[differ], b[differ]), np.maximum(a[differ], b[differ])  # the scorer is symmetric
        pair_codes, distinct = pd.factorize(low * span + high)
        distinct = np.asarray(distinct, dtype=np.int64)
        scores[differ] = _scores(distinct // span, distinct % span, texts, threshold)[np.asarray(pair_codes, np.intp)]
    linked = np.flatnonzero(scores >= threshold)
    if len(linked) == 0:
        return []
    left, right, scores = left[linked], right[linked], scores[linked]
    size_of = np.repeat(sizes, sizes)  # per position in the sorted rows: its block's size
    # A block of three or more was scored as a float32 matrix: its lowest link keeps that precision.
    scores = np.where(size_of[left] > 2, scores.astype(np.float32).astype(np.float64), scores)
    label = _components(left, right, len(rows))
    low = np.full(len(rows), np.inf)
    np.minimum.at(low, label[left], scores)
    members = np.flatnonzero(low[label] < np.inf)  # positions in a set
    by_label = members[np.argsort(label[members], kind="stable")]
    cuts = [0, *(np.flatnonzero(np.diff(label[by_label])) + 1).tolist(), len(by_label)]
    first = by_label[cuts[:-1]]
    set_rows = rows[by_label].tolist()
    return [SimilarSet(b, tuple(set_rows[start:end]), score) for b, start, end, score in
            zip(block[first].tolist(), cuts[:-1], cuts[1:], low[label[first]].tolist(), strict=True)]


def _scores(first: np.ndarray, second: np.ndarray, texts: Texts, threshold: int) -> np.ndarray:
    """token_sort_ratio of each pair of name codes (0 under `threshold`).

    A name of letters, digits and spaces (every normalised name) has its words sorted once, and the sorted
    texts are compared by `ratio`: what token_sort_ratio does to both texts of every pair. A name with other
    characters is left to token_sort_ratio itself, whose idea of a word break is its own (not Python's)."""
    needed = np.unique(np.concatenate([first, second]))
    names = texts(needed)
    plain = np.array([not text.replace(" ", "") or text.replace(" ", "").isalnum() for text in names], dtype=bool)
    sorted_words = np.array([" ".join(sorted(w for w in text.split(" ") if w)) if ok else text
                             for text, ok in zip(names, plain.tolist(), strict=True)], dtype=object)
    at_first, at_second = np.searchsorted(needed, first), np.searchsorted(needed, second)
    both_plain = plain[at_first] & plain[at_second]
    out = np.zeros(len(first), np.float64)
    for scorer, words, chosen in ((fuzz.ratio, sorted_words, both_plain),
                                  (fuzz.token_sort_ratio, np.array(names, dtype=object), ~both_plain)):
        picked = np.flatnonzero(chosen)
        for s in range(0, len(picked), _PAIR_CHUNK):
            part = picked[s:s + _PAIR_CHUNK]
            out[part] = process.cpdist(words[at_first[part]].tolist(), words[at_second[part]].tolist(), scorer=scorer,
                                       score_cutoff=threshold, dtype=np.float64, workers=1)
    return out


def _pairs(starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (i, j), i < j, of every pair inside each block of two or more records."""
    lefts, rights = [], []
    for size in np.unique(sizes[sizes >= 2]).tolist():
        first = starts[sizes == size]
        i, j = np.triu_indices(size, 1)
        lefts.append((first[:, None] + i).ravel())
        rights.append((first[:, None] + j).ravel())
    if not lefts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(lefts), np.concatenate(rights)


def _components(left: np.ndarray, right: np.ndarray, count: int) -> np.ndarray:
    """Per position, the lowest position it is linked to through the (left, right) links (itself if none)."""
    label = np.arange(count)
    while True:
        low = np.minimum(label[left], label[right])
        new = label.copy()
        np.minimum.at(new, left, low)
        np.minimum.at(new, right, low)
        new = new[new]  # jump to the label's own label: long chains settle in a few rounds
        if np.array_equal(new, label):
            return label
        label = new


def block_scores(names: list[str], threshold: int) -> np.ndarray:
    """The block's square score matrix. A name there several times ("john smith" at one company) is scored
    once: its rows and columns are copies, as the scorer is a function of the two texts alone."""
    unique = list(dict.fromkeys(names))
    if len(unique) == len(names):
        return np.asarray(process.cdist(names, names, scorer=fuzz.token_sort_ratio, score_cutoff=threshold,
                                        workers=1))
    position = {name: i for i, name in enumerate(unique)}
    index = np.fromiter((position[name] for name in names), dtype=np.intp, count=len(names))
    scores = np.asarray(process.cdist(unique, unique, scorer=fuzz.token_sort_ratio, score_cutoff=threshold,
                                      workers=1))
    return scores[np.ix_(index, index)]


def matrix_sets(scores: np.ndarray, threshold: int) -> list[tuple[list[int], float]]:
    """The sets of rows linked by scores at or over `threshold` (each with its lowest such score), from a
    square score matrix: labels spread along links as arrays, so a block of a thousand similar names costs
    a few matrix passes, not a Python step per pair."""
    n = len(scores)
    linked = scores >= threshold
    np.fill_diagonal(linked, False)
    if not linked.any():
        return []
    labels = np.arange(n)
    while True:
        spread = np.where(linked, labels[None, :], n).min(axis=1)
        new = np.minimum(labels, spread)
        if np.array_equal(new, labels):
            break
        labels = new
    out: list[tuple[list[int], float]] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            continue
        inside = scores[np.ix_(members, members)]
        upper = np.triu(linked[np.ix_(members, members)], k=1)
        out.append(([int(i) for i in members], float(inside[upper].min())))
    return out
