"""Request dependencies: the runtime, and who the caller is and may be.

Every dependency is a coroutine function: FastAPI runs a plain function in its thread pool,
a hand-off to another thread and back on every request that uses it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request

from pavilion.errors import AuthenticationFailed, PermissionDenied
from pavilion.runtime import Runtime
from pavilion.tenancy.oidc import looks_like_jwt
from pavilion.tenancy.roles import Permission, allows, refusal
from pavilion.tenancy.service import Principal


async def get_runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a thread
    # hop per request (about 0.1 ms of CPU) for a dictionary lookup.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_principal(
    request: Request, rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """The caller: from a bearer token (an API token, or an access token of an OIDC provider
    the tenant trusts) or a mapped client certificate. With both, they must agree on the
    tenant: a token does not carry a certificate's holder into another tenant."""
    by_certificate = _certificate_principal(request, rt)
    if not authorization:
        if by_certificate is not None:
            return by_certificate
        raise AuthenticationFailed("send an API token as 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed("the Authorization header must be 'Bearer <token>'")
    if rt.oidc and looks_like_jwt(token):
        principal = await rt.oidc.authenticate(token)
    else:
        principal = await rt.tenancy.authenticate(token)
    if by_certificate is not None and by_certificate.tenant_id != principal.tenant_id:
        raise PermissionDenied("the token and the client certificate belong to different tenants")
    return principal


def _certificate_principal(request: Request, rt: Runtime) -> Principal | None:
    """Who the verified client certificate of this TLS connection is, if it is mapped."""
    if not rt.certificates:
        return None
    tls = request.scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    return rt.certificates.principal(chain[0]) if chain else None


def require(permission: Permission) -> Callable[[Request, str | None], Awaitable[Principal]]:
    """A dependency that lets the request through only with a role that has the permission."""

    async def check(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Principal:
        # One dependency, not three nested ones (this, the caller, the runtime): FastAPI
        # solves each dependency level on every request.
        rt: Runtime = request.app.state.runtime
        principal = await get_principal(request, rt, authorization)
        if not allows(principal.role, permission):
            raise PermissionDenied(refusal(principal.role, permission))
        return principal

    return check


def require_tenant_access(principal: Principal, tenant_id: str) -> None:
    """Tenant admins act on their own tenant only; platform admins on any."""
    if not principal.is_platform and principal.tenant_id != tenant_id:
        raise PermissionDenied("this token belongs to another tenant")
