"""``pavilion credentials revoke|suspend|reinstate|status``: a credential's status-list state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from pavilion.cli.context import resolve_tenant, run_async
from pavilion.cli.output import JsonOption, group, print_json
from pavilion.cli.output import out as console

if TYPE_CHECKING:
    from pavilion.runtime import Runtime

ACTOR = "cli"

TenantOption = Annotated[str, typer.Option(metavar="NAME|ID", help="Tenant name or id.")]
CredentialArg = Annotated[
    str,
    typer.Argument(
        metavar="CREDENTIAL_ID",
        help="The credential's id: its jti (credential_id in the verification's answer).",
    ),
]
ReasonOption = Annotated[
    str | None,
    typer.Option(metavar="TEXT", help="Why (kept only as a SHA-256 in the audit leaf)."),
]


def _change(action: str, tenant: str, credential_id: str, reason: str | None) -> None:
    async def work(rt: Runtime) -> None:
        tenant_id = await resolve_tenant(rt, tenant)
        change = await rt.status_lists.change_status(
            tenant_id, credential_id, action, actor=ACTOR, reason=reason
        )
        if change.changed:
            console.print(
                f"credential {credential_id}: {change.previous} -> {change.state} "
                f"(audit leaf {change.audit_index})",
                highlight=False,
                markup=False,
            )
        else:
            console.print(
                f"credential {credential_id} is already {change.state}: nothing to do",
                highlight=False,
                markup=False,
            )

    run_async(work)


def revoke(tenant: TenantOption, credential_id: CredentialArg, reason: ReasonOption = None) -> None:
    """Revoke a credential for good (its status list says INVALID).

    Example: pavilion credentials revoke --tenant acme-university $CREDENTIAL_ID --reason "left"
    """
    _change("revoke", tenant, credential_id, reason)


def suspend(
    tenant: TenantOption, credential_id: CredentialArg, reason: ReasonOption = None
) -> None:
    """Suspend a credential (2-bit token lists, or the bitstring suspension list).

    Example: pavilion credentials suspend --tenant acme-university $CREDENTIAL_ID
    """
    _change("suspend", tenant, credential_id, reason)


def reinstate(
    tenant: TenantOption, credential_id: CredentialArg, reason: ReasonOption = None
) -> None:
    """Lift a suspension (a revoked credential stays revoked).

    Example: pavilion credentials reinstate --tenant acme-university $CREDENTIAL_ID
    """
    _change("reinstate", tenant, credential_id, reason)


def status(tenant: TenantOption, credential_id: CredentialArg, as_json: JsonOption = False) -> None:
    """Show a credential's state and the status lists (and indices) that publish it.

    Example: pavilion credentials status --tenant acme-university $CREDENTIAL_ID
    """

    async def work(rt: Runtime) -> Any:
        tenant_id = await resolve_tenant(rt, tenant)
        return await rt.status_lists.credential_status(tenant_id, credential_id)

    found = run_async(work)
    if as_json:
        print_json(found)
        return
    console.print(f"credential {credential_id}: {found['state']}", highlight=False, markup=False)
    for item in found["lists"]:
        console.print(
            f"  {item['kind']} {item['purpose']} {item['uri']} idx {item['idx']}",
            highlight=False,
            markup=False,
        )


def credentials_group(app: typer.Typer) -> typer.Typer:
    """The ``pavilion credentials`` group, created on first use, so several modules share it."""
    for registered in app.registered_groups:
        if registered.name == "credentials" and registered.typer_instance is not None:
            return registered.typer_instance
    group_app = group(
        "Credentials: issue, verify and present them; revoke, suspend or reinstate; trust chains."
    )
    app.add_typer(group_app, name="credentials")
    return group_app


def register(app: typer.Typer) -> None:
    """Add revoke, suspend, reinstate and status to ``pavilion credentials``."""
    credentials = credentials_group(app)
    for command in (revoke, suspend, reinstate, status):
        credentials.command(command.__name__)(command)
