"""A batch of rows written to PostgreSQL in one statement, over the driver's own connections.

On loopback a round trip costs about half a millisecond of CPU (the send, the wake-up, the
poll), so a commit of ten statements cost more than everything else in a verification. Here
a batch is three round trips whatever its size: ``BEGIN`` with the tenant's ``set_config``
(one simple query), one statement of data-modifying CTEs (every table's rows from a
``jsonb_to_recordset`` parameter, every guarded update, the caller's own CTE), ``COMMIT``.

The connections are asyncpg's, kept here without a reset or a liveness ping per use: each
use is one transaction that ends in COMMIT or ROLLBACK, and ``set_config(..., true)`` dies
with it, so nothing carries over from one tenant to the next. A connection that fails is
closed, never reused. Row-level security applies as on every other path (the app role, the
tenant set in the transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import asyncpg
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from pavilion.errors import PavilionError

_UUID = re.compile(r"^[0-9a-fA-F-]{1,64}$")
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class GuardedRows:
    """``UPDATE table SET values WHERE id = row id AND guard = expected``, one per row."""

    table: Table
    guard: str
    columns: tuple[str, ...]
    rows: Sequence[Mapping[str, Any]]  # each: id, the columns, and "_expected"


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):  # bytea's hex input form (a sealed value)
        return "\\x" + value.hex()
    raise TypeError(f"cannot encode {type(value).__name__} for PostgreSQL")


def _json(rows: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps(rows, default=_encode, separators=(",", ":"), ensure_ascii=False)


@cache
def _record_type(table: Table, columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{name}" {table.c[name].type.compile(dialect=_DIALECT)}' for name in columns)


def complete(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """The row with Python-side column defaults filled in (ids, timestamps)."""
    full = dict(row)
    for column in table.columns:
        if column.name not in full and column.default is not None:
            default = column.default
            arg = getattr(default, "arg", None)
            full[column.name] = arg(None) if callable(arg) else arg
    return full


def compose(
    inserts: Mapping[Table, Sequence[Mapping[str, Any]]],
    updates: Sequence[GuardedRows],
    *,
    extra_ctes: Sequence[str] = (),
    extra_selects: Sequence[str] = (),
    first_param: int = 1,
) -> tuple[str, list[str], list[str]]:
    """(statement, its JSON parameters in order, names of the selected update results).

    ``extra_ctes`` and ``extra_selects`` are the caller's own (numbered below
    ``first_param``); every update's result is the array of ids it changed.
    """
    ctes = list(extra_ctes)
    params: list[str] = []
    selects = list(extra_selects)
    names: list[str] = []
    number = first_param
    for position, (table, rows) in enumerate(inserts.items()):
        full = [complete(table, row) for row in rows]
        columns = tuple(sorted(full[0]))
        quoted = ", ".join(f'"{c}"' for c in columns)
        # Identifiers come from our own table metadata; values only ever travel as parameters.
        ctes.append(
            f"ins_{position} AS (INSERT INTO {table.name} ({quoted}) SELECT {quoted} FROM "  # noqa: S608
            f"jsonb_to_recordset(${number}::jsonb) AS r({_record_type(table, columns)}))"
        )
        params.append(_json(full))
        number += 1
    for position, update in enumerate(updates):
        sets = ", ".join(f'"{c}" = r."{c}"' for c in update.columns)
        record = _record_type(update.table, ("id", *update.columns))
        guard_type = update.table.c[update.guard].type.compile(dialect=_DIALECT)
        name = f"upd_{position}"
        ctes.append(
            f"{name} AS (UPDATE {update.table.name} AS t SET {sets} FROM "  # noqa: S608
            f"jsonb_to_recordset(${number}::jsonb) AS r({record}, _expected {guard_type}) "
            f'WHERE t.id = r.id AND t."{update.guard}" = r._expected RETURNING t.id)'
        )
        selects.append(f"(SELECT array_agg(id) FROM {name}) AS {name}")  # noqa: S608
        names.append(name)
        params.append(_json(update.rows))
        number += 1
    statement = f"WITH {', '.join(ctes)} SELECT {', '.join(selects) or '1'}"
    return statement, params, names


class PgConnections:
    """asyncpg connections of the app role for one-statement batches (see the docstring)."""

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        parsed = make_url(url).set(drivername="postgresql")
        self._dsn = parsed.render_as_string(hide_password=False)
        self._idle: list[asyncpg.Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        #: Round trips made (the tests count them).
        self.round_trips = 0

    @asynccontextmanager
    async def transaction(self, tenant_id: str) -> AsyncIterator[asyncpg.Connection]:
        """A transaction of ``tenant_id``: committed when the block ends, else rolled back."""
        if not _UUID.match(tenant_id):  # it is inlined in the first query
            raise PavilionError(f"not a tenant id: {tenant_id!r}")
        async with self._slots:
            connection = self._idle.pop() if self._idle else await asyncpg.connect(self._dsn)
            healthy = False
            try:
                self.round_trips += 1
                await connection.execute(
                    f"BEGIN; SELECT set_config('app.tenant_id', '{tenant_id}', true)"
                )
                try:
                    yield connection
                except BaseException:
                    self.round_trips += 1
                    await connection.execute("ROLLBACK")
                    healthy = True
                    raise
                self.round_trips += 1
                await connection.execute("COMMIT")
                healthy = True
            finally:
                if healthy and not connection.is_closed():
                    self._idle.append(connection)
                else:
                    with contextlib.suppress(Exception):
                        connection.terminate()

    async def fetchrow(self, connection: asyncpg.Connection, statement: str, *args: Any) -> Any:
        self.round_trips += 1
        return await connection.fetchrow(statement, *args)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=5)
