"""Verify any credential this connector issues, check by check, into an IntegrityReport.

The verifier is pure apart from two injected lookups: the DP accreditation for an issuing key
and the status of a status-list entry. Keys come from the trust context (a JWKS of trusted
issuer keys, and X.509 trust anchors for ``x5c`` chains); nothing is fetched from the network.

Order of the checks, each recorded with pass, fail or not checked and a reason:

1. ``signature``: alg allow-list (no ``none``, no HMAC), key by ``x5c`` leaf or ``kid``, JWS;
   or an embedded Data Integrity proof (:func:`verify_embedded`) by a trusted key whose
   controller is the issuer;
2. ``schema``: the format's data model (VC 2.0 contexts and types and JSON-LD terms; JWT VC
   ``vc`` claim; SD-JWT VC ``typ``/``vct``) and the template's subject schema;
3. ``disclosures`` and ``key_binding`` (SD-JWT VC);
4. ``validity``: validFrom/validUntil and nbf/exp at the verification time;
5. ``chain``: x5c to a trust anchor, then credential -> DP accreditation -> root;
6. ``status``: revocation/suspension through the injected lookup (``not_checked`` without);
7. ``freshness``: when the DP vouched, against the claim type's maximum age.

Later checks run only on data whose signature verified; otherwise they are ``not_checked``.
The signature and schema steps of each format are :mod:`~pavilion.credentials.verify_formats`,
the shared checks :mod:`~pavilion.credentials.verify_checks`, and what they are given
:mod:`~pavilion.credentials.verify_context` (re-exported here as the verifier's API).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pavilion.credentials import sd_jwt, vc2
from pavilion.credentials.data_integrity import proofs
from pavilion.credentials.jws import CompactJws, parse_compact
from pavilion.credentials.report import CheckFailed, CheckName, IntegrityReport
from pavilion.credentials.templates import CredentialFormat
from pavilion.credentials.timeutil import validity_check
from pavilion.credentials.verify_checks import (
    chain_check,
    freshness_check,
    status_check,
    verify_accreditation,
)
from pavilion.credentials.verify_context import (
    AccreditationLookup,
    StatusLookup,
    TrustContext,
    Verified,
    VerifyOptions,
)
from pavilion.credentials.verify_formats import (
    read_data_integrity,
    read_jwt_vc,
    read_sd_jwt,
    read_vc2,
)

#: The format name a credential with an embedded Data Integrity proof reports.
DATA_INTEGRITY = proofs.FORMAT_NAME

__all__ = [
    "DATA_INTEGRITY",
    "AccreditationLookup",
    "StatusLookup",
    "TrustContext",
    "VerifyOptions",
    "detect_format",
    "verify_accreditation",
    "verify_credential",
    "verify_embedded",
]


def detect_format(token: str) -> CredentialFormat:
    """Which of our formats a secured credential is (by structure and ``typ``)."""
    return _detect(token)[0]


def _detect(token: str) -> tuple[CredentialFormat, CompactJws | None]:
    if "~" in token:
        return CredentialFormat.SD_JWT_VC, None
    parsed = parse_compact(token)
    typ = parsed.header.get("typ")
    if typ == vc2.VC2_TYP:
        return CredentialFormat.VC2_JOSE, parsed
    if typ in (sd_jwt.SD_JWT_VC_TYP, "vc+sd-jwt"):
        return CredentialFormat.SD_JWT_VC, None
    claims = parsed.claims()
    if "vc" in claims:
        return CredentialFormat.JWT_VC, parsed
    if "@context" in claims:
        return CredentialFormat.VC2_JOSE, parsed
    raise CheckFailed(
        CheckName.SCHEMA,
        "unknown_format",
        "not a vc+jwt, SD-JWT VC or JWT VC credential (no typ, no vc claim, no @context)",
    )


async def verify_credential(
    token: str,
    trust: TrustContext,
    options: VerifyOptions,
    *,
    presentation: bool = False,
) -> IntegrityReport:
    """Verify a secured credential (any of the three formats); never raises for bad input."""
    try:
        fmt, parsed = _detect(token)
    except CheckFailed as exc:
        report = IntegrityReport(format="unknown")
        report.add(exc.as_check())
        report.skip_remaining(_ALL_CHECKS, "the credential could not be parsed")
        return report
    report = IntegrityReport(format=fmt.value)
    try:
        if parsed is None:
            verified = await read_sd_jwt(token, trust, options, report, presentation=presentation)
        elif fmt is CredentialFormat.VC2_JOSE:
            verified = await read_vc2(parsed, trust, report)
        else:
            verified = await read_jwt_vc(parsed, trust, report)
    except CheckFailed as exc:
        report.add(exc.as_check())
        report.skip_remaining(_ALL_CHECKS, f"not checked: {exc.check.value} failed")
        return report
    return await _shared_checks(report, verified, trust, options)


async def verify_embedded(
    secured: Mapping[str, Any], trust: TrustContext, options: VerifyOptions
) -> IntegrityReport:
    """Verify a credential secured with an embedded Data Integrity proof; never raises for
    bad input."""
    report = IntegrityReport(format=DATA_INTEGRITY)
    try:
        verified = await read_data_integrity(secured, trust, options, report)
    except CheckFailed as exc:
        report.add(exc.as_check())
        report.skip_remaining(_ALL_CHECKS, f"not checked: {exc.check.value} failed")
        return report
    return await _shared_checks(report, verified, trust, options)


async def _shared_checks(
    report: IntegrityReport, verified: Verified, trust: TrustContext, options: VerifyOptions
) -> IntegrityReport:
    """What every format shares once its signature and data model passed."""
    report.claims = verified.claims
    if verified.template is not None:
        report.details = {
            "claim_type": verified.template.claim_type,
            "template": verified.template.id,
        }
    report.extend(verified.extra)
    report.add(validity_check(verified.not_before, verified.not_after, options.now, options.leeway))
    report.add(await chain_check(verified, trust, options))
    report.add(await status_check(verified.status_entries, trust.status))
    report.add(freshness_check(verified, options))
    return report


_ALL_CHECKS = (
    CheckName.SIGNATURE,
    CheckName.SCHEMA,
    CheckName.VALIDITY,
    CheckName.CHAIN,
    CheckName.STATUS,
    CheckName.FRESHNESS,
)
