"""Ctrl-C waits for the write in flight: apply's one concession to the admin's impatience.

A Ctrl-C that lands while a write call is on the wire leaves its outcome unknown, and resume then has
no moment to tell crmsweep's write from another admin's later change of the same record (it could
claim theirs, and rollback would undo it). So while a batch is announced, sent and logged, a first
Ctrl-C is held until the batch's result is on disk; a second one interrupts at once, as the admin
insists. Outside that window no write is in flight, so a stop logged there is a true time bound.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


def can_defer() -> bool:
    """Signal handlers can be set from the main thread only (a library caller may run apply elsewhere)."""
    return threading.current_thread() is threading.main_thread()


class InterruptedMidWrite(KeyboardInterrupt):
    """A second Ctrl-C (or stop signal) while a write was on the wire: its outcome is unknown, and the
    stop logged now is no time bound for resume."""


# Ctrl-C, and the polite stops a scheduler, `timeout` or a closed terminal send.
HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def writes_finish_first() -> Iterator[None]:
    """Hold a first Ctrl-C (or SIGTERM, SIGHUP) until the block ends, then raise KeyboardInterrupt; a
    second one raises InterruptedMidWrite at once."""
    if not can_defer():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        if held:
            raise InterruptedMidWrite
        held.append(signum)

    previous = {s: signal.signal(s, hold) for s in HELD_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if held:
        raise KeyboardInterrupt
