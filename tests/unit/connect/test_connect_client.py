"""The DP client over fake transports: balancing, ejection, failover, budget, hedging."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from connect_support import FakeClock, metric, mock_client, provider
from pavilion.connect.config import (
    BreakerConfig,
    BudgetConfig,
    ConnectConfig,
    OutlierConfig,
    ProbeConfig,
)
from pavilion.connect.errors import ResidencyPreventedFailover
from pavilion.connect.routing import plan_route
from pavilion.errors import ProviderBadResponse, ProviderUnavailable
from pavilion.providers.types import Endpoint
from waiting import until

HOME = Endpoint("eu-west", "EU", "http://home")
HOME_2 = Endpoint("eu-west", "EU", "http://home2", weight=3.0)
OTHER = Endpoint("eu-central", "EU", "http://other")
US = Endpoint("us-east", "US", "http://us")
FOUND = {"found": True, "record": {"student_id": "S1"}, "as_of": "2026-01-01T00:00:00Z"}


def _route(*endpoints: Endpoint) -> object:
    return plan_route(endpoints, "EU", "eu-west")


async def test_home_tier_serves_and_weights_bias_the_choice() -> None:
    seen: Counter[str] = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.url.host] += 1
        return httpx.Response(200, json=FOUND)

    # A clock that stands still: every latency is equal, so only the weights decide (with the
    # real clock a loaded machine's scheduling noise can outweigh them).
    client, _ = mock_client(handler, clock=FakeClock())
    dp = provider(HOME, HOME_2, OTHER)
    route = plan_route(dp.endpoints, "EU", "eu-west")
    results = await asyncio.gather(
        *(client.lookup(dp, route, {"student_id": "S1"}) for _ in range(200))
    )
    assert {r.region for r in results} == {"eu-west"}
    assert not any(r.failover for r in results)
    assert seen["other"] == 0  # the other region is only for failover
    assert seen["home2"] > seen["home"]  # weight 3 against 1
    await client.aclose()


async def test_failed_home_region_is_ejected_and_traffic_fails_over_then_back() -> None:
    clock = FakeClock()
    home_up = False
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        if request.url.host == "home" and not home_up:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=FOUND)

    config = ConnectConfig(outlier=OutlierConfig(consecutive_failures=3, base_ejection_s=10))
    client, sink = mock_client(handler, config=config, clock=clock)
    dp = provider(HOME, OTHER)
    route = plan_route(dp.endpoints, "EU", "eu-west")
    first = await client.lookup(dp, route, {"student_id": "S1"})
    assert (first.region, first.attempts, first.failover) == ("eu-central", 2, True)
    for _ in range(2):
        await client.lookup(dp, route, {"student_id": "S1"})
    assert "endpoint_ejected" in sink.kinds()
    calls.clear()
    for _ in range(5):
        result = await client.lookup(dp, route, {"student_id": "S1"})
        assert (result.region, result.attempts) == ("eu-central", 1)
    assert calls == ["other"] * 5  # the ejected home region is not even tried
    assert sink.kinds().count("failover") == 1
    failover = next(e for e in sink.events if e.kind == "failover")
    assert (failover.data["from_region"], failover.data["to_region"]) == ("eu-west", "eu-central")
    assert failover.tenant_id == "tenant-1"
    assert failover.endpoint == "other:80"
    assert (
        metric("pavilion_dp_endpoint_ejected", provider="p1", region="eu-west", endpoint="home:80")
        == 1.0
    )
    # The primary recovers; once its ejection runs out it serves again: fail-back.
    home_up = True
    clock.advance(10.0)
    back = await client.lookup(dp, route, {"student_id": "S1"})
    assert (back.region, back.failover) == ("eu-west", False)
    assert sink.kinds().count("failback") == 1
    assert "endpoint_returned" in sink.kinds()
    health = client.health(dp)
    home = next(e for e in health["endpoints"] if e["region"] == "eu-west")
    assert (home["status"], home["ejections"], home["failures"]) == ("healthy", 1, 3)
    await client.aclose()


async def test_no_allowed_region_left_is_a_503_that_blames_residency() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        return httpx.Response(503)

    client, sink = mock_client(handler, retries=3)
    dp = provider(HOME, OTHER, US)
    route = plan_route(dp.endpoints, "EU", "eu-west")
    with pytest.raises(ResidencyPreventedFailover) as info:
        await client.lookup(dp, route, {"student_id": "S1"})
    assert "us" not in calls  # a forbidden region is never called
    error = info.value
    assert error.code == "residency-prevented-failover"
    assert isinstance(error, ProviderUnavailable)
    assert "residency prevented failover to us-east" in error.detail
    assert error.extra["forbidden_regions"] == ["us-east"]
    assert error.extra["allowed_regions"] == ["eu-central", "eu-west"]
    assert error.extra["attempts"] == 4
    assert sink.kinds().count("residency_prevented_failover") == 1
    with pytest.raises(ResidencyPreventedFailover):
        await client.lookup(dp, route, {"student_id": "S1"})
    assert sink.kinds().count("residency_prevented_failover") == 1  # reported once a minute
    await client.aclose()


async def test_every_endpoint_out_of_service_fails_fast_with_retry_after() -> None:
    clock = FakeClock()
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("refused", request=request)

    config = ConnectConfig(outlier=OutlierConfig(consecutive_failures=1, base_ejection_s=7))
    client, _ = mock_client(handler, retries=1, config=config, clock=clock)
    dp = provider(HOME)
    with pytest.raises(ProviderUnavailable, match="after 1 attempts"):
        await client.lookup(dp, [HOME], {"student_id": "S1"})
    with pytest.raises(ProviderUnavailable) as info:
        await client.lookup(dp, [HOME], {"student_id": "S1"})
    assert calls == 1  # the second request did not touch the ejected endpoint
    assert info.value.retry_after_s == 7
    assert not isinstance(info.value, ResidencyPreventedFailover)
    await client.aclose()


async def test_retry_budget_caps_retries_under_sustained_failure() -> None:
    clock = FakeClock()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500)

    config = ConnectConfig(
        budget=BudgetConfig(ratio=0.2, window_s=10, min_per_s=0.0),
        outlier=OutlierConfig(consecutive_failures=10_000),
        breaker=BreakerConfig(min_calls=10_000),  # keep calling: this is about the budget
    )
    client, _ = mock_client(handler, retries=1, config=config, clock=clock)
    dp = provider(HOME, provider_id="budget-test")
    before = metric("pavilion_dp_retries_total", provider="budget-test", reason="http_5xx")
    messages = []
    for _ in range(100):
        with pytest.raises(ProviderUnavailable) as info:
            await client.lookup(dp, [HOME], {"student_id": "S1"})
        messages.append(info.value.detail)
        clock.advance(0.01)
    retries = (
        metric("pavilion_dp_retries_total", provider="budget-test", reason="http_5xx") - before
    )
    assert 0 < retries <= 20  # under 20% of the 100 requests
    assert sum("retry budget exhausted" in m for m in messages) == 100 - retries
    assert metric("pavilion_dp_retry_budget_exhausted_total", provider="budget-test") > 0
    health = client.health(dp)
    assert health["retry_budget"]["retries"] == retries
    await client.aclose()


async def test_deadline_shrinks_across_attempts_and_travels_as_a_header() -> None:
    deadlines: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        deadlines.append(int(request.headers["x-request-deadline-ms"]))
        await asyncio.sleep(0.05)
        return httpx.Response(502)

    client, _ = mock_client(handler, retries=2, timeout=1.0)  # type: ignore[arg-type]
    with pytest.raises(ProviderUnavailable):
        await client.lookup(provider(HOME), [HOME], {"student_id": "S1"})
    assert len(deadlines) == 3
    assert deadlines[0] <= 1000
    assert deadlines[0] > deadlines[1] > deadlines[2] > 0
    await client.aclose()


async def test_attempt_timeout_moves_a_slow_endpoint_s_request_elsewhere() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "home":
            await asyncio.sleep(5)
        return httpx.Response(200, json=FOUND)

    client, _ = mock_client(  # type: ignore[arg-type]
        handler, timeout=3.0, config=ConnectConfig(attempt_timeout_s=0.1)
    )
    dp = provider(HOME, OTHER)
    result = await client.lookup(dp, plan_route(dp.endpoints, "EU", "eu-west"), {"id": "S1"})
    assert (result.region, result.attempts) == ("eu-central", 2)
    await client.aclose()


async def test_garbage_goes_to_another_endpoint_but_never_again_to_the_same() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        if request.url.host == "home":
            return httpx.Response(200, content=b"<html>oops</html>")
        return httpx.Response(200, json=FOUND)

    client, _ = mock_client(handler, retries=3)
    dp = provider(HOME, OTHER)
    result = await client.lookup(dp, plan_route(dp.endpoints, "EU", "eu-west"), {"id": "S1"})
    assert result.region == "eu-central"
    assert calls == ["home", "other"]
    calls.clear()
    single = provider(HOME)
    with pytest.raises(ProviderBadResponse, match="invalid JSON"):
        await client.lookup(single, [HOME], {"id": "S1"})
    assert calls == ["home"]
    await client.aclose()


async def test_calls_that_are_not_read_only_are_never_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503)

    client, _ = mock_client(handler, retries=3)
    dp = provider(HOME, OTHER)
    with pytest.raises(ProviderUnavailable, match="after 1 attempts"):
        await client.lookup(dp, [HOME, OTHER], {"id": "S1"}, read_only=False)
    assert calls == 1
    await client.aclose()


async def test_hedged_request_wins_when_the_first_is_slower_than_its_p95() -> None:
    slow = False

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "home" and slow:
            await asyncio.sleep(2)
        return httpx.Response(200, json=FOUND)

    config = ConnectConfig(hedging=True, hedge_min_samples=5)
    client, _ = mock_client(handler, config=config, seed=3)  # type: ignore[arg-type]
    dp = provider(HOME, OTHER, provider_id="hedge-test")
    route = plan_route(dp.endpoints, "EU", "eu-west")
    for _ in range(10):
        assert not (await client.lookup(dp, route, {"id": "S1"})).hedged
    slow = True
    started = asyncio.get_running_loop().time()
    result = await client.lookup(dp, route, {"id": "S1"})
    assert result.hedged
    assert result.region == "eu-central"
    assert asyncio.get_running_loop().time() - started < 1.5  # did not wait for the slow one
    assert metric("pavilion_dp_hedged_requests_total", provider="hedge-test", winner="hedge") == 1
    home = client.endpoint_state(dp, HOME)
    assert home.health.in_flight == 0  # the losing request was cancelled and accounted for
    await client.aclose()


async def test_hedge_that_also_fails_returns_the_failure() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "home":
            await asyncio.sleep(0.3)
            return httpx.Response(200, json=FOUND)
        return httpx.Response(500)

    config = ConnectConfig(hedging=True, hedge_min_samples=1)
    client, _ = mock_client(handler, retries=0, config=config)  # type: ignore[arg-type]
    dp = provider(HOME, OTHER)
    client.endpoint_state(dp, HOME).health.latencies.append(0.01)
    result = await client.lookup(dp, plan_route(dp.endpoints, "EU", "eu-west"), {"id": "S1"})
    assert result.region == "eu-west"
    assert result.hedged
    await client.aclose()


async def test_credentials_refused_are_not_retried_and_do_not_hurt_health() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    client, _ = mock_client(handler)
    dp = provider(HOME)
    with pytest.raises(ProviderBadResponse, match="HTTP 404"):
        await client.lookup(dp, [HOME], {"id": "S1"})
    assert client.health(dp)["endpoints"][0]["failures"] == 0
    await client.aclose()


async def test_warm_up_and_active_probes_track_endpoint_health() -> None:
    up = {"home": True, "other": True}
    probes: Counter[str] = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/healthz"
        probes[request.url.host] += 1
        if not up[request.url.host]:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"status": "ok"})

    config = ConnectConfig(probe=ProbeConfig(interval_s=0.02, unhealthy_threshold=2))
    client, sink = mock_client(handler, config=config)
    dp = provider(HOME, OTHER)
    assert client.health(dp)["endpoints"][0]["status"] == "unknown"
    assert await client.warm_up(dp) == {"home:80": True, "other:80": True}
    up["other"] = False
    await until(lambda: "probe_unhealthy" in sink.kinds(), what="the probe to mark it unhealthy")
    view = {e["region"]: e for e in client.health(dp)["endpoints"]}
    assert view["eu-central"]["probe"] == "unhealthy"
    assert view["eu-central"]["status"] == "unhealthy"
    assert view["eu-west"]["probe"] == "healthy"
    assert probes["home"] >= 3
    await client.aclose()
    assert client.health(dp)["auth_method"] == "api_key"


async def test_idle_endpoints_stop_being_probed() -> None:
    clock = FakeClock()
    config = ConnectConfig(probe=ProbeConfig(interval_s=0.01, idle_evict_s=60))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "ok"})

    client, _ = mock_client(handler, config=config, clock=clock)
    dp = provider(HOME)
    await client.warm_up(dp)
    clock.advance(61)
    await until(lambda: client.health(dp)["endpoints"][0]["status"] == "unknown")
    assert client.health(dp)["endpoints"][0]["status"] == "unknown"
    await client.aclose()
