"""Where crmsweep keeps its files: snapshots, runs and the sandbox's state, under one home folder.

The CLI chooses the root (`--home`, env CRMSWEEP_HOME, else `default_home()`); everything else asks a
`Home` for its folder. Folders hold personal data (backups of CRM records), so every folder crmsweep
creates is 0700 whatever the umask, missing parents included (made one by one: `mkdir -p` would leave
them to the umask).

A home, or a folder inside it, that is a symbolic link or belongs to another user is refused
(`SafetyRefusal`, exit 3): whoever controls it could read what we write, or point it elsewhere. A
home that is not a folder, or cannot be written, is bad input (exit 2).
"""

from __future__ import annotations

import fcntl
import os
import secrets
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO

import platformdirs

from crmsweep.errors import BadInput, SafetyRefusal

APP_NAME = "crmsweep"
HOME_ENV = "CRMSWEEP_HOME"
_PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# Ids become folder names: well under the 255 bytes a file system allows, leaving room for suffixes.
MAX_NAME_LENGTH = 200
# What crmsweep keeps at the top of a home. An existing home holding only these is crmsweep's own, so
# it is tightened to 0700; one holding anything else keeps its mode (it may be shared on purpose).
HOME_ENTRIES = ("snapshots", "runs", "sandbox", "demo", "keys", "plans")


def _fail(path: Path, what: str, exc: OSError) -> BadInput:
    return BadInput(f"cannot create {what} {path}: {exc.strerror or exc}")


