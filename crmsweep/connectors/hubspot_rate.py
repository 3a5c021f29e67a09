"""Pacing HubSpot calls to the portal's rate limits, read from its `X-HubSpot-RateLimit-*` headers.

HubSpot enforces three budgets: a rolling ten-second window per app (100 to 250 calls), a separate
per-second limit for search (5/s, exempt from the ten-second window), and a daily allowance per
account. A 429 costs a call, and HubSpot asks that errors stay under 5% of a day's calls, so the
`Pacer` waits *before* a call that would cross a window, instead of learning from 429s.

The window's size comes from the headers of each answer (so a Professional portal is used at 190,
a Free one at 100); calls this process made are timed locally, and calls the headers report beyond
them (another process on the same app) are counted as made at the moment they were reported, the
worst case, so they age out of the window last. A share of the daily allowance is kept in reserve:
the call that would eat into it is refused with `ReserveKept` before it is sent.

Pure logic over an injected clock and sleep: tests drive it with a fake clock, no real waiting.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from crmsweep.errors import ReserveKept

TEN_SECONDS = 10.0
# Until a first answer says otherwise: the smallest tier's window (Free/Starter private apps).
DEFAULT_WINDOW_LIMIT = 100
SEARCH_PER_SECOND = 5
DEFAULT_DAILY_RESERVE = 0.05


def _header(headers: Mapping[str, str], name: str) -> int | None:
    """An integer header, case-insensitively; None if absent or not a whole number."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            text = str(value).strip()
            return int(text) if text.isascii() and text.isdigit() else None
    return None


@dataclass(frozen=True)
class RateHeaders:
    """What one answer said about the budgets (None: the header was absent)."""

    window_limit: int | None = None
    window_remaining: int | None = None
    window_seconds: float | None = None
    daily_limit: int | None = None
    daily_remaining: int | None = None

    @classmethod
    def parse(cls, headers: Mapping[str, str] | None) -> RateHeaders:
        if not headers:
            return cls()
        limit = _header(headers, "X-HubSpot-RateLimit-Max")
        remaining = _header(headers, "X-HubSpot-RateLimit-Remaining")
        interval_ms = _header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
        seconds = interval_ms / 1000.0 if interval_ms else None
        if limit is None:
            # The original header set gives the window as a per-second rate over ten seconds.
            secondly = _header(headers, "X-HubSpot-RateLimit-Secondly")
            secondly_left = _header(headers, "X-HubSpot-RateLimit-Secondly-Remaining")
            if secondly is not None:
                limit, seconds = secondly * 10, TEN_SECONDS
                remaining = secondly_left * 10 if secondly_left is not None else None
        return cls(
            window_limit=limit or None,
            window_remaining=remaining,
            window_seconds=seconds,
            daily_limit=_header(headers, "X-HubSpot-RateLimit-Daily") or None,
            daily_remaining=_header(headers, "X-HubSpot-RateLimit-Daily-Remaining"),
        )


class _Window:
    """Calls in a rolling window of `seconds`, at most `limit - spare` of them at any moment."""

    def __init__(self, limit: int, seconds: float, spare: int) -> None:
        self.limit = limit
        self.seconds = seconds
        self.spare = spare
        self.sent: deque[float] = deque()
        # Calls the server reported beyond ours, as if all made at `foreign_at` (the worst case).
        self.foreign = 0
        self.foreign_at = 0.0

    def _forget(self, now: float) -> None:
        while self.sent and self.sent[0] <= now - self.seconds:
            self.sent.popleft()
        if self.foreign and self.foreign_at <= now - self.seconds:
            self.foreign = 0

    def allowed(self) -> int:
        return max(1, self.limit - self.spare)

    def wait(self, now: float) -> float:
        """Seconds until one more call fits in the window (0 if it fits now)."""
        self._forget(now)
        used = len(self.sent) + self.foreign
        if used < self.allowed():
            return 0.0
        # The moments at which calls age out, earliest first; enough of them must pass.
        ages = sorted([*self.sent, *([self.foreign_at] * self.foreign)])
        must_leave = used - self.allowed() + 1
        return max(0.0, ages[must_leave - 1] + self.seconds - now)

    def record(self, at: float) -> None:
        self.sent.append(at)

    def observe(self, limit: int | None, remaining: int | None, seconds: float | None, now: float) -> None:
        if seconds:
            self.seconds = seconds
        if limit:
            self.limit = limit
        if remaining is None:
            return
        self._forget(now)
        # The server counts everything the app sent in its window; what exceeds our own calls is someone else's.
        reported = self.limit - remaining
        self.foreign = max(0, reported - len(self.sent))
        self.foreign_at = now


