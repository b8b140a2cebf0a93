"""Every table of every domain, imported in one place so migrations see the whole schema."""

from pavilion.audit.models import AuditCheckpoint, AuditHead, AuditLeaf
from pavilion.credentials.models import IssuedCredential
from pavilion.providers.models import Provider, ProviderEndpoint
from pavilion.store.base import Base
from pavilion.store.idempotency import IdempotencyRecord
from pavilion.tenancy.models import ApiToken, Tenant
from pavilion.verification.models import Verification

__all__ = [
    "ApiToken",
    "AuditCheckpoint",
    "AuditHead",
    "AuditLeaf",
    "Base",
    "IdempotencyRecord",
    "IssuedCredential",
    "Provider",
    "ProviderEndpoint",
    "Tenant",
    "Verification",
]
