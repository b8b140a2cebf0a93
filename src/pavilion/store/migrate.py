"""Schema migrations, run as the schema owner; on PostgreSQL they also set up row-level security."""

from __future__ import annotations

from urllib.parse import urlsplit

from alembic import command
from alembic.config import Config

MIGRATIONS = "pavilion.store:migrations"


def alembic_config(url: str, app_role: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["app_role"] = app_role
    return config


def app_role_for(app_url: str, migration_url: str) -> str | None:
    """The role row-level security applies to: the app's user when it differs from the owner."""
    app_user = urlsplit(app_url).username
    owner = urlsplit(migration_url).username
    return app_user if app_user and app_user != owner else None


def upgrade(url: str, app_role: str | None = None, revision: str = "heads") -> None:
    """Bring the schema to ``revision``. Safe to run again: applied revisions are skipped.

    Domains add revisions on branches of their own, so the default target is every head.
    Call it from synchronous code: the Alembic environment runs its own event loop.
    """
    command.upgrade(alembic_config(url, app_role), revision)
