"""How commands print: tables and messages for people, JSON for scripts, nothing cut when piped.

A :class:`Printer` decides its width when it prints, not when it is made: on a terminal it
follows the terminal; piped or redirected it is wide enough that no id is truncated and no
URL wrapped, so ``pavilion tenants list | grep`` sees whole values. ``--json`` (every listing
and show command takes it) prints JSON on standard output instead, for ``jq``.

Exit codes, the same for every command: 0 done, 1 refused or a failed check (the reason on
standard error), 2 a usage error (a missing or malformed option).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Final

import typer
from rich.console import Console

#: The width of output that is not a terminal: more than any row the commands print.
PIPED_WIDTH: Final = 1000

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON on standard output (for scripts and jq).")
]


class Printer:
    """``print`` like a Rich console, on standard output or standard error, sized per call."""

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr

    def console(self) -> Console:
        stream = sys.stderr if self._stderr else sys.stdout
        terminal = stream.isatty()
        return Console(
            file=stream,
            width=None if terminal else PIPED_WIDTH,
            soft_wrap=not terminal,
        )

    def print(self, *objects: Any, **options: Any) -> None:
        self.console().print(*objects, **options)


def print_json(value: Any) -> None:
    """``value`` as indented JSON on standard output (dates and ids as strings)."""
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


out = Printer()
err = Printer(stderr=True)


def group(help_text: str) -> typer.Typer:
    """A command group: plain help (no Rich panels, no markup, no type labels on flags), and
    its help when called without a command."""
    return typer.Typer(
        help=help_text,
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
    )
