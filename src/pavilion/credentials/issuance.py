"""Issue a credential in any of the three formats from a template (pure: no database).

The template fixes the types, the ``vct`` and the maximum age of the data provider's answer:
``validUntil`` is the issuance time plus that maximum age. When the DP vouched for the data
is recorded in the credential as a ``DataProviderAttestation`` evidence entry (``asOf``),
which the verifier's freshness check compares with the same maximum age (so a credential
issued from old DP data is valid but reported stale, and a refresh re-verifies it).
Signing goes through a :class:`Signer` (software or HSM); an issuing key certified by the
tenant root adds ``x5c``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from pavilion.credentials import sd_jwt, vc2
from pavilion.credentials.jsonld import VC_V1, VC_V2
from pavilion.credentials.jwt_vc import sign_jwt_vc
from pavilion.credentials.report import CheckFailed
from pavilion.credentials.status import referenced_token_status_claim, status_list_entry
from pavilion.credentials.templates import PAVILION_CONTEXT, CredentialFormat, CredentialTemplate
from pavilion.credentials.timeutil import DEFAULT_LEEWAY, iso, parse_date_time_stamp
from pavilion.errors import InvalidRequest
from pavilion.keystore.signer import Signer

#: The media type of each secured form: ``application/vc+jwt`` (VC-JOSE-COSE, VC 2.0),
#: ``application/dc+sd-jwt`` (SD-JWT VC), and for the VC 1.1 JWT the JWT's own
#: ``application/jwt`` (RFC 7519 section 10.3.1; VC 1.1 section 6.3.1 sets ``typ`` to ``JWT``).
MEDIA_TYPES = {
    CredentialFormat.VC2_JOSE: vc2.VC2_MEDIA_TYPE,
    CredentialFormat.SD_JWT_VC: sd_jwt.SD_JWT_VC_MEDIA_TYPE,
    CredentialFormat.JWT_VC: "application/jwt",
}
#: The formats that go into a VC 2.0 EnvelopedVerifiableCredential. A VC 1.1 JWT does not: it
#: is not a VC 2.0 credential, and no media type names it beyond ``application/jwt`` (which
#: names any JWT), so it travels as the compact JWT itself, as VC 1.1 JWT presentations carry
#: their credentials.
ENVELOPED_FORMATS = frozenset({CredentialFormat.VC2_JOSE, CredentialFormat.SD_JWT_VC})


class StatusEmbed(Protocol):
    """A status-list entry to embed (the status-list service's reservation is one)."""

    def token_status(self) -> dict[str, Any]:
        """The Referenced Token ``status`` claim value: ``{"status_list": {idx, uri}}``."""
        ...

    def credential_status(self) -> list[dict[str, Any]]:
        """The VC 2.0 ``credentialStatus`` entries (BitstringStatusListEntry)."""
        ...


@dataclass(frozen=True)
class StatusReference:
    """A status-list entry given directly: the list's URI, the index, and (W3C) the purpose."""

    uri: str
    index: int
    purpose: str = "revocation"

    def credential_status(self) -> list[dict[str, Any]]:
        return [status_list_entry(self.uri, self.index, self.purpose)]

    def token_status(self) -> dict[str, Any]:
        claim: dict[str, Any] = referenced_token_status_claim(self.index, self.uri)["status"]
        return claim


@dataclass(frozen=True)
class IssuingKey:
    """The key that signs, and its certificate chain (leaf first) when it has one."""

    signer: Signer
    x5c: tuple[str, ...] = ()
    #: The provider whose accredited key this is (None: the connector's own key).
    provider_id: str | None = None


@dataclass(frozen=True)
class Issued:
    id: str
    format: CredentialFormat
    token: str
    key_id: str
    valid_from: datetime
    valid_until: datetime
    template: CredentialTemplate | None = None
    vouched_at: datetime | None = None
    x5c: tuple[str, ...] = field(default=(), repr=False)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.token.encode("ascii")).hexdigest()

    @property
    def format_name(self) -> str:
        return self.format.value

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    def envelope(self) -> dict[str, Any]:
        """The EnvelopedVerifiableCredential of a VC 2.0 secured form (vc+jwt, dc+sd-jwt)."""
        if self.format not in ENVELOPED_FORMATS:
            raise InvalidRequest(
                "a VC 1.1 JWT is not a VC 2.0 credential: it has no VC 2.0 envelope",
                field="options.format",
            )
        return vc2.envelope(self.token, self.media_type)

    def secured_form(self) -> dict[str, Any] | str:
        """What the VC-API returns: the envelope, or the compact JWT of a VC 1.1 JWT VC."""
        return self.envelope() if self.format in ENVELOPED_FORMATS else self.token


def attestation(
    provider_id: str | None, vouched_at: datetime, template: CredentialTemplate
) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "type": "DataProviderAttestation",
        "asOf": iso(vouched_at),
        "template": template.id,
    }
    if provider_id is not None:
        evidence["provider"] = provider_id
    return evidence


