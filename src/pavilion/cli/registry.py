"""``pavilion tenants|tokens|providers``: the tenants, their API tokens and their DPs.

Ids a script needs go alone to standard output (the message to standard error), so that
``TENANT_ID=$(pavilion tenants create acme)`` works; listings take ``--json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from pavilion.cli.context import resolve_tenant, run_async
from pavilion.cli.output import JsonOption, err, group, out, print_json
from pavilion.errors import PavilionError
from pavilion.tenancy.roles import Role

if TYPE_CHECKING:
    from pavilion.runtime import Runtime

tenants_app = group("Tenants: each customer of the platform, with its own data key.")
tokens_app = group("API tokens: a secret per caller and role, shown once.")
providers_app = group("The DP registry: data providers, their endpoints and their record schema.")

TenantOption = Annotated[str, typer.Option(metavar="NAME|ID", help="Tenant name or id.")]


def register(app: typer.Typer) -> None:
    """Add ``tenants``, ``tokens`` and ``providers`` (with ``providers status``) to the app."""
    from pavilion.cli import connections  # live DP endpoint health from a running node

    providers_app.command("status")(connections.providers_status)
    app.add_typer(tenants_app, name="tenants")
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(providers_app, name="providers")


@tenants_app.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A unique tenant name.")],
) -> None:
    """Create a tenant with its own data key; prints its id on stdout.

    Example: TENANT_ID=$(pavilion tenants create acme-university)
    """

    async def work(rt: Runtime) -> None:
        tenant = await rt.tenancy.create_tenant(name)
        err.print(f"tenant {tenant.name} created: id {tenant.id}", highlight=False, markup=False)
        print(tenant.id)

    run_async(work)


@tenants_app.command("list")
def tenants_list(as_json: JsonOption = False) -> None:
    """List tenants: id, name and when each was created.

    Example: pavilion tenants list --json
    """

    async def work(rt: Runtime) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = []
        after = None
        while True:
            page = await rt.tenancy.list_tenants(limit=200, after=after)
            rows += [
                {"id": t.id, "name": t.name, "created": t.created_at.isoformat(timespec="seconds")}
                for t in page
            ]
            if len(page) < 200:
                return rows
            after = page[-1].id

    rows = run_async(work)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "created")
    for row in rows:
        table.add_row(row["id"], row["name"], row["created"])
    out.print(table)


@tokens_app.command("create")
def tokens_create(
    tenant: Annotated[
        str,
        typer.Option(
            metavar="NAME|ID", help="Tenant name or id; 'platform' for a platform-admin token."
        ),
    ],
    role: Annotated[Role, typer.Option(help="The token's role.")],
    name: Annotated[str, typer.Option(metavar="TEXT", help="What the token is for.")] = "cli",
    expires_in: Annotated[
        int | None,
        typer.Option(
            min=60, max=366 * 86_400, metavar="SECONDS", help="Seconds until it stops working."
        ),
    ] = None,
) -> None:
    """Create an API token. The secret is printed once, on standard output only.

    Example: BROKER_TOKEN=$(pavilion tokens create --tenant acme-university --role broker)
    """
    from datetime import timedelta

    async def work(rt: Runtime) -> None:
        await rt.tenancy.ensure_platform_tenant()
        tenant_id = await resolve_tenant(rt, tenant)
        ttl = timedelta(seconds=expires_in) if expires_in is not None else None
        issued = await rt.tenancy.create_token(tenant_id, name, role, ttl=ttl)
        until = f", expires {issued.expires_at.isoformat()}" if issued.expires_at else ""
        err.print(
            f"token {issued.id} ({role.value}) for tenant {tenant}{until}; store it now, "
            "it is not shown again:",
            highlight=False,
            markup=False,
        )
        print(issued.secret)

    run_async(work)


def _validation_message(spec: Path, document: Any, exc: Any) -> str:
    """Every error of a provider definition, each at its path in the file."""
    lines = [
        f"{_path_in(document, error['loc']) or '(top level)'}: {error['msg']}"
        for error in exc.errors(include_input=False)
    ]
    return f"{spec}: " + "; ".join(lines) + " (pavilion providers schema prints the shape)"


def _path_in(document: Any, loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a path in the file. A discriminated union (auth) puts its
    tag right after the union's field (auth.api_key.api_key for the file's auth.api_key):
    the tag is left out, once per object."""
    node, where, tag_passed = document, [], False
    for position, part in enumerate(loc):
        is_tag = isinstance(node, dict) and node.get("type") == part and not tag_passed
        if is_tag and position < len(loc) - 1:
            tag_passed = True
            continue
        where.append(str(part))
        tag_passed = False
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return ".".join(where)


