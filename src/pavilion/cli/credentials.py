"""``pavilion credentials issue|verify|present|trust-root|certify|templates|set-default``.

Credentials from files: ``issue`` secures an unsecured VC 2.0 credential (JSON) as vc+jwt,
SD-JWT VC or JWT VC, or with an embedded Data Integrity proof (``--cryptosuite``), and prints
it; ``verify`` prints the integrity report of a secured credential (the compact form, a
VC-API envelope, or a JSON-LD credential with its proof) or presentation (SD-JWT VC with its
Key-Binding JWT, or a ``vp+jwt`` with each credential in it) and exits 1 when it does not
verify; ``present`` makes an SD-JWT VC presentation with a holder key, as a
wallet would (for testing the verifier end to end).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from pavilion.cli.choices import CredentialFormat, Cryptosuite
from pavilion.cli.context import resolve_tenant, run_async
from pavilion.cli.output import JsonOption, print_json
from pavilion.cli.output import err as err_console
from pavilion.cli.output import out as console
from pavilion.errors import PavilionError

if TYPE_CHECKING:
    from pavilion.credentials import templates as credential_templates
    from pavilion.credentials.report import IntegrityReport
    from pavilion.keystore.signer import Algorithm
    from pavilion.keystore.software_signer import SoftwareSigner
    from pavilion.runtime import Runtime

TenantOption = Annotated[str, typer.Option(metavar="NAME|ID", help="Tenant name or id.")]
FileArg = Annotated[
    Path,
    typer.Argument(metavar="FILE", help="The secured credential.", exists=True, dir_okay=False),
]


def _json_file(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise PavilionError(f"{path}: cannot read {what} as JSON: {exc}") from exc


def _domain_format(fmt: CredentialFormat) -> credential_templates.CredentialFormat:
    from pavilion.credentials.templates import CredentialFormat as DomainFormat

    return DomainFormat(fmt.value)


def _secured_input(path: Path) -> tuple[str, credential_templates.CredentialFormat | None]:
    """The compact form in a file, or the one inside a VC-API envelope (JSON)."""
    from pavilion.credentials import vc_api

    text = path.read_text("utf-8").strip()
    if text.startswith("{"):
        document = _json_file(path, "the envelope")
        value = document.get("verifiableCredential", document.get("verifiablePresentation"))
        return vc_api.secured_form(value if value is not None else document, field=str(path))
    return text, None


def issue(
    tenant: TenantOption,
    credential: Annotated[
        Path, typer.Argument(metavar="FILE", help="Unsecured VC 2.0 credential (JSON).")
    ],
    *,
    fmt: Annotated[
        CredentialFormat, typer.Option("--format", help="How to secure it.")
    ] = CredentialFormat.VC2_JOSE,
    holder_jwk: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="sd_jwt_vc: the holder's public JWK (JSON file)."),
    ] = None,
    vct: Annotated[
        str | None,
        typer.Option(metavar="URI", help="sd_jwt_vc: the vct for a type without a template."),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Sign with this DP's certified key (adds x5c)."),
    ] = None,
    status: Annotated[bool, typer.Option(help="Embed a status-list entry.")] = True,
    envelope: Annotated[bool, typer.Option(help="Print the VC-API envelope (JSON).")] = False,
    cryptosuite: Annotated[
        Cryptosuite | None,
        typer.Option(help="Secure with an embedded Data Integrity proof instead (JSON-LD)."),
    ] = None,
) -> None:
    """Secure a credential from a file and print it (standard output only).

    examples/credential.json is an unsecured credential this accepts.

    Example: pavilion credentials issue --tenant acme-university examples/credential.json > vc.txt
    """
    from pavilion import jose

    document = _json_file(credential, "the credential")
    if not isinstance(document, dict):
        raise PavilionError(f"{credential}: the credential must be a JSON object")
    holder = None
    if holder_jwk is not None:
        try:
            holder = jose.holder_key(_json_file(holder_jwk, "the holder key"))
        except ValueError as exc:
            raise PavilionError(f"{holder_jwk}: the holder key {exc}") from exc

    from pavilion.credentials.embedded import IssuedEmbedded

    async def work(rt: Runtime) -> None:
        tenant_id = await resolve_tenant(rt, tenant)
        issued = await rt.credentials.issue_vc_api(
            tenant_id,
            document,
            fmt=_domain_format(fmt),
            holder_jwk=holder,
            vct=vct,
            provider_id=provider,
            status_lists=rt.status_lists if status else None,
            cryptosuite=cryptosuite.value if cryptosuite is not None else None,
        )
        err_console.print(
            f"issued {issued.format_name} credential {issued.id} (key {issued.key_id[:12]}…, "
            f"valid until {issued.valid_until.isoformat(timespec='seconds')})"
        )
        secured = {"verifiableCredential": issued.secured_form()}
        if envelope:
            print(json.dumps(secured))
        elif isinstance(issued, IssuedEmbedded):  # the proof travels inside the document
            print(json.dumps(issued.document))
        else:
            print(issued.token)

    run_async(work)


def _verify_input(path: Path) -> tuple[str, Any, credential_templates.CredentialFormat | None]:
    """(kind, secured form, the format an envelope declares) of a file to verify: an embedded
    Data Integrity credential (JSON), a ``vp+jwt`` presentation, or any other credential."""
    from pavilion.credentials import vc_api

    text = path.read_text("utf-8").strip()
    if not text.startswith("{"):
        _, kind = vc_api.secured_presentation(text, field=str(path))
        return (kind if kind == vc_api.VP_JWT_PRESENTATION else "credential"), text, None
    document = _json_file(path, "the credential")
    if not isinstance(document, dict):
        raise PavilionError(f"{path}: expected a JSON object")
    if "verifiablePresentation" in document:
        token, kind = vc_api.secured_presentation(
            document["verifiablePresentation"], field=str(path)
        )
        return (kind if kind == vc_api.VP_JWT_PRESENTATION else "credential"), token, None
    value = document.get("verifiableCredential", document)
    types = value.get("type") if isinstance(value, dict) else None
    if (
        isinstance(value, dict)
        and "proof" in value
        and "EnvelopedVerifiableCredential" not in (types if isinstance(types, list) else [types])
    ):
        return "embedded", value, None
    token, expected = vc_api.secured_form(value, field=str(path))
    return "credential", token, expected


def verify(
    tenant: TenantOption,
    secured: Annotated[
        Path,
        typer.Argument(metavar="FILE", help="Secured credential or presentation file."),
    ],
    *,
    audience: Annotated[
        str | None, typer.Option(metavar="URI", help="Presentation: the expected aud.")
    ] = None,
    nonce: Annotated[
        str | None, typer.Option(metavar="TEXT", help="Presentation: the expected nonce.")
    ] = None,
    max_age_days: Annotated[
        float | None,
        typer.Option(metavar="DAYS", help="Demand fresher DP data than the template."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a credential (compact, enveloped, or JSON-LD with a Data Integrity proof) or a
    presentation (SD-JWT VC or vp+jwt, with --audience and --nonce).

    Exit 1 when it does not verify; the report names each check and its reason (of the
    presentation, then of each credential in it).

    Example: pavilion credentials verify --tenant acme-university vc.txt
    """
    kind, value, expected = _verify_input(secured)
    presentation = audience is not None or nonce is not None
    max_age = timedelta(days=max_age_days) if max_age_days is not None else None
    if kind == "vp+jwt" and (audience is None or nonce is None):
        raise PavilionError("a vp+jwt presentation is verified with --audience and --nonce")

    async def work(rt: Runtime) -> list[tuple[str, IntegrityReport]]:
        tenant_id = await resolve_tenant(rt, tenant)
        status = rt.status_lists.resolve_status
        if kind == "embedded":
            report = await rt.credentials.verify_embedded(
                tenant_id, value, status_lookup=status, max_age=max_age
            )
            return [("credential", report)]
        if kind == "vp+jwt" and audience is not None and nonce is not None:  # both: above
            presented, reports = await rt.credentials.verify_vp_jwt(
                tenant_id,
                value,
                audience=audience,
                nonce=nonce,
                status_lookup=status,
                max_age=max_age,
            )
            return [("presentation", presented.report), *reports]
        report = await rt.credentials.verify(
            tenant_id,
            value,
            status_lookup=status,
            presentation=presentation,
            audience=audience,
            nonce=nonce,
            max_age=max_age,
            expected_format=expected,
        )
        return [("credential", report)]

    from pavilion.credentials.report import CheckStatus

    reports = run_async(work)
    verified = all(report.verified for _, report in reports)
    if as_json:
        first = reports[0][1]
        out: dict[str, Any] = {**first.to_json(), "verified": verified, "claims": first.claims}
        if len(reports) > 1 or kind == "vp+jwt":
            out["credentials"] = [
                {"path": path, **report.to_json(), "claims": report.claims}
                for path, report in reports[1:]
            ]
        print_json(out)
    else:
        colours = {CheckStatus.PASS: "green", CheckStatus.FAIL: "red"}
        for path, report in reports:
            table = Table("check", "result", "reason", title=path if len(reports) > 1 else None)
            for item in report.checks:
                colour = colours.get(item.status, "yellow")
                table.add_row(
                    item.name.value, f"[{colour}]{item.status.value}[/{colour}]", item.reason
                )
            console.print(table)
        verdict = "[green]verified[/green]" if verified else "[red]NOT verified[/red]"
        console.print(f"{reports[0][1].format}: {verdict}")
    if not verified:
        raise typer.Exit(1)


