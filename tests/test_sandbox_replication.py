"""The sandbox's `/sobjects/{Type}/deleted/` and `/updated/`, through simple-salesforce's own
`SFType.deleted` / `SFType.updated` (not our connector), held to Salesforce's documented shapes and
window rules; and SystemModstamp moving on every write path an incremental backup relies on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.test_recreate import empty_recycle_bin


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path_factory.mktemp("state") / "state", records=120, seed=5) as sandbox:
        yield sandbox


# Any: simple-salesforce types `sf.<Object>` as a union with its bulk handlers, so `sf.Contact.x()` fails mypy.
@pytest.fixture()
def sf(running: RunningSandbox) -> Any:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(running.info.ca_file)
    return Salesforce(instance_url=running.info.url, session_id=running.info.token, session=session)


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(minutes=10), now + timedelta(minutes=2)


def error_code(exc: SalesforceMalformedRequest) -> str:
    content: Any = exc.content
    return str(content[0]["errorCode"])


def stamps(sf: Any, ids: list[str]) -> dict[str, str]:
    quoted = ",".join(f"'{i}'" for i in ids)
    rows = sf.query_all(f"SELECT Id, SystemModstamp FROM Contact WHERE Id IN ({quoted})", include_deleted=True)
    return {r["Id"]: r["SystemModstamp"] for r in rows["records"]}


def test_deleted_lists_binned_cascaded_and_purged_records_but_not_undeleted_ones(
    sf: Any, running: RunningSandbox
) -> None:
    start, end = window()
    before = {r["id"] for r in sf.Contact.deleted(start, end)["deletedRecords"]}
    account = sf.Account.create({"Name": "Cascade Ltd"})["id"]
    children = [sf.Contact.create({"LastName": f"Child {i}", "AccountId": account})["id"] for i in range(2)]
    loner, purged = (sf.Contact.create({"LastName": n})["id"] for n in ("Loner", "Purged"))
    sf.Account.delete(account)  # cascades to its contacts
    sf.Contact.delete(loner)
    sf.Contact.delete(purged)
    assert empty_recycle_bin(running, [purged]) == [True]

    answer = sf.Contact.deleted(start, end)
    assert set(answer) == {"deletedRecords", "earliestDateAvailable", "latestDateCovered"}
    listed = {r["id"]: r["deletedDate"] for r in answer["deletedRecords"]}
    assert set(listed) - before == {*children, loner, purged}
    assert all(d.endswith("+0000") for d in listed.values())
    assert {r["id"] for r in sf.Account.deleted(start, end)["deletedRecords"]} >= {account}
    earliest = datetime.fromisoformat(answer["earliestDateAvailable"].replace("+0000", "+00:00"))
    assert timedelta(days=29) < datetime.now(UTC) - earliest <= timedelta(days=30, minutes=1)

    undelete = running.api.store  # type: ignore[attr-defined]
    with undelete.transaction():
        undelete.undelete(loner, datetime.now(UTC))
    assert loner not in {r["id"] for r in sf.Contact.deleted(start, end)["deletedRecords"]}


def test_updated_lists_records_written_in_the_window(sf: Any) -> None:
    start, end = window()
    made = sf.Contact.create({"LastName": "Fresh"})["id"]
    answer = sf.Contact.updated(start, end)
    assert set(answer) == {"ids", "latestDateCovered"}
    assert made in answer["ids"]
    old_start = datetime.now(UTC) - timedelta(days=20)
    assert made not in sf.Contact.updated(old_start, old_start + timedelta(days=1))["ids"]


@pytest.mark.parametrize(("start", "end", "code"), [
    (timedelta(days=-31), timedelta(0), "INVALID_REPLICATION_DATE"),
    (timedelta(minutes=-1), timedelta(minutes=-5), "INVALID_REPLICATION_DATE"),
    # Seconds are ignored: start and end in the same minute make an empty window.
    (timedelta(0), timedelta(0), "INVALID_REPLICATION_DATE"),
])
def test_window_rules(sf: Any, start: timedelta, end: timedelta, code: str) -> None:
    now = datetime.now(UTC).replace(second=30)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Contact.deleted(now + start, now + end)
    assert error_code(refused.value) == code


def test_missing_parameter_and_method(sf: Any, running: RunningSandbox) -> None:
    base = f"{running.info.url}/services/data/v59.0/sobjects/Contact/deleted/"
    session = sf.session
    headers = {"Authorization": f"Bearer {running.info.token}"}
    missing = session.get(base, params={"start": "2026-01-01T00:00:00+00:00"}, headers=headers, timeout=30)
    assert missing.status_code == 400 and missing.json()[0]["errorCode"] == "MALFORMED_QUERY"
    posted = session.post(base, headers=headers, timeout=30)
    assert posted.status_code == 405


def test_every_write_path_moves_system_modstamp(sf: Any, running: RunningSandbox, tmp_path: Path) -> None:
    a, b = (sf.Contact.create({"LastName": n})["id"] for n in ("A", "B"))
    seen = stamps(sf, [a, b])
    sf.Contact.update(a, {"Title": "REST"})
    sf.restful("composite/sobjects", method="PATCH",
               json={"allOrNone": False, "records": [{"attributes": {"type": "Contact"}, "id": b, "Title": "C"}]})
    after_update = stamps(sf, [a, b])
    assert all(after_update[i] > seen[i] for i in (a, b))
    sf.restful("composite/sobjects", method="DELETE", params={"ids": f"{a},{b}", "allOrNone": "false"})
    after_delete = stamps(sf, [a, b])
    assert all(after_delete[i] > after_update[i] for i in (a, b))
    store = running.api.store  # type: ignore[attr-defined]
    with store.transaction():
        store.undelete(a, datetime.now(UTC))
    assert stamps(sf, [a])[a] > after_delete[a]
