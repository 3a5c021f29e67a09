"""The API budget (issue 8 item 5): estimates against the calls really made, the refusal (exit 3) of a
run that would eat into the [budget] reserve and its documented way through, and the calls every
`--json` answer reports, each held against the sandbox's own count (`/__sandbox/stats`).

Tolerance of the estimates: within 10% of the calls made, or 3 calls, whichever is more (the live
re-check skips a related read with nothing to ask; a pass's related object may be described already).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from crmsweep import api
from crmsweep.budget import DEFAULT_RESERVE, Reserve, apply_estimate, backup_estimate, job_calls, judge
from crmsweep.cli import app
from crmsweep.connectors.base import Connection
from crmsweep.connectors.salesforce import SalesforceConnector
from crmsweep.errors import BadInput, SafetyRefusal
from crmsweep.model import ApiAllowance, Change, Op, Plan, ReadPlan
from crmsweep.providers.salesforce import SALESFORCE_CAPABILITIES, SALESFORCE_VOCABULARY
from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.hubspot_fixtures import hubspot_sandbox  # noqa: F401  (a fixture)

TOKEN_ENV = "BUDGET_TEST_TOKEN"
runner = CliRunner()


def within(estimate: int, actual: int) -> bool:
    return abs(estimate - actual) <= max(3, actual // 10)


def write_config(path: Path, sandbox: RunningSandbox, extra: str = "", provider: str = "salesforce") -> Path:
    info = sandbox.info
    path.write_text(
        f"[connections.org]\nprovider = \"{provider}\"\nurl = \"{info.url}\"\ntoken_env = \"{TOKEN_ENV}\"\n"
        f"ca_file = \"{info.ca_file}\"\n\n[retry]\nattempts = 2\ninitial_wait = 0.01\nmax_wait = 0.02\n\n{extra}",
        encoding="utf-8",
    )
    return path


@pytest.fixture()
def config(sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(TOKEN_ENV, sandbox.info.token)
    monkeypatch.delenv("CRMSWEEP_CONFIG", raising=False)
    monkeypatch.delenv("CRMSWEEP_HOME", raising=False)
    return write_config(tmp_path / "crmsweep.toml", sandbox)


def cli(config: Path, home: Path, *args: str, expect: int = 0) -> Any:
    result = runner.invoke(app, [*args, "--config", str(config), "--home", str(home)], catch_exceptions=False)
    assert result.exit_code == expect, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def counted(sandbox: RunningSandbox) -> int:
    """The calls the sandbox metered, as a client reads them (the admin endpoint is not an API call)."""
    info = sandbox.info
    answer = requests.get(f"{info.url}/__sandbox/stats", headers={"Authorization": f"Bearer {info.token}"},
                          verify=str(info.ca_file), timeout=30)
    return int(answer.json()["api_calls"])


# --- pure -------------------------------------------------------------------------------------------


def test_reserve_is_a_share_or_a_number_of_calls_and_nothing_else() -> None:
    assert Reserve.parse("10%").calls_of(15_000) == 1500 == DEFAULT_RESERVE.calls_of(15_000)
    assert Reserve.parse(" 2.5 % ").calls_of(1000) == 25
    assert Reserve.parse(5000).calls_of(15_000) == 5000 and str(Reserve.parse(5000)) == "5000 calls"
    for bad in ("ten percent", "10", -1, True, 0.1, "95%", None):
        with pytest.raises(BadInput, match=r"\[budget\] reserve"):
            Reserve.parse(bad)


def test_a_bad_reserve_in_the_config_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[budget]\nreserve = "lots"\n', encoding="utf-8")
    with pytest.raises(BadInput, match=r"c\.toml: \[budget\] reserve must be a share"):
        api.Workspace.load(path, tmp_path / "home")
    path.write_text('[budget]\nreserve = 250\n', encoding="utf-8")
    assert api.Workspace.load(path, tmp_path / "home").config.budget.reserve == Reserve(calls=250)


def test_the_refusal_says_what_is_needed_what_is_left_and_what_to_do() -> None:
    estimate = backup_estimate([ReadPlan("Contact", 5000, "rest", 4), ReadPlan("Account", 10, "rest", 2)])
    assert estimate.calls == 6
    allowance = ApiAllowance(limit=1000, remaining=105, source="limits")
    assert judge(estimate, allowance, Reserve(calls=99), allow_over=False, advice="x").over is False
    with pytest.raises(SafetyRefusal) as refused:
        judge(estimate, allowance, Reserve(calls=100), allow_over=False, advice="back up fewer objects")
    text = str(refused.value)
    assert text.startswith("backup of Contact, Account needs about 6 API calls; the org has 105 of 1000 left "
                           "today and the reserve is 100 (100 calls)")
    assert "back up fewer objects" in text and "--allow-over-budget" in text and "\n" not in text
    assert refused.value.exit_code == 3
    verdict = judge(estimate, allowance, Reserve(calls=100), allow_over=True, advice="x")
    assert verdict.over is True and verdict.to_dict()["remaining"] == 105
    # A CRM that reports no allowance leaves nothing to judge by: the run goes ahead.
    assert judge(estimate, None, Reserve(calls=10**9), allow_over=False, advice="x").limit is None


def test_apply_estimate_walks_the_engines_batches() -> None:
    def change(op: Op, obj: str, n: int) -> Change:
        return Change(op=op, object=obj, record_id=f"003{n:015d}", reason="r", pass_name="none",
                      before={}, after={}, fingerprint="2024-01-01T00:00:00.000Z")

    changes = [*(change(Op.DELETE, "Contact", n) for n in range(450)), change(Op.UPDATE, "Account", 1)]
    estimate = apply_estimate(changes, range(len(changes)), batch_size=200, ids_per_read=500, what="apply",
                              vocabulary=SALESFORCE_VOCABULARY)
    # Batches of 200, 200, 50 and 1: a write and a read-back each; the read-back of a batch also reads the
    # next one of its op and object where both fit one read, so only the first of each run reads alone.
    # Describes come from the snapshot.
    assert dict(estimate.parts) == {"fingerprint reads": 2, "writes": 4, "read-backs": 4}
    dry = apply_estimate(changes, range(len(changes)), batch_size=200, ids_per_read=500, what="apply",
                         vocabulary=SALESFORCE_VOCABULARY, writes=False)
    assert dry.calls == 2  # 450 Contact ids in one packed read, the Account in another


# --- against the sandbox ------------------------------------------------------------------------------


def test_backup_estimate_matches_the_calls_the_backup_makes(sandbox: RunningSandbox, config: Path,
                                                             tmp_path: Path) -> None:
    ws = api.Workspace.load(config, tmp_path / "home")
    with api.connect(ws, "org") as connector:
        connector.org_id()
        objects = [*connector.vocabulary.default_backup_objects, "CustomField", "FieldReference", "Report",
                   "ContentDocumentLink"]
        start = counted(sandbox)
        verdict = api.check_backup_budget(connector, ws, objects)
        estimating = counted(sandbox) - start
        manifest = api.backup_with(connector, ws, objects)
        backing_up = counted(sandbox) - start - estimating
    # One describe and one COUNT() per object, one list of custom fields, and for ContentDocumentLink
    # (queried only through its parents' ids) those ids and the parents' COUNT(); the backup asks none again.
    assert estimating == 2 * (len(objects) - 2) + 1 + 2
    assert manifest.api_calls == backing_up
    assert within(verdict.needed, backing_up), (verdict.needed, backing_up)
    assert verdict.source == "Sforce-Limit-Info" and verdict.limit == 15_000
    assert verdict.remaining == 15_000 - sandbox.stats()["api_usage"] + backing_up


def test_json_calls_equal_the_sandbox_count_and_apply_estimates_hold(sandbox: RunningSandbox, config: Path,
                                                                      tmp_path: Path) -> None:
    home = tmp_path / "home"
    plan_file = tmp_path / "plan.json"
    before = counted(sandbox)
    backup = json.loads(cli(config, home, "backup", "-c", "org", "--object", "Contact", "--json").stdout)
    assert backup["api_calls"] == counted(sandbox) - before
    before = counted(sandbox)
    scan = json.loads(cli(config, home, "scan", "-c", "org", "-o", str(plan_file), "--json",
                          "--pass", "stale_contacts", "--pass", "inactive_users").stdout)
    assert scan["api_calls"] == counted(sandbox) - before > 0
    plan, _ = Plan.from_json(plan_file.read_text())
    assert {c.op for c in plan.changes} == {Op.DELETE, Op.DEACTIVATE}

    before = counted(sandbox)
    dry = json.loads(cli(config, home, "apply", str(plan_file), "--dry-run", "--json").stdout)
    assert dry["api_calls"] == counted(sandbox) - before
    before = counted(sandbox)
    applied = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    # The org-id query of the plan checks included: the report once missed it.
    assert applied["api_calls"] == counted(sandbox) - before
    assert within(applied["budget"]["estimated_calls"], applied["api_calls"]), applied["budget"]
    assert applied["budget"]["over_budget"] is False and applied["budget"]["reserve"] == 1500

    before = counted(sandbox)
    again = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    assert again["already_applied"] and again["api_calls"] == counted(sandbox) - before > 0

    before = counted(sandbox)
    review = json.loads(cli(config, home, "rollback", applied["run"], "-o", str(tmp_path / "undo.json"),
                            "--json").stdout)
    assert review["api_calls"] == counted(sandbox) - before > 0
    before = counted(sandbox)
    undone = json.loads(cli(config, home, "rollback", applied["run"], "--yes", "--json").stdout)
    assert undone["api_calls"] == counted(sandbox) - before
    assert within(undone["budget"]["estimated_calls"], undone["api_calls"]), undone["budget"]


@pytest.fixture()
def small_org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path / "small", records=250, seed=21, api_limit=400) as running:
        monkeypatch.setenv(TOKEN_ENV, running.info.token)
        yield running


def test_a_backup_that_would_eat_into_the_reserve_is_refused_before_any_read(small_org: RunningSandbox,
                                                                              tmp_path: Path) -> None:
    home = tmp_path / "home"
    tight = write_config(tmp_path / "tight.toml", small_org, "[budget]\nreserve = 395\n")
    before = counted(small_org)
    refused = cli(tight, home, "backup", "-c", "org", "--object", "Contact", "--object", "Account", expect=3)
    line = refused.stderr.strip()
    assert "\n" not in line and "backup of Contact, Account needs about 2 API calls; the org has " in line
    assert "of 400 left today and the reserve is 395 (395 calls)" in line and "--allow-over-budget" in line
    # The org id, then a describe and a COUNT() per object: no record was read, no snapshot made.
    assert counted(small_org) - before == 5
    assert json.loads(cli(tight, home, "snapshots", "list", "--json").stdout) == []

    taken = json.loads(cli(tight, home, "backup", "-c", "org", "--object", "Contact", "--object", "Account",
                           "--allow-over-budget", "--json").stdout)
    assert taken["objects"] == {"Contact": 250, "Account": taken["objects"]["Account"]}
    # Within the default reserve (10% of 400) the same backup goes ahead unasked.
    roomy = write_config(tmp_path / "roomy.toml", small_org)
    cli(roomy, home, "backup", "-c", "org", "--object", "Contact", "--object", "Account")
    assert len(json.loads(cli(roomy, home, "snapshots", "list", "--json").stdout)) == 2


def test_an_apply_that_would_eat_into_the_reserve_is_refused_before_it_asks_or_writes(
    sandbox: RunningSandbox, config: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    plan_file = tmp_path / "plan.json"
    cli(config, home, "scan", "-c", "org", "-o", str(plan_file), "--pass", "stale_contacts")
    plan, _ = Plan.from_json(plan_file.read_text())
    ids = [c.record_id for c in plan.changes]
    ws = api.Workspace.load(config, home)

    def live() -> int:
        """How many of the plan's records are live (not in the recycle bin), read through the API."""
        with api.connect(ws, "org") as connector:
            return sum(len(connector.read(obj, [c.record_id for c in plan.changes if c.object == obj], ["Id"],
                                          include_deleted=False))
                       for obj in {c.object for c in plan.changes})

    assert live() == len(ids) > 0
    left = 15_000 - sandbox.stats()["api_usage"]
    tight = write_config(tmp_path / "tight.toml", sandbox, f"[budget]\nreserve = {left - 5}\n")
    refused = cli(tight, home, "apply", str(plan_file), "--json", expect=3)  # no --yes: it never asks
    assert f"apply of plan {plan.header.plan_id} needs about " in refused.stderr
    assert "split the plan" in refused.stderr
    assert json.loads(refused.stdout)["error"]["exit_code"] == 3
    assert not (home / "runs").exists() and live() == len(ids)

    applied = json.loads(cli(tight, home, "apply", str(plan_file), "--yes", "--json", "--allow-over-budget").stdout)
    assert applied["applied"] == len(ids) and applied["budget"]["over_budget"] is True
    assert live() == 0


