"""The integrity report a verification returns: one entry per check, each with a reason.

A verifier never lets an exception escape as the answer: every failure becomes a
:class:`Check` with ``status`` ``fail``, a stable ``code`` and a human reason. The report is
``verified`` when no check failed; a check that could not run (no status lookup configured,
no certificate chain to walk) is ``not_checked`` and says why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

from pavilion.errors import VerificationFailed


class CheckName(StrEnum):
    #: The JWS signature (and everything needed to find the key: alg, kid, x5c).
    SIGNATURE = "signature"
    #: The data model rules of the format (contexts, types, required claims, JSON-LD terms).
    SCHEMA = "schema"
    #: validFrom/validUntil, nbf/exp at the time of verification.
    VALIDITY = "validity"
    #: SD-JWT disclosures: every one referenced, none duplicated or altered.
    DISCLOSURES = "disclosures"
    #: SD-JWT Key-Binding JWT: holder key, typ, iat window, audience, nonce, sd_hash.
    KEY_BINDING = "key_binding"
    #: x5c chain to a trust anchor, and the DP's accreditation for the claim type.
    CHAIN = "chain"
    #: Revocation and suspension through a status list.
    STATUS = "status"
    #: How long ago the data provider vouched for the data, against the claim type's max age.
    FRESHNESS = "freshness"


class CheckStatus(StrEnum):
    PASS = "pass"  # noqa: S105 (a check outcome, not a password)
    FAIL = "fail"
    NOT_CHECKED = "not_checked"


class CheckView(TypedDict):
    """A check as reported; ``code`` only on failures (and some not-checked reasons)."""

    check: str
    status: str
    reason: str
    code: NotRequired[str]


class ReportView(TypedDict):
    verified: bool
    format: str
    checks: list[CheckView]
    details: NotRequired[dict[str, Any]]


@dataclass(frozen=True)
class Check:
    name: CheckName
    status: CheckStatus
    reason: str
    #: Stable machine-readable slug for failures (``expired``, ``unknown_root``, ...).
    code: str | None = None

    def to_json(self) -> CheckView:
        out = CheckView(check=self.name.value, status=self.status.value, reason=self.reason)
        if self.code is not None:
            out["code"] = self.code
        return out


def passed(name: CheckName, reason: str) -> Check:
    return Check(name, CheckStatus.PASS, reason)


def failed(name: CheckName, code: str, reason: str) -> Check:
    return Check(name, CheckStatus.FAIL, reason, code)


def not_checked(name: CheckName, reason: str, code: str | None = None) -> Check:
    return Check(name, CheckStatus.NOT_CHECKED, reason, code)


class CheckFailed(VerificationFailed):
    """Raised inside the format verifiers; the orchestrator turns it into a failed Check."""

    def __init__(self, check: CheckName, code: str, reason: str) -> None:
        super().__init__(reason, extra={"check": check.value, "code": code})
        self.check = check
        self.code = code
        self.reason = reason

    def as_check(self) -> Check:
        return failed(self.check, self.code, self.reason)


@dataclass
class IntegrityReport:
    """What a verification found, check by check."""

    format: str
    checks: list[Check] = field(default_factory=list)
    #: The verified claims (for SD-JWT: only what was disclosed); None when nothing verified.
    claims: dict[str, Any] | None = None
    #: The JOSE header of the issuer-signed JWT (no secrets: public key material only).
    header: dict[str, Any] | None = None
    #: Credential type / template identification, e.g. {"claim_type": ..., "template": ...}.
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return bool(self.checks) and all(c.status is not CheckStatus.FAIL for c in self.checks)

    def add(self, check: Check) -> Check:
        self.checks = [c for c in self.checks if c.name is not check.name] + [check]
        return check

    def extend(self, checks: Iterable[Check]) -> None:
        for check in checks:
            self.add(check)

    def get(self, name: CheckName) -> Check | None:
        return next((c for c in self.checks if c.name is name), None)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status is CheckStatus.FAIL]

    def skip_remaining(self, names: Iterable[CheckName], reason: str) -> None:
        """Mark checks that cannot run (because an earlier one failed) as not checked."""
        for name in names:
            if self.get(name) is None:
                self.add(not_checked(name, reason))

    def to_json(self) -> ReportView:
        out = ReportView(
            verified=self.verified,
            format=self.format,
            checks=[c.to_json() for c in self.checks],
        )
        if self.details:
            out["details"] = self.details
        return out
