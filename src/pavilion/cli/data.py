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
from rich.markup import escape
from rich.table import Table

from pavilion.cli.choices import DataFormat
from pavilion.cli.context import resolve_tenant, run_async
from pavilion.cli.deprecation import alias_command
from pavilion.cli.output import JsonOption, group, print_json
from pavilion.cli.output import err as err_console
from pavilion.cli.output import out as console
from pavilion.errors import PavilionError

if TYPE_CHECKING:
    from pavilion.ingest.batch_store import BatchView
    from pavilion.ingest.profile_store import ProfileView, UploadKeyView
    from pavilion.runtime import Runtime
    from pavilion.workflows.roster_dry_run import DryRunResult
    from pavilion.workflows.roster_reports import Lineage, ProviderQuality

data_app = group("Data pipeline: DP schemas and mappings, roster uploads, quality, integrity.")
mapping_app = group("A DP's versioned profile: its record schema and the mapping to ours.")
keys_app = group("A DP's public keys for signed uploads.")
lineage_app = group("OpenLineage events and graphs of the data pipeline.")
data_app.add_typer(mapping_app, name="mapping")
data_app.add_typer(keys_app, name="keys")

TenantOption = Annotated[str, typer.Option(metavar="NAME|ID", help="Tenant name or id.")]
ProviderOption = Annotated[
    str, typer.Option(metavar="ID", help="Provider id (pavilion providers list shows it).")
]
FormatOption = Annotated[
    DataFormat | None,
    typer.Option("--format", help="The file's format; defaults to its suffix."),
]
_SPARK: Final = " ▁▂▃▄▅▆▇█"


def register(app: typer.Typer) -> None:
    """Add ``data`` and ``lineage`` to the main Typer app."""
    app.add_typer(data_app, name="data")
    app.add_typer(lineage_app, name="lineage")


def _print_json(value: Any) -> None:
    print_json(value)


# -- profiles --------------------------------------------------------------------------------


@mapping_app.command("add")
def mapping_add(
    tenant: TenantOption,
    provider: ProviderOption,
    spec: Annotated[
        Path, typer.Argument(metavar="FILE", help="Profile: schema + mapping, YAML or JSON.")
    ],
) -> None:
    """Store a DP's profile (record schema and mapping) as its next version.

    'pavilion data mapping schema' prints the profile's JSON Schema; examples/profile.yaml
    fits examples/roster.csv.

    Example: pavilion data mapping add --tenant acme-university --provider $PROVIDER_ID profile.yaml
    """
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
    version: Annotated[
        int | None, typer.Option(metavar="N", help="A version; the latest when omitted.")
    ] = None,
) -> None:
    """Print a stored profile version as JSON.

    Example: pavilion data mapping show --tenant acme-university --provider $PROVIDER_ID
    """
    from pavilion.workflows import roster_profiles

    async def work(rt: Runtime) -> ProfileView:
        return await roster_profiles.get_profile(
            rt, await resolve_tenant(rt, tenant), provider, version
        )

    _print_json(run_async(work))


