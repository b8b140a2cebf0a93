"""Metrics and structured logs. Nothing here ever carries PII."""
