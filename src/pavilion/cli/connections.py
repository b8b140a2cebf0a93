"""``pavilion providers status``: a live table of DP endpoint health from a running connector.

Health (EWMA latency, error rate, breaker, ejections) lives in the memory of each connector
node, so the command asks a node's API (``GET /v1/providers/{id}/health``) with a token that
may read providers, and redraws the table every ``--interval`` seconds until Ctrl-C (or
once with ``--once``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from pavilion.cli.output import PIPED_WIDTH
from pavilion.errors import PavilionError

if TYPE_CHECKING:
    import httpx

STATUS_STYLE = {
    "healthy": "green",
    "half-open": "yellow",
    "unknown": "dim",
    "ejected": "red",
    "open": "red",
    "unhealthy": "red",
}


def fetch_health(client: httpx.Client, provider: str | None) -> list[dict[str, Any]]:
    if provider is not None:
        ids = [provider]
    else:
        listing = _get(client, "/v1/providers", params={"limit": 200})
        ids = [p["id"] for p in listing["items"]]
    return [_get(client, f"/v1/providers/{pid}/health") for pid in ids]


def _get(client: httpx.Client, path: str, **kwargs: Any) -> Any:
    import httpx

    try:
        response = client.get(path, **kwargs)
    except httpx.HTTPError as exc:
        raise PavilionError(f"cannot reach the connector at {client.base_url}: {exc}") from exc
    if response.status_code != 200:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise PavilionError(f"{path}: HTTP {response.status_code}: {detail}")
    return response.json()


def render(healths: list[dict[str, Any]]) -> Table:
    table = Table(title="DP endpoints (this node's view)", expand=False)
    for column in ("provider", "region", "endpoint", "status", "breaker", "probe"):
        table.add_column(column)
    for column in ("ewma ms", "p95 ms", "errors", "in flight", "requests", "ejections", "tls"):
        table.add_column(column, justify="right" if column != "tls" else "left")
    for health in healths:
        for e in health["endpoints"]:
            style = STATUS_STYLE.get(e["status"], "")
            tls = e.get("tls") or {}
            table.add_row(
                health["name"],
                e["region"],
                e["url"],
                f"[{style}]{e['status']}[/{style}]" if style else e["status"],
                e["breaker"],
                e["probe"],
                "-" if e["ewma_ms"] is None else f"{e['ewma_ms']:.1f}",
                "-" if e["p95_ms"] is None else f"{e['p95_ms']:.1f}",
                f"{e['error_rate'] * 100:.1f}%",
                str(e["in_flight"]),
                str(e["requests"]),
                str(e["ejections"]),
                tls.get("tls_version", "-"),
            )
    return table


def providers_status(
    *,
    url: Annotated[
        str,
        typer.Option(metavar="URL", help="A running connector's base URL.", envvar="PAVILION_URL"),
    ] = "http://127.0.0.1:8600",
    token_env: Annotated[
        str, typer.Option(metavar="NAME", help="Environment variable holding an API token.")
    ] = "PAVILION_TOKEN",  # noqa: S107 (a variable name)
    provider: Annotated[
        str | None, typer.Option(metavar="ID", help="One provider id; default all.")
    ] = None,
    interval: Annotated[
        float, typer.Option(min=0.2, metavar="SECONDS", help="Seconds between refreshes.")
    ] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Print the table once and exit.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the health once as JSON (implies --once).")
    ] = False,
) -> None:
    """Live per-endpoint status, EWMA latency, error rate and breaker state of the DPs.

    Example: PAVILION_TOKEN=$ADMIN_TOKEN pavilion providers status --once
    """
    import httpx

    token = os.environ.get(token_env, "").strip()
    if not token:
        raise PavilionError(f"set ${token_env} to an API token that may read providers")
    # Wide enough for every column when the output is not a terminal (logs, pipes, tests).
    console = Console() if sys.stdout.isatty() else Console(width=PIPED_WIDTH)
    with httpx.Client(
        base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=5.0
    ) as client:
        if as_json:
            print(json.dumps(fetch_health(client, provider), indent=2))
            return
        if once:
            console.print(render(fetch_health(client, provider)))
            return
        with Live(render(fetch_health(client, provider)), console=console, screen=False) as live:
            try:
                while True:
                    time.sleep(interval)
                    live.update(render(fetch_health(client, provider)))
            except KeyboardInterrupt:
                return
