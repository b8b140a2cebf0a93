"""Schema migrations, run as the schema owner; on PostgreSQL they also set up row-level security.

Re-running ``upgrade`` on an embedded SQLite database that is already at every head is
answered from the database's ``alembic_version`` with the standard library alone: Alembic,
SQLAlchemy and the table models (about half a second) are imported only when there is work.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pavilion.store.private_files import private_sqlite_file, private_sqlite_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = "pavilion.store:migrations"


VERSIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_VERSIONS_SQL = "SELECT version_num FROM alembic_version"
#: The tables as SQLAlchemy's inspector lists them on SQLite (without SQLite's own).
_TABLES_SQL = (
    "SELECT name FROM sqlite_master WHERE type = 'table' "
    "AND name NOT LIKE 'sqlite~_%' ESCAPE '~' ORDER BY name"
)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)


def alembic_config(url: str, app_role: str | None = None) -> Config:
    from alembic.config import Config

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
    if revision == "heads":
        current = _sqlite_at_heads(url)
        if current is not None:
            return current
    from alembic import command

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
    from alembic import command

    config = alembic_config(url)
    config.attributes["data_keys"] = data_keys
    command.downgrade(config, revision)


def script_heads() -> frozenset[str] | None:
    """The head revisions of the migration scripts, read from their source text (the
    ``revision`` and ``down_revision`` lines); None when a script does not read as expected."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in VERSIONS.glob("*.py"):
        text = script.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        parents.update(re.findall(r"[\"']([^\"']+)[\"']", down.group(1)))
    return frozenset(revisions - parents) or None


def _sqlite_file(url: str) -> Path | None:
    """The file a plain ``sqlite[+driver]:///path`` URL names (None for anything else)."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("sqlite") or parts.netloc or parts.query or parts.fragment:
        return None
    database = parts.path[1:]
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _sqlite_at_heads(url: str) -> UpgradeReport | None:
    """The report of an upgrade with nothing to do, if ``url`` is a SQLite file already at
    every head; None otherwise (a missing file, another database, a revision behind)."""
    path = _sqlite_file(url)
    if path is None or not path.is_file():
        return None
    heads = script_heads()
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as connection:
            versions = {row[0] for row in connection.execute(_VERSIONS_SQL)}
            tables = [row[0] for row in connection.execute(_TABLES_SQL)]
    except sqlite3.Error:
        return None
    if heads is None or versions != heads:
        return None
    private_sqlite_file(path)  # as the full path would: the embedded database stays private
    return UpgradeReport(
        applied=(), tables=tuple(t for t in tables if t != "alembic_version"), created_tables=()
    )
