"""A spooled upload is private and sealed: its file never holds a roster row in clear, its
key lives only in memory, it goes on every outcome, and leftovers of dead processes are
swept at start without touching a live sibling's uploads."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ingest_support import achunks, csv_bytes, roster
from pavilion.errors import CryptoError
from pavilion.ingest.scratch import beside, memory_file
from pavilion.ingest.spool import LOCK_FILE, Spooled, plaintext_file, spool, sweep

ROWS = roster(20, seed=7)
BODY = csv_bytes(ROWS)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_spool_file_is_private_and_holds_no_row_in_clear(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        done = await spool(achunks(BODY, 100), tmp_path / "spool", limit=len(BODY))
    finally:
        os.umask(old)
    written = done.path.read_bytes()
    row = f"{ROWS[3].student_id},{ROWS[3].given_name}".encode()
    assert row in BODY
    assert ROWS[3].student_id.encode() not in written
    assert ROWS[3].email.encode() not in written
    assert _mode(tmp_path / "spool") == 0o700
    assert _mode(done.path.parent) == 0o700
    assert _mode(done.path) == 0o600
    assert "key" not in repr(done).split("signing_digest")[1]  # the key is never printed
    with done.open_plaintext("upload.csv") as plain:
        assert plain.read_bytes() == BODY
    done.remove()
    assert not done.path.exists()


async def test_a_spool_file_that_was_altered_does_not_open(tmp_path: Path) -> None:
    done = await spool(achunks(BODY, 4096), tmp_path, limit=len(BODY))
    data = bytearray(done.path.read_bytes())
    data[-1] ^= 1
    done.path.write_bytes(bytes(data))
    with pytest.raises(CryptoError, match="tampered"):
        list(done.plain_chunks())
    other = Spooled(done.path, done.size, done.sha256, None, key=os.urandom(32))
    with pytest.raises(CryptoError):
        list(other.plain_chunks())
    shorter = await spool(achunks(BODY, 4096), tmp_path, limit=len(BODY))
    with pytest.raises(CryptoError, match="shorter or longer"):
        list(Spooled(shorter.path, shorter.size + 1, "", None, key=shorter.key).plain_chunks())
    shorter.path.write_bytes(b"not a spool file")
    with pytest.raises(CryptoError, match="not a spool file"):
        list(shorter.plain_chunks())


def test_plain_text_lives_in_memory_and_goes_with_the_block(tmp_path: Path) -> None:
    with plaintext_file(BODY, "sample.csv", tmp_path) as path:
        assert path.read_bytes() == BODY
        assert str(path).startswith("/proc/self/fd/")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_scratch_files_need_an_arena() -> None:
    with pytest.raises(RuntimeError, match="memory_files arena"):
        memory_file("x")
    assert beside(Path("/data/upload.csv"), ".utf8") == Path("/data/upload.csv.utf8")


def test_without_memfd_plain_text_is_a_private_file_removed_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "memfd_create")
    with plaintext_file(BODY, "sample.csv", tmp_path / "spool") as path:
        assert path.read_bytes() == BODY
        assert _mode(path) == 0o600
        assert _mode(path.parent) == 0o700
    assert not path.exists()
    assert list((tmp_path / "spool").iterdir()) == []


def test_sweep_removes_what_dead_processes_left_and_spares_live_ones(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    assert sweep(root) == 0  # nothing spooled yet
    dead = root / "proc-1-dead"
    dead.mkdir(parents=True)
    (dead / LOCK_FILE).touch()
    (dead / "upload-x.body").write_bytes(b"sealed")
    before_locks = root / "proc-2-old"
    before_locks.mkdir()
    (before_locks / "upload-y.body").write_bytes(b"sealed")
    legacy = root / "upload-legacy.body"  # an older version spooled in clear, here
    legacy.write_bytes(BODY)
    live = root / "proc-3-live"
    live.mkdir()
    fd = os.open(live / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a sibling worker, uploading now
    (live / "upload-z.body").write_bytes(b"sealed")
    os.chmod(root, 0o755)
    try:
        assert sweep(root) == 3
    finally:
        os.close(fd)
    assert sorted(p.name for p in root.iterdir()) == ["proc-3-live"]
    assert (live / "upload-z.body").exists()
    assert _mode(root) == 0o700


def test_a_process_killed_mid_upload_leaves_only_ciphertext(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    script = textwrap.dedent(
        f"""
        import asyncio, os, sys
        from pathlib import Path
        from pavilion.ingest.spool import spool

        async def body():
            yield {BODY!r}

        async def main():
            done = await spool(body(), Path({str(root)!r}), limit=10**7)
            print(done.path, flush=True)
            os._exit(9)  # dies before the upload's finally runs

        asyncio.run(main())
        """
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 9, ran.stderr
    left = Path(ran.stdout.strip())
    assert left.exists()
    data = left.read_bytes()
    assert ROWS[0].student_id.encode() not in data
    assert ROWS[0].family_name.encode() not in data
    assert sweep(root) == 1
    assert not left.exists()
    assert list(root.iterdir()) == []
