"""The async engine and the one way to open a transaction.

Every unit of work is a transaction opened here. A tenant-scoped transaction sets
``app.tenant_id`` with ``set_config(..., true)`` so that the setting dies with the transaction
and can never leak to the next tenant through a pooled connection (a session-level ``SET``
would). Row-level security policies read it NULL-safely.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final, NoReturn

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from pavilion.errors import (
    ConfigurationError,
    PavilionError,
    StorageError,
    StorageRefusedValue,
    StorageUnavailable,
)
from pavilion.store.private_files import private_sqlite_url

_SET_TENANT = text("SELECT set_config('app.tenant_id', :tenant_id, true)")

#: SQLSTATE classes (and codes) of a database that cannot serve now but may soon: connection
#: exceptions, too many connections or no resources, an administrator's shutdown or a server
#: starting up, a serialization failure or deadlock a retry resolves.
_UNAVAILABLE_SQLSTATES: Final = ("08", "53", "57P", "40001", "40P01", "55P03")
#: SQLite's words for the same (a file it cannot open, a lock held past busy_timeout, I/O).
_SQLITE_UNAVAILABLE: Final = (
    "unable to open database file",
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "database or disk is full",
)


def _classify(exc: BaseException) -> type[PavilionError] | None:
    """Which error of the tree a database failure is: ``StorageRefusedValue`` for a value the
    database cannot hold (SQLSTATE class 22, or a driver that refuses to bind it: an integer
    past 64 bits, a NUL, a lone surrogate), ``StorageUnavailable`` for a database that is
    unreachable or busy, ``StorageError`` for anything else; ``None`` for an integrity error,
    which its caller answers (409, or a replay)."""
    if isinstance(exc, IntegrityError):
        return None
    if isinstance(exc, SQLAlchemyTimeoutError | ConnectionError | TimeoutError | socket.gaierror):
        return StorageUnavailable
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return StorageUnavailable
    orig = getattr(exc, "orig", None) if isinstance(exc, DBAPIError) else exc
    state = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    if state.startswith("22"):
        return StorageRefusedValue
    if state.startswith(_UNAVAILABLE_SQLSTATES):
        return StorageUnavailable
    causes = [orig, getattr(orig, "__cause__", None)]
    if any(isinstance(c, OverflowError | UnicodeEncodeError | ValueError) for c in causes):
        return StorageRefusedValue  # the driver would not bind the value (asyncpg, sqlite3)
    if isinstance(exc, InterfaceError) or isinstance(orig, ConnectionError | TimeoutError):
        return StorageUnavailable
    message = str(orig).lower()
    if isinstance(exc, OperationalError) and message.startswith(_SQLITE_UNAVAILABLE):
        return StorageUnavailable
    return StorageError


_MESSAGES: Final[dict[type[PavilionError], str]] = {
    StorageRefusedValue: "a value in the request cannot be stored (out of range, or text "
    "with a NUL or a lone surrogate)",
    StorageUnavailable: "the database is unavailable; retry shortly",
    StorageError: "the database failed",
}


def _raise_classified(exc: BaseException) -> None:
    """Raise the tree's error for ``exc`` (from it), or return to let it through unchanged."""
    ours = _classify(exc)
    if ours is None:
        return
    cause = type(getattr(exc, "orig", None) or exc).__name__
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    extra = {"cause": cause} | ({"sqlstate": state} if state else {})
    if ours is StorageRefusedValue:
        raise StorageRefusedValue(_MESSAGES[ours], field="body") from exc
    raise ours(f"{_MESSAGES[ours]} ({cause})", extra=extra) from exc


def _on_driver_error(context: ExceptionContext) -> None:
    """SQLAlchemy's ``handle_error`` hook: a driver error raised while a statement runs that
    SQLAlchemy does not wrap (sqlite3's OverflowError for an integer past 64 bits) is
    classified here, where it is known to come from the database and not the caller."""
    original = context.original_exception
    if not isinstance(original, DBAPIError | IntegrityError) and isinstance(
        original, OverflowError | UnicodeEncodeError
    ):
        _raise_classified(original)


def raise_driver_error(exc: Exception) -> NoReturn:
    """Raise the tree's error for a ``sqlite3`` error raised outside SQLAlchemy (the SQLite
    writer thread), as the same error through SQLAlchemy would be: an integrity error as
    SQLAlchemy's ``IntegrityError``, anything else classified (a lock held past the busy
    timeout is ``StorageUnavailable``)."""
    wrapped = DBAPIError.instance(None, None, exc, sqlite3.Error)
    _raise_classified(wrapped)
    raise wrapped from exc


@contextmanager
def _translated() -> Iterator[None]:
    """Database errors leave as the tree's (raised ``from`` the driver's), by :func:`_classify`."""
    try:
        yield
    except (
        DBAPIError,
        SQLAlchemyTimeoutError,
        ConnectionError,
        TimeoutError,
        socket.gaierror,
    ) as exc:
        _raise_classified(exc)
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
    event.listen(engine.sync_engine, "handle_error", _on_driver_error)
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
            event.listen(self.engine.sync_engine, "handle_error", _on_driver_error)
            self._read_engine = self.engine
        else:
            # SQLite has one writer at a time. One writer connection makes writers queue in
            # order inside the process instead of sleeping in SQLite's busy handler (whose
            # backoff starves some of them); readers use their own connections, which WAL
            # lets run beside the writer. The file is made private (0600) before it opens.
            private_sqlite_url(url)
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