@mapping_app.command("schema")
def mapping_schema() -> None:
    """Print the JSON Schema of a profile (what 'data mapping add' reads).

    docs/schemas/profile.schema.json is this output; docs/PROVIDERS.md describes it.

    Example: pavilion data mapping schema > profile.schema.json
    """
    from pavilion.ingest.schema import profile_schema

    print(json.dumps(profile_schema(), indent=2, sort_keys=True))


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
    sample: Annotated[
        Path, typer.Argument(metavar="FILE", help="A sample file (CSV, NDJSON, JSON or XML).")
    ],
    profile: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Try this profile instead of the stored one."),
    ] = None,
    *,
    data_format: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate, score and map a sample without storing anything; show the preview.

    Exit 1 when the sample would be rejected (as 'data upload' would refuse it).

    Example: pavilion data dry-run --tenant acme-university --provider $PROVIDER_ID roster.csv
    """
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
    if as_json:
        _print_json(result)
    else:
        _summary(result)
        if result.get("preview"):
            table = Table(*result["preview"][0].keys(), title="canonical preview")
            for row in result["preview"]:
                table.add_row(*(json.dumps(v, ensure_ascii=False) for v in row.values()))
            console.print(table)
    if result.get("status") != "applied":
        raise typer.Exit(1)


def _summary(result: Mapping[str, Any]) -> None:
    status = result.get("status", "?")
    colour = "green" if status == "applied" else "red"
    console.print(f"[{colour}]{status}[/{colour}]: {escape(result.get('detail') or '')}")
    quality = result.get("quality") or {}
    if quality:
        dims = ", ".join(
            f"{k} {v:.1f}" for k, v in quality.get("dimensions", {}).items() if v is not None
        )
        console.print(f"quality {quality.get('score', 0):.2f} ({dims})")
    for error in (result.get("errors") or [])[:20]:
        where = " ".join(f"{k} {error[k]}" for k in ("row", "field") if error.get(k) is not None)
        console.print(f"  [yellow]{where}[/yellow]: {escape(str(error.get('message')))}")


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    from pavilion.ingest.formats import iter_chunks

    for chunk in iter_chunks(path):
        yield chunk


@data_app.command("upload")
def upload(
    roster: Annotated[Path, typer.Argument(metavar="FILE", help="The roster file.")],
    *,
    tenant: TenantOption,
    provider: ProviderOption,
    data_format: FormatOption = None,
    signature: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="File holding the DP's detached JWS over the roster."),
    ] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(metavar="DATETIME", help="When the data was current (ISO 8601)."),
    ] = None,
    mapping_version: Annotated[
        int | None,
        typer.Option(metavar="N", help="The profile version to apply; defaults to the latest."),
    ] = None,
) -> None:
    """Upload a roster: validated, scored, mapped and applied whole, or refused with a report.

    Exit 1 when refused; the reasons (row and field) go to stderr.

    Example: pavilion data upload roster.csv --tenant acme-university --provider $PROVIDER_ID
    """
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
        err_console.print(f"[red]refused:[/red] {escape(exc.detail)}")
        if exc.extra.get("batch_id"):
            err_console.print(f"batch {exc.extra['batch_id']} recorded")
        for error in (getattr(exc, "errors", None) or exc.extra.get("errors") or [])[:20]:
            where = " ".join(
                f"{k} {error[k]}" for k in ("row", "field") if error.get(k) is not None
            )
            err_console.print(f"  {where}: {error.get('message')}", markup=False)
        raise typer.Exit(1) from exc
    rows = batch["rows"]
    console.print(
        f"batch {batch['id']} applied: {rows['applied']} of {rows['total']} rows, "
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
    limit: Annotated[
        int, typer.Option(min=1, max=500, metavar="N", help="How many recent batches to show.")
    ] = 20,
    as_json: JsonOption = False,
) -> None:
    """A DP's quality scores over its recent batches, oldest first, and the trend.

    Example: pavilion data quality --tenant acme-university --provider $PROVIDER_ID --limit 5
    """
    from pavilion.workflows import roster_reports

    async def work(rt: Runtime) -> ProviderQuality:
        return await roster_reports.quality(
            rt, await resolve_tenant(rt, tenant), provider, limit=limit
        )

    trend = run_async(work)
    if as_json:
        _print_json(trend)
        return
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
            point["batch_id"],
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
    batch: Annotated[str, typer.Argument(metavar="BATCH_ID", help="A batch id.")],
    as_json: JsonOption = False,
) -> None:
    """Check a batch's signed manifest and its stored records; exit 1 if tampered with.

    Example: pavilion data verify --tenant acme-university $BATCH_ID
    """
    from pavilion.workflows import roster_reports

    async def work(rt: Runtime) -> BatchView:
        return await roster_reports.get_batch(rt, await resolve_tenant(rt, tenant), batch)

    try:
        found = run_async(work)
    except PavilionError as exc:
        print(f"TAMPERED {batch}: {exc.detail}")
        raise typer.Exit(1) from exc
    if as_json:
        _print_json(found)
        return
    console.print(f"batch {found['id']} ({found['status']}): [green]{found['integrity']}[/green]")


@keys_app.command("add")
def keys_add(
    tenant: TenantOption,
    provider: ProviderOption,
    jwk: Annotated[Path, typer.Argument(metavar="FILE", help="The DP's public JWK (JSON file).")],
) -> None:
    """Register a DP's public key; from then on its uploads must carry a detached JWS.

    Example: pavilion data keys add --tenant acme-university --provider $PROVIDER_ID dp.jwk
    """
    from pavilion.workflows import roster_profiles

    key = json.loads(jwk.read_text("utf-8"))

    async def work(rt: Runtime) -> UploadKeyView:
        return await roster_profiles.add_upload_key(
            rt, await resolve_tenant(rt, tenant), provider, key
        )

    added = run_async(work)
    console.print(f"upload key {added['kid']} registered", highlight=False, markup=False)


# -- lineage ---------------------------------------------------------------------------------


class GraphFormat(StrEnum):
    DOT = "dot"
    SVG = "svg"
    PNG = "png"


@lineage_app.command("show")
def lineage_show(
    dataset: Annotated[
        str,
        typer.Argument(metavar="DATASET", help="e.g. pavilion.rosters.<provider id>"),
    ],
    tenant: TenantOption,
    graph_format: Annotated[
        GraphFormat | None,
        typer.Option(
            "--format",
            help="dot (text), svg or png (these need Graphviz); defaults to the suffix of "
            "--out, else dot.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Write the graph here (else to standard output)."),
    ] = None,
    events: Annotated[bool, typer.Option(help="Also print the recent run events.")] = False,
) -> None:
    """Draw the lineage graph around a dataset (DP source -> transformations -> outputs).

    SVG and PNG need the graphviz extra and Graphviz's dot (apt-get install graphviz); without
    them the command refuses (exit 1) rather than write another format than asked.

    \b
    Example:
      pavilion lineage show pavilion.rosters.$PROVIDER_ID --tenant acme-university \\
        --out lineage.svg
    """
    from pavilion.ingest.lineage.graph import graphviz_available, render
    from pavilion.workflows import roster_reports

    wanted = graph_format or _format_from_suffix(out)
    if wanted is not GraphFormat.DOT and not graphviz_available():
        raise PavilionError(
            f"{wanted.value} needs Graphviz: pip install 'pavilion[graphviz]' and "
            "apt-get install graphviz; or ask for --format dot (or an --out ending in .dot)"
        )
    if out is None and wanted is GraphFormat.PNG:
        raise typer.BadParameter("PNG is binary: give --out FILE", param_hint="'--format'")

    async def work(rt: Runtime) -> Lineage:
        return await roster_reports.lineage(rt, await resolve_tenant(rt, tenant), dataset)

    found = run_async(work)
    content, produced = render(found["dot"], wanted.value)
    if produced != wanted.value:  # Graphviz went away between the check and the drawing
        raise PavilionError(f"Graphviz could not draw {wanted.value}; nothing written")
    if out is None:
        print(content.decode("utf-8"), end="" if content.endswith(b"\n") else "\n")
    else:
        out.write_bytes(content)
        err_console.print(f"wrote {out} ({produced})", highlight=False, markup=False)
    if events:
        _print_json(found["events"])
    graph = found["graph"]
    err_console.print(
        f"{len(graph['datasets'])} datasets, {len(graph['jobs'])} jobs", highlight=False
    )


def _format_from_suffix(out: Path | None) -> GraphFormat:
    suffix = out.suffix.lower().lstrip(".") if out is not None else ""
    if suffix in ("svg", "png"):
        return GraphFormat(suffix)
    return GraphFormat.DOT
