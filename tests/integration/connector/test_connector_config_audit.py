"""Configuration is audited and tenants stay apart (issue 14, item 8): residency adequacy,
credential defaults, privacy budgets and provider registration and deletion are leaves of the
tenant's audit log (written in the change's own transaction, naming no person), and another
tenant's provider is a 404 on the AnonCreds registries as on every other endpoint."""

from __future__ import annotations

from typing import Any

from connector_support import AGENT_KEY, Api
from pavilion.tenancy.roles import Role


async def _events(api: Api) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/audit/leaves?limit=1000", headers=api.auth("auditor"))
    assert response.status_code == 200
    return [leaf["event"] for leaf in response.json()["items"]]


async def test_configuration_changes_are_audit_leaves(api: Api) -> None:
    admin = api.auth("tenant-admin")
    provider = await api.register_provider()
    adequacy = await api.client.put(
        "/v1/residency/adequacy/EU", json={"jurisdictions": ["UK", "CH"]}, headers=admin
    )
    assert adequacy.status_code == 200
    default = await api.client.put(
        "/v1/credentials/defaults/student_status", json={"format": "sd_jwt_vc"}, headers=admin
    )
    assert default.status_code == 200
    budget = await api.client.put(
        "/v1/privacy/budgets/verifications",
        json={"epsilon": 5, "period": "month"},
        headers=admin,
    )
    assert budget.status_code == 200, budget.text
    deleted = await api.client.delete(
        f"/v1/providers/{provider['id']}", headers=api.auth("dp-admin")
    )
    assert deleted.status_code == 204
    events = {e["kind"]: e for e in await _events(api)}
    assert events["provider_registered"]["provider_id"] == provider["id"]
    assert events["provider_registered"]["claim_types"] == sorted(provider["claim_types"])
    assert events["provider_registered"]["auth"] == "api_key"
    assert events["residency_adequacy_set"]["residency"] == "EU"
    assert events["residency_adequacy_set"]["jurisdictions"] == ["CH", "UK"]
    assert events["credential_default_set"]["claim_type"] == "student_status"
    assert events["credential_default_set"]["format"] == "sd_jwt_vc"
    assert events["privacy_budget_set"]["dataset"] == "verifications"
    assert events["privacy_budget_set"]["epsilon"] == 5
    assert events["provider_deleted"]["provider_id"] == provider["id"]
    text = repr(events)
    assert AGENT_KEY not in text  # the DP's secret is sealed, never audited
    assert "Test University" not in text


async def test_a_failed_change_leaves_no_leaf(api: Api) -> None:
    before = len(await _events(api))
    refused = await api.client.put(
        "/v1/credentials/defaults/student_status",
        json={"format": "sd_jwt_vc", "template": "nope@9"},
        headers=api.auth("tenant-admin"),
    )
    assert refused.status_code >= 400
    assert len(await _events(api)) == before


async def test_another_tenants_provider_has_no_registries_here(api: Api) -> None:
    other = await api.rt.tenancy.create_tenant("tenant-b")
    theirs = await api.rt.providers.register(other.id, _spec(api))
    response = await api.client.get(
        f"/v1/anoncreds/providers/{theirs.id}/registries", headers=api.auth("broker")
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    mine = await api.register_provider()
    assert (
        await api.client.get(
            f"/v1/anoncreds/providers/{mine['id']}/registries", headers=api.auth("broker")
        )
    ).json() == {"items": []}
    assert Role.BROKER.value in api.tokens


def _spec(api: Api) -> Any:
    from connector_support import provider_body
    from pavilion.providers.schemas import ProviderIn

    return ProviderIn.model_validate(provider_body())
