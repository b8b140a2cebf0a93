"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from starlette.routing import NoMatchFound

from pavilion import __version__
from pavilion.api import problems, route_table
from pavilion.api.middleware import EdgeMiddleware
from pavilion.api.routes import audit, connections, providers, system, tenants, verifications
from pavilion.api.routes import credentials as credential_routes
from pavilion.api.routes import ingest as ingest_routes
from pavilion.api.routes import keys as keys_routes
from pavilion.api.routes import privacy as privacy_routes
from pavilion.api.routes import status_lists as status_list_routes
from pavilion.observability import stages
from pavilion.runtime import Runtime
from pavilion.workflows.connections import warm_up_connections


def create_app(runtime: Runtime, *, owns_runtime: bool = True) -> FastAPI:
    """The connector's HTTP API over a built runtime, closed at shutdown when the app owns it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.build_all()  # what the CLI builds on first use, a server builds before traffic
        _build_routes(app)
        await runtime.db.check_role(allow_bypass=runtime.settings.allow_rls_bypass)
        await runtime.tenancy.ensure_platform_tenant()
        await warm_up_connections(runtime)  # DP pools open and probed before traffic
        await runtime.keys.start()  # key refresh and signing-usage audit flushes
        await runtime.start()  # lookup lineage windows
        loop = asyncio.get_running_loop()
        if runtime.settings.stage_timing:
            stages.enable(loop)  # CPU per stage of the hot path (docs/PERFORMANCE.md)
        yield
        if stages.enabled(loop):
            stages.disable(loop)
        await runtime.stop()
        await runtime.keys.stop()
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
        responses=problems.problem_responses(500),
        # We export Prometheus metrics ourselves; FastAPI's OpenTelemetry hooks would look up
        # the global providers (and the environment) on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.runtime = runtime
    problems.install(app)
    for module in (system, tenants, providers, verifications, audit):
        app.include_router(module.router)
    did_path = runtime.credentials.issuer_did.document_path()
    if did_path is not None and did_path != system.DID_DOCUMENT_PATH:
        app.add_api_route(  # the did:web document at the path its DID names
            did_path,
            system.did_document,
            methods=["GET"],
            response_class=system.DidJsonResponse,
            include_in_schema=False,
        )
    app.include_router(connections.router)
    app.include_router(keys_routes.router)
    app.include_router(credential_routes.router)  # VC-API, trust chains, templates, refresh
    app.include_router(status_list_routes.router)
    app.include_router(privacy_routes.router)  # PSI, ZK predicates, private releases, receipts
    app.include_router(ingest_routes.router)  # roster uploads, mappings, quality, lineage
    app.add_middleware(  # security headers (the guard's refusals too), metrics, request guard
        EdgeMiddleware,
        max_bytes=runtime.settings.max_body_bytes,
        streamed_paths=ingest_routes.STREAMED_PATHS,
        max_header_bytes=runtime.settings.max_header_bytes,
    )
    route_table.install(app.router)  # exact paths by one lookup (FastAPI telemetry is off)
    return app


def _build_routes(app: FastAPI) -> None:
    """Build every included router's routes, and the route table over them, before traffic.

    FastAPI builds a router's routes (dependants from the endpoints' signatures) when the
    first request reaches it: about 0.3 s of CPU on the first requests after a start. Asking
    for the URL of a name no route has walks every router once and builds them all; the
    route table (built on the first request otherwise) is then made from them.
    """
    with suppress(NoMatchFound):
        app.url_path_for("pavilion:build-routes")
    table = app.router.middleware_stack
    if isinstance(table, route_table.RouteTable):
        table.build()
