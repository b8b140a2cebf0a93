"""Chaos and faults with real DP agent processes over TLS on loopback.

Each test registers a provider with a home region (eu-west, the connector's own) and a second
allowed region (eu-central), breaks the home region's agent in one way, and checks which
region served, what the caller saw, and what the audit log and the metrics recorded.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connect_harness import connection_events, connector_api, endpoint_body
from connect_support import (
    AgentProcess,
    TlsMaterial,
    agent_process,
    metric,
    processes,
    token_server_process,
)
from connector_support import Api, provider_body
from pavilion.config.settings import Settings
from pavilion.dpagent.token_server import secret_digest
from pavilion.synth.roster import StudentRecord

KEY = "chaos-agent-key-" + secrets.token_hex(8)
PROBLEM = "application/problem+json"


def _security(
    workdir: Path, tls: TlsMaterial, name: str, *, client_ca: Path | None = None, **issue: Any
) -> Path:
    cert, key = tls.server(name, *issue.pop("hosts", ()), **issue)
    document: dict[str, Any] = {"tls": {"certificate": str(cert), "private_key": str(key)}}
    if client_ca is not None:
        document["tls"]["client_ca"] = str(client_ca)
    path = workdir / f"{name}.security.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _start(procs: list[AgentProcess], proc: AgentProcess) -> AgentProcess:
    procs.append(proc)
    return proc.start()


async def _register(api: Api, material: TlsMaterial, home: str, other: str, **extra: Any) -> str:
    body = provider_body() | {
        "endpoints": [
            endpoint_body("eu-west", "EU", home),
            endpoint_body("eu-central", "EU", other),
        ],
        "auth": {"type": "api_key", "api_key": KEY},
        "tls": {"ca_certificates": material.ca_pem},
    }
    provider = await api.register_provider(**(body | extra))
    return str(provider["id"])


async def _verify(api: Api, provider_id: str, student: StudentRecord) -> Any:
    return await api.verify(
        provider_id, {"type": "student_status"}, {"student_id": student.student_id}
    )


def _kinds(events: list[dict[str, Any]], region: str | None = None) -> list[str]:
    return [e["event"] for e in events if region is None or e.get("region") == region]


# Kills an agent under 8 concurrent lookups and times ejection against probes: on a machine
# already busy, a second test worker beside it starves it enough to reorder those events.
@pytest.mark.serial
async def test_agent_killed_mid_load_fails_over_without_failed_lookups_then_fails_back(
    sqlite_connect_settings: Settings,
    tls: TlsMaterial,
    roster_file: Path,
    students: list[StudentRecord],
    workdir: Path,
) -> None:
    with processes() as procs:
        home = _start(
            procs,
            agent_process(
                workdir,
                "home",
                roster_file,
                api_key=KEY,
                security=_security(workdir, tls, "home"),
            ),
        )
        other = _start(
            procs,
            agent_process(
                workdir,
                "other",
                roster_file,
                api_key=KEY,
                security=_security(workdir, tls, "other"),
            ),
        )
        async with connector_api(sqlite_connect_settings) as api:
            provider_id = await _register(api, tls, home.url, other.url)
            served: list[tuple[int, str]] = []
            failures: list[int] = []
            killed_at: list[int] = []

            async def worker(offset: int) -> None:
                for i in range(offset, 240, 8):
                    response = await _verify(api, provider_id, students[i % len(students)])
                    if response.status_code == 201:
                        served.append((i, response.json()["region"]))
                    else:
                        failures.append(response.status_code)
                    if len(served) == 80 and not killed_at:
                        killed_at.append(len(served))
                        home.kill()  # SIGKILL mid-load: open connections die with it

            await asyncio.gather(*(worker(k) for k in range(8)))
            assert failures == []  # idempotent lookups: every verification still succeeded
            regions_after = [region for _, region in served[killed_at[0] + 8 :]]
            assert set(regions_after) == {"eu-central"}
            assert {region for _, region in served[:60]} == {"eu-west"}
            events = await connection_events(api)
            assert "failover" in _kinds(events)
            dumped = json.dumps(events)
            for student in students:  # connection events never carry personal data
                assert student.student_id not in dumped
                assert student.email not in dumped
                assert student.family_name not in dumped
            failover = next(e for e in events if e["event"] == "failover")
            assert (failover["from_region"], failover["to_region"]) == ("eu-west", "eu-central")
            assert "endpoint_ejected" in _kinds(events, "eu-west")
            assert (
                metric(
                    "pavilion_dp_failovers_total",
                    provider=provider_id,
                    from_region="eu-west",
                    to_region="eu-central",
                    kind="failover",
                )
                == 1.0
            )
            health = (
                await api.client.get(
                    f"/v1/providers/{provider_id}/health", headers=api.auth("broker")
                )
            ).json()
            by_region = {e["region"]: e for e in health["endpoints"]}
            assert by_region["eu-west"]["status"] in {"ejected", "unhealthy", "open"}
            assert by_region["eu-central"]["status"] == "healthy"

            # The home agent comes back on its port: probes lift the ejection, traffic returns.
            _start(
                procs,
                agent_process(
                    workdir,
                    "home-again",
                    roster_file,
                    api_key=KEY,
                    security=_security(workdir, tls, "home-again"),
                    port=home.port,
                ),
            )
            region = ""
            for _ in range(100):
                response = await _verify(api, provider_id, students[0])
                assert response.status_code == 201
                region = response.json()["region"]
                if region == "eu-west":
                    break
                await asyncio.sleep(0.1)
            assert region == "eu-west"
            events = await connection_events(api)
            assert "failback" in _kinds(events)
            assert "endpoint_returned" in _kinds(events, "eu-west")


@pytest.mark.parametrize(
    ("fault", "failure"),
    [
        (["--error-rate", "1.0"], "http_5xx"),
        (["--garbage-rate", "1.0", "--seed", "3"], "bad_response"),
        (["--latency-ms", "3000"], "timeout"),
    ],
)
async def test_a_failing_home_region_is_ejected_and_its_traffic_served_elsewhere(
    sqlite_connect_settings: Settings,
    tls: TlsMaterial,
    roster_file: Path,
    students: list[StudentRecord],
    workdir: Path,
    fault: list[str],
    failure: str,
) -> None:
    with processes() as procs:
        home = _start(
            procs,
            agent_process(
                workdir,
                "home",
                roster_file,
                api_key=KEY,
                security=_security(workdir, tls, "home"),
                extra=fault,
            ),
        )
        other = _start(
            procs,
            agent_process(
                workdir,
                "other",
                roster_file,
                api_key=KEY,
                security=_security(workdir, tls, "other"),
            ),
        )
        async with connector_api(sqlite_connect_settings) as api:
            provider_id = await _register(api, tls, home.url, other.url)
            responses = [await _verify(api, provider_id, students[i]) for i in range(8)]
            assert [r.status_code for r in responses] == [201] * 8
            assert {r.json()["region"] for r in responses} == {"eu-central"}
            assert all(r.json()["decision"] in {True, False} for r in responses)
            events = await connection_events(api)
            ejected = [e for e in events if e["event"] == "endpoint_ejected"]
            assert [e["region"] for e in ejected] == ["eu-west"]
            assert ejected[0]["last_failure"] == failure
            assert "failover" in _kinds(events)
            label = home.url.removeprefix("https://")
            assert (
                metric(
                    "pavilion_dp_endpoint_ejected",
                    provider=provider_id,
                    region="eu-west",
                    endpoint=label,
                )
                == 1.0
            )
            assert (
                metric(
                    "pavilion_dp_endpoint_request_duration_seconds_count",
                    provider=provider_id,
                    region="eu-west",
                    endpoint=label,
                    outcome="http_500" if failure == "http_5xx" else failure,
                )
                >= 1
            )


@pytest.mark.parametrize(
    ("issue", "reason"),
    [
        ({"hosts": ("wrong-host.example",)}, "mismatch, certificate is not valid for"),
        (
            {"not_after": datetime.now(UTC) - timedelta(days=1)},
            "certificate has expired",
        ),
    ],
)
async def test_a_bad_server_certificate_is_never_trusted_and_the_other_region_serves(
    sqlite_connect_settings: Settings,
    tls: TlsMaterial,
    roster_file: Path,
    students: list[StudentRecord],
    workdir: Path,
    issue: dict[str, Any],
    reason: str,
) -> None:
    with processes() as procs:
        home = _start(
            procs,
            agent_process(
                workdir,
                "home",
                roster_file,
                api_key=KEY,
                security=_security(workdir, tls, "home", **issue),
            ),
        )
        other = _start(
            procs,
            agent_process(
                workdir,
                "other",
                roster_file,
                api_key=KEY,
                security=_security(workdir, tls, "other"),
            ),
        )
        async with connector_api(sqlite_connect_settings) as api:
            provider_id = await _register(api, tls, home.url, other.url)
            response = await _verify(api, provider_id, students[0])
            assert response.status_code == 201
            assert response.json()["region"] == "eu-central"
            events = await connection_events(api)
            refused = [e for e in events if e["event"] == "tls_verification_failed"]
            assert refused
            assert refused[0]["region"] == "eu-west"
            assert reason in refused[0]["reason"]
            assert refused[0]["auth_method"] == "api_key"
            established = [e for e in events if e["event"] == "tls_established"]
            assert {e["region"] for e in established} == {"eu-central"}
            assert established[0]["tls_version"] == "TLSv1.3"
            label = home.url.removeprefix("https://")
            assert (
                metric(
                    "pavilion_dp_connection_errors_total",
                    provider=provider_id,
                    region="eu-west",
                    endpoint=label,
                    kind="tls_verification_failed",
                )
                >= 1
            )


async def test_an_agent_refusing_the_client_certificate_fails_over_and_is_audited(
    sqlite_connect_settings: Settings,
    tls: TlsMaterial,
    roster_file: Path,
    students: list[StudentRecord],
    workdir: Path,
) -> None:
    stranger = TlsMaterial(workdir / "stranger-ca")  # the home agent trusts only this CA
    certificate, private_key = tls.client()
    with processes() as procs:
        home = _start(
            procs,
            agent_process(
                workdir,
                "home",
                roster_file,
                security=_security(workdir, tls, "home", client_ca=stranger.ca_file),
            ),
        )
        other = _start(
            procs,
            agent_process(
                workdir,
                "other",
                roster_file,
                security=_security(workdir, tls, "other", client_ca=tls.ca_file),
            ),
        )
        async with connector_api(sqlite_connect_settings) as api:
            provider_id = await _register(
                api,
                tls,
                home.url,
                other.url,
                auth={"type": "mtls"},
                tls={
                    "ca_certificates": tls.ca_pem,
                    "client_certificate": certificate,
                    "client_private_key": private_key,
                },
            )
            response = await _verify(api, provider_id, students[1])
            assert response.status_code == 201
            assert response.json()["region"] == "eu-central"
            events = await connection_events(api)
            refused = [e for e in events if e["event"] == "tls_client_certificate_refused"]
            assert refused
            assert refused[0]["region"] == "eu-west"
            assert refused[0]["auth_method"] == "mtls"
            shown = await api.client.get(f"/v1/providers/{provider_id}", headers=api.auth("broker"))
            assert "PRIVATE KEY" not in shown.text
            assert shown.json()["tls"]["client_certificate"]["sha256"]


async def test_residency_prevents_failover_to_a_forbidden_region(
    sqlite_connect_settings: Settings,
    tls: TlsMaterial,
    roster_file: Path,
    students: list[StudentRecord],
    workdir: Path,
) -> None:
    with processes() as procs:
        home = _start(
            procs,
            agent_process(
                workdir,
                "home",
                roster_file,
                api_key=KEY,
                security=_security(workdir, tls, "home"),
                extra=["--error-rate", "1.0"],
            ),
        )
        us = _start(
            procs,
            agent_process(
                workdir,
                "us",
                roster_file,
                api_key=KEY,
                security=_security(workdir, tls, "us"),
                extra=["--log-level", "INFO"],
            ),
        )
        async with connector_api(sqlite_connect_settings) as api:
            provider = await api.register_provider(
                endpoints=[
                    endpoint_body("eu-west", "EU", home.url),
                    endpoint_body("us-east", "US", us.url),
                ],
                auth={"type": "api_key", "api_key": KEY},
                tls={"ca_certificates": tls.ca_pem},
            )
            response = await _verify(api, provider["id"], students[2])
            assert response.status_code == 503
            assert response.headers["content-type"] == PROBLEM
            assert response.headers["retry-after"].isdigit()
            problem = response.json()
            assert problem["type"].endswith("/residency-prevented-failover")
            assert "residency prevented failover to us-east" in problem["detail"]
            assert problem["forbidden_regions"] == ["us-east"]
            leaf = await api.rt.audit.leaf(api.tenant_id, problem["audit_index"])
            assert leaf["event"]["status"] == "provider_unavailable"
            events = await connection_events(api)
            assert "residency_prevented_failover" in _kinds(events)
            assert (
                metric("pavilion_dp_residency_prevented_failover_total", provider=provider["id"])
                == 1.0
            )
            # A US resident is served by the US region: the agent there is healthy.
            served = await api.verify(
                provider["id"],
                {"type": "student_status"},
                {"student_id": students[2].student_id},
                residency="US",
            )
            assert (served.status_code, served.json()["region"]) == (201, "us-east")
        us.stop()
        lookups = us.log_path.read_text().count('"dp_agent.lookup"')
        assert lookups == 1  # only the US resident's lookup ever reached the US agent


def _token_config(workdir: Path, tls: TlsMaterial, secret: str) -> Path:
    cert, key = tls.server("token-server")
    path = workdir / "token-server.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "issuer": "https://as.dp.example",
                "audience": "dp-agent",
                "key_id": "as-1",
                "signing_key": str(workdir / "as-signing.pem"),
                "clients": [{"client_id": "pavilion", "secret_sha256": secret_digest(secret)}],
                "tls": {"certificate": str(cert), "private_key": str(key)},
            }
        )
    )
    return path


async def test_token_endpoint_down_uses_the_cached_token_and_fails_clearly_without_one(
    sqlite_connect_settings: Settings,
    tls: TlsMaterial,
    roster_file: Path,
    students: list[StudentRecord],
    workdir: Path,
) -> None:
    signing = ec.generate_private_key(ec.SECP256R1())
    (workdir / "as-signing.pem").write_bytes(
        signing.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(signing.public_key()))
    cert, key = tls.server("oauth-agent")
    security = workdir / "oauth.security.yaml"
    security.write_text(
        yaml.safe_dump(
            {
                "tls": {"certificate": str(cert), "private_key": str(key)},
                "oauth2": {
                    "issuer": "https://as.dp.example",
                    "audience": "dp-agent",
                    "jwks": {"keys": [jwk | {"kid": "as-1", "alg": "ES256"}]},
                },
            }
        )
    )
    secret = "client-secret-" + secrets.token_hex(8)
    with processes() as procs:
        token_server = _start(
            procs, token_server_process(workdir, "as", _token_config(workdir, tls, secret))
        )
        agent = _start(procs, agent_process(workdir, "agent", roster_file, security=security))
        async with connector_api(sqlite_connect_settings) as api:
            auth = {
                "type": "oauth2_client_credentials",
                "token_url": token_server.url + "/oauth2/token",
                "client_id": "pavilion",
                "client_secret": secret,
                "scope": "dp.lookup",
            }
            provider = await api.register_provider(
                endpoints=[endpoint_body("eu-west", "EU", agent.url)],
                auth=auth,
                tls={"ca_certificates": tls.ca_pem},
            )
            first = await _verify(api, provider["id"], students[3])
            assert (first.status_code, first.json()["region"]) == (201, "eu-west")
            token_server.kill()
            again = await _verify(api, provider["id"], students[4])
            assert again.status_code == 201  # the cached token still works
            # A second provider registered now has no token and cannot get one.
            second = await api.register_provider(
                name="Second University",
                endpoints=[endpoint_body("eu-west", "EU", agent.url)],
                auth=auth,
                tls={"ca_certificates": tls.ca_pem},
            )
            refused = await _verify(api, second["id"], students[3])
            assert refused.status_code == 503
            assert refused.headers["content-type"] == PROBLEM
            body = refused.json()
            assert body["type"].endswith("/provider-token-endpoint-unavailable")
            assert "token endpoint is unreachable" in body["detail"]
            events = await connection_events(api)
            issued = [e for e in events if e["event"] == "auth_token_issued"]
            assert len(issued) == 1
            assert issued[0]["method"] == "oauth2_client_credentials"
            failed = [e for e in events if e["event"] == "auth_token_failed"]
            assert failed
            assert failed[0]["provider_id"] == second["id"]
            assert secret not in json.dumps(events)
            tls_events = [e for e in events if e["event"] == "tls_established"]
            assert tls_events[0]["auth_method"] == "oauth2_client_credentials"
