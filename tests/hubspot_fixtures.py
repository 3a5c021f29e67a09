"""The HubSpot sandbox for tests, and hubspot-api-client pointed at it (api-notes §1.4-1.5)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import requests
from hubspot import HubSpot
from urllib3.util.retry import Retry

from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.seeded_states import SeededStates

RECORDS = 250
SEED = 21
DAILY = 625_000  # Professional (api-notes §4.1)


def sdk_client(sandbox: RunningSandbox, *, token: str | None = None, retry: Retry | None = None) -> Any:
    """The real SDK, unmodified: the sandbox's URL as host and its CA file for TLS; `retry` as its README offers."""
    info = sandbox.info
    return HubSpot(access_token=token or info.token, host=info.url, ssl_ca_cert=str(info.ca_file), retry=retry)


# What an admin's script sets up (the SDK README's rate-limit retry, api-notes 1.6): a 429 waited out as its
# Retry-After says, and nothing else retried (a dropped answer stays an error, as the fault tests need). Tests
# act as that admin between crmsweep's own calls, which count against the same ten-second limit.
ADMIN_RETRY = Retry(total=5, connect=0, read=0, other=0, status=5, status_forcelist=(429,), allowed_methods=None,
                    respect_retry_after_header=True, raise_on_status=False)


def all_pages(sdk_api: Any, **kwargs: Any) -> list[Any]:
    """Every result of an SDK list endpoint, page by page (100 a page)."""
    rows, after = [], None
    while True:
        page = sdk_api.get_page(limit=100, after=after, **kwargs)
        rows += page.results
        if page.paging is None or page.paging.next is None:
            return rows
        after = page.paging.next.after


@pytest.fixture()
def hubspot_sandbox(tmp_path: Path, seeded_states: SeededStates) -> Iterator[RunningSandbox]:
    """A seeded portal whose ten-second and search windows do not make a test wait: what the tests using it
    check is what crmsweep writes and reads back, and waiting out Professional's 190 calls a ten seconds and
    5 searches a second (the SDK's Retry-After, crmsweep's pacer) was a third of their time. The windows
    themselves are tested with the limits set (tests/test_sandbox_hubspot_limits.py,
    tests/test_hubspot_rate.py); the daily allowance stays, since budgets are checked against it."""
    with seeded_portal(tmp_path, seeded_states) as running:
        unpaced(running)
        yield running


def seeded_portal(tmp_path: Path, seeded_states: SeededStates) -> RunningSandbox:
    """The tests' seeded portal, with Professional's limits (`hubspot_sandbox` opens its windows)."""
    state = seeded_states.copy_to(tmp_path / "hubspot", provider="hubspot", records=RECORDS, seed=SEED)
    return start_sandbox(state, provider="hubspot", records=RECORDS, seed=SEED, api_limit=DAILY)


def unpaced(sandbox: RunningSandbox) -> None:
    """The portal's ten-second and search windows opened wide (see `hubspot_sandbox`)."""
    admin(sandbox, "rate-limits", {"tenSecondly": 100_000, "searchPerSecond": 100_000})


@pytest.fixture()
def hs(hubspot_sandbox: RunningSandbox) -> Any:
    return sdk_client(hubspot_sandbox, retry=ADMIN_RETRY)


def admin(sandbox: RunningSandbox, name: str, payload: object) -> Any:
    """POST a test setting to the HubSpot sandbox (`/__sandbox-hubspot/<name>`); the parsed answer."""
    info = sandbox.info
    answer = requests.post(f"{info.url}/__sandbox-hubspot/{name}", json=payload, verify=str(info.ca_file),
                           headers={"Authorization": f"Bearer {info.token}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def hubspot_get(sandbox: RunningSandbox, path: str, **params: Any) -> requests.Response:
    """A raw GET, for headers and bodies the SDK's models drop."""
    info = sandbox.info
    return requests.get(f"{info.url}{path}", params=params, verify=str(info.ca_file),
                        headers={"Authorization": f"Bearer {info.token}"}, timeout=30)


def hubspot_post(sandbox: RunningSandbox, path: str, payload: object) -> requests.Response:
    info = sandbox.info
    return requests.post(f"{info.url}{path}", json=payload, verify=str(info.ca_file),
                         headers={"Authorization": f"Bearer {info.token}"}, timeout=30)


CLI_TOKEN_ENV = "E2E_HUBSPOT_TOKEN"


def hubspot_cli(info: Any, folder: Path, extra_config: str = "") -> Callable[..., subprocess.CompletedProcess[str]]:
    """`crmsweep ARGS` against the sandbox `info` describes, connection `e2e`, home and config under `folder`:
    each call must exit 0 (or its `expect=`), print no traceback and never the token. In this process, through the
    CLI's own entry (as the Salesforce CLI tests run it): a child process per call spent more time importing crmsweep
    than the calls took, and these tests make hundreds of them."""
    from typer.testing import CliRunner

    from crmsweep.cli import app

    config = folder / "crmsweep.toml"
    config.write_text(
        f'[connections.e2e]\nprovider = "hubspot"\nurl = "{info.url}"\ntoken_env = "{CLI_TOKEN_ENV}"\n'
        f'ca_file = "{info.ca_file}"\n\n{extra_config}',
        encoding="utf-8",
    )
    env: dict[str, str | None] = {CLI_TOKEN_ENV: info.token, "CRMSWEEP_HOME": str(folder / "home"),
                                  "CRMSWEEP_CONFIG": None}
    runner = CliRunner()

    def cli(*args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        result = runner.invoke(app, [*args, "--config", str(config)], env=env, catch_exceptions=False)
        done = subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)
        assert done.returncode == expect, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr and info.token not in done.stdout + done.stderr
        return done

    return cli


class StaleApplied(NamedTuple):
    cli: Callable[..., subprocess.CompletedProcess[str]]
    plan_file: Path
    archived: list[str]  # the contacts the plan archives, sorted
    applied: dict[str, Any]  # `apply --json`'s answer


def stale_contacts_applied(sandbox: RunningSandbox, folder: Path) -> StaleApplied:
    """Through the CLI (connection `e2e`, see `hubspot_cli`): a backup, a scan of stale_contacts over it, and
    that plan applied without failures: what a rollback test starts from."""
    cli = hubspot_cli(sandbox.info, folder)
    backup = json.loads(cli("backup", "-c", "e2e", "--json").stdout)
    plan_file = folder / "plan.json"
    cli("scan", "-c", "e2e", "--snapshot", backup["snapshot"], "-o", str(plan_file), "--pass", "stale_contacts")
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    archived = sorted(c["record_id"] for c in plan["changes"] if c["op"] == "archive")
    applied = json.loads(cli("apply", str(plan_file), "--yes", "--json").stdout)
    assert applied["failed"] == 0 and applied["applied"] > 0
    return StaleApplied(cli, plan_file, archived, applied)
