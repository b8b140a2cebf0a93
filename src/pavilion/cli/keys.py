"""``pavilion keys``: the platform's keys (software keystore or HSM), audited."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from pavilion.cli.context import run_async

if TYPE_CHECKING:
    from pavilion.runtime import Runtime
    from pavilion.workflows.key_lifecycle import KeyChange

keys_app = typer.Typer(
    help="Signing and key-encryption keys: create, list, rotate, activate, retire.",
    no_args_is_help=True,
)
console = Console()
ACTOR = "cli"
KEY_ID_HELP = "kid or key name; a kid that starts with '-' goes after '--'."

PurposeOption = Annotated[
    str,
    typer.Option(help="credential-signing, audit-signing or key-encryption."),
]
AlgorithmOption = Annotated[
    str | None,
    typer.Option(help="ES256 or EdDSA (signing), A256GCM (key encryption); default per purpose."),
]


def _print_change(change: KeyChange, verb: str) -> None:
    key = change.key
    console.print(
        f"key [bold]{key.key_id}[/bold] ({key.purpose} {key.algorithm}) {verb}: now "
        f"{key.state}; audit leaf {change.audit_index} of the platform log"
    )
    if change.previous_active:
        console.print(
            f"previous active key {change.previous_active} stays in the JWKS until retired"
        )


@keys_app.command("list")
def keys_list(
    purpose: Annotated[str | None, typer.Option(help="Only keys of this purpose.")] = None,
) -> None:
    """List every key (never key material)."""

    async def work(rt: Runtime) -> None:
        table = Table("key id", "purpose", "alg", "state", "created", "backend")
        for meta in await rt.keys.list():
            if purpose is None or meta.purpose == purpose:
                table.add_row(
                    meta.key_id,
                    meta.purpose,
                    meta.algorithm,
                    meta.state,
                    meta.created_at[:19],
                    meta.backend,
                )
        console.print(table)

    run_async(work)


@keys_app.command("create")
def keys_create(
    purpose: PurposeOption,
    algorithm: AlgorithmOption = None,
    activate: Annotated[bool, typer.Option(help="Make it the active key at once.")] = False,
) -> None:
    """Create a key inside the keystore (pending: published in the JWKS, not yet signing)."""

    async def work(rt: Runtime) -> None:
        change = await rt.keys.create(purpose, algorithm, activate=activate, actor=ACTOR)
        _print_change(change, "created")

    run_async(work)


@keys_app.command("rotate")
def keys_rotate(purpose: PurposeOption, algorithm: AlgorithmOption = None) -> None:
    """Create a key and make it sign; the old key stays in the JWKS until it is retired."""

    async def work(rt: Runtime) -> None:
        _print_change(await rt.keys.rotate(purpose, algorithm, actor=ACTOR), "rotated in")

    run_async(work)


@keys_app.command("activate")
def keys_activate(key_id: Annotated[str, typer.Argument(help=KEY_ID_HELP)]) -> None:
    """Make a pending (or inactive) key the one that signs."""

    async def work(rt: Runtime) -> None:
        _print_change(await rt.keys.activate(key_id, actor=ACTOR), "activated")

    run_async(work)


@keys_app.command("retire")
def keys_retire(key_id: Annotated[str, typer.Argument(help=KEY_ID_HELP)]) -> None:
    """Retire a key for good: it leaves the JWKS and is never used again."""

    async def work(rt: Runtime) -> None:
        _print_change(await rt.keys.retire(key_id, actor=ACTOR), "retired")

    run_async(work)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
