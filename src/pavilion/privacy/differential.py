"""Differentially private releases of verification statistics with OpenDP (pure, no I/O).

The privacy unit is one verification event: adding or removing any single event changes
what is released by at most the stated epsilon (and delta). Every group key comes from public
metadata (the claim types, the tenant's registered providers and regions, the outcomes), never
from the data, and every key is released, zero or not, so the presence of a group says
nothing; events outside the listed keys are counted in one extra ``other`` group.

Mechanisms, all from OpenDP (``opendp.prelude``, imported as ``odp`` since "DP" is the data
provider here; :func:`release` turns OpenDP's ``contrib`` features on before it builds one,
not this module's import):

* counts: ``make_count_by_categories`` chained to the (discrete) Laplace mechanism for pure
  epsilon-differential privacy, or to the (discrete) Gaussian mechanism for zero-concentrated
  differential privacy (zCDP), converted to (epsilon, delta) with ``make_zCDP_to_approxDP``
  and ``make_fix_delta``;
* sums: per group, ``make_clamp >> then_sum`` gives each group's clamped sum and its
  sensitivity; the groups partition the events, so one event moves one coordinate of the
  vector of sums by at most that sensitivity (in L1 and in L2), which is what the vector
  Laplace or Gaussian mechanism is then mapped at;
* means: a noisy sum and a noisy count, each with half the budget; their ratio is
  post-processing and costs nothing more.

Noisy counts and sums are released no lower than zero: a true count is never negative, and
neither is a sum of values whose bounds start at zero or above (every value here does). The
clamp is post-processing of the mechanism's output, so it costs no privacy, and it only ever
moves a value towards the truth, so the stated accuracy still holds.

The cost charged to the ledger is what OpenDP's privacy map reports for the mechanism
actually built (never more than asked for). Each release states its expected error: with
probability ``1 - alpha`` each released value is within ``accuracy`` of the true value.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, NotRequired, TypedDict

import opendp.prelude as odp

from pavilion.errors import InvalidRequest

DIMENSIONS: Final = ("claim_type", "provider_id", "region", "outcome")
#: Numeric columns of a verification event and their natural bounds.
VALUES: Final[dict[str, tuple[float, float]]] = {
    "approved": (0.0, 1.0),
    "age_threshold": (0.0, 150.0),
}
OTHER: Final = "other"
MAX_GROUPS: Final = 100_000
MAX_EPSILON: Final = 10.0
#: Below this the noise scale (sensitivity / epsilon) leaves floating point (1e-320 gives an
#: infinite scale that OpenDP refuses), and the release would be pure noise anyway.
MIN_EPSILON: Final = 1e-6
_KEY_SEPARATOR: Final = "\x1f"


class Statistic(StrEnum):
    COUNT = "count"
    SUM = "sum"
    MEAN = "mean"


class Mechanism(StrEnum):
    LAPLACE = "laplace"
    GAUSSIAN = "gaussian"


@dataclass(frozen=True)
class Event:
    """One verification as the analytics see it: public dimensions and numeric values."""

    claim_type: str
    provider_id: str
    region: str
    outcome: str
    approved: int
    age_threshold: int | None = None

    def value(self, name: str) -> float | None:
        raw = self.approved if name == "approved" else self.age_threshold
        return None if raw is None else float(raw)


@dataclass(frozen=True)
class ReleaseSpec:
    statistic: Statistic
    mechanism: Mechanism
    epsilon: float
    group_by: tuple[str, ...] = ()
    delta: float = 0.0
    value: str | None = None
    bounds: tuple[float, float] | None = None
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if not (MIN_EPSILON <= self.epsilon <= MAX_EPSILON) or not math.isfinite(self.epsilon):
            raise InvalidRequest(
                f"epsilon must be in [{MIN_EPSILON}, {MAX_EPSILON}]", field="epsilon"
            )
        if self.mechanism is Mechanism.GAUSSIAN and not (0 < self.delta < 1e-3):
            raise InvalidRequest(
                "the Gaussian mechanism needs a delta in (0, 0.001)", field="delta"
            )
        if self.mechanism is Mechanism.LAPLACE and self.delta != 0:
            raise InvalidRequest("the Laplace mechanism takes no delta", field="delta")
        unknown = [d for d in self.group_by if d not in DIMENSIONS]
        if unknown or len(set(self.group_by)) != len(self.group_by):
            raise InvalidRequest(
                f"group_by takes distinct dimensions among {', '.join(DIMENSIONS)}",
                field="group_by",
            )
        if not 0 < self.alpha < 1:
            raise InvalidRequest("alpha must be in (0, 1)", field="alpha")
        if self.statistic is Statistic.COUNT:
            if self.value is not None or self.bounds is not None:
                raise InvalidRequest("a count takes no value or bounds", field="value")
            return
        if self.value not in VALUES:
            raise InvalidRequest(
                f"a {self.statistic.value} needs a value among {', '.join(VALUES)}",
                field="value",
            )
        low, high = self.clamp_bounds
        natural = VALUES[self.value]
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise InvalidRequest("bounds must be finite with lower < upper", field="bounds")
        if low < natural[0] or high > natural[1]:
            raise InvalidRequest(
                f"bounds for {self.value} lie within {natural[0]:g}..{natural[1]:g}",
                field="bounds",
            )

    @property
    def clamp_bounds(self) -> tuple[float, float]:
        assert self.value is not None
        return self.bounds if self.bounds is not None else VALUES[self.value]

    def canonical(self) -> dict[str, Any]:
        return {
            "statistic": self.statistic.value,
            "mechanism": self.mechanism.value,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "group_by": list(self.group_by),
            "value": self.value,
            "bounds": list(self.clamp_bounds) if self.value else None,
            "alpha": self.alpha,
        }


class GroupValues(TypedDict):
    """One group's noisy values: a count, a sum, or a mean with the sum and count it came from."""

    key: dict[str, str]
    count: NotRequired[int | float]
    sum: NotRequired[int | float]
    mean: NotRequired[float | None]


