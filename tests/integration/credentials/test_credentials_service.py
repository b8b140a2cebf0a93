"""CredentialService against the real databases: trust-chain rules, defaults, caches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from connector_support import provider_body
from pavilion.credentials.issuing import parse_as_of
from pavilion.credentials.keys import WrappedIssuerKeys
from pavilion.credentials.service import CredentialService
from pavilion.credentials.templates import CredentialFormat, resolve
from pavilion.errors import Conflict, InvalidRequest, NotFound
from pavilion.providers.schemas import ProviderIn
from pavilion.runtime import Runtime

STUDENT_VC = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://pavilion.example/contexts/eligibility/v1",
    ],
    "type": ["VerifiableCredential", "StudentStatusCredential"],
    "credentialSubject": {"studentStatus": {"current": True}},
}


async def _tenant_and_provider(rt: Runtime) -> tuple[str, str]:
    tenant = await rt.tenancy.create_tenant("tenant-s")
    provider = await rt.providers.register(tenant.id, ProviderIn.model_validate(provider_body()))
    return tenant.id, provider.id


def _service(rt: Runtime, now: datetime) -> CredentialService:
    return CredentialService(
        rt.db,
        rt.keystore,
        rt.audit,
        WrappedIssuerKeys(rt.keystore),
        rt.journal,
        issuer_id=rt.settings.issuer_id,
        clock=lambda: now,
    )


async def test_trust_chain_rules_are_enforced(runtime: Runtime) -> None:
    tenant_id, provider_id = await _tenant_and_provider(runtime)
    credentials = runtime.credentials
    assert credentials.issuer_id == runtime.settings.issuer_id
    with pytest.raises(NotFound):
        await credentials.root(tenant_id)
    with pytest.raises(Conflict, match="issuer root first"):
        await credentials.certify_provider(tenant_id, provider_id)
    with pytest.raises(InvalidRequest) as raised:
        await credentials.create_root(tenant_id, valid_days=0)
    assert raised.value.field == "valid_days"
    # Two concurrent creations: exactly one root.
    results = await asyncio.gather(
        credentials.create_root(tenant_id),
        credentials.create_root(tenant_id),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Conflict) for r in results) == 1
    root = await credentials.root(tenant_id)
    assert root.to_json()["not_after"].endswith("Z")

    with pytest.raises(NotFound):
        await credentials.certify_provider(tenant_id, "00000000-0000-0000-0000-000000000000")
    with pytest.raises(InvalidRequest):
        await credentials.certify_provider(tenant_id, provider_id, valid_days=5000)
    with pytest.raises(InvalidRequest):
        await credentials.certify_provider(tenant_id, provider_id, claim_types=[])
    with pytest.raises(NotFound):
        await credentials.provider_trust(tenant_id, provider_id)

    # Concurrent certifications: each succeeds or is refused; one key stays active.
    raced = await asyncio.gather(
        credentials.certify_provider(tenant_id, provider_id),
        credentials.certify_provider(tenant_id, provider_id),
        return_exceptions=True,
    )
    assert all(not isinstance(r, BaseException) or isinstance(r, Conflict) for r in raced)
    winners = {r.key_id for r in raced if not isinstance(r, BaseException)}
    assert (await credentials.provider_trust(tenant_id, provider_id)).key_id in winners

    first = await credentials.certify_provider(tenant_id, provider_id, claim_types=["age_over"])
    second = await credentials.certify_provider(tenant_id, provider_id)
    assert first.key_id != second.key_id
    current = await credentials.provider_trust(tenant_id, provider_id)
    assert current.key_id == second.key_id  # re-certifying retires the old key
    assert await credentials.accreditation_for_key(tenant_id, first.key_id) is None
    assert await credentials.accreditation_for_key(tenant_id, second.key_id) == second.accreditation

    # Ten years on, the root has expired: no new certificate from it.
    later = _service(runtime, datetime.now(UTC) + timedelta(days=3700))
    with pytest.raises(Conflict, match="expired"):
        await later.certify_provider(tenant_id, provider_id)


async def test_other_tenants_see_nothing(runtime: Runtime) -> None:
    tenant_id, provider_id = await _tenant_and_provider(runtime)
    other = await runtime.tenancy.create_tenant("tenant-other")
    await runtime.credentials.create_root(tenant_id)
    trust = await runtime.credentials.certify_provider(tenant_id, provider_id)
    assert await runtime.credentials.anchors(other.id) == []
    assert await runtime.credentials.accreditation_for_key(other.id, trust.key_id) is None
    with pytest.raises(NotFound):
        await runtime.credentials.certify_provider(other.id, provider_id)


async def test_defaults_are_set_updated_and_chosen(runtime: Runtime) -> None:
    tenant = await runtime.tenancy.create_tenant("tenant-d")
    credentials = runtime.credentials
    assert await credentials.choose(tenant.id, "age_over", None, None) == (
        CredentialFormat.JWT_VC,
        resolve("age_over"),
    )
    await credentials.set_default(
        tenant.id, "age_over", template_id=None, fmt=CredentialFormat.VC2_JOSE
    )
    await credentials.set_default(
        tenant.id, "age_over", template_id="age_over@1", fmt=CredentialFormat.SD_JWT_VC
    )
    assert (await credentials.defaults(tenant.id))["age_over"] == (
        "age_over@1",
        CredentialFormat.SD_JWT_VC,
    )
    fmt, template = await credentials.choose(tenant.id, "age_over", None, None)
    assert (fmt, template.id) == (CredentialFormat.SD_JWT_VC, "age_over@1")
    fmt, _ = await credentials.choose(tenant.id, "age_over", "jwt_vc", None)
    assert fmt is CredentialFormat.JWT_VC
    with pytest.raises(InvalidRequest):
        await credentials.set_default(
            tenant.id, "age_over", template_id="student_status@1", fmt=CredentialFormat.JWT_VC
        )


async def test_vc_api_issue_with_a_provider_key_needs_an_accreditation(runtime: Runtime) -> None:
    tenant_id, provider_id = await _tenant_and_provider(runtime)
    with pytest.raises(InvalidRequest) as raised:
        await runtime.credentials.issue_vc_api(tenant_id, STUDENT_VC, provider_id=provider_id)
    assert raised.value.field == "options.providerId"
    await runtime.credentials.create_root(tenant_id)
    await runtime.credentials.certify_provider(tenant_id, provider_id, claim_types=["age_over"])
    with pytest.raises(InvalidRequest):
        await runtime.credentials.issue_vc_api(tenant_id, STUDENT_VC, provider_id=provider_id)
    issued = await runtime.credentials.issue_vc_api(
        tenant_id,
        {**STUDENT_VC, "id": "https://university.example/credentials/42"},
        credential_id="ignored-when-the-credential-has-an-id",
    )
    report = await runtime.credentials.verify(tenant_id, issued.token)
    assert report.verified, report.to_json()
    assert report.claims is not None
    assert report.claims["id"] == "https://university.example/credentials/42"


def test_as_of_parsing_is_forgiving_and_utc() -> None:
    assert parse_as_of(None) is None
    assert parse_as_of("last tuesday") is None
    assert parse_as_of("2026-01-01T00:00:00") == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_as_of("2026-01-01T00:00:00+01:00") == datetime(2025, 12, 31, 23, tzinfo=UTC)
