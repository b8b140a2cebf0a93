"""``pavilion data ...`` (profiles, dry runs, roster uploads, quality, integrity, upload keys)
and ``pavilion lineage show DATASET``: the data pipeline from the command line.

``pavilion data push`` is the deprecated name of ``pavilion data upload`` (one release).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.console import Console
from rich.table import Table

from pavilion.cli.choices import DataFormat
from pavilion.cli.context import resolve_tenant, run_async
from pavilion.cli.deprecation import alias_command
from pavilion.errors import PavilionError

if TYPE_CHECKING:
    from pavilion.ingest.batch_store import BatchView
    from pavilion.ingest.profile_store import ProfileView, UploadKeyView
    from pavilion.runtime import Runtime
    from pavilion.workflows.roster_dry_run import DryRunResult
    from pavilion.workflows.roster_reports import Lineage, ProviderQuality

console = Console()
err_console = Console(stderr=True)

data_app = typer.Typer(
    help="Data pipeline: DP schemas and mappings, roster uploads, quality, integrity.",
    no_args_is_help=True,
)
mapping_app = typer.Typer(help="A DP's versioned schema and mapping.", no_args_is_help=True)
keys_app = typer.Typer(help="A DP's public keys for signed uploads.", no_args_is_help=True)
lineage_app = typer.Typer(help="OpenLineage events and graphs.", no_args_is_help=True)
data_app.add_typer(mapping_app, name="mapping")
data_app.add_typer(keys_app, name="keys")

TenantOption = Annotated[str, typer.Option(help="Tenant name or id.")]
ProviderOption = Annotated[str, typer.Option(help="Provider id.")]
_SPARK: Final = " ▁▂▃▄▅▆▇█"


def register(app: typer.Typer) -> None:
    """Add ``data`` and ``lineage`` to the main Typer app."""
    app.add_typer(data_app, name="data")
    app.add_typer(lineage_app, name="lineage")


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


# -- profiles --------------------------------------------------------------------------------


@mapping_app.command("add")
def mapping_add(
    tenant: TenantOption,
    provider: ProviderOption,
    spec: Annotated[Path, typer.Argument(help="Profile: schema + mapping, YAML or JSON.")],
) -> None:
    """Store a DP's schema and mapping as its next version."""
    from pavilion.workflows import roster_profiles

    try:
        text = spec.read_text("utf-8")
    except OSError as exc:
        raise PavilionError(f"{spec}: cannot read the profile: {exc}") from exc

    async def work(rt: Runtime) -> ProfileView:
        return await roster_profiles.add_profile(
            rt, await resolve_tenant(rt, tenant), provider, text
        )

    stored = run_async(work)
    console.print(
        f"mapping version [bold]{stored['version']}[/bold] stored (sha256 {stored['digest'][:16]}…)"
    )


@mapping_app.command("show")
def mapping_show(
    tenant: TenantOption,
    provider: ProviderOption,
    version: Annotated[int | None, typer.Option(help="A version; the latest when omitted.")] = None,
) -> None:
    """Print a stored profile version as JSON."""
    from pavilion.workflows import roster_profiles

    async def work(rt: Runtime) -> ProfileView:
        return await roster_profiles.get_profile(
            rt, await resolve_tenant(rt, tenant), provider, version
        )

    _print_json(run_async(work))


# -- dry run and upload ----------------------------------------------------------------------


def _format_of(path: Path, given: DataFormat | None) -> str:
    """The media type to read ``path`` as: the one given, else the one its suffix names."""
    from pavilion.ingest.formats import CONTENT_TYPES, Format, upload_type

    media = {fmt: media for media, fmt in reversed(list(CONTENT_TYPES.items()))}
    if given is not None:
        return media[Format(given.value)]
    return media[upload_type(None, path.name).format]


