"""``pavilion privacy ...``: the privacy engine from the command line.

"DP" is the data provider throughout. DP side (run where the DP agent runs, in
``privacy_dp.py``): ``dp-keys init|rotate|show``, ``tag-set push``. Connector side (run
against the connector's database): ``tag-set-key register``, ``psi batch``, ``zk present``,
``budget set|show``, ``release`` (a differentially private statistic), ``receipts verify``.
The names before the rename (``roster push``, ``roster-key register``, ``dp release``) are
hidden deprecated aliases for one release.
Results are JSON on standard output; messages go to standard error.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pavilion.cli import privacy_dp
from pavilion.cli.context import resolve_tenant, run_async
from pavilion.cli.deprecation import alias_command, alias_group
from pavilion.cli.output import err as err_printer
from pavilion.cli.output import group

if TYPE_CHECKING:
    from pavilion.privacy.budget import BudgetView
    from pavilion.runtime import Runtime
    from pavilion.workflows.anoncreds_issue import Revocation
    from pavilion.workflows.private_release import PrivateRelease
    from pavilion.workflows.psi import BatchPsiResult
    from pavilion.workflows.zk_present import ZkPresentation


class _Messages:
    """Messages on standard error, printed as given (no markup, no highlighting)."""

    def print(self, text: str) -> None:
        err_printer.print(text, markup=False, highlight=False)


err = _Messages()

privacy_app = group(
    "Privacy engine: PSI, ZK predicates, differentially private releases, receipts."
)
tag_set_key_app = group("Register a DP's tag-set signing key (connector side).")
psi_app = group("Private set intersection against a pushed tag set.")
zk_app = group("Zero-knowledge predicate presentations (AnonCreds).")
budget_app = group("Privacy budgets (the ledger of epsilon and delta).")
receipts_app = group("Privacy receipts: signatures and audit-log inclusion.")
anoncreds_app = group("AnonCreds credentials: revocation (published as deltas).")
for _sub, _name in (
    (privacy_dp.dp_keys_app, "dp-keys"),
    (privacy_dp.tag_set_app, "tag-set"),
    (tag_set_key_app, "tag-set-key"),
    (psi_app, "psi"),
    (zk_app, "zk"),
    (budget_app, "budget"),
    (receipts_app, "receipts"),
    (anoncreds_app, "anoncreds"),
):
    privacy_app.add_typer(_sub, name=_name)

TenantOption = Annotated[str, typer.Option(metavar="NAME|ID", help="Tenant name or id.")]
ProviderOption = Annotated[str, typer.Option(metavar="ID", help="Provider id.")]


def register(app: typer.Typer) -> None:
    """Add ``privacy`` to the main Typer app."""
    app.add_typer(privacy_app, name="privacy")


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


# --------------------------------------------------------------------------- connector side


@tag_set_key_app.command("register")
def tag_set_key_register(
    tenant: TenantOption,
    provider: ProviderOption,
    jwk_file: Annotated[
        Path,
        typer.Option(
            metavar="FILE",
            dir_okay=False,
            help="The DP's public JWK, or the output of 'pavilion privacy dp-keys show'.",
        ),
    ],
) -> None:
    """Register the DP's tag-set signing public key (pavilion privacy dp-keys show prints it).

    \b
    Example:
      pavilion privacy tag-set-key register --tenant acme-university --provider $PROVIDER_ID \\
        --jwk-file dp-keys.pub.json
    """
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
    provider: ProviderOption,
    set_name: Annotated[
        str, typer.Option("--set", metavar="NAME", help="e.g. roster, membership:chess club")
    ],
    kind: Annotated[
        str, typer.Option(metavar="KIND", help="Identifier kind of the items, e.g. email.")
    ],
    items_file: Annotated[
        Path, typer.Option(metavar="FILE", dir_okay=False, help="One identifier per line.")
    ],
    residency: Annotated[
        str, typer.Option(metavar="CODE", help="Jurisdiction of the subjects: EU, US, ...")
    ],
    purpose: Annotated[str, typer.Option(metavar="TEXT", help="Why (kept only as a hash).")],
    intersection: Annotated[
        bool, typer.Option("--intersection", help="Return the matching items, not the count.")
    ] = False,
) -> None:
    """A list against the DP's pushed set: the cardinality (or the matches).

    \b
    Example:
      pavilion privacy psi batch --tenant acme-university --provider $PROVIDER_ID --set roster \\
        --kind email --items-file emails.txt --residency EU --purpose audit
    """
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
    provider: ProviderOption,
    claim: Annotated[
        str,
        typer.Option(
            metavar="TYPE", help="age_over, birth_date_between, membership or student_status."
        ),
    ],
    identifier: Annotated[
        list[str],
        typer.Option(
            metavar="KIND=VALUE", help="e.g. student_id=S1234567; repeat for more identifiers."
        ),
    ],
    residency: Annotated[
        str, typer.Option(metavar="CODE", help="Jurisdiction of the subject (EU, US, ...).")
    ],
    purpose: Annotated[str, typer.Option(metavar="TEXT", help="Why (kept only as a hash).")],
    threshold: Annotated[
        int | None, typer.Option(metavar="YEARS", help="age_over: the age.")
    ] = None,
    start: Annotated[
        str | None, typer.Option(metavar="DATE", help="birth_date_between: YYYY-MM-DD.")
    ] = None,
    end: Annotated[
        str | None, typer.Option(metavar="DATE", help="birth_date_between: YYYY-MM-DD.")
    ] = None,
    group: Annotated[str | None, typer.Option(metavar="NAME", help="membership: the club.")] = None,
) -> None:
    """Prove a predicate with a one-time AnonCreds credential; prints the presentation.

    \b
    Example:
      pavilion privacy zk present --tenant acme-university --provider $PROVIDER_ID \\
        --claim age_over --threshold 18 --identifier student_id=S1234567 --residency EU \\
        --purpose "age check"
    """
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
    err.print(f"decision: {result['outcome']}; receipt {result['receipt_id']}")
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
    epsilon: Annotated[float, typer.Option(metavar="EPSILON", help="Epsilon per period.")],
    delta: Annotated[float, typer.Option(metavar="DELTA", help="Delta per period.")] = 0.0,
    period: Annotated[
        str, typer.Option(metavar="PERIOD", help="day, week, month or never.")
    ] = "month",
    dataset: Annotated[str, typer.Option(metavar="NAME", help="The dataset.")] = "verifications",
) -> None:
    """Create or change a dataset's privacy budget.

    Example: pavilion privacy budget set --tenant acme-university --epsilon 5 --period month
    """
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
    dataset: Annotated[str, typer.Option(metavar="NAME", help="The dataset.")] = "verifications",
) -> None:
    """Limits, what this period spent, and the latest ledger entries (JSON).

    Example: pavilion privacy budget show --tenant acme-university
    """

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
    statistic: Annotated[str, typer.Option(metavar="NAME", help="count, sum or mean.")],
    epsilon: Annotated[
        float, typer.Option(metavar="EPSILON", help="Privacy loss of this release.")
    ],
    group_by: Annotated[
        str,
        typer.Option(
            metavar="COLUMNS", help="Comma-separated: claim_type, provider_id, region, outcome."
        ),
    ] = "",
    mechanism: Annotated[
        str, typer.Option(metavar="NAME", help="laplace or gaussian.")
    ] = "laplace",
    delta: Annotated[float, typer.Option(metavar="DELTA", help="gaussian: delta.")] = 0.0,
    value: Annotated[
        str | None, typer.Option(metavar="NAME", help="sum/mean: approved, age_threshold.")
    ] = None,
    bounds: Annotated[
        str | None, typer.Option(metavar="LOW,HIGH", help="sum/mean: clamping, e.g. 0,1.")
    ] = None,
) -> None:
    """A differentially private statistic of verification events, charged to the budget.

    \b
    Example:
      pavilion privacy release --tenant acme-university --statistic count --epsilon 0.5 \\
        --group-by claim_type
    """
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
    credential_ids: Annotated[
        list[str], typer.Argument(metavar="CREDENTIAL_ID...", help="AnonCreds credential ids.")
    ],
) -> None:
    """Revoke AnonCreds credentials; one status-list delta is published per registry.

    Example: pavilion privacy anoncreds revoke --tenant acme-university $ANONCREDS_ID
    """
    from pavilion.workflows.anoncreds_issue import RevokeIn, revoke

    async def work(rt: Runtime) -> Revocation:
        tenant_id = await resolve_tenant(rt, tenant)
        return await revoke(rt, tenant_id, RevokeIn(credential_ids=credential_ids))

    _print(run_async(work))


@receipts_app.command("verify")
def receipts_verify(
    *,
    tenant: Annotated[
        str | None,
        typer.Option(metavar="NAME|ID", help="Verify this tenant's receipts from the database."),
    ] = None,
    receipt: Annotated[str | None, typer.Option(metavar="ID", help="Only this receipt id.")] = None,
    bundle: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            dir_okay=False,
            help="Offline: a bundle from GET /v1/privacy/receipts/{id}.",
        ),
    ] = None,
    jwks: Annotated[
        Path | None,
        typer.Option(metavar="FILE", dir_okay=False, help="Offline: the trusted signing JWKS."),
    ] = None,
    verifier_key: Annotated[
        str | None,
        typer.Option(metavar="KEY", help="Offline: the trusted checkpoint verifier key."),
    ] = None,
) -> None:
    """Check receipt signatures and their Merkle inclusion in the signed audit log.

    Exit 1 when a receipt does not verify.

    Example: pavilion privacy receipts verify --tenant acme-university
    """
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
    privacy_dp.tag_set_push,
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
