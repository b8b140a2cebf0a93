"""``pavilion dp-agent``: serve a roster to the connector.

The API key never appears on the command line, where process lists and shell history would
show it: it comes from an environment variable or a file.
"""

from __future__ import annotations

import os
import stat
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

if TYPE_CHECKING:
    from pydantic import SecretStr

DEFAULT_API_KEY_ENV: Final = "PAVILION_DP_API_KEY"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


def register(app: typer.Typer) -> None:
    """Add ``dp-agent`` to the main Typer app."""
    app.command("dp-agent")(dp_agent)


def dp_agent(
    *,
    records: Annotated[
        Path,
        typer.Option(
            "--records",
            metavar="FILE",
            dir_okay=False,
            help="Roster to serve: .csv (header row) or .json.",
        ),
    ],
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, metavar="PORT", help="0 picks a free port.")
    ] = 8700,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help=f"Environment variable holding the API key (default {DEFAULT_API_KEY_ENV}).",
        ),
    ] = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            dir_okay=False,
            help="File holding the API key (surrounding spaces ignored).",
        ),
    ] = None,
    insecure_no_auth: Annotated[
        bool, typer.Option("--insecure-no-auth", help="Serve without an API key (local tests).")
    ] = False,
    security: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            dir_okay=False,
            help="YAML/JSON: TLS, mutual TLS, OAuth2 (docs/DP_AGENT.md).",
        ),
    ] = None,
    latency_ms: Annotated[
        float, typer.Option(min=0.0, metavar="MS", help="Delay added to lookups.")
    ] = 0.0,
    latency_jitter_ms: Annotated[
        float, typer.Option(min=0.0, metavar="MS", help="Extra uniform random delay, up to this.")
    ] = 0.0,
    error_rate: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, metavar="SHARE", help="Share of lookups answered 500."),
    ] = 0.0,
    garbage_rate: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, metavar="SHARE", help="Share of lookups answered with garbage."
        ),
    ] = 0.0,
    seed: Annotated[
        int | None,
        typer.Option(metavar="N", help="Seed for fault injection, for repeatable runs."),
    ] = None,
    oprf_key_dir: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            file_okay=False,
            help="Serve OPRF evaluations (PSI) with keys from here.",
        ),
    ] = None,
    oprf_rate: Annotated[
        float,
        typer.Option(min=0.001, metavar="N", help="OPRF evaluations per second per tenant."),
    ] = 20.0,
    oprf_burst: Annotated[
        int, typer.Option(min=1, metavar="N", help="OPRF evaluations a tenant may make at once.")
    ] = 2000,
    log_level: Annotated[
        LogLevel, typer.Option(case_sensitive=False, help="Logs are JSON lines on stderr.")
    ] = LogLevel.INFO,
) -> None:
    """Run a DP agent that answers the connector's lookups from a roster file.

    The API key comes from $PAVILION_DP_API_KEY (or --api-key-env / --api-key-file), never
    the command line; the same key goes in the provider definition's auth.api_key. Prints
    "DP agent serving N records on URL" on stderr once listening.

    Example: PAVILION_DP_API_KEY=$(openssl rand -hex 24) pavilion dp-agent --records roster.csv
    """
    from pydantic import ValidationError

    from pavilion.dpagent.config import AgentConfig, FaultConfig
    from pavilion.dpagent.oprf_config import OprfConfig
    from pavilion.dpagent.records import RecordLoadError, load_records
    from pavilion.dpagent.runner import run_agent
    from pavilion.dpagent.security import announced, load_cli_security, replaces_api_key
    from pavilion.errors import ServerStartFailed
    from pavilion.observability.logging import configure_logging

    agent_security = load_cli_security(security)
    api_key = (
        None
        if replaces_api_key(agent_security, api_key_env, api_key_file)
        else _api_key(api_key_env, api_key_file, insecure_no_auth=insecure_no_auth)
    )
    try:
        config = AgentConfig(
            api_key=api_key,
            insecure_no_auth=insecure_no_auth,
            security=agent_security,
            faults=FaultConfig(
                latency_ms=latency_ms,
                latency_jitter_ms=latency_jitter_ms,
                error_rate=error_rate,
                garbage_rate=garbage_rate,
                seed=seed,
            ),
            oprf=OprfConfig(key_dir=oprf_key_dir, rate_per_second=oprf_rate, burst=oprf_burst)
            if oprf_key_dir is not None
            else None,
        )
    except ValidationError as exc:
        # Formatted by hand: the default rendering would echo the inputs, the key among them.
        reasons = "; ".join(error["msg"] for error in exc.errors(include_input=False))
        raise typer.BadParameter(reasons) from None
    try:
        index = load_records(records)
    except RecordLoadError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    configure_logging(log_level.value)
    if insecure_no_auth:
        typer.echo("WARNING: authentication is off; anyone who can connect can look up.", err=True)

    def announce(url: str) -> None:
        url, auth = announced(
            url, agent_security, api_key=api_key is not None, insecure=insecure_no_auth
        )
        typer.echo(f"DP agent serving {len(index):,} records on {url} (auth: {auth})", err=True)

    try:
        run_agent(config, index, host, port, on_listening=announce)
    except ServerStartFailed as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None


def _api_key(
    env_name: str | None, key_file: Path | None, *, insecure_no_auth: bool
) -> SecretStr | None:
    """Read the key from exactly one source, or none when auth is explicitly off."""
    from pydantic import SecretStr

    if insecure_no_auth:
        if env_name is not None or key_file is not None:
            raise typer.BadParameter("--insecure-no-auth takes no API key source")
        return None
    if env_name is not None and key_file is not None:
        raise typer.BadParameter("give --api-key-env or --api-key-file, not both")
    if key_file is not None:
        return SecretStr(_read_key_file(key_file))
    name = env_name or DEFAULT_API_KEY_ENV
    key = os.environ.get(name, "").strip()
    if not key:
        raise typer.BadParameter(
            f"no API key: set ${name}, or pass --api-key-file "
            "(or --insecure-no-auth for local tests)"
        )
    return SecretStr(key)


def _read_key_file(path: Path) -> str:
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        raise typer.BadParameter(f"cannot read the API key file {path}: {exc.strerror}") from None
    try:
        key = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise typer.BadParameter(f"the API key file {path} is not UTF-8 text") from None
    if not key:
        raise typer.BadParameter(f"the API key file {path} is empty")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        typer.echo(f"WARNING: {path} is readable by other users; chmod 600 it.", err=True)
    return key