def test_salesforce_allowance_comes_from_limits_then_from_the_header(sandbox: RunningSandbox) -> None:
    info = sandbox.info
    connector = SalesforceConnector(Connection(name="s", provider="salesforce", url=info.url, token=info.token,
                                               ca_file=info.ca_file))
    try:
        first = connector.allowance()  # nothing heard yet: GET /limits, itself a call
        used = sandbox.stats()["api_usage"]
        assert first == ApiAllowance(limit=15_000, remaining=15_000 - used, source="limits")
        connector.org_id()
        second = connector.allowance()
        assert second == ApiAllowance(limit=15_000, remaining=15_000 - sandbox.stats()["api_usage"],
                                      source="Sforce-Limit-Info")
        assert connector.api_usage().calls == 2  # the header answers for free
        plan = connector.read_plan("Contact")
        assert plan == ReadPlan("Contact", 250, "rest", 2) and connector.read_plan("Contact") is plan
        assert connector.api_usage().calls == 3  # one COUNT(), kept
    finally:
        connector.close()


def test_limits_resource_and_usage_header_follow_the_documentation(sandbox: RunningSandbox) -> None:
    info = sandbox.info
    auth = {"Authorization": f"Bearer {info.token}"}

    def get(url: str, **params: str) -> requests.Response:
        return requests.get(url, params=params, headers=auth, verify=str(info.ca_file), timeout=30)

    base = f"{info.url}/services/data/v59.0"
    limits = get(f"{base}/limits/")
    body = limits.json()
    for key in ("DailyApiRequests", "DailyBulkApiBatches", "DailyBulkV2QueryJobs",
                "DailyBulkV2QueryFileStorageMB", "DataStorageMB"):
        assert set(body[key]) == {"Max", "Remaining"}, key
    used = sandbox.stats()["api_usage"]
    assert body["DailyApiRequests"] == {"Max": 15_000, "Remaining": 15_000 - used}
    assert limits.headers["Sforce-Limit-Info"] == f"api-usage={used}/15000"
    # Refused calls carry it too: a malformed query, an unknown object.
    bad = get(f"{base}/query", q="SELECT FROM")
    missing = get(f"{base}/sobjects/NoSuchThing__c/describe")
    assert (bad.status_code, missing.status_code) == (400, 404)
    assert missing.headers["Sforce-Limit-Info"] == f"api-usage={used + 2}/15000"
    assert bad.headers["Sforce-Limit-Info"] == f"api-usage={used + 1}/15000"


