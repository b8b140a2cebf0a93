"""A plain ``pip install .`` can run every module: src/ imports only what that installs.

Every module under src/pavilion that imports a third-party package at run time must find it
among the runtime dependencies of pyproject.toml or what they pull in (a test dependency such
as PyJWT made the installed package fail to start). A package of a non-dev extra (graphviz)
may only be imported lazily, inside a function, so that the modules import without it.
``if TYPE_CHECKING:`` imports are not made at run time and are not counted.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[3]
SRC = ROOT / "src" / "pavilion"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements install, with the extras they name, transitively."""
    found: set[str] = set()
    pending = [(Requirement(r), "") for r in requirements]
    while pending:
        requirement, via_extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": via_extra}):
            continue
        name = _normal(requirement.name)
        extras = sorted(requirement.extras)
        key_seen = {f"{name}[{e}]" for e in extras} | {name}
        if key_seen <= found:
            continue
        found |= key_seen
        try:
            declared = requires(requirement.name) or []
        except PackageNotFoundError:
            continue  # not installed on this platform (a marker we did not evaluate)
        for extra in ["", *extras]:
            pending += [(Requirement(r), extra) for r in declared]
    return {name for name in found if "[" not in name}


@cache
def _project() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _runtime() -> set[str]:
    return _closure(list(_project()["dependencies"]))  # type: ignore[call-overload]


def _optional() -> set[str]:
    extras: dict[str, list[str]] = _project()["optional-dependencies"]  # type: ignore[assignment]
    wanted = [r for extra, reqs in extras.items() if extra != "dev" for r in reqs]
    return _closure(wanted) - _runtime()


def _imports(tree: ast.AST) -> list[tuple[str, bool, int]]:
    """(top-level module, imported inside a function, line) of each run-time import."""
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child, in_function)
            return
        if isinstance(node, ast.Import):
            found.extend((a.name.split(".")[0], in_function, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], in_function, node.lineno))
        nested = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for child in ast.iter_child_nodes(node):
            visit(child, nested)

    visit(tree, False)
    return found


def test_src_imports_only_runtime_dependencies() -> None:
    distributions = packages_distributions()
    runtime, optional = _runtime(), _optional()
    assert "pyjwt" not in runtime  # a test dependency: the runtime signs with joserfc
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        where = path.relative_to(ROOT)
        for module, lazy, line in _imports(ast.parse(path.read_text("utf-8"))):
            if module in sys.stdlib_module_names or module == "pavilion":
                continue
            owners = {_normal(d) for d in distributions.get(module, [])}
            if owners & runtime or (owners & optional and lazy):
                continue
            if not owners:
                problems.append(f"{where}:{line}: {module} is not installed at all")
            elif owners & optional:
                problems.append(f"{where}:{line}: optional {module} imported at module level")
            else:
                problems.append(
                    f"{where}:{line}: {module} ({', '.join(owners)}) is no runtime "
                    "dependency in pyproject.toml"
                )
    assert problems == []


def test_the_guard_sees_what_it_guards() -> None:
    tree = ast.parse(
        "import jwt\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import mypy\n"
        "def f():\n    import graphviz\n"
    )
    assert _imports(tree) == [("jwt", False, 1), ("typing", False, 2), ("graphviz", True, 6)]
    assert {"fastapi", "starlette", "joserfc", "uvicorn", "httptools"} <= _runtime()
    assert "graphviz" in _optional()
