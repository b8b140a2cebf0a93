"""The format steps of the verifier: the signature, then each format's data model.

``signature``: the alg allow-list (no ``none``, no HMAC) is enforced by the JWS parser; the key
is the ``x5c`` leaf (its chain is kept for the chain check) or a ``kid`` of the trusted JWKS.
An embedded Data Integrity proof names its key by a verification method whose controller must
be the issuer, and that key must be one of the trusted JWKS too.
``schema``: VC 2.0 (``vc+jwt``) contexts, types and JSON-LD terms; the JWT VC ``vc`` claim;
SD-JWT VC ``typ``/``vct``, its disclosures and Key-Binding JWT; and the template's subject
schema. Each step returns a :class:`~pavilion.credentials.verify_context.Verified` or raises
:class:`~pavilion.credentials.report.CheckFailed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography import x509

from pavilion.credentials import jwt_vc, sd_jwt, vc2
from pavilion.credentials.data_integrity import proofs
from pavilion.credentials.jws import CompactJws, verify_with_jwk
from pavilion.credentials.report import (
    CheckFailed,
    CheckName,
    IntegrityReport,
    not_checked,
    passed,
)
from pavilion.credentials.timeutil import numeric_date, parse_date_time_stamp
from pavilion.credentials.trust import x509 as trust_x509
from pavilion.credentials.verify_context import (
    ATTESTATION_TYPE,
    TrustContext,
    Verified,
    VerifyOptions,
)
from pavilion.jose import jwk_thumbprint
from pavilion.keystore.software_signer import public_jwk_of

# -- keys -------------------------------------------------------------------------------------


def _verify_signature(
    parsed: CompactJws, trust: TrustContext, report: IntegrityReport
) -> list[x509.Certificate] | None:
    """Find the key (x5c leaf, else kid in the JWKS) and check the JWS; returns the chain."""
    report.header = {k: v for k, v in parsed.header.items() if k != "x5c"}
    kid = parsed.header.get("kid")
    if "x5c" in parsed.header:
        chain = trust_x509.parse_x5c(parsed.header["x5c"])
        jwk = trust_x509.public_jwk_of_certificate(chain[0])
        if kid is not None and kid != jwk["kid"]:
            raise CheckFailed(
                CheckName.SIGNATURE,
                "kid_mismatch",
                "the kid in the header is not the x5c certificate's key (a swapped kid)",
            )
        verify_with_jwk(parsed, jwk, where="x5c leaf certificate key")
        report.add(
            passed(
                CheckName.SIGNATURE,
                f"{parsed.alg} signature verified with the x5c leaf "
                f"'{trust_x509.describe(chain[0])}' (kid {jwk['kid']})",
            )
        )
        return chain
    if not isinstance(kid, str) or not kid:
        raise CheckFailed(
            CheckName.SIGNATURE, "no_key_id", "the header names no key (no kid, no x5c)"
        )
    known = trust.jwks.get(kid)
    if known is None:
        raise CheckFailed(
            CheckName.SIGNATURE,
            "unknown_kid",
            f"key {kid!r} is not one of the issuer's keys (unknown or swapped kid)",
        )
    verify_with_jwk(parsed, dict(known), where=f"issuer key {kid}")
    report.add(passed(CheckName.SIGNATURE, f"{parsed.alg} signature verified with key {kid}"))
    return None


# -- formats ----------------------------------------------------------------------------------


def _attestation(evidence: object) -> datetime | None:
    """When the DP vouched: ``asOf`` of the DataProviderAttestation evidence, if any."""
    for item in evidence if isinstance(evidence, list) else [evidence]:
        if isinstance(item, dict) and item.get("type") == ATTESTATION_TYPE and "asOf" in item:
            return parse_date_time_stamp(item["asOf"], "evidence.asOf")
    return None


async def read_vc2(parsed: CompactJws, trust: TrustContext, report: IntegrityReport) -> Verified:
    if parsed.header.get("typ") != vc2.VC2_TYP:
        raise CheckFailed(
            CheckName.SCHEMA, "bad_typ", f"typ must be {vc2.VC2_TYP!r} for a VC 2.0 credential"
        )
    cty = parsed.header.get("cty")
    if cty is not None and cty != vc2.VC2_CTY:
        raise CheckFailed(CheckName.SCHEMA, "bad_cty", f"cty must be {vc2.VC2_CTY!r} when present")
    chain = _verify_signature(parsed, trust, report)
    document = parsed.claims()
    template = vc2.check_document(document)
    report.add(
        passed(CheckName.SCHEMA, "VC Data Model 2.0: contexts, types and JSON-LD terms are valid")
    )
    not_before, not_after = vc2.validity_bounds(document)
    not_before = _later(not_before, numeric_date(document, "nbf"))
    not_after = _earlier(not_after, numeric_date(document, "exp"))
    return Verified(
        claims=document,
        template=template,
        not_before=not_before,
        not_after=not_after,
        vouched_at=_attestation(document.get("evidence")),
        status_entries=_bitstring_entries(document),
        chain=chain,
    )


async def read_data_integrity(
    secured: Mapping[str, Any], trust: TrustContext, options: VerifyOptions, report: IntegrityReport
) -> Verified:
    """A VC 2.0 credential with an embedded Data Integrity proof (eddsa-rdfc-2022 or
    ecdsa-rdfc-2019): the proof, by a key of the issuer's, then the data model."""
    proof = secured.get("proof")
    if isinstance(proof, dict):
        report.header = {k: v for k, v in proof.items() if k != "proofValue"}
    issuer = vc2.issuer_id(secured)
    if issuer is None:
        raise CheckFailed(
            CheckName.SCHEMA,
            "bad_issuer",
            "issuer must be a URL (or an object with an id): the proof's controller is checked "
            "against it",
        )
    verified = await proofs.verify_proof(
        secured, trust.resolver, now=options.now, controller=issuer
    )
    report.header = verified.options
    kid = jwk_thumbprint(public_jwk_of(verified.key))
    if kid not in trust.jwks:
        raise CheckFailed(
            CheckName.SIGNATURE,
            "unknown_issuer_key",
            f"the proof verifies with {verified.verification_method}, but that key ({kid}) is "
            "not one of the issuer keys trusted here (unknown, or retired)",
        )
    report.add(
        passed(
            CheckName.SIGNATURE,
            f"{verified.cryptosuite} proof verified with {verified.verification_method} (key "
            f"{kid}), whose controller is the issuer",
        )
    )
    document = {k: v for k, v in secured.items() if k != "proof"}
    template = vc2.check_document(document)
    report.add(
        passed(CheckName.SCHEMA, "VC Data Model 2.0: contexts, types and JSON-LD terms are valid")
    )
    not_before, not_after = vc2.validity_bounds(document)
    return Verified(
        claims=dict(secured),
        template=template,
        not_before=not_before,
        not_after=not_after,
        vouched_at=_attestation(document.get("evidence")),
        status_entries=_bitstring_entries(document),
        chain=None,
    )


