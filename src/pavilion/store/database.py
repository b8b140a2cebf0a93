"""The async engine and the one way to open a transaction.

Every unit of work is a transaction opened here. A tenant-scoped transaction sets
``app.tenant_id`` with ``set_config(..., true)`` so that the setting dies with the transaction
and can never leak to the next tenant through a pooled connection (a session-level ``SET``
would). Row-level security policies read it NULL-safely.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final

from sqlalchemy import Connection, event, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from pavilion.errors import ConfigurationError, PavilionError, StorageError

_SET_TENANT = text("SELECT set_config('app.tenant_id', :tenant_id, true)")

#: How a database failure crosses into the exception tree; the first match wins, as in httpx's
#: map of httpcore's exceptions. ``None`` lets the error through unchanged: a unique constraint
#: that a concurrent request won is expected, and its caller answers it (409, or a replay).
_DATABASE_ERRORS: Final[tuple[tuple[type[DBAPIError], type[PavilionError] | None], ...]] = (
    (IntegrityError, None),
    (DBAPIError, StorageError),
)


@contextmanager
def _translated() -> Iterator[None]:
    """Database errors leave as the tree's (``raise ... from`` the driver's), by the table."""
    try:
        yield
    except DBAPIError as exc:
        for library_error, ours in _DATABASE_ERRORS:
            if isinstance(exc, library_error):
                if ours is None:
                    raise
                raise ours(f"database error: {type(exc.orig).__name__}") from exc
        raise


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" hook (below) emit BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin_immediate(conn: Connection) -> None:
    # Take the write lock up front: two deferred transactions that both read and then write
    # would otherwise fail with "database is locked" instead of waiting their turn.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_begin_deferred(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


def _sqlite_engine(url: str, *, writer: bool, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=60)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    event.listen(
        engine.sync_engine, "begin", _sqlite_begin_immediate if writer else _sqlite_begin_deferred
    )
    return engine


class Database:
    """Owns the engine; hands out transactions, tenant-scoped or platform-wide."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_postgres = url.startswith("postgresql")
        if self.is_postgres:
            self.engine: AsyncEngine = create_async_engine(
                url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
            self._read_engine = self.engine
        else:
            # SQLite has one writer at a time. One writer connection makes writers queue in
            # order inside the process instead of sleeping in SQLite's busy handler (whose
            # backoff starves some of them); readers use their own connections, which WAL
            # lets run beside the writer.
            self.engine = _sqlite_engine(url, writer=True, pool_size=1)
            self._read_engine = _sqlite_engine(url, writer=False, pool_size=4)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self._read_engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(
        self, tenant_id: str | None, *, readonly: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """One transaction; commits when the block ends normally, rolls back on any error.

        ``tenant_id=None`` opens a platform transaction: on PostgreSQL row-level security then
        shows no tenant-owned row at all. ``readonly`` transactions must not write; on SQLite
        they run beside the single writer instead of queueing behind it.
        """
        sessions = self._read_sessions if readonly else self._sessions
        with _translated():
            async with sessions() as session, session.begin():
                if self.is_postgres and tenant_id is not None:
                    await session.execute(_SET_TENANT, {"tenant_id": tenant_id})
                yield session

    async def ping(self) -> None:
        async with self._read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def check_role(self, *, allow_bypass: bool) -> None:
        """Refuse to run as a PostgreSQL role for which row-level security does not apply."""
        if not self.is_postgres:
            return
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
                )
            ).one()
        if (row[0] or row[1]) and not allow_bypass:
            raise ConfigurationError(
                "PAVILION_DATABASE_URL connects as a superuser or BYPASSRLS role, so row-level "
                "security would not isolate tenants. Connect as the app role that "
                "`pavilion db upgrade` creates (for example postgresql://pavilion_app@host/db), "
                "or set PAVILION_ALLOW_RLS_BYPASS=true for a single-tenant development setup."
            )

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._read_engine is not self.engine:
            await self._read_engine.dispose()
