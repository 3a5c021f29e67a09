"""Report likely duplicate people and companies for a person to merge by hand (never applied).

People (per object) are grouped by the same email address (compared ignoring case and surrounding
spaces only: dots and "+tags" are kept, as many mail systems treat them as different mailboxes), the
same phone number (its digits, the last 10, at least 7 of them), and the same name at the same company.
Names that are only similar (rapidfuzz token_sort_ratio at least `threshold`) are compared within
blocks of records sharing the first three letters of the last name and the company, never all pairs,
so the pass scales with the number of records. Companies are grouped by the same name (ignoring case,
punctuation and spacing) and the same web domain (scheme, "www." and path stripped).

Each group is one finding, with its reason and a score; the same records found by several rules are
one finding, with each reason and the best score. Groups of more than `max_group` records (a placeholder
phone, a shared inbox) are counted in a note rather than listed, and so are blocks too big to compare
name by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import fuzz, process

from crmsweep.bounds import Bound
from crmsweep.cleanup.labels import labels_by_id
from crmsweep.cleanup.passes import ObjectRead, PassContext, PassOutput, PassSpec, summary_of
from crmsweep.cleanup.passes._assets import concept_of, present
from crmsweep.cleanup.view import live_frame
from crmsweep.concepts import CompanyMatch, DuplicateKeys, PeopleMatch
from crmsweep.model import ReviewItem, Vocabulary

NAME = "duplicates"
# How sure an exact match of each kind is: the same address is one mailbox, a phone can be a switchboard.
SCORES = {"email": 1.0, "name": 0.95, "domain": 0.9, "company": 0.9, "phone": 0.8}
MIN_PHONE_DIGITS = 7
PHONE_DIGITS = 10
BLOCK_LETTERS = 3
# A block above this many records is not compared pair by pair (its square would dominate the scan).
MAX_BLOCK = 1000
# Up to this many records a block's score matrix is walked in plain Python (see `_similar_sets_small`).
SMALL_BLOCK = 24


@dataclass(frozen=True)
class Group:
    ids: tuple[str, ...]
    reason: str
    score: float


def _keys(ctx: PassContext) -> DuplicateKeys:
    return concept_of(ctx.vocabulary, DuplicateKeys)


def _arrow(series: pd.Series) -> pa.Array:
    """The column as Arrow strings, trimmed, with null for empty cells: the normalisers run in Arrow's
    vectorised kernels (a Python call per cell costs seconds at a million rows)."""
    text = pc.utf8_trim_whitespace(pa.array(series.astype("string"), type=pa.string(), from_pandas=True))
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _series(values: pa.Array) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(_arrow(pd.Series(pd.arrays.ArrowStringArray(values)))))


def _text(series: pd.Series) -> pd.Series:
    """Strings with NA for empty cells, whatever the column's dtype."""
    return pd.Series(pd.arrays.ArrowStringArray(_arrow(series)))


def normal_email(series: pd.Series) -> pd.Series:
    return _series(pc.utf8_lower(_arrow(series)))


def normal_phone(series: pd.Series) -> pd.Series:
    digits = pc.replace_substring_regex(_arrow(series), r"\D", "")
    digits = pc.utf8_slice_codeunits(digits, -PHONE_DIGITS)
    return _series(pc.if_else(pc.less(pc.utf8_length(digits), MIN_PHONE_DIGITS), pa.scalar(None, pa.string()), digits))


def normal_name(series: pd.Series) -> pd.Series:
    """Case, punctuation and spacing ignored: "ACME, Inc." and "acme inc" are one name (letters of any script
    kept: "Łukasz" stays "łukasz")."""
    text = pc.replace_substring_regex(pc.utf8_lower(_arrow(series)), r"[^\p{L}\p{N}\s]", " ")
    return _series(pc.replace_substring_regex(text, r"\s+", " "))


def normal_domain(series: pd.Series) -> pd.Series:
    """"https://www.Acme.com/about" -> "acme.com": scheme, credentials, www., port, path and a final dot go."""
    text = pc.utf8_lower(_arrow(series))
    for pattern in (r"^[a-z][a-z0-9+.-]*://", r"^[^/@]*@", r"[/?#:].*$", r"^www\.", r"\.+$"):
        text = pc.replace_substring_regex(text, pattern, "")
    return _series(text)


