"""The HubSpot sandbox's rate limits: the ten-secondly window per tier with its headers, search's own
window, the daily allowance, and 429 bodies naming `policyName`; plus HubSpot-shaped faults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.hubspot_api import HubSpotApi
from crmsweep.sandbox.hubspot_limits import RateLimits
from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.hubspot_fixtures import DAILY, admin, hs, hubspot_get, hubspot_post, seeded_portal
from tests.seeded_states import SeededStates

__all__ = ["hs"]  # fixtures


@pytest.fixture()
def hubspot_sandbox(tmp_path: Path, seeded_states: SeededStates) -> Iterator[RunningSandbox]:
    """The portal with the windows these tests are about: Professional's (tests elsewhere open them wide)."""
    with seeded_portal(tmp_path, seeded_states) as running:
        yield running


def test_every_answer_carries_the_documented_rate_limit_headers(hubspot_sandbox: RunningSandbox) -> None:
    first = hubspot_get(hubspot_sandbox, "/crm/v3/objects/contacts", limit="1")
    second = hubspot_get(hubspot_sandbox, "/crm/v3/owners/", limit="1")
    assert first.status_code == second.status_code == 200
    assert first.headers["X-HubSpot-RateLimit-Max"] == "190"  # Professional
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert first.headers["X-HubSpot-RateLimit-Daily"] == str(DAILY)
    remaining = [int(a.headers["X-HubSpot-RateLimit-Remaining"]) for a in (first, second)]
    assert remaining[0] - remaining[1] == 1
    assert first.headers["X-HubSpot-RateLimit-Daily-Remaining"] == str(DAILY - 1)
    assert second.headers["X-HubSpot-RateLimit-Daily-Remaining"] == str(DAILY - 2)
    search = hubspot_post(hubspot_sandbox, "/crm/v3/objects/contacts/search", {"limit": 1})
    assert search.status_code == 200
    assert not [h for h in search.headers if h.lower().startswith("x-hubspot-ratelimit")]


def test_a_full_ten_second_window_is_a_429_naming_its_policy_and_not_counted(hubspot_sandbox: RunningSandbox) -> None:
    admin(hubspot_sandbox, "rate-limits", {"tenSecondly": 3})
    answers = [hubspot_get(hubspot_sandbox, "/crm/v3/objects/contacts", limit="1") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[3]
    body = refused.json()
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert refused.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert refused.headers["X-HubSpot-RateLimit-Max"] == "3"
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    stats = hubspot_sandbox.stats()
    assert stats["api_calls"] == 3 and stats["rate_limited"] == {"TEN_SECONDLY_ROLLING": 1}


def test_the_sdk_sees_the_429_as_an_api_exception_with_the_body(hubspot_sandbox: RunningSandbox) -> None:
    from hubspot.crm.contacts.exceptions import ApiException

    admin(hubspot_sandbox, "rate-limits", {"tier": "starter", "tenSecondly": 1})
    # urllib3's default Retry honours Retry-After on a GET's 429 (it would wait, then succeed): off here.
    hs = sdk_client_no_retry(hubspot_sandbox)
    hs.crm.contacts.basic_api.get_page(limit=1)
    with pytest.raises(ApiException) as caught:
        hs.crm.contacts.basic_api.get_page(limit=1)
    assert caught.value.status == 429
    assert json.loads(caught.value.body)["policyName"] == "TEN_SECONDLY_ROLLING"
    assert caught.value.headers["X-HubSpot-RateLimit-Max"] == "1"


def test_tiers_set_the_ten_second_window(hubspot_sandbox: RunningSandbox) -> None:
    assert admin(hubspot_sandbox, "rate-limits", {"tier": "starter"})["tenSecondly"] == 100
    assert hubspot_get(hubspot_sandbox, "/crm/v3/objects/contacts").headers["X-HubSpot-RateLimit-Max"] == "100"
    assert admin(hubspot_sandbox, "rate-limits", {"tier": "enterprise"})["tenSecondly"] == 190


def test_the_limits_set_are_kept_in_the_state(tmp_path: Path) -> None:
    with start_sandbox(tmp_path / "s", provider="hubspot", records=20, seed=1) as first:
        admin(first, "rate-limits", {"tenSecondly": 7})
    with start_sandbox(tmp_path / "s", provider="hubspot", records=20, seed=1) as again:
        assert hubspot_get(again, "/crm/v3/objects/contacts").headers["X-HubSpot-RateLimit-Max"] == "7"


def test_search_has_its_own_window_outside_the_ten_second_one() -> None:
    now = [100.0]
    limits = RateLimits(2, 5, clock=lambda: now[0])
    assert [limits.admit(search=True) for _ in range(5)] == [None] * 5
    refused = limits.admit(search=True)
    assert refused is not None and refused.policy == "SECONDLY" and refused.retry_after == 1
    assert limits.admit(search=False) is None and limits.admit(search=False) is None  # its own window
    ten = limits.admit(search=False)
    assert ten is not None and ten.policy == "TEN_SECONDLY_ROLLING" and ten.retry_after == 10
    now[0] += 1.0
    assert limits.admit(search=True) is None
    now[0] += 9.0
    assert limits.admit(search=False) is None
    assert limits.refused == {"SECONDLY": 1, "TEN_SECONDLY_ROLLING": 1}


def test_a_full_search_window_answers_the_secondly_message(hubspot_sandbox: RunningSandbox) -> None:
    api = hubspot_sandbox.api
    assert isinstance(api, HubSpotApi)
    api.limits = RateLimits(190, 1, clock=lambda: 5.0)  # a frozen clock: no timed assertion
    answers = [hubspot_post(hubspot_sandbox, "/crm/v3/objects/contacts/search", {"limit": 1}) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 429]
    assert answers[1].json()["message"] == "You have reached your secondly limit."
    assert answers[1].headers["Retry-After"] == "1"


@pytest.fixture()
def tiny_allowance(tmp_path: Path) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path / "tiny", provider="hubspot", records=20, seed=1, api_limit=3) as running:
        yield running


