"""`WriteBehind`: a file's pieces written, and hashed, on one worker thread while the caller makes the next.

Writing a large plan is encoding its batches (Python and Arrow) and then, for each, a file write and a
sha256 update of tens of megabytes: both release the GIL, so they run on a worker while the next batch
is encoded, instead of after it. The pieces are written and hashed in the order given; a few at most
wait (`depth`), so memory stays bounded. An error of the worker (a full disk: OSError) is raised to the
caller as it is, at its next `put` or at the end, and nothing more is written after it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import IO

Bytes = bytes | memoryview


class WriteBehind:
    """Use as a context manager: on leaving, every piece put is written (or the first error raised). With
    no `out`, pieces are only hashed."""

    def __init__(self, out: IO[bytes] | None, hash_update: Callable[[Bytes], object] | None = None, *,
                 depth: int = 1) -> None:
        self._out = out
        self._hash_update = hash_update
        self._pending: queue.Queue[tuple[Sequence[Bytes], Bytes | None] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        # Set first thing on leaving, so the worker ends once the queue is empty even if the caller is
        # interrupted (Ctrl-C) before its end marker is queued; `_abandoned` when leaving on an error.
        self._closing = threading.Event()
        self._abandoned = threading.Event()
        self._worker = threading.Thread(target=self._work, name="crmsweep-write-behind", daemon=True)

    def __enter__(self) -> WriteBehind:
        self._worker.start()
        return self

    def put(self, written: Sequence[Bytes], hashed: Bytes | None = None) -> None:
        """Write `written` (in order), then hash `hashed`, after everything put before."""
        self._raise_error()
        self._pending.put((written, hashed))

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is not None:
            self._abandoned.set()  # the file is given up: what is still queued is not written
        self._closing.set()
        # The marker only wakes the worker at once: were a Ctrl-C to land while the queue is full, the worker
        # still sees `_closing` when the queue runs empty and ends by itself.
        self._pending.put(None)
        self._worker.join()
        if kind is None:
            self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        while True:
            try:
                item = self._pending.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if self._closing.is_set():
                    return
                continue
            if item is None:
                return
            if self._error is not None or self._abandoned.is_set():
                continue
            written, hashed = item
            try:
                for piece in written:
                    assert self._out is not None
                    self._out.write(piece)
                if hashed is not None and self._hash_update is not None:
                    self._hash_update(hashed)
            except BaseException as exc:  # handed to the caller's thread, which raises it
                self._error = exc


_POLL_SECONDS = 0.05  # how soon an idle worker notices it is closing without its end marker
