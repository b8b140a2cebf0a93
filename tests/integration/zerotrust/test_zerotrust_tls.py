"""Issue 14: the connector terminates TLS itself and may require client certificates (mTLS),
mapping a verified certificate to a tenant and role. Real TLS on loopback; every certificate is
made in the test with pyca cryptography."""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from databases import sqlite_database
from pavilion.api.app import create_app
from pavilion.cli.main import app as cli_app
from pavilion.config.settings import Settings, load_settings
from pavilion.errors import ConfigurationError
from pavilion.runtime import build_runtime
from pavilion.serving import BackgroundServer
from pavilion.workflows.server_tls import tls_context
from zerotrust_support import Issued, TestCA, client_ssl, make_tenants


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    ca, rogue = TestCA(), TestCA("Rogue CA")
    server_cert, server_key = ca.issue("localhost", server=True).write(tmp_path, "server")
    (tmp_path / "client-ca.pem").write_text(ca.cert_pem)
    return {
        "ca": ca,
        "rogue": rogue,
        "cert": server_cert,
        "key": server_key,
        "client_ca": tmp_path / "client-ca.pem",
    }


def _serve(settings: Settings) -> BackgroundServer:
    rt = build_runtime(settings)
    return BackgroundServer(create_app(rt), ssl_context=tls_context(settings, rt.keystore))


def _client(
    pki: dict[str, Any], issued: Issued | None, tmp_path: Path, name: str
) -> ssl.SSLContext:
    if issued is None:
        return client_ssl(pki["ca"])
    cert, key = issued.write(tmp_path, name)
    return client_ssl(pki["ca"], cert, key)


def test_serve_terminates_tls_and_plain_http_gets_nothing(
    tmp_path: Path, pki: dict[str, Any]
) -> None:
    sqlite_database(tmp_path)
    settings = load_settings(
        None, data_dir=tmp_path, tls_cert_file=pki["cert"], tls_key_file=pki["key"]
    )
    assert settings.public_url.startswith("https://")
    with _serve(settings) as server:
        assert server.url.startswith("https://127.0.0.1:")
        with httpx.Client(base_url=server.url, verify=client_ssl(pki["ca"])) as http:
            ready = http.get("/healthz")
            assert ready.status_code == 200
            assert ready.extensions["http_version"] == b"HTTP/1.1"
        with pytest.raises(httpx.TransportError):  # plain HTTP to the TLS port
            httpx.get(server.url.replace("https://", "http://") + "/healthz", timeout=5)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(server.url + "/healthz", verify=client_ssl(pki["rogue"]), timeout=5)
        old = client_ssl(pki["ca"])
        with warnings.catch_warnings():  # the point is to offer a deprecated version
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises(httpx.ConnectError):  # below TLS 1.2 is refused
            httpx.get(server.url + "/healthz", verify=old, timeout=5)


