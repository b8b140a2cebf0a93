"""Verify any credential this connector issues, check by check, into an IntegrityReport.

The verifier is pure apart from two injected lookups: the DP accreditation for an issuing key
and the status of a status-list entry. Keys come from the trust context (a JWKS of trusted
issuer keys, and X.509 trust anchors for ``x5c`` chains); nothing is fetched from the network.

Order of the checks, each recorded with pass, fail or not checked and a reason:

1. ``signature``: alg allow-list (no ``none``, no HMAC), key by ``x5c`` leaf or ``kid``, JWS;
2. ``schema``: the format's data model (VC 2.0 contexts and types and JSON-LD terms; JWT VC
   ``vc`` claim; SD-JWT VC ``typ``/``vct``) and the template's subject schema;
3. ``disclosures`` and ``key_binding`` (SD-JWT VC);
4. ``validity``: validFrom/validUntil and nbf/exp at the verification time;
5. ``chain``: x5c to a trust anchor, then credential -> DP accreditation -> root;
6. ``status``: revocation/suspension through the injected lookup (``not_checked`` without);
7. ``freshness``: when the DP vouched, against the claim type's maximum age.

Later checks run only on data whose signature verified; otherwise they are ``not_checked``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from pavilion.credentials import jwt_vc, sd_jwt, vc2
from pavilion.credentials.jws import CompactJws, parse_compact, verify_with_jwk
from pavilion.credentials.report import (
    Check,
    CheckFailed,
    CheckName,
    IntegrityReport,
    failed,
    not_checked,
    passed,
)
from pavilion.credentials.templates import TEMPLATES, CredentialFormat, CredentialTemplate
from pavilion.credentials.timeutil import (
    DEFAULT_LEEWAY,
    iso,
    numeric_date,
    parse_date_time_stamp,
    validity_check,
)
from pavilion.credentials.trust import x509 as trust_x509
from pavilion.jose import jwk_thumbprint

#: (status list URI, index) -> the status value at that index.
StatusLookup = Callable[[str, int], Awaitable[int]]
#: DP issuing key thumbprint -> the accreditation credential (compact vc+jwt), if any.
AccreditationLookup = Callable[[str], Awaitable[str | None]]

ACCREDITATION_TEMPLATE = TEMPLATES["dp_accreditation@1"]
ATTESTATION_TYPE = "DataProviderAttestation"


@dataclass(frozen=True)
class TrustContext:
    """What the verifier trusts: issuer keys by kid, and X.509 anchors for x5c chains."""

    jwks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    anchors: Sequence[x509.Certificate] = ()
    accreditation: AccreditationLookup | None = None
    status: StatusLookup | None = None

    @classmethod
    def from_jwks(cls, keys: Sequence[Mapping[str, Any]], **kwargs: Any) -> TrustContext:
        return cls(jwks={str(k.get("kid") or jwk_thumbprint(dict(k))): k for k in keys}, **kwargs)


@dataclass(frozen=True)
class VerifyOptions:
    now: datetime
    leeway: timedelta = DEFAULT_LEEWAY
    #: Presentations: the Key-Binding JWT must name this audience and nonce.
    audience: str | None = None
    nonce: str | None = None
    kb_max_age: timedelta = sd_jwt.DEFAULT_KB_MAX_AGE
    #: A stricter maximum age than the template's (never a laxer one).
    max_age: timedelta | None = None
    #: SD-JWT VC: accept only these vct values (None: any).
    expected_vct: Collection[str] | None = None


@dataclass(frozen=True)
class _Verified:
    """What the format step hands to the shared checks."""

    claims: dict[str, Any]
    template: CredentialTemplate | None
    not_before: datetime | None
    not_after: datetime | None
    vouched_at: datetime | None
    status_entries: list[tuple[str, int, str]]
    chain: list[x509.Certificate] | None
    extra: list[Check] = field(default_factory=list)


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
            verified = await _sd_jwt(token, trust, options, report, presentation=presentation)
        elif fmt is CredentialFormat.VC2_JOSE:
            verified = await _vc2(parsed, trust, report)
        else:
            verified = await _jwt_vc(parsed, trust, report)
    except CheckFailed as exc:
        report.add(exc.as_check())
        report.skip_remaining(_ALL_CHECKS, f"not checked: {exc.check.value} failed")
        return report
    report.claims = verified.claims
    if verified.template is not None:
        report.details = {
            "claim_type": verified.template.claim_type,
            "template": verified.template.id,
        }
    report.extend(verified.extra)
    report.add(validity_check(verified.not_before, verified.not_after, options.now, options.leeway))
    report.add(await _chain_check(verified, trust, options))
    report.add(await _status_check(verified.status_entries, trust.status))
    report.add(_freshness_check(verified, options))
    return report


_ALL_CHECKS = (
    CheckName.SIGNATURE,
    CheckName.SCHEMA,
    CheckName.VALIDITY,
    CheckName.CHAIN,
    CheckName.STATUS,
    CheckName.FRESHNESS,
)


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


async def _vc2(parsed: CompactJws, trust: TrustContext, report: IntegrityReport) -> _Verified:
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
    entries = []
    statuses = document.get("credentialStatus")
    for status in statuses if isinstance(statuses, list) else [statuses] if statuses else []:
        if status.get("type") == "BitstringStatusListEntry":
            entries.append(_bitstring_entry(status))
    return _Verified(
        claims=document,
        template=template,
        not_before=not_before,
        not_after=not_after,
        vouched_at=_attestation(document.get("evidence")),
        status_entries=entries,
        chain=chain,
    )


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


async def _jwt_vc(parsed: CompactJws, trust: TrustContext, report: IntegrityReport) -> _Verified:
    typ = parsed.header.get("typ")
    if typ not in (None, "JWT"):
        raise CheckFailed(CheckName.SCHEMA, "bad_typ", f"typ {typ!r} is not a JWT VC's")
    chain = _verify_signature(parsed, trust, report)
    claims = parsed.claims()
    template = jwt_vc.check_claims(claims)
    report.add(passed(CheckName.SCHEMA, "JWT VC (VC Data Model 1.1): vc claim, context, types"))
    vc = claims["vc"]
    return _Verified(
        claims=claims,
        template=template,
        not_before=numeric_date(claims, "nbf"),
        not_after=numeric_date(claims, "exp"),
        vouched_at=_attestation(vc.get("evidence")),
        status_entries=_token_status_entry(claims),
        chain=chain,
    )


async def _sd_jwt(
    token: str,
    trust: TrustContext,
    options: VerifyOptions,
    report: IntegrityReport,
    *,
    presentation: bool,
) -> _Verified:
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
    return _Verified(
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


async def _chain_check(verified: _Verified, trust: TrustContext, options: VerifyOptions) -> Check:
    if verified.chain is None:
        return not_checked(
            CheckName.CHAIN, "no x5c: the key is trusted as one of the issuer's published keys"
        )
    try:
        chain = trust_x509.validate_chain(verified.chain, trust.anchors, options.now)
        root_name = trust_x509.describe(chain.root)
        if chain.leaf_is_root:
            return passed(CheckName.CHAIN, f"signed by the trust anchor '{root_name}'")
        accredited = await _accreditation(chain, verified.template, trust, options)
    except CheckFailed as exc:
        return exc.as_check()
    return passed(
        CheckName.CHAIN,
        f"credential -> '{trust_x509.describe(chain.leaf)}' -> accreditation for "
        f"{', '.join(accredited)} -> root '{root_name}'",
    )


async def _accreditation(
    chain: trust_x509.ValidatedChain,
    template: CredentialTemplate | None,
    trust: TrustContext,
    options: VerifyOptions,
) -> list[str]:
    leaf_key = trust_x509.public_jwk_of_certificate(chain.leaf)["kid"]
    token = await trust.accreditation(leaf_key) if trust.accreditation is not None else None
    if token is None:
        raise CheckFailed(
            CheckName.CHAIN,
            "accreditation_missing",
            f"no accreditation credential is known for the DP key {leaf_key}",
        )
    subject = await verify_accreditation(token, chain.root, options.now, leeway=options.leeway)
    if subject["issuingKey"] != leaf_key:
        raise CheckFailed(
            CheckName.CHAIN,
            "accreditation_key_mismatch",
            "the accreditation names another issuing key than the credential's",
        )
    accredited = [str(c) for c in subject["accreditedClaimTypes"]]
    if template is None:
        raise CheckFailed(
            CheckName.CHAIN,
            "claim_type_unknown",
            "the credential's claim type is unknown, so its accreditation cannot be checked",
        )
    if template.claim_type not in accredited:
        raise CheckFailed(
            CheckName.CHAIN,
            "claim_type_not_accredited",
            f"claim type {template.claim_type!r} is outside the DP's accreditation "
            f"({', '.join(accredited)})",
        )
    return accredited


async def verify_accreditation(
    token: str, root: x509.Certificate, now: datetime, *, leeway: timedelta = DEFAULT_LEEWAY
) -> dict[str, Any]:
    """Check a DP accreditation credential (vc+jwt signed by ``root``); its subject."""
    try:
        parsed = parse_compact(token)
        chain = trust_x509.parse_x5c(parsed.header.get("x5c"))
        if chain[0] != root:
            raise CheckFailed(
                CheckName.CHAIN,
                "accreditation_wrong_issuer",
                "the accreditation is not signed by the root the DP certificate chains to",
            )
        verify_with_jwk(parsed, trust_x509.public_jwk_of_certificate(root), where="root key")
        document = parsed.claims()
        template = vc2.check_document(document)
    except CheckFailed as exc:
        if exc.check is CheckName.CHAIN:
            raise
        raise CheckFailed(
            CheckName.CHAIN, "accreditation_invalid", f"the accreditation is invalid: {exc.reason}"
        ) from exc
    if template is not ACCREDITATION_TEMPLATE:
        raise CheckFailed(
            CheckName.CHAIN,
            "accreditation_invalid",
            "the accreditation is not a DataProviderAccreditationCredential",
        )
    start, end = vc2.validity_bounds(document)
    validity = validity_check(start, end, now, leeway, what="accreditation")
    if validity.code == "expired":
        raise CheckFailed(CheckName.CHAIN, "expired_link", f"expired link: {validity.reason}")
    if validity.code is not None:
        raise CheckFailed(CheckName.CHAIN, "accreditation_not_yet_valid", validity.reason)
    subject = document["credentialSubject"]
    assert isinstance(subject, dict)  # check_document against the template
    return subject


# -- status -----------------------------------------------------------------------------------


async def _status_check(entries: list[tuple[str, int, str]], lookup: StatusLookup | None) -> Check:
    if not entries:
        return not_checked(CheckName.STATUS, "the credential carries no status entry")
    if lookup is None:
        return not_checked(
            CheckName.STATUS, "no status lookup is configured", code="no_status_lookup"
        )
    notes = []
    for uri, index, purpose in entries:
        try:
            value = await lookup(uri, index)
        except Exception as exc:  # any failure of the lookup: fail closed, say so
            return failed(
                CheckName.STATUS,
                "status_unavailable",
                f"the status list {uri} could not be read ({type(exc).__name__})",
            )
        if purpose == "token-status-list":
            if value == 1:
                return failed(CheckName.STATUS, "revoked", f"revoked (status list {uri}#{index})")
            if value == 2:
                return failed(
                    CheckName.STATUS, "suspended", f"suspended (status list {uri}#{index})"
                )
            if value != 0:
                return failed(
                    CheckName.STATUS,
                    "status_unknown",
                    f"status value {value} at {uri}#{index} is not VALID",
                )
        elif purpose == "revocation" and value:
            return failed(CheckName.STATUS, "revoked", f"revoked (status list {uri}#{index})")
        elif purpose == "suspension" and value:
            return failed(CheckName.STATUS, "suspended", f"suspended (status list {uri}#{index})")
        notes.append(f"{purpose} {uri}#{index}")
    return passed(CheckName.STATUS, "valid: " + "; ".join(notes))


# -- freshness --------------------------------------------------------------------------------


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.1f} days" if days < 10 else f"{days:.0f} days"


def _freshness_check(verified: _Verified, options: VerifyOptions) -> Check:
    template = verified.template
    if template is None:
        return not_checked(CheckName.FRESHNESS, "no freshness policy for this credential type")
    if verified.vouched_at is None:
        return failed(
            CheckName.FRESHNESS,
            "vouched_at_missing",
            "the credential does not record when the data provider vouched for the data",
        )
    max_age = template.max_age
    if options.max_age is not None:
        max_age = min(max_age, options.max_age)
    age = options.now - verified.vouched_at
    if age > max_age:
        return failed(
            CheckName.FRESHNESS,
            "stale",
            f"stale: the data provider vouched {_days(age)} ago ({iso(verified.vouched_at)}); "
            f"{template.claim_type} allows {_days(max_age)}",
        )
    return passed(
        CheckName.FRESHNESS,
        f"fresh: the data provider vouched {_days(max(age, timedelta(0)))} ago "
        f"({iso(verified.vouched_at)}); {template.claim_type} allows {_days(max_age)}",
    )
