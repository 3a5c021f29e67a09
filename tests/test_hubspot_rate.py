"""The HubSpot pacer on a fake clock: windows read from headers, search's own limit, the daily reserve."""

from __future__ import annotations

import pytest

from crmsweep.connectors.hubspot_rate import Pacer, RateHeaders
from crmsweep.errors import EXIT_REFUSED, LimitExceeded, ReserveKept
from tests.fake_clock import FakeClock


def headers(limit: int, remaining: int, daily: int = 1_000_000, daily_left: int = 900_000) -> dict[str, str]:
    return {
        "X-HubSpot-RateLimit-Max": str(limit),
        "X-HubSpot-RateLimit-Remaining": str(remaining),
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Daily": str(daily),
        "X-HubSpot-RateLimit-Daily-Remaining": str(daily_left),
    }


def test_headers_are_read_case_insensitively_and_in_the_original_secondly_form() -> None:
    seen = RateHeaders.parse({"x-hubspot-ratelimit-max": "190", "X-HUBSPOT-RATELIMIT-REMAINING": "7",
                              "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    assert (seen.window_limit, seen.window_remaining, seen.window_seconds) == (190, 7, 10.0)
    old = RateHeaders.parse({"X-HubSpot-RateLimit-Secondly": "10", "X-HubSpot-RateLimit-Secondly-Remaining": "4"})
    assert (old.window_limit, old.window_remaining, old.window_seconds) == (100, 40, 10.0)
    assert RateHeaders.parse({"X-HubSpot-RateLimit-Max": "lots"}).window_limit is None


def test_a_professional_window_is_used_to_one_below_its_limit_then_waits_for_the_oldest_call() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    pacer.before()
    clock.now += 0.01
    pacer.after(headers(190, 189))
    assert pacer.window_limit == 190
    for _ in range(188):  # 189 calls in all, none waited for
        pacer.before()
        clock.now += 0.01
    assert clock.slept == []
    pacer.before()  # the 190th would fill the window: wait until the first call is ten seconds old
    assert clock.slept == [pytest.approx(10.0 - 189 * 0.01)]


def test_calls_the_headers_report_beyond_ours_count_as_made_when_reported() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    pacer.before()
    pacer.after(headers(100, 10))  # 90 used, 1 of them ours: 89 were someone else's
    for _ in range(9):
        pacer.before()
    assert clock.slept == []
    pacer.before()  # 99 in the window (one kept spare): the others' calls age out at +10 s
    assert clock.slept == [pytest.approx(10.0)]


def test_search_has_its_own_five_per_second_and_does_not_use_the_window() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep, window_limit=10)
    for _ in range(5):
        pacer.before(search=True)
    assert clock.slept == []
    pacer.before(search=True)
    assert clock.slept == [pytest.approx(1.0)]
    for _ in range(9):  # the ten-second window (10, one spare) is untouched by the searches
        pacer.before()
    assert clock.slept == [pytest.approx(1.0)]


def test_an_instant_sleep_still_spaces_the_calls_it_accounts_for() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=lambda _s: None, window_limit=3)
    for _ in range(5):
        pacer.before()
    # Two a window (one spare): calls 1-2 at t, 3-4 at t+10, 5 at t+20, by a clock that never moved.
    assert pacer.waited == pytest.approx(10.0 + 10.0 + 20.0)


def test_the_daily_reserve_refuses_the_call_that_would_enter_it_with_exit_3() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep, daily_reserve=0.10)
    pacer.before()
    pacer.after(headers(190, 189, daily=1000, daily_left=103))
    for _ in range(3):  # 103 left, 100 kept: three more calls may go
        pacer.before()
    with pytest.raises(ReserveKept) as caught:
        pacer.before()
    error = caught.value
    assert isinstance(error, LimitExceeded) and error.exit_code == EXIT_REFUSED
    assert str(error) == (
        "the HubSpot portal has 100 of its 1000 API calls left today, and 100 (10%) are kept in reserve for "
        "other integrations: stopped before using them; resume after the daily allowance resets (midnight in "
        "the portal's time zone), or lower [retry] daily_reserve"
    )
    # A fresh answer (a new day) lets calls go again: the stop is resumable.
    pacer.after(headers(190, 189, daily=1000, daily_left=1000))
    pacer.before()


def test_a_refused_answer_is_not_counted_into_the_window() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    pacer.before()
    pacer.after(headers(190, 0, daily_left=500_000), refused=True)
    pacer.before()
    assert clock.slept == []  # the retry policy waited the Retry-After; the pacer does not wait again
    assert pacer.daily_remaining == 500_000


def test_a_run_stopped_by_the_reserve_does_not_say_the_allowance_is_spent() -> None:
    # A reviewer's apply stopped with "the org's API allowance is spent: ... has 110 of its 220 API calls left".
    from crmsweep.cleanup.apply import _stop_reason

    kept = ReserveKept("the portal has 110 of its 220 API calls left today, and 110 (50%) are kept in reserve")
    assert _stop_reason(kept) == str(kept)
    assert _stop_reason(LimitExceeded("over")) == "the org's API allowance is spent: over"