@data_app.command("dry-run")
def dry_run(
    tenant: TenantOption,
    provider: ProviderOption,
    sample: Annotated[Path, typer.Argument(help="A sample file (CSV, NDJSON, JSON or XML).")],
    profile: Annotated[
        Path | None, typer.Option(help="Try this profile instead of the stored one.")
    ] = None,
    data_format: Annotated[
        DataFormat | None, typer.Option("--format", help="Defaults to the file's suffix.")
    ] = None,
) -> None:
    """Validate, score and map a sample without storing anything; show the preview."""
    from pavilion.parsing import load_yaml
    from pavilion.workflows import roster_dry_run

    media = _format_of(sample, data_format)
    document = load_yaml(profile.read_text("utf-8"), what=str(profile)) if profile else None

    async def work(rt: Runtime) -> DryRunResult:
        return await roster_dry_run.dry_run(
            rt,
            await resolve_tenant(rt, tenant),
            provider,
            sample=sample.read_bytes(),
            content_type=media,
            profile_document=document,
        )

    result = run_async(work)
    _summary(result)
    if result.get("preview"):
        table = Table(*result["preview"][0].keys(), title="canonical preview")
        for row in result["preview"]:
            table.add_row(*(json.dumps(v, ensure_ascii=False) for v in row.values()))
        console.print(table)


def _summary(result: Mapping[str, Any]) -> None:
    status = result.get("status", "?")
    colour = "green" if status == "applied" else "red"
    console.print(f"[{colour}]{status}[/{colour}]: {result.get('detail', '')}")
    quality = result.get("quality") or {}
    if quality:
        dims = ", ".join(
            f"{k} {v:.1f}" for k, v in quality.get("dimensions", {}).items() if v is not None
        )
        console.print(f"quality {quality.get('score', 0):.2f} ({dims})")
    for error in (result.get("errors") or [])[:20]:
        where = " ".join(f"{k} {error[k]}" for k in ("row", "field") if error.get(k) is not None)
        console.print(f"  [yellow]{where}[/yellow]: {error.get('message')}")


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    from pavilion.ingest.formats import iter_chunks

    for chunk in iter_chunks(path):
        yield chunk


@data_app.command("upload")
def upload(
    roster: Annotated[Path, typer.Argument(help="The roster file.")],
    *,
    tenant: TenantOption,
    provider: ProviderOption,
    data_format: Annotated[
        DataFormat | None, typer.Option("--format", help="Defaults to the file's suffix.")
    ] = None,
    signature: Annotated[
        Path | None, typer.Option(help="File holding the DP's detached JWS over the roster.")
    ] = None,
    as_of: Annotated[
        datetime | None, typer.Option(help="When the data was current (ISO 8601).")
    ] = None,
    mapping_version: Annotated[int | None, typer.Option(help="Defaults to the latest.")] = None,
) -> None:
    """Upload a roster: validated, scored, mapped and applied whole, or refused with a report."""
    from pavilion.workflows import roster_upload

    request = roster_upload.UploadRequest(
        content_type=_format_of(roster, data_format),
        signature=signature.read_text("utf-8").strip() if signature is not None else None,
        as_of=as_of.replace(tzinfo=as_of.tzinfo or UTC) if as_of is not None else None,
        mapping_version=mapping_version,
    )

    async def work(rt: Runtime) -> BatchView:
        return await roster_upload.upload_roster(
            rt, await resolve_tenant(rt, tenant), provider, _chunks(roster), request
        )

    try:
        batch = run_async(work)
    except PavilionError as exc:
        err_console.print(f"[red]refused:[/red] {exc.detail}")
        if exc.extra.get("batch_id"):
            err_console.print(f"batch {exc.extra['batch_id']} recorded")
        for error in (getattr(exc, "errors", None) or exc.extra.get("errors") or [])[:20]:
            where = " ".join(
                f"{k} {error[k]}" for k in ("row", "field") if error.get(k) is not None
            )
            err_console.print(f"  {where}: {error.get('message')}")
        raise typer.Exit(1) from exc
    rows = batch["rows"]
    console.print(
        f"batch [bold]{batch['id']}[/bold] applied: {rows['applied']} of {rows['total']} rows, "
        f"quality {batch['quality']['score']:.2f}, "
        f"output sha256 {batch['manifest']['output_sha256'][:16]}…"
    )


alias_command(data_app, "push", upload, old="pavilion data push", new="pavilion data upload")


# -- quality, integrity, keys ----------------------------------------------------------------


def sparkline(scores: list[float]) -> str:
    return "".join(_SPARK[min(8, max(0, round(s / 100 * 8)))] for s in scores)


