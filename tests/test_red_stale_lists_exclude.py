"""Red team: a stale list a marketing email uses as its exclusion (suppression) list is still in use. HubSpot's
`to.contactIlsLists` of a marketing email holds `include` and `exclude` list ids; deleting the excluded list
leaves the email to send to the people it was built to leave out. A suppression list ("competitors", "do not
mail") is exactly the list nobody updates for a year, so the scan must hold it back and apply must keep it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmsweep import api
from crmsweep.sandbox.hubspot_portal import EMAIL_KIND
from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.sandbox_workspace import org_workspace
from tests.test_stale_lists_recheck_hubspot import USED, _deleted, _skips, yes

TOKEN_ENV = "RED_STALE_LISTS_TOKEN"


def _email_with(store: Any, to: dict[str, Any], *, name: str = "Newsletter") -> str:
    template = store.docs(EMAIL_KIND, archived=False)[0]
    new_id = str(max(int(d.key) for d in store.docs(EMAIL_KIND)) + 1)
    data = json.loads(json.dumps(template.data))
    data.update(id=new_id, name=name, archived=False)
    data["to"] = to
    with store.transaction():
        store.put_doc(EMAIL_KIND, new_id, data, archived=False)
    return new_id


def _excluding(list_id: str) -> dict[str, Any]:
    return {"contactIlsLists": {"include": [], "exclude": [int(list_id)]},
            "contactLists": {"include": [], "exclude": []}}


@pytest.fixture()
def hubspot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[api.Workspace, RunningSandbox]]:
    with start_sandbox(tmp_path / "state", provider="hubspot", records=400, seed=7) as sandbox:
        ws = org_workspace(sandbox.info, tmp_path, monkeypatch, provider="hubspot", token_env=TOKEN_ENV,
                           connection="hs")
        yield ws, sandbox


def _scan(ws: api.Workspace, out: Path) -> list[str]:
    outcome = api.scan(ws, "hs", out, passes=["stale_lists"], allow_over_cap=True)
    return [c.record_id for c in outcome.result.plan.changes]


def test_the_scan_holds_back_a_stale_list_an_email_excludes(hubspot: Any, tmp_path: Path) -> None:
    ws, sandbox = hubspot
    lists = _scan(ws, tmp_path / "first.json")
    assert len(lists) >= 2
    _email_with(sandbox._store, _excluding(lists[0]))
    again = _scan(ws, tmp_path / "second.json")
    assert lists[0] not in again, f"list {lists[0]}, an email's exclusion list, is proposed for deletion"


def test_apply_keeps_a_stale_list_an_email_excludes_since_the_scan(hubspot: Any, tmp_path: Path) -> None:
    ws, sandbox = hubspot
    plan = tmp_path / "plan.json"
    lists = _scan(ws, plan)
    email = _email_with(sandbox._store, _excluding(lists[0]))
    report = api.apply(ws, plan, confirm=yes).report
    assert report is not None
    assert not _deleted(sandbox, lists[0]), f"list {lists[0]}, which email {email} excludes, was deleted"
    assert _skips(report) == {lists[0]: ("no longer qualifies", f"{USED} ({email})")}


def test_apply_reads_every_page_of_emails(hubspot: Any, tmp_path: Path) -> None:
    """The email naming the list is past the first page of the read (more emails than one page holds)."""
    ws, sandbox = hubspot
    plan = tmp_path / "plan.json"
    lists = _scan(ws, plan)
    empty: dict[str, Any] = {"contactIlsLists": {"include": [], "exclude": []},
                             "contactLists": {"include": [], "exclude": []}}
    for n in range(230):
        _email_with(sandbox._store, empty, name=f"Filler {n}")
    email = _email_with(sandbox._store, {"contactIlsLists": {"include": [int(lists[0])], "exclude": []}})
    report = api.apply(ws, plan, confirm=yes).report
    assert report is not None
    assert not _deleted(sandbox, lists[0])
    assert _skips(report) == {lists[0]: ("no longer qualifies", f"{USED} ({email})")}
