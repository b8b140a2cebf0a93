"""Files and directories private to the connector's user: directories 0700, files 0600.

Everything the connector writes that may hold personal data or secrets (the embedded
database and its ``-wal``/``-shm`` companions, the keystore, spooled uploads, lineage files)
goes through these helpers. The modes are set explicitly, whatever the process's umask.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600
#: What SQLite adds beside a database file (it creates them with the database file's mode).
SQLITE_COMPANIONS: Final = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents, 0700) if needed and make it 0700.

    A directory that exists already is narrowed only when it is this user's and not a shared
    one (a sticky directory such as ``/tmp`` is left alone)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    for created in missing:
        os.chmod(created, DIR_MODE)  # mkdir's mode is filtered by the umask
    info = path.stat()
    if info.st_uid == os.getuid() and not info.st_mode & stat.S_ISVTX:
        os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty if it does not exist, and make it 0600 either way."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def private_sqlite_file(path: Path) -> Path:
    """The embedded database: the file and any companions 0600 (its directory, made 0700 when
    missing; an existing one is the data directory's business, or the operator's).

    SQLite creates ``-wal`` and ``-shm`` with the database file's own mode, so a private
    database file keeps them private too; companions left by an older version are fixed here.
    """
    if not path.parent.exists():
        private_dir(path.parent)
    private_file(path)
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            os.chmod(companion, FILE_MODE)
    return path


def private_sqlite_url(url: str) -> Path | None:
    """``private_sqlite_file`` for the file a SQLite URL names (None: not a SQLite file)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database
    if not parsed.drivername.startswith("sqlite") or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # a URI filename: SQLite decides where it lives
        return None
    return private_sqlite_file(Path(database))
