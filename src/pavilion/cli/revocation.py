"""``pavilion credentials revoke|suspend|reinstate|status``: a credential's status-list state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from pavilion.cli.context import resolve_tenant, run_async

if TYPE_CHECKING:
    from pavilion.runtime import Runtime

console = Console()
ACTOR = "cli"

TenantOption = Annotated[str, typer.Option(help="Tenant name or id.")]
CredentialArg = Annotated[str, typer.Argument(help="The credential id.")]
ReasonOption = Annotated[
    str | None, typer.Option(help="Why (kept only as a SHA-256 in the audit leaf).")
]


def _change(action: str, tenant: str, credential_id: str, reason: str | None) -> None:
    async def work(rt: Runtime) -> None:
        tenant_id = await resolve_tenant(rt, tenant)
        change = await rt.status_lists.change_status(
            tenant_id, credential_id, action, actor=ACTOR, reason=reason
        )
        if change.changed:
            console.print(
                f"credential {credential_id}: {change.previous} -> [bold]{change.state}[/bold] "
                f"(audit leaf {change.audit_index})"
            )
        else:
            console.print(f"credential {credential_id} is already {change.state}: nothing to do")

    run_async(work)


def revoke(tenant: TenantOption, credential_id: CredentialArg, reason: ReasonOption = None) -> None:
    """Revoke a credential for good (its status list says INVALID)."""
    _change("revoke", tenant, credential_id, reason)


def suspend(
    tenant: TenantOption, credential_id: CredentialArg, reason: ReasonOption = None
) -> None:
    """Suspend a credential (2-bit token lists, or the bitstring suspension list)."""
    _change("suspend", tenant, credential_id, reason)


def reinstate(
    tenant: TenantOption, credential_id: CredentialArg, reason: ReasonOption = None
) -> None:
    """Lift a suspension (a revoked credential stays revoked)."""
    _change("reinstate", tenant, credential_id, reason)


def status(tenant: TenantOption, credential_id: CredentialArg) -> None:
    """Show a credential's state and the status lists (and indices) that publish it."""

    async def work(rt: Runtime) -> None:
        tenant_id = await resolve_tenant(rt, tenant)
        found = await rt.status_lists.credential_status(tenant_id, credential_id)
        console.print(f"credential {credential_id}: [bold]{found['state']}[/bold]")
        for item in found["lists"]:
            console.print(f"  {item['kind']} {item['purpose']} {item['uri']} idx {item['idx']}")

    run_async(work)


def credentials_group(app: typer.Typer) -> typer.Typer:
    """The ``pavilion credentials`` group, created on first use, so several modules share it."""
    for group in app.registered_groups:
        if group.name == "credentials" and group.typer_instance is not None:
            return group.typer_instance
    group_app = typer.Typer(help="Issued credentials.", no_args_is_help=True)
    app.add_typer(group_app, name="credentials")
    return group_app


def register(app: typer.Typer) -> None:
    group = credentials_group(app)
    for command in (revoke, suspend, reinstate, status):
        group.command(command.__name__)(command)
