"""The W3C VC-API request and response shapes (issuer and verifier), and their translation.

Shapes follow the VC-API (w3c-ccg/vc-api ``issuer.yml`` and ``verifier.yml``):

* ``POST /credentials/issue``: ``{"credential": {...}, "options": {...}}`` -> 201
  ``{"verifiableCredential": <EnvelopedVerifiableCredential>}``;
* ``POST /credentials/verify``: ``{"verifiableCredential": <enveloped>, "options": {...}}``;
* ``POST /presentations/verify``: ``{"verifiablePresentation": <enveloped>, "options":
  {"challenge", "domain"}}`` (a ``vp+jwt`` or an SD-JWT VC with its Key-Binding JWT) or the
  proofless ``{"presentation": {...}}``;

and a verification answers 200 ``{"verified", "credential"|"verifiablePresentation",
"problemDetails", "results"}`` whether or not the credential verified (malformed input is a
422 problem). ``problemDetails`` use the VC Data Model error types (``PARSING_ERROR``,
``CRYPTOGRAPHIC_SECURITY_ERROR``, ``MALFORMED_VALUE_ERROR``, ``RANGE_ERROR``) where one fits
and Pavilion's otherwise. Every answer also carries ``checks``: the integrity report, one
entry per check with its status and reason.

Options beyond the VC-API's are camelCase like its own: ``format``, ``holderJwk``, ``vct``,
``providerId``, ``status``, ``proofType`` and ``cryptosuite`` (issue: the last two ask for an
embedded Data Integrity proof, named as the proof names them, instead of an envelope);
``maxAge`` (verify). A credential with an embedded proof comes back, and is verified, as the
JSON-LD object itself (``{"verifiableCredential": {..., "proof": {...}}}``).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pavilion import jose
from pavilion.credentials import presentations, sd_jwt, vc2
from pavilion.credentials.data_integrity.proofs import ECDSA_RDFC_2019
from pavilion.credentials.jws import parse_compact
from pavilion.credentials.report import (
    CheckFailed,
    CheckName,
    CheckStatus,
    CheckView,
    IntegrityReport,
)
from pavilion.credentials.templates import CredentialFormat
from pavilion.errors import PROBLEM_TYPE_BASE, InvalidRequest

VC_ERRORS = "https://www.w3.org/TR/vc-data-model#"
PAVILION_PROBLEMS = PROBLEM_TYPE_BASE + "credential-"

#: The media types an EnvelopedVerifiableCredential may name here, each the one its
#: specification registers for what it holds: ``application/vc+jwt`` (VC-JOSE-COSE, a VC 2.0
#: credential) and ``application/dc+sd-jwt`` (SD-JWT VC). ``application/vc+sd-jwt`` names a VC
#: 2.0 credential secured with SD-JWT, which is not what an SD-JWT VC is, and a VC 1.1 JWT
#: (``application/jwt``) is no VC 2.0 credential: send it as the compact JWT string.
MEDIA_FORMATS = {
    vc2.VC2_MEDIA_TYPE: CredentialFormat.VC2_JOSE,
    sd_jwt.SD_JWT_VC_MEDIA_TYPE: CredentialFormat.SD_JWT_VC,
}
_NOT_ENVELOPED = {
    "application/jwt": "a VC 1.1 JWT is not a VC 2.0 credential: send the compact JWT itself "
    "as a string, not in an EnvelopedVerifiableCredential",
    "application/vc+sd-jwt": "application/vc+sd-jwt is a VC 2.0 credential secured with "
    "SD-JWT, which this connector neither issues nor verifies; an SD-JWT VC is "
    "application/dc+sd-jwt",
}


class IssueOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: CredentialFormat = Field(
        default=CredentialFormat.VC2_JOSE, description="vc2_jose (default), sd_jwt_vc or jwt_vc."
    )
    credentialId: str | None = Field(
        default=None, max_length=500, description="Used as credential.id when it has none."
    )
    holderJwk: dict[str, str] | None = Field(
        default=None, description="sd_jwt_vc: the holder's public JWK, bound as cnf."
    )
    vct: str | None = Field(
        default=None, max_length=500, description="sd_jwt_vc for a type without a template."
    )
    providerId: str | None = Field(
        default=None, description="Sign with this DP's certified, accredited key (adds x5c)."
    )
    status: bool = Field(default=True, description="Embed a status-list entry (revocable).")
    proofType: Literal["DataIntegrityProof"] | None = Field(
        default=None,
        description="DataIntegrityProof: secure the credential with an embedded Data Integrity "
        "proof instead of an envelope (cryptosuite ecdsa-rdfc-2019 unless named).",
    )
    cryptosuite: Literal["eddsa-rdfc-2022", "ecdsa-rdfc-2019"] | None = Field(
        default=None,
        description="The Data Integrity cryptosuite (implies proofType DataIntegrityProof): "
        "eddsa-rdfc-2022 (Ed25519) or ecdsa-rdfc-2019 (P-256).",
    )

    @field_validator("holderJwk")
    @classmethod
    def _public(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else jose.holder_key(value)

    def embedded_cryptosuite(self) -> str | None:
        """The cryptosuite of an embedded Data Integrity proof, or None for an envelope.

        An embedded proof has no format, no holder key or vct (SD-JWT VC options) and no
        provider key (a DP's key is trusted through its x5c chain, which a Data Integrity
        proof cannot carry): naming one of them with it is a 422 naming that option.
        """
        if self.proofType is None and self.cryptosuite is None:
            return None
        conflicting = {
            "format": "format" in self.model_fields_set,
            "holderJwk": self.holderJwk is not None,
            "vct": self.vct is not None,
            "providerId": self.providerId is not None,
        }
        for name, given in conflicting.items():
            if given:
                raise InvalidRequest(
                    f"options.{name} does not apply to an embedded Data Integrity proof "
                    "(options.proofType/cryptosuite): send one or the other",
                    field=f"options.{name}",
                )
        return self.cryptosuite or ECDSA_RDFC_2019


class IssueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credential: dict[str, Any] = Field(description="An unsecured VC 2.0 credential.")
    options: IssueOptions = Field(default_factory=IssueOptions)


class VerifyCredentialOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    maxAge: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="A stricter maximum age of the DP's data, in seconds.",
    )


class VerifyCredentialRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verifiableCredential: dict[str, Any] | str = Field(
        description="An EnvelopedVerifiableCredential (or the secured form as a string)."
    )
    options: VerifyCredentialOptions = Field(default_factory=VerifyCredentialOptions)


class VerifyPresentationOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    challenge: str | None = Field(default=None, max_length=500, description="The KB-JWT nonce.")
    domain: str | None = Field(default=None, max_length=500, description="The KB-JWT audience.")
    returnPresentation: bool = False
    maxAge: int | None = Field(default=None, ge=1, le=2**31 - 1)


class VerifyPresentationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verifiablePresentation: dict[str, Any] | str | None = None
    presentation: dict[str, Any] | None = None
    options: VerifyPresentationOptions = Field(default_factory=VerifyPresentationOptions)


def secured_form(value: object, *, field: str) -> tuple[str, CredentialFormat | None]:
    """(secured credential, format the envelope declares) of a VC-API input."""
    if isinstance(value, str):
        return value, None
    try:
        media_type, token = vc2.open_envelope(value, field=field)
    except CheckFailed as exc:
        raise InvalidRequest(exc.reason, field=field) from exc
    fmt = MEDIA_FORMATS.get(media_type)
    if fmt is None:
        reason = _NOT_ENVELOPED.get(media_type, "it is not accepted")
        raise InvalidRequest(
            f"{field}: media type {media_type!r}: {reason} (an envelope names one of "
            f"{', '.join(MEDIA_FORMATS)})",
            field=field,
        )
    return token, fmt


#: The two secured presentations ``/presentations/verify`` takes.
SD_JWT_PRESENTATION = "sd-jwt"
VP_JWT_PRESENTATION = presentations.VP_FORMAT


def secured_presentation(value: object, *, field: str) -> tuple[str, str]:
    """(secured form, kind) of a presentation: an SD-JWT VC with its Key-Binding JWT, or a
    VC 2.0 presentation secured with JOSE (``vp+jwt``), enveloped or as the string itself."""
    if isinstance(value, str):
        return value, _kind_of(value)
    try:
        media_type, token = vc2.open_envelope(
            value, field=field, expected_type=vc2.ENVELOPED_PRESENTATION
        )
    except CheckFailed as first:
        try:  # a credential envelope holding an SD-JWT+KB is accepted too
            media_type, token = vc2.open_envelope(value, field=field)
        except CheckFailed:
            raise InvalidRequest(first.reason, field=field) from first
    if media_type == presentations.VP_MEDIA_TYPE:
        return token, VP_JWT_PRESENTATION
    if MEDIA_FORMATS.get(media_type) is not CredentialFormat.SD_JWT_VC:
        raise InvalidRequest(
            f"{field}: media type {media_type!r} is not accepted; present a VC 2.0 presentation "
            f"secured with JOSE ({presentations.VP_MEDIA_TYPE}) or an SD-JWT VC with a "
            f"Key-Binding JWT ({sd_jwt.SD_JWT_VC_MEDIA_TYPE})",
            field=field,
        )
    return token, SD_JWT_PRESENTATION


def _kind_of(token: str) -> str:
    """vp+jwt when the compact JWS says so in its typ; an SD-JWT otherwise."""
    if "~" not in token:
        try:
            if parse_compact(token).header.get("typ") == presentations.VP_TYP:
                return VP_JWT_PRESENTATION
        except CheckFailed:
            pass
    return SD_JWT_PRESENTATION


_PROBLEM_TYPES = {
    CheckName.SIGNATURE: ("CRYPTOGRAPHIC_SECURITY_ERROR", "Cryptographic security error"),
    CheckName.SCHEMA: ("MALFORMED_VALUE_ERROR", "Malformed value"),
    CheckName.VALIDITY: ("RANGE_ERROR", "Outside the validity period"),
}
_PARSING_CODES = frozenset(
    {"malformed_jws", "malformed_header", "malformed_payload", "unknown_format", "malformed_sd_jwt"}
)


class VcProblem(TypedDict):
    """A VC Data Model problem detail, naming the integrity check that failed."""

    type: str
    title: str
    detail: str
    check: str
    code: str | None


class ProofResult(TypedDict):
    valid: bool
    input: dict[str, Any]


class BindingResult(TypedDict):
    valid: bool
    input: NotRequired[str | None]


class CredentialResult(TypedDict):
    """One credential's verification; ``credential`` once the signature verified."""

    verified: bool
    problemDetails: list[VcProblem]
    #: ``format`` and ``proof`` (a list of :class:`ProofResult`), with the report's details.
    results: dict[str, Any]
    checks: list[CheckView]
    credential: NotRequired[dict[str, Any]]