def _with_api_key(spec: Path, document: Any, key: str) -> Any:
    """The definition with ``auth.api_key`` set from the environment (auth must be api_key)."""
    if not key:
        raise PavilionError("--api-key-env names an empty or unset variable")
    auth = document.get("auth") if isinstance(document, dict) else None
    if not isinstance(auth, dict) or auth.get("type", "api_key") != "api_key":
        raise PavilionError(f"{spec}: --api-key-env needs auth: {{type: api_key}}")
    return {**document, "auth": {**auth, "type": "api_key", "api_key": key}}


@providers_app.command("register")
def providers_register(
    tenant: TenantOption,
    spec: Annotated[
        Path, typer.Argument(metavar="FILE", help="Provider definition, YAML or JSON.")
    ],
    api_key_env: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Take auth.api_key from this environment variable (the agent's key stays out "
            "of the file and the command line).",
        ),
    ] = None,
) -> None:
    """Register a DP from a file; prints its id on stdout.

    The file's shape is printed by 'pavilion providers schema' and described in
    docs/PROVIDERS.md; examples/provider.yaml is one that works.

    \b
    Example:
      PROVIDER_ID=$(pavilion providers register --tenant acme-university \\
        --api-key-env PAVILION_DP_API_KEY examples/provider.yaml)
    """
    import os

    import yaml
    from pydantic import ValidationError

    from pavilion.parsing import load_yaml
    from pavilion.providers.schemas import ProviderIn

    document: Any = None
    try:
        document = load_yaml(spec.read_text("utf-8"), what=str(spec))
        if api_key_env is not None:
            document = _with_api_key(spec, document, os.environ.get(api_key_env, "").strip())
        provider_in = ProviderIn.model_validate(document)
    except (OSError, yaml.YAMLError) as exc:
        raise PavilionError(f"{spec}: cannot read provider definition: {exc}") from exc
    except ValidationError as exc:
        raise PavilionError(_validation_message(spec, document, exc)) from exc

    async def work(rt: Runtime) -> None:
        tenant_id = await resolve_tenant(rt, tenant)
        registered = await rt.providers.register(tenant_id, provider_in)
        err.print(
            f"provider {registered.name} registered: id {registered.id}",
            highlight=False,
            markup=False,
        )
        print(registered.id)

    run_async(work)


@providers_app.command("list")
def providers_list(tenant: TenantOption, as_json: JsonOption = False) -> None:
    """List a tenant's providers, their claim types and regions.

    Example: pavilion providers list --tenant acme-university --json
    """

    async def work(rt: Runtime) -> list[dict[str, Any]]:
        tenant_id = await resolve_tenant(rt, tenant)
        return [
            p.model_dump(mode="json", include={"id", "name", "claim_types", "endpoints"})
            for p in await rt.providers.list(tenant_id, limit=500, after=None)
        ]

    providers = run_async(work)
    if as_json:
        print_json(providers)
        return
    table = Table("id", "name", "claims", "regions")
    for p in providers:
        regions = ", ".join(f"{e['region']} ({e['jurisdiction']})" for e in p["endpoints"])
        table.add_row(p["id"], p["name"], ", ".join(p["claim_types"]), regions)
    out.print(table)


@providers_app.command("schema")
def providers_schema() -> None:
    """Print the JSON Schema of a provider definition (what 'providers register' reads).

    docs/schemas/provider.schema.json is this output; docs/PROVIDERS.md describes each member.

    Example: pavilion providers schema > provider.schema.json
    """
    from pavilion.providers.schemas import provider_definition_schema

    print(json.dumps(provider_definition_schema(), indent=2, sort_keys=True))