def _holder_signer(path: Path) -> SoftwareSigner:
    from joserfc.jwk import ECKey, OKPKey

    from pavilion.keystore.software_signer import SoftwareSigner

    jwk = _json_file(path, "the holder key")
    try:
        key = ECKey.import_key(jwk) if jwk.get("kty") == "EC" else OKPKey.import_key(jwk)
        private = key.private_key
    except (ValueError, TypeError, AttributeError) as exc:
        raise PavilionError(f"{path}: not a private JWK: {exc}") from exc
    if private is None:
        raise PavilionError(f"{path}: the holder key has no private part ('d')")
    return SoftwareSigner(private)  # type: ignore[arg-type]


def present(
    credential: FileArg,
    holder_key: Annotated[
        Path, typer.Option(metavar="FILE", help="The holder's private JWK (JSON file).")
    ],
    audience: Annotated[str, typer.Option(metavar="URI", help="The verifier (KB-JWT aud).")],
    nonce: Annotated[str, typer.Option(metavar="TEXT", help="The verifier's nonce.")],
    reveal: Annotated[
        list[str] | None,
        typer.Option(
            metavar="CLAIM",
            help="A top-level claim to disclose; repeat for more (default: all).",
        ),
    ] = None,
) -> None:
    """Make an SD-JWT VC presentation with a Key-Binding JWT (what a wallet does).

    \b
    Example:
      pavilion credentials present vc.txt --holder-key holder.json --audience https://rp.example \\
        --nonce n-1
    """
    from pavilion.credentials import sd_jwt

    token, _ = _secured_input(credential)
    signer = _holder_signer(holder_key)
    presentation = asyncio.run(
        sd_jwt.present(
            token,
            holder=signer,
            audience=audience,
            nonce=nonce,
            issued_at=datetime.now(UTC),
            reveal=reveal,
        )
    )
    print(presentation)


