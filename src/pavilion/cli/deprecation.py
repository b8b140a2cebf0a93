"""Deprecated names of renamed CLI commands: hidden from help, still working for one release,
and printing one line on standard error that names the new command."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer

from pavilion.cli.output import err as _err
from pavilion.cli.output import group


def notice(old: str, new: str) -> None:
    """One line on standard error naming the command that replaces ``old``."""
    _err.print(f"[yellow]'{old}' is deprecated and will be removed: use '{new}'[/yellow]")


def alias_command(
    app: typer.Typer, name: str, command: Callable[..., Any], *, old: str, new: str
) -> None:
    """Register ``command`` as ``name`` in ``app``, hidden; ``old`` and ``new`` are the full
    command lines the notice names (``pavilion data push`` -> ``pavilion data upload``)."""

    @functools.wraps(command)
    def alias(*args: Any, **kwargs: Any) -> Any:
        notice(old, new)
        return command(*args, **kwargs)

    app.command(name, hidden=True)(alias)


def alias_group(parent: typer.Typer, name: str, new: str) -> typer.Typer:
    """A hidden group ``name`` under ``parent`` for the old names of ``new``'s commands."""
    deprecated = group(f"Deprecated: use '{new}'.")
    parent.add_typer(deprecated, name=name, hidden=True)
    return deprecated
