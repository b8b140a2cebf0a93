"""The ``pavilion`` command line.

Every command module imports only what its options need at module level (typer, rich, light
enums); the domains, the runtime, settings and logging are imported inside the command that
uses them, so ``pavilion --help`` answers without loading them (a test measures it).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pavilion.cli.context import CliContext, cli_settings, enter, resolve_tenant, run_async
from pavilion.errors import PavilionError
from pavilion.tenancy.roles import Role

if TYPE_CHECKING:
    from pavilion.config.settings import Settings
    from pavilion.runtime import Runtime

app = typer.Typer(
    name="pavilion",
    help="Pavilion DP Connector: privacy-first eligibility verification.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (shown once).", no_args_is_help=True)
providers_app = typer.Typer(help="The DP registry.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenants_app, name="tenants")
app.add_typer(tokens_app, name="tokens")
app.add_typer(providers_app, name="providers")
app.add_typer(audit_app, name="audit")

console = Console()
err_console = Console(stderr=True)


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="YAML settings file; PAVILION_* variables override it."),
    ] = None,
) -> None:
    # Logging starts when a command first asks for settings (CliContext.start_logging).
    enter(ctx, CliContext(config_file=config))


def migrate(s: Settings) -> None:
    from pavilion.store.migrate import app_role_for, upgrade

    upgrade(s.database_migration_url, app_role_for(s.database_url, s.database_migration_url))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or update the schema (and row-level security on PostgreSQL). Safe to re-run."""
    s = cli_settings()
    s.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(s)
    console.print("[green]database schema is up to date[/green]")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Overrides PAVILION_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Overrides PAVILION_PORT.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes on one socket, each with its own runtime; more than one "
            "needs PostgreSQL (PAVILION_DATABASE_URL).",
        ),
    ] = 1,
) -> None:
    """Run the connector's HTTP API."""
    from pavilion.observability.logging import configure_logging
    from pavilion.serving import build_server, serve_in_foreground

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    s = cli_settings(**overrides)
    if workers > 1 and s.is_sqlite:
        raise PavilionError(
            f"--workers {workers} needs PostgreSQL: SQLite is one file that only one process may "
            "write (and the embedded default). Set PAVILION_DATABASE_URL to a postgresql:// URL, "
            "or serve with one worker."
        )
    configure_logging(s.log_level, json_output=s.log_json)

    def announce(url: str) -> None:
        many = f" ({workers} worker processes)" if workers > 1 else ""
        err_console.print(f"listening on {url}{many}", highlight=False)

    if workers > 1:
        _serve_workers(s, workers, announce)
        return
    from pavilion.api.app import create_app
    from pavilion.runtime import build_runtime
    from pavilion.workflows.server_tls import tls_context

    rt = build_runtime(s)
    # Refuse a superuser or BYPASSRLS role before uvicorn starts: a refusal inside the
    # lifespan would print uvicorn's traceback before the message.
    import asyncio

    asyncio.run(_check_database_role(rt))
    ssl_context = tls_context(s, rt.keystore)  # a bad certificate or key stops here
    server = build_server(create_app(rt), ssl_context=ssl_context)
    serve_in_foreground(server, s.host, s.port, tls=ssl_context is not None, on_listening=announce)


def _serve_workers(s: Settings, workers: int, announce: Callable[[str], None]) -> None:
    from pavilion.api.workers import WorkerApp
    from pavilion.keystore.factory import open_keystore
    from pavilion.serving import serve_workers
    from pavilion.workflows.server_tls import tls_context

    # Opened once here first: the embedded keystore creates its default keys before the
    # workers start (not in a race between them), and a bad certificate or key stops here.
    tls = tls_context(s, open_keystore(s)) is not None
    factory = WorkerApp(s)
    serve_workers(
        factory,
        s.host,
        s.port,
        workers=workers,
        ssl_context_factory=factory.ssl_context if tls else None,
        on_listening=announce,
    )


async def _check_database_role(rt: Runtime) -> None:
    try:
        await rt.db.check_role(allow_bypass=rt.settings.allow_rls_bypass)
    finally:
        await rt.db.dispose()  # the pool's connections belong to this event loop


@app.command()
def openapi(
    out: Annotated[Path | None, typer.Option(help="Write here instead of standard output.")] = None,
) -> None:
    """Print the connector's OpenAPI document (docs/openapi.json is this output)."""
    import tempfile

    from pavilion.api.app import create_app
    from pavilion.config.settings import load_settings
    from pavilion.runtime import build_runtime

    with tempfile.TemporaryDirectory() as scratch:
        document = create_app(build_runtime(load_settings(None, data_dir=Path(scratch)))).openapi()
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if out is None:
        print(text, end="")
    else:
        out.write_text(text, encoding="utf-8")


@tenants_app.command("create")
def tenants_create(name: Annotated[str, typer.Argument(help="A unique tenant name.")]) -> None:
    """Create a tenant with its own data key."""

    async def work(rt: Runtime) -> None:
        tenant = await rt.tenancy.create_tenant(name)
        console.print(f"tenant [bold]{tenant.name}[/bold] created: id {tenant.id}")

    run_async(work)


@tenants_app.command("list")
def tenants_list() -> None:
    """List tenants."""

    async def work(rt: Runtime) -> None:
        table = Table("id", "name", "created")
        after = None
        while True:
            page = await rt.tenancy.list_tenants(limit=200, after=after)
            for t in page:
                table.add_row(t.id, t.name, t.created_at.isoformat(timespec="seconds"))
            if len(page) < 200:
                break
            after = page[-1].id
        console.print(table)

    run_async(work)


