"""Schema migrations, run as the schema owner; on PostgreSQL they also set up row-level security."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from alembic import command
from alembic.config import Config

from pavilion.store.private_files import private_sqlite_url

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


def describe_database(url: str) -> str:
    """Where ``url`` points, for people, without its password: ``SQLite file /x/pavilion.db``
    or ``postgresql database pavilion on db:5432 as pavilion_app``."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return f"SQLite file {parts.path[1:] if parts.path.startswith('//') else parts.path}"
    where = parts.hostname or "localhost"
    if parts.port is not None:
        where += f":{parts.port}"
    described = f"{parts.scheme.split('+')[0]} database {parts.path.lstrip('/')} on {where}"
    return described + (f" as {parts.username}" if parts.username else "")


@dataclass(frozen=True)
class UpgradeReport:
    """What one ``upgrade`` did: the revisions it applied (id, description), in order, and
    the tables that exist now and that it created."""

    applied: tuple[tuple[str, str], ...]
    tables: tuple[str, ...]
    created_tables: tuple[str, ...]


#: How a migration that seals existing rows gets a tenant's data key:
#: (tenant id, key-encryption key id, wrapped data key) -> data key.
DataKeys = Callable[[str, str, bytes], bytes]


def upgrade(
    url: str,
    app_role: str | None = None,
    revision: str = "heads",
    *,
    data_keys: DataKeys | None = None,
) -> UpgradeReport:
    """Bring the schema to ``revision``. Safe to run again: applied revisions are skipped.

    Domains add revisions on branches of their own, so the default target is every head.
    Call it from synchronous code: the Alembic environment runs its own event loop.
    """
    private_sqlite_url(url)  # the embedded database is created private (0600)
    config = alembic_config(url, app_role)
    config.attributes["data_keys"] = data_keys
    report: dict[str, Any] = {}
    config.attributes["report"] = report
    command.upgrade(config, revision)
    before = set(report.get("tables_before", ()))
    after = tuple(report.get("tables_after", ()))
    return UpgradeReport(
        applied=tuple(report.get("applied", ())),
        tables=after,
        created_tables=tuple(t for t in after if t not in before),
    )


def downgrade(url: str, revision: str, *, data_keys: DataKeys | None = None) -> None:
    """Take the schema back to ``revision`` (tests, and an operator undoing an upgrade)."""
    config = alembic_config(url)
    config.attributes["data_keys"] = data_keys
    command.downgrade(config, revision)
