"""Active health checks of DP endpoints: a periodic ``GET`` of each endpoint's probe path.

The loop runs while the client lives (when ``probe.interval_s`` is set), with a jittered
interval; endpoints idle for longer than ``probe.idle_evict_s`` are forgotten and their pools
closed. A probe that passes lifts an ejection only after the probes had seen the endpoint fail.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import httpx

from pavilion.connect import metrics
from pavilion.connect.config import ConnectConfig
from pavilion.connect.endpoints import EndpointBook, EndpointState
from pavilion.connect.pools import PoolRegistry
from pavilion.connect.tls import tls_failure


class Prober:
    """Probes the endpoints of an :class:`EndpointBook` and publishes what it finds."""

    def __init__(
        self,
        config: ConnectConfig,
        book: EndpointBook,
        pools: PoolRegistry,
        *,
        rng: random.Random,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._book = book
        self._pools = pools
        self._rng = rng
        self._clock = clock

    async def loop(self) -> None:
        interval = self._config.probe.interval_s or 1.0
        while True:
            await asyncio.sleep(interval * self._rng.uniform(0.9, 1.1))
            now = self._clock()
            for key, state in list(self._book.states.items()):
                if now - state.health.last_used > self._config.probe.idle_evict_s:
                    del self._book.states[key]
                    await self._pools.evict(state.provider.id, state.endpoint.url)
            await asyncio.gather(*(self.probe(s) for s in list(self._book.states.values())))

    async def probe(self, state: EndpointState) -> bool:
        client = self._pools.client(state.provider.id, state.endpoint.url, state.provider.tls)
        try:
            response = await client.get(
                f"{state.endpoint.url}{self._config.probe.path}",
                timeout=self._config.probe.timeout_s,
                extensions={"trace": self._book.tracer(state)},
            )
            ok = response.status_code == 200
        except httpx.HTTPError as exc:
            tls = tls_failure(exc)
            if tls is not None:
                metrics.CONNECTION_ERRORS.labels(*state.labels(), tls[0]).inc()
            ok = False
        self._book.publish(state, state.health.probed(ok, self._clock()))
        return ok
