"""The checks every format shares: chain and accreditation, status, freshness.

``chain``: the ``x5c`` chain to a trust anchor, then credential -> DP accreditation (a vc+jwt
signed by the root, naming the DP key and its claim types) -> root; ``status``: revocation or
suspension through the injected lookup (``not_checked`` without one); ``freshness``: when the
DP vouched, against the claim type's maximum age (or a stricter one the caller asks for).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from pavilion.credentials import vc2
from pavilion.credentials.jws import parse_compact, verify_with_jwk
from pavilion.credentials.report import Check, CheckFailed, CheckName, failed, not_checked, passed
from pavilion.credentials.templates import CredentialTemplate
from pavilion.credentials.timeutil import DEFAULT_LEEWAY, iso, validity_check
from pavilion.credentials.trust import x509 as trust_x509
from pavilion.credentials.verify_context import (
    ACCREDITATION_TEMPLATE,
    StatusLookup,
    TrustContext,
    Verified,
    VerifyOptions,
)


async def chain_check(verified: Verified, trust: TrustContext, options: VerifyOptions) -> Check:
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


async def status_check(entries: list[tuple[str, int, str]], lookup: StatusLookup | None) -> Check:
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


def freshness_check(verified: Verified, options: VerifyOptions) -> Check:
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
