"""Salesforce number fields (double, currency, percent) are kept exactly: Salesforce holds up to 18 digits
(describe `precision`), more than a double, so a currency(16,2) of 99999999999999.99 or a currency(18,0) of
123456789012345678 read as floats came back as 99999999999999.98 and 123456789012345680, in the snapshot,
the plan's before-images and what a rollback wrote back. Now they are FieldKind.DECIMAL, as HubSpot's
number properties are: read with every digit of the JSON number, kept as that text, written back as a JSON
number with the same digits (REST collections) or the same text (Bulk CSV).

Against the Salesforce sandbox (seed 21, 250 records) through simple-salesforce; values are read back with
a client that parses JSON numbers as Decimals, so a lost digit shows.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crmsweep import api
from crmsweep.backup.runlog import read_run
from crmsweep.backup.snapshot import open_snapshot
from crmsweep.cleanup.labels import record_label
from crmsweep.cleanup.passes import ANY_VALUE, PASSES, Proposal
from crmsweep.connectors.salesforce import exact_body, field_spec
from crmsweep.decimal_text import dumps_exact
from crmsweep.model import Change, FieldKind, FieldSpec, Op, Plan, PlanHeader
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY
from crmsweep.sandbox.server import RunningSandbox
from tests.plans import TEST_PASS, TEST_PASS_NAME, write_signed
from tests.test_recreate import CONNECTION, empty_recycle_bin, yes


@pytest.fixture(autouse=True)
def numbers_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """`test_pass`, also proposing the account update and opportunity delete these tests apply."""
    monkeypatch.setitem(PASSES, TEST_PASS_NAME, replace(TEST_PASS, proposes=(
        *TEST_PASS.proposes,
        Proposal(Op.UPDATE, objects=lambda v: ("Account",), writes=lambda v: {"AnnualRevenue": ANY_VALUE}),
        Proposal(Op.DELETE, objects=lambda v: ("Opportunity",)))))

AMOUNT = "99999999999999.99"  # currency(16,2): the double nearest it is 99999999999999.98
REVENUE = "123456789012345678"  # currency(18,0): as a double 123456789012345680


def exact_client(sandbox: RunningSandbox) -> Salesforce:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.info.ca_file)
    return Salesforce(instance_url=sandbox.info.url, session_id=sandbox.info.token, session=session,
                      parse_float=Decimal)


def patch(sf: Salesforce, obj: str, record_id: str, body: str) -> None:
    """A PATCH with the JSON text as written: json.dumps (simple-salesforce's `update`) rounds through floats."""
    sf.restful(f"sobjects/{obj}/{record_id}", method="PATCH", data=body)


def value(sf: Salesforce, obj: str, record_id: str, name: str) -> Any:
    return sf.query(f"SELECT {name} FROM {obj} WHERE Id = '{record_id}'")["records"][0][name]


def describe(sf: Salesforce, obj: str) -> list[dict[str, Any]]:
    answer = sf.restful(f"sobjects/{obj}/describe")
    assert isinstance(answer, dict)
    return list(answer["fields"])


def test_number_fields_are_decimals() -> None:
    for sf_type in ("double", "currency", "percent"):
        spec = field_spec({"name": "X__c", "type": sf_type, "precision": 18, "scale": 2})
        assert spec is not None and spec.kind is FieldKind.DECIMAL
    assert field_spec({"name": "N", "type": "int"}).kind is FieldKind.INT  # type: ignore[union-attr]


def test_a_request_body_carries_exactly_the_digits_of_the_before_image() -> None:
    specs = {"Amount": FieldSpec(name="Amount", kind=FieldKind.DECIMAL, provider_type="currency"),
             "Name": FieldSpec(name="Name", kind=FieldKind.STRING, provider_type="string")}
    body = {"allOrNone": False, "records": exact_body(
        [{"Amount": AMOUNT, "Name": "42"}, {"Amount": "-0.10"}, {"Amount": None}, {"Amount": "not a number"}], specs)}
    assert dumps_exact(body) == ('{"allOrNone": false, "records": [{"Amount": 99999999999999.99, "Name": "42"}, '
                                 '{"Amount": -0.10}, {"Amount": null}, {"Amount": "not a number"}]}')
    assert json.loads(dumps_exact(body), parse_float=Decimal)["records"][0]["Amount"] == Decimal(AMOUNT)
    assert json.loads(dumps_exact({"a": Decimal(REVENUE)}))["a"] == int(REVENUE)
    # A double from an older snapshot's FLOAT column is sent as the JSON number it is.
    assert dumps_exact({"records": exact_body([{"Amount": 1234.5}], specs)}) == '{"records": [{"Amount": 1234.5}]}'
    with pytest.raises(ValueError):
        dumps_exact({"a": Decimal("NaN")})


def test_the_sandbox_keeps_every_digit_rounds_to_the_scale_and_refuses_a_value_past_the_precision(
    sandbox: RunningSandbox,
) -> None:
    sf = exact_client(sandbox)
    fields = {f["name"]: f for f in describe(sf, "Opportunity")}
    assert (fields["Amount"]["precision"], fields["Amount"]["scale"]) == (16, 2)
    account_fields = {f["name"]: f for f in describe(sf, "Account")}
    assert (account_fields["AnnualRevenue"]["precision"], account_fields["AnnualRevenue"]["scale"]) == (18, 0)
    opportunity = sf.query("SELECT Id FROM Opportunity LIMIT 1")["records"][0]["Id"]
    account = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]

    patch(sf, "Opportunity", opportunity, f'{{"Amount": {AMOUNT}}}')
    assert value(sf, "Opportunity", opportunity, "Amount") == Decimal(AMOUNT)
    patch(sf, "Account", account, f'{{"AnnualRevenue": {REVENUE}}}')
    assert value(sf, "Account", account, "AnnualRevenue") == int(REVENUE)
    # The JSON text itself carries the digits (not only a client that reads them as Decimals).
    raw = sf.session.get(f"{sf.base_url}sobjects/Account/{account}", headers=sf.headers).text
    assert f'"AnnualRevenue":{REVENUE}' in raw.replace(" ", "")
    # Filters and ordering still compare numbers as numbers.
    found = sf.query("SELECT Id FROM Opportunity WHERE Amount > 99999999999999 ORDER BY Amount DESC")["records"]
    assert [r["Id"] for r in found] == [opportunity]

    # Salesforce rounds extra decimal places to the scale (half up) ...
    patch(sf, "Opportunity", opportunity, '{"Amount": 1.005}')
    assert value(sf, "Opportunity", opportunity, "Amount") == Decimal("1.01")
    # ... and refuses more digits before the point than precision - scale allows.
    for too_big in ("1000000000000000", "1e16", "99999999999999.995"):
        with pytest.raises(SalesforceMalformedRequest) as caught:
            patch(sf, "Opportunity", opportunity, f'{{"Amount": {too_big}}}')
        assert "NUMBER_OUTSIDE_VALID_RANGE" in str(caught.value.content)
    assert value(sf, "Opportunity", opportunity, "Amount") == Decimal("1.01")


