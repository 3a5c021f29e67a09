"""The whole story through the CLI against `crmsweep sandbox serve`, over HTTPS, as an admin runs it.

Proves: after apply and rollback, every record of the org, compared field by field through the API
(simple-salesforce, not our connector), equals its state before the apply, ids included. The only
fields allowed to differ are the audit trail the platform itself rewrites on any write
(LastModifiedDate, LastModifiedById, SystemModstamp): Salesforce bumps them on undelete and on
reactivation too, so no tool could keep them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce

OBJECTS = ("User", "Account", "Contact", "Lead", "Opportunity", "OpportunityContactRole", "Task")
AUDIT = {"LastModifiedDate", "LastModifiedById", "SystemModstamp"}
TOKEN_ENV = "E2E_SANDBOX_TOKEN"


class Sandbox:
    def __init__(self, info: dict[str, str], proc: subprocess.Popen[str]) -> None:
        self.info = info
        self.proc = proc

    def admin(self, method: str, path: str) -> dict[str, Any]:
        """The sandbox's own accounting (not an API call)."""
        session = requests.Session()
        session.trust_env = False
        answer = session.request(
            method, f"{self.info['url']}/__sandbox/{path}", verify=self.info["ca_file"],
            headers={"Authorization": f"Bearer {self.info['token']}"}, timeout=30,
        )
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def client(self) -> Salesforce:
        session = requests.Session()
        session.trust_env = False
        session.verify = self.info["ca_file"]
        return Salesforce(instance_url=self.info["url"], session_id=self.info["token"], session=session)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    state = tmp_path_factory.mktemp("sandbox-state")
    proc = subprocess.Popen(
        [sys.executable, "-m", "crmsweep", "sandbox", "serve", "--state", str(state), "--records", "400",
         "--seed", "11"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"sandbox did not start: {proc.stderr.read() if proc.stderr else ''}")
        info = json.loads(line)
        assert set(info) == {"provider", "url", "ca_file", "token"}
        assert info["provider"] == "salesforce" and info["url"].startswith("https://127.0.0.1:")
        yield Sandbox(info, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture()
def cli(sandbox: Sandbox, tmp_path: Path) -> Any:
    config = tmp_path / "crmsweep.toml"
    config.write_text(
        "[connections.e2e]\n"
        'provider = "salesforce"\n'
        f'url = "{sandbox.info["url"]}"\n'
        f'token_env = "{TOKEN_ENV}"\n'
        f'ca_file = "{sandbox.info["ca_file"]}"\n',
        encoding="utf-8",
    )
    env = {**os.environ, TOKEN_ENV: sandbox.info["token"], "CRMSWEEP_HOME": str(tmp_path / "home")}
    env.pop("CRMSWEEP_CONFIG", None)

    def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "crmsweep", *args, "--config", str(config)],
            capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=300,
        )
        assert done.returncode == expect, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        assert sandbox.info["token"] not in done.stdout + done.stderr
        return done

    return run


def org_state(sf: Salesforce) -> dict[str, dict[str, dict[str, Any]]]:
    """Every record of every object, deleted ones included, keyed by id, audit fields aside."""
    state: dict[str, dict[str, dict[str, Any]]] = {}
    for name in OBJECTS:
        describe = sf.restful(f"sobjects/{name}/describe")
        assert describe is not None
        fields = [f["name"] for f in describe["fields"]]
        rows = sf.query_all(f"SELECT {', '.join(fields)} FROM {name}", include_deleted=True)["records"]
        state[name] = {
            r["Id"]: {k: v for k, v in r.items() if k != "attributes" and k not in AUDIT} for r in rows
        }
    return state


def test_backup_scan_apply_rollback_leaves_the_org_as_it_was(sandbox: Sandbox, cli: Any, tmp_path: Path) -> None:
    sf = sandbox.client()
    before = org_state(sf)

    sandbox.admin("POST", "reset-stats")
    backup = json.loads(cli("backup", "-c", "e2e", "--json").stdout)
    assert backup["api_calls"] == sandbox.admin("GET", "stats")["api_calls"]
    assert backup["objects"]["Contact"] == sum(1 for r in before["Contact"].values() if not r["IsDeleted"])
    assert Path(backup["path"], "manifest.json").is_file()
    cli("snapshots", "verify", backup["snapshot"])

    plan_file = tmp_path / "plan.json"
    cli("scan", "-c", "e2e", "--snapshot", backup["snapshot"], "-o", str(plan_file), "--json")
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    deletes = {c["record_id"] for c in plan["changes"] if c["op"] == "delete"}
    deactivations = {c["record_id"] for c in plan["changes"] if c["op"] == "deactivate"}
    assert deletes and deactivations, "the seeded org must give both passes something to do"

    preview = cli("preview", str(plan_file)).stdout
    assert preview.count("\n- Contact ") + preview.count("\n- Lead ") >= 1
    assert "IsActive: true → false" in preview

    applied = json.loads(cli("apply", str(plan_file), "--yes", "--json").stdout)
    assert applied["applied"] == len(plan["changes"]) and applied["failed"] == 0 and applied["skipped"] == 0

    during = org_state(sf)
    for obj in ("Contact", "Lead"):
        gone = {i for i, r in during[obj].items() if r["IsDeleted"] and not before[obj][i]["IsDeleted"]}
        assert gone == {i for i in deletes if i in before[obj]}
    assert {i for i, r in during["User"].items() if not r["IsActive"] and before["User"][i]["IsActive"]} == (
        deactivations
    )

    rolled = json.loads(cli("rollback", applied["run"], "--yes", "--json").stdout)
    assert rolled["applied"] == applied["applied"] and rolled["failed"] == 0

    after = org_state(sf)
    assert after.keys() == before.keys()
    for obj in OBJECTS:
        assert after[obj].keys() == before[obj].keys(), f"{obj}: ids differ"
        for record_id, record in before[obj].items():
            assert after[obj][record_id] == record, f"{obj} {record_id} differs after rollback"

    # The same plan a second time writes nothing: the run that applied it is named, no new run is made.
    again = json.loads(cli("apply", str(plan_file), "--yes", "--json", expect=0).stdout)
    assert (again["already_applied"], again["already_applied_by"], again["run"], again["applied"]) == (
        "rolled back", applied["run"], None, 0)
    assert org_state(sf) == after

    runs = json.loads(cli("runs", "list", "--json").stdout)
    assert [r["status"] for r in runs] == ["rolled back", "done"]