def test_a_spent_daily_allowance_is_a_429_daily(tiny_allowance: RunningSandbox) -> None:
    answers = [hubspot_get(tiny_allowance, "/crm/v3/objects/contacts", limit="1") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[2].headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    body = answers[3].json()
    assert body["policyName"] == "DAILY" and body["message"] == "You have reached your daily limit."
    assert "Retry-After" not in answers[3].headers
    usage = hubspot_get(tiny_allowance, "/account-info/v3/api-usage/daily/private-apps")
    assert usage.status_code == 429  # the allowance is spent for that call too


def test_faults_answer_in_hubspot_shapes(hubspot_sandbox: RunningSandbox) -> None:
    hubspot_sandbox.set_faults([FaultRule(kind="status", status=429, times=1), FaultRule(kind="limit", times=1),
                                FaultRule(kind="status", status=502, times=1), FaultRule(kind="expired", times=1)])
    answers = [hubspot_get(hubspot_sandbox, "/crm/v3/objects/contacts") for _ in range(5)]
    assert [a.status_code for a in answers] == [429, 429, 502, 401, 200]
    assert answers[0].json()["policyName"] == "TEN_SECONDLY_ROLLING" and answers[0].headers["Retry-After"] == "1"
    assert answers[1].json()["policyName"] == "DAILY"
    assert answers[3].json()["category"] == "EXPIRED_AUTHENTICATION"


def test_drop_after_applies_the_write_and_gives_no_answer(hubspot_sandbox: RunningSandbox, hs: Any) -> None:
    import urllib3

    hubspot_sandbox.set_faults([FaultRule(kind="drop_after", method="POST", path="batch/create$", times=1)])
    create = {"inputs": [{"properties": {"email": "maybe@example.org"}}]}
    with pytest.raises((urllib3.exceptions.HTTPError, ConnectionError)):
        sdk_client_no_retry(hubspot_sandbox).crm.contacts.batch_api.create(create)
    found = hs.crm.contacts.search_api.do_search({"filterGroups": [{"filters": [
        {"propertyName": "email", "operator": "EQ", "value": "maybe@example.org"}]}]})
    assert found.total == 1  # the create happened: a blind resend would duplicate it


def sdk_client_no_retry(sandbox: RunningSandbox) -> Any:
    from hubspot import HubSpot
    from urllib3.util.retry import Retry

    info = sandbox.info
    return HubSpot(access_token=info.token, host=info.url, ssl_ca_cert=str(info.ca_file),
                   retry=Retry(total=0, raise_on_status=False))


def test_settings_are_reachable_while_every_call_is_faulted(hubspot_sandbox: RunningSandbox) -> None:
    hubspot_sandbox.set_faults([FaultRule(kind="status", status=503)])
    assert admin(hubspot_sandbox, "rate-limits", {"tenSecondly": 9})["tenSecondly"] == 9
    assert hubspot_get(hubspot_sandbox, "/crm/v3/objects/contacts").status_code == 503
    assert hubspot_sandbox.stats()["api_calls"] == 0
