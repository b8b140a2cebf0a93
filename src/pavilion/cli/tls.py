"""``pavilion tls``: the connector's own TLS key, sealed under the keystore."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from pavilion.cli.context import run_async

if TYPE_CHECKING:
    from pavilion.runtime import Runtime

tls_app = typer.Typer(help="The TLS endpoint of `pavilion serve`.", no_args_is_help=True)
console = Console(stderr=True)


@tls_app.command("seal-key")
def seal_key(
    key: Annotated[Path, typer.Argument(help="The PEM private key (unencrypted).")],
    out: Annotated[Path, typer.Option(help="Where to write the sealed key.")],
) -> None:
    """Seal the server's TLS private key under the keystore's key-encryption key, for
    PAVILION_TLS_KEY_FILE (then delete the plaintext key)."""
    from pavilion.workflows.server_tls import seal_tls_key

    plain = key.read_bytes()

    async def work(rt: Runtime) -> str:
        return seal_tls_key(rt.keystore, plain)

    document = run_async(work)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(document)
    console.print(f"sealed key written to {out}; point PAVILION_TLS_KEY_FILE at it")


def register(app: typer.Typer) -> None:
    app.add_typer(tls_app, name="tls")
