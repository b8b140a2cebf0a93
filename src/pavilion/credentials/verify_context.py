"""What the verifier is given and what its steps hand on: trust, options, a verified payload.

:class:`TrustContext` is what the verifier trusts (issuer keys by kid, X.509 anchors, and the
injected accreditation and status lookups); :class:`VerifyOptions` the time, leeway and
presentation parameters of one verification; :class:`Verified` what a format step
(:mod:`~pavilion.credentials.verify_formats`) hands to the shared checks
(:mod:`~pavilion.credentials.verify_checks`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from pavilion.credentials import sd_jwt
from pavilion.credentials.data_integrity.did import Resolver
from pavilion.credentials.report import Check
from pavilion.credentials.templates import TEMPLATES, CredentialTemplate
from pavilion.credentials.timeutil import DEFAULT_LEEWAY
from pavilion.jose import jwk_thumbprint

#: (status list URI, index) -> the status value at that index.
StatusLookup = Callable[[str, int], Awaitable[int]]
#: DP issuing key thumbprint -> the accreditation credential (compact vc+jwt), if any.
AccreditationLookup = Callable[[str], Awaitable[str | None]]

ACCREDITATION_TEMPLATE = TEMPLATES["dp_accreditation@1"]
ATTESTATION_TYPE = "DataProviderAttestation"


@dataclass(frozen=True)
class TrustContext:
    """What the verifier trusts: issuer keys by kid, and X.509 anchors for x5c chains.

    Data Integrity proofs name their key by a verification method (a DID URL): ``resolver``
    finds it (did:key, did:web, known controller documents); the key must then still be one
    of ``jwks``, as a JWS's ``kid`` must.
    """

    jwks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    anchors: Sequence[x509.Certificate] = ()
    accreditation: AccreditationLookup | None = None
    status: StatusLookup | None = None
    resolver: Resolver = field(default_factory=Resolver)

    @classmethod
    def from_jwks(cls, keys: Sequence[Mapping[str, Any]], **kwargs: Any) -> TrustContext:
        return cls(jwks={str(k.get("kid") or jwk_thumbprint(dict(k))): k for k in keys}, **kwargs)


@dataclass(frozen=True)
class VerifyOptions:
    """The time, leeway and presentation parameters of one verification."""

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
class Verified:
    """What the format step hands to the shared checks."""

    claims: dict[str, Any]
    template: CredentialTemplate | None
    not_before: datetime | None
    not_after: datetime | None
    vouched_at: datetime | None
    status_entries: list[tuple[str, int, str]]
    chain: list[x509.Certificate] | None
    extra: list[Check] = field(default_factory=list)
