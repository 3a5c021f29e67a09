"""The sandbox's own certificate authority and server certificate, one pair per state folder.

Generated once (trustme) and reused, so a client that trusted `ca.pem` keeps trusting the sandbox
after a restart. Private keys are written 0600.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path  # server certificate followed by the CA chain
    server_key: Path

    def exist(self) -> bool:
        return self.ca_cert.exists() and self.server_cert.exists() and self.server_key.exists()


def tls_files(state_dir: Path) -> TlsFiles:
    return TlsFiles(
        ca_cert=state_dir / "ca.pem",
        server_cert=state_dir / "server.pem",
        server_key=state_dir / "server.key",
    )


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to a file only the owner can read, without a window where it is wider."""
    tmp = path.with_name(path.name + ".tmp")
    # A leftover (or planted) temporary name is removed, never opened: a link there must not make the
    # sandbox's key or token land in, or overwrite, a file elsewhere.
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_tls(state_dir: Path) -> TlsFiles:
    """The state folder's CA and server certificate, generated on first use."""
    files = tls_files(state_dir)
    if files.exist():
        return files
    ca = trustme.CA(organization_name="crmsweep sandbox")
    server = ca.issue_cert("127.0.0.1", "localhost")
    write_private(files.server_key, server.private_key_pem.bytes())
    write_private(files.server_cert, b"".join(pem.bytes() for pem in server.cert_chain_pems))
    # The CA key is not kept: nothing else is ever signed with it, so it cannot leak.
    write_private(files.ca_cert, ca.cert_pem.bytes())
    return files


def server_context(files: TlsFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(files.server_cert), str(files.server_key))
    return context