@pytest.fixture
def mtls(tmp_path: Path, pki: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A server requiring client certificates: one mapped by key (broker of tenant a), one by
    subject (tenant-admin of tenant b), one valid but unmapped, one from a rogue CA."""
    sqlite_database(tmp_path)
    plain = load_settings(None, data_dir=tmp_path)
    tenants = make_tenants(plain, "tenant-a", "tenant-b")
    ca: TestCA = pki["ca"]
    by_key, by_subject, unmapped = ca.issue("broker-a"), ca.issue("admin-b"), ca.issue("nobody")
    settings = load_settings(
        None,
        data_dir=tmp_path,
        tls_cert_file=pki["cert"],
        tls_key_file=pki["key"],
        tls_client_ca_file=pki["client_ca"],
        tls_client_auth="required",
        tls_client_identities={
            f"spki-sha256:{by_key.spki_sha256}": {
                "tenant": tenants["tenant-a"][0],
                "role": "broker",
            },
            f"subject:{by_subject.subject}": {
                "tenant": tenants["tenant-b"][0],
                "role": "tenant-admin",
            },
        },
    )
    with _serve(settings) as server:
        yield {
            "url": server.url,
            "tenants": tenants,
            "by_key": _client(pki, by_key, tmp_path, "by-key"),
            "by_subject": _client(pki, by_subject, tmp_path, "by-subject"),
            "unmapped": _client(pki, unmapped, tmp_path, "unmapped"),
            "rogue": _client(pki, pki["rogue"].issue("broker-a"), tmp_path, "rogue"),
            "none": _client(pki, None, tmp_path, "none"),
        }


def _get(ctx: dict[str, Any], who: str, path: str, token: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=ctx["url"], verify=ctx[who], timeout=5) as http:
        return http.get(path, headers=headers)


def test_a_mapped_certificate_is_its_tenant_and_role(mtls: dict[str, Any]) -> None:
    listed = _get(mtls, "by_key", "/v1/providers")  # broker may read providers
    assert listed.status_code == 200, listed.text
    refused = _get(mtls, "by_key", "/v1/audit/checkpoint")  # a broker may not read the audit log
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    admin = _get(mtls, "by_subject", "/v1/audit/checkpoint")  # mapped by subject: tenant-admin
    assert admin.status_code == 200, admin.text
    assert admin.json()["origin"] == f"pavilion.local/audit/{mtls['tenants']['tenant-b'][0]}"


def test_required_client_certificates_are_enforced_in_the_handshake(mtls: dict[str, Any]) -> None:
    for who in ("none", "rogue"):  # TLS 1.3 reports the refusal on the first read
        with pytest.raises(httpx.TransportError):
            _get(mtls, who, "/healthz", mtls["tenants"]["tenant-a"][1])


def test_certificates_and_tokens_must_agree_on_the_tenant(mtls: dict[str, Any]) -> None:
    token_a, token_b = mtls["tenants"]["tenant-a"][1], mtls["tenants"]["tenant-b"][1]
    nobody = _get(mtls, "unmapped", "/v1/providers")
    assert nobody.status_code == 401  # a valid certificate that maps to nobody is no identity
    assert _get(mtls, "unmapped", "/v1/providers", token_b).status_code == 200
    assert _get(mtls, "by_key", "/v1/providers", token_a).status_code == 200
    crossed = _get(mtls, "by_key", "/v1/providers", token_b)
    assert crossed.status_code == 403
    assert "different tenants" in crossed.json()["detail"]


def test_optional_client_certificates_leave_tokens_working(
    tmp_path: Path, pki: dict[str, Any]
) -> None:
    sqlite_database(tmp_path)
    tenants = make_tenants(load_settings(None, data_dir=tmp_path), "tenant-a")
    settings = load_settings(
        None,
        data_dir=tmp_path,
        tls_cert_file=pki["cert"],
        tls_key_file=pki["key"],
        tls_client_ca_file=pki["client_ca"],
        tls_client_auth="optional",
    )
    with _serve(settings) as server:
        ctx = {"url": server.url, "none": client_ssl(pki["ca"])}
        ctx["rogue"] = _client(pki, pki["rogue"].issue("x"), tmp_path, "rogue")
        assert _get(ctx, "none", "/v1/providers", tenants["tenant-a"][1]).status_code == 200
        assert _get(ctx, "none", "/v1/providers").status_code == 401
        with pytest.raises(httpx.TransportError):  # a certificate that is sent must verify
            _get(ctx, "rogue", "/healthz")


def test_serve_reads_a_key_sealed_by_the_keystore(
    tmp_path: Path, pki: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_database(tmp_path)
    monkeypatch.setenv("PAVILION_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    sealed = tmp_path / "server-key.sealed"
    result = runner.invoke(cli_app, ["tls", "seal-key", str(pki["key"]), "--out", str(sealed)])
    assert result.exit_code == 0, result.output
    assert sealed.stat().st_mode & 0o077 == 0
    assert "PRIVATE KEY" not in sealed.read_text()
    monkeypatch.setenv("PAVILION_TLS_CERT_FILE", str(pki["cert"]))
    monkeypatch.setenv("PAVILION_TLS_KEY_FILE", str(sealed))
    answers: list[int] = []

    def serve_for_a_moment(
        server: Any, host: str, port: int, *, tls: bool = False, on_listening: Any = None
    ) -> None:
        assert tls
        with BackgroundServer.around(server, host, 0, tls=tls) as running:
            on_listening(running.url)
            answers.append(
                httpx.get(running.url + "/healthz", verify=client_ssl(pki["ca"])).status_code
            )

    monkeypatch.setattr("pavilion.serving.serve_in_foreground", serve_for_a_moment)
    result = runner.invoke(cli_app, ["serve"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert answers == [200]
    assert "listening on https://127.0.0.1:" in result.output


def test_bad_tls_material_stops_the_start(tmp_path: Path, pki: dict[str, Any]) -> None:
    sqlite_database(tmp_path)
    other_key = TestCA().issue("other", server=True).write(tmp_path, "other")[1]
    loose = tmp_path / "loose.key"
    loose.write_text(pki["key"].read_text())
    loose.chmod(0o644)
    garbage = tmp_path / "garbage.sealed"
    garbage.write_text('{"format": "something else"}')
    for key, message in (
        (other_key, "does not load"),
        (loose, "chmod 600"),
        (garbage, "not a sealed key"),
        (tmp_path / "missing.key", "No such file"),
    ):
        settings = load_settings(
            None, data_dir=tmp_path, tls_cert_file=pki["cert"], tls_key_file=key
        )
        rt = build_runtime(settings)
        with pytest.raises(ConfigurationError, match=message):
            tls_context(settings, rt.keystore)
