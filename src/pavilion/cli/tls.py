"""``pavilion tls``: the connector's own TLS key, sealed under the keystore."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pavilion.cli.context import run_async
from pavilion.cli.output import err as console
from pavilion.cli.output import group

if TYPE_CHECKING:
    from pavilion.runtime import Runtime

tls_app = group("The TLS endpoint of pavilion serve: its private key, sealed.")


@tls_app.command("seal-key")
def seal_key(
    key: Annotated[Path, typer.Argument(metavar="FILE", help="The PEM private key (unencrypted).")],
    out: Annotated[Path, typer.Option(metavar="FILE", help="Where to write the sealed key.")],
) -> None:
    """Seal the server's TLS private key under the keystore's key-encryption key, for
    PAVILION_TLS_KEY_FILE (then delete the plaintext key).

    Example: pavilion tls seal-key server.key --out server.key.sealed
    """
    from pavilion.workflows.server_tls import seal_tls_key

    plain = key.read_bytes()

    async def work(rt: Runtime) -> str:
        return seal_tls_key(rt.keystore, plain)

    document = run_async(work)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(document)
    console.print(
        f"sealed key written to {out}; point PAVILION_TLS_KEY_FILE at it",
        highlight=False,
        markup=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``tls`` to the main Typer app."""
    app.add_typer(tls_app, name="tls")
