"""``pavilion privacy ...``: the privacy engine from the command line.

"DP" is the data provider throughout. DP side (run where the DP agent runs): ``dp-keys
init|rotate|show``, ``tag-set push``. Connector side (run against the connector's database):
``tag-set-key register``, ``psi batch``, ``zk present``, ``budget set|show``, ``release`` (a
differentially private statistic), ``receipts verify``. The names before the rename (``roster
push``, ``roster-key register``, ``dp release``) are hidden deprecated aliases for one release.
Results are JSON on standard output; messages go to standard error.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.console import Console

from pavilion.cli.context import resolve_tenant, run_async
from pavilion.cli.deprecation import alias_command, alias_group
from pavilion.errors import PavilionError

if TYPE_CHECKING:
    from pavilion.privacy.budget import BudgetView
    from pavilion.runtime import Runtime
    from pavilion.workflows.anoncreds_issue import Revocation
    from pavilion.workflows.private_release import PrivateRelease
    from pavilion.workflows.psi import BatchPsiResult
    from pavilion.workflows.zk_present import ZkPresentation

err = Console(stderr=True)
DEFAULT_TOKEN_ENV: Final = "PAVILION_CONNECTOR_TOKEN"  # noqa: S105  a variable name

privacy_app = typer.Typer(
    help="Privacy engine: PSI, ZK predicates, differentially private releases, receipts."
)
dp_keys_app = typer.Typer(help="The DP agent's OPRF and tag-set signing keys (DP side).")
tag_set_app = typer.Typer(help="Push the DP's roster as OPRF tag sets (DP side).")
tag_set_key_app = typer.Typer(help="Register a DP's tag-set signing key (connector side).")
psi_app = typer.Typer(help="Private set intersection against a pushed tag set.")
zk_app = typer.Typer(help="Zero-knowledge predicate presentations (AnonCreds).")
budget_app = typer.Typer(help="Privacy budgets (the ledger of epsilon and delta).")
receipts_app = typer.Typer(help="Privacy receipts: signatures and audit-log inclusion.")
anoncreds_app = typer.Typer(help="AnonCreds credentials: revocation (published as deltas).")
for _sub, _name in (
    (dp_keys_app, "dp-keys"),
    (tag_set_app, "tag-set"),
    (tag_set_key_app, "tag-set-key"),
    (psi_app, "psi"),
    (zk_app, "zk"),
    (budget_app, "budget"),
    (receipts_app, "receipts"),
    (anoncreds_app, "anoncreds"),
):
    _sub.info.no_args_is_help = True
    privacy_app.add_typer(_sub, name=_name)
privacy_app.info.no_args_is_help = True

TenantOption = Annotated[str, typer.Option(help="Tenant name or id.")]
KeyDir = Annotated[Path, typer.Option("--dir", help="The DP agent's key directory.")]


def register(app: typer.Typer) -> None:
    app.add_typer(privacy_app, name="privacy")


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


# --------------------------------------------------------------------------- DP side


@dp_keys_app.command("init")
def dp_keys_init(directory: KeyDir) -> None:
    """Generate the OPRF key and tag-set signing key (kept if they exist); print public keys."""
    from pavilion.dpagent.oprf_keys import OprfKeyRing

    ring = OprfKeyRing.open(directory)
    _print(_public_keys(ring))
    err.print("register tag_set_signing_key with the connector (tag-set-key register, or the API)")


@dp_keys_app.command("rotate")
def dp_keys_rotate(directory: KeyDir) -> None:
    """Make a new current OPRF key; the previous one serves until tag sets are pushed again."""
    from pavilion.dpagent.oprf_keys import OprfKeyRing

    ring = OprfKeyRing.open(directory, create=False)
    key = ring.rotate()
    err.print(f"new current OPRF key {key.key_id}; push the tag sets again (tag-set push)")
    _print(_public_keys(ring))


@dp_keys_app.command("show")
def dp_keys_show(directory: KeyDir) -> None:
    """Print the public keys (never the private ones)."""
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
    records: Annotated[Path, typer.Option(dir_okay=False, help="Roster file (.csv or .json).")],
    directory: KeyDir,
    connector: Annotated[str, typer.Option(help="The connector's base URL.")],
    tenant_id: Annotated[str, typer.Option(help="The DP's tenant id at the connector.")],
    provider_id: Annotated[str, typer.Option(help="The DP's provider id at the connector.")],
    token_env: Annotated[
        str, typer.Option(help="Environment variable holding a dp-admin token.")
    ] = DEFAULT_TOKEN_ENV,
    tag_bytes: Annotated[int, typer.Option(min=4, max=32, help="Bytes kept per tag.")] = 8,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes for the OPRF.")] = 2,
) -> None:
    """Encode every set of the roster as VOPRF tags, sign the manifests and push them."""
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
        err.print(
            f"set {item['set']!r} version {item['version']}: {item['count']:,} tags, "
            f"false-positive rate {item['false_positive_rate']:.2e}"
        )
    _print(pushed)


# --------------------------------------------------------------------------- connector side


@tag_set_key_app.command("register")
def tag_set_key_register(
    tenant: TenantOption,
    provider: Annotated[str, typer.Option(help="Provider id.")],
    jwk_file: Annotated[Path, typer.Option(dir_okay=False, help="The DP's public JWK (JSON).")],
) -> None:
    """Register the DP's tag-set signing public key (``dp-keys show`` prints it)."""
    document = json.loads(jwk_file.read_text("utf-8"))
    jwk = document.get("tag_set_signing_key", document.get("roster_signing_key", document))

    async def work(rt: Runtime) -> dict[str, str]:
        tenant_id = await resolve_tenant(rt, tenant)
        await rt.providers.get(tenant_id, provider)
        return await rt.privacy.tag_sets.register_key(tenant_id, provider, jwk)

    _print(run_async(work))


