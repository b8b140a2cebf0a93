"""A streamed upload written to a temporary file under a size limit (the I/O edge of a push).

The body is never held in memory: each chunk is hashed (SHA-256, and the detached JWS signing
input when the DP signed the upload) and appended to a file. The first chunk that crosses the
limit stops the stream with 413 and removes the file; the rest is never read.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pavilion.errors import PayloadTooLarge
from pavilion.ingest.integrity import DetachedJws, SigningInputHasher


@dataclass(frozen=True)
class Spooled:
    path: Path
    size: int
    sha256: str
    signing_digest: bytes | None

    def remove(self) -> None:
        for leftover in self.path.parent.glob(self.path.name + "*"):
            leftover.unlink(missing_ok=True)


def _open_spool(directory: Path) -> tuple[IO[bytes], Path]:
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix="upload-", suffix=".body")
    return os.fdopen(fd, "wb"), Path(name)


async def spool(
    chunks: AsyncIterable[bytes],
    directory: Path,
    *,
    limit: int,
    signature: DetachedJws | None = None,
) -> Spooled:
    """Write the stream to a file in ``directory``; PayloadTooLarge once it passes ``limit``."""
    handle, path = _open_spool(directory)
    digest = hashlib.sha256()
    signing = (
        SigningInputHasher(signature.protected_b64, signature.algorithm)
        if signature is not None
        else None
    )
    size = 0
    try:
        with handle:
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
                handle.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Spooled(
        path, size, digest.hexdigest(), signing.digest() if signing is not None else None
    )
