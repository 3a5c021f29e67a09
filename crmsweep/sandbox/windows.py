"""A rolling rate-limit window (N calls per T seconds), for provider APIs that enforce one.

Provider-neutral: a provider API keeps one per limit it models (HubSpot's ten-secondly bucket,
its search limit) and consults it in `ProviderApi.admit`, so a refused call is never counted
against the daily allowance. Thread-safe; the clock is injectable so tests need not wait.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RollingWindow:
    def __init__(self, limit: int, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or seconds <= 0:
            raise ValueError(f"a rate-limit window needs at least one call in a positive time, not {limit}/{seconds}s")
        self.limit = limit
        self.seconds = seconds
        self._clock = clock
        self._taken: deque[float] = deque()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._taken and self._taken[0] <= now - self.seconds:
            self._taken.popleft()

    def take(self) -> float | None:
        """Take a slot: None when the call fits, else the seconds until the oldest call leaves the window."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            if len(self._taken) >= self.limit:
                return self._taken[0] + self.seconds - now
            self._taken.append(now)
            return None

    def remaining(self) -> int:
        """Calls that still fit in the window now (for rate-limit headers)."""
        with self._lock:
            self._expire(self._clock())
            return self.limit - len(self._taken)
