"""Exact-path routes found by one dictionary lookup instead of FastAPI's router walk.

FastAPI 0.165 keeps every ``include_router`` as a nested router that the application tries in
include order, and matches the chosen router's routes twice (once to pick the router, once to
pick the route): every request to the VC-API paid for the regexes of the seven routers before
it, about 13% of the event loop's CPU under ``bench/credentials.py``.

:class:`RouteTable` sits where the application router's own middleware stack sits (inside
FastAPI's exception middleware, so errors are mapped exactly as before). A request whose method
and path name a route without path parameters goes straight to that route's handler, with the
scope FastAPI would have set (``router``, ``endpoint``, ``path_params``, ``route`` and FastAPI's
own route context); everything else (path parameters, a wrong method, a trailing slash, a
mounted ``root_path``, documentation pages) takes the framework's routing unchanged.

The table is built from the framework's own matcher: for each route without parameters it asks
the router which route a request with that method and path would reach, and keeps the entry only
when it is that route (a parameterised route declared earlier and matching the same path keeps
the request, as before). It is built on the first request, from the routes there are then: a
route added later comes after them in the framework's order too, so it cannot take a path of
the table from them, and it is routed by the framework. Should the framework's internals
not be the ones this module knows, the table stays empty and every request is routed normally.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from fastapi import routing as fastapi_routing
from fastapi.routing import APIRoute, APIRouter
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

#: FastAPI's per-request scope key and the two entries its routing leaves in it.
_FASTAPI_KEY: Final = "fastapi"
_INCLUDED_KEY: Final = "included_router"
_CONTEXT_KEY: Final = "effective_route_context"
_FORM_LIMITS_KEY: Final = "form_limits"
#: FastAPI's class for an included router: without it (another FastAPI), the table stays empty.
included_router_name = "_IncludedRouter"

Dispatch = Callable[[Scope, Receive, Send], Awaitable[None]]


class RouteTable:
    """The application router's entry point with exact ``(method, path)`` routes in a dict."""

    def __init__(self, router: APIRouter, fallback: ASGIApp) -> None:
        self.router = router
        self.fallback = fallback
        self._table: dict[tuple[str, str], Dispatch] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            table = self._table if self._table is not None else self.build()
            dispatch = table.get((scope["method"], scope["path"]))
            if dispatch is not None:
                await dispatch(scope, receive, send)
                return
        await self.fallback(scope, receive, send)

    def build(self) -> dict[tuple[str, str], Dispatch]:
        """The table of the routes there are now (built on the first request by itself)."""
        self._table = build_table(self.router)
        return self._table

    def paths(self) -> set[tuple[str, str]]:
        """The ``(method, path)`` pairs the table answers."""
        return set(self._table if self._table is not None else self.build())


def install(router: APIRouter) -> RouteTable:
    """Put a route table in front of ``router``'s own routing and return it."""
    table = RouteTable(router, router.middleware_stack)
    router.middleware_stack = table
    return table


def build_table(router: APIRouter) -> dict[tuple[str, str], Dispatch]:
    """Every ``(method, path)`` whose route has no path parameters and is the route the
    framework itself would pick for it; empty when the framework is not the one expected."""
    try:
        return _build(router)
    except (AttributeError, TypeError, KeyError):  # another FastAPI: route normally
        return {}


def _build(router: APIRouter) -> dict[tuple[str, str], Dispatch]:
    included_type: Any = getattr(fastapi_routing, included_router_name)
    table: dict[tuple[str, str], Dispatch] = {}
    for method, path in _exact_candidates(router, included_type):
        dispatch = _resolve(router, included_type, method, path)
        if dispatch is not None:
            table[(method, path)] = dispatch
    return table


def _exact_candidates(router: APIRouter, included_type: Any) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for route in router.routes:
        if isinstance(route, APIRoute):
            contexts: list[Any] = [route]
        elif isinstance(route, included_type):
            contexts = list(route.effective_route_contexts())
        else:
            continue
        for context in contexts:
            if not isinstance(context, APIRoute) and not isinstance(
                getattr(context, "original_route", None), APIRoute
            ):
                continue
            if context.param_convertors:
                continue
            found.extend((method, context.path_format) for method in context.methods or ())
    return found


def _probe(method: str, path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }


def _resolve(router: APIRouter, included_type: Any, method: str, path: str) -> Dispatch | None:
    """How the framework would dispatch ``method path``, as one call, or None when the route
    it reaches is not a plain FastAPI route without parameters."""
    scope = _probe(method, path)
    for route in router.routes:
        match, child_scope = route.matches(scope)
        if match == Match.NONE:
            continue
        if match != Match.FULL:
            continue  # a wrong method here: the framework keeps looking for a full match
        if isinstance(route, APIRoute):
            if child_scope.get("path_params"):
                return None
            return _direct(router, route)
        if isinstance(route, included_type):
            return _included(router, included_type, route, scope)
        return None  # a Starlette route or a mount answers it: leave it to the framework
    return None


def _included(router: APIRouter, included_type: Any, branch: Any, scope: Scope) -> Dispatch | None:
    branches = [branch]
    while True:
        match, child_scope, route, context = branches[-1]._match(scope)
        if match != Match.FULL:
            return None
        if isinstance(route, included_type):
            branches.append(route)
            continue
        if context is None or not isinstance(route, APIRoute) or child_scope.get("path_params"):
            return None
        if context.methods and scope["method"] not in context.methods:
            return None
        return _through_branches(router, branches, route, context)


def _direct(router: APIRouter, route: APIRoute) -> Dispatch:
    endpoint = route.endpoint
    app_limits = router.form_limits

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        _apply_form_limits(scope, app_limits)
        if "router" not in scope:
            scope["router"] = router
        scope["endpoint"] = endpoint
        scope["path_params"] = dict(scope.get("path_params", {}))
        scope["route"] = route
        await route.handle(scope, receive, send)

    return dispatch


def _through_branches(
    router: APIRouter, branches: list[Any], route: APIRoute, context: Any
) -> Dispatch:
    """Dispatch as FastAPI's router walk ends for a route of an included router: each
    inclusion's form limits, the innermost inclusion and the route's context in the scope, then
    the route context's app (the one FastAPI built for this inclusion)."""
    app_limits = router.form_limits
    limits = [b.include_context.form_limits for b in branches]
    innermost = branches[-1]
    endpoint = context.endpoint
    app: ASGIApp = context.app
    if app is None:
        raise TypeError("the route context has no app")

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        _apply_form_limits(scope, app_limits)
        if "router" not in scope:
            scope["router"] = router
        for branch_limits in limits:
            _apply_form_limits(scope, branch_limits)
        fastapi_scope = scope.setdefault(_FASTAPI_KEY, {})
        fastapi_scope[_INCLUDED_KEY] = innermost
        scope["endpoint"] = endpoint
        scope["path_params"] = dict(scope.get("path_params", {}))
        fastapi_scope[_CONTEXT_KEY] = context
        scope["route"] = route
        await app(scope, receive, send)

    return dispatch


def _apply_form_limits(scope: Scope, limits: Mapping[str, Any]) -> None:
    """FastAPI's form limits of a router level, merged over the ones already in the scope."""
    if limits:
        fastapi_scope = scope.setdefault(_FASTAPI_KEY, {})
        inherited = fastapi_scope.get(_FORM_LIMITS_KEY, {})
        fastapi_scope[_FORM_LIMITS_KEY] = {**inherited, **limits}