def _lstat(path: Path, what: str) -> os.stat_result | None:
    """None when nothing is at `path`; BadInput for a path the system cannot even look at (too long...)."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BadInput(f"cannot use {what} {path}: {exc.strerror or exc}") from None


def _check_existing_dir(path: Path, what: str, info: os.stat_result) -> os.stat_result:
    """`info` (the lstat of `path`), if it is a real folder of ours; the one-line refusal otherwise."""
    if stat.S_ISLNK(info.st_mode):
        raise SafetyRefusal(
            f"{what} {path} is a symbolic link: crmsweep keeps personal data only in a real folder; "
            "give the folder itself"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise BadInput(f"{what} {path} is not a folder: give a folder (or a path that does not exist yet)")
    if info.st_uid != os.geteuid():
        raise SafetyRefusal(
            f"{what} {path} belongs to another user (uid {info.st_uid}): use a folder of your own"
        )
    return info


def _make_dir(path: Path, what: str) -> bool:
    """Create one folder 0700; False if it already existed."""
    try:
        path.mkdir(mode=_PRIVATE_DIR_MODE)
    except FileExistsError:
        return False
    except OSError as exc:
        raise _fail(path, what, exc) from None
    # mkdir's mode is filtered by the umask.
    os.chmod(path, _PRIVATE_DIR_MODE)
    return True


def make_private_dirs(path: Path, what: str = "folder") -> Path:
    """Create `path` and each missing parent 0700, one by one; folders that already exist are left as
    they are (they may not be crmsweep's). BadInput if a part of the path is not a folder."""
    missing: list[Path] = []
    probe = path
    while _lstat(probe, what) is None and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        _make_dir(folder, what)
    if not os.path.isdir(path):
        raise BadInput(f"{what} {path} is not a folder: give a folder (or a path that does not exist yet)")
    return path


def _private_child(path: Path, what: str) -> Path:
    """A folder inside the home: created 0700, or checked to be ours and tightened to 0700."""
    if _make_dir(path, what):
        return path
    found = _lstat(path, what)
    if found is None:  # removed again since mkdir saw it
        raise BadInput(f"{what} {path} vanished while crmsweep was opening it: try again")
    info = _check_existing_dir(path, what, found)
    if stat.S_IMODE(info.st_mode) != _PRIVATE_DIR_MODE:
        os.chmod(path, _PRIVATE_DIR_MODE)
    return path


def checked_dir(path: Path, what: str) -> bool:
    """Whether `path` exists as a real folder of ours (a symlink, another user's folder or a file there is
    refused): a run or snapshot folder planted as a link must not lead crmsweep to read or append elsewhere."""
    found = _lstat(path, what)
    if found is None:
        return False
    _check_existing_dir(path, what, found)
    return True


def open_private_file(path: Path) -> int:
    """A new file (never an existing one) readable by the owner only; returns the descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    # The mode given to open() is filtered by the umask.
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return fd


def write_private_file(path: Path, data: bytes) -> None:
    """Create `path` (it must not exist) with `data`, owner-only, and fsync it."""
    with os.fdopen(open_private_file(path), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def replace_private_file(path: Path, data: bytes) -> None:
    """Write `path` atomically: a reader sees the old file or the new one, never half of either."""
    replace_private_file_with(path, lambda handle: handle.write(data))


def replace_private_file_with(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """`replace_private_file` with the content written by `write(handle)` as it is made (a large plan
    need not be held whole); if `write` fails, the old file stays and the half-written one is removed."""
    with PrivateFileDraft(path) as draft:
        write(draft.begin())
        draft.commit()


class PrivateFileDraft:
    """`replace_private_file_with` in two steps, for a file begun before all of its content is known (a plan
    whose changes are written while its scan still runs): `begin()` opens the new file, owner-only, beside
    `path`; `commit()` makes it `path` in one step. Leaving the context without `commit` removes it and leaves
    the old file as it was, and while it is open a SIGTERM or SIGHUP raises instead of ending the process on the
    spot (`_stops_raise`), so a half-written file is not left behind."""

    def __init__(self, path: Path) -> None:
        self._path = path
        # Named for this draft alone (made with O_EXCL): two commands writing the same file at once each put
        # their own whole file in place, the last one winning, and never remove or replace the other's draft.
        self._temporary = path.with_name(f"{_draft_prefix(path)}{secrets.token_hex(4)}{_DRAFT_SUFFIX}")
        self._stack = ExitStack()
        self._handle: IO[bytes] | None = None

    def __enter__(self) -> PrivateFileDraft:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.discard()

    def begin(self) -> IO[bytes]:
        """The new file's handle, opened once."""
        if self._handle is None:
            try:
                self._stack.enter_context(_stops_raise())
                fd = open_private_file(self._temporary)
                self._handle = self._stack.enter_context(os.fdopen(fd, "wb"))
                # Held while the draft lives, and let go of by the system however its process ends: the mark of
                # a draft still being written, which `_remove_abandoned` leaves alone.
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BaseException:
                self.discard()
                raise
            _remove_abandoned(self._path, keep=self._temporary.name)
        return self._handle

    def commit(self) -> None:
        """The file written so far, made durable and put in place of `path`."""
        handle = self.begin()
        try:
            handle.flush()
            os.fsync(handle.fileno())
            # Still locked as it is put in place: an unlocked draft with content is one its writer left behind
            # (`_remove_abandoned`), and this one is not.
            os.replace(self._temporary, self._path)
        except BaseException:
            self.discard()
            raise
        self._handle = None  # in place: nothing left to discard
        with suppress(OSError):  # its content was flushed and fsynced before it was put in place
            self._stack.close()
        fsync_dir(self._path.parent)

    def discard(self) -> None:
        """The new file removed, if begun and not committed. An error closing it (its last buffered bytes not
        written: a full disk) is not raised: the file is given up anyway, and that error would replace the one
        that gave it up (a write's, which the caller reports)."""
        begun, self._handle = self._handle is not None, None
        try:
            self._stack.close()
        except OSError:
            if not begun:
                raise
        finally:
            if begun:
                self._temporary.unlink(missing_ok=True)


_DRAFT_SUFFIX = ".tmp"
# An empty draft this young may be between its creation and its lock: left alone, whoever holds it. One with
# content was locked before its first byte (`PrivateFileDraft.begin`) and keeps the lock until it is in place.
_DRAFT_GRACE_SECONDS = 60.0


def _draft_prefix(path: Path) -> str:
    return f".{path.name}."


def _is_draft_of(path: Path, name: str) -> bool:
    """Whether `name` is a draft `PrivateFileDraft` makes of `path` (".NAME.<8 hex>.tmp", or ".NAME.tmp", the one
    name an older crmsweep used), and nothing else: not ".a.json.<8 hex>.tmp", a draft of the plan `a.json` (a
    writer of `a` must not judge another file's drafts), nor a file of the user's that shares the prefix."""
    prefix = _draft_prefix(path)
    if name == f".{path.name}{_DRAFT_SUFFIX}":
        return True
    if not (name.startswith(prefix) and name.endswith(_DRAFT_SUFFIX)):
        return False
    token = name[len(prefix):-len(_DRAFT_SUFFIX)]
    return len(token) == 8 and all(ch in "0123456789abcdef" for ch in token)


def _remove_abandoned(path: Path, *, keep: str) -> None:
    """Remove the drafts of `path` their writers left behind (a kill -9, a power cut: before-images, personal
    data): ours, locked by no one, since a writer holds its draft's lock until it ends, and not an empty one
    younger than the grace (which may not be locked yet). A draft a killed scan left is gone by the next write,
    however soon it follows.
    A fixed draft name did this by being reused; with a name per draft it is done here. Best effort: a draft
    that cannot be looked at is left."""
    try:
        names = [n for n in os.listdir(path.parent) if _is_draft_of(path, n) and n != keep]
    except OSError:
        return
    for name in names:
        draft = path.parent / name
        try:
            fd = os.open(draft, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            info = os.fstat(fd)
            if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid()
                    or (info.st_size == 0 and time.time() - info.st_mtime < _DRAFT_GRACE_SECONDS)):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: its writer is still at work
                continue
            draft.unlink(missing_ok=True)
        except OSError:
            continue
        finally:
            os.close(fd)


@contextmanager
def _stops_raise() -> Iterator[None]:
    """While a private file is written, a SIGTERM or SIGHUP (a scheduler's `timeout`, a closed terminal) left to
    its default, which ends the process on the spot, raises KeyboardInterrupt instead: the half-written file
    (a plan's before-images: personal data) is then removed, not left behind. A handler someone else set (apply
    holds a stop until its write in flight is logged) is left as it is, and so is a caller off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    changed = {s: signal.signal(s, stop) for s, handler in previous.items() if handler == signal.SIG_DFL}
    try:
        yield
    finally:
        for s, handler in changed.items():
            signal.signal(s, handler)


def fsync_dir(path: Path) -> None:
    """Make a new or renamed entry in `path` durable (a file's own fsync does not cover its name)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def expand_user(path: Path, what: str) -> Path:
    """`~` and `~user` expanded; BadInput (not a RuntimeError traceback) for a user that does not exist."""
    try:
        return path.expanduser()
    except RuntimeError:
        raise BadInput(f"{what} {path}: there is no such user to expand {str(path).split('/')[0]!r} for") from None


def path_from_env(name: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """The path in environment variable `name`; None when unset. Set but empty is an error, not a
    silent fallback to the default (a script that meant to set it would otherwise use another file)."""
    env = os.environ if environ is None else environ
    if name not in env:
        return None
    value = env[name]
    if not value.strip():
        raise BadInput(f"environment variable {name} is set but empty: unset it to use the default, or name a path")
    return expand_user(Path(value), f"environment variable {name}:")


def blank_checked(path: Path, env_name: str) -> Path:
    """`path`, unless it is only blanks: the CLI passes an environment variable's value on as an option,
    and a folder named "   " is never what was meant."""
    if not str(path).strip():
        raise BadInput(
            f"the path given (option or environment variable {env_name}) is empty: "
            "unset the variable to use the default, or name a path"
        )
    return path


@dataclass(frozen=True)
class Home:
    root: Path

    def validate(self) -> os.stat_result | None:
        """Refuse a home that cannot work, creating nothing (a command may never need the folder);
        the root's lstat, or None if it does not exist yet."""
        root = self.root
        found = _lstat(root, "home folder")
        if found is None:
            ancestor = root.parent
            while (above := _lstat(ancestor, "home folder")) is None and ancestor != ancestor.parent:
                ancestor = ancestor.parent
            if above is not None and not os.path.isdir(ancestor):
                raise BadInput(f"home folder {root} cannot be created: {ancestor} is not a folder")
            return None
        _check_existing_dir(root, "home folder", found)
        if not os.access(root, os.W_OK | os.X_OK):
            raise BadInput(f"home folder {root} cannot be written: give a folder you can write with --home")
        return found

    def check(self) -> Path:
        """The root, created 0700 (with its missing parents) or checked to be a private folder of ours."""
        info = self.validate()
        if info is None:
            return make_private_dirs(self.root, "home folder")
        if stat.S_IMODE(info.st_mode) != _PRIVATE_DIR_MODE and self._only_ours():
            os.chmod(self.root, _PRIVATE_DIR_MODE)
        return self.root

    def _only_ours(self) -> bool:
        try:
            return all(entry.name in HOME_ENTRIES for entry in os.scandir(self.root))
        except OSError:
            return False

    def keeps(self, path: Path) -> bool:
        """Whether `path` lies in a folder where this home keeps its records (runs, snapshots, keys): written
        only by crmsweep's own code for them, never as the output of a command (`-o runs/RUN/plan.json` would
        replace the plan a run applied, which its rollback reads)."""
        try:
            where = path.resolve()
            root = self.root.resolve()
        except OSError:
            return False
        return any(where.is_relative_to(root / name) for name in ("runs", "snapshots", "keys"))

    def folder(self, *parts: str) -> Path:
        """A folder inside the home, each level created 0700 or checked (no symlinks, no foreign owner)."""
        path = self.check()
        for part in parts:
            path = _private_child(path / part, "folder")
        return path

    @property
    def snapshots_dir(self) -> Path:
        return self.folder("snapshots")

    @property
    def runs_dir(self) -> Path:
        return self.folder("runs")

    @property
    def keys_dir(self) -> Path:
        """Secrets of this home (the plan-signing key): never copied with a plan or a snapshot."""
        return self.folder("keys")

    def sandbox_dir(self, provider: str) -> Path:
        if not provider or "/" in provider or provider.startswith("."):
            raise ValueError(f"not a provider name: {provider!r}")
        return self.folder("sandbox", provider)


def default_home() -> Home:
    """The per-user data folder (e.g. ~/.local/share/crmsweep on Linux)."""
    return Home(Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)))
