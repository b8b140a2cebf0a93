"""What provider registration stores for DP authentication and TLS, and how it is read back.

Non-secret settings go to the provider's ``auth`` and ``tls`` JSON columns; the secrets go
into one JSON object sealed with the tenant's data key (AES-256-GCM, bound to the tenant and
provider by the AAD) in ``sealed_secrets``. The API key keeps its own sealed column, as before.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import BaseModel

from pavilion.errors import InvalidRequest
from pavilion.providers.auth_schemas import (
    MtlsAuthIn,
    OAuth2ClientCredentialsIn,
    PrivateKeyJwtIn,
    TlsIn,
    load_certificates,
)
from pavilion.providers.types import DpAuthSettings, TlsSettings


def secrets_aad(tenant_id: str, provider_id: str) -> bytes:
    return f"pavilion/provider-secrets/v2|{tenant_id}|{provider_id}".encode()


def split_settings(
    auth: BaseModel, tls: TlsIn | None
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, str]]:
    """(auth settings, tls settings, secrets) of a registration body."""
    settings: dict[str, Any] = {"type": getattr(auth, "type", "none")}
    secrets: dict[str, str] = {}
    if isinstance(auth, OAuth2ClientCredentialsIn | PrivateKeyJwtIn):
        settings |= {
            "token_url": str(auth.token_url),
            "client_id": auth.client_id,
            "scope": auth.scope,
            "audience": auth.audience,
        }
    if isinstance(auth, OAuth2ClientCredentialsIn):
        settings["token_endpoint_auth_method"] = "client_secret_basic"  # noqa: S105 (a name)
        secrets["client_secret"] = auth.client_secret
    if isinstance(auth, PrivateKeyJwtIn):
        settings |= {
            "token_endpoint_auth_method": "private_key_jwt",
            "algorithm": auth.algorithm,
            "key_id": auth.key_id,
        }
        secrets["assertion_key"] = auth.private_key
    if isinstance(auth, MtlsAuthIn) and (tls is None or tls.client_certificate is None):
        raise InvalidRequest(
            "auth type mtls needs tls.client_certificate and tls.client_private_key",
            field="tls.client_certificate",
        )
    tls_settings = None
    if tls is not None:
        tls_settings = {
            "ca_certificates": tls.ca_certificates,
            "client_certificate": tls.client_certificate,
            "min_version": tls.min_version,
        }
        if tls.client_private_key is not None:
            secrets["tls_client_key"] = tls.client_private_key
    return {k: v for k, v in settings.items() if v is not None}, tls_settings, secrets


def encode_secrets(secrets: dict[str, str]) -> bytes:
    return json.dumps(secrets, sort_keys=True).encode("utf-8")


def opened_settings(
    auth: dict[str, Any], tls: dict[str, Any] | None, secrets_json: bytes | None
) -> tuple[DpAuthSettings, TlsSettings | None]:
    secrets: dict[str, str] = json.loads(secrets_json) if secrets_json else {}
    dp_auth = DpAuthSettings(
        method=str(auth.get("type", "none")),
        token_url=auth.get("token_url"),
        client_id=auth.get("client_id"),
        scope=auth.get("scope"),
        audience=auth.get("audience"),
        key_id=auth.get("key_id"),
        algorithm=auth.get("algorithm"),
        client_secret=secrets.get("client_secret"),
        assertion_key=secrets.get("assertion_key"),
    )
    tls_settings = None
    if tls is not None:
        tls_settings = TlsSettings(
            ca_certificates=tls.get("ca_certificates"),
            client_certificate=tls.get("client_certificate"),
            client_private_key=secrets.get("tls_client_key"),
            min_version=str(tls.get("min_version", "1.2")),
        )
    return dp_auth, tls_settings


def describe_tls(tls: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the API shows of the TLS settings: fingerprints and dates, never keys."""
    if tls is None:
        return None
    shown: dict[str, Any] = {"min_version": tls.get("min_version", "1.2")}
    if tls.get("ca_certificates"):
        shown["ca_certificates"] = [_describe(c) for c in load_certificates(tls["ca_certificates"])]
    if tls.get("client_certificate"):
        shown["client_certificate"] = _describe(load_certificates(tls["client_certificate"])[0])
    return shown


def _describe(certificate: x509.Certificate) -> dict[str, str]:
    der = certificate.public_bytes(serialization.Encoding.DER)
    return {
        "sha256": hashlib.sha256(der).hexdigest(),
        "subject": certificate.subject.rfc4514_string(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
    }