def test_hubspot_read_plans_and_allowance(hubspot_sandbox: RunningSandbox,  # noqa: F811
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, hubspot_sandbox.info.token)
    config = write_config(tmp_path / "hs.toml", hubspot_sandbox, provider="hubspot")
    ws = api.Workspace.load(config, tmp_path / "home")
    with api.connect(ws, "org") as connector:
        assert connector.allowance() is not None
        connector.org_id()
        allowance = connector.allowance()
        assert allowance is not None and allowance.limit == 625_000
        assert allowance.remaining == 625_000 - hubspot_sandbox.stats()["api_usage"]
        start = counted(hubspot_sandbox)
        verdict = api.check_backup_budget(connector, ws, ["contacts", "companies"])
        estimating = counted(hubspot_sandbox) - start
        manifest = api.backup_with(connector, ws, ["contacts", "companies"])
    assert connector.read_plan("contacts").rows == manifest.objects["contacts"].rows
    # Three describe calls and one search total per object.
    assert estimating == 2 * 4
    assert within(verdict.needed, manifest.api_calls), (verdict.needed, manifest.api_calls)


def test_pages_of_2000_rows_at_most_and_the_estimate_counts_them(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with start_sandbox(tmp_path / "bigger", records=2100, seed=5) as org:
        info = org.info
        connector = SalesforceConnector(Connection(name="s", provider="salesforce", url=info.url, token=info.token,
                                                   ca_file=info.ca_file))
        try:
            # Asked for more, Salesforce still sends 2,000 rows a page.
            first = connector._sf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=5000"})
            assert (first["totalSize"], len(first["records"]), first["done"]) == (2100, 2000, False)
            connector.org_id()
            plan = connector.read_plan("Contact")
            assert plan == ReadPlan("Contact", 2100, "rest", 1 + 2)  # the describe and two pages
            before = connector.api_usage().calls
            monkeypatch.setenv(TOKEN_ENV, info.token)
            ws = api.Workspace.load(write_config(tmp_path / "c.toml", org), tmp_path / "home")
            manifest = api.backup_with(connector, ws, ["Contact"])
            assert manifest.objects["Contact"].rows == 2100
            assert connector.api_usage().calls - before == plan.calls
        finally:
            connector.close()


def test_a_count_salesforce_refuses_leaves_a_lower_bound_not_a_failed_backup() -> None:
    """Recorded edge case (responses): some setup objects refuse COUNT() with MALFORMED_QUERY; /limits
    refused to a user without "View Setup and Configuration" means the org says nothing."""
    import responses

    host = "https://acme.my.salesforce.com"
    base = f"{host}/services/data/v59.0"
    token = "00Dxx0000001gPL!AQ4AQBudgetTokenThatMustNeverLeak"
    with responses.RequestsMock() as mock:
        mock.get(f"{base}/query/", status=400, json=[
            {"message": "COUNT() is not supported for this entity", "errorCode": "MALFORMED_QUERY"}])
        mock.get(f"{base}/limits/", status=403, json=[
            {"message": "The REST API is not enabled for this Organization.", "errorCode": "INSUFFICIENT_ACCESS"}])
        connector = SalesforceConnector(Connection(name="prod", provider="salesforce", url=host, token=token))
        try:
            assert connector.read_plan("SetupThing") == ReadPlan("SetupThing", None, "rest", 2)
            assert connector.allowance() is None
        finally:
            connector.close()


def test_a_run_sent_as_a_bulk_job_is_estimated_as_a_job_even_under_the_batch_size() -> None:
    """Red team: with a bulk threshold below the write batch size, each job was estimated as one call."""
    changes = [Change(op=Op.DELETE, object="Contact", record_id=f"003{n:015d}", reason="r", pass_name="none",
                      before={}, after={}, fingerprint="2024-01-01T00:00:00.000Z") for n in range(40)]

    def jobs_over_five(head: Change, count: int) -> int:
        return 100_000 if count > 5 else 200

    estimate = apply_estimate(changes, range(40), batch_size=200, ids_per_read=500, what="apply",
                              vocabulary=SALESFORCE_VOCABULARY, run_size=jobs_over_five)
    assert dict(estimate.parts) == {"fingerprint reads": 1, "writes": job_calls(40), "read-backs": 1}
    assert job_calls(40) == 9  # create, upload, close and the polls that reach the 2-second pace


def test_objects_with_no_batch_endpoint_cost_a_call_per_record_and_spent_calls_are_counted() -> None:
    """Admin review: a HubSpot apply estimated 19 calls and made 65. Six reports, which the CRM deletes
    one a call and reads by id one a call, were estimated as one write and one read per batch; the plan
    checks' calls were left out of `estimated_calls`, though `api_calls` counts them."""
    changes = [Change(op=Op.DELETE, object="Report", record_id=f"00O{n:015d}", reason="r", pass_name="none",
                      before={}, after={}, fingerprint="2024-01-01T00:00:00.000Z") for n in range(6)]
    one_each = replace(SALESFORCE_CAPABILITIES, per_record_writes=("Report",), per_record_reads=(("Report", 2),))
    estimate = apply_estimate(changes, range(6), batch_size=200, ids_per_read=500, what="apply",
                              vocabulary=SALESFORCE_VOCABULARY, capabilities=one_each, spent=4)
    assert dict(estimate.parts) == {"checks made": 4, "fingerprint reads": 12, "writes": 6, "read-backs": 12}
    # The calls already made are in the allowance read after them: the refusal does not count them twice.
    verdict = judge(estimate, ApiAllowance(limit=1000, remaining=132, source="test"), Reserve(calls=100),
                    allow_over=False, advice="x")
    assert verdict.to_dict()["estimated_calls"] == 34 and verdict.over is False


def test_what_makes_no_more_calls_is_never_refused_even_inside_the_reserve() -> None:
    from crmsweep.budget import Estimate, Reserve, judge
    from crmsweep.errors import OverBudget
    from crmsweep.model import ApiAllowance

    tight = ApiAllowance(limit=400, remaining=100, source="limits")
    for estimate in (Estimate("the rollback plan of run R", 0), Estimate("apply of plan P", 5, spent=5)):
        verdict = judge(estimate, tight, Reserve(share=0.9), allow_over=False, advice="")
        assert not verdict.over and verdict.reserve == 360
    with pytest.raises(OverBudget):
        judge(Estimate("apply of plan P", 6, spent=5), tight, Reserve(share=0.9), allow_over=False, advice="")
