"""Connectors: the only code that talks HTTP to a CRM. `open_connector` asks the provider registry."""

from __future__ import annotations

from crmsweep.connectors.base import Connection, Connector, RecordFilter
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.errors import BadInput


def open_connector(connection: Connection, *, retry: RetryPolicy | None = None) -> Connector:
    """The connector for `connection.provider`; close it when done."""
    # Imported here: the registry's type hints import this package.
    from crmsweep import providers

    if connection.provider not in providers.names():
        raise BadInput(
            f"connection '{connection.name}' has unknown provider {connection.provider!r}: "
            f"use one of {', '.join(providers.names())}"
        )
    return providers.get(connection.provider).connect(connection, retry)


__all__ = ["Connection", "Connector", "RecordFilter", "RetryPolicy", "open_connector"]
