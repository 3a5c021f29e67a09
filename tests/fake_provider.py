"""Providers that tests register at run time, each through a one-line module in the providers package
(see tests/test_providers.py): the module reads its entry from here."""

from __future__ import annotations

from crmsweep.providers import Provider

UNDER_TEST: dict[str, Provider] = {}
