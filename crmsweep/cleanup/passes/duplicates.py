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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crmsweep.bounds import Bound
from crmsweep.cleanup.labels import labels_by_id
from crmsweep.cleanup.passes import ObjectRead, PassContext, PassOutput, PassSpec, summary_of
from crmsweep.cleanup.passes import _match_keys as keys
from crmsweep.cleanup.passes._assets import concept_of, present
from crmsweep.cleanup.passes._similar_names import similar_sets
from crmsweep.cleanup.view import live_frame, text_array
from crmsweep.concepts import CompanyMatch, DuplicateKeys, PeopleMatch
from crmsweep.model import ReviewItem, Vocabulary

NAME = "duplicates"
# How sure an exact match of each kind is: the same address is one mailbox, a phone can be a switchboard.
SCORES = {"email": 1.0, "name": 0.95, "domain": 0.9, "company": 0.9, "phone": 0.8}
BLOCK_LETTERS = 3
# A block above this many records is not compared pair by pair (its square would dominate the scan).
MAX_BLOCK = 1000


@dataclass(frozen=True, slots=True)  # slots: a dense org makes hundreds of thousands
class Group:
    ids: tuple[str, ...]
    reason: str
    score: float


def _keys(ctx: PassContext) -> DuplicateKeys:
    return concept_of(ctx.vocabulary, DuplicateKeys)


def _series(values: pa.Array) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(values))


def normal_email(series: pd.Series) -> pd.Series:
    return _series(keys.email_text(keys.arrow_text(series)))


def normal_phone(series: pd.Series) -> pd.Series:
    return _series(keys.phone_text(keys.arrow_text(series)))


def normal_name(series: pd.Series) -> pd.Series:
    """Case, punctuation and spacing ignored: "ACME, Inc." and "acme inc" are one name (letters of any script
    kept: "Łukasz" stays "łukasz")."""
    return _series(keys.name_text(keys.arrow_text(series)))


def normal_domain(series: pd.Series) -> pd.Series:
    """"https://www.Acme.com/about" -> "acme.com": scheme, credentials, www., port, path and a final dot go."""
    return _series(keys.domain_text(keys.arrow_text(series)))


def _column_keys(frame: pd.DataFrame, fields: Sequence[str], normalise: Callable[[pa.Array], pa.Array],
                 coder: Callable[[pa.Array, Callable[[pa.Array], pa.Array]], keys.Keys] = keys.coded_shared
                 ) -> list[keys.Keys]:
    """The fields' keys in one code space (an address in one field and the same in another share a code)."""
    columns = [keys.arrow_text(frame[f]) for f in fields if f in frame]
    if not columns:
        return []
    joined = columns[0] if len(columns) == 1 else pa.concat_arrays(columns)  # one column: not copied
    coded = coder(joined, normalise)
    bounds = np.cumsum([0, *(len(c) for c in columns)])
    return [keys.Keys(coded.codes[bounds[i]:bounds[i + 1]], coded.texts, coded.distinct) for i in range(len(columns))]


def _row_ids(series: pd.Series) -> Callable[[np.ndarray], list[str]]:
    """The ids of an array of rows, as `str` of each value: only the rows of a finding become Python strings."""
    text = text_array(series)
    if text is None or text.null_count:
        values = series.to_numpy()
        return lambda rows: [str(values[r]) for r in rows.tolist()]
    return lambda rows: text.take(pa.array(rows, type=pa.int64())).to_pylist()


def _exact(ids: Callable[[np.ndarray], list[str]], found: Sequence[keys.Keys]) -> list[tuple[str, tuple[str, ...]]]:
    """(key, ids) for every key two or more records share, over the key columns, in key order."""
    if not found:
        return []
    shared = keys.shared_rows([k.codes for k in found], len(found[0].codes))
    if not shared:
        return []
    names = found[0].texts(np.array([code for code, _ in shared], dtype=np.int64))
    named = iter(ids(np.concatenate([rows for _, rows in shared])))
    return sorted((name, tuple(sorted(next(named) for _ in range(len(rows)))))
                  for name, (_, rows) in zip(names, shared, strict=True))


def exact_groups(ids: pd.Series, columns: Sequence[pd.Series]) -> list[tuple[str, tuple[str, ...]]]:
    """(key, ids) for every key two or more records share, over one or more key columns, in key order."""
    frame = pd.DataFrame({str(i): c.reset_index(drop=True) for i, c in enumerate(columns)})
    return _exact(_row_ids(ids.reset_index(drop=True)), _column_keys(frame, list(frame.columns), lambda values: values))