def exact_groups(ids: pd.Series, keys: Sequence[pd.Series]) -> list[tuple[str, tuple[str, ...]]]:
    """(key, ids) for every key two or more records share, over one or more key columns, in key order.

    One factorisation of all the keys, then integer work: (key code, row) pairs made unique, counted, split."""
    rows = len(ids)
    if rows == 0:
        return []
    stacked = pd.concat([k.reset_index(drop=True) for k in keys], ignore_index=True)
    codes, uniques = pd.factorize(stacked)
    position = np.tile(np.arange(rows, dtype=np.int64), len(keys))
    valid = codes >= 0
    pairs = _sorted_unique(codes[valid].astype(np.int64) * rows + position[valid])  # by code, then row
    code, row = pairs // rows, pairs % rows
    shared = np.bincount(code)[code] > 1
    code, row = code[shared], row[shared]
    if len(code) == 0:
        return []
    bounds = np.flatnonzero(np.diff(code)) + 1
    names = ids.astype(str).to_numpy()
    groups = [
        (str(uniques[first]), tuple(sorted(str(names[r]) for r in members)))
        for first, members in zip(code[np.r_[0, bounds]], np.split(row, bounds), strict=True)
    ]
    return sorted(groups)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique's answer for integers, by one sort: numpy's hash-based unique took seconds at a million rows."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def _similar_sets(scores: np.ndarray, threshold: int) -> list[tuple[list[int], float]]:
    """The sets of rows linked by scores at or over `threshold` (each with its lowest such score), from a
    square score matrix: labels spread along links as arrays, so a block of a thousand similar names costs
    a few matrix passes, not a Python step per pair."""
    n = len(scores)
    linked = scores >= threshold
    np.fill_diagonal(linked, False)
    if not linked.any():  # no two names alike: the block's commonest answer, settled without a walk
        return []
    if n <= SMALL_BLOCK:
        return _similar_sets_small(scores.tolist(), linked.tolist())
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


def _similar_sets_small(scores: list[list[float]], linked: list[list[bool]]) -> list[tuple[list[int], float]]:
    """`_similar_sets` for a small block, in plain Python: most blocks hold a handful of names, and a dozen
    numpy calls on a 3-by-3 matrix cost more than the loops. Scores are symmetric (token_sort_ratio is), so
    the linked sets are the components a union-find keeps under their lowest row: what the spreading of
    labels converges to, in the same order."""
    n = len(scores)
    root = list(range(n))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for i, row in enumerate(linked):
        for j, hit in enumerate(row):
            if hit:
                a, b = find(i), find(j)
                if a != b:
                    root[max(a, b)] = min(a, b)
    members_of: dict[int, list[int]] = {}
    for i in range(n):
        members_of.setdefault(find(i), []).append(i)
    out: list[tuple[list[int], float]] = []
    for label in sorted(members_of):
        members = members_of[label]
        if len(members) < 2:
            continue
        inside = [scores[a][b] for x, a in enumerate(members) for b in members[x + 1:] if linked[a][b]]
        out.append((members, min(inside)))
    return out


def _block_scores(names: list[str], threshold: int) -> np.ndarray:
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


def fuzzy_groups(
    ids: pd.Series, names: pd.Series, blocks: pd.Series, threshold: int
) -> tuple[list[tuple[str, tuple[str, ...], float]], int]:
    """(block, ids, lowest score) per set of similar names within one block; and how many blocks were too
    big to compare."""
    frame = pd.DataFrame({"id": ids.to_numpy(), "name": names.to_numpy(), "block": blocks.to_numpy()})
    frame = frame.dropna(subset=["name", "block"])
    frame = frame[frame.duplicated("block", keep=False)].sort_values("block", kind="stable")
    found: list[tuple[str, tuple[str, ...], float]] = []
    too_big = 0
    # Blocks as runs of one sorted column, walked with plain lists: most blocks hold two records, and a
    # pandas groupby costs more per block than comparing its names does.
    block_of = frame["block"].astype(str).tolist()
    name_of = frame["name"].astype(str).tolist()
    id_of = frame["id"].astype(str).tolist()
    start = 0
    while start < len(block_of):
        end = start + 1
        while end < len(block_of) and block_of[end] == block_of[start]:
            end += 1
        size, block = end - start, block_of[start]
        if size > MAX_BLOCK:
            too_big += 1
        elif size == 2:
            score = fuzz.token_sort_ratio(name_of[start], name_of[start + 1], score_cutoff=threshold)
            if score >= threshold:
                found.append((block, tuple(sorted(id_of[start:end])), score / 100))
        else:
            row_ids = id_of[start:end]
            for comp, low in _similar_sets(_block_scores(name_of[start:end], threshold), threshold):
                found.append((block, tuple(sorted(row_ids[i] for i in comp)), low / 100))
        start = end
    found.sort(key=lambda item: item[0])
    return found, too_big


def _people_groups(ctx: PassContext, match: PeopleMatch, frame: pd.DataFrame) -> tuple[list[Group], int]:
    ids = frame[ctx.vocabulary.id_field].astype(str)
    groups: list[Group] = []
    emails = [normal_email(frame[f]) for f in match.email_fields if f in frame]
    groups += [Group(m, f"same email {k}", SCORES["email"]) for k, m in exact_groups(ids, emails)] if emails else []
    phones = [normal_phone(frame[f]) for f in match.phone_fields if f in frame]
    groups += [Group(m, f"same phone {k}", SCORES["phone"]) for k, m in exact_groups(ids, phones)] if phones else []
    have = all(f in frame for f in (match.first_name_field, match.last_name_field, match.company_field))
    if not have:
        return groups, 0
    last = normal_name(frame[match.last_name_field])
    full = normal_name(frame[match.first_name_field].astype("string").fillna("") + " " + last.fillna(""))
    full = full.where(last.notna())
    company = _text(frame[match.company_field]) if match.company_is_record else normal_name(frame[match.company_field])
    both = (full + " / " + company).where(full.notna() & company.notna())
    groups += [Group(m, f"same name and company {k}", SCORES["name"]) for k, m in exact_groups(ids, [both])]
    blocks = (last.str[:BLOCK_LETTERS] + " / " + company).where(last.notna() & company.notna())
    similar, too_big = fuzzy_groups(ids, full, blocks, int(ctx.settings["threshold"]))
    # Similar names are a weaker sign than the same name at the company, and a set of records that rule (or
    # another) already found is not news.
    found = {g.ids for g in groups}
    groups += [Group(m, f"similar names at the same company {b.split(' / ', 1)[1]}", s * SCORES["name"])
               for b, m, s in similar if m not in found]
    return groups, too_big


