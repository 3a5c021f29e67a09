"""Views laid on top of one another: each pass sees the earlier passes' changes, and no view sees later ones."""

from __future__ import annotations

from typing import Any

import pandas as pd

from crmsweep.cleanup.effects import EffectsView
from crmsweep.model import Change, Op
from tests.fake_connector import FAKE_VOCABULARY
from tests.test_passes import cid, make_view, person


def delete(rid: str) -> Change:
    return Change(Op.DELETE, "Contact", rid, {"Id": rid}, {}, reason="r", pass_name="p")


def update(rid: str, **after: object) -> Change:
    return Change(Op.UPDATE, "Contact", rid, {"Id": rid, **{k: None for k in after}}, dict(after), reason="r",
                  pass_name="p")


def contacts(view: EffectsView) -> dict[str, tuple[object, object]]:
    frame = view.frame("Contact", ["Id", "Name", "Email"])
    # A STRING column reads an empty value as NaN: as None here, so a cleared address reads as missing.
    return {str(r.Id): (_given(r.Name), _given(r.Email)) for r in frame.itertuples()}


def _given(value: Any) -> Any:
    return None if pd.isna(value) else value


def test_each_view_holds_the_changes_before_it_and_none_after() -> None:
    base = make_view({"Contact": [person(cid(n), f"P{n}", activity="2019-01-01", email=f"p{n}@x.org", n=n)
                                  for n in range(1, 6)]}, only=["Contact"])
    first = EffectsView(base, FAKE_VOCABULARY, [delete(cid(1)), update(cid(2), Email="two@new.org")])
    second = first.with_changes([delete(cid(3)), update(cid(2), Name="Two"), update(cid(4), Email=None)])
    third = second.with_changes([])

    assert contacts(first) == {cid(2): ("P2", "two@new.org"), cid(3): ("P3", "p3@x.org"),
                               cid(4): ("P4", "p4@x.org"), cid(5): ("P5", "p5@x.org")}
    assert contacts(second) == {cid(2): ("Two", "two@new.org"), cid(4): ("P4", None), cid(5): ("P5", "p5@x.org")}
    assert contacts(third) == contacts(second)
    assert first.removed("Contact") == {cid(1)}
    assert second.removed("Contact") == third.removed("Contact") == {cid(1), cid(3)}
    assert second.removed("Lead") == frozenset()
    # Before-images stay the snapshot's own rows, whatever the earlier passes write.
    assert second.record_map("Contact", [cid(2)])[cid(2)]["Email"] == "p2@x.org"
