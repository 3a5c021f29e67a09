"""`runs show` of a rollback that brought some records back under their own ids (HubSpot properties, restored
by name): they are the originals, not copies under new ids, so they are neither counted nor listed as
re-created under new ids (the rollback's own note leaves them out too: an admin told to delete the re-created
copies must not be handed the originals)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from crmsweep.backup.runlog import RunState
from crmsweep.commands.runs import _recreated_items, _recreated_text
from crmsweep.model import Change, Op


def test_a_record_back_under_its_own_id_is_not_listed_as_recreated_under_a_new_id() -> None:
    prop = Change(Op.CREATE, "properties", "contacts.fax", {}, {"name": "contacts.fax"}, reason="r", pass_name="p")
    contact = Change(Op.CREATE, "contacts", "101", {}, {"email": "a@x.example"}, reason="r", pass_name="p")
    id_map = {"properties": {"contacts.fax": "contacts.fax"}, "contacts": {"101": "201"}}
    state = SimpleNamespace(id_map=id_map, outcomes=[SimpleNamespace(index=0), SimpleNamespace(index=1)],
                            plan=SimpleNamespace(changes=[prop, contact]))
    items = _recreated_items(cast(RunState, state))
    assert [(i["object"], i["old_id"], i["new_id"]) for i in items] == [("contacts", "101", "201")]
    text = _recreated_text(id_map)
    assert text.startswith("1 contacts under new ids") and "properties under new ids" not in text
    assert text.endswith("1 properties under their own ids")
