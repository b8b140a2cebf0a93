"""A whole SQLite write transaction in one hand-off to its own thread.

Through SQLAlchemy and aiosqlite every statement is a hand-off from the event loop to the
driver's thread and back (a queue, a future, a wake-up): a verification's ten statements
cost about 5 ms of CPU alone. Here the journal hands a function to one writer thread that
owns its own ``sqlite3`` connection, and the function runs the transaction there (``BEGIN
IMMEDIATE`` ... ``COMMIT``, ``ROLLBACK`` on any error): one hand-off per batch.

Values are converted by the columns' own SQLAlchemy bind processors, so what is stored is
exactly what the ORM would have stored and reads back the same. The connection has the same
pragmas as the engine's (WAL, busy timeout, foreign keys); it is a second writer beside the
engine's, and SQLite's lock (with the busy timeout) orders the two.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url

from pavilion.store.pg_batch import complete

T = TypeVar("T")
_DIALECT = sqlite.dialect()


@cache
def _processors(table: Table, columns: tuple[str, ...]) -> tuple[Callable[[Any], Any] | None, ...]:
    # The dialect's implementation of each type: the generic DateTime has no bind processor
    # (sqlite3's own adapter would then store ``isoformat(" ")`` with its offset), SQLite's
    # DATETIME stores the ORM's "YYYY-MM-DD HH:MM:SS.ffffff".
    return tuple(
        table.c[name].type.dialect_impl(_DIALECT).bind_processor(_DIALECT) for name in columns
    )


def _values(table: Table, columns: tuple[str, ...], row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(
        process(row[name]) if process is not None and row[name] is not None else row[name]
        for name, process in zip(columns, _processors(table, columns), strict=True)
    )


def bound_values(table: Table, values: Mapping[str, Any]) -> tuple[Any, ...]:
    """``values`` as the columns' bind processors store them, in ``values``' order."""
    return _values(table, tuple(values), values)


def insert_rows(
    connection: sqlite3.Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """One ``executemany`` of ``rows`` (Python-side defaults filled in)."""
    full = [complete(table, row) for row in rows]
    columns = tuple(sorted(full[0]))
    marks = ", ".join("?" for _ in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    connection.executemany(
        f"INSERT INTO {table.name} ({names}) VALUES ({marks})",  # noqa: S608 - our own metadata
        [_values(table, columns, row) for row in full],
    )


def update_guarded(
    connection: sqlite3.Connection,
    table: Table,
    *,
    row_id: str,
    guard: str,
    expected: Any,
    values: Mapping[str, Any],
) -> bool:
    """``UPDATE ... WHERE id = row_id AND guard = expected``; whether the row was changed."""
    columns = tuple(sorted(values))
    sets = ", ".join(f'"{c}" = ?' for c in columns)
    cursor = connection.execute(
        f'UPDATE {table.name} SET {sets} WHERE id = ? AND "{guard}" = ?',  # noqa: S608
        (*_values(table, columns, values), row_id, expected),
    )
    return cursor.rowcount == 1


class SqliteWriter:
    def __init__(self, url: str) -> None:
        database = make_url(url).database
        if not database or database == ":memory:":
            raise ValueError("the SQLite writer needs a database file")
        self._path = database
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pavilion-writer")
        self._connection: sqlite3.Connection | None = None
        #: Hand-offs made (the tests count them).
        self.hand_offs = 0
        self._closed = False

    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=NORMAL",
                "PRAGMA foreign_keys=ON",
                "PRAGMA busy_timeout=10000",
            ):
                connection.execute(pragma)
            self._connection = connection
        return self._connection

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        connection = self._open()
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    async def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one write transaction on the writer thread."""
        self.hand_offs += 1
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._transaction, work
        )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True

        def close() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)
