"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from pavilion import __version__
from pavilion.api import problems
from pavilion.api.middleware import BodyLimitMiddleware, MetricsMiddleware
from pavilion.api.routes import audit, providers, system, tenants, verifications
from pavilion.runtime import Runtime


def create_app(runtime: Runtime, *, owns_runtime: bool = True) -> FastAPI:
    """The connector's HTTP API over a built runtime, closed at shutdown when the app owns it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.db.check_role(allow_bypass=runtime.settings.allow_rls_bypass)
        await runtime.tenancy.ensure_platform_tenant()
        yield
        if owns_runtime:
            await runtime.aclose()

    app = FastAPI(
        title="Pavilion DP Connector",
        version=__version__,
        description=(
            "Privacy-first eligibility verification between the Pavilion broker and data "
            "providers. Errors are RFC 9457 problem+json."
        ),
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    problems.install(app)
    for module in (system, tenants, providers, verifications, audit):
        app.include_router(module.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=runtime.settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    return app