class PrivacyLoss(TypedDict):
    epsilon: float
    delta: float
    rho: float | None


class ExpectedError(TypedDict):
    what: str
    alpha: float
    confidence: float
    noise_scale: float
    accuracy: float


class ReleaseView(TypedDict):
    """A release as reported: the statistic per group, what it cost, how accurate it is."""

    statistic: str
    mechanism: str
    group_by: list[str]
    groups: list[GroupValues]
    privacy_loss: PrivacyLoss
    expected_error: list[ExpectedError]


@dataclass(frozen=True)
class Cost:
    """The privacy loss of one release: (epsilon, delta), and rho for Gaussian releases."""

    epsilon: float
    delta: float = 0.0
    rho: float | None = None


@dataclass(frozen=True)
class Accuracy:
    """``accuracy``: with probability ``1 - alpha`` a released value is within +- of truth."""

    alpha: float
    scale: float
    accuracy: float
    what: str

    def as_dict(self) -> ExpectedError:
        return ExpectedError(
            what=self.what,
            alpha=self.alpha,
            confidence=1 - self.alpha,
            noise_scale=self.scale,
            accuracy=self.accuracy,
        )


@dataclass(frozen=True)
class Release:
    spec: ReleaseSpec
    groups: list[GroupValues]
    cost: Cost
    accuracy: list[Accuracy]
    group_keys: list[tuple[str, ...]] = field(repr=False)

    def as_dict(self) -> ReleaseView:
        return ReleaseView(
            statistic=self.spec.statistic.value,
            mechanism=self.spec.mechanism.value,
            group_by=list(self.spec.group_by),
            groups=self.groups,
            privacy_loss=PrivacyLoss(
                epsilon=self.cost.epsilon, delta=self.cost.delta, rho=self.cost.rho
            ),
            expected_error=[a.as_dict() for a in self.accuracy],
        )


def group_keys(spec: ReleaseSpec, domains: Mapping[str, Sequence[str]]) -> list[tuple[str, ...]]:
    """Every combination of the public domains of the grouping dimensions."""
    for dimension in spec.group_by:
        if not domains.get(dimension):
            raise InvalidRequest(f"no public values are known for {dimension}", field="group_by")
    size = math.prod(len(domains[d]) for d in spec.group_by)
    if size > MAX_GROUPS:
        raise InvalidRequest(
            f"grouping by {', '.join(spec.group_by)} makes {size:,} groups; the most is "
            f"{MAX_GROUPS:,}",
            field="group_by",
        )
    return list(itertools.product(*(sorted(set(domains[d])) for d in spec.group_by)))


