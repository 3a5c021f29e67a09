"""Red team: deleting a Salesforce account deletes the events related to it (Event.WhatId cascades as
Task.WhatId does: "activities" of the account), and each opportunity deleted with it takes its own events.
The Accounts concept names only tasks and opportunity contact roles, so `[protect] objects = ["Event"]`
held nothing back: a protected event went to the recycle bin with its empty account, at the scan and at
apply time, and the plan's note of what goes with the accounts did not count it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from simple_salesforce.api import Salesforce

from crmsweep.sandbox.server import start_sandbox
from tests.test_protected_cascade_at_apply import apply_both, closed_won, configure, create, deleted, scanned

PROTECT = 'objects = ["Event"]'


def event_on(sf: Salesforce, what: str) -> str:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    return create(sf, "Event", {"WhatId": what, "Subject": "Site visit", "StartDateTime": start.isoformat(),
                                "EndDateTime": (start + timedelta(hours=1)).isoformat(), "DurationInMinutes": 60})


@pytest.mark.parametrize("where", ["on the account", "on its closed opportunity"])
def test_a_protected_event_keeps_its_empty_account(where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        accounts, sf = scanned(sandbox, tmp_path, monkeypatch)
        account = accounts[0]
        what = account if where == "on the account" else closed_won(sf, account)
        event = event_on(sf, what)
        ws = configure(sandbox, PROTECT, tmp_path, monkeypatch)
        skipped = apply_both(ws, tmp_path)
        assert deleted(sf, "Event", [event]) == {event: False}, "a protected event went with its empty account"
        why = ("its events would go with it" if where == "on the account"
               else "its opportunities would go with it, and their events with them:")
        assert skipped.get(account) == ("protected", f"protected at apply time: {why}"
                                        f"{', and' if where == 'on the account' else ''} Event is a protected object")


def test_the_scan_holds_back_an_empty_account_with_a_protected_event(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        accounts, sf = scanned(sandbox, tmp_path, monkeypatch)
        event_on(sf, accounts[0])
        again, _ = scanned(sandbox, tmp_path, monkeypatch, PROTECT)
        assert accounts[0] not in again, "the scan proposes an account whose deletion takes a protected event"
