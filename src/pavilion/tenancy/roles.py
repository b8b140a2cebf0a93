"""Roles and what each may do: a pure table the HTTP layer and the CLI both consult."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    PLATFORM_ADMIN = "platform-admin"
    TENANT_ADMIN = "tenant-admin"
    DP_ADMIN = "dp-admin"
    BROKER = "broker"
    COMPLIANCE = "compliance"
    AUDITOR = "auditor"


class Permission(StrEnum):
    TENANTS_MANAGE = "tenants:manage"
    TOKENS_MANAGE = "tokens:manage"
    PROVIDERS_READ = "providers:read"
    PROVIDERS_WRITE = "providers:write"
    VERIFICATIONS_CREATE = "verifications:create"
    VERIFICATIONS_READ = "verifications:read"
    AUDIT_READ = "audit:read"


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.PLATFORM_ADMIN: frozenset({Permission.TENANTS_MANAGE, Permission.TOKENS_MANAGE}),
    Role.TENANT_ADMIN: frozenset(
        {
            Permission.TOKENS_MANAGE,
            Permission.PROVIDERS_READ,
            Permission.PROVIDERS_WRITE,
            Permission.VERIFICATIONS_READ,
            Permission.AUDIT_READ,
        }
    ),
    Role.DP_ADMIN: frozenset({Permission.PROVIDERS_READ, Permission.PROVIDERS_WRITE}),
    Role.BROKER: frozenset(
        {
            Permission.PROVIDERS_READ,
            Permission.VERIFICATIONS_CREATE,
            Permission.VERIFICATIONS_READ,
        }
    ),
    Role.COMPLIANCE: frozenset({Permission.VERIFICATIONS_READ, Permission.AUDIT_READ}),
    Role.AUDITOR: frozenset({Permission.AUDIT_READ}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in _GRANTS[role]
