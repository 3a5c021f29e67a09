"""Exceptions named by what the caller must do. Imports nothing of ours.

The CLI catches `CrmsweepError` at the edge and prints `str(error)` as one line on stderr, exiting
with `error.exit_code`. So every message here must be a sentence a person can act on, and must
never contain a secret (tokens, session ids, passwords).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_PARTIAL = 1  # done, but some changes failed (or the CRM stopped us)
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3
EXIT_DECLINED = 4  # the admin declined (or mistyped) the confirmation: nothing was written
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


class CrmsweepError(Exception):
    """Base of every error a user may see. `exit_code` is what the CLI exits with."""

    exit_code: int = EXIT_PARTIAL


class BadInput(CrmsweepError):
    """Usage, config, missing or unreadable file, unknown connection, plan for another org."""

    exit_code = EXIT_BAD_INPUT


class UnknownObject(BadInput):
    """The CRM has no object of that name (a backup of optional objects leaves it out)."""


class SafetyRefusal(CrmsweepError):
    """A safety rule refused the operation (digest mismatch, unverified before-images, caps)."""

    exit_code = EXIT_REFUSED


class OverBudget(SafetyRefusal):
    """Refused by the API budget: `details` are its numbers (calls needed, left, the reserve), which a
    `--json` error carries beside the message so a script need not parse it."""

    def __init__(self, message: str, *, details: dict[str, int | str]) -> None:
        super().__init__(message)
        self.details = details


class NeedsResume(SafetyRefusal):
    """Refused until run `run_id` is finished by resuming it (`plan_file`: the plan to resume it with,
    None for the one being applied). `reason` is the message up to the command, so the CLI can add
    one that pastes as is (with the --config and --home it was given)."""

    def __init__(self, reason: str, *, run_id: str, plan_file: str | None, command: str) -> None:
        super().__init__(f"{reason} {command}")
        self.reason = reason
        self.run_id = run_id
        self.plan_file = plan_file


class Interrupted(CrmsweepError):
    """Ctrl-C during a run: its log is consistent (intent before write), and `run_id` can be resumed."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


# --- connector errors: one function per connector maps an HTTP answer to one of these ---------


class ConnectorError(CrmsweepError):
    """The CRM answered in a way we cannot continue from."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        # Set by a connector when no attempt of the call can have been carried out (the CRM refused the
        # whole call up front): apply then logs its writes as not sent, rather than of unknown outcome.
        self.never_ran = False


class RetriableError(ConnectorError):
    """Worth trying again after a pause: 5xx, timeouts, dropped connections, 429."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class LimitExceeded(ConnectorError):
    """The org's API allowance is spent (a 403 REQUEST_LIMIT_EXCEEDED, a 429 of the DAILY policy).

    Not retried: the run stops cleanly and can be resumed once the allowance recovers.
    """


class AuthError(ConnectorError):
    """The credentials were refused (expired or invalid token). Exit code 2: fix the input."""

    exit_code = EXIT_BAD_INPUT


class EndpointError(ConnectorError):
    """The connection's address or trust is wrong: an unknown host, nothing listening at the first call,
    a certificate the connection does not trust. Not retried; exit code 2: fix the url or ca_file."""

    exit_code = EXIT_BAD_INPUT


class ReserveKept(LimitExceeded):
    """The next call would use the share of the daily API allowance kept for other integrations.

    Stops like LimitExceeded (a run stops cleanly and resumes later), but is a safety refusal: exit 3."""

    exit_code = EXIT_REFUSED
