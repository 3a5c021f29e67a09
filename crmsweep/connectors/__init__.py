"""Connectors: the only code that talks HTTP to a CRM. `open_connector` picks one by provider."""

from __future__ import annotations

from crmsweep.connectors.base import Connection, Connector
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.errors import BadInput

PROVIDERS = ("salesforce", "hubspot")


def open_connector(connection: Connection, *, retry: RetryPolicy | None = None) -> Connector:
    """The connector for `connection.provider`; close it when done."""
    if connection.provider == "salesforce":
        # Imported here so that importing crmsweep.connectors.base stays cheap.
        from crmsweep.connectors.salesforce import SalesforceConnector

        return SalesforceConnector(connection, retry=retry)
    if connection.provider == "hubspot":
        raise BadInput("the HubSpot connector is not built yet")
    raise BadInput(
        f"connection '{connection.name}' has unknown provider {connection.provider!r}: "
        f"use one of {', '.join(PROVIDERS)}"
    )


__all__ = ["Connection", "Connector", "RetryPolicy", "open_connector"]
