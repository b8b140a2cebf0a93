"""Real TLS on loopback: mTLS, OAuth2 and private_key_jwt registered through the API; TLS
versions; tenant adequacy; the health API and ``pavilion providers status``."""

from __future__ import annotations

import json
import secrets
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr
from sqlalchemy import text
from typer.testing import CliRunner

from connect_harness import connection_events, connector_api, endpoint_body
from connect_support import TlsMaterial, metric
from pavilion.cli.main import app as cli_app
from pavilion.config.settings import Settings
from pavilion.dpagent.app import create_agent_app
from pavilion.dpagent.config import AgentConfig
from pavilion.dpagent.records import RecordIndex
from pavilion.dpagent.security import AgentSecurity, BearerJwtConfig, ServerTlsConfig, serving
from pavilion.dpagent.token_server import TokenClient, TokenServerConfig, create_token_server_app
from pavilion.serving import BackgroundServer
from pavilion.synth.roster import ROSTER_RECORD_SCHEMA, StudentRecord

AS_OF = datetime(2026, 1, 1, tzinfo=UTC)


def _agent(students: list[StudentRecord], **config: Any) -> Any:
    return create_agent_app(AgentConfig(**config), RecordIndex(students, as_of=AS_OF))


def _server_tls(tls: TlsMaterial, name: str, client_ca: Path | None = None) -> ServerTlsConfig:
    cert, key = tls.server(name)
    return ServerTlsConfig(certificate=cert, private_key=key, client_ca=client_ca)


def _body(**changes: Any) -> dict[str, Any]:
    return {
        "name": "Secure University",
        "claim_types": ["student_status"],
        "record_schema": ROSTER_RECORD_SCHEMA,
    } | changes


async def test_mtls_provider_seals_its_key_connects_with_tls13_and_shows_health(
    any_connect_settings: Settings, tls: TlsMaterial, students: list[StudentRecord]
) -> None:
    certificate, private_key = tls.client()
    security = AgentSecurity(tls=_server_tls(tls, "mtls-agent", client_ca=tls.ca_file))
    with serving(_agent(students, security=security), tls=security.tls) as url:
        async with connector_api(any_connect_settings) as api:
            response = await api.client.post(
                "/v1/providers",
                json=_body(
                    endpoints=[endpoint_body("eu-west", "EU", url, weight=2.0)],
                    auth={"type": "mtls"},
                    tls={
                        "ca_certificates": tls.ca_pem,
                        "client_certificate": certificate,
                        "client_private_key": private_key,
                        "min_version": "1.3",
                    },
                ),
                headers=api.auth("dp-admin"),
            )
            assert response.status_code == 201, response.text
            provider = response.json()
            assert provider["auth"] == {"type": "mtls"}
            assert provider["endpoints"][0]["weight"] == 2.0
            assert "PRIVATE KEY" not in response.text
            verified = await api.verify(
                provider["id"], {"type": "student_status"}, {"student_id": students[0].student_id}
            )
            assert verified.status_code == 201
            assert verified.json()["region"] == "eu-west"
            async with api.rt.db.transaction(api.tenant_id) as session:
                row = (
                    await session.execute(
                        text("SELECT tls, sealed_secrets FROM providers WHERE id = :id"),
                        {"id": provider["id"]},
                    )
                ).one()
            stored_tls = row[0] if isinstance(row[0], dict) else json.loads(row[0])
            assert "client_private_key" not in stored_tls
            assert b"PRIVATE KEY" not in bytes(row[1])  # sealed with the tenant's data key
            events = await connection_events(api)
            established = [e for e in events if e["event"] == "tls_established"]
            assert established[0]["tls_version"] == "TLSv1.3"
            assert established[0]["auth_method"] == "mtls"
            assert established[0]["region"] == "eu-west"
            label = url.removeprefix("https://")
            assert (
                metric(
                    "pavilion_dp_connections_opened_total",
                    provider=provider["id"],
                    region="eu-west",
                    endpoint=label,
                    tls_version="TLSv1.3",
                    alpn="http/1.1",
                )
                >= 1
            )
            health = await api.client.get(
                f"/v1/providers/{provider['id']}/health", headers=api.auth("broker")
            )
            assert health.status_code == 200
            view = health.json()
            assert (view["node_region"], view["auth_method"]) == ("eu-west", "mtls")
            endpoint = view["endpoints"][0]
            assert endpoint["status"] == "healthy"
            assert endpoint["requests"] >= 1
            assert endpoint["ewma_ms"] is not None
            assert endpoint["tls"]["tls_version"] == "TLSv1.3"
            denied = await api.client.get(
                f"/v1/providers/{provider['id']}/health", headers=api.auth("auditor")
            )
            assert denied.status_code == 403


