"""Fault injection for tests of retries: which requests fail, how, and how often. Provider-neutral.

A rule fires either a fixed number of times (`times`) or with a probability (`rate`, drawn from a
seeded generator so a run is repeatable). Rules apply only to requests that carry the sandbox's
token. The core carries out `timeout`, `drop` and `drop_after`; every other kind is answered by the provider API
in its own error shape (`ProviderApi.render_fault`). Kinds:

- status: answer `status` (5xx; 429 answers with Retry-After)
- timeout: sleep `delay` seconds, then answer normally (a client with a shorter timeout gives up)
- drop: close the connection without answering
- drop_after (or any kind with `after`): serve the request (its writes happen), then close the connection
  without answering (or answer the fault): a write whose outcome the client cannot know
- limit: the daily API allowance is spent
- expired: the session has expired
- job_failed: the Bulk API job named in the path ends in the state Failed, then the request is answered
- lock: in batch writes, records fail as locked rows (`ids` picks them; `times` then counts per id;
  `message`, if set, replaces the platform's text, as a trigger's would)
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

KINDS = ("status", "timeout", "drop", "drop_after", "limit", "expired", "lock", "job_failed")
DEFAULT_TIMEOUT_DELAY = 10.0
LOCK_MESSAGE = "unable to obtain exclusive access to this record"


@dataclass(frozen=True)
class FaultRule:
    kind: str
    method: str | None = None
    path: str | None = None  # regular expression, searched in the request path
    status: int = 503
    times: int | None = None
    rate: float = 1.0
    delay: float = DEFAULT_TIMEOUT_DELAY
    ids: tuple[str, ...] = ()
    message: str | None = None
    after: bool = False  # fire once the request was carried out, instead of in its place

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate {self.rate} is not a probability between 0 and 1")
        if self.after and self.kind not in ("drop", "status"):
            raise ValueError(f"a {self.kind} fault cannot come after the request: only drop and status can")
        if self.path is not None:
            try:
                re.compile(self.path)
            except re.error as exc:
                raise ValueError(f"fault path {self.path!r} is not a valid regular expression: {exc}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        known = {"kind", "method", "path", "status", "times", "rate", "delay", "ids", "message", "after"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault rule key(s): {', '.join(unknown)}")
        if "kind" not in data:
            raise ValueError("a fault rule needs a 'kind'")
        try:
            return cls(
                kind=str(data["kind"]),
                method=str(data["method"]).upper() if data.get("method") else None,
                path=str(data["path"]) if data.get("path") else None,
                status=int(data.get("status", 503)),
                times=int(data["times"]) if data.get("times") is not None else None,
                rate=float(data.get("rate", 1.0)),
                delay=float(data.get("delay", DEFAULT_TIMEOUT_DELAY)),
                ids=tuple(str(i) for i in data.get("ids", ())),
                message=str(data["message"]) if data.get("message") is not None else None,
                after=bool(data.get("after", False)),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad fault rule {dict(data)!r}: {exc}") from None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return self.path is None or re.search(self.path, path) is not None


def parse_faults(text: str) -> list[FaultRule]:
    """Parse the CLI form "503:0.05,lock:0.02,timeout:0.01" (kind or HTTP status, then a rate)."""
    rules = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, rate_text = part.partition(":")
        try:
            rate = float(rate_text) if sep else 1.0
        except ValueError:
            raise ValueError(f"fault {part!r}: {rate_text!r} is not a rate between 0 and 1") from None
        name = name.strip().lower()
        if name.isdigit():
            rules.append(FaultRule(kind="status", status=int(name), rate=rate))
        elif name in KINDS:
            rules.append(FaultRule(kind=name, rate=rate))
        else:
            raise ValueError(f"fault {part!r}: use an HTTP status or one of {', '.join(KINDS)}, e.g. '503:0.05'")
    return rules


@dataclass
class _Armed:
    rule: FaultRule
    fired: int = 0
    fired_by_id: dict[str, int] = field(default_factory=dict)


class FaultInjector:
    """The rules in force and how often each has fired. Thread-safe."""

    def __init__(self, rules: Sequence[FaultRule] = (), *, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._armed = [_Armed(r) for r in rules]
        self.injected = 0

    def replace(self, rules: Sequence[FaultRule]) -> None:
        with self._lock:
            self._armed = [_Armed(r) for r in rules]

    def reset_count(self) -> None:
        with self._lock:
            self.injected = 0

    def _fires(self, armed: _Armed, count: int) -> bool:
        if armed.rule.times is not None and count >= armed.rule.times:
            return False
        return armed.rule.rate >= 1.0 or self._random.random() < armed.rule.rate

    def request_fault(self, method: str, path: str) -> FaultRule | None:
        """The request-level fault to inject for this request, if any (lock rules are per record)."""
        with self._lock:
            for armed in self._armed:
                if armed.rule.kind == "lock" or not armed.rule.matches(method, path):
                    continue
                if self._fires(armed, armed.fired):
                    armed.fired += 1
                    self.injected += 1
                    return armed.rule
        return None

    def locked(
        self, method: str, path: str, record_id: str | None, *, canonical: Callable[[str], str] = str
    ) -> str | None:
        """The message this record of a batch write fails with as a locked row, or None.

        `canonical` maps a rule's ids to the form `record_id` has (the provider knows its ids:
        Salesforce's 15- and 18-character forms are one record)."""
        with self._lock:
            for armed in self._armed:
                rule = armed.rule
                if rule.kind != "lock" or not rule.matches(method, path):
                    continue
                if rule.ids:
                    wanted = {canonical(i) for i in rule.ids}
                    if record_id is None or record_id not in wanted:
                        continue
                    count = armed.fired_by_id.get(record_id, 0)
                    if self._fires(armed, count):
                        armed.fired_by_id[record_id] = count + 1
                        self.injected += 1
                        return rule.message or LOCK_MESSAGE
                elif self._fires(armed, armed.fired):
                    armed.fired += 1
                    self.injected += 1
                    return rule.message or LOCK_MESSAGE
        return None