def trust_root(
    tenant: TenantOption,
    common_name: Annotated[
        str | None, typer.Option(metavar="TEXT", help="The root's CN (default: the tenant).")
    ] = None,
    valid_days: Annotated[int, typer.Option(metavar="DAYS", help="Validity of the root.")] = 3650,
) -> None:
    """Create the tenant's issuer root (X.509 CA; key in the keystore or HSM); print its PEM.

    Example: pavilion credentials trust-root --tenant acme-university > root.pem
    """

    async def work(rt: Runtime) -> None:
        tenant_id = await resolve_tenant(rt, tenant)
        root = await rt.credentials.create_root(
            tenant_id, common_name=common_name, valid_days=valid_days
        )
        err_console.print(f"issuer root {root.key_id} ({root.backend}) until {root.not_after}")
        print(root.certificate_pem, end="")

    run_async(work)


def certify(
    tenant: TenantOption,
    provider: Annotated[str, typer.Option(metavar="ID", help="The provider id.")],
    claim_type: Annotated[
        list[str] | None,
        typer.Option(
            metavar="TYPE",
            help="An accredited claim type; repeat for more (default: all of the DP's).",
        ),
    ] = None,
    valid_days: Annotated[
        int, typer.Option(metavar="DAYS", help="Validity of the DP certificate.")
    ] = 365,
    algorithm: Annotated[
        str,
        typer.Option(
            metavar="ALG",
            help="ES256 or EdDSA: the DP's key signs its credentials (the way to issue EdDSA).",
        ),
    ] = "ES256",
) -> None:
    """Certify a DP's issuing key under the tenant root and issue its accreditation.

    \b
    Example:
      pavilion credentials certify --tenant acme-university --provider $PROVIDER_ID \\
        --claim-type student_status
    """
    if algorithm not in ("ES256", "EdDSA"):
        raise PavilionError("--algorithm must be ES256 or EdDSA")
    chosen: Algorithm = "ES256" if algorithm == "ES256" else "EdDSA"

    async def work(rt: Runtime) -> None:
        tenant_id = await resolve_tenant(rt, tenant)
        trust = await rt.credentials.certify_provider(
            tenant_id,
            provider,
            claim_types=claim_type,
            valid_days=valid_days,
            algorithm=chosen,
        )
        console.print(
            f"provider {provider}: key {trust.key_id} ({trust.backend}), accredited for "
            f"{', '.join(trust.claim_types)} until {trust.accreditation_valid_until}"
        )

    run_async(work)