class PresentationResults(TypedDict):
    challenge: NotRequired[BindingResult]
    domain: NotRequired[BindingResult]
    holder: BindingResult
    proof: list[ProofResult]


class PresentationResult(TypedDict):
    """A presentation's verification: an SD-JWT VC's (``checks``, ``credentials``) or a
    proofless one's (``credentialResults``)."""

    verified: bool
    problemDetails: list[VcProblem]
    results: PresentationResults
    checks: NotRequired[list[CheckView]]
    credentials: NotRequired[list[dict[str, Any]]]
    credentialResults: NotRequired[list[CredentialResult]]
    verifiablePresentation: NotRequired[dict[str, Any] | str]


def problem_details(report: IntegrityReport) -> list[VcProblem]:
    out = []
    for check in report.failures():
        if check.code in _PARSING_CODES:
            kind, title = "PARSING_ERROR", "Parsing error"
            type_url = VC_ERRORS + kind
        elif check.name in _PROBLEM_TYPES:
            kind, title = _PROBLEM_TYPES[check.name]
            type_url = VC_ERRORS + kind
        else:
            title = f"{check.name.value.replace('_', ' ').capitalize()} check failed"
            type_url = PAVILION_PROBLEMS + check.name.value
        out.append(
            VcProblem(
                type=type_url,
                title=title,
                detail=check.reason,
                check=check.name.value,
                code=check.code,
            )
        )
    return out


