"""``pavilion audit checkpoint|verify``: the tamper-evident audit log from the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from pavilion.cli.context import resolve_tenant, run_async
from pavilion.cli.output import JsonOption, err, group, out, print_json

if TYPE_CHECKING:
    from pavilion.runtime import Runtime

audit_app = group("The tamper-evident audit log: signed checkpoints and their verification.")

TenantOption = Annotated[str, typer.Option(metavar="NAME|ID", help="Tenant name or id.")]


def register(app: typer.Typer) -> None:
    """Add ``audit`` to the main Typer app."""
    app.add_typer(audit_app, name="audit")


@audit_app.command("checkpoint")
def audit_checkpoint(tenant: TenantOption, as_json: JsonOption = False) -> None:
    """Sign (if the log grew) and print the latest checkpoint as a signed note.

    The note goes to stdout, the key that verifies it to stderr (both in --json).

    Example: pavilion audit checkpoint --tenant acme-university > checkpoint.txt
    """

    async def work(rt: Runtime) -> tuple[str, str]:
        tenant_id = await resolve_tenant(rt, tenant)
        checkpoint = await rt.audit.checkpoint(tenant_id)
        return checkpoint.note, rt.audit.verifier_key_for(tenant_id)

    note, verifier_key = run_async(work)
    if as_json:
        print_json({"note": note, "verifier_key": verifier_key})
        return
    print(note, end="")
    err.print(f"verifier key: {verifier_key}", highlight=False, markup=False)


@audit_app.command("verify")
def audit_verify(
    tenant: Annotated[
        str | None,
        typer.Option(metavar="NAME|ID", help="Tenant name or id; every tenant when omitted."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute every tenant's tree from storage and check every signed checkpoint.

    Exit 1 when anything does not match: a line 'TAMPERED <tenant>: <problem>' names the
    first changed leaf (or the span it lies in) and each failing checkpoint.

    Example: pavilion audit verify --tenant acme-university
    """

    async def work(rt: Runtime) -> list[dict[str, Any]]:
        if tenant is not None:
            chosen = [await rt.tenancy.get_tenant(await resolve_tenant(rt, tenant))]
        else:
            chosen = await rt.tenancy.list_tenants(limit=100_000, after=None)
        reports = []
        for t in chosen:
            report = await rt.audit.verify(t.id)
            reports.append(
                {
                    "tenant": t.name,
                    "tenant_id": t.id,
                    "leaves": report.size,
                    "root": report.root_hash,
                    "checkpoints": report.checkpoints_checked,
                    "ok": report.ok,
                    "problems": list(report.problems),
                }
            )
        return reports

    reports = run_async(work)
    if as_json:
        print_json(reports)
    else:
        table = Table("tenant", "id", "leaves", "root", "checkpoints", "result")
        for r in reports:
            table.add_row(
                r["tenant"],
                r["tenant_id"],
                str(r["leaves"]),
                r["root"],
                str(r["checkpoints"]),
                "[green]ok[/green]" if r["ok"] else f"[red]{len(r['problems'])} problems[/red]",
            )
        out.print(table)
        for r in reports:
            for problem in r["problems"]:
                print(f"TAMPERED {r['tenant']}: {problem}")
    if not all(r["ok"] for r in reports):
        raise typer.Exit(1)
