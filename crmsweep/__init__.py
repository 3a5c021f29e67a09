"""crmsweep: back up, clean up and restore a CRM; every write is a reviewed Plan."""

__version__ = "0.1.0"
