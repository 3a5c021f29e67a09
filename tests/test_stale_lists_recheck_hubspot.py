"""stale_lists at apply time, on HubSpot: a list a marketing email names now (one built, or archived, since
the scan) is not deleted. The README promises apply re-checks what made each record a candidate on live
data; for a list that is "no email names it", and no read finds emails by the lists they use, so apply
reads the portal's emails (archived ones too, as the scan counts them) once per batch."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmsweep import api
from crmsweep.budget import apply_estimate
from crmsweep.model import Change, Op
from crmsweep.providers.hubspot import PROVIDER as HUBSPOT
from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.hubspot_portal import EMAIL_KIND
from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.hubspot_fixtures import sdk_client

TOKEN_ENV = "STALE_LISTS_RECHECK_TOKEN"
USED = "used by a marketing_emails record now"


def yes(review: object) -> bool:
    return True


def _email_naming(store: Any, list_id: str, *, archived: bool = False) -> str:
    """A colleague's new marketing email sending to `list_id` (a copy of a seeded one, under a new id)."""
    template = store.docs(EMAIL_KIND, archived=False)[0]
    new_id = str(max(int(d.key) for d in store.docs(EMAIL_KIND)) + 1)
    data = json.loads(json.dumps(template.data))
    data.update(id=new_id, name="Spring relaunch", archived=archived)
    data["to"] = {"contactIlsLists": {"include": [int(list_id)], "exclude": []}}
    with store.transaction():
        store.put_doc(EMAIL_KIND, new_id, data, archived=archived)
    return new_id


def _workspace(sandbox: RunningSandbox, folder: Path, monkeypatch: pytest.MonkeyPatch) -> api.Workspace:
    info = sandbox.info
    config = folder / "crmsweep.toml"
    config.write_text(f'[connections.hs]\nprovider = "hubspot"\nurl = "{info.url}"\ntoken_env = "{TOKEN_ENV}"\n'
                      f'ca_file = "{info.ca_file}"\n', encoding="utf-8")
    monkeypatch.setenv(TOKEN_ENV, info.token)
    return api.Workspace.load(config, folder / "home")


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The portal seeded and scanned for stale_lists once: its state folder, the home (snapshot, plan key) and
    plan.json. Every test applies to its own copy (`planned`), so what one writes never reaches another; the
    seed and the backup were most of each test's time. Nothing in the folder names its path or the port."""
    world = tmp_path_factory.mktemp("scanned")
    with pytest.MonkeyPatch.context() as monkeypatch, \
            start_sandbox(world / "state", provider="hubspot", records=400, seed=7) as sandbox:
        api.scan(_workspace(sandbox, world, monkeypatch), "hs", world / "plan.json", passes=["stale_lists"],
                 allow_over_cap=True)
    return world


@pytest.fixture()
def planned(scanned: Path, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, RunningSandbox, list[str], Path]]:
    shutil.copytree(scanned, tmp_path, symlinks=True, dirs_exist_ok=True)
    with start_sandbox(tmp_path / "state", provider="hubspot", records=400, seed=7) as sandbox:
        ws = _workspace(sandbox, tmp_path, monkeypatch)
        plan = tmp_path / "plan.json"
        lists = [c["record_id"] for c in json.loads(plan.read_text(encoding="utf-8"))["changes"]]
        assert len(lists) >= 2, "the seed plants stale lists no email names"
        yield ws, sandbox, lists, plan


def _deleted(sandbox: RunningSandbox, list_id: str) -> bool:
    return sdk_client(sandbox).crm.lists.lists_api.get_by_id(list_id).list.deleted_at is not None


def _skips(report: Any) -> dict[str, tuple[str, str]]:
    return {i["id"]: (i["reason"], i["detail"]) for i in report.skipped_items}


@pytest.mark.parametrize("archived", [False, True], ids=["live email", "archived email"])
def test_a_list_an_email_names_since_the_scan_is_not_deleted(planned: Any, archived: bool) -> None:
    ws, sandbox, lists, plan = planned
    taken, *others = lists
    email = _email_naming(sandbox._store, taken, archived=archived)
    report = api.apply(ws, plan, confirm=yes).report
    assert report is not None
    assert not _deleted(sandbox, taken), f"list {taken}, which email {email} sends to, was deleted"
    assert _skips(report) == {taken: ("no longer qualifies", f"{USED} ({email})")}
    assert all(_deleted(sandbox, i) for i in others)  # the control: lists no email names still go
    assert report.applied == len(others)


def test_the_dry_run_reports_the_same_skip(planned: Any) -> None:
    ws, sandbox, lists, plan = planned
    email = _email_naming(sandbox._store, lists[0])
    report = api.apply(ws, plan, confirm=yes, dry_run=True).report
    assert report is not None
    assert _skips(report) == {lists[0]: ("no longer qualifies", f"{USED} ({email})")}


