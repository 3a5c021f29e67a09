"""HubSpot's private-app rate limits over the core's rolling windows: ten seconds for ordinary calls
(per tier, e.g. Professional 190), one second for search (5, exempt from the ten-second window);
the daily allowance is the core's call count.

Headers and 429 bodies follow api-notes §4.2: `X-HubSpot-RateLimit-Max/-Remaining/
-Interval-Milliseconds` and `-Daily/-Daily-Remaining` on ordinary answers, none on search answers
(as reported), and a 429 body naming `policyName`.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from crmsweep.sandbox.hubspot_schema import TIERS, Tier
from crmsweep.sandbox.windows import RollingWindow

WINDOW_SECONDS = 10.0
TEN_SECONDLY = "TEN_SECONDLY_ROLLING"
DAILY = "DAILY"
SECONDLY = "SECONDLY"  # search's policy name: UNCONFIRMED; HubSpot's own Node SDK matches the message instead
MESSAGES = {
    TEN_SECONDLY: "You have reached your ten_secondly_rolling limit.",
    DAILY: "You have reached your daily limit.",
    SECONDLY: "You have reached your secondly limit.",
}
TEN_SECONDLY_META = "hubspot_ten_secondly"
SEARCH_META = "hubspot_search_per_second"


def rate_limit_body(policy: str) -> dict[str, str]:
    return {"status": "error", "message": MESSAGES[policy], "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()), "policyName": policy, "requestId": str(uuid.uuid4())}


@dataclass(frozen=True)
class Refusal:
    policy: str
    retry_after: int


class RateLimits:
    def __init__(self, ten_secondly: int, search_per_second: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.refused: dict[str, int] = {}
        self.configure(ten_secondly, search_per_second)

    def configure(self, ten_secondly: int, search_per_second: int) -> None:
        """New limits, with empty windows."""
        with self._lock:
            self.window = RollingWindow(ten_secondly, WINDOW_SECONDS, clock=self._clock)
            self.search = RollingWindow(search_per_second, 1.0, clock=self._clock)

    def admit(self, *, search: bool) -> Refusal | None:
        """Take a slot in the call's window, or say which policy refuses it."""
        with self._lock:
            window, policy = (self.search, SECONDLY) if search else (self.window, TEN_SECONDLY)
        wait = window.take()
        if wait is None:
            return None
        with self._lock:
            self.refused[policy] = self.refused.get(policy, 0) + 1
        return Refusal(policy, max(1, math.ceil(wait)))  # urllib3 reads whole seconds only

    def count_daily_refusal(self) -> None:
        with self._lock:
            self.refused[DAILY] = self.refused.get(DAILY, 0) + 1

    def headers(self, used_today: int, daily: int) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Daily": str(daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(daily - used_today, 0)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(WINDOW_SECONDS * 1000)),
            "X-HubSpot-RateLimit-Max": str(self.window.limit),
            "X-HubSpot-RateLimit-Remaining": str(max(self.window.remaining(), 0)),
        }


def tier_limits(data: dict[str, object], current: Tier) -> Tier:
    """The limits an admin request asks for: a tier by name, then any figure overridden."""
    base = current
    if "tier" in data:
        name = str(data["tier"]).lower()
        if name not in TIERS:
            raise ValueError(f"unknown tier {name!r}; use one of {', '.join(TIERS)}")
        base = TIERS[name]

    def count(key: str, default: int) -> int:
        value = data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{key} must be a positive integer")
        return value

    return Tier(base.name, count("tenSecondly", base.ten_secondly), base.daily,
                count("searchPerSecond", base.search_per_second))
