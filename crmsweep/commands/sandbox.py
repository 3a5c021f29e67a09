"""`crmsweep sandbox serve`: the embedded CRM in the foreground, for any client."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from crmsweep import api, providers
from crmsweep.bounds import Bound
from crmsweep.commands.common import ConfigOpt, HomeOpt, JsonOpt, emit_json, err, handle_errors, workspace
from crmsweep.commands.help import App
from crmsweep.config import SandboxSettings, bound_of
from crmsweep.errors import BadInput
from crmsweep.paths import checked_dir, make_private_dirs

_LATENCY_MS = Bound(0, 60_000)
_API_LIMIT = Bound(1, 1_000_000_000)

sandbox_app = App(help="The embedded CRM sandbox.")


def _check_options(provider: str, bounded: Sequence[tuple[str, int | None, Bound]]) -> None:
    """BadInput for a provider crmsweep has no sandbox of, or an option (given: not None) out of its bounds."""
    if provider not in providers.names():
        raise BadInput(f"--provider: unknown provider {provider!r}: use one of {', '.join(providers.names())}")
    for option, value, bound in bounded:
        problem = None if value is None else bound.problem(value)
        if problem:
            raise BadInput(f"{option} {problem}")


@sandbox_app.command("reset")
@handle_errors
def reset(
    provider: Annotated[
        str, typer.Option("--provider", help=f"Which CRM's sandbox: {', '.join(providers.names())}.")
    ] = providers.default().name,
    records: Annotated[
        int | None, typer.Option("--records", help="Contacts to seed (default: [sandbox] records).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default: [sandbox] seed).")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Seed a built-in sandbox afresh and exit: its built-in connection starts from that org next time."""
    _check_options(provider, (("--records", records, bound_of(SandboxSettings, "records")),
                              ("--seed", seed, bound_of(SandboxSettings, "seed"))))
    done = api.reset_sandbox(workspace(config, home), provider, records=records, seed=seed)
    if as_json:
        emit_json({"provider": done.provider, "connection": done.connection, "state_dir": str(done.state_dir),
                   "records": done.records, "seed": done.seed})
        return
    err.print(f"Sandbox ({done.provider}) seeded afresh: {done.records:,} contacts, seed {done.seed}, "
              f"in {done.state_dir}. Connection {done.connection} starts from it.")


@sandbox_app.command("serve")
@handle_errors
def serve(
    provider: Annotated[
        str, typer.Option("--provider", help=f"Which CRM to speak: {', '.join(providers.names())}.")
    ] = providers.default().name,
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0: any free port).", min=0, max=65535)] = 0,
    records: Annotated[int, typer.Option("--records", help="Contacts to seed (others scale from it).")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed for the generated org.")] = 7,
    state: Annotated[
        Path | None, typer.Option("--state", help="State folder (default: the built-in sandbox's, under --home).")
    ] = None,
    faults: Annotated[
        str | None, typer.Option("--faults", help="Inject faults, e.g. '503:0.05,lock:0.02,timeout:0.01'.")
    ] = None,
    latency_ms: Annotated[int, typer.Option("--latency-ms", help="Delay before every answer.")] = 0,
    api_limit: Annotated[int, typer.Option("--api-limit", help="Daily API allowance to enforce.")] = 15000,
    reset: Annotated[bool, typer.Option("--reset", help="Wipe the state and seed a fresh org.")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Serve the sandbox on 127.0.0.1 over HTTPS; print one JSON line (url, ca_file, token) once ready."""
    from crmsweep.sandbox.faults import parse_faults

    _check_options(provider, (("--records", records, bound_of(SandboxSettings, "records")),
                              ("--seed", seed, bound_of(SandboxSettings, "seed")),
                              ("--latency-ms", latency_ms, _LATENCY_MS),
                              ("--api-limit", api_limit, _API_LIMIT)))
    entry = providers.get(provider)
    if faults:
        try:
            parse_faults(faults)
        except ValueError as exc:
            raise BadInput(f"--faults: {exc}") from None
    # A state folder named by hand is created like the home's own: 0700, missing parents included.
    if state is not None:
        state_dir = make_private_dirs(state, "sandbox state folder")
        checked_dir(state_dir, "sandbox state folder")  # a link or another user's folder is refused
    else:
        state_dir = workspace(config, home).home.sandbox_dir(entry.name)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Handlers first, so a signal that comes while the sandbox starts still stops it cleanly.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with entry.start_sandbox(state_dir, port=port, records=records, seed=seed, api_limit=api_limit,
                                 latency_ms=latency_ms, faults=faults, reset=reset) as sandbox:
            info = sandbox.info
            sys.stdout.write(info.to_json_line() + "\n")
            sys.stdout.flush()
            err.print(f"Sandbox ({entry.name}) serving {info.url}; state in {info.state_dir}. Ctrl-C stops it.")
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
