"""What every connector says alike about a failed HTTP exchange, whatever the client library.

Retry-After parsing, message scrubbing (one line, never the token), showing a url without its query,
walking an exception's chain of causes, and telling a refused certificate or failed handshake (the
request was never sent) from a connection lost after sending. Pure: exception or text in, answer out.
"""

from __future__ import annotations

import base64
import email.utils
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote, quote_plus, urlsplit

_MAX_MESSAGE = 300


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or garbled."""
    if not value:
        return None
    text = value.strip()
    # isdigit alone takes "²" or Arabic-Indic digits, which float() then refuses.
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def secret_forms(secret: str) -> list[str]:
    """The spellings a server may echo a session id in: as is, URL-encoded, and base64 (longest first, so
    a form that contains another is masked whole)."""
    raw = secret.encode("utf-8")
    forms = {secret, quote(secret, safe=""), quote_plus(secret), base64.b64encode(raw).decode("ascii"),
             base64.urlsafe_b64encode(raw).decode("ascii")}
    forms |= {form.rstrip("=") for form in list(forms)}
    return sorted((f for f in forms if f), key=len, reverse=True)


def masked(text: str, secret: str | None = None) -> str:
    """Text as one printable line: the session masked in every form it may be echoed in, control
    characters (a terminal escape in a CRM's error message could repaint the screen) turned into spaces."""
    if secret:
        for form in secret_forms(secret):
            # Case-folded too: a server may echo the session lower-cased (base64 forms stay exact).
            text = re.sub(re.escape(form), "***", text, flags=re.IGNORECASE)
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def one_line(text: str, secret: str | None = None) -> str:
    """CRM text, masked (see `masked`) and cut to a length a terminal line holds."""
    text = masked(text, secret)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def shown_url(url: str | None, secret: str | None = None) -> str:
    """Scheme, host, port and path only: a query or user part may carry a query with personal data, or a
    session id a proxy put there."""
    if not url:
        return "nowhere (no Location header)"
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "an address that is not a valid URL (not shown)"
    if not parts.scheme or not parts.hostname:
        return "an address that is not a valid URL (not shown)"
    return one_line(f"{parts.scheme}://{parts.hostname}{port}{parts.path}", secret)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything it wraps: requests keeps urllib3's error in args, urllib3 its own in `reason`."""
    pending, seen = [exc], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [*current.args, getattr(current, "reason", None), current.__cause__, current.__context__]
        pending.extend(e for e in linked if isinstance(e, BaseException))


_CERTIFICATE_MARKERS = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "SSLCertVerificationError",
                        "hostname")
_HANDSHAKE_MARKERS = (*_CERTIFICATE_MARKERS, "WRONG_VERSION_NUMBER", "handshake", "UNKNOWN_PROTOCOL", "TLSV1_ALERT")


def certificate_refused(exc: BaseException) -> bool:
    """Whether the server's certificate failed verification (untrusted CA, or another host's name)."""
    chain = repr(exc)
    return any(marker in chain for marker in _CERTIFICATE_MARKERS)


def tls_handshake_failed(exc: BaseException) -> bool:
    """Whether a TLS error happened while setting the connection up (so no request was sent)."""
    chain = repr(exc)
    return any(marker in chain for marker in _HANDSHAKE_MARKERS)


__all__ = ["causes", "certificate_refused", "one_line", "parse_retry_after", "shown_url", "tls_handshake_failed"]
