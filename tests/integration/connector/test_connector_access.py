"""Roles, tenants and tokens: every endpoint checks both."""

from __future__ import annotations

import pytest

from connector_support import Api, provider_body
from pavilion.tenancy.roles import Role


async def test_requests_without_a_valid_token_are_401(api: Api) -> None:
    for headers in (
        {},
        {"authorization": "Basic abc"},
        {"authorization": "Bearer "},
        {"authorization": "Bearer not-a-pavilion-token"},
        {"authorization": "Bearer pav_" + "0" * 32 + "_guess"},
    ):
        response = await api.client.get("/v1/providers", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("role", "method", "path", "allowed"),
    [
        ("broker", "POST", "/v1/providers", False),
        ("auditor", "GET", "/v1/providers", False),
        ("dp-admin", "POST", "/v1/providers", True),
        ("dp-admin", "GET", "/v1/audit/checkpoint", False),
        ("auditor", "GET", "/v1/audit/checkpoint", True),
        ("compliance", "GET", "/v1/audit/checkpoint", True),
        ("dp-admin", "POST", "/v1/verifications", False),
        ("auditor", "POST", "/v1/verifications", False),
        ("tenant-admin", "GET", "/v1/tenants", False),
        ("platform-admin", "GET", "/v1/tenants", True),
        ("platform-admin", "GET", "/v1/providers", False),
    ],
)
async def test_roles_gate_every_endpoint(
    api: Api, role: str, method: str, path: str, allowed: bool
) -> None:
    body = provider_body() if path == "/v1/providers" and method == "POST" else None
    if path == "/v1/verifications":
        body = {
            "claim": {"type": "student_status"},
            "subject": {"identifiers": {"student_id": "S1"}, "residency": "EU"},
            "purpose": "x",
        }
    response = await api.client.request(method, path, json=body, headers=api.auth(role))
    if allowed:
        assert response.status_code < 400, response.text
    else:
        assert response.status_code == 403
        assert role in response.json()["detail"]


async def test_tenants_never_see_each_other(api: Api) -> None:
    provider = await api.register_provider()
    other = await api.rt.tenancy.create_tenant("tenant-b")
    other_admin = await api.rt.tenancy.create_token(other.id, "b", Role.DP_ADMIN)
    headers = {"authorization": f"Bearer {other_admin.secret}"}
    assert (
        await api.client.get(f"/v1/providers/{provider['id']}", headers=headers)
    ).status_code == 404
    listed = await api.client.get("/v1/providers", headers=headers)
    assert listed.json() == {"items": [], "next": None}
    deleted = await api.client.delete(f"/v1/providers/{provider['id']}", headers=headers)
    assert deleted.status_code == 404
    # Tenant B may register a provider with the same name: names are per tenant.
    same = await api.client.post("/v1/providers", json=provider_body(), headers=headers)
    assert same.status_code == 201


async def test_platform_admin_manages_tenants_and_tokens(api: Api) -> None:
    created = await api.client.post(
        "/v1/tenants", json={"name": "club-c"}, headers=api.auth("platform-admin")
    )
    assert created.status_code == 201
    tenant_id = created.json()["id"]
    dup = await api.client.post(
        "/v1/tenants", json={"name": "club-c"}, headers=api.auth("platform-admin")
    )
    assert dup.status_code == 409
    token = await api.client.post(
        f"/v1/tenants/{tenant_id}/tokens",
        json={"name": "ops", "role": "tenant-admin"},
        headers=api.auth("platform-admin"),
    )
    assert token.status_code == 201
    secret = token.json()["token"]
    assert secret.startswith("pav_")
    own = await api.client.get("/v1/providers", headers={"authorization": f"Bearer {secret}"})
    assert own.status_code == 200
    # The secret is stored hashed: nowhere in the token table.
    async with api.rt.db.transaction(tenant_id) as session:
        from sqlalchemy import select

        from pavilion.tenancy.models import ApiToken

        hashes = (await session.execute(select(ApiToken.token_hash))).scalars().all()
    assert secret not in hashes
    page = await api.client.get(
        "/v1/tenants", params={"limit": 2}, headers=api.auth("platform-admin")
    )
    assert len(page.json()["items"]) == 2
    assert page.json()["next"] is not None
    rest = await api.client.get(
        "/v1/tenants",
        params={"limit": 50, "after": page.json()["next"]},
        headers=api.auth("platform-admin"),
    )
    names = {t["name"] for t in page.json()["items"] + rest.json()["items"]}
    assert {"platform", "tenant-a", "club-c"} <= names


