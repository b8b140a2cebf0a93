"""The exception tree as drawn (errors.py and the domain drawings it points to) is the code's.

Every exception class of ``src/pavilion`` is either under :class:`PavilionError`, drawn under
the class it extends, or a documented internal signal; a drawing names no class that does not
exist and puts none under a class it does not extend.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from functools import cache

import pavilion
from pavilion import errors
from pavilion.errors import PavilionError

_GLYPHS = ("├── ", "└── ")
_ROOT = re.compile(r"(\s*)([A-Z]\w*)\b")
#: ``    connect       pavilion/connect/errors.py`` in errors.py: where a domain draws its tree.
_DOMAIN_DRAWING = re.compile(r"^\s+[a-z]\w*\s+(pavilion/[\w/]+\.py)\s*$", re.M)
#: ``    NormaliseError    pavilion/ingest/normalisers.py    why``: a documented internal signal.
_SIGNAL = re.compile(r"^\s+([A-Z]\w*)\s+(pavilion/[\w/]+\.py)\b", re.M)


@cache
def _exception_classes() -> tuple[type[BaseException], ...]:
    """Every exception class defined in a pavilion module (all of them imported first)."""
    for info in pkgutil.walk_packages(pavilion.__path__, "pavilion."):
        if not info.name.startswith("pavilion.store.migrations"):  # Alembic runs those
            importlib.import_module(info.name)
    found = {
        obj
        for name, module in list(sys.modules.items())
        if name.startswith("pavilion.")
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == name
    }
    return tuple(sorted(found, key=lambda cls: cls.__name__))


def _module_of(path: str) -> str:
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _drawing_modules() -> list[str]:
    return ["pavilion.errors"] + [
        _module_of(path) for path in _DOMAIN_DRAWING.findall(errors.__doc__ or "")
    ]


def _drawn(doc: str) -> list[tuple[str, str]]:
    """(class, parent) for every ``├──``/``└──`` line of the tree drawings in ``doc``.

    A drawing starts at a class name on its own line (drawn elsewhere, or the root); each
    level indents by four columns, so a line's parent is the last name in its glyph's column.
    """
    pairs: list[tuple[str, str]] = []
    names_by_column: dict[int, str] = {}
    lines = doc.splitlines()
    for number, line in enumerate(lines):
        column = min((line.find(g) for g in _GLYPHS if g in line), default=-1)
        if column >= 0:
            name = line[column + 4 :].split()[0]
            pairs.append((name, names_by_column[column]))
            names_by_column[column + 4] = name
            continue
        root = _ROOT.match(line)
        following = lines[number + 1] if number + 1 < len(lines) else ""
        if root and any(following.find(g) == len(root.group(1)) for g in _GLYPHS):
            names_by_column = {len(root.group(1)): root.group(2)}
    return pairs


def _all_drawn() -> list[tuple[str, str, str]]:
    return [
        (name, parent, module)
        for module in _drawing_modules()
        for name, parent in _drawn(importlib.import_module(module).__doc__ or "")
    ]


def test_errors_py_points_to_every_domain_drawing() -> None:
    modules = _drawing_modules()
    assert len(modules) > 1
    for module in modules:
        assert _drawn(importlib.import_module(module).__doc__ or ""), f"{module} draws no tree"


def test_every_error_class_is_drawn_under_the_class_it_extends() -> None:
    """A domain drawing may repeat the path down to its classes; every line must be true."""
    tree = {cls.__name__: cls for cls in _exception_classes() if issubclass(cls, PavilionError)}
    drawn = _all_drawn()
    names = [name for name, _, _ in drawn]
    missing = sorted(set(tree) - set(names) - {"PavilionError"})
    extra = sorted({f"{name} ({module})" for name, _, module in drawn if name not in tree})
    misplaced = sorted(
        f"{name} drawn under {parent} in {module}, but it extends "
        f"{', '.join(base.__name__ for base in tree[name].__bases__)}"
        for name, parent, module in drawn
        if name in tree and parent not in {base.__name__ for base in tree[name].__bases__}
    )
    assert not missing, f"not drawn in any error tree: {', '.join(missing)}"
    assert not extra, f"drawn but no such PavilionError subclass: {', '.join(extra)}"
    assert not misplaced, "; ".join(misplaced)


def test_exceptions_outside_the_tree_are_documented_internal_signals() -> None:
    outside = {
        (cls.__name__, cls.__module__)
        for cls in _exception_classes()
        if not issubclass(cls, PavilionError)
    }
    documented = {(name, _module_of(path)) for name, path in _SIGNAL.findall(errors.__doc__ or "")}
    undocumented = sorted(f"{name} ({module})" for name, module in outside - documented)
    stale = sorted(f"{name} ({module})" for name, module in documented - outside)
    assert not undocumented, (
        f"exception classes outside PavilionError's tree: {', '.join(undocumented)}; derive "
        "them from the tree or document them as internal signals in errors.py"
    )
    assert not stale, f"documented internal signals that do not exist: {', '.join(stale)}"


def test_exception_class_names_are_unique() -> None:
    names = [cls.__name__ for cls in _exception_classes()]
    assert sorted({name for name in names if names.count(name) > 1}) == []


def test_the_drawing_reader_reads_nesting_and_several_roots() -> None:
    doc = """
    InvalidRequest
    ├── A         one
    │   └── B     two
    └── C         three
    Conflict
    └── D
    """
    assert _drawn(doc) == [
        ("A", "InvalidRequest"),
        ("B", "A"),
        ("C", "InvalidRequest"),
        ("D", "Conflict"),
    ]