def _key(event: Event, group_by: Sequence[str]) -> str:
    return _KEY_SEPARATOR.join(str(getattr(event, d)) for d in group_by)


def _map(chain: Any, d_in: Any) -> Any:
    """OpenDP's privacy (or stability) map of ``chain`` at ``d_in``."""
    return chain.map(d_in)  # OpenDP leaves ``map`` unannotated


def _search_scale(make: Callable[[float], odp.Measurement], d_in: Any, d_out: Any) -> float:
    """The smallest noise scale whose privacy map at ``d_in`` stays within ``d_out``."""
    scale: float = odp.binary_search_param(make, d_in=d_in, d_out=d_out, T=float)
    return scale


def _to_approx(measurement: odp.Measurement, delta: float) -> odp.Measurement:
    converted: odp.Measurement = odp.c.make_fix_delta(
        odp.c.make_zCDP_to_approxDP(measurement), delta
    )
    return converted


def _noisy_counts(
    spec: ReleaseSpec, keys: list[str], data: list[str], epsilon: float, delta: float
) -> tuple[list[int], Cost, Accuracy]:
    gaussian = spec.mechanism is Mechanism.GAUSSIAN
    metric = odp.L2Distance[int] if gaussian else odp.L1Distance[int]
    counts = odp.t.make_count_by_categories(
        odp.vector_domain(odp.atom_domain(T=str)),
        odp.symmetric_distance(),
        categories=keys,
        null_category=True,
        MO=metric,
    )
    sensitivity = _map(counts, 1)
    base_space = (odp.vector_domain(odp.atom_domain(T=int)), counts.output_metric)
    if gaussian:

        def make_base(scale: float) -> odp.Measurement:
            return _to_approx(odp.m.make_gaussian(*base_space, scale=scale), delta)

        scale = _search_scale(make_base, sensitivity, (epsilon, delta))
        core = counts >> odp.m.then_gaussian(scale)
        rho = float(_map(core, 1))
        measurement = _to_approx(core, delta)
        eps, dlt = _map(measurement, 1)
        cost = Cost(float(eps), float(dlt), rho)
        accuracy = odp.discrete_gaussian_scale_to_accuracy(scale, spec.alpha)
    else:
        scale = sensitivity / epsilon
        measurement = counts >> odp.m.then_laplace(scale)
        cost = Cost(float(_map(measurement, 1)))
        accuracy = odp.discrete_laplacian_scale_to_accuracy(scale, spec.alpha)
    released: list[int] = measurement(data)
    # Post-processing: no count is below zero (free under differential privacy).
    return (
        [max(0, c) for c in released],
        cost,
        Accuracy(spec.alpha, scale, float(accuracy), "count"),
    )


def _noisy_sums(
    spec: ReleaseSpec, sums: list[float], sensitivity: float, epsilon: float, delta: float
) -> tuple[list[float], Cost, Accuracy]:
    domain = odp.vector_domain(odp.atom_domain(T=float, nan=False))
    if spec.mechanism is Mechanism.GAUSSIAN:
        space = (domain, odp.l2_distance(T=float))

        def make(scale: float) -> odp.Measurement:
            return _to_approx(odp.m.make_gaussian(*space, scale=scale), delta)

        scale = _search_scale(make, sensitivity, (epsilon, delta))
        core = odp.m.make_gaussian(*space, scale=scale)
        measurement = _to_approx(core, delta)
        eps, dlt = _map(measurement, sensitivity)
        cost = Cost(float(eps), float(dlt), float(_map(core, sensitivity)))
        accuracy = odp.gaussian_scale_to_accuracy(scale, spec.alpha)
    else:
        space = (domain, odp.l1_distance(T=float))

        def make_laplace(scale: float) -> odp.Measurement:
            return odp.m.make_laplace(*space, scale=scale)

        scale = _search_scale(make_laplace, sensitivity, epsilon)
        measurement = make_laplace(scale)
        cost = Cost(float(_map(measurement, sensitivity)))
        accuracy = odp.laplacian_scale_to_accuracy(scale, spec.alpha)
    released: list[float] = measurement(sums)
    # Post-processing: every value's bounds start at zero or above (VALUES, and a spec's bounds
    # lie within them), so no true sum is below zero.
    return (
        [max(0.0, s) for s in released],
        cost,
        Accuracy(spec.alpha, scale, float(accuracy), "sum"),
    )