def _full_names(first: pa.Array, last: keys.Keys) -> keys.Keys:
    """The key of normal_name(first + " " + last) where the last name is present.

    A normalised name is its words (runs of letters and digits, lowered) joined by one space, so that of
    first + " " + last is the first name's words, then the last name's: each distinct first name as typed is
    normalised once (a few hundred), and each distinct (first, last) pair of those named by one join."""
    assert last.distinct is not None
    first_codes, first_distinct = keys.distinct_of(first)
    normal = keys.coded(first_distinct, keys.name_text)  # per distinct first name as typed
    assert normal.distinct is not None
    firsts = np.where(first_codes >= 0, np.append(normal.codes, -1)[first_codes], -1)  # -1: no words
    present = last.codes >= 0
    span = len(last.distinct)
    pair_codes, pairs = pd.factorize((firsts[present] + 1) * span + last.codes[present])
    pairs = np.asarray(pairs, dtype=np.int64)
    first_of = pairs // span
    lasts = last.distinct.take(pa.array(pairs % span, type=pa.int64()))
    joined = pc.binary_join_element_wise(
        pa.concat_arrays([pa.array([""], pa.string()), normal.distinct.cast(pa.string())]).take(
            pa.array(first_of, type=pa.int64())), lasts, " ")
    text = pc.if_else(pa.array(first_of == 0), lasts, joined)  # a first name without words: the last name
    # Two pairs can still be one text ("mary ann" "lee", "mary" "ann lee"): the texts are coded, not the pairs.
    full = keys.coded(text, lambda values: values)
    codes = np.full(len(present), -1, dtype=np.int64)
    codes[present] = np.append(full.codes, -1)[np.asarray(pair_codes, dtype=np.int64)]
    return keys.Keys(codes, full.texts, full.distinct)


def _prefixes(last: keys.Keys) -> keys.Keys:
    """The first BLOCK_LETTERS letters of each last name's key."""
    assert last.distinct is not None
    prefix = keys.coded(keys.arrow_text(_series(last.distinct).str[:BLOCK_LETTERS]), lambda values: values)
    return keys.Keys(np.where(last.codes >= 0, np.append(prefix.codes, -1)[last.codes], -1), prefix.texts,
                     prefix.distinct)


def _people_groups(ctx: PassContext, match: PeopleMatch, frame: pd.DataFrame) -> tuple[list[Group], int]:
    ids = _row_ids(frame[ctx.vocabulary.id_field])
    groups: list[Group] = []
    emails = _column_keys(frame, match.email_fields, keys.email_text)
    groups += [Group(m, f"same email {k}", SCORES["email"]) for k, m in _exact(ids, emails)]
    phones = keys.phone_keys([keys.arrow_text(frame[f]) for f in match.phone_fields if f in frame])
    groups += [Group(m, f"same phone {k}", SCORES["phone"]) for k, m in _exact(ids, phones)]
    have = all(f in frame for f in (match.first_name_field, match.last_name_field, match.company_field))
    if not have:
        return groups, 0
    (last,) = _column_keys(frame, [match.last_name_field], keys.name_text, keys.coded_distinct)
    full = _full_names(keys.arrow_text(frame[match.first_name_field]), last)
    (company,) = _column_keys(frame, [match.company_field],
                              keys.trimmed if match.company_is_record else keys.name_text, keys.coded_distinct)
    both = keys.paired(full, company, " / ")
    groups += [Group(m, f"same name and company {k}", SCORES["name"]) for k, m in _exact(ids, [both])]
    blocks = keys.paired(_prefixes(last), company, " / ")
    similar, too_big = similar_sets(blocks.codes, full.codes, full.texts, int(ctx.settings["threshold"]), MAX_BLOCK)
    # Similar names are a weaker sign than the same name at the company, and a set of records that rule (or
    # another) already found is not news.
    found = {g.ids for g in groups}
    block_names = blocks.texts(np.array([s.block for s in similar], dtype=np.int64))
    named = iter(ids(np.array([r for s in similar for r in s.rows], dtype=np.int64)))
    sets = [(tuple(sorted(next(named) for _ in s.rows)), s.score) for s in similar]
    for block, (members, score) in sorted(zip(block_names, sets, strict=True), key=lambda item: item[0]):
        if members not in found:
            groups.append(Group(members, f"similar names at the same company {block.split(' / ', 1)[1]}",
                                score / 100 * SCORES["name"]))
    return groups, too_big


def _company_groups(ctx: PassContext, match: CompanyMatch, frame: pd.DataFrame) -> list[Group]:
    ids = _row_ids(frame[ctx.vocabulary.id_field])
    groups: list[Group] = []
    found = _exact(ids, _column_keys(frame, [match.name_field], keys.name_text))
    groups += [Group(m, f"same name {k}", SCORES["company"]) for k, m in found]
    found = _exact(ids, _column_keys(frame, [match.domain_field], keys.domain_text))
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
    label_of = labels_by_id(ctx.snapshot, ctx.vocabulary, obj, list(dict.fromkeys(i for g in listed for i in g.ids)))
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
