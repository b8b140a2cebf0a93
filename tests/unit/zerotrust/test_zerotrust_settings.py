"""Issue 14/15 settings: TLS, client identities and OIDC providers are refused at start-up
when incomplete or unsafe, with the variable named; mapped identities name real roles."""

from __future__ import annotations

from pathlib import Path

import pytest

from pavilion.config.settings import ClientIdentity, load_settings
from pavilion.errors import ConfigurationError
from pavilion.serving import server_ssl_context
from pavilion.tenancy.identities import CertificateIdentities, certificate_facts
from pavilion.tenancy.models import PLATFORM_TENANT_ID
from pavilion.tenancy.oidc import OidcVerifier
from zerotrust_support import TestCA

TENANT = "11111111-2222-3333-4444-555555555555"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tls_cert_file": "c.pem"}, "needs both PAVILION_TLS_CERT_FILE and PAVILION_TLS_KEY_FILE"),
        ({"tls_key_file": "k.pem"}, "needs both"),
        (
            {"tls_cert_file": "c", "tls_key_file": "k", "tls_client_auth": "required"},
            "PAVILION_TLS_CLIENT_CA_FILE",
        ),
        ({"tls_client_auth": "optional", "tls_client_ca_file": "ca"}, "needs TLS"),
        (
            {
                "tls_client_identities": {
                    f"spki-sha256:{'a' * 64}": {"tenant": TENANT, "role": "broker"}
                }
            },
            "PAVILION_TLS_CLIENT_IDENTITIES needs PAVILION_TLS_CLIENT_AUTH",
        ),
        (
            {"tls_client_identities": {"sha1:abc": {"tenant": TENANT, "role": "broker"}}},
            "must be 'spki-sha256:<64 lowercase hex>' or 'subject:",
        ),
    ],
)
def test_incomplete_tls_settings_are_refused(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(None, data_dir=tmp_path, **changes)


def _oidc(**changes: object) -> dict[str, object]:
    return {
        "tenant": TENANT,
        "issuer": "https://login.example",
        "audience": "pavilion",
        "jwks_uri": "https://login.example/jwks",
        "roles": {"eligibility-broker": "broker"},
    } | changes


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"algorithms": ["HS256"]}, "not allowed; use asymmetric"),
        ({"algorithms": ["none"]}, "not allowed"),
        ({"algorithms": []}, "at least 1 item"),
        ({"issuer": "http://login.example"}, "must be an https URL"),
        ({"jwks_uri": "ftp://login.example/jwks"}, "must be an https URL"),
        ({"leeway_seconds": 3600}, "less than or equal to 300"),
    ],
)
def test_unsafe_oidc_providers_are_refused(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(None, data_dir=tmp_path, oidc_providers=[_oidc(**changes)])


def test_loopback_oidc_over_http_is_allowed_for_development(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        data_dir=tmp_path,
        oidc_providers=[_oidc(issuer="http://127.0.0.1:9000", jwks_uri="http://localhost:9000/j")],
    )
    assert settings.oidc_providers[0].algorithms == ["RS256", "ES256"]


def test_identities_name_real_roles_and_keep_platform_admin_on_the_platform() -> None:
    with pytest.raises(ConfigurationError, match="unknown role 'root'"):
        CertificateIdentities({"subject:CN=x": ClientIdentity(tenant=TENANT, role="root")})
    with pytest.raises(ConfigurationError, match="platform-admin belongs to the platform tenant"):
        CertificateIdentities(
            {"subject:CN=x": ClientIdentity(tenant=TENANT, role="platform-admin")}
        )
    platform = CertificateIdentities(
        {"subject:CN=ops": ClientIdentity(tenant=PLATFORM_TENANT_ID, role="platform-admin")}
    )
    assert platform


def test_oidc_role_names_are_checked_when_the_verifier_is_built(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path, oidc_providers=[_oidc(roles={"x": "god"})])
    with pytest.raises(
        ConfigurationError, match="PAVILION_OIDC_PROVIDERS\\[0\\]: unknown role 'god'"
    ):
        OidcVerifier(settings.oidc_providers)


def test_certificates_are_matched_by_key_first_then_subject() -> None:
    ca = TestCA()
    issued, other = ca.issue("broker-a"), ca.issue("broker-a")  # same subject, another key
    identities = CertificateIdentities(
        {
            f"spki-sha256:{issued.spki_sha256}": ClientIdentity(tenant=TENANT, role="broker"),
            f"subject:{issued.subject}": ClientIdentity(tenant=TENANT, role="auditor"),
        }
    )
    assert certificate_facts(issued.cert_pem).spki_sha256 == issued.spki_sha256
    by_key, by_subject = identities.principal(issued.cert_pem), identities.principal(other.cert_pem)
    assert by_key is not None
    assert by_key.role.value == "broker"
    assert by_subject is not None
    assert by_subject.role.value == "auditor"
    assert by_key.token_id.startswith("mtls:")
    assert identities.principal(ca.issue("stranger").cert_pem) is None
    assert not CertificateIdentities({})


def test_server_contexts_need_a_client_ca_to_ask_for_certificates() -> None:
    ca = TestCA()
    server = ca.issue("localhost", server=True)
    with pytest.raises(ConfigurationError, match="need a client CA bundle"):
        server_ssl_context(server.cert_pem, server.key_pem, client_auth="required")
    with pytest.raises(ConfigurationError, match="client CA bundle does not load"):
        server_ssl_context(
            server.cert_pem, server.key_pem, client_ca_pem="garbage", client_auth="optional"
        )