def test_lists_are_kept_when_the_emails_cannot_be_read(planned: Any) -> None:
    ws, sandbox, lists, plan = planned
    sandbox.set_faults([FaultRule(kind="status", status=400, method="GET", path="marketing/v3/emails$")])
    report = api.apply(ws, plan, confirm=yes).report
    sandbox.set_faults([])
    assert report is not None and report.applied == 0
    assert not any(_deleted(sandbox, i) for i in lists)
    skips = _skips(report)
    assert set(skips) == set(lists)
    reason, detail = skips[lists[0]]
    assert reason == "no longer qualifies"
    assert detail.startswith("the marketing_emails records could not be read, so whether one uses this list now "
                             "is unknown: "), detail


def test_a_resume_after_a_stop_checks_the_emails_again(planned: Any) -> None:
    ws, sandbox, lists, plan = planned
    sandbox.set_faults([FaultRule(kind="limit", method="DELETE", path="crm/v3/lists/", times=1)])
    first = api.apply(ws, plan, confirm=yes).report
    sandbox.set_faults([])
    assert first is not None and first.stopped is not None and first.applied == 0
    email = _email_naming(sandbox._store, lists[-1])
    resumed = api.apply(ws, plan, confirm=yes, resume_run=first.run_id).report
    assert resumed is not None and (resumed.failed, resumed.remaining, resumed.stopped) == (0, 0, None)
    assert _skips(resumed) == {lists[-1]: ("no longer qualifies", f"{USED} ({email})")}
    assert not _deleted(sandbox, lists[-1]) and all(_deleted(sandbox, i) for i in lists[:-1])


def test_a_rollback_restores_the_lists_the_run_deleted(planned: Any) -> None:
    ws, sandbox, lists, plan = planned
    _email_naming(sandbox._store, lists[0])
    first = api.apply(ws, plan, confirm=yes).report
    assert first is not None and first.applied == len(lists) - 1
    back = api.rollback(ws, first.run_id, confirm=yes).report
    assert back is not None and (back.applied, back.failed, back.skipped) == (len(lists) - 1, 0, 0)
    assert not any(_deleted(sandbox, i) for i in lists)


@pytest.mark.parametrize("dry_run", [False, True], ids=["apply", "dry run"])
def test_the_estimate_covers_the_email_reads(planned: Any, dry_run: bool) -> None:
    ws, _sandbox, _lists, plan = planned
    outcome = api.apply(ws, plan, confirm=yes, dry_run=dry_run)
    assert outcome.report is not None and outcome.budget is not None
    assert outcome.budget.to_dict()["estimated_calls"] >= outcome.report.api_calls


def test_a_batch_of_lists_is_priced_at_the_pages_of_live_and_archived_emails() -> None:
    vocab, caps = HUBSPOT.vocabulary, HUBSPOT.capabilities
    lists = [Change(op=Op.DELETE, object="lists", record_id=str(n), before={"id": str(n)}, after={},
                    reason="stale", pass_name="stale_lists") for n in range(1, 151)]
    estimate = apply_estimate(lists, range(len(lists)), batch_size=100, ids_per_read=100, what="apply",
                              vocabulary=vocab, capabilities=caps, rows_of=lambda: {"marketing_emails": 250})
    # Two batches, each reading 250 emails: 3 pages, and the archived ones apart (one page more at most).
    assert estimate.parts["live re-checks"] == 2 * 4


def test_a_spent_allowance_at_the_email_read_stops_the_run_and_a_resume_finishes_it(planned: Any) -> None:
    ws, sandbox, lists, plan = planned
    sandbox.set_faults([FaultRule(kind="limit", method="GET", path="marketing/v3/emails$", times=1)])
    first = api.apply(ws, plan, confirm=yes).report
    sandbox.set_faults([])
    assert first is not None and first.stopped is not None and (first.applied, first.skipped) == (0, 0)
    assert not any(_deleted(sandbox, i) for i in lists)
    resumed = api.apply(ws, plan, confirm=yes, resume_run=first.run_id).report
    assert resumed is not None and (resumed.applied, resumed.skipped, resumed.stopped) == (len(lists), 0, None)


def test_a_rollback_of_the_rollback_keeps_a_list_an_email_names_since(planned: Any) -> None:
    ws, sandbox, lists, plan = planned
    first = api.apply(ws, plan, confirm=yes).report
    assert first is not None and first.applied == len(lists)
    back = api.rollback(ws, first.run_id, confirm=yes).report
    assert back is not None and back.applied == len(lists)
    email = _email_naming(sandbox._store, lists[0])
    again = api.rollback(ws, back.run_id, confirm=yes).report
    assert again is not None
    assert _skips(again) == {lists[0]: ("no longer qualifies", f"{USED} ({email})")}
    assert not _deleted(sandbox, lists[0]) and all(_deleted(sandbox, i) for i in lists[1:])
