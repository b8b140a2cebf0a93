"""How database failures enter the exception tree (issue 14, item 1): by SQLSTATE class and
driver error, so that only a database that cannot serve now is a 503."""

from __future__ import annotations

import socket
import sqlite3

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from pavilion.errors import PavilionError, StorageError, StorageRefusedValue, StorageUnavailable
from pavilion.store.database import _classify, _translated


class _DriverError(Exception):
    def __init__(self, sqlstate: str | None, message: str = "driver error") -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _wrapped(sqlstate: str | None, cls: type[DBAPIError] = DBAPIError) -> DBAPIError:
    return cls("SELECT 1", {}, _DriverError(sqlstate))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_wrapped("22021"), StorageRefusedValue),  # character not in repertoire (a NUL)
        (_wrapped("22003"), StorageRefusedValue),  # numeric value out of range
        (_wrapped("08006"), StorageUnavailable),  # connection failure
        (_wrapped("53300"), StorageUnavailable),  # too many connections
        (_wrapped("57P01"), StorageUnavailable),  # administrator shutdown
        (_wrapped("40001"), StorageUnavailable),  # serialization failure
        (_wrapped("40P01"), StorageUnavailable),  # deadlock
        (_wrapped("42501"), StorageError),  # insufficient privilege: a bug, not an outage
        (_wrapped("42P01"), StorageError),  # undefined table
        (_wrapped(None, InterfaceError), StorageUnavailable),  # connection closed
        (
            OperationalError("x", {}, sqlite3.OperationalError("database is locked")),
            StorageUnavailable,
        ),
        (
            OperationalError("x", {}, sqlite3.OperationalError("unable to open database file")),
            StorageUnavailable,
        ),
        (OperationalError("x", {}, sqlite3.OperationalError("no such table: t")), StorageError),
        (ConnectionRefusedError(111, "refused"), StorageUnavailable),
        (socket.gaierror(-2, "unknown host"), StorageUnavailable),
        (PoolTimeout("pool exhausted"), StorageUnavailable),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), StorageRefusedValue),
        (IntegrityError("INSERT", {}, _DriverError("23505")), None),  # the caller answers races
    ],
)
def test_database_failures_are_classified(
    error: BaseException, expected: type[PavilionError] | None
) -> None:
    assert _classify(error) is expected


def test_translated_raises_from_the_driver_error_and_says_when_to_retry() -> None:
    original = _wrapped("08006")
    with pytest.raises(StorageUnavailable) as raised, _translated():
        raise original
    assert raised.value.__cause__ is original
    assert raised.value.retry_after_s > 0
    assert raised.value.extra == {"cause": "_DriverError", "sqlstate": "08006"}


def test_an_integrity_error_passes_through_unchanged() -> None:
    original = IntegrityError("INSERT", {}, _DriverError("23505"))
    with pytest.raises(IntegrityError) as raised, _translated():
        raise original
    assert raised.value is original


def test_a_refused_value_is_a_422_naming_the_body() -> None:
    with pytest.raises(StorageRefusedValue) as raised, _translated():
        raise _wrapped("22021")
    assert raised.value.errors == [{"field": "body", "message": raised.value.detail}]