@tokens_app.command("create")
def tokens_create(
    tenant: Annotated[str, typer.Option(help="Tenant name or id; 'platform' for platform-admin.")],
    role: Annotated[Role, typer.Option(help="The token's role.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    expires_in: Annotated[
        int | None,
        typer.Option(min=60, max=366 * 86_400, help="Seconds until it stops working."),
    ] = None,
) -> None:
    """Create an API token. The secret is printed once, on standard output only."""
    from datetime import timedelta

    async def work(rt: Runtime) -> None:
        await rt.tenancy.ensure_platform_tenant()
        tenant_id = await resolve_tenant(rt, tenant)
        ttl = timedelta(seconds=expires_in) if expires_in is not None else None
        issued = await rt.tenancy.create_token(tenant_id, name, role, ttl=ttl)
        until = f", expires {issued.expires_at.isoformat()}" if issued.expires_at else ""
        err_console.print(
            f"token {issued.id} ({role.value}) for tenant {tenant_id}{until}; store it now, "
            "it is not shown again:"
        )
        print(issued.secret)

    run_async(work)


@providers_app.command("register")
def providers_register(
    tenant: Annotated[str, typer.Option(help="Tenant name or id.")],
    spec: Annotated[Path, typer.Argument(help="Provider definition, YAML or JSON.")],
) -> None:
    """Register a DP from a file (see docs/ARCHITECTURE.md for its shape)."""
    import yaml
    from pydantic import ValidationError

    from pavilion.parsing import load_yaml
    from pavilion.providers.schemas import ProviderIn

    try:
        document = load_yaml(spec.read_text("utf-8"), what=str(spec))
        provider_in = ProviderIn.model_validate(document)
    except (OSError, yaml.YAMLError) as exc:
        raise PavilionError(f"{spec}: cannot read provider definition: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PavilionError(f"{spec}: {where}: {first['msg']}") from exc

    async def work(rt: Runtime) -> None:
        tenant_id = await resolve_tenant(rt, tenant)
        out = await rt.providers.register(tenant_id, provider_in)
        console.print(f"provider [bold]{out.name}[/bold] registered: id {out.id}")

    run_async(work)


@providers_app.command("list")
def providers_list(tenant: Annotated[str, typer.Option(help="Tenant name or id.")]) -> None:
    """List a tenant's providers and their regions."""

    async def work(rt: Runtime) -> None:
        tenant_id = await resolve_tenant(rt, tenant)
        table = Table("id", "name", "claims", "regions")
        for p in await rt.providers.list(tenant_id, limit=500, after=None):
            regions = ", ".join(f"{e.region} ({e.jurisdiction})" for e in p.endpoints)
            table.add_row(p.id, p.name, ", ".join(p.claim_types), regions)
        console.print(table)

    run_async(work)


@audit_app.command("checkpoint")
def audit_checkpoint(tenant: Annotated[str, typer.Option(help="Tenant name or id.")]) -> None:
    """Sign (if the log grew) and print the latest checkpoint as a signed note."""

    async def work(rt: Runtime) -> None:
        tenant_id = await resolve_tenant(rt, tenant)
        checkpoint = await rt.audit.checkpoint(tenant_id)
        print(checkpoint.note, end="")
        err_console.print(f"verifier key: {rt.audit.verifier_key_for(tenant_id)}")

    run_async(work)


@audit_app.command("verify")
def audit_verify(
    tenant: Annotated[
        str | None, typer.Option(help="Tenant name or id; every tenant when omitted.")
    ] = None,
) -> None:
    """Recompute every tenant's tree from storage and check every signed checkpoint."""

    async def work(rt: Runtime) -> bool:
        if tenant is not None:
            tenant_ids = [await resolve_tenant(rt, tenant)]
        else:
            tenant_ids = [t.id for t in await rt.tenancy.list_tenants(limit=100_000, after=None)]
        table = Table("tenant", "leaves", "root", "checkpoints", "result")
        problems: list[str] = []
        for tenant_id in tenant_ids:
            report = await rt.audit.verify(tenant_id)
            problems += [f"{tenant_id}: {problem}" for problem in report.problems]
            table.add_row(
                tenant_id,
                str(report.size),
                report.root_hash[:16] + "…",
                str(report.checkpoints_checked),
                "[green]ok[/green]" if report.ok else f"[red]{len(report.problems)} problems",
            )
        console.print(table)
        for problem in problems:
            print(f"TAMPERED {problem}")
        return not problems

    if not run_async(work):
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except PavilionError as exc:
        err_console.print(f"[red]error:[/red] {exc.detail}")
        sys.exit(2)


def _register_commands() -> None:
    # Commands that live in their own modules add themselves to the one app.
    from pavilion.cli import demo, dp_agent, synth

    for module in (dp_agent, synth, demo):
        module.register(app)
    from pavilion.cli import keys, revocation  # issue 3: key lifecycle, credential status

    keys.register(app)
    revocation.register(app)
    from pavilion.cli import credentials  # issue 3: issue/verify/present, trust chains

    credentials.register(app)
    from pavilion.cli import data  # issue 6: data pipeline and lineage

    data.register(app)
    from pavilion.cli import privacy  # issue 5: PSI, ZK predicates, private releases, receipts

    privacy.register(app)
    from pavilion.cli import connections  # issue 4: live DP endpoint health

    providers_app.command("status")(connections.providers_status)
    from pavilion.cli import tls  # issue 14: the connector's own TLS key

    tls.register(app)


_register_commands()
