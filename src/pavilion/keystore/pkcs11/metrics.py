"""Prometheus metrics of the PKCS#11 tokens: what an operator watches during an HSM outage.

Labelled by token label (configuration, never personal data). Updated only on the failure
path: a healthy token touches neither metric per signature.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from pavilion.observability.metrics import REGISTRY

#: 0 while the token cannot sign (between its failure and a successful recovery), 1 after it
#: recovered; absent for a token that never failed.
TOKEN_UP = Gauge(
    "pavilion_hsm_token_up",
    "Whether the PKCS#11 token can sign: 0 from a failure until it recovers, then 1.",
    ("token",),
    registry=REGISTRY,
)
#: Signatures a standby token made because its primary could not.
FAILOVER_SIGNATURES = Counter(
    "pavilion_hsm_failover_signatures",
    "Signatures made by a standby token while its primary could not sign.",
    ("token",),
    registry=REGISTRY,
)