def freshness_window(
    template: CredentialTemplate, vouched_at: datetime | None, issued_at: datetime
) -> tuple[datetime, datetime]:
    """(when the DP vouched, validUntil = issuance + the template's maximum age).

    A DP that does not say when it vouched vouches now; a date in the future is clamped to
    now. Data that is already older than the maximum age still yields a credential (the DP
    answered): the verifier's freshness check reports it stale, with the reason.
    """
    vouched = min(vouched_at or issued_at, issued_at)
    return vouched, issued_at + template.max_age


async def issue(
    *,
    fmt: CredentialFormat,
    template: CredentialTemplate,
    subject: Mapping[str, Any],
    issuer: str,
    key: IssuingKey,
    issued_at: datetime,
    vouched_at: datetime | None,
    holder_jwk: Mapping[str, Any] | None = None,
    status: StatusEmbed | None = None,
    decoys: int = 0,
) -> Issued:
    """A credential for ``subject`` (the template's VC form) in ``fmt``."""
    fmt = CredentialFormat(fmt)
    problems = template.subject_errors(subject)
    if problems:
        raise InvalidRequest(
            f"the subject does not match {template.id}: {problems[0]}", field="credentialSubject"
        )
    vouched, valid_until = freshness_window(template, vouched_at, issued_at)
    credential_id = str(uuid.uuid4())
    evidence = attestation(key.provider_id, vouched, template)
    x5c = list(key.x5c) or None
    if fmt is CredentialFormat.VC2_JOSE:
        document = vc2.build_document(
            credential_id=f"urn:uuid:{credential_id}",
            issuer=issuer,
            template=template,
            subject=subject,
            valid_from=issued_at,
            valid_until=valid_until,
            evidence=[evidence],
            credential_status=status.credential_status() if status else None,
        )
        token = await vc2.sign(document, key.signer, issued_at=issued_at, x5c=x5c)
    elif fmt is CredentialFormat.SD_JWT_VC:
        issued = await sd_jwt.issue(
            signer=key.signer,
            issuer=issuer,
            vct=template.vct,
            claims=template.to_sd_jwt(dict(subject)),
            issued_at=issued_at,
            valid_until=valid_until,
            holder_jwk=holder_jwk,
            status=status.token_status() if status else None,
            extra_visible={"evidence": [evidence]},
            x5c=x5c,
            decoys=decoys,
        )
        token = issued.token
    else:
        token = await sign_jwt_vc(
            signer=key.signer,
            issuer=issuer,
            credential_id=f"urn:uuid:{credential_id}",
            vc={
                "@context": [VC_V1, PAVILION_CONTEXT],
                "type": template.types,
                "credentialSubject": dict(subject),
                "evidence": [evidence],
            },
            issued_at=issued_at,
            valid_from=issued_at,
            valid_until=valid_until,
            status=status.token_status() if status else None,
            x5c=x5c,
            subject_id=_subject_id(subject),
        )
    return Issued(
        id=credential_id,
        format=fmt,
        token=token,
        key_id=key.signer.key_id,
        valid_from=issued_at,
        valid_until=valid_until,
        template=template,
        vouched_at=vouched,
        x5c=key.x5c,
    )


