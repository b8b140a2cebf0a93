"""Errors of the privacy engine, placed in the project's one exception tree.

PavilionError
├── Conflict
│   ├── BudgetExhausted          a release would overspend the tenant's privacy budget  409
│   ├── BudgetNotConfigured      a release for a tenant without a privacy budget        409
│   └── TagSetReplay             a tag set push that is not newer than the last one      409
├── ProviderError
│   ├── ProviderUnavailable
│   │   └── EvaluationRateLimited  the DP agent refused more OPRF evaluations (429)     503
│   └── ProviderBadResponse
│       └── DPProofInvalid      the DP's VOPRF proof does not verify (a cheating DP)    502
└── CryptoError
    ├── VerificationFailed
    │   └── ReceiptInvalid      a privacy receipt whose signature or inclusion fails     422
    ├── RistrettoError          ristretto.py: libsodium refused an input, or the identity
    └── OPRFError               oprf/suite.py: an RFC 9497 protocol error
        ├── DeserializeError    oprf/suite.py: not a canonical element or scalar
        ├── InvalidInput        oprf/suite.py: an input maps to the identity, or out of range
        │   └── InverseError    oprf/suite.py: the POPRF tweaked key is zero (no inverse)
        ├── DeriveKeyPairError  oprf/suite.py: DeriveKeyPair found no key
        └── VerifyError         oprf/suite.py: the proof fails (also a VerificationFailed)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pavilion.errors import Conflict, ProviderBadResponse, ProviderUnavailable, VerificationFailed


class BudgetExhausted(Conflict):
    code = "privacy-budget-exhausted"
    title = "Privacy budget exhausted"


class TagSetReplay(Conflict):
    code = "tag-set-replay"
    title = "Tag set is not newer than the current one"


class EvaluationRateLimited(ProviderUnavailable):
    code = "oprf-rate-limited"
    title = "The data provider rate-limited OPRF evaluations"

    def __init__(
        self, detail: str, *, retry_after_s: int = 1, extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(detail, retry_after_s=retry_after_s, extra=extra)


class DPProofInvalid(ProviderBadResponse):
    code = "dp-proof-invalid"
    title = "The data provider's VOPRF proof does not verify"


class ReceiptInvalid(VerificationFailed):
    code = "privacy-receipt-invalid"
    title = "Privacy receipt does not verify"


class BudgetNotConfigured(Conflict):
    code = "privacy-budget-not-configured"
    title = "No privacy budget is configured"