def _company_groups(ctx: PassContext, match: CompanyMatch, frame: pd.DataFrame) -> list[Group]:
    ids = frame[ctx.vocabulary.id_field].astype(str)
    groups: list[Group] = []
    if match.name_field in frame:
        found = exact_groups(ids, [normal_name(frame[match.name_field])])
        groups += [Group(m, f"same name {k}", SCORES["company"]) for k, m in found]
    if match.domain_field in frame:
        found = exact_groups(ids, [normal_domain(frame[match.domain_field])])
        groups += [Group(m, f"same domain {k}", SCORES["domain"]) for k, m in found]
    return groups


def _report(ctx: PassContext, output: PassOutput, obj: str, groups: list[Group]) -> None:
    """One finding per group of `obj` (the same records found by several rules: one finding with every
    reason and the best score); the oversized ones counted in a note."""
    limit = int(ctx.settings["max_group"])
    merged: dict[tuple[str, ...], Group] = {}
    for group in groups:
        was = merged.get(group.ids)
        merged[group.ids] = group if was is None else Group(
            group.ids, f"{was.reason}; {group.reason}", max(was.score, group.score))
    listed = [g for g in merged.values() if len(g.ids) <= limit]
    oversized = [g for g in merged.values() if len(g.ids) > limit]
    # The snapshot's own rows, as record_map gives them: before any earlier pass's writes.
    label_of = labels_by_id(ctx.snapshot, ctx.vocabulary, obj, sorted({i for g in listed for i in g.ids}))
    for group in listed:
        labels = tuple(label_of[i] for i in group.ids)
        output.review.append(ReviewItem(pass_name=NAME, object=obj, record_ids=group.ids, reason=group.reason,
                                        score=round(group.score, 4), labels=labels))
    if oversized:
        biggest = max(oversized, key=lambda g: len(g.ids))
        output.notes.append(
            f"{len(oversized)} {obj} group{'s' if len(oversized) > 1 else ''} of more than {limit} records not "
            f"listed (largest: {len(biggest.ids):,} records, {biggest.reason}): likely a placeholder value"
        )


def run(ctx: PassContext) -> PassOutput:
    vocab, keys = ctx.vocabulary, _keys(ctx)
    output = PassOutput(changes=[])
    looked = 0
    for people in keys.people:
        if not ctx.view.has(people.object):
            continue
        looked += 1
        wanted = [vocab.id_field, *people.email_fields, *people.phone_fields, people.first_name_field,
                  people.last_name_field, people.company_field]
        frame = live_frame(ctx.view, people.object, present(ctx, people.object, wanted), vocab.deleted_field)
        groups, too_big = _people_groups(ctx, people, frame)
        _report(ctx, output, people.object, groups)
        if too_big:
            output.notes.append(f"{too_big} {people.object} blocks of more than {MAX_BLOCK} records sharing the "
                                "first letters of a last name and a company were not compared name by name")
    for company in keys.companies:
        if not ctx.view.has(company.object):
            continue
        looked += 1
        wanted = [vocab.id_field, company.name_field, company.domain_field]
        frame = live_frame(ctx.view, company.object, present(ctx, company.object, wanted), vocab.deleted_field)
        _report(ctx, output, company.object, _company_groups(ctx, company, frame))
    if not looked:
        return PassOutput(changes=[], skipped="the snapshot holds none of the people or company objects")
    return output


def _reads(vocab: Vocabulary) -> list[ObjectRead]:
    keys = vocab.concept(DuplicateKeys)
    if keys is None:
        return []
    people = [
        ObjectRead(p.object, (vocab.id_field, *p.email_fields, *p.phone_fields, p.first_name_field,
                              p.last_name_field, p.company_field), optional=True)
        for p in keys.people
    ]
    companies = [ObjectRead(c.object, (vocab.id_field, c.name_field, c.domain_field), optional=True)
                 for c in keys.companies]
    return [*people, *companies]


SPEC = PassSpec(
    name=NAME,
    summary=summary_of(__doc__),
    order=16,
    defaults={"threshold": 92, "max_group": 50},
    run=run,
    bounds={"threshold": Bound(50, 100), "max_group": Bound(2, 100000)},
    needs=(DuplicateKeys,),
    reads=_reads,
    report_only=True,
)