def templates(as_json: JsonOption = False) -> None:
    """List the credential templates (versioned) and their maximum data age.

    Example: pavilion credentials templates --json
    """
    from pavilion.credentials.templates import TEMPLATES

    if as_json:
        print_json(
            [
                {
                    "template": t.id,
                    "type": t.credential_type,
                    "vct": t.vct,
                    "max_age_days": t.max_age.days,
                }
                for t in TEMPLATES.values()
            ]
        )
        return
    table = Table("template", "type", "vct", "max age (days)")
    for template in TEMPLATES.values():
        table.add_row(
            template.id,
            template.credential_type,
            template.vct,
            str(template.max_age.days),
        )
    console.print(table)


def set_default(
    tenant: TenantOption,
    claim_type: Annotated[
        str, typer.Option(metavar="TYPE", help="student_status, age_over or membership.")
    ],
    fmt: Annotated[CredentialFormat, typer.Option("--format", help="The default format.")],
    template: Annotated[
        str | None,
        typer.Option(metavar="ID", help="e.g. student_status@1 (default: the latest)."),
    ] = None,
) -> None:
    """Set the tenant's default template and format for a claim type.

    \b
    Example:
      pavilion credentials set-default --tenant acme-university --claim-type student_status \\
        --format sd_jwt_vc
    """
    from pavilion.errors import InvalidRequest

    async def work(rt: Runtime) -> None:
        tenant_id = await resolve_tenant(rt, tenant)
        result = await rt.credentials.set_default(
            tenant_id, claim_type, template_id=template, fmt=_domain_format(fmt)
        )
        console.print(
            f"{result.claim_type}: template {result.template}, format {result.format.value}"
        )

    try:
        run_async(work)
    except InvalidRequest as exc:
        raise PavilionError(exc.detail) from exc


def register(app: typer.Typer) -> None:
    from pavilion.cli.revocation import credentials_group  # the shared ``credentials`` group

    group = credentials_group(app)
    group.command("issue")(issue)
    group.command("verify")(verify)
    group.command("present")(present)
    group.command("trust-root")(trust_root)
    group.command("certify")(certify)
    group.command("templates")(templates)
    group.command("set-default")(set_default)