def _clamped_sums(
    spec: ReleaseSpec, keys: list[str], events: Sequence[Event]
) -> tuple[list[float], float]:
    """Each group's clamped sum (OpenDP transformation) and the per-event sensitivity."""
    assert spec.value is not None
    clamp = odp.t.make_clamp(
        odp.vector_domain(odp.atom_domain(T=float, nan=False)),
        odp.symmetric_distance(),
        spec.clamp_bounds,
    )
    summing = clamp >> odp.t.then_sum()  # type: ignore[no-untyped-call]
    index = {k: i for i, k in enumerate(keys)}
    columns: list[list[float]] = [[] for _ in range(len(keys) + 1)]
    for event in events:
        value = event.value(spec.value)
        if value is not None:
            columns[index.get(_key(event, spec.group_by), len(keys))].append(value)
    sums = [float(summing(column)) if column else 0.0 for column in columns]
    return sums, float(_map(summing, 1))


def enable_opendp() -> None:
    """Allow OpenDP's ``contrib`` constructors (a process-wide flag; idempotent and cheap)."""
    odp.enable_features("contrib")


def release(
    spec: ReleaseSpec, events: Sequence[Event], domains: Mapping[str, Sequence[str]]
) -> Release:
    """Compute the noisy statistic per public group (plus ``other``)."""
    enable_opendp()  # the one function here that builds OpenDP measurements
    key_tuples = group_keys(spec, domains)
    keys = [_KEY_SEPARATOR.join(k) for k in key_tuples]
    labels = [dict(zip(spec.group_by, k, strict=True)) for k in key_tuples]
    if spec.group_by:  # without grouping, the one key matches every event: no "other"
        labels.append(dict.fromkeys(spec.group_by, OTHER))
    with_values = (
        [e for e in events if e.value(spec.value) is not None]
        if spec.value is not None
        else list(events)
    )
    data = [_key(e, spec.group_by) for e in with_values]

    if spec.statistic is Statistic.COUNT:
        counts, cost, accuracy = _noisy_counts(spec, keys, data, spec.epsilon, spec.delta)
        groups = [GroupValues(key=label, count=c) for label, c in zip(labels, counts, strict=False)]
        return Release(spec, groups, cost, [accuracy], key_tuples)

    if spec.statistic is Statistic.SUM:
        sums, sensitivity = _clamped_sums(spec, keys, with_values)
        noisy, cost, accuracy = _noisy_sums(spec, sums, sensitivity, spec.epsilon, spec.delta)
        groups = [GroupValues(key=label, sum=s) for label, s in zip(labels, noisy, strict=False)]
        return Release(spec, groups, cost, [accuracy], key_tuples)

    half_eps, half_delta = spec.epsilon / 2, spec.delta / 2
    sums, sensitivity = _clamped_sums(spec, keys, with_values)
    noisy_sums, sum_cost, sum_accuracy = _noisy_sums(spec, sums, sensitivity, half_eps, half_delta)
    counts, count_cost, count_accuracy = _noisy_counts(spec, keys, data, half_eps, half_delta)
    low, high = spec.clamp_bounds
    groups = []
    for label, total, count in zip(labels, noisy_sums, counts, strict=False):
        mean = min(high, max(low, total / count)) if count > 0 else None
        groups.append(GroupValues(key=label, mean=mean, sum=total, count=count))
    rho = (
        (sum_cost.rho or 0.0) + (count_cost.rho or 0.0)
        if spec.mechanism is Mechanism.GAUSSIAN
        else None
    )
    cost = Cost(sum_cost.epsilon + count_cost.epsilon, sum_cost.delta + count_cost.delta, rho)
    return Release(spec, groups, cost, [sum_accuracy, count_accuracy], key_tuples)