def _token_server(tls: TlsMaterial, secret_sha: str, public_pem: str) -> tuple[Any, dict[str, Any]]:
    key = ec.generate_private_key(ec.SECP256R1())
    config = TokenServerConfig(
        issuer="https://as.dp.example",
        audience="dp-agent",
        key_id="as-1",
        clients=(
            TokenClient(client_id="pavilion-basic", secret_sha256=secret_sha),
            TokenClient(client_id="pavilion-signed", public_key=public_pem),
        ),
    )
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return create_token_server_app(config, signing_key=key), {
        "keys": [jwk | {"kid": "as-1", "alg": "ES256"}]
    }


@pytest.mark.parametrize("method", ["oauth2_client_credentials", "private_key_jwt"])
async def test_oauth2_client_credentials_and_private_key_jwt_over_tls(
    sqlite_connect_settings: Settings,
    tls: TlsMaterial,
    students: list[StudentRecord],
    method: str,
) -> None:
    from pavilion.dpagent.token_server import secret_digest

    secret = "s-" + secrets.token_hex(16)
    client_key = ec.generate_private_key(ec.SECP256R1())
    public_pem = (
        client_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    as_app, jwks = _token_server(tls, secret_digest(secret), public_pem)
    agent_security = AgentSecurity(
        tls=_server_tls(tls, "oauth-agent"),
        oauth2=BearerJwtConfig(issuer="https://as.dp.example", audience="dp-agent", jwks=jwks),
    )
    auth: dict[str, Any] = {"type": method, "scope": "dp.lookup"}
    if method == "oauth2_client_credentials":
        auth |= {"client_id": "pavilion-basic", "client_secret": secret}
    else:
        auth |= {
            "client_id": "pavilion-signed",
            "key_id": "pavilion-1",
            "private_key": client_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
        }
    with (
        serving(as_app, tls=_server_tls(tls, "as")) as as_url,
        serving(_agent(students, security=agent_security), tls=agent_security.tls) as agent_url,
    ):
        async with connector_api(sqlite_connect_settings) as api:
            provider = await api.register_provider(
                **_body(
                    endpoints=[endpoint_body("eu-west", "EU", agent_url)],
                    auth=auth | {"token_url": as_url + "/oauth2/token"},
                    tls={"ca_certificates": tls.ca_pem},
                )
            )
            assert "private_key" not in provider["auth"]
            assert "client_secret" not in provider["auth"]
            for student in students[:3]:
                response = await api.verify(
                    provider["id"], {"type": "student_status"}, {"student_id": student.student_id}
                )
                assert response.status_code == 201
            assert as_app.state.issued == 1  # one token served all three lookups
            events = await connection_events(api)
            issued = [e for e in events if e["event"] == "auth_token_issued"]
            assert [e["method"] for e in issued] == [method]
            assert secret not in json.dumps(events)


@contextmanager
def _tls12_only_agent(tls: TlsMaterial, students: list[StudentRecord]) -> Iterator[str]:
    cert, key = tls.server("tls12")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    agent = _agent(students, insecure_no_auth=True)
    with BackgroundServer(agent, ssl_context=context, lifespan="off") as server:
        yield server.url


async def test_tls_12_is_the_floor_and_a_provider_may_demand_13(
    sqlite_connect_settings: Settings, tls: TlsMaterial, students: list[StudentRecord]
) -> None:
    with _tls12_only_agent(tls, students) as url:
        async with connector_api(sqlite_connect_settings) as api:
            lenient = await api.register_provider(
                **_body(
                    endpoints=[endpoint_body("eu-west", "EU", url)],
                    auth={"type": "none"},
                    tls={"ca_certificates": tls.ca_pem},
                )
            )
            strict = await api.register_provider(
                **_body(
                    name="Strict University",
                    endpoints=[endpoint_body("eu-west", "EU", url)],
                    auth={"type": "none"},
                    tls={"ca_certificates": tls.ca_pem, "min_version": "1.3"},
                )
            )
            ok = await api.verify(
                lenient["id"], {"type": "student_status"}, {"student_id": students[0].student_id}
            )
            assert ok.status_code == 201
            refused = await api.verify(
                strict["id"], {"type": "student_status"}, {"student_id": students[0].student_id}
            )
            assert refused.status_code == 503
            assert "TLS" in refused.json()["detail"]
            events = await connection_events(api)
            versions = {
                e["provider_id"]: e["tls_version"]
                for e in events
                if e["event"] == "tls_established"
            }
            assert versions == {lenient["id"]: "TLSv1.2"}
            errors = [
                e
                for e in events
                if e["event"].startswith("tls_") and e["event"] != "tls_established"
            ]
            assert {e["provider_id"] for e in errors} == {strict["id"]}


async def test_tenant_adequacy_lets_eu_residents_use_an_adequate_region(
    any_connect_settings: Settings, students: list[StudentRecord]
) -> None:
    with serving(_agent(students, api_key=SecretStr("k" * 20))) as url:
        async with connector_api(any_connect_settings) as api:
            provider = await api.register_provider(
                **_body(
                    endpoints=[endpoint_body("uk-south", "UK", url)],
                    auth={"type": "api_key", "api_key": "k" * 20},
                )
            )
            ask = {"student_id": students[5].student_id}
            denied = await api.verify(provider["id"], {"type": "student_status"}, ask)
            assert denied.status_code == 403
            assert denied.json()["reason"] == "residency"
            forbidden = await api.client.put(
                "/v1/residency/adequacy/EU",
                json={"jurisdictions": ["UK"]},
                headers=api.auth("broker"),
            )
            assert forbidden.status_code == 403
            bad = await api.client.put(
                "/v1/residency/adequacy/EU",
                json={"jurisdictions": ["united kingdom"]},
                headers=api.auth("tenant-admin"),
            )
            assert bad.status_code == 422
            assert bad.json()["errors"][0]["field"] == "jurisdictions.0"
            put = await api.client.put(
                "/v1/residency/adequacy/EU",
                json={"jurisdictions": ["UK", "CH", "UK"]},
                headers=api.auth("compliance"),
            )
            assert put.status_code == 200
            assert put.json() == {"adequacy": {"EU": ["CH", "UK"]}}
            replaced = await api.client.put(
                "/v1/residency/adequacy/EU",
                json={"jurisdictions": ["UK", "CH"]},
                headers=api.auth("tenant-admin"),
            )
            assert replaced.json() == {"adequacy": {"EU": ["CH", "UK"]}}
            served = await api.verify(provider["id"], {"type": "student_status"}, ask)
            assert served.status_code == 201
            assert served.json()["region"] == "uk-south"
            listed = await api.client.get("/v1/residency/adequacy", headers=api.auth("broker"))
            assert listed.json() == {"adequacy": {"EU": ["CH", "UK"]}}
            cleared = await api.client.put(
                "/v1/residency/adequacy/EU",
                json={"jurisdictions": []},
                headers=api.auth("tenant-admin"),
            )
            assert cleared.json() == {"adequacy": {}}
            again = await api.verify(provider["id"], {"type": "student_status"}, ask)
            assert again.status_code == 403


def _node_api(token: str, listing: dict[str, Any], health: dict[str, Any]) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    def guarded(body: dict[str, Any]) -> Any:
        async def endpoint(request: Request) -> JSONResponse:
            if request.headers.get("authorization") != f"Bearer {token}":
                return JSONResponse({"detail": "no"}, status_code=401)
            return JSONResponse(body)

        return endpoint

    async def missing(request: Request) -> JSONResponse:
        return JSONResponse({"detail": "provider nope does not exist"}, status_code=404)

    async def broken(request: Request) -> PlainTextResponse:
        return PlainTextResponse("upstream exploded", status_code=500)

    return Starlette(
        routes=[
            Route("/v1/providers", guarded(listing)),
            Route(f"/v1/providers/{health['provider_id']}/health", guarded(health)),
            Route("/v1/providers/nope/health", missing),
            Route("/v1/providers/broken/health", broken),
        ]
    )


async def test_providers_status_shows_a_live_nodes_view(
    sqlite_connect_settings: Settings,
    students: list[StudentRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serving(_agent(students, api_key=SecretStr("k" * 20))) as agent_url:
        async with connector_api(sqlite_connect_settings) as api:
            provider = await api.register_provider(
                **_body(
                    endpoints=[
                        endpoint_body("eu-west", "EU", agent_url),
                        endpoint_body("eu-central", "EU", "http://127.0.0.1:9"),
                    ],
                    auth={"type": "api_key", "api_key": "k" * 20},
                )
            )
            await api.verify(
                provider["id"], {"type": "student_status"}, {"student_id": students[0].student_id}
            )
            # The CLI talks HTTP to a node; serve it what this node's API answers.
            listing = (await api.client.get("/v1/providers", headers=api.auth("broker"))).json()
            health = (
                await api.client.get(
                    f"/v1/providers/{provider['id']}/health", headers=api.auth("broker")
                )
            ).json()
            server = BackgroundServer(_node_api(api.tokens["broker"], listing, health)).start()
            try:
                runner = CliRunner()
                env = {"PAVILION_TOKEN": api.tokens["broker"]}
                result = runner.invoke(
                    cli_app,
                    ["providers", "status", "--url", server.url, "--once"],
                    env=env,
                    catch_exceptions=True,
                )
                assert result.exit_code == 0, result.output
                assert "eu-west" in result.output
                assert "healthy" in result.output
                assert "unknown" in result.output  # eu-central was never needed
                as_json = runner.invoke(
                    cli_app, ["providers", "status", "--url", server.url, "--json"], env=env
                )
                assert as_json.exit_code == 0, as_json.output
                regions = {e["region"] for e in json.loads(as_json.stdout)[0]["endpoints"]}
                assert "eu-west" in regions
                ticks: list[float] = []

                def tick(seconds: float) -> None:
                    ticks.append(seconds)
                    if len(ticks) > 1:
                        raise KeyboardInterrupt

                monkeypatch.setattr("pavilion.cli.connections.time.sleep", tick)
                live = runner.invoke(
                    cli_app,
                    ["providers", "status", "--url", server.url, "--interval", "0.5"],
                    env=env,
                )
                assert live.exit_code == 0, live.output
                assert ticks == [0.5, 0.5]  # redrawn once, then Ctrl-C
                assert "eu-west" in live.output
                one = runner.invoke(
                    cli_app,
                    ["providers", "status", "--url", server.url, "--once", "--provider", "nope"],
                    env=env,
                )
                assert one.exit_code != 0
                assert "HTTP 404" in str(one.exception)
                broken = runner.invoke(
                    cli_app,
                    ["providers", "status", "--url", server.url, "--once", "--provider", "broken"],
                    env=env,
                )
                assert "HTTP 500: upstream exploded" in str(broken.exception)
                missing = runner.invoke(
                    cli_app, ["providers", "status", "--once"], env={"PAVILION_TOKEN": ""}
                )
                assert "PAVILION_TOKEN" in str(missing.exception)
                down = runner.invoke(
                    cli_app,
                    ["providers", "status", "--url", "http://127.0.0.1:9", "--once"],
                    env=env,
                )
                assert "cannot reach the connector" in str(down.exception)
            finally:
                server.stop()


async def test_warm_up_opens_pools_to_registered_providers_at_start(
    sqlite_connect_settings: Settings,
    students: list[StudentRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pavilion.runtime import build_runtime
    from pavilion.workflows.connections import warm_up_connections

    with serving(_agent(students, api_key=SecretStr("k" * 20))) as url:
        async with connector_api(sqlite_connect_settings) as api:
            provider = await api.register_provider(
                **_body(
                    endpoints=[endpoint_body("eu-west", "EU", url)],
                    auth={"type": "api_key", "api_key": "k" * 20},
                )
            )
        rt = build_runtime(sqlite_connect_settings)  # a node starting with a DP registered
        try:
            assert await warm_up_connections(rt) == 1
            from pavilion.workflows.connections import provider_health

            health = await provider_health(rt, api.tenant_id, provider["id"])
            assert health["endpoints"][0]["probe"] == "healthy"
            assert await warm_up_connections(rt, timeout_s=0.000001) == 0

            async def broken(*args: object) -> None:
                raise RuntimeError("registry down")

            monkeypatch.setattr(rt.providers, "all_connections", broken)
            assert await warm_up_connections(rt) == 0  # never stops the node from starting
        finally:
            await rt.aclose()
