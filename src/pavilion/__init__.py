"""Pavilion DP Connector."""

__version__ = "0.1.0"
