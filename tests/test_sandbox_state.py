"""The sandbox's state folder: first start, restart, reset, concurrent use, seeding and allowance."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceRefusedRequest

from crmsweep.errors import BadInput
from crmsweep.sandbox import ids
from crmsweep.sandbox.rules import next_stamp
from crmsweep.sandbox.seed import generate
from crmsweep.sandbox.seed_words import SINGLE_NAMES
from crmsweep.sandbox.server import SandboxInfo, start_sandbox

# simple-salesforce builds sf.Contact and friends dynamically; its annotations do not describe that.
Client = Any


def content(error: SalesforceError) -> Any:
    return error.content


def connect(info: SandboxInfo) -> Client:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(info.ca_file)
    return Salesforce(instance_url=info.url, session_id=info.token, session=session)


def count(sf: Client, soql: str) -> int:
    return int(sf.query(soql)["totalSize"])


def test_restart_keeps_data_token_and_ca_and_reset_reseeds(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with start_sandbox(state, records=200) as first:
        sf = connect(first.info)
        created = sf.Contact.create({"LastName": "Survivor"})["id"]
        info1, ca1 = first.info, first.info.ca_file.read_bytes()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("token", "server.key", "org.sqlite3"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name

    with start_sandbox(state, records=999, seed=99) as second:
        assert (second.info.token, second.info.org_id) == (info1.token, info1.org_id)
        assert second.info.ca_file.read_bytes() == ca1
        sf = connect(second.info)  # trusts the CA file of the first start
        assert sf.Contact.get(created)["Name"] == "Survivor"
        assert count(sf, "SELECT COUNT() FROM Contact") == 201

    with start_sandbox(state, records=50, reset=True) as third:
        sf = connect(third.info)
        assert third.info.token == info1.token
        assert count(sf, "SELECT COUNT() FROM Contact") == 50
        assert count(sf, f"SELECT COUNT() FROM Contact WHERE Id = '{created}'") == 0


def test_two_servers_on_one_state_folder_see_each_others_writes(tmp_path: Path) -> None:
    with start_sandbox(tmp_path, records=100) as a, start_sandbox(tmp_path, records=100) as b:
        sf_a, sf_b = connect(a.info), connect(b.info)
        new_id = sf_a.Lead.create({"LastName": "Shared", "Company": "Both"})["id"]
        assert sf_b.Lead.get(new_id)["Company"] == "Both"
        other = sf_b.Lead.create({"LastName": "Second", "Company": "Both"})["id"]
        assert other != new_id
        sf_a.query("SELECT Id FROM Lead LIMIT 1")
        sf_b.query("SELECT Id FROM Lead LIMIT 1")
        assert sf_b.api_usage["api-usage"].used == sf_a.api_usage["api-usage"].used + 1  # one shared allowance


def test_allowance_spent_answers_request_limit_exceeded(tmp_path: Path) -> None:
    with start_sandbox(tmp_path, records=50, api_limit=3) as sandbox:
        sf = connect(sandbox.info)
        for _ in range(3):
            sf.query("SELECT Id FROM User LIMIT 1")
        assert sf.api_usage["api-usage"].used == 3
        with pytest.raises(SalesforceRefusedRequest) as refused:
            sf.limits()
        assert content(refused.value) == [
            {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
        ]
        sandbox.reset_stats()
        assert sf.limits()["DailyApiRequests"] == {"Max": 3, "Remaining": 2}


def test_a_provider_the_sandbox_has_no_api_for_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"no API for provider 'nosuchcrm' yet; it serves .*salesforce"):
        start_sandbox(tmp_path, provider="nosuchcrm")
    assert not (tmp_path / "token").exists()  # refused before the state folder is touched


def test_seed_is_deterministic() -> None:
    anchor = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    one, two = generate(300, 7, anchor), generate(300, 7, anchor)
    assert one.tables == two.tables
    other = generate(300, 8, anchor)
    assert {r["Id"] for r in other.tables["Contact"]}.isdisjoint({r["Id"] for r in one.tables["Contact"]})
    for rows in one.tables.values():
        assert all(ids.normalize(r["Id"]) == r["Id"] for r in rows)


def test_same_seed_gives_same_org_over_the_api(tmp_path: Path) -> None:
    soql = "SELECT Id, Name, Email FROM Contact ORDER BY Id"
    with (
        start_sandbox(tmp_path / "a", records=120, seed=3) as a,
        start_sandbox(tmp_path / "b", records=120, seed=3) as b,
    ):
        first, second = connect(a.info).query_all(soql)["records"], connect(b.info).query_all(soql)["records"]
        assert first == second and a.info.org_id == b.info.org_id and a.info.org_id.startswith("00D")


def test_the_planted_mess_is_there(tmp_path: Path) -> None:
    with start_sandbox(tmp_path, records=500) as sandbox:
        sf = connect(sandbox.info)
        contacts = count(sf, "SELECT COUNT() FROM Contact")
        assert contacts == 500
        stale_activity = count(sf, "SELECT COUNT() FROM Contact WHERE LastActivityDate < LAST_N_DAYS:1095")
        untouched = count(sf, "SELECT COUNT() FROM Contact WHERE LastActivityDate = null "
                              "AND LastModifiedDate < LAST_N_DAYS:1095")
        assert stale_activity >= 40 and untouched >= 40 and 0.15 <= (stale_activity + untouched) / contacts <= 0.25
        bounced = count(sf, "SELECT COUNT() FROM Contact WHERE IsEmailBounced = true")
        assert bounced == count(sf, "SELECT COUNT() FROM Contact WHERE EmailBouncedDate != null") >= 20
        assert count(sf, "SELECT COUNT() FROM Contact WHERE EmailBouncedReason LIKE '550 5.1.1%'") >= 1
        assert count(sf, "SELECT COUNT() FROM Contact WHERE Email = null AND Phone = null AND MobilePhone = null") >= 15
        assert count(sf, "SELECT COUNT() FROM Contact WHERE MailingCity = null") >= 50
        assert count(sf, "SELECT COUNT() FROM Account WHERE Id NOT IN (SELECT AccountId FROM Contact)") >= 10
        assert count(sf, "SELECT COUNT() FROM Account WHERE BillingCity = null") >= 1
        assert count(sf, "SELECT COUNT() FROM Contact WHERE LastActivityDate < LAST_N_DAYS:1095 AND Id IN "
                         "(SELECT ContactId FROM OpportunityContactRole WHERE Opportunity.IsClosed = false)") >= 1
        stale_on_open = count(sf, "SELECT COUNT() FROM Contact WHERE (LastActivityDate < LAST_N_DAYS:1095 OR "
                                  "(LastActivityDate = null AND LastModifiedDate < LAST_N_DAYS:1095)) AND Id IN "
                                  "(SELECT ContactId FROM OpportunityContactRole WHERE Opportunity.IsClosed = false)")
        assert stale_on_open >= 3
        users = count(sf, "SELECT COUNT() FROM User")
        assert users == 8
        assert count(sf, "SELECT COUNT() FROM User WHERE IsActive = false") == 2
        assert count(sf, "SELECT COUNT() FROM User WHERE IsActive = true AND LastLoginDate < LAST_N_DAYS:120") >= 2
        assert count(sf, "SELECT COUNT() FROM User WHERE IsActive = true AND LastLoginDate = null "
                         "AND CreatedDate < LAST_N_DAYS:365") == 1
        assert count(sf, "SELECT COUNT() FROM Task WHERE IsClosed = false AND Owner.IsActive = false") >= 3
        assert count(sf, "SELECT COUNT() FROM Contact WHERE Owner.IsActive = false") >= 1
        assert count(sf, "SELECT COUNT() FROM Opportunity WHERE Owner.IsActive = false") >= 1
        assert count(sf, "SELECT COUNT() FROM Task WHERE IsClosed = false AND ActivityDate < TODAY") >= 10
        past_due = count(sf, "SELECT COUNT() FROM Opportunity WHERE IsClosed = false AND CloseDate < TODAY")
        assert 0.10 <= past_due / count(sf, "SELECT COUNT() FROM Opportunity") <= 0.20
        assert count(sf, "SELECT COUNT() FROM Opportunity WHERE IsClosed = false AND CloseDate < LAST_N_DAYS:365") >= 2
        assert count(sf, "SELECT COUNT() FROM Lead WHERE IsConverted = true AND Status = 'Closed - Converted'") >= 2
        assert count(sf, "SELECT COUNT() FROM Lead WHERE EmailBouncedDate != null") >= 2
        emails = [r["Email"] for r in sf.query_all("SELECT Email FROM Contact WHERE Email != null")["records"]]
        assert len({e.lower() for e in emails}) < len(set(emails))  # same address in another case
        names = [r["Name"] for r in sf.query_all("SELECT Name FROM Contact")["records"]]
        assert any(n in SINGLE_NAMES for n in names) and any("é" in n or "ł" in n.lower() for n in names)
        described = [r["Description"] for r in sf.query_all("SELECT Description FROM Contact")["records"]]
        assert any(d and "\n" in d for d in described) and any(d and '"' in d and "," in d for d in described)
        api_user = sf.query("SELECT Username, IsActive, LastLoginDate FROM User WHERE Username LIKE 'integration@%'")
        assert api_user["totalSize"] == 1 and api_user["records"][0]["IsActive"] is True
        org = sf.query("SELECT Id, Name, OrganizationType, IsSandbox FROM Organization")["records"][0]
        assert (org["Id"], org["IsSandbox"]) == (sandbox.info.org_id, True)


def test_created_modified_and_now_are_ordered() -> None:
    data = generate(300, 11, datetime(2026, 3, 1, tzinfo=UTC))
    anchor = "2026-03-01T00:00:00.000+0000"
    for name, rows in data.tables.items():
        for row in rows:
            # ContentDocumentLink has a SystemModstamp and no other audit field.
            created = row.get("CreatedDate", row["SystemModstamp"])
            modified = row.get("LastModifiedDate", row["SystemModstamp"])
            assert created <= modified <= row["SystemModstamp"] <= anchor, (name, row)


def test_ids_checksums_and_stamps() -> None:
    assert ids.to_18("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    assert ids.normalize("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    assert ids.normalize("001A0000006Vm9rAAA") is None
    assert ids.normalize("not-an-id") is None
    now = datetime(2026, 1, 1, 0, 0, 0, 500, tzinfo=UTC)
    assert next_stamp(now, None) == "2026-01-01T00:00:00.000+0000"
    assert next_stamp(now, "2026-01-01T00:00:00.000+0000") == "2026-01-01T00:00:00.001+0000"
    assert next_stamp(now, "2025-12-31T23:59:59.999+0000") == "2026-01-01T00:00:00.000+0000"


def test_serve_forever_prints_ready_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from crmsweep.sandbox.server import serve_forever\n"
        "serve_forever(Path(sys.argv[1]), records=20, on_ready=lambda info: print(info.to_json_line(), flush=True))\n"
        "print('stopped', flush=True)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert set(ready) == {"provider", "url", "ca_file", "token"} and ready["provider"] == "salesforce"
        session = requests.Session()
        session.trust_env = False
        sf = Salesforce(instance_url=ready["url"], session_id=ready["token"], session=session)
        session.verify = ready["ca_file"]
        assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 20
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stdout.readline().strip() == "stopped"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_link_planted_at_a_temporary_name_is_not_written_through(tmp_path: Path) -> None:
    """The state folder's token and key are written through a temporary name; a link planted there by
    someone who can write the folder must be replaced, not followed."""
    from crmsweep.sandbox.tls import write_private

    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious data")
    state = tmp_path / "state"
    state.mkdir()
    (state / "token.tmp").symlink_to(victim)
    write_private(state / "token", b"the token")
    assert victim.read_bytes() == b"precious data"
    assert (state / "token").read_bytes() == b"the token" and not (state / "token").is_symlink()
