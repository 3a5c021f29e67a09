"""Session ids a provider's sign-in endpoint issues, beside the state folder's own token. Provider-neutral.

The core accepts either on every API request (`SandboxCore.is_session`); only the state folder's token
opens the admin endpoints. Sessions live in memory, as a real CRM's do in its session store: a
restarted sandbox has forgotten them, and so has one told to expire them (`expire`), which is how
tests drive a client's re-authentication mid-run.
"""

from __future__ import annotations

import hmac
import secrets
import threading


class IssuedSessions:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[str] = set()
        # Requests the live sessions still answer before all of them expire (None: no expiry armed).
        self._countdown: int | None = None
        self._issued: list[str] = []  # every one, expired too: tests look for them in what a run wrote

    def issue(self, prefix: str = "") -> str:
        """A new session id (`prefix` + "!" + random, the shape Salesforce's have: org id first)."""
        token = f"{prefix}!{secrets.token_urlsafe(40)}" if prefix else secrets.token_urlsafe(40)
        with self._lock:
            self._live.add(token)
            self._issued.append(token)
        return token

    def check(self, value: str | None) -> bool:
        """Whether `value` is a live session; each use counts down an armed expiry."""
        if not value:
            return False
        with self._lock:
            # Constant time per comparison, like the core's check of its own token.
            found = any(hmac.compare_digest(value.encode(), live.encode()) for live in self._live)
            if not found:
                return False
            if self._countdown is not None:
                if self._countdown <= 0:
                    self._live.clear()
                    self._countdown = None
                    return False
                self._countdown -= 1
            return True

    def expire(self, after: int = 0) -> None:
        """Every live session expires once `after` more requests have used one (0: now); a session
        issued after the countdown fired is not touched by it."""
        with self._lock:
            if after <= 0:
                self._live.clear()
                self._countdown = None
            else:
                self._countdown = after

    def issued(self) -> list[str]:
        """Every session id issued, live or expired, oldest first."""
        with self._lock:
            return list(self._issued)
