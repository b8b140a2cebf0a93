"""``pavilion privacy dp-keys|tag-set``: the DP side of the privacy engine, run where the DP
agent runs (its OPRF and manifest-signing keys, and the push of its roster as tag sets).

Results are JSON on standard output; messages go to standard error.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from pavilion.cli.output import err as err_printer
from pavilion.cli.output import group
from pavilion.errors import PavilionError

DEFAULT_TOKEN_ENV: Final = "PAVILION_CONNECTOR_TOKEN"  # noqa: S105  a variable name

dp_keys_app = group("The DP agent's OPRF and tag-set signing keys (DP side).")
tag_set_app = group("Push the DP's roster as OPRF tag sets (DP side).")

KeyDir = Annotated[Path, typer.Option("--dir", metavar="DIR", help="The DP agent's key directory.")]


def _message(text: str) -> None:
    err_printer.print(text, markup=False, highlight=False)


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


@dp_keys_app.command("init")
def dp_keys_init(directory: KeyDir) -> None:
    """Generate the OPRF key and tag-set signing key (kept if they exist); print public keys.

    Example: pavilion privacy dp-keys init --dir dp-keys
    """
    from pavilion.dpagent.oprf_keys import OprfKeyRing

    ring = OprfKeyRing.open(directory)
    _print(_public_keys(ring))
    _message(
        "register tag_set_signing_key with the connector: pavilion privacy tag-set-key register "
        "--tenant <tenant> --provider <provider id> --jwk-file <this output, saved>"
    )


@dp_keys_app.command("rotate")
def dp_keys_rotate(directory: KeyDir) -> None:
    """Make a new current OPRF key; the previous one serves until tag sets are pushed again.

    Example: pavilion privacy dp-keys rotate --dir dp-keys
    """
    from pavilion.dpagent.oprf_keys import OprfKeyRing

    ring = OprfKeyRing.open(directory, create=False)
    key = ring.rotate()
    _message(f"new current OPRF key {key.key_id}; push the tag sets again (tag-set push)")
    _print(_public_keys(ring))


@dp_keys_app.command("show")
def dp_keys_show(directory: KeyDir) -> None:
    """Print the public keys (never the private ones).

    Example: pavilion privacy dp-keys show --dir dp-keys > dp-keys.pub.json
    """
    from pavilion.dpagent.oprf_keys import OprfKeyRing

    _print(_public_keys(OprfKeyRing.open(directory, create=False)))


def _public_keys(ring: Any) -> dict[str, Any]:
    return {
        "oprf_keys": [k.public() for k in ring.all_keys()],
        "tag_set_signing_key": ring.signing_public_jwk(),
    }


@tag_set_app.command("push")
def tag_set_push(
    *,
    records: Annotated[
        Path,
        typer.Option(metavar="FILE", dir_okay=False, help="Roster file (.csv or .json)."),
    ],
    directory: KeyDir,
    connector: Annotated[str, typer.Option(metavar="URL", help="The connector's base URL.")],
    tenant_id: Annotated[
        str, typer.Option(metavar="ID", help="The DP's tenant id at the connector.")
    ],
    provider_id: Annotated[
        str, typer.Option(metavar="ID", help="The DP's provider id at the connector.")
    ],
    token_env: Annotated[
        str,
        typer.Option(metavar="NAME", help="Environment variable holding a dp-admin token."),
    ] = DEFAULT_TOKEN_ENV,
    tag_bytes: Annotated[
        int, typer.Option(min=4, max=32, metavar="N", help="Bytes kept per tag.")
    ] = 8,
    workers: Annotated[
        int, typer.Option(min=1, max=64, metavar="N", help="Threads for the OPRF.")
    ] = 2,
) -> None:
    """Encode every set of the roster as VOPRF tags, sign the manifests and push them.

    First checks that the connector holds this agent's tag-set signing key (tag-set-key
    register), so a missing key fails before the tags are computed.

    \b
    Example:
      pavilion privacy tag-set push --records roster.csv --dir dp-keys \\
        --connector http://127.0.0.1:8600 --tenant-id $TENANT_ID --provider-id $PROVIDER_ID
    """
    from pavilion.dpagent.oprf_keys import OprfKeyRing
    from pavilion.dpagent.records import RecordLoadError, load_records
    from pavilion.dpagent.tag_set_push import PushTarget, push_tag_sets

    token = os.environ.get(token_env, "").strip()
    if not token:
        raise typer.BadParameter(f"set ${token_env} to a dp-admin token of the connector")
    try:
        index = load_records(records)
    except RecordLoadError as exc:
        raise PavilionError(exc.detail) from exc
    ring = OprfKeyRing.open(directory, create=False)
    target = PushTarget(connector, token, tenant_id, provider_id)
    pushed = asyncio.run(
        push_tag_sets(list(index), ring, target, tag_bytes=tag_bytes, workers=workers)
    )
    for item in pushed:
        _message(
            f"set {item['set']!r} version {item['version']}: {item['count']:,} tags, "
            f"false-positive rate {item['false_positive_rate']:.2e}"
        )
    _print(pushed)
