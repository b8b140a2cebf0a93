"""Pavilion DP Connector."""

__version__ = "0.2.0"
