"""Every module of ``src/pavilion`` is one thing: at most 500 lines, opening with a docstring.

A module that grows past the limit is split into a package or siblings, one thing each; the
docstring says what the module is for.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pavilion

MAX_LINES = 500
SRC = Path(pavilion.__file__).parent


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(SRC).as_posix()


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_the_walk_finds_the_modules() -> None:
    names = {_name(p) for p in _modules()}
    assert "errors.py" in names
    assert "keystore/pkcs11/token.py" in names


def test_no_module_is_over_500_lines() -> None:
    too_long = {_name(p): _lines(p) for p in _modules() if _lines(p) > MAX_LINES}
    assert too_long == {}


def test_every_module_opens_with_a_docstring() -> None:
    missing = [
        _name(p)
        for p in _modules()
        if not (ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) or "").strip()
    ]
    assert missing == []