@psi_app.command("batch")
def psi_batch(
    *,
    tenant: TenantOption,
    provider: Annotated[str, typer.Option(help="Provider id.")],
    set_name: Annotated[str, typer.Option("--set", help="e.g. roster, membership:chess club")],
    kind: Annotated[str, typer.Option(help="Identifier kind of the items, e.g. email.")],
    items_file: Annotated[Path, typer.Option(dir_okay=False, help="One identifier per line.")],
    residency: Annotated[str, typer.Option(help="Jurisdiction of the subjects: EU, US, ...")],
    purpose: Annotated[str, typer.Option(help="Why (kept only as a hash).")],
    intersection: Annotated[
        bool, typer.Option("--intersection", help="Return the matching items, not the count.")
    ] = False,
) -> None:
    """A list against the DP's pushed set: the cardinality (or the matches)."""
    from pavilion.workflows.psi import BatchPsiRequest, run_batch_psi

    items = [line.strip() for line in items_file.read_text("utf-8").splitlines() if line.strip()]
    request = BatchPsiRequest(
        provider_id=provider,
        set=set_name,
        identifier_kind=kind,
        items=items,
        output="intersection" if intersection else "cardinality",
        residency=residency,
        purpose=purpose,
    )

    async def work(rt: Runtime) -> BatchPsiResult:
        return await run_batch_psi(rt, await resolve_tenant(rt, tenant), request)

    _print(run_async(work))


