"""The one retry policy: which failures are tried again, how often, and how long to wait.

Connectors receive a `RetryPolicy` instead of deciding for themselves, so a test can make retries
instant and a benchmark can make them patient, without touching connector code.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity

from crmsweep.errors import RetriableError

T = TypeVar("T")


def _no_sleep(_seconds: float) -> None:
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """Retry `RetriableError` up to `attempts` tries in all, waiting exponentially longer between them.

    A server's Retry-After (carried on the error) wins over the computed wait, capped at `max_wait`
    so one misbehaving proxy cannot park a run for an hour.
    """

    attempts: int = 5
    initial_wait: float = 1.0
    max_wait: float = 60.0
    jitter: bool = True
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    # Share of the CRM's daily API allowance never used, left for the org's other integrations
    # (where the CRM reports it, in the headers of its answers).
    daily_reserve: float = 0.05
    # Seconds, monotonic: what connectors pace their calls by; a test gives a fake one with `sleep`.
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("retry attempts must be at least 1")
        if self.initial_wait < 0 or self.max_wait < 0:
            raise ValueError("retry waits must not be negative")
        if not 0.0 <= self.daily_reserve < 1.0:
            raise ValueError("the daily reserve is a share from 0 up to 1")

    @classmethod
    def immediate(cls, attempts: int = 5) -> RetryPolicy:
        """Same retries, no waiting: for tests."""
        return cls(attempts=attempts, initial_wait=0.0, max_wait=0.0, jitter=False, sleep=_no_sleep)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed try number `attempt` (1-based)."""
        base = min(self.max_wait, self.initial_wait * 2.0 ** max(attempt - 1, 0))
        if not self.jitter:
            return base
        # "Equal jitter": spreads clients apart without ever collapsing the wait to zero.
        return base / 2 + random.uniform(0, base / 2)

    def wait_for(self, error: BaseException | None, attempt: int) -> float:
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after >= 0:
            return min(float(retry_after), self.max_wait)
        return self.backoff(attempt)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn`, retrying only RetriableError; the last error is raised once attempts are spent."""

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome is not None else None
            return self.wait_for(error, state.attempt_number)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            retry=tenacity.retry_if_exception_type(RetriableError),
            wait=wait,
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(fn)