async def issue_document(
    document: Mapping[str, Any],
    *,
    fmt: CredentialFormat,
    template: CredentialTemplate | None,
    key: IssuingKey,
    issued_at: datetime,
    holder_jwk: Mapping[str, Any] | None = None,
    status: StatusEmbed | None = None,
    vct: str | None = None,
) -> Issued:
    """Secure a checked, complete VC 2.0 document (the VC-API issue path) in ``fmt``.

    The document has ``id``, ``issuer``, ``validFrom`` and ``validUntil`` filled in and has
    passed :func:`pavilion.credentials.vc2.check_document`.
    """
    fmt = CredentialFormat(fmt)
    try:
        valid_from = parse_date_time_stamp(document["validFrom"], "validFrom")
        valid_until = parse_date_time_stamp(document["validUntil"], "validUntil")
    except CheckFailed as exc:
        raise InvalidRequest(exc.reason, field="credential.validFrom") from exc
    document = dict(document)
    if status is not None and fmt is CredentialFormat.VC2_JOSE:
        document["credentialStatus"] = status.credential_status()
    credential_id = str(document["id"])
    record_id = record_id_of(credential_id)
    issuer = vc2.issuer_id(document) or ""
    subject = document["credentialSubject"]
    x5c = list(key.x5c) or None
    vouched_at = evidence_as_of(document.get("evidence"))
    if fmt is CredentialFormat.VC2_JOSE:
        token = await vc2.sign(document, key.signer, issued_at=issued_at, x5c=x5c)
    elif fmt is CredentialFormat.SD_JWT_VC:
        if not isinstance(subject, dict):
            raise InvalidRequest(
                "an SD-JWT VC has one credential subject", field="credential.credentialSubject"
            )
        if template is not None:
            claims = template.to_sd_jwt(subject)
        else:
            claims = {k: v for k, v in subject.items() if k != "id"}
        visible: dict[str, Any] = {}
        if "id" in subject:
            visible["sub"] = subject["id"]
        if "evidence" in document:
            visible["evidence"] = document["evidence"]
        chosen_vct = template.vct if template is not None else vct
        if chosen_vct is None:
            raise InvalidRequest(
                "an SD-JWT VC needs a vct: use a template credential type or options.vct",
                field="options.vct",
            )
        issued = await sd_jwt.issue(
            signer=key.signer,
            issuer=issuer,
            vct=chosen_vct,
            claims=claims,
            issued_at=issued_at,
            not_before=valid_from,
            valid_until=valid_until,
            holder_jwk=holder_jwk,
            status=status.token_status() if status else None,
            extra_visible=visible,
            x5c=x5c,
        )
        token = issued.token
    else:
        contexts = [c for c in document["@context"] if c != VC_V2]
        vc: dict[str, Any] = {
            "@context": [VC_V1, *contexts],
            "type": document["type"],
            "credentialSubject": subject,
        }
        if "evidence" in document:
            vc["evidence"] = document["evidence"]
        token = await sign_jwt_vc(
            signer=key.signer,
            issuer=issuer,
            credential_id=credential_id,
            subject_id=_subject_id(subject),
            vc=vc,
            issued_at=issued_at,
            valid_from=valid_from,
            valid_until=valid_until,
            status=status.token_status() if status else None,
            x5c=x5c,
        )
    return Issued(
        id=record_id,
        format=fmt,
        token=token,
        key_id=key.signer.key_id,
        valid_from=valid_from,
        valid_until=valid_until,
        template=template,
        vouched_at=vouched_at,
        x5c=key.x5c,
    )


def _subject_id(subject: object) -> str | None:
    """The one credential subject's ``id``, which a VC 1.1 JWT carries as ``sub``."""
    if isinstance(subject, dict) and isinstance(subject.get("id"), str):
        return str(subject["id"])
    return None


def vc_api_validity(
    document: Mapping[str, Any],
    template: CredentialTemplate | None,
    now: datetime,
    *,
    leeway: timedelta = DEFAULT_LEEWAY,
) -> dict[str, str]:
    """The validity period of a VC-API credential: the members to fill in.

    The issuer vouches from the moment it signs, so the period is computed from now, never
    from a date the caller chose: ``validFrom`` defaults to now and may not be earlier (past
    the clock leeway), ``validUntil`` defaults to now + the template's maximum age (a year for
    a type without a template) and must be later than now. A credential that would be
    expired, or valid for a time before it was issued, is refused (422 naming the member).
    Malformed values are left to the data model check, which names them.
    """
    filled: dict[str, str] = {}
    if "validFrom" in document:
        start = _moment(document["validFrom"], "validFrom")
        if start is not None and start < now - leeway:
            raise InvalidRequest(
                f"credential.validFrom {iso(start)} is in the past: the issuer vouches from "
                f"the moment it signs ({iso(now)}); leave validFrom out (it becomes the "
                "issuance time) or give a time from now on",
                field="credential.validFrom",
            )
    else:
        filled["validFrom"] = iso(now)
    if "validUntil" in document:
        end = _moment(document["validUntil"], "validUntil")
        if end is not None and end <= now:
            raise InvalidRequest(
                f"credential.validUntil {iso(end)} is not later than the issuance time "
                f"({iso(now)}): the credential would be expired when signed",
                field="credential.validUntil",
            )
    else:
        filled["validUntil"] = iso(default_valid_until(template, now))
    return filled


def _moment(value: object, name: str) -> datetime | None:
    try:
        return parse_date_time_stamp(value, name)
    except CheckFailed:
        return None


def record_id_of(credential_id: str) -> str:
    """The UUID of a ``urn:uuid:`` id; a new UUID to record any other id under."""
    if credential_id.startswith("urn:uuid:"):
        try:
            return str(uuid.UUID(credential_id.removeprefix("urn:uuid:")))
        except ValueError:
            pass
    return str(uuid.uuid4())


def evidence_as_of(evidence: object) -> datetime | None:
    for item in evidence if isinstance(evidence, list) else [evidence]:
        if isinstance(item, dict) and item.get("type") == "DataProviderAttestation":
            try:
                return parse_date_time_stamp(item.get("asOf"), "evidence.asOf")
            except CheckFailed:
                return None
    return None


def default_valid_until(template: CredentialTemplate | None, issued_at: datetime) -> datetime:
    """validUntil for a VC-API credential that gives none: issuance + the template's max age,
    else 1 year."""
    return issued_at + (template.max_age if template is not None else timedelta(days=365))
