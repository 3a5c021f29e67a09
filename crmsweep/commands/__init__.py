"""CLI command groups: each module parses options, calls one `crmsweep.api` function, renders."""
