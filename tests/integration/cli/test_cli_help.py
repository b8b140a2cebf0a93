"""Every command's help reads well: a description, an example, a description per option, and
none of the generic labels a new user tripped over (``<bool>``, ``<list[str]>``, a date
default shown with its time, raw reStructuredText markup)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from pavilion.cli.main import app

runner = CliRunner()
#: Options every command has, which Typer describes itself.
BUILT_IN = {"--help", "--install-completion", "--show-completion"}


def _commands(
    command: typer.core.TyperGroup | typer.core.TyperCommand, path: list[str]
) -> Iterator[tuple[list[str], typer.core.TyperCommand]]:
    children = getattr(command, "commands", None)
    if children is None:
        yield path, command
        return
    for name, child in children.items():
        if not child.hidden:
            yield from _commands(child, [*path, name])


COMMANDS = list(_commands(typer.main.get_command(app), []))


def test_the_tree_has_every_command() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    for expected in ("db upgrade", "providers schema", "data mapping schema", "keys list"):
        assert expected in names
    assert len(COMMANDS) > 50


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_describes_itself_its_options_and_an_example(
    path: list[str], command: typer.core.TyperCommand
) -> None:
    assert (command.help or "").strip(), f"pavilion {' '.join(path)} has no description"
    undescribed = [
        param.name
        for param in command.params
        if not (set(getattr(param, "opts", [])) & BUILT_IN) and not (param.help or "").strip()
    ]
    assert undescribed == [], f"pavilion {' '.join(path)}: options without a description"
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Example" in text, f"pavilion {' '.join(path)} --help shows no example"
    for label in ("<bool>", "00:00:00", "``", "[bold]"):
        assert label not in text, f"pavilion {' '.join(path)} --help shows {label!r}"
    # Options name their value (repeatable ones say so); Typer labels a variadic argument
    # with its Python type whatever its metavar, so only the option rows are held to it.
    option_rows = [line for line in text.splitlines() if line.lstrip().startswith("--")]
    assert not [row for row in option_rows if "list[" in row]


def test_the_root_help_documents_the_exit_codes() -> None:
    text = runner.invoke(app, ["--help"]).output
    assert "Exit codes: 0 done, 1 refused or a failed check" in text
    assert "2" in text.split("Exit codes:")[1]


#: Listings and shows print a table or lines for people and JSON with --json; the other
#: shows (mapping, budget, dp-keys) print JSON only, and lineage show prints its graph.
JSON_OPTION = {
    "tenants list",
    "providers list",
    "providers status",
    "keys list",
    "audit verify",
    "audit checkpoint",
    "credentials status",
    "credentials templates",
    "credentials verify",
    "data dry-run",
    "data quality",
    "data verify",
}


@pytest.mark.parametrize("path", sorted(JSON_OPTION))
def test_listings_and_shows_take_json(path: str) -> None:
    command = {" ".join(p): c for p, c in COMMANDS}[path]
    assert any("--json" in getattr(param, "opts", []) for param in command.params), path


def test_every_listing_is_covered() -> None:
    listings = {
        " ".join(p) for p, _ in COMMANDS if p[-1] in ("list", "status", "templates", "quality")
    }
    assert listings <= JSON_OPTION
