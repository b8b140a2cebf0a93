"""Scratch files for the plain text of an upload while it is parsed: in memory, never on disk.

``memory_files`` opens an arena; inside it ``memory_file`` makes an anonymous in-memory file
(Linux ``memfd_create``) and returns a path the readers open like any other
(``/proc/self/fd/N``), and ``beside`` gives a derived file (a transcoding, a JSON array as
lines) another one. Closing the arena closes them all, and a process that dies takes them
with it. Where ``memfd_create`` is missing the files go to a private (0700) directory under
the arena's fallback directory as 0600 files, removed when the arena closes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from pavilion.store.private_files import FILE_MODE, private_dir


@dataclass
class _Arena:
    fallback: Path
    fds: list[int] = field(default_factory=list)
    directory: Path | None = None

    def new(self, name: str) -> Path:
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create(name, os.MFD_CLOEXEC)
            self.fds.append(fd)
            return Path(f"/proc/self/fd/{fd}")
        if self.directory is None:
            private_dir(self.fallback)
            self.directory = Path(tempfile.mkdtemp(prefix="scratch-", dir=self.fallback))
        fd, path = tempfile.mkstemp(prefix="plain-", suffix="-" + name, dir=self.directory)
        os.fchmod(fd, FILE_MODE)
        os.close(fd)
        return Path(path)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


_ARENA: ContextVar[_Arena | None] = ContextVar("pavilion_scratch_arena", default=None)


@contextmanager
def memory_files(fallback: Path) -> Iterator[None]:
    """An arena for scratch files (in this thread's context); everything in it goes at exit."""
    arena = _Arena(fallback)
    token = _ARENA.set(arena)
    try:
        yield
    finally:
        _ARENA.reset(token)
        arena.close()


def memory_file(name: str) -> Path:
    """A new, empty scratch file in the open arena."""
    arena = _ARENA.get()
    if arena is None:
        raise RuntimeError("memory_file needs an open memory_files arena")
    return arena.new(name)


def beside(path: Path, suffix: str) -> Path:
    """Where a file derived from ``path`` goes: a scratch file while an arena is open, else
    next to ``path`` (files the caller owns and removes)."""
    arena = _ARENA.get()
    return path.with_suffix(path.suffix + suffix) if arena is None else arena.new(suffix)
