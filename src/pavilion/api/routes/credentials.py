"""Credentials: the W3C VC-API (issue, verify), trust chains, templates, refresh.

The VC-API endpoints sit at the paths the VC-API names (``/credentials/issue``,
``/credentials/verify``, ``/presentations/verify``); management lives under
``/v1/credentials``. Handlers only translate: the work is in ``CredentialService`` and the
refresh workflow.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, TypeGuard

from fastapi import APIRouter, Body, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from pavilion.api.deps import RuntimeDep, require
from pavilion.api.problems import AUTHENTICATED, problem_responses
from pavilion.api.schemas.credentials import (
    CredentialDefaultOut,
    CredentialVerificationOut,
    IssuedCredentialOut,
    IssuerRootOut,
    PresentationVerificationOut,
    ProviderTrustOut,
    TemplateCatalogOut,
    TemplateChoiceOut,
    TemplateOut,
)
from pavilion.api.schemas.verifications import RefreshedVerificationOut
from pavilion.credentials import data_model, vc_api
from pavilion.credentials.jsonld import JsonLdError, check_document
from pavilion.credentials.report import IntegrityReport
from pavilion.credentials.templates import TEMPLATES, CredentialFormat
from pavilion.errors import InvalidRequest
from pavilion.keystore.signer import Algorithm
from pavilion.observability.stages import stage
from pavilion.runtime import Runtime
from pavilion.tenancy.roles import Permission
from pavilion.tenancy.service import Principal
from pavilion.workflows.refresh import RefreshRequest, refresh_verification

router = APIRouter(tags=["credentials"], responses=AUTHENTICATED)

Issuer = Annotated[Principal, Depends(require(Permission.CREDENTIALS_ISSUE))]
Verifier = Annotated[Principal, Depends(require(Permission.CREDENTIALS_VERIFY))]
Manager = Annotated[Principal, Depends(require(Permission.CREDENTIALS_MANAGE))]


def _max_age(seconds: int | None) -> timedelta | None:
    return timedelta(seconds=seconds) if seconds is not None else None


# -- VC-API ------------------------------------------------------------------------------------


@router.post(
    "/credentials/issue",
    status_code=201,
    summary="Issue a credential (VC-API)",
    responses=problem_responses(
        400, 404, notes={422: "The credential breaks the VC Data Model or the template"}
    ),
)
async def issue_credential(
    body: vc_api.IssueRequest, rt: RuntimeDep, who: Issuer
) -> IssuedCredentialOut:
    """Secure an unsecured VC 2.0 credential as vc+jwt (default), SD-JWT VC or JWT VC.

    The credential must keep every MUST of the VC Data Model 2.0 (sections 4 and 5); a broken
    one is a 422 naming the member and the section. The issuer is this connector (an
    `issuer` naming anyone else is refused), and `id` defaults to a fresh `urn:uuid:`.

    **Validity runs from now.** The connector vouches from the moment it signs: `validFrom`
    defaults to the issuance time and may not be earlier (beyond a 60 s clock leeway: 422 on
    `credential.validFrom`); `validUntil` defaults to the issuance time plus the template's
    maximum age (student status: 30 days; one year for a type without a template) and must be
    later than the issuance time (422 on `credential.validUntil`), so no credential is signed
    already expired. For a template's type the `DataProviderAttestation` evidence records the
    issuance time as `asOf` unless the credential gives its own.

    **What comes back.** `vc2_jose` and `sd_jwt_vc`: an `EnvelopedVerifiableCredential`
    (`@context` a list, `id` `data:application/vc+jwt,...` or `data:application/dc+sd-jwt,...`).
    `jwt_vc`: the compact JWT (VC 1.1 section 6.3.1, `typ` `JWT`, `sub` = the subject's `id`)
    as a string, since a VC 1.1 credential has no VC 2.0 envelope.

    **Embedded Data Integrity proofs.** `"options": {"proofType": "DataIntegrityProof",
    "cryptosuite": "eddsa-rdfc-2022"}` (or `ecdsa-rdfc-2019`, the default when only
    `proofType` is given) returns the credential itself with a `proof`: RDF-canonicalised
    (RDFC-1.0), signed by the connector's Ed25519 or P-256 credential-signing key (inside the
    HSM with the PKCS#11 keystore). The `issuer` is the DID controlling that key, did:key
    (`did:key:<Multikey>`) or the connector's did:web when `PAVILION_DID_WEB` is set; a
    credential naming another issuer is refused (422 on `credential.issuer`). `format`,
    `holderJwk`, `vct` and `providerId` do not apply to it (422 naming the option).
    """
    options = body.options
    issued = await rt.credentials.issue_vc_api(
        who.tenant_id,
        body.credential,
        fmt=options.format,
        credential_id=options.credentialId,
        holder_jwk=options.holderJwk,
        vct=options.vct,
        provider_id=options.providerId,
        status_lists=rt.status_lists if options.status else None,
        cryptosuite=options.embedded_cryptosuite(),
    )
    return IssuedCredentialOut.model_validate({"verifiableCredential": issued.secured_form()})


async def _verify(
    rt: Runtime,
    tenant_id: str,
    token: str,
    *,
    max_age: int | None,
    expected: CredentialFormat | None = None,
    audience: str | None = None,
    nonce: str | None = None,
    presentation: bool = False,
) -> IntegrityReport:
    with stage("verify"):  # the CPU budget's stage (docs/PERFORMANCE.md)
        return await rt.credentials.verify(
            tenant_id,
            token,
            status_lookup=rt.status_lists.resolve_status,
            presentation=presentation,
            audience=audience,
            nonce=nonce,
            max_age=_max_age(max_age),
            expected_format=expected,
        )


@router.post(
    "/credentials/verify",
    summary="Verify a credential (VC-API)",
    response_model_exclude_unset=True,
    responses=problem_responses(400),
)
async def verify_credential(
    body: vc_api.VerifyCredentialRequest, rt: RuntimeDep, who: Verifier
) -> CredentialVerificationOut:
    """Every check (signature, schema, validity, chain, status, freshness) with a reason.

    `verifiableCredential` is an `EnvelopedVerifiableCredential` (vc+jwt, dc+sd-jwt), a
    compact JWT VC as a string, or a credential object with an embedded Data Integrity
    `proof` (eddsa-rdfc-2022, ecdsa-rdfc-2019: the proof verified with its verification
    method, did:key or did:web, whose controller must be the `issuer` and whose key one of
    the connector's credential-signing keys; `results.format` is `data_integrity`).
    """
    value = body.verifiableCredential
    if _embedded(value):
        report = await rt.credentials.verify_embedded(
            who.tenant_id,
            value,
            status_lookup=rt.status_lists.resolve_status,
            max_age=_max_age(body.options.maxAge),
        )
        return CredentialVerificationOut.model_validate(vc_api.credential_result(report))
    token, expected = vc_api.secured_form(value, field="verifiableCredential")
    report = await _verify(rt, who.tenant_id, token, max_age=body.options.maxAge, expected=expected)
    return CredentialVerificationOut.model_validate(vc_api.credential_result(report))


def _embedded(value: object) -> TypeGuard[dict[str, Any]]:
    """A credential object carrying its own proof (Data Integrity), not an envelope."""
    return isinstance(value, dict) and "proof" in value and not _enveloped(value)


@router.post(
    "/presentations/verify",
    summary="Verify a presentation (VC-API)",
    response_model_exclude_unset=True,
    responses=problem_responses(
        400,
        notes={
            422: "The presentation breaks the VC Data Model 2.0 (section 4.13: `errors` names "
            "the member), names no challenge or domain, or holds an envelope of an unknown "
            "media type"
        },
    ),
)
async def verify_presentation(
    body: vc_api.VerifyPresentationRequest, rt: RuntimeDep, who: Verifier
) -> PresentationVerificationOut:
    """Verify a presentation, one of three kinds:

    * **VC 2.0 secured with JOSE** (`vp+jwt`, VC-JOSE-COSE), enveloped
      (`EnvelopedVerifiablePresentation`, `data:application/vp+jwt,...`) or as the compact JWS:
      `typ` `vp+jwt`, no `vc`/`vp` claims, `kid` the holder's DID URL (did:key) listed for
      authentication, `holder` (if given) its controller, `aud` = `options.domain`, `nonce` =
      `options.challenge`, `iat` at most 5 minutes old; every credential in it an
      `EnvelopedVerifiableCredential`, each verified and checked to belong to the holder (its
      `cnf` key is the presenting key, or its subject `id` is the holder; a credential naming
      neither is a bearer credential: `key_binding` not checked).
    * **A presentation secured with an embedded Data Integrity proof** (a
      `verifiablePresentation` object with a `proof`: eddsa-rdfc-2022 or ecdsa-rdfc-2019,
      `proofPurpose` `authentication`, `challenge` = `options.challenge`, `domain` =
      `options.domain`, the verification method (did:key, did:web) listed for authentication
      by its controller, who is the holder); each credential in it, enveloped or with its own
      embedded proof, verified and checked to belong to the holder as above.
    * **An SD-JWT VC with its Key-Binding JWT** (domain = `aud`, challenge = `nonce`).
    * **A proofless presentation** (`presentation`, or a `verifiablePresentation` object that
      is not enveloped): each credential (enveloped, or with an embedded Data Integrity
      proof) verified on its own; no holder binding.

    Every presentation keeps the rules of VC Data Model 2.0 section 4.13: `@context` first
    the VC 2.0 context, `id` a single URL, `type` including `VerifiablePresentation`, a
    `holder` object with an `id` URL, each `verifiableCredential` an object (422 naming the
    member and the section otherwise).
    """
    options = body.options
    value = body.verifiablePresentation
    if isinstance(value, dict) and not _enveloped(value) and "proof" not in value:
        return await _proofless(rt, who.tenant_id, value, options, return_it=True)
    if body.presentation is not None:
        return await _proofless(rt, who.tenant_id, body.presentation, options, return_it=False)
    if value is None:
        raise InvalidRequest(
            "send verifiablePresentation (or a proofless presentation)",
            field="verifiablePresentation",
        )
    if not options.challenge or not options.domain:
        raise InvalidRequest(
            "a secured presentation is checked against options.challenge (the nonce) and "
            "options.domain (the audience)",
            field="options.challenge" if not options.challenge else "options.domain",
        )
    if _embedded(value):
        presented, reports = await rt.credentials.verify_di_presentation(
            who.tenant_id,
            value,
            audience=options.domain,
            nonce=options.challenge,
            status_lookup=rt.status_lists.resolve_status,
            max_age=_max_age(options.maxAge),
        )
        result = vc_api.vp_jwt_result(
            presented, reports, challenge=options.challenge, domain=options.domain
        )
        if options.returnPresentation:
            result["verifiablePresentation"] = value
        return PresentationVerificationOut.model_validate(result)
    token, kind = vc_api.secured_presentation(value, field="verifiablePresentation")
    if kind == vc_api.VP_JWT_PRESENTATION:
        presented, reports = await rt.credentials.verify_vp_jwt(
            who.tenant_id,
            token,
            audience=options.domain,
            nonce=options.challenge,
            status_lookup=rt.status_lists.resolve_status,
            max_age=_max_age(options.maxAge),
        )
        result = vc_api.vp_jwt_result(
            presented, reports, challenge=options.challenge, domain=options.domain
        )
    else:
        report = await _verify(
            rt,
            who.tenant_id,
            token,
            max_age=options.maxAge,
            audience=options.domain,
            nonce=options.challenge,
            presentation=True,
        )
        result = vc_api.presentation_result(
            report, challenge=options.challenge, domain=options.domain
        )
    if options.returnPresentation:
        result["verifiablePresentation"] = value
    return PresentationVerificationOut.model_validate(result)


def _enveloped(value: dict[str, Any]) -> bool:
    """An envelope (of a presentation, or of an SD-JWT+KB in a credential envelope)."""
    types = value.get("type")
    kinds = ("EnvelopedVerifiablePresentation", "EnvelopedVerifiableCredential")
    return any(t in kinds for t in (types if isinstance(types, list) else [types]))


async def _proofless(
    rt: Runtime,
    tenant_id: str,
    presentation: dict[str, Any],
    options: vc_api.VerifyPresentationOptions,
    *,
    return_it: bool,
) -> PresentationVerificationOut:
    if "proof" in presentation:
        raise InvalidRequest(
            "a presentation with a proof is a verifiablePresentation (presentation is for "
            "proofless ones)",
            field="presentation.proof",
        )
    data_model.check_presentation(presentation)  # 422 naming the member (section 4.13)
    try:
        check_document(presentation, where="presentation")
    except JsonLdError as exc:
        raise InvalidRequest(exc.detail, field="presentation") from exc
    credentials = presentation.get("verifiableCredential")
    items = credentials if isinstance(credentials, list) else [credentials]
    if not items or items == [None]:
        raise InvalidRequest(
            "the presentation holds no credential", field="presentation.verifiableCredential"
        )
    reports = []
    for index, item in enumerate(items):
        if _embedded(item):
            reports.append(
                await rt.credentials.verify_embedded(
                    tenant_id,
                    item,
                    status_lookup=rt.status_lists.resolve_status,
                    max_age=_max_age(options.maxAge),
                )
            )
            continue
        token, expected = vc_api.secured_form(
            item, field=f"presentation.verifiableCredential[{index}]"
        )
        reports.append(
            await _verify(rt, tenant_id, token, max_age=options.maxAge, expected=expected)
        )
    combined = vc_api.combined_result(reports, presentation=presentation if return_it else None)
    return PresentationVerificationOut.model_validate(combined)


# -- trust chains, templates, defaults -----------------------------------------------------


class RootIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    common_name: str | None = Field(default=None, min_length=1, max_length=64)
    valid_days: int = Field(default=3650, ge=1, le=36_500)


class ProviderTrustIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    claim_types: list[str] | None = Field(
        default=None, min_length=1, description="Accredited claim types; default: all of the DP's."
    )
    valid_days: int = Field(default=365, ge=1, le=3650)
    algorithm: Algorithm = "ES256"


class DefaultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str | None = Field(default=None, description="e.g. student_status@1; default latest")
    format: CredentialFormat


@router.post(
    "/v1/credentials/trust/root",
    status_code=201,
    tags=["trust"],
    responses=problem_responses(400, 409),
)
async def create_root(
    rt: RuntimeDep, who: Manager, body: Annotated[RootIn | None, Body()] = None
) -> IssuerRootOut:
    """Create the tenant's issuer root: an X.509 CA whose key the keystore (or HSM) holds."""
    spec = body or RootIn()
    root = await rt.credentials.create_root(
        who.tenant_id, common_name=spec.common_name, valid_days=spec.valid_days
    )
    return IssuerRootOut.model_validate(root.to_json())


@router.get("/v1/credentials/trust/root", tags=["trust"], responses=problem_responses(404))
async def read_root(rt: RuntimeDep, who: Verifier) -> IssuerRootOut:
    """The tenant's issuer root certificate: the trust anchor for x5c chains."""
    return IssuerRootOut.model_validate((await rt.credentials.root(who.tenant_id)).to_json())


@router.post(
    "/v1/credentials/trust/providers/{provider_id}",
    status_code=201,
    tags=["trust"],
    responses=problem_responses(400, 404, 409),
)
async def certify_provider(
    provider_id: str,
    rt: RuntimeDep,
    who: Manager,
    body: Annotated[ProviderTrustIn | None, Body()] = None,
) -> ProviderTrustOut:
    """Certify a DP's issuing key under the root and issue its accreditation credential."""
    spec = body or ProviderTrustIn()
    trust = await rt.credentials.certify_provider(
        who.tenant_id,
        provider_id,
        claim_types=spec.claim_types,
        valid_days=spec.valid_days,
        algorithm=spec.algorithm,
    )
    return ProviderTrustOut.model_validate(trust.to_json())


@router.get(
    "/v1/credentials/trust/providers/{provider_id}",
    tags=["trust"],
    responses=problem_responses(404),
)
async def read_provider_trust(provider_id: str, rt: RuntimeDep, who: Verifier) -> ProviderTrustOut:
    trust = await rt.credentials.provider_trust(who.tenant_id, provider_id)
    return ProviderTrustOut.model_validate(trust.to_json())


@router.get("/v1/credentials/templates", tags=["templates"])
async def list_templates(rt: RuntimeDep, who: Verifier) -> TemplateCatalogOut:
    """Every credential template (versioned) and this tenant's defaults per claim type."""
    defaults = await rt.credentials.defaults(who.tenant_id)
    return TemplateCatalogOut(
        templates=[TemplateOut.model_validate(t.describe()) for t in TEMPLATES.values()],
        defaults={
            claim: TemplateChoiceOut(template=template, format=fmt)
            for claim, (template, fmt) in defaults.items()
        },
    )


@router.put(
    "/v1/credentials/defaults/{claim_type}",
    tags=["templates"],
    responses=problem_responses(400),
)
async def set_default(
    claim_type: str, body: DefaultIn, rt: RuntimeDep, who: Manager
) -> CredentialDefaultOut:
    """The template and format this tenant's verifications use when a request names none."""
    choice = await rt.credentials.set_default(
        who.tenant_id, claim_type, template_id=body.template, fmt=body.format
    )
    return CredentialDefaultOut.model_validate(choice)


# -- refresh -----------------------------------------------------------------------------------


@router.post(
    "/v1/verifications/{verification_id}/refresh",
    status_code=201,
    tags=["verifications"],
    response_model=RefreshedVerificationOut,
    responses=problem_responses(
        400,
        404,
        502,
        503,
        notes={409: "The verification issued no credential, or the Idempotency-Key was reused"},
    ),
)
async def refresh(
    verification_id: str,
    body: RefreshRequest,
    rt: RuntimeDep,
    who: Annotated[Principal, Depends(require(Permission.VERIFICATIONS_CREATE))],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Re-verify the subject with the DP and issue a fresh credential (send the identifiers)."""
    result = await refresh_verification(rt, who.tenant_id, verification_id, body, idempotency_key)
    headers = {"Idempotency-Replayed": "true"} if result.replayed else None
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)
