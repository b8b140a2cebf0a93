"""``pavilion keys``: the platform's keys (software keystore or HSM), audited."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from pavilion.cli.context import cli_settings, run_async
from pavilion.cli.output import JsonOption, group, out, print_json

if TYPE_CHECKING:
    from pavilion.keystore.base import KeyMeta
    from pavilion.runtime import Runtime
    from pavilion.workflows.key_lifecycle import KeyChange

keys_app = group(
    "Signing and key-encryption keys: create, list, rotate, activate, retire, replicate."
)
ACTOR = "cli"
KEY_ID_HELP = "kid or key name; a kid that starts with '-' goes after '--'."

PurposeOption = Annotated[
    str,
    typer.Option(metavar="PURPOSE", help="credential-signing, audit-signing or key-encryption."),
]
AlgorithmOption = Annotated[
    str | None,
    typer.Option(
        metavar="ALG",
        help="ES256 or EdDSA (credential-signing), EdDSA (audit-signing), A256GCM "
        "(key-encryption); the first is the default.",
    ),
]
KeyIdArgument = Annotated[str, typer.Argument(metavar="KEY_ID", help=KEY_ID_HELP)]

#: What a running server does after a lifecycle step made by another process (this CLI).
PICKUP = (
    "a running server picks the change up at its next keystore refresh "
    "(every PAVILION_KEY_USAGE_FLUSH_SECONDS, 30 s by default); restart it to switch at once"
)


def signs(meta: KeyMeta) -> str:
    """What a key is used for now, in words: which active key signs what, and why an active
    key may sign nothing (credentials are signed with the purpose's default algorithm)."""
    from pavilion.keystore.base import default_algorithm

    if meta.state == "retired":
        return "nothing (retired, out of the JWKS)"
    if meta.state in ("pending", "inactive"):
        if meta.purpose == "key-encryption":
            return "unwraps the data keys it wrapped" if meta.state == "inactive" else "nothing yet"
        return "nothing (published in the JWKS, so its signatures still verify)"
    if meta.purpose == "key-encryption":
        return "wraps tenant data keys"
    if meta.purpose == "audit-signing":
        return "audit checkpoints, roster manifests, receipts"
    if meta.algorithm == default_algorithm(meta.purpose):
        return "credentials (the connector's own key)"
    return (
        f"nothing: the connector signs credentials with its active "
        f"{default_algorithm(meta.purpose)} key; {meta.algorithm} signs only as a DP's "
        "certified key (pavilion credentials certify --algorithm EdDSA)"
    )


def _print_change(change: KeyChange, verb: str) -> None:
    key = change.key
    out.print(
        f"key {key.key_id} ({key.purpose} {key.algorithm}) {verb}: now "
        f"{key.state}; audit leaf {change.audit_index} of the platform log",
        highlight=False,
        markup=False,
    )
    if change.previous_active:
        out.print(
            f"previous active key {change.previous_active} stays in the JWKS until retired",
            highlight=False,
            markup=False,
        )
    if key.state == "active":
        out.print(f"it signs {signs(key)}; {PICKUP}", highlight=False, markup=False)


@keys_app.command("list")
def keys_list(
    purpose: Annotated[
        str | None, typer.Option(metavar="PURPOSE", help="Only keys of this purpose.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List every key (never key material): purpose, algorithm, state and what it signs.

    One key per purpose signs at a time: credentials with the active ES256 key (an active
    EdDSA credential-signing key signs only as a DP's certified key), the audit log with its
    EdDSA key.

    Example: pavilion keys list --purpose credential-signing
    """

    async def work(rt: Runtime) -> list[dict[str, Any]]:
        return [
            {
                "key_id": meta.key_id,
                "purpose": meta.purpose,
                "algorithm": meta.algorithm,
                "state": meta.state,
                "signs": signs(meta),
                "created": meta.created_at,
                "backend": meta.backend,
            }
            for meta in await rt.keys.list()
            if purpose is None or meta.purpose == purpose
        ]

    rows = run_async(work)
    if as_json:
        print_json(rows)
        return
    table = Table("key id", "purpose", "alg", "state", "signs", "created", "backend")
    for row in rows:
        table.add_row(
            row["key_id"],
            row["purpose"],
            row["algorithm"],
            row["state"],
            row["signs"],
            row["created"][:19],
            row["backend"],
        )
    out.print(table)


@keys_app.command("create")
def keys_create(
    purpose: PurposeOption,
    algorithm: AlgorithmOption = None,
    activate: Annotated[bool, typer.Option(help="Make it the active key at once.")] = False,
) -> None:
    """Create a key inside the keystore (pending: published in the JWKS, not yet signing).

    Example: pavilion keys create --purpose credential-signing --algorithm ES256
    """

    async def work(rt: Runtime) -> None:
        change = await rt.keys.create(purpose, algorithm, activate=activate, actor=ACTOR)
        _print_change(change, "created")

    run_async(work)


@keys_app.command("rotate")
def keys_rotate(purpose: PurposeOption, algorithm: AlgorithmOption = None) -> None:
    """Create a key and make it sign; the old key stays in the JWKS until it is retired.

    A running server switches at its next keystore refresh (PAVILION_KEY_USAGE_FLUSH_SECONDS,
    30 s by default). Credentials sign with the ES256 key: rotating in an EdDSA
    credential-signing key publishes it but does not change what signs.

    Example: pavilion keys rotate --purpose credential-signing
    """

    async def work(rt: Runtime) -> None:
        _print_change(await rt.keys.rotate(purpose, algorithm, actor=ACTOR), "rotated in")

    run_async(work)


@keys_app.command("activate")
def keys_activate(key_id: KeyIdArgument) -> None:
    """Make a pending (or inactive) key the one that signs (one active key per algorithm).

    Example: pavilion keys activate -- <kid from keys list>
    """

    async def work(rt: Runtime) -> None:
        _print_change(await rt.keys.activate(key_id, actor=ACTOR), "activated")

    run_async(work)


@keys_app.command("retire")
def keys_retire(key_id: KeyIdArgument) -> None:
    """Retire a key for good: it leaves the JWKS and is never used again.

    Example: pavilion keys retire -- <kid from keys list>
    """

    async def work(rt: Runtime) -> None:
        _print_change(await rt.keys.retire(key_id, actor=ACTOR), "retired")

    run_async(work)


@keys_app.command("replicate")
def keys_replicate(as_json: JsonOption = False) -> None:
    """Copy the connector's keys to the standby HSM token, wrapped under a replication key.

    Needs PAVILION_KEYSTORE_BACKEND=pkcs11 and PAVILION_HSM_STANDBY_TOKEN_LABEL (with its PIN).
    Keys leave the primary only wrapped (AES key wrap, RFC 5649) and are unwrapped inside the
    standby; keys already there are relabelled to their current state. Run it after every
    create, rotate or retire. See docs/HSM.md.

    Example: pavilion keys replicate
    """
    from pavilion.errors import ConfigurationError
    from pavilion.keystore.factory import hsm_config, hsm_standby_config
    from pavilion.keystore.pkcs11 import Pkcs11Token
    from pavilion.keystore.replication import replicate

    settings = cli_settings()
    standby = hsm_standby_config(settings) if settings.keystore_backend == "pkcs11" else None
    if standby is None:
        raise ConfigurationError(
            "pavilion keys replicate needs PAVILION_KEYSTORE_BACKEND=pkcs11 and a standby token "
            "(PAVILION_HSM_STANDBY_TOKEN_LABEL with PAVILION_HSM_STANDBY_PIN_FILE)"
        )
    with Pkcs11Token(hsm_config(settings)) as primary, Pkcs11Token(standby) as target:
        report = replicate(primary, target)
    if as_json:
        print_json(dataclasses.asdict(report))
        return
    kek = {
        "created": "created on the primary and sent to the standby",
        "sent": "sent to the standby",
        "present": "already on both tokens",
    }[report.kek]
    out.print(f"replication key: {kek}", highlight=False, markup=False)
    for verb, labels in (
        ("copied", report.copied),
        ("relabelled", report.relabelled),
        ("already there", report.present),
        ("NOT copied", report.skipped),
    ):
        for label in labels:
            out.print(f"{verb}: {label}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add ``keys`` to the main Typer app."""
    app.add_typer(keys_app, name="keys")
