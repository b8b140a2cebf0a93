"""Every table of every domain, imported in one place so migrations see the whole schema."""

import pavilion.credentials.anoncreds.models  # AnonCreds tables (issue 3)
import pavilion.credentials.issuer_models  # trust chains, defaults, issuances (issue 3)
import pavilion.credentials.status.models  # status lists (issue 3, revocation)
import pavilion.ingest.models  # data pipeline tables (issue 6)
import pavilion.privacy.models  # noqa: F401  privacy engine tables (issue 5)
from pavilion.audit.models import AuditCheckpoint, AuditHead, AuditLeaf
from pavilion.connect.models import ResidencyAdequacy
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
    "ResidencyAdequacy",
    "Tenant",
    "Verification",
]
