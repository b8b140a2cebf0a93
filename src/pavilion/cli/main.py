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

from pavilion.cli.context import CliContext, cli_settings, enter
from pavilion.cli.output import err, group, out
from pavilion.errors import PavilionError

if TYPE_CHECKING:
    from pavilion.config.settings import Settings
    from pavilion.runtime import Runtime
    from pavilion.store.migrate import UpgradeReport

EXIT_CODES = "Exit codes: 0 done, 1 refused or a failed check (the reason on stderr), 2 usage."

app = typer.Typer(
    name="pavilion",
    help="Pavilion DP Connector: privacy-first eligibility verification.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
db_app = group("The database schema: create it or bring it up to date.")
app.add_typer(db_app, name="db")


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="YAML settings file; PAVILION_* variables override it.",
        ),
    ] = None,
) -> None:
    # Logging starts when a command first asks for settings (CliContext.start_logging).
    enter(ctx, CliContext(config_file=config))


def migrate(s: Settings) -> UpgradeReport:
    """Upgrade the schema; a migration that seals rows stored in clear gets the tenants' data
    keys from the keystore, opened only if one asks."""
    import asyncio

    from pavilion.keystore.base import Keystore
    from pavilion.keystore.factory import open_keystore
    from pavilion.store.migrate import app_role_for, upgrade

    opened: list[Keystore] = []

    def data_keys(tenant_id: str, kek_id: str, wrapped: bytes) -> bytes:
        from pavilion.tenancy.service import data_key_context

        if not opened:
            opened.append(open_keystore(s))
        return opened[0].unwrap_key(kek_id, wrapped, data_key_context(tenant_id))

    try:
        return upgrade(
            s.database_migration_url,
            app_role_for(s.database_url, s.database_migration_url),
            data_keys=data_keys,
        )
    finally:
        for keystore in opened:
            asyncio.run(keystore.aclose())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or update the schema (and row-level security on PostgreSQL). Safe to re-run.

    Says which database, which migrations it applied and how many tables it created, or
    that there was nothing to do.

    Example: PAVILION_DATA_DIR=./pavilion-data pavilion db upgrade
    """
    from pavilion.store.migrate import describe_database

    s = cli_settings()
    from pavilion.store.private_files import private_dir

    private_dir(s.data_dir)
    report = migrate(s)
    where = describe_database(s.database_migration_url)
    if not report.applied:
        out.print(
            f"{where}: the schema is already up to date ({len(report.tables)} tables); "
            "nothing to do",
            highlight=False,
            markup=False,
        )
        return
    out.print(
        f"{where}: {len(report.applied)} migrations applied, "
        f"{len(report.created_tables)} tables created:",
        highlight=False,
        markup=False,
    )
    for revision, doc in report.applied:
        out.print(f"  {revision} {doc}", highlight=False, markup=False)
    out.print("[green]the schema is up to date[/green]")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(metavar="ADDRESS", help="Overrides PAVILION_HOST.")
    ] = None,
    port: Annotated[
        int | None, typer.Option(metavar="PORT", help="Overrides PAVILION_PORT.")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            metavar="N",
            help="Worker processes on one socket, each with its own runtime; more than one "
            "needs PostgreSQL (PAVILION_DATABASE_URL).",
        ),
    ] = 1,
) -> None:
    """Run the connector's HTTP API until Ctrl-C or SIGTERM.

    Prints "listening on URL" on stderr once the port is bound (port 0 picks a free one).

    Example: pavilion serve --port 8600
    """
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
        err.print(
            f"listening on {url}{many}; API documentation at {url}/docs; Ctrl-C stops",
            highlight=False,
            markup=False,
        )

    if workers > 1:
        _serve_workers(s, workers, announce)
        return
    from pavilion.api.app import create_app
    from pavilion.runtime import build_runtime
    from pavilion.workflows.server_tls import tls_context

    rt = build_runtime(s)
    rt.build_all()  # a keystore or settings problem stops here, before uvicorn starts
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
    out_file: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="Write here instead of standard output."),
    ] = None,
) -> None:
    """Print the connector's OpenAPI document (docs/openapi.json is this output).

    Example: pavilion openapi --out docs/openapi.json
    """
    import tempfile

    from pavilion.api.app import create_app
    from pavilion.config.settings import load_settings
    from pavilion.runtime import build_runtime

    with tempfile.TemporaryDirectory() as scratch:
        document = create_app(build_runtime(load_settings(None, data_dir=Path(scratch)))).openapi()
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if out_file is None:
        print(text, end="")
    else:
        out_file.write_text(text, encoding="utf-8")


def main() -> None:
    try:
        app()
    except PavilionError as exc:
        from rich.markup import escape

        err.print(f"[red]error:[/red] {escape(exc.detail)}", highlight=False)
        sys.exit(1)


def _register_commands() -> None:
    # Commands that live in their own modules add themselves to the one app.
    from pavilion.cli import audit_log, registry

    registry.register(app)
    audit_log.register(app)
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
    from pavilion.cli import tls  # issue 14: the connector's own TLS key

    tls.register(app)


_register_commands()
