"""A text made only of whitespace and invisible format characters (zero-width space, BOM, word joiner: what a
copy from a web page leaves in an "empty" cell) is empty: nobody is reached at such an email, no two records
are duplicates by it, and the live re-check at apply agrees with the scan (red team R1)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from crmsweep.cleanup.passes._guards import filled, live_filled
from crmsweep.cleanup.passes._match_keys import email_text
from crmsweep.cleanup.quality_rules import measure, rule_column
from crmsweep.cleanup.view import TEXT_DTYPE
from crmsweep.concepts import QualityRule
from tests.record_orgs import SF, scan, sf_org

INVISIBLE = ["\u200b", "\ufeff", "\u2060", " \u200b\t", "\u200b\u200b"]
SHOWN = ["a@x.com", "\u200ba@x.com", "é", "\u00a0x", "😀"]


def test_invisible_texts_are_not_filled_in_a_frame_nor_live() -> None:
    values = [*INVISIBLE, *SHOWN, None, "", " "]
    got = filled(pd.Series(values, dtype=TEXT_DTYPE)).tolist()
    assert got == [False] * len(INVISIBLE) + [True] * len(SHOWN) + [False, False, False]
    assert [live_filled(v) for v in values] == got


def test_no_contact_info_proposes_people_whose_only_email_is_invisible_and_duplicates_groups_none() -> None:
    org = sf_org()
    emails = [*INVISIBLE, INVISIBLE[0], "b@x.com", "b@x.com"]
    for n, email in enumerate(emails):
        org.add("Contact", f"003000000000{n:03d}AAA", Name=f"P{n}", Email=email, Phone=None, MobilePhone=None,
                LastModifiedDate="2026-03-01T00:00:00.000Z")
    proposed = scan(org.view(), SF, ["no_contact_info"], recent_days=0).plan.changes
    assert sorted(c.record_id for c in proposed) == [f"003000000000{n:03d}AAA" for n in range(len(INVISIBLE) + 1)]
    review = scan(org.view(), SF, ["duplicates"], recent_days=0).plan.header.review
    assert [(item.reason, item.record_ids) for item in review] == [
        ("same email b@x.com", ("003000000000006AAA", "003000000000007AAA"))]


def test_an_invisible_email_key_is_empty() -> None:
    keys = email_text(pa.array([*INVISIBLE, "A@X.com ", None], type=pa.string())).to_pylist()
    assert keys == [None] * len(INVISIBLE) + ["a@x.com", None]


def test_duplicates_keys_and_filled_agree_on_every_character_between_invisible_ones() -> None:
    # Arrow's regex calls only ASCII space \s (red team R3): a Unicode space between zero-width ones made a
    # key that no_contact_info called empty. Every code point of the first planes, and some beyond.
    chars = [chr(c) for c in range(0x3100) if not 0xD800 <= c < 0xE000] + ["\ufeff", "\U000e0001", "\U0001d173"]
    texts = [f"\u200b{c}\u200b" for c in chars]
    keys = email_text(pa.array(texts, type=pa.string())).to_pylist()
    shown = filled(pd.Series(texts, dtype=TEXT_DTYPE)).tolist()
    assert [hex(ord(c)) for c, key, there in zip(chars, keys, shown, strict=True) if (key is not None) != there] == []


def test_the_quality_report_counts_an_invisible_email_as_missing() -> None:
    org = sf_org()
    for n, email in enumerate(["\u200b", "\u200b\u3000\u200b", "real@x.com"]):
        org.add("Contact", f"003000000000{n:03d}AAA", Name=f"P{n}", Email=email, Phone=None, MobilePhone=None,
                LastModifiedDate="2026-03-01T00:00:00.000Z")
    rule = QualityRule("Contact", "critical", "email or phone", any_of=("Email", "Phone", "MobilePhone"))
    measured = measure(org.view(), SF, [rule], None)
    broken = measured.defects[0].frame
    assert broken[rule_column(rule)].tolist() == [True, True, False]