def credential_result(report: IntegrityReport) -> CredentialResult:
    """The VC-API verification result of one credential, with our integrity report."""
    signature = report.get(CheckName.SIGNATURE)
    proof = ProofResult(
        valid=signature is not None and signature.status is CheckStatus.PASS,
        input=report.header or {},
    )
    body = CredentialResult(
        verified=report.verified,
        problemDetails=problem_details(report),
        results={"format": report.format, "proof": [proof], **report.details},
        checks=[c.to_json() for c in report.checks],
    )
    if report.claims is not None and signature is not None and signature.status is CheckStatus.PASS:
        body["credential"] = report.claims
    return body


def presentation_result(
    report: IntegrityReport, *, challenge: str | None, domain: str | None
) -> PresentationResult:
    binding = report.get(CheckName.KEY_BINDING)
    bound = binding is not None and binding.status is CheckStatus.PASS
    single = credential_result(report)
    body = PresentationResult(
        verified=single["verified"],
        problemDetails=single["problemDetails"],
        results=PresentationResults(
            challenge=BindingResult(valid=bound, input=challenge),
            domain=BindingResult(valid=bound, input=domain),
            holder=BindingResult(valid=bound),
            proof=single["results"]["proof"],
        ),
        checks=single["checks"],
    )
    if "credential" in single:
        body["credentials"] = [single["credential"]]
    return body


