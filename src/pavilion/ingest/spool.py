"""A streamed upload spooled to disk encrypted, under a size limit (the I/O edge of a push).

The body is never held in memory whole, nor written in clear: each chunk is hashed (SHA-256,
and the detached JWS signing input when the DP signed the upload) and appended to a file in
a private spool directory (0700, the file 0600) sealed with AES-256-GCM under a random key
made for this upload and held only in memory. A process that dies leaves ciphertext whose
key died with it. Each process spools into a directory of its own that it holds a lock on
(``flock``) while it lives; ``sweep``, at a process's start, removes the directories whose
owner is gone (and loose files an older version left), never a live sibling worker's. The
first chunk that crosses the limit stops the stream with 413 and removes the file.

``open_plaintext`` decrypts the file into an anonymous in-memory file (``ingest.scratch``)
for the readers, which open it by path; it goes when the block ends.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import struct
import tempfile
from collections.abc import AsyncIterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pavilion.errors import CryptoError, PayloadTooLarge
from pavilion.ingest.integrity import DetachedJws, SigningInputHasher
from pavilion.ingest.scratch import memory_file, memory_files
from pavilion.observability.logging import get_logger
from pavilion.store.private_files import FILE_MODE, private_dir

log = get_logger(__name__)

PREFIX: Final = "upload-"
SUFFIX: Final = ".body"
MAGIC: Final = b"PAVSPOOL1\n"
#: Plain text sealed per record: ASGI hands over small chunks; they are gathered up to this.
RECORD_BYTES: Final = 256 * 1024
_LENGTH = struct.Struct(">I")


def _aad(name: str, index: int) -> bytes:
    return f"pavilion/spool/v1|{name}|{index}".encode()


def _nonce(index: int) -> bytes:
    # The key is fresh per upload, so a counter never repeats a (key, nonce) pair.
    return index.to_bytes(12, "big")


@dataclass(frozen=True)
class Spooled:
    path: Path
    size: int
    sha256: str
    signing_digest: bytes | None
    key: bytes = field(repr=False, default=b"")

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def plain_chunks(self) -> Iterator[bytes]:
        """The upload's bytes as sent, decrypted record by record (checked: order, length)."""
        aead = AESGCM(self.key)
        total = 0
        with self.path.open("rb") as handle:
            if handle.read(len(MAGIC)) != MAGIC:
                raise CryptoError("the spooled upload is not a spool file")
            index = 0
            while header := handle.read(_LENGTH.size):
                (length,) = _LENGTH.unpack(header)
                sealed = handle.read(length)
                try:
                    plain = aead.decrypt(_nonce(index), sealed, _aad(self.path.name, index))
                except InvalidTag as exc:
                    raise CryptoError("the spooled upload does not open: tampered") from exc
                total += len(plain)
                index += 1
                yield plain
        if total != self.size:
            raise CryptoError("the spooled upload is shorter or longer than what was received")

    @contextmanager
    def open_plaintext(self, name: str) -> Iterator[Path]:
        """The upload in clear, as an in-memory file (``name`` helps the readers and people);
        it and every file derived from it while the block runs are gone at its end."""
        with memory_files(self.path.parent):
            path = memory_file(name)
            with path.open("wb") as out:
                for chunk in self.plain_chunks():
                    out.write(chunk)
            yield path


@contextmanager
def plaintext_file(data: bytes, name: str, fallback: Path) -> Iterator[Path]:
    """Bytes already in memory (a dry-run sample) as an in-memory file, for the readers."""
    with memory_files(fallback):
        path = memory_file(name)
        path.write_bytes(data)
        yield path


LOCK_FILE: Final = ".owner.lock"
#: This process's spool directory per spool root, with the descriptor that holds its lock.
_OWN: dict[Path, tuple[int, Path, int]] = {}


def process_dir(root: Path) -> Path:
    """This process's private spool directory under ``root``, locked while the process lives."""
    own = _OWN.get(root)
    if own is not None and own[0] == os.getpid():
        return own[1]
    private_dir(root)
    directory = Path(tempfile.mkdtemp(prefix=f"proc-{os.getpid()}-", dir=root))
    os.chmod(directory, 0o700)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _OWN[root] = (os.getpid(), directory, fd)
    return directory


def _owner_gone(directory: Path) -> bool:
    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return True  # a directory from before locks, or one that died being made
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # releases the lock taken just now
    return True


def _open_spool(root: Path) -> tuple[IO[bytes], Path]:
    directory = process_dir(root)
    fd, name = tempfile.mkstemp(dir=directory, prefix=PREFIX, suffix=SUFFIX)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "wb"), Path(name)


class _SealedWriter:
    def __init__(self, handle: IO[bytes], name: str) -> None:
        self.key = AESGCM.generate_key(bit_length=256)
        self._aead = AESGCM(self.key)
        self._handle = handle
        self._name = name
        self._index = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        handle.write(MAGIC)

    def write(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self._pending_bytes += len(chunk)
        if self._pending_bytes >= RECORD_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        plain = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        sealed = self._aead.encrypt(_nonce(self._index), plain, _aad(self._name, self._index))
        self._handle.write(_LENGTH.pack(len(sealed)) + sealed)
        self._index += 1


async def spool(
    chunks: AsyncIterable[bytes],
    root: Path,
    *,
    limit: int,
    signature: DetachedJws | None = None,
) -> Spooled:
    """Write the stream sealed to a file under ``root``; PayloadTooLarge once it passes
    ``limit``. The caller removes the file (``Spooled.remove``) whatever happens next."""
    handle, path = _open_spool(root)
    digest = hashlib.sha256()
    signing = (
        SigningInputHasher(signature.protected_b64, signature.algorithm)
        if signature is not None
        else None
    )
    size = 0
    try:
        with handle:
            writer = _SealedWriter(handle, path.name)
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(
                        f"the upload exceeds the limit of {limit} bytes; it was not processed",
                        field="body",
                        extra={"limit_bytes": limit},
                    )
                digest.update(chunk)
                if signing is not None:
                    signing.update(chunk)
                writer.write(chunk)
            writer.flush()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Spooled(
        path,
        size,
        digest.hexdigest(),
        signing.digest() if signing is not None else None,
        key=writer.key,
    )


def sweep(root: Path) -> int:
    """Remove what uploads left behind under ``root``: the directories of processes that are
    gone (their keys died with them, so nothing there can ever be read) and loose files of
    older versions; make ``root`` private. Call at a process's start. Returns how many
    directories and files went."""
    if not root.exists():
        return 0
    private_dir(root)
    mine = _OWN.get(root)
    removed = 0
    for leftover in root.iterdir():
        if leftover.is_dir():
            if (mine is not None and leftover == mine[1]) or not _owner_gone(leftover):
                continue
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed += 1
    if removed:
        log.info("spool swept", removed=removed)
    return removed
