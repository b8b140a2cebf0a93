"""Every file the connector writes under its data directory is private to its user, whatever
the umask: the embedded database and its -wal/-shm 0600, the keystore and spool 0700."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pavilion.config.settings import load_settings
from pavilion.runtime import build_runtime
from pavilion.store.migrate import upgrade
from pavilion.store.private_files import private_dir, private_file, private_sqlite_url


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what a default shell gives: 0644 files, 0755 directories
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("open_umask")
async def test_a_fresh_data_directory_is_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "pavilion-data"
    settings = load_settings(None, data_dir=data_dir)
    private_dir(settings.data_dir)
    await asyncio.to_thread(upgrade, settings.database_migration_url)
    database = data_dir / "pavilion.db"
    rt = build_runtime(settings)
    try:
        await rt.tenancy.create_tenant("files-at-rest")
        await rt.start()
        await rt.stop()
        for suffix in ("-wal", "-shm"):  # open while a connection is
            assert _mode(database.with_name(database.name + suffix)) == 0o600, suffix
    finally:
        await rt.aclose()
    assert _mode(data_dir) == 0o700
    assert _mode(database) == 0o600
    keystore = settings.keystore_dir
    assert keystore is not None
    assert _mode(keystore) == 0o700
    for path in keystore.rglob("*"):
        assert _mode(path) & 0o077 == 0, path
    written = [p for p in data_dir.rglob("*") if p.is_file()]
    assert written
    for path in written:
        assert _mode(path) & 0o077 == 0, path


@pytest.mark.usefixtures("open_umask")
def test_an_existing_database_and_its_companions_are_narrowed(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    for path in (database, tmp_path / "old.db-wal", tmp_path / "old.db-shm"):
        path.write_bytes(b"")
        os.chmod(path, 0o644)
    assert private_sqlite_url(f"sqlite+aiosqlite:///{database}") == database
    assert {_mode(p) for p in tmp_path.iterdir()} == {0o600}
    assert private_sqlite_url("sqlite+aiosqlite:///:memory:") is None
    assert private_sqlite_url("sqlite+aiosqlite:///file:x?mode=memory&uri=true") is None
    assert private_sqlite_url("postgresql+asyncpg://u@h/db") is None
    new = private_sqlite_url(f"sqlite+aiosqlite:///{tmp_path}/fresh/new.db")
    assert new is not None
    assert _mode(new) == 0o600
    assert _mode(new.parent) == 0o700


def test_shared_directories_are_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp
    private_dir(shared)
    assert _mode(shared) == 0o1777
    assert _mode(private_file(shared / "f")) == 0o600
