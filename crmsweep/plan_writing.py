"""Writing a plan file: `write_plan`, and `PlanDraft`, which begins it while its scan still runs.

A scan's changes are final once its last proposing pass ends, but a report-only pass (duplicates) may still
be running beside it then, and only the header waits for it: its findings and notes go there. The plan file
holds the changes before the header (see `Plan.write_json`), so the scan's thread, which would sit idle
until that pass ends, writes them meanwhile (most of writing a large plan), and the header, digest and
signature follow once the scan is done.

The draft is the plan's own new file (`PrivateFileDraft`: owner-only, beside the plan, put in its place in
one step), so nothing is written twice; it is removed if the scan fails or is stopped. Beginning it is a
help, never a condition: where it cannot be begun (a full disk), the plan is written whole at the end, as
without it, and that write says what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from crmsweep.cleanup.plan_auth import write_signed
from crmsweep.errors import BadInput
from crmsweep.model import BegunPlanFile, Change, Plan, begin_plan_file
from crmsweep.paths import Home, PrivateFileDraft, make_private_dirs, replace_private_file_with


def write_plan(plan: Plan, output: Path, home: Home) -> None:
    """Write atomically and privately (a plan holds before-images: personal data), signed by `home`."""
    try:
        make_private_dirs(output.parent, "plan folder")
        replace_private_file_with(output, lambda handle: write_signed(plan, handle, home))
    except OSError as exc:
        raise _cannot_write(output, exc) from exc


class PlanDraft:
    """The plan to `output`, begun by `begin` (a scan's `while_waiting`) and written by `write`. Use as a
    context manager around both: a draft not written is removed on leaving."""

    def __init__(self, output: Path, home: Home) -> None:
        self._output = output
        self._home = home
        self._draft: PrivateFileDraft | None = None
        self._begun: BegunPlanFile | None = None

    def __enter__(self) -> PlanDraft:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._discard()

    def begin(self, changes: Sequence[Change]) -> None:
        """Write the plan file's changes now, ahead of its header."""
        self._discard()
        if not self._output.parent.is_dir():
            return  # not made for a scan that may yet fail: `write` makes it, once the plan is whole
        draft = PrivateFileDraft(self._output)
        try:
            begun = begin_plan_file(draft.begin(), changes)
        except OSError:
            draft.discard()
            return
        except BaseException:  # a Ctrl-C or SIGTERM while the changes are written: no draft left behind
            draft.discard()
            raise
        self._draft, self._begun = draft, begun

    def write(self, plan: Plan) -> None:
        """Write `plan`: its header after the changes begun, when they are its very changes; else all of it."""
        draft, begun = self._draft, self._begun
        if draft is None or begun is None or not begun.holds(plan.changes):
            self._discard()
            write_plan(plan, self._output, self._home)
            return
        try:
            write_signed(plan, draft.begin(), self._home, begun=begun)
            draft.commit()
        except OSError as exc:
            raise _cannot_write(self._output, exc) from exc
        finally:
            self._discard()

    def _discard(self) -> None:
        draft, self._draft, self._begun = self._draft, None, None
        if draft is not None:
            draft.discard()


def _cannot_write(output: Path, exc: OSError) -> BadInput:
    return BadInput(f"cannot write the plan to {output}: {exc.strerror}")
