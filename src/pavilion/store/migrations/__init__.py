"""Alembic migrations of the schema: env.py runs versions/ over the async engine."""
