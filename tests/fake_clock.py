"""A fake monotonic clock whose sleep moves it: pacing and retry waits in tests cost no real time."""

from __future__ import annotations


class FakeClock:
    def __init__(self, start: float = 5000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
