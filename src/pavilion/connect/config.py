"""Tuning of the DP connections, as small frozen value objects (in the style of httpx.Limits).

Every number has a default that suits a connector talking to a handful of DP agents; the
runtime builds these from the settings, tests build them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PoolConfig:
    """One httpx.AsyncClient per DP endpoint: HTTP/2 where offered, keep-alive, limits."""

    max_connections: int = 100
    max_keepalive_connections: int = 100
    keepalive_expiry_s: float = 30.0
    http2: bool = True
    #: Connections opened per endpoint at start (and kept warm by the probes).
    warm_connections: int = 2
    #: The endpoint's connections are spread over clients of at most this many each.
    shard_connections: int = 25


@dataclass(frozen=True)
class BalancerConfig:
    """Peak-EWMA cost (Finagle, Linkerd): decays over ``decay_s``; unknown is ``default_rtt_s``."""

    decay_s: float = 10.0
    default_rtt_s: float = 0.03


@dataclass(frozen=True)
class OutlierConfig:
    """Passive outlier detection after Envoy's: consecutive failures eject for a growing time.

    The n-th ejection lasts ``base_ejection_s * n`` (at most ``max_ejection_s``); every
    ``base_ejection_s`` an endpoint spends serving without ejection lowers n by one again.
    At most ``max_ejection_percent`` of a provider's endpoints are ejected at once (at least one).
    """

    consecutive_failures: int = 5
    base_ejection_s: float = 10.0
    max_ejection_s: float = 300.0
    max_ejection_percent: float = 100.0


@dataclass(frozen=True)
class BreakerConfig:
    """A circuit breaker per endpoint over its last ``window`` calls.

    It opens when at least ``min_calls`` were seen and ``failure_ratio`` of them failed, stays
    open ``open_s``, then lets ``half_open_trials`` trial calls through: a success closes it,
    a failure opens it again.
    """

    window: int = 20
    min_calls: int = 10
    failure_ratio: float = 0.5
    open_s: float = 5.0
    half_open_trials: int = 1


@dataclass(frozen=True)
class BudgetConfig:
    """Retries (and hedges) per provider stay under ``ratio`` of its requests in ``window_s``.

    ``min_per_s`` retries per second are always allowed, so a quiet connector can still retry
    its first failures and fail over the requests in flight when a region dies (Finagle's
    ``minRetriesPerSec``, whose default is also 10). Under load the ratio dominates.
    """

    ratio: float = 0.2
    window_s: float = 10.0
    min_per_s: float = 10.0
    buckets: int = 10


@dataclass(frozen=True)
class ProbeConfig:
    """Active health checks: ``GET {url}/healthz`` every ``interval_s`` (jittered by 10%).

    ``unhealthy_threshold`` failed probes in a row mark an endpoint unhealthy,
    ``healthy_threshold`` good ones mark it healthy again and lift an ejection (as Envoy does).
    ``interval_s`` of ``None`` turns probing off.
    """

    interval_s: float | None = None
    timeout_s: float = 1.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 3
    path: str = "/healthz"
    #: Endpoints unused for this long stop being probed and their pool is closed.
    idle_evict_s: float = 900.0


@dataclass(frozen=True)
class ConnectConfig:
    pool: PoolConfig = field(default_factory=PoolConfig)
    balancer: BalancerConfig = field(default_factory=BalancerConfig)
    outlier: OutlierConfig = field(default_factory=OutlierConfig)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    #: Time one attempt may take; ``None`` lets an attempt use the whole remaining deadline.
    attempt_timeout_s: float | None = None
    #: Hedged requests for read-only lookups: a second request to another allowed endpoint
    #: once the first has taken longer than its endpoint's p95 latency.
    hedging: bool = False
    #: Latency samples an endpoint needs before its p95 may trigger a hedge.
    hedge_min_samples: int = 20
