"""Differentially private releases (OpenDP): costs, accuracy, public groups, validation."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime

import pytest

from pavilion.errors import InvalidRequest
from pavilion.privacy import differential
from pavilion.privacy.budget import Period, delta_units, epsilon_units, period_start
from pavilion.privacy.differential import Event, Mechanism, ReleaseSpec, Statistic

DOMAINS = {
    "claim_type": ["age_over", "membership", "student_status"],
    "outcome": ["false", "true", "unknown"],
    "provider_id": ["p1", "p2"],
    "region": ["eu-west", "none"],
}


def events() -> list[Event]:
    out = [Event("age_over", "p1", "eu-west", "true", 1, 18) for _ in range(400)]
    out += [Event("age_over", "p1", "eu-west", "false", 0, 21) for _ in range(100)]
    out += [Event("student_status", "p2", "eu-west", "unknown", 0) for _ in range(50)]
    out += [Event("student_status", "p9", "eu-west", "true", 1) for _ in range(30)]  # unlisted DP
    return out


def test_counts_release_every_public_group_and_other() -> None:
    spec = ReleaseSpec(Statistic.COUNT, Mechanism.LAPLACE, 1.0, ("claim_type", "provider_id"))
    release = differential.release(spec, events(), DOMAINS)
    keys = [tuple(g["key"].values()) for g in release.groups]
    assert len(keys) == 3 * 2 + 1  # every combination, zero or not, plus "other"
    assert keys[-1] == ("other", "other")
    by_key = {tuple(g["key"].values()): g["count"] for g in release.groups}
    assert abs(by_key[("age_over", "p1")] - 500) < 40
    assert abs(by_key[("other", "other")] - 30) < 40
    assert release.cost.epsilon == pytest.approx(1.0)
    assert release.cost.delta == 0
    error = release.accuracy[0]
    assert error.scale == pytest.approx(1.0)
    assert 0 < error.accuracy < 10
    assert release.as_dict()["expected_error"][0]["confidence"] == pytest.approx(0.95)


def test_laplace_noise_matches_its_stated_accuracy() -> None:
    spec = ReleaseSpec(Statistic.COUNT, Mechanism.LAPLACE, 0.5, ("claim_type", "outcome"))
    errors = []
    for _ in range(40):
        release = differential.release(spec, events(), DOMAINS)
        count = next(
            g["count"]
            for g in release.groups
            if g["key"] == {"claim_type": "age_over", "outcome": "true"}
        )
        errors.append(abs(count - 400))
    bound = release.accuracy[0].accuracy
    within = sum(e <= bound for e in errors) / len(errors)
    assert within >= 0.8  # 95% nominal; 40 draws
    assert statistics.mean(errors) > 0  # noise is really added


@pytest.mark.parametrize(
    ("statistic", "mechanism", "value"),
    [
        (Statistic.COUNT, Mechanism.LAPLACE, None),
        (Statistic.COUNT, Mechanism.GAUSSIAN, None),
        (Statistic.SUM, Mechanism.LAPLACE, "approved"),
        (Statistic.MEAN, Mechanism.GAUSSIAN, "approved"),
    ],
)
def test_noisy_counts_and_sums_are_never_released_negative(
    statistic: Statistic, mechanism: Mechanism, value: str | None
) -> None:
    # A small epsilon (noise scale about 100) over groups that are mostly empty: without the
    # clamp about half of the empty groups would come out negative in every release.
    delta = 1e-6 if mechanism is Mechanism.GAUSSIAN else 0.0
    spec = ReleaseSpec(statistic, mechanism, 0.01, ("claim_type", "outcome"), delta, value)
    released: list[float] = []
    for _ in range(5):
        for group in differential.release(spec, events(), DOMAINS).groups:
            released += [group[name] for name in ("count", "sum") if name in group]
    assert min(released) == 0  # clamped at zero, never below
    mean = differential.release(spec, events(), DOMAINS).groups[0].get("mean")
    assert mean is None or 0.0 <= mean <= 1.0


def test_gaussian_costs_at_most_what_was_asked() -> None:
    spec = ReleaseSpec(Statistic.COUNT, Mechanism.GAUSSIAN, 1.0, ("outcome",), delta=1e-6)
    release = differential.release(spec, events(), DOMAINS)
    assert release.cost.epsilon <= 1.0 + 1e-9
    assert release.cost.delta == pytest.approx(1e-6)
    assert release.cost.rho is not None
    assert release.cost.rho > 0


@pytest.mark.parametrize("mechanism", [Mechanism.LAPLACE, Mechanism.GAUSSIAN])
def test_sums_and_means_are_clamped(mechanism: Mechanism) -> None:
    delta = 1e-6 if mechanism is Mechanism.GAUSSIAN else 0.0
    sums = differential.release(
        ReleaseSpec(
            Statistic.SUM, mechanism, 2.0, ("claim_type",), delta, "age_threshold", (0, 20)
        ),
        events(),
        DOMAINS,
    )
    age = next(g for g in sums.groups if g["key"] == {"claim_type": "age_over"})
    assert abs(age["sum"] - (400 * 18 + 100 * 20)) < 1500  # 21 clamped to 20
    means = differential.release(
        ReleaseSpec(Statistic.MEAN, mechanism, 2.0, ("claim_type",), delta, "approved"),
        events(),
        DOMAINS,
    )
    age = next(g for g in means.groups if g["key"] == {"claim_type": "age_over"})
    assert 0.0 <= age["mean"] <= 1.0
    assert abs(age["mean"] - 0.8) < 0.2
    assert means.cost.epsilon == pytest.approx(2.0, rel=1e-6)
    assert [a.what for a in means.accuracy] == ["sum", "count"]


def test_a_release_without_grouping_is_one_value() -> None:
    release = differential.release(
        ReleaseSpec(Statistic.COUNT, Mechanism.LAPLACE, 1.0), events(), DOMAINS
    )
    assert len(release.groups) == 1
    assert release.groups[0]["key"] == {}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"epsilon": 0}, "epsilon"),
        ({"epsilon": 11}, "epsilon"),
        ({"mechanism": Mechanism.GAUSSIAN}, "delta"),
        ({"delta": 1e-6}, "delta"),
        ({"group_by": ("name",)}, "group_by"),
        ({"group_by": ("outcome", "outcome")}, "group_by"),
        ({"alpha": 1.0}, "alpha"),
        ({"value": "approved"}, "value"),
        ({"statistic": Statistic.SUM}, "value"),
        ({"statistic": Statistic.SUM, "value": "approved", "bounds": (1, 0)}, "bounds"),
        ({"statistic": Statistic.SUM, "value": "approved", "bounds": (0, 5)}, "bounds"),
    ],
)
def test_bad_specs_name_the_field(kwargs: dict[str, object], field: str) -> None:
    values: dict[str, object] = {
        "statistic": Statistic.COUNT,
        "mechanism": Mechanism.LAPLACE,
        "epsilon": 1.0,
    } | kwargs
    with pytest.raises(InvalidRequest) as caught:
        ReleaseSpec(**values)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_groups_need_public_values_and_a_bounded_product() -> None:
    spec = ReleaseSpec(Statistic.COUNT, Mechanism.LAPLACE, 1.0, ("provider_id",))
    with pytest.raises(InvalidRequest, match="no public values"):
        differential.group_keys(spec, {"provider_id": []})
    spec = ReleaseSpec(Statistic.COUNT, Mechanism.LAPLACE, 1.0, tuple(DOMAINS))
    wide = {name: [str(i) for i in range(20)] for name in DOMAINS}
    with pytest.raises(InvalidRequest, match="160,000 groups"):
        differential.group_keys(spec, wide)


def test_ten_thousand_noisy_counts_in_one_release() -> None:
    domains = {"provider_id": [f"p{i}" for i in range(10_000)]}
    data = [Event("age_over", f"p{i % 12_000}", "x", "true", 1) for i in range(20_000)]
    release = differential.release(
        ReleaseSpec(Statistic.COUNT, Mechanism.LAPLACE, 1.0, ("provider_id",)), data, domains
    )
    assert len(release.groups) == 10_001


def test_budget_units_round_costs_up_and_periods_start_in_utc() -> None:
    assert epsilon_units(0.1) * 10 == epsilon_units(1.0)
    assert epsilon_units(1e-10) == 1  # never charged nothing
    assert delta_units(1e-6) == 10**9
    now = datetime(2026, 3, 18, 15, 30, tzinfo=UTC)  # a Wednesday
    assert period_start(Period.DAY, now) == datetime(2026, 3, 18, tzinfo=UTC)
    assert period_start(Period.WEEK, now) == datetime(2026, 3, 16, tzinfo=UTC)
    assert period_start(Period.MONTH, now) == datetime(2026, 3, 1, tzinfo=UTC)
    assert period_start(Period.NEVER, now).year == 1970
