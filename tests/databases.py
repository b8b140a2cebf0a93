"""Migrated test databases, fast: migrate once, then clone for every test.

Migrating a fresh database per test was most of the suite's time. Instead:

* PostgreSQL: the first test of a session migrates a *template* database, named by a hash of
  the migration files (so checkouts with other migrations never share one), under an advisory
  lock (so two pytest-xdist workers do not both build it), published by a rename (so a half
  built one is never used) and closed to connections (``CREATE DATABASE ... TEMPLATE`` needs a
  template nobody is connected to). Each test gets a ``CREATE DATABASE t TEMPLATE tpl`` of its
  own (tables, row-level security policies and the app role's grants come along), made ahead
  and dropped behind on a thread so that the test waits for neither.
* SQLite: each process migrates one file and copies it for every test.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import hashlib
import os
import queue
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

import pavilion.store
from pavilion.store.migrate import upgrade

PG_HOST = os.environ.get("PAVILION_TEST_PG_HOST", "127.0.0.1")
PG_ADMIN = f"postgresql://postgres@{PG_HOST}:5432"
APP_ROLE = "pavilion_app"
SQLITE_FILE = "pavilion.db"  # where Settings puts the embedded database in its data_dir
_LOCK_KEY = 0x70617669  # "pavi": serialises template builds across processes


class DatabaseUnavailable(Exception):
    """PostgreSQL cannot be reached: the caller skips, or fails when services are required."""


def migrations_digest() -> str:
    """A short hash of everything that shapes the migrated schema."""
    store = Path(pavilion.store.__file__).parent
    digest = hashlib.sha256()
    for path in sorted([*store.joinpath("migrations").rglob("*.py"), store / "rls.py"]):
        digest.update(path.relative_to(store).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# --- PostgreSQL -------------------------------------------------------------------------------


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _admin_connection() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(f"{PG_ADMIN}/test", timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(
            f"PostgreSQL is not reachable on {PG_HOST}:5432 ({exc}); start it to run these"
        ) from exc


async def _ensure_template() -> str:
    template = f"pavilion_tpl_{migrations_digest()}"
    conn = await _admin_connection()
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", template)
        if not exists:
            building = f"{template}_building"
            # A build that died half way left this behind; we hold the lock, so it is stale.
            await conn.execute(_drop(building))
            await conn.execute(f"CREATE DATABASE {_quote(building)}")
            # Alembic runs its own event loop: give it a thread of its own.
            owner_url = f"postgresql+asyncpg://postgres@{PG_HOST}:5432/{building}"
            await asyncio.to_thread(upgrade, owner_url, APP_ROLE)
            await conn.execute(f"ALTER DATABASE {_quote(building)} RENAME TO {_quote(template)}")
            await conn.execute(
                f"ALTER DATABASE {_quote(template)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"
            )
        return template
    finally:
        await conn.close()  # releases the advisory lock too


@functools.cache
def postgres_template() -> str:
    """The migrated template's name, built on first use (DatabaseUnavailable without PG)."""
    return asyncio.run(_ensure_template())


class _Clones:
    """Clones of the template made one ahead and dropped behind, on a thread of their own.

    ``CREATE DATABASE`` copies the template and ``DROP DATABASE`` waits for a checkpoint: a
    second or more each on a busy machine. Done here, over one admin connection, neither
    lies on a test's path.
    """

    def __init__(self, template: str) -> None:
        self._template = template
        self._jobs: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._jobs.put(("create", self._new_name()))

    @staticmethod
    def _new_name() -> str:
        return f"pavilion_t_{secrets.token_hex(6)}"

    def take(self) -> str:
        """A fresh migrated database (and the next one ordered)."""
        self._jobs.put(("create", self._new_name()))
        ready = self._ready.get(timeout=300)
        if isinstance(ready, BaseException):
            raise ready
        return ready

    def give_back(self, name: str) -> None:
        self._jobs.put(("drop", name))

    def close(self) -> None:
        """Drop what is left (the clone made ahead included) and stop the thread."""
        self._jobs.put(None)
        self._thread.join(timeout=120)

    def _serve(self) -> None:
        # Its own loop and plain blocking queues: at interpreter exit (when close() runs)
        # asyncio's default executor no longer takes work.
        loop = asyncio.new_event_loop()
        made: set[str] = set()
        try:
            conn = loop.run_until_complete(_admin_connection())
        except DatabaseUnavailable as exc:
            self._ready.put(exc)
            loop.close()
            return
        try:
            while (job := self._jobs.get()) is not None:
                kind, name = job
                try:
                    if kind == "create":
                        loop.run_until_complete(
                            conn.execute(
                                f"CREATE DATABASE {_quote(name)} TEMPLATE {_quote(self._template)}"
                            )
                        )
                        made.add(name)
                        self._ready.put(name)
                    else:
                        loop.run_until_complete(conn.execute(_drop(name)))
                        made.discard(name)
                except (OSError, asyncpg.PostgresError) as exc:
                    if kind == "create":
                        self._ready.put(exc)
            for name in made:
                loop.run_until_complete(conn.execute(_drop(name)))
        finally:
            loop.run_until_complete(conn.close())
            loop.close()


def _drop(name: str) -> str:
    return f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)"


@functools.cache
def _clones() -> _Clones:
    clones = _Clones(postgres_template())
    atexit.register(clones.close)
    return clones


@contextmanager
def postgres_database() -> Iterator[tuple[str, str]]:
    """A migrated database of its own: (app URL as the non-owner role, owner URL)."""
    clones = _clones()
    name = clones.take()
    try:
        yield f"postgresql://{APP_ROLE}@{PG_HOST}:5432/{name}", f"{PG_ADMIN}/{name}"
    finally:
        clones.give_back(name)


# --- SQLite -----------------------------------------------------------------------------------


@functools.cache
def _sqlite_template_file() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="pavilion-sqlite-template-"))
    atexit.register(shutil.rmtree, directory, True)
    path = directory / SQLITE_FILE
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def sqlite_database(data_dir: Path) -> Path:
    """A migrated SQLite database where Settings(data_dir=...) looks for it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / SQLITE_FILE
    shutil.copyfile(_sqlite_template_file(), target)
    return target
