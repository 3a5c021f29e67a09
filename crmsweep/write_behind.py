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
        # The worker drains what is queued even after an error, so this never waits on a full queue.
        self._pending.put(None)
        self._worker.join()
        if kind is None:
            self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        while (item := self._pending.get()) is not None:
            if self._error is not None:
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