def _plan(ws: api.Workspace, snapshot_id: str, changes: list[tuple[Op, str, str, dict[str, Any]]]) -> Plan:
    reader = open_snapshot(ws.home, snapshot_id)
    built = []
    for op, obj, record_id, after in changes:
        before = reader.record_map(obj, [record_id])[record_id]
        built.append(Change(
            op=op, object=obj, record_id=record_id, before=dict(before), after=after, reason="test",
            pass_name="test_pass", fingerprint=before["SystemModstamp"],
            label=record_label(SALESFORCE_VOCABULARY, obj, before),
        ))
    header = PlanHeader(
        plan_id="plan-20300101T000000Z-00ab", created="2030-01-01T00:00:00.000Z", tool_version="0.1.0",
        provider="salesforce", org_id=reader.manifest.org_id, connection=CONNECTION,
        source={"kind": "snapshot", "id": snapshot_id}, passes=("test_pass",),
    )
    return Plan.build(header, built)


def test_numbers_come_back_from_a_rollback_with_every_digit(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    sf = exact_client(sandbox)
    opportunity, account = (lambda r: (r["Id"], r["AccountId"]))(
        sf.query("SELECT Id, AccountId FROM Opportunity WHERE AccountId != null AND Owner.IsActive = true "
                 "LIMIT 1")["records"][0])
    patch(sf, "Opportunity", opportunity, f'{{"Amount": {AMOUNT}}}')
    patch(sf, "Account", account, f'{{"AnnualRevenue": {REVENUE}}}')

    snapshot = api.backup(ws, CONNECTION, ["User", "Account", "Opportunity"]).snapshot_id
    reader = open_snapshot(ws.home, snapshot)
    assert reader.record_map("Opportunity", [opportunity])[opportunity]["Amount"] == AMOUNT
    assert reader.record_map("Account", [account])[account]["AnnualRevenue"] == REVENUE
    # Passes still see numbers.
    frame = reader.frame("Opportunity", ["Id", "Amount"])
    assert str(frame["Amount"].dtype) == "float64"
    assert frame.set_index("Id").loc[opportunity, "Amount"] == float(AMOUNT)

    # Update the account's revenue and delete the opportunity; then empty the recycle bin, so the rollback
    # re-creates the opportunity from its before-image instead of undeleting it.
    plan = _plan(ws, snapshot, [(Op.UPDATE, "Account", account, {"AnnualRevenue": "1"}),
                                (Op.DELETE, "Opportunity", opportunity, {})])
    path = write_signed(tmp_path / "plan.json", plan, ws.home)
    assert f'"{REVENUE}"' in path.read_text() and f'"{AMOUNT}"' in path.read_text()  # before-images, as text
    applied = api.apply(ws, path, confirm=yes).report
    assert applied is not None and applied.applied == 2 and not applied.failed
    assert value(sf, "Account", account, "AnnualRevenue") == 1
    assert empty_recycle_bin(sandbox, [opportunity]) == [True]

    rolled = api.rollback(ws, applied.run_id, confirm=yes).report
    assert rolled is not None and (rolled.applied, rolled.failed, rolled.skipped) == (2, 0, 0)
    new_opportunity = read_run(ws.home, rolled.run_id).id_map["Opportunity"][opportunity]
    assert value(sf, "Opportunity", new_opportunity, "Amount") == Decimal(AMOUNT)
    assert value(sf, "Account", account, "AnnualRevenue") == int(REVENUE)


def test_numbers_keep_every_digit_through_a_bulk_query_backup_and_bulk_ingest_writes(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = sandbox.info
    config = tmp_path / "bulk.toml"
    config.write_text(
        f'[connections.{CONNECTION}]\nprovider = "salesforce"\nurl = "{info.url}"\ntoken_env = "NUMBERS_TOKEN"\n'
        f'ca_file = "{info.ca_file}"\nbulk_threshold = 1\n\n[backup]\nbulk_query_rows = 0\n', encoding="utf-8")
    monkeypatch.setenv("NUMBERS_TOKEN", info.token)
    ws = api.Workspace.load(config, tmp_path / "home")
    sf = exact_client(sandbox)
    accounts = [r["Id"] for r in sf.query("SELECT Id FROM Account ORDER BY Id LIMIT 2")["records"]]
    revenues = [REVENUE, "-98765432109876543"]
    for account, revenue in zip(accounts, revenues, strict=True):
        patch(sf, "Account", account, f'{{"AnnualRevenue": {revenue}}}')

    backup = api.backup(ws, CONNECTION, ["User", "Account"])
    reader = open_snapshot(ws.home, backup.snapshot_id)
    assert sandbox.stats()["by_endpoint"].get("POST jobs/query")  # read through a Bulk API 2.0 query job
    assert [reader.record_map("Account", [a])[a]["AnnualRevenue"] for a in accounts] == revenues

    plan = _plan(ws, backup.snapshot_id, [(Op.UPDATE, "Account", a, {"AnnualRevenue": "1"}) for a in accounts])
    applied = api.apply(ws, write_signed(tmp_path / "plan.json", plan, ws.home), confirm=yes).report
    assert applied is not None and applied.applied == 2 and not applied.failed
    assert [value(sf, "Account", a, "AnnualRevenue") for a in accounts] == [1, 1]

    assert sandbox.stats()["by_endpoint"].get("PUT jobs/ingest") == 1  # the update was a Bulk ingest job
    rolled = api.rollback(ws, applied.run_id, confirm=yes).report  # and so is its inverse: CSV text
    assert rolled is not None and (rolled.applied, rolled.failed, rolled.skipped) == (2, 0, 0)
    assert sandbox.stats()["by_endpoint"].get("PUT jobs/ingest") == 2
    assert [value(sf, "Account", a, "AnnualRevenue") for a in accounts] == [int(r) for r in revenues]
