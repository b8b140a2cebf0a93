"""W3C VC Data Model 2.0 secured with VC-JOSE-COSE: ``application/vc+jwt``, enveloped.

The JWS payload IS the credential (a JSON-LD document whose ``@context`` starts with
``https://www.w3.org/ns/credentials/v2``); the protected header carries ``typ`` ``vc+jwt`` and
``cty`` ``vc`` (VC-JOSE-COSE, "Securing JSON-LD Verifiable Credentials with JOSE"), ``alg``,
``kid`` and, when the issuing key is certified, ``x5c``. The ``vc`` and ``vp`` JWT claims are
never present. The registered claims ``iss``, ``iat``, ``nbf`` and ``exp`` mirror ``issuer``,
``validFrom`` and ``validUntil`` (the v2 context defines them) so plain JWT libraries enforce
the validity period too.

In JSON (the VC-API) the secured credential travels enveloped (VC Data Model 2.0 section
4.13.1; ``@context`` in the ordered-set form section 4.3 asks of every ``@context``)::

    {"@context": ["https://www.w3.org/ns/credentials/v2"],
     "id": "data:application/vc+jwt,<compact JWS>", "type": "EnvelopedVerifiableCredential"}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from pavilion.credentials import data_model, jsonld
from pavilion.credentials.report import CheckFailed, CheckName
from pavilion.credentials.templates import PAVILION_CONTEXT, CredentialTemplate, by_credential_type
from pavilion.credentials.timeutil import iso, parse_date_time_stamp
from pavilion.jose import sign_compact
from pavilion.keystore.signer import Signer

VC2_CONTEXT = jsonld.VC_V2
VC2_TYP = "vc+jwt"
VC2_CTY = "vc"
VC2_MEDIA_TYPE = "application/vc+jwt"
ENVELOPED_CREDENTIAL = "EnvelopedVerifiableCredential"
ENVELOPED_PRESENTATION = "EnvelopedVerifiablePresentation"

_ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


def build_document(
    *,
    credential_id: str,
    issuer: str,
    template: CredentialTemplate,
    subject: Mapping[str, Any],
    valid_from: datetime,
    valid_until: datetime,
    evidence: Sequence[Mapping[str, Any]] = (),
    credential_status: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """An unsecured VC 2.0 credential from a template and the subject claims (VC form)."""
    document: dict[str, Any] = {
        "@context": [VC2_CONTEXT, PAVILION_CONTEXT],
        "id": credential_id,
        "type": template.types,
        "issuer": issuer,
        "validFrom": iso(valid_from),
        "validUntil": iso(valid_until),
        "credentialSubject": dict(subject),
    }
    if evidence:
        document["evidence"] = [dict(e) for e in evidence]
    if isinstance(credential_status, Mapping):
        document["credentialStatus"] = dict(credential_status)
    elif credential_status:
        document["credentialStatus"] = [dict(entry) for entry in credential_status]
    return document


def issuer_id(document: Mapping[str, Any]) -> str | None:
    issuer = document.get("issuer")
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    return issuer if isinstance(issuer, str) else None


def jwt_claims(document: Mapping[str, Any], issued_at: datetime) -> dict[str, Any]:
    """The registered JWT claims that mirror the credential (never ``vc``/``vp``)."""
    claims: dict[str, Any] = {"iat": int(issued_at.timestamp())}
    issuer = issuer_id(document)
    if issuer is not None:
        claims["iss"] = issuer
    if "validFrom" in document:
        claims["nbf"] = int(parse_date_time_stamp(document["validFrom"], "validFrom").timestamp())
    if "validUntil" in document:
        claims["exp"] = int(parse_date_time_stamp(document["validUntil"], "validUntil").timestamp())
    return claims


async def sign(
    document: Mapping[str, Any],
    signer: Signer,
    *,
    issued_at: datetime,
    x5c: Sequence[str] | None = None,
) -> str:
    """The compact JWS of the credential (``typ`` vc+jwt, ``cty`` vc)."""
    header: dict[str, Any] = {"typ": VC2_TYP, "cty": VC2_CTY}
    if x5c:
        header["x5c"] = list(x5c)
    payload = {**document, **jwt_claims(document, issued_at)}
    return await sign_compact(header, payload, signer)


def envelope(
    token: str, media_type: str = VC2_MEDIA_TYPE, *, kind: str = ENVELOPED_CREDENTIAL
) -> dict[str, Any]:
    """An EnvelopedVerifiableCredential (or ``kind``) around a secured form (a data: URL).

    ``@context`` is a list: section 4.3 says its value MUST be an ordered set whose first item
    is the VC 2.0 context URL.
    """
    return {"@context": [VC2_CONTEXT], "id": f"data:{media_type},{token}", "type": kind}


def open_envelope(
    value: object, *, field: str, expected_type: str = ENVELOPED_CREDENTIAL
) -> tuple[str, str]:
    """(media type, secured form) of an enveloped credential or presentation."""
    if not isinstance(value, dict):
        raise CheckFailed(CheckName.SCHEMA, "not_enveloped", f"{field} is not an object")
    types = value.get("type")
    type_list = types if isinstance(types, list) else [types]
    if expected_type not in type_list:
        raise CheckFailed(
            CheckName.SCHEMA,
            "not_enveloped",
            f"{field} is not an {expected_type}; embedded Data Integrity proofs are not "
            "supported here",
        )
    contexts = value.get("@context")
    first = contexts[0] if isinstance(contexts, list) and contexts else contexts
    if first != VC2_CONTEXT:
        raise CheckFailed(
            CheckName.SCHEMA, "bad_context", f"{field}.@context must start with {VC2_CONTEXT}"
        )
    return parse_data_url(value.get("id"), field=f"{field}.id")


def parse_data_url(value: object, *, field: str) -> tuple[str, str]:
    """(media type, data) of an RFC 2397 ``data:`` URL (percent-decoded; base64 refused)."""
    if not isinstance(value, str) or not value.startswith("data:") or "," not in value:
        raise CheckFailed(CheckName.SCHEMA, "bad_data_url", f"{field} must be a data: URL")
    meta, data = value[5:].split(",", 1)
    parameters = meta.split(";")
    if "base64" in parameters[1:]:
        raise CheckFailed(
            CheckName.SCHEMA, "bad_data_url", f"{field}: base64 data URLs are not accepted"
        )
    return parameters[0].strip().lower(), unquote(data)


def check_document(document: Mapping[str, Any]) -> CredentialTemplate | None:
    """The VC Data Model 2.0 rules a verifier enforces; returns the template the type names.

    Raises CheckFailed (``schema``) naming what is wrong.
    """
    for forbidden in ("vc", "vp"):
        if forbidden in document:
            raise CheckFailed(
                CheckName.SCHEMA,
                "jwt_vc_claim",
                f"the '{forbidden}' JWT claim must not appear in a vc+jwt credential",
            )
    violations = data_model.credential_violations(document)
    if violations:
        first = violations[0]
        raise CheckFailed(CheckName.SCHEMA, _violation_code(first), first.message)
    try:
        jsonld.check_document(dict(document))
    except jsonld.JsonLdError as exc:
        raise CheckFailed(CheckName.SCHEMA, "json_ld", exc.detail) from exc
    subjects = document["credentialSubject"]
    subject_list = subjects if isinstance(subjects, list) else [subjects]
    if "proof" in document:
        raise CheckFailed(
            CheckName.SCHEMA,
            "embedded_proof",
            "an enveloped credential must not also carry an embedded proof",
        )
    template = by_credential_type(document["type"])
    if template is not None:
        for subject in subject_list:
            assert isinstance(subject, dict)  # checked above
            problems = template.subject_errors(subject)
            if problems:
                raise CheckFailed(
                    CheckName.SCHEMA,
                    "subject_schema",
                    f"credentialSubject does not match {template.id}: {problems[0]}",
                )
    return template


#: Stable check codes for the members whose rules existed before the data-model module.
_CODES = {
    "@context": "bad_context",
    "type": "bad_type",
    "id": "bad_id",
    "issuer": "bad_issuer",
    "credentialSubject": "bad_subject",
    "credentialStatus": "bad_status",
}


def _violation_code(violation: data_model.Violation) -> str:
    member = violation.member.removeprefix("credential.").split(".")[0].split("[")[0]
    if member in ("validFrom", "validUntil"):
        return "valid_from_after_valid_until" if "later" in violation.rule else "bad_date_time"
    return _CODES.get(member, "data_model")


def validity_bounds(document: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    """(validFrom, validUntil) of a document that passed :func:`check_document`."""
    start = document.get("validFrom")
    end = document.get("validUntil")
    return (
        parse_date_time_stamp(start, "validFrom") if start is not None else None,
        parse_date_time_stamp(end, "validUntil") if end is not None else None,
    )