async def test_tenant_admin_issues_tokens_only_for_its_tenant(api: Api) -> None:
    other = await api.rt.tenancy.create_tenant("tenant-b")
    own = await api.client.post(
        f"/v1/tenants/{api.tenant_id}/tokens",
        json={"name": "broker-2", "role": "broker"},
        headers=api.auth("tenant-admin"),
    )
    assert own.status_code == 201
    foreign = await api.client.post(
        f"/v1/tenants/{other.id}/tokens",
        json={"name": "sneaky", "role": "tenant-admin"},
        headers=api.auth("tenant-admin"),
    )
    assert foreign.status_code == 403
    escalate = await api.client.post(
        f"/v1/tenants/{api.tenant_id}/tokens",
        json={"name": "sneaky", "role": "platform-admin"},
        headers=api.auth("tenant-admin"),
    )
    assert escalate.status_code == 422


async def test_revoked_token_stops_working(api: Api) -> None:
    issued = await api.client.post(
        f"/v1/tenants/{api.tenant_id}/tokens",
        json={"name": "temp", "role": "dp-admin"},
        headers=api.auth("tenant-admin"),
    )
    headers = {"authorization": f"Bearer {issued.json()['token']}"}
    assert (await api.client.get("/v1/providers", headers=headers)).status_code == 200
    revoked = await api.client.delete(
        f"/v1/tenants/{api.tenant_id}/tokens/{issued.json()['id']}",
        headers=api.auth("tenant-admin"),
    )
    assert revoked.status_code == 204
    assert (await api.client.get("/v1/providers", headers=headers)).status_code == 401
    again = await api.client.delete(
        f"/v1/tenants/{api.tenant_id}/tokens/{issued.json()['id']}x",
        headers=api.auth("tenant-admin"),
    )
    assert again.status_code == 404


async def test_provider_crud_hides_secrets(api: Api) -> None:
    created = await api.register_provider()
    assert created["auth"] == {"type": "api_key"}
    read = await api.client.get(f"/v1/providers/{created['id']}", headers=api.auth("broker"))
    assert read.json()["endpoints"][0]["jurisdiction"] == "EU"
    assert "api_key" not in read.text.replace('"type":"api_key"', "")
    await api.register_provider(name="Second", auth={"type": "none"})
    page = await api.client.get("/v1/providers", params={"limit": 1}, headers=api.auth("broker"))
    assert len(page.json()["items"]) == 1
    rest = await api.client.get(
        "/v1/providers", params={"after": page.json()["next"]}, headers=api.auth("broker")
    )
    assert len(rest.json()["items"]) == 1
    gone = await api.client.delete(f"/v1/providers/{created['id']}", headers=api.auth("dp-admin"))
    assert gone.status_code == 204
    missing = await api.client.get(f"/v1/providers/{created['id']}", headers=api.auth("broker"))
    assert missing.status_code == 404


async def test_health_readiness_metrics_jwks(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "keystore": "ok"}}
    metrics = await api.client.get("/metrics", headers=api.auth("platform-admin"))
    assert "pavilion_http_request_duration_seconds" in metrics.text
    jwks = (await api.client.get("/.well-known/jwks.json")).json()
    assert jwks["keys"][0]["kty"] == "EC"
    assert "d" not in jwks["keys"][0]
    openapi = (await api.client.get("/openapi.json")).json()
    assert "/v1/verifications" in openapi["paths"]


async def test_readyz_reports_a_failing_database(api: Api) -> None:
    async def broken() -> None:
        raise OSError("down")

    api.rt.db.ping = broken  # type: ignore[method-assign]
    ready = await api.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "failing: OSError"


async def test_a_refusal_says_which_role_may_not_do_what_and_the_permission_it_needs(
    api: Api,
) -> None:
    body = {
        "claim": {"type": "student_status"},
        "subject": {"identifiers": {"student_id": "S1"}, "residency": "EU"},
        "purpose": "x",
    }
    response = await api.client.post("/v1/verifications", json=body, headers=api.auth("dp-admin"))
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "the dp-admin role may not create verifications (needs verifications:create)"
    )


def test_every_permission_reads_as_words() -> None:
    from pavilion.tenancy.roles import Permission, refusal

    for permission in Permission:
        text = refusal(Role.AUDITOR, permission)
        assert text.startswith("the auditor role may not ")
        assert f"(needs {permission.value})" in text
        assert ":" not in text.split(" (needs")[0]
    assert refusal(Role.BROKER, Permission.CREDENTIALS_STATUS) == (
        "the broker role may not revoke, suspend or reinstate credentials "
        "(needs credentials:status)"
    )