class Pacer:
    """Waits before each call so that none crosses a window; refuses the call that would enter the
    daily reserve. `before(search=...)` before sending, `after(headers)` with each answer's headers.

    A 429 is not fed to the window (`after(headers, refused=True)` keeps only the daily figures): the
    retry policy waits its Retry-After, and a window counted full from that moment would wait twice."""

    def __init__(
        self,
        *,
        daily_reserve: float = DEFAULT_DAILY_RESERVE,
        window_limit: int = DEFAULT_WINDOW_LIMIT,
        search_per_second: int = SEARCH_PER_SECOND,
        spare: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        where: str = "the HubSpot portal",
    ) -> None:
        if not 0.0 <= daily_reserve < 1.0:
            raise ValueError(f"daily_reserve must be a share from 0 up to 1, got {daily_reserve}")
        self.daily_reserve = daily_reserve
        self._clock = clock
        self._sleep = sleep
        self._where = where
        self._window = _Window(window_limit, TEN_SECONDS, spare)
        # Search has its own limit per second and no headers to learn it from.
        self._search = _Window(search_per_second, 1.0, 0)
        self.daily_limit: int | None = None
        self.daily_remaining: int | None = None
        self._since_daily = 0  # calls sent since `daily_remaining` was reported
        self.waited = 0.0  # seconds spent waiting, for benchmarks and tests

    @property
    def window_limit(self) -> int:
        return self._window.limit

    def remaining_now(self) -> int:
        """The daily calls left as last reported, less those sent since (None-safe: 0 when unknown)."""
        return (self.daily_remaining or 0) - self._since_daily

    def reserve_calls(self) -> int:
        return math.ceil(self.daily_limit * self.daily_reserve) if self.daily_limit else 0

    def before(self, *, search: bool = False) -> None:
        """Wait until the call may be sent; ReserveKept if it would eat into the daily reserve."""
        self._check_reserve()
        window = self._search if search else self._window
        now = self._clock()
        pause = window.wait(now)
        if pause > 0:
            self._sleep(pause)
            self.waited += pause
        # A sleep that did not move the clock (a test's instant policy) still counts as having waited.
        window.record(max(self._clock(), now + pause))
        self._since_daily += 1

    def _check_reserve(self) -> None:
        if self.daily_remaining is None or not self.daily_limit:
            return
        left = self.remaining_now()
        reserve = self.reserve_calls()
        # With no reserve kept, the portal's own DAILY answer says when the allowance is spent.
        if reserve and left <= reserve:
            raise ReserveKept(
                f"{self._where} has {max(left, 0)} of its {self.daily_limit} API calls left today, and "
                f"{reserve} ({self.daily_reserve:.0%}) are kept in reserve for other integrations: stopped "
                "before using them; resume after the daily allowance resets (midnight in the portal's time zone), "
                "or lower [retry] daily_reserve",
                status=None,
                code="DAILY_RESERVE",
            )

    def after(self, headers: Mapping[str, str] | None, *, refused: bool = False) -> None:
        seen = RateHeaders.parse(headers)
        if not refused:
            self._window.observe(seen.window_limit, seen.window_remaining, seen.window_seconds, self._clock())
        if seen.daily_limit:
            self.daily_limit = seen.daily_limit
        if seen.daily_remaining is not None:
            self.daily_remaining = seen.daily_remaining
            self._since_daily = 0


__all__ = ["DEFAULT_DAILY_RESERVE", "Pacer", "RateHeaders"]
