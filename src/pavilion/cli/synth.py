"""``pavilion synth``: write a deterministic synthetic university roster."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console
from rich.progress import Progress

from pavilion.synth.roster import (
    DEFAULT_REFERENCE_DATE,
    MAX_ROSTER_SIZE,
    RosterFormat,
    StudentRecord,
    iter_roster,
    write_roster,
)

#: Rosters larger than this get a progress bar.
PROGRESS_THRESHOLD: Final = 10_000
_PROGRESS_STEP: Final = 1_000


class OutputFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


_ROSTER_FORMATS: Final[dict[OutputFormat, RosterFormat]] = {
    OutputFormat.CSV: "csv",
    OutputFormat.JSON: "json",
}


def register(app: typer.Typer) -> None:
    """Add ``synth`` to the main Typer app."""
    app.command("synth")(synth)


def synth(
    out: Annotated[
        Path,
        typer.Option(
            "--out", metavar="FILE", dir_okay=False, help="File to write (replaced atomically)."
        ),
    ],
    count: Annotated[
        int, typer.Option(min=1, max=MAX_ROSTER_SIZE, metavar="N", help="Number of students.")
    ] = 1000,
    seed: Annotated[int, typer.Option(metavar="N", help="Same seed and count, same bytes.")] = 42,
    output_format: Annotated[
        OutputFormat | None,
        typer.Option("--format", help="Defaults to the suffix of --out."),
    ] = None,
    reference_date: Annotated[
        datetime,
        typer.Option(
            formats=["%Y-%m-%d"],
            metavar="YYYY-MM-DD",
            show_default=DEFAULT_REFERENCE_DATE.isoformat(),
            help="'Today' for ages, so output never depends on the clock.",
        ),
    ] = datetime.combine(DEFAULT_REFERENCE_DATE, datetime.min.time()),
) -> None:
    """Generate a synthetic university roster (no real person in it) for demos and tests.

    Columns: student_id, given_name, family_name, birth_date (YYYY-MM-DD), email,
    enrolment_status (enrolled, graduated, ...), programme, region, memberships ("A;B");
    examples/profile.yaml maps them for roster uploads.

    Example: pavilion synth --count 1000 --seed 42 --out roster.csv
    """
    fmt = _ROSTER_FORMATS[_choose_format(out, output_format)]
    records: Iterable[StudentRecord] = iter_roster(count, seed, reference_date.date())
    try:
        if count > PROGRESS_THRESHOLD:
            with Progress(console=Console(stderr=True)) as progress:
                task = progress.add_task("Generating roster", total=count)
                written = write_roster(
                    _advancing(records, lambda n: progress.advance(task, n)), out, fmt
                )
        else:
            written = write_roster(records, out, fmt)
    except OSError as exc:
        typer.echo(f"error: cannot write {out}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"Wrote {written:,} synthetic student records to {out} "
        f"({fmt}, seed {seed}, reference date {reference_date.date().isoformat()})."
    )


def _choose_format(out: Path, requested: OutputFormat | None) -> OutputFormat:
    """The agent picks a roster's format by suffix, so the two must not disagree."""
    by_suffix = {".csv": OutputFormat.CSV, ".json": OutputFormat.JSON}.get(out.suffix.lower())
    if requested is None:
        if by_suffix is None:
            raise typer.BadParameter("give --format, or an --out ending in .csv or .json")
        return by_suffix
    if by_suffix is not None and by_suffix is not requested:
        raise typer.BadParameter(
            f"--format {requested} does not match the suffix of {out.name}",
            param_hint="'--format'",
        )
    return requested


def _advancing(
    records: Iterable[StudentRecord], advance: Callable[[int], None]
) -> Iterator[StudentRecord]:
    """Pass records through, reporting progress every ``_PROGRESS_STEP`` records."""
    pending = 0
    for record in records:
        yield record
        pending += 1
        if pending == _PROGRESS_STEP:
            advance(pending)
            pending = 0
    advance(pending)
