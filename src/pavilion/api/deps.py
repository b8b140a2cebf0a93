"""Request dependencies: the runtime, and who the caller is and may be."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request

from pavilion.errors import AuthenticationFailed, PermissionDenied
from pavilion.runtime import Runtime
from pavilion.tenancy.roles import Permission, allows
from pavilion.tenancy.service import Principal


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_principal(
    rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    if not authorization:
        raise AuthenticationFailed("send an API token as 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("the Authorization header must be 'Bearer <token>'")
    return await rt.tenancy.authenticate(token.strip())


def require(permission: Permission) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets the request through only with a role that has the permission."""

    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not allows(principal.role, permission):
            raise PermissionDenied(
                f"role {principal.role.value} may not {permission.value.replace(':', ' ')}"
            )
        return principal

    return check


def require_tenant_access(principal: Principal, tenant_id: str) -> None:
    """Tenant admins act on their own tenant only; platform admins on any."""
    if not principal.is_platform and principal.tenant_id != tenant_id:
        raise PermissionDenied("this token belongs to another tenant")