@zk_app.command("present")
def zk_present(
    *,
    tenant: TenantOption,
    provider: Annotated[str, typer.Option(help="Provider id.")],
    claim: Annotated[
        str, typer.Option(help="age_over, birth_date_between, membership or student_status.")
    ],
    identifier: Annotated[
        list[str], typer.Option(help="kind=value, e.g. student_id=S1234567 (repeatable).")
    ],
    residency: Annotated[str, typer.Option(help="Jurisdiction of the subject.")],
    purpose: Annotated[str, typer.Option(help="Why.")],
    threshold: Annotated[int | None, typer.Option(help="age_over: the age.")] = None,
    start: Annotated[str | None, typer.Option(help="birth_date_between: YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="birth_date_between: YYYY-MM-DD.")] = None,
    group: Annotated[str | None, typer.Option(help="membership: the club.")] = None,
) -> None:
    """Prove a predicate with a one-time AnonCreds credential; prints the presentation."""
    from pavilion.workflows.zk_present import PresentationIn, run_zk_presentation

    identifiers = dict(_pair(item) for item in identifier)
    body = PresentationIn.model_validate(
        {
            "provider_id": provider,
            "claim": {
                "type": claim,
                "threshold": threshold,
                "start": date.fromisoformat(start) if start else None,
                "end": date.fromisoformat(end) if end else None,
                "group": group,
            },
            "subject": {"identifiers": identifiers, "residency": residency},
            "purpose": purpose,
        }
    )

    async def work(rt: Runtime) -> ZkPresentation:
        return await run_zk_presentation(rt, await resolve_tenant(rt, tenant), body)

    result = run_async(work)
    err.print(f"decision: {result['decision']}; receipt {result['receipt_id']}")
    _print(result)


def _pair(text: str) -> tuple[str, str]:
    kind, sep, value = text.partition("=")
    if not sep or not kind or not value:
        raise typer.BadParameter(f"{text!r}: write kind=value, e.g. student_id=S1234567")
    return kind, value


@budget_app.command("set")
def budget_set(
    *,
    tenant: TenantOption,
    epsilon: Annotated[float, typer.Option(help="Epsilon per period.")],
    delta: Annotated[float, typer.Option(help="Delta per period.")] = 0.0,
    period: Annotated[str, typer.Option(help="day, week, month or never.")] = "month",
    dataset: Annotated[str, typer.Option(help="The dataset.")] = "verifications",
) -> None:
    """Create or change a dataset's privacy budget."""
    from pavilion.privacy.budget import Period

    try:
        chosen = Period(period)
    except ValueError:
        raise typer.BadParameter("period is day, week, month or never") from None

    async def work(rt: Runtime) -> BudgetView:
        tenant_id = await resolve_tenant(rt, tenant)
        state = await rt.privacy.budgets.configure(
            rt.db, tenant_id, dataset, epsilon=epsilon, delta=delta, period=chosen, now=rt.clock()
        )
        return state.as_dict()

    _print(run_async(work))


@budget_app.command("show")
def budget_show(
    tenant: TenantOption,
    dataset: Annotated[str, typer.Option(help="The dataset.")] = "verifications",
) -> None:
    """Limits, what this period spent, and the latest ledger entries."""

    async def work(rt: Runtime) -> dict[str, Any]:
        tenant_id = await resolve_tenant(rt, tenant)
        state = await rt.privacy.budgets.state(rt.db, tenant_id, dataset, rt.clock())
        ledger = await rt.privacy.budgets.entries(rt.db, tenant_id, dataset, limit=20)
        return state.as_dict() | {"ledger": ledger}

    _print(run_async(work))


@privacy_app.command("release")
def release(
    *,
    tenant: TenantOption,
    statistic: Annotated[str, typer.Option(help="count, sum or mean.")],
    epsilon: Annotated[float, typer.Option(help="Privacy loss of this release.")],
    group_by: Annotated[
        str, typer.Option(help="Comma-separated: claim_type, provider_id, region, outcome.")
    ] = "",
    mechanism: Annotated[str, typer.Option(help="laplace or gaussian.")] = "laplace",
    delta: Annotated[float, typer.Option(help="gaussian: delta.")] = 0.0,
    value: Annotated[str | None, typer.Option(help="sum/mean: approved, age_threshold.")] = None,
    bounds: Annotated[str | None, typer.Option(help="sum/mean: clamping, e.g. 0,1.")] = None,
) -> None:
    """A differentially private statistic of verification events, charged to the budget."""
    from pavilion.workflows.private_release import ReleaseIn, run_release

    body = ReleaseIn.model_validate(
        {
            "statistic": statistic,
            "mechanism": mechanism,
            "epsilon": epsilon,
            "delta": delta,
            "group_by": [g.strip() for g in group_by.split(",") if g.strip()],
            "value": value,
            "bounds": [float(b) for b in bounds.split(",")] if bounds else None,
        }
    )

    async def work(rt: Runtime) -> PrivateRelease:
        return await run_release(rt, await resolve_tenant(rt, tenant), body)

    _print(run_async(work))


@anoncreds_app.command("revoke")
def anoncreds_revoke(
    tenant: TenantOption,
    credential_ids: Annotated[list[str], typer.Argument(help="AnonCreds credential ids.")],
) -> None:
    """Revoke AnonCreds credentials; one status-list delta is published per registry."""
    from pavilion.workflows.anoncreds_issue import RevokeIn, revoke

    async def work(rt: Runtime) -> Revocation:
        tenant_id = await resolve_tenant(rt, tenant)
        return await revoke(rt, tenant_id, RevokeIn(credential_ids=credential_ids))

    _print(run_async(work))


@receipts_app.command("verify")
def receipts_verify(
    *,
    tenant: Annotated[
        str | None, typer.Option(help="Verify this tenant's receipts from the database.")
    ] = None,
    receipt: Annotated[str | None, typer.Option(help="Only this receipt id.")] = None,
    bundle: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="Offline: a bundle from GET /v1/privacy/receipts/{id}."),
    ] = None,
    jwks: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Offline: the trusted signing JWKS.")
    ] = None,
    verifier_key: Annotated[
        str | None, typer.Option(help="Offline: the trusted checkpoint verifier key.")
    ] = None,
) -> None:
    """Check receipt signatures and their Merkle inclusion in the signed audit log."""
    from pavilion.privacy.errors import ReceiptInvalid
    from pavilion.privacy.receipts import verify_bundle

    if bundle is not None:
        if jwks is None or verifier_key is None:
            raise typer.BadParameter("--bundle needs --jwks and --verifier-key (trusted copies)")
        document = json.loads(bundle.read_text("utf-8"))
        trusted = json.loads(jwks.read_text("utf-8"))
        try:
            verified = verify_bundle(document, jwks=trusted, verifier_key=verifier_key)
        except ReceiptInvalid as exc:
            print(f"INVALID {exc.detail}")
            raise typer.Exit(1) from None
        print(
            f"ok receipt {verified.payload['id']} ({verified.payload['kind']}): signature "
            f"valid, leaf {verified.audit_index} included in tree of {verified.tree_size}"
        )
        return
    if tenant is None:
        raise typer.BadParameter("give --tenant (from the database) or --bundle (offline)")

    async def work(rt: Runtime) -> list[str]:
        tenant_id = await resolve_tenant(rt, tenant)
        service = rt.privacy.receipts
        ids = (
            [receipt]
            if receipt
            else [
                r["id"]
                for r in await service.list(
                    rt.db, tenant_id, kind=None, limit=1_000_000, after=None
                )
            ]
        )
        problems = []
        for receipt_id in ids:
            document = await service.bundle(rt.db, tenant_id, receipt_id)
            try:
                verify_bundle(
                    document,
                    jwks=service.jwks(),
                    verifier_key=rt.audit.verifier_keys(tenant_id),
                    origin=rt.audit.origin(tenant_id),
                )
            except ReceiptInvalid as exc:
                problems.append(f"{receipt_id}: {exc.detail}")
        err.print(f"{len(ids) - len(problems)} of {len(ids)} receipts verified")
        return problems

    problems = run_async(work)
    for problem in problems:
        print(f"INVALID {problem}")
    if problems:
        sys.exit(1)


# --------------------------------------------------------------------------- deprecated names

alias_command(
    alias_group(privacy_app, "roster", "pavilion privacy tag-set"),
    "push",
    tag_set_push,
    old="pavilion privacy roster push",
    new="pavilion privacy tag-set push",
)
alias_command(
    alias_group(privacy_app, "roster-key", "pavilion privacy tag-set-key"),
    "register",
    tag_set_key_register,
    old="pavilion privacy roster-key register",
    new="pavilion privacy tag-set-key register",
)
alias_command(
    alias_group(privacy_app, "dp", "pavilion privacy release"),
    "release",
    release,
    old="pavilion privacy dp release",
    new="pavilion privacy release",
)