def _bitstring_entries(document: Mapping[str, Any]) -> list[tuple[str, int, str]]:
    statuses = document.get("credentialStatus")
    return [
        _bitstring_entry(status)
        for status in (statuses if isinstance(statuses, list) else [statuses] if statuses else [])
        if status.get("type") == "BitstringStatusListEntry"
    ]


def _bitstring_entry(status: dict[str, Any]) -> tuple[str, int, str]:
    url = status.get("statusListCredential")
    index = status.get("statusListIndex")
    purpose = status.get("statusPurpose")
    if (
        not isinstance(url, str)
        or not isinstance(index, str)
        or not index.isdigit()
        or not isinstance(purpose, str)
    ):
        raise CheckFailed(
            CheckName.SCHEMA,
            "bad_status",
            "a BitstringStatusListEntry needs statusListCredential, a decimal statusListIndex "
            "and statusPurpose",
        )
    return url, int(index), purpose


def _token_status_entry(claims: Mapping[str, Any]) -> list[tuple[str, int, str]]:
    status = claims.get("status")
    if status is None:
        return []
    reference = status.get("status_list") if isinstance(status, dict) else None
    if not isinstance(reference, dict):
        return []
    idx, uri = reference.get("idx"), reference.get("uri")
    if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0 or not isinstance(uri, str):
        raise CheckFailed(
            CheckName.SCHEMA, "bad_status", "status.status_list needs an integer idx and a uri"
        )
    return [(uri, idx, "token-status-list")]


async def read_jwt_vc(parsed: CompactJws, trust: TrustContext, report: IntegrityReport) -> Verified:
    typ = parsed.header.get("typ")
    if typ not in (None, "JWT"):
        raise CheckFailed(CheckName.SCHEMA, "bad_typ", f"typ {typ!r} is not a JWT VC's")
    chain = _verify_signature(parsed, trust, report)
    claims = parsed.claims()
    template = jwt_vc.check_claims(claims)
    report.add(passed(CheckName.SCHEMA, "JWT VC (VC Data Model 1.1): vc claim, context, types"))
    vc = claims["vc"]
    return Verified(
        claims=claims,
        template=template,
        not_before=numeric_date(claims, "nbf"),
        not_after=numeric_date(claims, "exp"),
        vouched_at=_attestation(vc.get("evidence")),
        status_entries=_token_status_entry(claims),
        chain=chain,
    )


async def read_sd_jwt(
    token: str,
    trust: TrustContext,
    options: VerifyOptions,
    report: IntegrityReport,
    *,
    presentation: bool,
) -> Verified:
    parsed = sd_jwt.parse(token)
    chain = _verify_signature(parsed.jws, trust, report)
    payload = parsed.jws.claims()
    claims = sd_jwt.disclose(payload, parsed.disclosures)
    extra = [
        passed(
            CheckName.DISCLOSURES,
            f"{len(parsed.disclosures)} disclosure(s), each referenced once by the signed JWT",
        )
    ]
    template = sd_jwt.check_claims(parsed.jws.header, claims, expected_vct=options.expected_vct)
    report.add(passed(CheckName.SCHEMA, f"SD-JWT VC: typ {sd_jwt.SD_JWT_VC_TYP}, vct, claims"))
    if presentation or options.audience is not None or options.nonce is not None:
        if options.audience is None or options.nonce is None:
            raise CheckFailed(
                CheckName.KEY_BINDING,
                "kb_expectations_missing",
                "a presentation is verified against an expected audience and nonce",
            )
        reason = sd_jwt.check_key_binding(
            parsed,
            claims,
            audience=options.audience,
            nonce=options.nonce,
            now=options.now,
            max_age=options.kb_max_age,
            leeway=options.leeway,
        )
        extra.append(passed(CheckName.KEY_BINDING, reason))
    elif parsed.kb_jwt is not None:
        extra.append(
            not_checked(
                CheckName.KEY_BINDING,
                "a Key-Binding JWT is present but no audience and nonce were given to check it",
            )
        )
    return Verified(
        claims=claims,
        template=template,
        not_before=numeric_date(claims, "nbf"),
        not_after=numeric_date(claims, "exp"),
        vouched_at=_attestation(claims.get("evidence")),
        status_entries=_token_status_entry(claims),
        chain=chain,
        extra=extra,
    )


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(x for x in (a, b) if x is not None) if a or b else None


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(x for x in (a, b) if x is not None) if a or b else None


# -- chain and accreditation ------------------------------------------------------------------
