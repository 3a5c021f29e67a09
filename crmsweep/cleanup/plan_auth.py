"""Plan authentication: a plan applies only if this crmsweep home wrote it, or its admin accepted it.

The digest (sha256 of the canonical body) is the plan's identity, and anyone who can edit the file
can recompute it. So every plan crmsweep writes also carries a keyed signature, HMAC-SHA256 over
the digest with a secret of this home (`<home>/keys/plan.key`, 32 random bytes, 0600 in a 0700
folder, made on first use). An edited plan, or one written by another home, does not verify; the
admin can still apply it after reviewing it with `crmsweep plan accept`, which signs it here.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shlex
import stat
from enum import StrEnum
from pathlib import Path
from typing import IO

from crmsweep.errors import BadInput, SafetyRefusal
from crmsweep.model import BegunPlanFile, Plan, PlanFile
from crmsweep.paths import Home, fsync_dir, write_private_file

SIGNATURE_SCHEME = "hmac-sha256:"
KEY_FILE = "plan.key"
KEY_BYTES = 32
# What the MAC is computed over besides the digest: a key kept for plans signs nothing else by accident.
_DOMAIN = b"crmsweep.plan-signature/1\n"
_REMAKE = "delete it (a new one is made) and accept your plans again with `crmsweep plan accept`"


class Trust(StrEnum):
    """What a plan file's claims are worth to this home."""

    SIGNED = "signed by this crmsweep home"
    UNSIGNED = "not signed by this crmsweep home (no signature)"
    FOREIGN = "not signed by this crmsweep home (written by another home, or edited after it was written)"
    EDITED = "changed after it was written (its digest does not match its content)"


def key_path(home: Home) -> Path:
    return home.root / "keys" / KEY_FILE


def _read_key(path: Path) -> bytes | None:
    """The key in `path`, None if there is none; refused if it could have been read or swapped by others."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO must not hang it
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BadInput(f"cannot read the plan key {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            raise SafetyRefusal(f"the plan key {path} is not a file of yours: {_REMAKE}")
        if info.st_mode & 0o077:
            raise SafetyRefusal(
                f"the plan key {path} is readable by others (mode {stat.S_IMODE(info.st_mode):04o}), "
                f"so plans signed with it prove nothing: {_REMAKE}"
            )
        key = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_BYTES:
        raise SafetyRefusal(f"the plan key {path} is damaged ({len(key)} bytes, not {KEY_BYTES}): {_REMAKE}")
    return key


def plan_key(home: Home) -> bytes:
    """This home's signing key, made on first use."""
    path = key_path(home)
    key = _read_key(path)
    if key is not None:
        return key
    try:
        folder = home.keys_dir
        temporary = folder / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        write_private_file(temporary, secrets.token_bytes(KEY_BYTES))
        try:
            # link, not rename: of two commands making the key at once, the second keeps the first's key.
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
        fsync_dir(folder)
    except OSError as exc:
        raise BadInput(f"cannot make the plan key {path}: {exc.strerror}") from None
    key = _read_key(path)
    if key is None:  # deleted between our link and our read: nothing sensible to sign with
        raise SafetyRefusal(f"the plan key {path} vanished while it was made: try again")
    return key


def _signature_of(key: bytes, digest: str) -> str:
    mac = hmac.new(key, _DOMAIN + digest.encode("ascii"), hashlib.sha256)
    return SIGNATURE_SCHEME + mac.hexdigest()


def signature_with(key: bytes, plan: Plan) -> str:
    """The signature of `plan` under `key` (over its digest, computed here, never a claimed one)."""
    return _signature_of(key, plan.digest)


def signed_json(plan: Plan, home: Home) -> str:
    """The plan file text, signed by `home`: what every plan crmsweep writes holds."""
    return plan.to_json(signature=signature_with(plan_key(home), plan))


def write_signed(plan: Plan, out: IO[bytes], home: Home, *, begun: BegunPlanFile | None = None) -> None:
    """`signed_json` written to `out` as it is made: the digest is hashed from the text written, so a
    large plan is encoded once and never held whole (the signature is over that computed digest). With
    `begun`, its changes are already in `out` (see `Plan.write_json`)."""
    key = plan_key(home)
    plan.write_json(out, sign=lambda digest: _signature_of(key, digest), begun=begun)


def trust_of(parsed: PlanFile, home: Home) -> Trust:
    """Whether the file's digest is its content's and its signature this home's. Makes no key."""
    if not hmac.compare_digest(parsed.digest, parsed.plan.digest):
        return Trust.EDITED
    if not parsed.signature:
        return Trust.UNSIGNED
    key = _read_key(key_path(home))
    if key is None:
        return Trust.FOREIGN
    expected = signature_with(key, parsed.plan)
    return Trust.SIGNED if hmac.compare_digest(parsed.signature, expected) else Trust.FOREIGN


def accept_command(path: Path | str) -> str:
    return f"crmsweep plan accept {shlex.quote(str(path))}"


def require_signed(parsed: PlanFile, home: Home, *, name: Path | str) -> None:
    """Refuse (SafetyRefusal) a plan this home did not write or whose content changed since."""
    trust = trust_of(parsed, home)
    if trust is Trust.SIGNED:
        return
    if trust is Trust.EDITED:
        raise SafetyRefusal(
            f"plan {name} was changed after it was written (digest mismatch): scan again, "
            f"or review it with `{accept_command(name)}`"
        )
    raise SafetyRefusal(
        f"plan {name} was not written by this crmsweep home, or was edited after it was written: "
        f"review it with `{accept_command(name)}`"
    )
