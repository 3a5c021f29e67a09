"""RetryPolicy: what is retried, how long it waits, and what finally escapes."""

from __future__ import annotations

import pytest

from crmsweep.connectors.retry import RetryPolicy
from crmsweep.errors import ConnectorError, LimitExceeded, RetriableError


class FailingThen:
    """Raises the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.tries = 0

    def __call__(self) -> str:
        self.tries += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def recording_policy(
    *, attempts: int = 5, initial_wait: float = 1.0, max_wait: float = 60.0, jitter: bool = False
) -> tuple[RetryPolicy, list[float]]:
    waits: list[float] = []
    policy = RetryPolicy(attempts=attempts, initial_wait=initial_wait, max_wait=max_wait, jitter=jitter,
                         sleep=waits.append)
    return policy, waits


def test_retriable_errors_are_retried_with_exponential_waits() -> None:
    policy, waits = recording_policy(attempts=5, initial_wait=1.0, max_wait=60.0, jitter=False)
    fn = FailingThen(RetriableError("503"), RetriableError("503"), RetriableError("503"))
    assert policy.call(fn) == "ok"
    assert fn.tries == 4
    assert waits == [1.0, 2.0, 4.0]


def test_waits_are_capped_at_max_wait() -> None:
    policy, waits = recording_policy(attempts=6, initial_wait=10.0, max_wait=25.0, jitter=False)
    fn = FailingThen(*[RetriableError("x") for _ in range(5)])
    assert policy.call(fn) == "ok"
    assert waits == [10.0, 20.0, 25.0, 25.0, 25.0]


def test_retry_after_wins_and_is_capped() -> None:
    policy, waits = recording_policy(attempts=4, initial_wait=1.0, max_wait=30.0, jitter=False)
    fn = FailingThen(RetriableError("429", retry_after=7), RetriableError("429", retry_after=3600), RetriableError("x"))
    assert policy.call(fn) == "ok"
    assert waits == [7.0, 30.0, 4.0]


def test_last_error_is_raised_after_all_attempts() -> None:
    policy, waits = recording_policy(attempts=3, initial_wait=0.5, jitter=False)
    fn = FailingThen(*[RetriableError(f"try {n}") for n in range(1, 10)])
    with pytest.raises(RetriableError, match="try 3"):
        policy.call(fn)
    assert fn.tries == 3
    assert waits == [0.5, 1.0]


@pytest.mark.parametrize("error", [ConnectorError("bad request"), LimitExceeded("limit"), ValueError("bug")])
def test_other_errors_are_not_retried(error: Exception) -> None:
    policy, waits = recording_policy(attempts=5)
    fn = FailingThen(error)
    with pytest.raises(type(error)):
        policy.call(fn)
    assert fn.tries == 1
    assert waits == []


def test_jitter_stays_between_half_and_full_backoff() -> None:
    policy = RetryPolicy(initial_wait=2.0, max_wait=60.0, jitter=True)
    for attempt, full in [(1, 2.0), (2, 4.0), (3, 8.0), (7, 60.0)]:
        samples = [policy.backoff(attempt) for _ in range(200)]
        assert all(full / 2 <= s <= full for s in samples)
        assert len(set(samples)) > 1


def test_immediate_never_sleeps() -> None:
    policy = RetryPolicy.immediate(attempts=3)
    fn = FailingThen(RetriableError("a"), RetriableError("b"))
    assert policy.call(fn) == "ok"
    assert policy.backoff(4) == 0.0


def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(attempts=0)