def combined_result(
    reports: list[IntegrityReport], *, presentation: dict[str, Any] | None
) -> PresentationResult:
    """A proofless presentation: every credential verified on its own; no holder proof."""
    results = [credential_result(r) for r in reports]
    body = PresentationResult(
        verified=bool(reports) and all(r.verified for r in reports),
        problemDetails=[p for r in results for p in r["problemDetails"]],
        results=PresentationResults(
            holder=BindingResult(valid=False, input="a proofless presentation binds no holder"),
            proof=[p for r in results for p in r["results"]["proof"]],
        ),
        credentialResults=results,
    )
    if presentation is not None:
        body["verifiablePresentation"] = presentation
    return body


def vp_jwt_result(
    presented: presentations.VerifiedPresentation,
    reports: list[tuple[str, IntegrityReport]],
    *,
    challenge: str,
    domain: str,
) -> PresentationResult:
    """A ``vp+jwt``'s result: its own checks, then each credential's with its holder binding.

    ``verified`` needs the presentation and every credential to verify; ``holder.valid`` says
    whether every credential is bound to the holder (a bearer credential is not).
    """
    own = presented.report
    binding = own.get(CheckName.KEY_BINDING)
    bound_here = binding is not None and binding.status is CheckStatus.PASS
    results = [credential_result(report) for _, report in reports]
    holder_bound = bool(reports) and all(
        (check := report.get(CheckName.KEY_BINDING)) is not None
        and check.status is CheckStatus.PASS
        for _, report in reports
    )
    signature = own.get(CheckName.SIGNATURE)
    proof = ProofResult(
        valid=signature is not None and signature.status is CheckStatus.PASS,
        input=own.header or {},
    )
    body = PresentationResult(
        verified=own.verified and all(report.verified for _, report in reports),
        problemDetails=[
            *problem_details(own),
            *(problem for result in results for problem in result["problemDetails"]),
        ],
        results=PresentationResults(
            challenge=BindingResult(valid=bound_here, input=challenge),
            domain=BindingResult(valid=bound_here, input=domain),
            holder=BindingResult(valid=bound_here and holder_bound, input=presented.holder),
            proof=[proof, *(p for result in results for p in result["results"]["proof"])],
        ),
        checks=[c.to_json() for c in own.checks],
        credentialResults=results,
    )
    if own.verified and own.claims is not None:
        body["credentials"] = [r["credential"] for r in results if "credential" in r]
    return body
