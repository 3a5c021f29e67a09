"""`collector_paused()`: Python's cycle collector held off while a bulk of long-lived objects is made.

The collector runs after every few hundred new container objects and, ever so often, walks every object
alive: making a scan's 300k changes and their before-images with half a million other objects alive cost
a second and a half of such walks at 1M contacts, finding nothing (none of them is garbage). Only for
code that makes objects it keeps, and makes no reference cycles to be collected."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


@contextmanager
def collector_paused() -> Iterator[None]:
    """Within the block the collector does not run; after it, it runs as before (or stays off if it was).

    What the block made is counted as old when the collector runs again: left young, the first collection
    after it walks every one of them, and the next walks them again (0.2 s after a 1M-contact scan, at the
    first allocation of the plan's write), to find none is garbage. `gc.freeze()` then `gc.unfreeze()` move
    every tracked object to the oldest generation at once, which only a full collection walks (any garbage
    cycle among them is still found there, and held until then: a block must make no garbage cycles of size).
    Not done where something froze objects of its own: unfreezing would let those go."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def without_collector(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """`function`, run with the collector paused (`collector_paused`) for each call."""
    @functools.wraps(function)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with collector_paused():
            return function(*args, **kwargs)

    return paused
