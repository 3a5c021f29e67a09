"""Red team: on HubSpot, inactive_users hands the records of deactivated owners to `reassign_to`. At apply
the README promises a re-check, on live data, of what made each record a candidate; the hand-over's
re-check (inactive_users._recheck_hand_over) asks only whether the record's owner is unchanged. An owner
reactivated between the scan and the apply still loses every record, and a `reassign_to` owner
deactivated meanwhile still receives them (Salesforce's orphaned_tasks re-check does read the owner's
status: this one does not)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crmsweep import api
from crmsweep.sandbox.hubspot_portal import OWNER_KIND
from crmsweep.sandbox.server import start_sandbox

TOKEN_ENV = "RED_HAND_OVER_TOKEN"


def yes(review: object) -> bool:
    return True


def _set_owner(store: object, key: str, *, archived: bool) -> None:
    doc = store.doc(OWNER_KIND, key)  # type: ignore[attr-defined]
    data = dict(doc.data)
    data["archived"] = archived
    data["userId"] = None if archived else data.get("userIdIncludingInactive")
    with store.transaction():  # type: ignore[attr-defined]
        store.put_doc(OWNER_KIND, key, data, archived=archived)  # type: ignore[attr-defined]


@pytest.fixture()
def planned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    with start_sandbox(tmp_path / "state", provider="hubspot", records=400, seed=7) as sandbox:
        info = sandbox.info
        config = tmp_path / "crmsweep.toml"
        config.write_text(
            f'[connections.hs]\nprovider = "hubspot"\nurl = "{info.url}"\ntoken_env = "{TOKEN_ENV}"\n'
            f'ca_file = "{info.ca_file}"\n\n[passes.inactive_users]\nreassign_to = "71000002"\n',
            encoding="utf-8",
        )
        monkeypatch.setenv(TOKEN_ENV, info.token)
        ws = api.Workspace.load(config, tmp_path / "home")
        api.scan(ws, "hs", tmp_path / "plan.json", allow_over_cap=True)
        data = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
        data["changes"] = [c for c in data["changes"] if c["pass"] == "inactive_users"]
        assert data["changes"], "the seed plants deactivated owners who own records"
        (tmp_path / "hand_over.json").write_text(json.dumps(data), encoding="utf-8")
        api.accept_plan(ws, tmp_path / "hand_over.json", confirm=yes)
        yield ws, sandbox._store, data["changes"], tmp_path / "hand_over.json"


def test_records_of_an_owner_reactivated_since_the_scan_are_not_handed_over(planned) -> None:  # type: ignore[no-untyped-def]
    ws, store, changes, plan_path = planned
    owner = changes[0]["before"]["hubspot_owner_id"]
    _set_owner(store, owner, archived=False)  # back from leave
    report = api.apply(ws, plan_path, confirm=yes).report
    assert report is not None
    theirs = {c["record_id"] for c in changes if c["before"]["hubspot_owner_id"] == owner}
    handed = theirs - {i["id"] for i in report.skipped_items}
    assert not handed, f"{len(handed)} records of owner {owner}, active again, were handed to 71000002"


def test_nothing_is_handed_to_a_reassign_to_owner_deactivated_since_the_scan(planned) -> None:  # type: ignore[no-untyped-def]
    ws, store, _changes, plan_path = planned
    _set_owner(store, "71000002", archived=True)
    report = api.apply(ws, plan_path, confirm=yes).report
    assert report is not None
    assert report.applied == 0, f"{report.applied} records handed to owner 71000002, deactivated since the scan"
