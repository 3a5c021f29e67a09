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


@contextmanager
def writes_finish_first() -> Iterator[None]:
    """Hold a first Ctrl-C until the block ends, then raise it; a second one is raised at once."""
    if not can_defer():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        if held:
            raise KeyboardInterrupt
        held.append(signum)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt
