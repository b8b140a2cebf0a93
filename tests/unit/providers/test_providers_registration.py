"""Registration bodies for DP auth and TLS: validated early, secrets split off, shown safely."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import ValidationError

from pavilion.errors import InvalidRequest
from pavilion.providers.auth_schemas import TlsIn, signing_algorithm
from pavilion.providers.registration import (
    describe_tls,
    encode_secrets,
    opened_settings,
    split_settings,
)
from pavilion.providers.schemas import ProviderIn
from pavilion.synth.roster import ROSTER_RECORD_SCHEMA


def _pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _body(**changes: Any) -> dict[str, Any]:
    return {
        "name": "Uni",
        "claim_types": ["student_status"],
        "endpoints": [{"region": "eu-west", "jurisdiction": "EU", "url": "https://dp.example"}],
        "auth": {"type": "api_key", "api_key": "k" * 20},
        "record_schema": ROSTER_RECORD_SCHEMA,
    } | changes


def _errors(body: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        ProviderIn.model_validate(body)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in info.value.errors()]


def test_old_bodies_still_validate_with_defaults() -> None:
    spec = ProviderIn.model_validate(_body())
    assert spec.tls is None
    assert (spec.endpoints[0].weight, spec.endpoints[0].tags) == (1.0, [])


def test_several_endpoints_per_region_but_not_the_same_url_twice() -> None:
    two = [
        {"region": "eu-west", "jurisdiction": "EU", "url": "https://a.example", "weight": 2},
        {"region": "eu-west", "jurisdiction": "EU", "url": "https://b.example", "tags": ["EEA"]},
    ]
    assert len(ProviderIn.model_validate(_body(endpoints=two)).endpoints) == 2
    errors = _errors(_body(endpoints=[two[0], two[0]]))
    assert errors[0][0] == "endpoints"
    assert "once per region" in errors[0][1]
    assert _errors(_body(endpoints=[two[0] | {"weight": 0}]))[0][0] == "endpoints.0.weight"
    assert _errors(_body(endpoints=[two[0] | {"tags": ["eea"]}]))[0][0] == "endpoints.0.tags.0"


def test_oauth2_settings_are_split_from_the_secret() -> None:
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": "https://as.example/token",
        "client_id": "pavilion",
        "client_secret": "s3cret-s3cret",
        "scope": "dp.lookup",
    }
    spec = ProviderIn.model_validate(_body(auth=auth))
    settings, tls, secrets = split_settings(spec.auth, spec.tls)
    assert settings == {
        "type": "oauth2_client_credentials",
        "token_url": "https://as.example/token",
        "client_id": "pavilion",
        "scope": "dp.lookup",
        "token_endpoint_auth_method": "client_secret_basic",
    }
    assert tls is None
    assert secrets == {"client_secret": "s3cret-s3cret"}
    dp_auth, _ = opened_settings(settings, tls, encode_secrets(secrets))
    assert dp_auth.client_secret == "s3cret-s3cret"
    assert "s3cret" not in repr(dp_auth)


def test_token_urls_must_be_https_except_on_loopback() -> None:
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": "http://as.example/token",
        "client_id": "c",
        "client_secret": "x" * 10,
    }
    errors = _errors(_body(auth=auth))
    assert errors[0][0] == "auth.oauth2_client_credentials.token_url"
    assert "https" in errors[0][1]
    auth["token_url"] = "http://127.0.0.1:9/token"
    assert ProviderIn.model_validate(_body(auth=auth))


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [
        (ec.generate_private_key(ec.SECP256R1()), "ES256"),
        (ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
        (rsa.generate_private_key(65537, 2048), "RS256"),
    ],
)
def test_private_key_jwt_accepts_strong_keys_and_names_the_algorithm(
    key: Any, algorithm: str
) -> None:
    auth = {
        "type": "private_key_jwt",
        "token_url": "https://as.example/token",
        "client_id": "c",
        "private_key": _pem(key),
        "key_id": "k1",
    }
    spec = ProviderIn.model_validate(_body(auth=auth))
    settings, _, secrets = split_settings(spec.auth, spec.tls)
    assert settings["algorithm"] == algorithm
    assert settings["key_id"] == "k1"
    assert set(secrets) == {"assertion_key"}


def test_weak_or_broken_assertion_keys_are_refused_naming_the_field() -> None:
    base = {"type": "private_key_jwt", "token_url": "https://as/t", "client_id": "c"}
    for key, message in (
        ("not a key", "not an unencrypted PEM private key"),
        (_pem(ec.generate_private_key(ec.SECP384R1())), "P-256"),
        (_pem(rsa.generate_private_key(65537, 1024)), "2048"),
    ):
        errors = _errors(_body(auth=base | {"private_key": key}))
        assert errors[0][0] == "auth.private_key_jwt.private_key"
        assert message in errors[0][1]
    with pytest.raises(ValueError, match="EC, RSA or Ed25519"):
        from cryptography.hazmat.primitives.asymmetric import x25519

        signing_algorithm(_pem(x25519.X25519PrivateKey.generate()))


def test_tls_settings_check_pems_and_the_key_pair() -> None:
    ca = trustme.CA()
    client = ca.issue_cert("connector.pavilion.test")
    other = ca.issue_cert("other.pavilion.test")
    cert_pem = client.cert_chain_pems[0].bytes().decode()
    key_pem = client.private_key_pem.bytes().decode()
    tls = TlsIn(
        ca_certificates=ca.cert_pem.bytes().decode(),
        client_certificate=cert_pem,
        client_private_key=key_pem,
        min_version="1.3",
    )
    with pytest.raises(ValidationError, match="does not belong"):
        TlsIn(
            client_certificate=cert_pem, client_private_key=other.private_key_pem.bytes().decode()
        )
    with pytest.raises(ValidationError, match="together"):
        TlsIn(client_certificate=cert_pem)
    with pytest.raises(ValidationError, match="not a PEM certificate"):
        TlsIn(ca_certificates="-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----")
    with pytest.raises(ValidationError, match="not an unencrypted PEM private key"):
        TlsIn(client_private_key="junk")
    spec = ProviderIn.model_validate(_body(auth={"type": "mtls"}, tls=tls.model_dump()))
    settings, stored, secrets = split_settings(spec.auth, spec.tls)
    assert settings == {"type": "mtls"}
    assert stored is not None
    assert "client_private_key" not in stored
    assert secrets == {"tls_client_key": key_pem}
    shown = describe_tls(stored)
    assert shown is not None
    assert shown["min_version"] == "1.3"
    assert "O=trustme" in shown["client_certificate"]["subject"]
    assert len(shown["ca_certificates"]) == 1
    assert "PRIVATE KEY" not in json.dumps(shown)
    _, opened = opened_settings(settings, stored, encode_secrets(secrets))
    assert opened is not None
    assert opened.client_private_key == key_pem
    assert describe_tls(None) is None


def test_mtls_without_a_client_certificate_names_the_field() -> None:
    spec = ProviderIn.model_validate(_body(auth={"type": "mtls"}))
    with pytest.raises(InvalidRequest) as info:
        split_settings(spec.auth, spec.tls)
    assert info.value.field == "tls.client_certificate"
