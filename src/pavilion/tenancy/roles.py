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
    RESIDENCY_MANAGE = "residency:manage"
    KEYS_MANAGE = "keys:manage"
    CREDENTIALS_STATUS = "credentials:status"
    CREDENTIALS_ISSUE = "credentials:issue"
    CREDENTIALS_VERIFY = "credentials:verify"
    CREDENTIALS_MANAGE = "credentials:manage"
    PRIVACY_TAG_SETS = "privacy:tag-sets"
    PRIVACY_PSI = "privacy:psi"
    PRIVACY_ZKP = "privacy:zkp"
    PRIVACY_ANALYTICS = "privacy:analytics"
    PRIVACY_BUDGETS = "privacy:budgets"
    ANONCREDS_ISSUE = "anoncreds:issue"
    ROSTERS_UPLOAD = "rosters:upload"
    ROSTERS_READ = "rosters:read"
    LINEAGE_READ = "lineage:read"


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.PLATFORM_ADMIN: frozenset({Permission.TENANTS_MANAGE, Permission.TOKENS_MANAGE}),
    Role.TENANT_ADMIN: frozenset(
        {
            Permission.TOKENS_MANAGE,
            Permission.PROVIDERS_READ,
            Permission.PROVIDERS_WRITE,
            Permission.VERIFICATIONS_READ,
            Permission.AUDIT_READ,
            Permission.RESIDENCY_MANAGE,
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
    Role.COMPLIANCE: frozenset(
        {Permission.VERIFICATIONS_READ, Permission.AUDIT_READ, Permission.RESIDENCY_MANAGE}
    ),
    Role.AUDITOR: frozenset({Permission.AUDIT_READ}),
}

# Platform keys are managed by platform admins; a tenant's admin and compliance officer may
# revoke, suspend and reinstate the tenant's credentials.
_GRANTS[Role.PLATFORM_ADMIN] |= {Permission.KEYS_MANAGE}
_GRANTS[Role.TENANT_ADMIN] |= {Permission.CREDENTIALS_STATUS}
_GRANTS[Role.COMPLIANCE] |= {Permission.CREDENTIALS_STATUS}
# The tenant admin issues through the VC-API and manages trust chains and template defaults;
# every tenant role that reads verifications (and the auditor) may verify credentials.
_GRANTS[Role.TENANT_ADMIN] |= {
    Permission.CREDENTIALS_ISSUE,
    Permission.CREDENTIALS_VERIFY,
    Permission.CREDENTIALS_MANAGE,
}
for _role in (Role.BROKER, Role.COMPLIANCE, Role.AUDITOR):
    _GRANTS[_role] |= {Permission.CREDENTIALS_VERIFY}

# Privacy engine: DPs push tag sets; brokers run PSI, ZK presentations and AnonCreds issuance;
# tenant admins set privacy budgets; they and compliance officers make differentially private
# releases.
_GRANTS[Role.DP_ADMIN] |= {Permission.PRIVACY_TAG_SETS}
_GRANTS[Role.TENANT_ADMIN] |= {
    Permission.PRIVACY_TAG_SETS,
    Permission.PRIVACY_ANALYTICS,
    Permission.PRIVACY_BUDGETS,
    Permission.ANONCREDS_ISSUE,
}
_GRANTS[Role.BROKER] |= {Permission.PRIVACY_PSI, Permission.PRIVACY_ZKP, Permission.ANONCREDS_ISSUE}
_GRANTS[Role.COMPLIANCE] |= {Permission.PRIVACY_ANALYTICS}

# Data pipeline (issue 6): DP admins upload rosters; tenant admins and compliance officers read
# batches, quality and lineage; auditors read lineage.
_GRANTS[Role.DP_ADMIN] |= {Permission.ROSTERS_UPLOAD, Permission.ROSTERS_READ}
for _role in (Role.DP_ADMIN, Role.TENANT_ADMIN, Role.COMPLIANCE):
    _GRANTS[_role] |= {Permission.ROSTERS_READ, Permission.LINEAGE_READ}
_GRANTS[Role.AUDITOR] |= {Permission.LINEAGE_READ}


def allows(role: Role, permission: Permission) -> bool:
    return permission in _GRANTS[role]


#: What a permission lets a role do, in words, where "<verb> <resource>" would not read.
_PHRASES: dict[Permission, str] = {
    Permission.CREDENTIALS_STATUS: "revoke, suspend or reinstate credentials",
    Permission.PRIVACY_TAG_SETS: "push tag sets",
    Permission.PRIVACY_PSI: "run private set intersections",
    Permission.PRIVACY_ZKP: "make zero-knowledge presentations",
    Permission.PRIVACY_ANALYTICS: "make differentially private releases",
    Permission.PRIVACY_BUDGETS: "manage privacy budgets",
    Permission.ANONCREDS_ISSUE: "issue AnonCreds credentials",
}


def refusal(role: Role, permission: Permission) -> str:
    """Why a request was refused, in words: "the tenant-admin role may not create
    verifications (needs verifications:create)"."""
    resource, _, action = permission.value.partition(":")
    doing = _PHRASES.get(permission, f"{action} {resource}")
    return f"the {role.value} role may not {doing} (needs {permission.value})"
