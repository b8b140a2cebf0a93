"""Tenants, their API tokens and roles, and their data keys."""