@data_app.command("quality")
def quality(
    tenant: TenantOption,
    provider: ProviderOption,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
) -> None:
    """A DP's quality scores over its recent batches, oldest first, and the trend."""
    from pavilion.workflows import roster_reports

    async def work(rt: Runtime) -> ProviderQuality:
        return await roster_reports.quality(
            rt, await resolve_tenant(rt, tenant), provider, limit=limit
        )

    trend = run_async(work)
    table = Table(
        "batch",
        "received",
        "status",
        "score",
        *("completeness", "validity", "uniqueness", "consistency", "timeliness"),
    )
    for point in trend["points"]:
        dims = point["dimensions"]
        table.add_row(
            point["batch_id"][:8],
            point["at"][:19],
            point["status"],
            "-" if point["score"] is None else f"{point['score']:.2f}",
            *(
                "-" if dims.get(d) is None else f"{dims[d]:.1f}"
                for d in ("completeness", "validity", "uniqueness", "consistency", "timeliness")
            ),
        )
    console.print(table)
    scores = [p["score"] for p in trend["points"] if p["score"] is not None]
    console.print(
        f"trend {sparkline(scores)}  latest {trend['latest']}  change {trend['change']}  "
        f"moving average {trend['moving_average']}  threshold {trend['threshold']}"
    )


@data_app.command("verify")
def verify(
    tenant: TenantOption,
    batch: Annotated[str, typer.Argument(help="A batch id.")],
) -> None:
    """Check a batch's signed manifest and its stored records; exit 1 if tampered with."""
    from pavilion.workflows import roster_reports

    async def work(rt: Runtime) -> BatchView:
        return await roster_reports.get_batch(rt, await resolve_tenant(rt, tenant), batch)

    try:
        found = run_async(work)
    except PavilionError as exc:
        print(f"TAMPERED {batch}: {exc.detail}")
        raise typer.Exit(1) from exc
    console.print(f"batch {found['id']} ({found['status']}): [green]{found['integrity']}[/green]")


@keys_app.command("add")
def keys_add(
    tenant: TenantOption,
    provider: ProviderOption,
    jwk: Annotated[Path, typer.Argument(help="The DP's public JWK (JSON file).")],
) -> None:
    """Register a DP's public key; from then on its uploads must carry a detached JWS."""
    from pavilion.workflows import roster_profiles

    key = json.loads(jwk.read_text("utf-8"))

    async def work(rt: Runtime) -> UploadKeyView:
        return await roster_profiles.add_upload_key(
            rt, await resolve_tenant(rt, tenant), provider, key
        )

    added = run_async(work)
    console.print(f"upload key [bold]{added['kid']}[/bold] registered")


# -- lineage ---------------------------------------------------------------------------------


class GraphFormat(StrEnum):
    DOT = "dot"
    SVG = "svg"
    PNG = "png"


@lineage_app.command("show")
def lineage_show(
    dataset: Annotated[str, typer.Argument(help="e.g. pavilion.rosters.<provider id>")],
    tenant: TenantOption,
    graph_format: Annotated[
        GraphFormat, typer.Option("--format", help="svg/png need Graphviz's dot; else DOT.")
    ] = GraphFormat.SVG,
    out: Annotated[Path | None, typer.Option(help="Write the graph here.")] = None,
    events: Annotated[bool, typer.Option(help="Also print the recent run events.")] = False,
) -> None:
    """Render the lineage graph around a dataset (DP source -> transformations -> outputs)."""
    from pavilion.workflows import roster_reports

    async def work(rt: Runtime) -> Lineage:
        return await roster_reports.lineage(rt, await resolve_tenant(rt, tenant), dataset)

    from pavilion.ingest.lineage.graph import graphviz_available, render

    found = run_async(work)
    content, produced = render(found["dot"], graph_format.value)
    if produced != graph_format.value:
        err_console.print(
            "Graphviz's dot is not installed (apt-get install graphviz): writing DOT instead"
        )
    if out is None and produced != "png":
        print(content.decode("utf-8"), end="" if content.endswith(b"\n") else "\n")
    else:
        target = out or Path(f"lineage.{produced}")
        if target.suffix.lstrip(".") != produced:
            target = target.with_suffix(f".{produced}")
        target.write_bytes(content)
        err_console.print(f"wrote {target} ({produced})")
    if events:
        _print_json(found["events"])
    graph = found["graph"]
    err_console.print(
        f"{len(graph['datasets'])} datasets, {len(graph['jobs'])} jobs "
        f"(graphviz {'present' if graphviz_available() else 'absent'})"
    )
