"""The documentation runs as written: every ``sh`` block of README.md and docs/*.md, in order,
in one bash session per document, on a fresh data directory.

Doctest-style: a block fails the test when any of its commands fails (``set -euo pipefail``).
A block that cannot run here says why in its info string (```` ```sh skip-test: <reason> ````).
The session runs in a scratch directory that holds ``.venv`` (a link to the repository's) and
a copy of ``examples``, so the commands read exactly as a reader at the repository's root types
them; the documented ports (8600 for the connector, 8700 for the DP agent) are swapped for
free ones in the blocks and the examples, so that parallel runs on one machine do not collide. Servers started with ``&`` are stopped
with the session's process group.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```sh(?P<info>[^\n]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
#: Documented ports and what they are swapped for: the connector's, the DP agent's.
PORTS = ("8600", "8700")
TOOLS = ("curl", "jq", "openssl")
#: Read at import, as tests/conftest.py does: every test starts without PAVILION_* variables.
TOOLS_REQUIRED = (
    os.environ.get("PAVILION_REQUIRE_SERVICES") == "1" or os.environ.get("CI") == "true"
)


@dataclass(frozen=True)
class Block:
    line: int
    body: str
    skip: str | None


def blocks(document: Path) -> list[Block]:
    text = document.read_text(encoding="utf-8")
    found = []
    for match in BLOCK.finditer(text):
        info = match.group("info").strip()
        skip = info.partition("skip-test:")[2].strip() if "skip-test" in info else None
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(line, match.group("body"), skip))
    return found


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def _swap_ports(text: str, ports: dict[str, str]) -> str:
    for documented, free in ports.items():
        text = re.sub(rf"(?<![0-9]){documented}(?![0-9])", free, text)
    return text


def _script(document: Path, runnable: list[Block], ports: dict[str, str]) -> str:
    parts = ["set -euo pipefail"]
    for block in runnable:
        body = _swap_ports(block.body, ports)
        parts.append(f"echo '>>> {document.name}:{block.line}' >&2")
        parts.append(body)
    parts.append(f"echo '>>> {document.name}: every block ran' >&2")
    return "\n".join(parts) + "\n"


def test_every_block_is_runnable_or_says_why_not() -> None:
    for document in DOCUMENTS:
        for block in blocks(document):
            assert block.skip is None or len(block.skip) > 10, (
                f"{document.name}:{block.line}: skip-test needs a reason"
            )
    readme = blocks(ROOT / "README.md")
    assert readme[0].body.startswith("make demo")  # the README opens with make demo ...
    assert readme[0].body.splitlines()[1].startswith("make test")  # ... and make test
    assert sum(block.skip is None for block in readme) >= 10


@pytest.mark.timeout(600)
@pytest.mark.parametrize("document", DOCUMENTS, ids=[d.name for d in DOCUMENTS])
def test_the_documented_commands_run_as_written(document: Path, tmp_path: Path) -> None:
    runnable = [block for block in blocks(document) if block.skip is None]
    if not runnable:
        pytest.skip(f"{document.name} has no runnable sh block")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        message = f"the documented commands need {', '.join(missing)} (apt-get install them)"
        if TOOLS_REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    ports = {documented: _free_port() for documented in PORTS}
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "examples").mkdir()
    for example in (ROOT / "examples").iterdir():  # the provider names the agent's port
        (tmp_path / "examples" / example.name).write_bytes(
            _swap_ports(example.read_text(encoding="utf-8"), ports).encode("utf-8")
        )
    script = tmp_path / "walkthrough.sh"
    script.write_text(_script(document, runnable, ports), encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PAVILION_")}
    environment |= {"COLUMNS": "120", "HOME": str(tmp_path)}
    log = tmp_path / "walkthrough.log"
    with log.open("w", encoding="utf-8") as sink:
        # Output to a file, not a pipe: a server started with & would hold a pipe open.
        process = subprocess.Popen(
            ["bash", str(script)],
            cwd=tmp_path,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the servers it starts go with it
        )
        try:
            process.wait(timeout=540)
        except subprocess.TimeoutExpired:
            pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    output = log.read_text(encoding="utf-8", errors="replace")
    started = re.findall(rf">>> {re.escape(document.name)}:(\d+)", output)
    failed_at = started[-1] if started else "?"
    assert process.returncode == 0, (
        f"{document.name}: the block at line {failed_at} failed (exit {process.returncode}):\n"
        f"{output[-6000:]}"
    )
    assert f">>> {document.name}: every block ran" in output
    assert len(started) == len(runnable)
