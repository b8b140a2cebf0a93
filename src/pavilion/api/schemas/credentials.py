"""Responses of the credential routes: the W3C VC-API (issue, verify), trust chains,
templates and per-tenant defaults."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from pavilion.api.schemas.base import ResponseModel
from pavilion.credentials.templates import CredentialFormat

# -- VC-API ------------------------------------------------------------------------------------


class EnvelopedCredentialOut(ResponseModel):
    """A VC 2.0 EnvelopedVerifiableCredential: the secured credential as a ``data:`` URL."""

    model_config = ConfigDict(populate_by_name=True)

    context: list[str] = Field(
        alias="@context",
        description="An ordered set whose first item is https://www.w3.org/ns/credentials/v2 "
        "(VC Data Model 2.0 section 4.3).",
    )
    id: str = Field(
        description="data:application/vc+jwt,<JWS> (VC-JOSE-COSE) or "
        "data:application/dc+sd-jwt,<SD-JWT> (SD-JWT VC)"
    )
    type: str


class DataIntegrityProofOut(ResponseModel):
    """An embedded Data Integrity proof (VC Data Integrity 1.0, section 2.1)."""

    type: str = Field(description="DataIntegrityProof")
    cryptosuite: str = Field(description="eddsa-rdfc-2022 or ecdsa-rdfc-2019")
    created: str
    verificationMethod: str = Field(
        description="The key, under the issuer DID: did:key:<Multikey>#<Multikey>, or "
        "<did:web DID>#<kid>"
    )
    proofPurpose: str = Field(description="assertionMethod")
    proofValue: str = Field(description="The signature, multibase base58btc (z...).")


class DataIntegrityCredentialOut(ResponseModel):
    """A VC 2.0 credential secured with an embedded Data Integrity proof (JSON-LD)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    context: list[str | dict[str, Any]] = Field(alias="@context")
    id: str
    type: list[str]
    issuer: str | dict[str, Any] = Field(description="The DID that controls the proof's key.")
    proof: DataIntegrityProofOut


class IssuedCredentialOut(ResponseModel):
    verifiableCredential: EnvelopedCredentialOut | DataIntegrityCredentialOut | str = Field(
        description="vc2_jose and sd_jwt_vc: an EnvelopedVerifiableCredential. jwt_vc: the "
        "compact JWT itself (typ JWT, VC Data Model 1.1 section 6.3.1): a VC 1.1 credential is "
        "not a VC 2.0 one, so it has no VC 2.0 envelope. options.proofType/cryptosuite: the "
        "credential itself with its embedded Data Integrity proof."
    )


class VcProblemDetailOut(ResponseModel):
    """A VC Data Model problem detail (``PARSING_ERROR``, ``RANGE_ERROR``, ...) or Pavilion's."""

    type: str
    title: str
    detail: str
    check: str = Field(description="The integrity check that failed.")
    code: str | None = Field(description="The check's stable failure slug.")


class ProofResultOut(ResponseModel):
    valid: bool
    input: dict[str, Any] = Field(
        description="The JOSE header of the issuer-signed JWT, or an embedded Data Integrity "
        "proof's options (without proofValue)."
    )


class CheckOut(ResponseModel):
    """One integrity check: signature, schema, validity, disclosures, key binding, chain,
    status or freshness; ``code`` appears on failures."""

    check: str
    status: str = Field(description="pass, fail or not_checked.")
    reason: str
    code: str | None = None


class CredentialResultsOut(ResponseModel):
    """The proof's result and the credential's identification (claim type, template, vct,
    issuer and the like, as the format provides them)."""

    model_config = ConfigDict(extra="allow")

    format: str
    proof: list[ProofResultOut]


class CredentialVerificationOut(ResponseModel):
    """The VC-API verification result; ``credential`` appears once the signature verified."""

    verified: bool
    problemDetails: list[VcProblemDetailOut]
    results: CredentialResultsOut
    checks: list[CheckOut]
    credential: dict[str, Any] | None = Field(
        default=None, description="The verified claims (for SD-JWT, what was disclosed)."
    )


class BindingResultOut(ResponseModel):
    valid: bool
    input: str | None = None


class PresentationResultsOut(ResponseModel):
    """Holder binding (challenge = nonce, domain = audience) and the issuer proofs; the
    challenge and domain appear for SD-JWT presentations only."""

    challenge: BindingResultOut | None = None
    domain: BindingResultOut | None = None
    holder: BindingResultOut
    proof: list[ProofResultOut]


class PresentationVerificationOut(ResponseModel):
    """An SD-JWT VC presentation's result (with ``checks`` and ``credentials``), or a
    proofless presentation's (``credentialResults``, one per enveloped credential)."""

    verified: bool
    problemDetails: list[VcProblemDetailOut]
    results: PresentationResultsOut
    checks: list[CheckOut] | None = None
    credentials: list[dict[str, Any]] | None = None
    credentialResults: list[CredentialVerificationOut] | None = None
    verifiablePresentation: dict[str, Any] | str | None = Field(
        default=None, description="The presentation, when options.returnPresentation asked."
    )


# -- trust chains, templates, defaults -----------------------------------------------------


class IssuerRootOut(ResponseModel):
    id: str
    key_id: str
    backend: str
    certificate: str = Field(description="The root certificate, PEM.")
    not_before: str
    not_after: str


class ProviderTrustOut(ResponseModel):
    provider_id: str
    key_id: str
    backend: str
    certificate: str = Field(description="The DP's issuing certificate under the root, PEM.")
    not_after: str
    claim_types: list[str]
    accreditation: str = Field(description="The DP's accreditation credential (vc+jwt).")
    accreditation_valid_until: str


class TemplateOut(ResponseModel):
    id: str = Field(description="claim_type@version")
    claim_type: str
    version: int
    type: list[str]
    vct: str
    max_age_seconds: int
    subject_schema: dict[str, Any] = Field(description="JSON Schema of credentialSubject.")
    description: str


class TemplateChoiceOut(ResponseModel):
    template: str
    format: CredentialFormat


class TemplateCatalogOut(ResponseModel):
    templates: list[TemplateOut]
    defaults: dict[str, TemplateChoiceOut] = Field(
        description="This tenant's default template and format per claim type."
    )


class CredentialDefaultOut(ResponseModel):
    claim_type: str
    template: str
    format: CredentialFormat
