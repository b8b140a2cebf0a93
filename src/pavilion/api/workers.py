"""The app of one worker process of ``pavilion serve --workers N``.

Uvicorn spawns each worker as a fresh interpreter and hands it a pickled copy of its
configuration. :class:`WorkerApp` is what travels: the settings only. In the worker it sets up
logging, builds the worker's own :class:`~pavilion.runtime.Runtime` (database pool, keystore,
DP connections, journal, caches) and the FastAPI app over it, and, when TLS is configured, the
SSL context (the key opened by the worker's own keystore). Nothing is shared between workers
but the database: caches are per process (a change made through another worker applies within
``config_cache_seconds``), and so are Prometheus metrics (``/metrics`` shows the worker that
answers).

A worker that cannot build its runtime exits with uvicorn's start-up failure code, so that
the supervisor stops instead of restarting it over and over.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from pavilion.errors import ConfigurationError, PavilionError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from pavilion.config.settings import Settings
    from pavilion.runtime import Runtime


class WorkerApp:
    """A picklable app factory: ``WorkerApp(settings)()`` is the worker's FastAPI app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._runtime: Runtime | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings}  # a runtime never travels; each worker builds its own

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.settings = state["settings"]
        self._runtime = None

    def runtime(self) -> Runtime:
        """The worker's runtime, built (and logging set up) on first use."""
        if self._runtime is None:
            from pavilion.observability.logging import configure_logging
            from pavilion.runtime import build_runtime

            configure_logging(self.settings.log_level, json_output=self.settings.log_json)
            try:
                runtime = build_runtime(self.settings)
                runtime.build_all()  # what cannot start fails here, not in the lifespan
                self._runtime = runtime
            except PavilionError as exc:
                print(f"error: worker cannot start: {exc.detail}", file=sys.stderr)
                sys.exit(STARTUP_FAILURE)
        return self._runtime

    def __call__(self) -> FastAPI:
        from pavilion.api.app import create_app
        from pavilion.serving import settle_heap

        app = create_app(self.runtime())
        settle_heap()  # the worker's start-up heap, out of the collector's sight
        return app

    def ssl_context(
        self, _config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]
    ) -> ssl.SSLContext:
        """Uvicorn's TLS hook (called in the worker before the app is built)."""
        from pavilion.workflows.server_tls import tls_context

        try:
            context = tls_context(self.settings, self.runtime().keystore)
        except PavilionError as exc:
            print(f"error: worker cannot start: {exc.detail}", file=sys.stderr)
            sys.exit(STARTUP_FAILURE)
        if context is None:
            raise ConfigurationError("the TLS hook is installed only when TLS is configured")
        return context
