"""Registration bodies for DP authentication and TLS (beside the API-key form in schemas.py).

Secrets (client secret, the private key of a JWT client assertion, the mTLS client key) are
write-only: they are sealed with the tenant's data key and never shown again. Certificates
and keys are checked when they arrive, so a bad PEM is a 422 naming the field, not a failed
handshake later.
"""

from __future__ import annotations

from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

PemText = str


class OAuth2ClientCredentialsIn(BaseModel):
    """OAuth 2.0 client credentials grant (RFC 6749 section 4.4), client_secret_basic."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["oauth2_client_credentials"]
    token_url: HttpUrl = Field(description="The authorization server's token endpoint.")
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str = Field(
        min_length=8, max_length=4096, description="Sealed at rest; write-only."
    )
    scope: str | None = Field(default=None, max_length=1000)
    audience: str | None = Field(default=None, max_length=1000)

    @field_validator("token_url")
    @classmethod
    def _token_url_is_safe(cls, value: HttpUrl) -> HttpUrl:
        return _https_or_loopback(value)


class PrivateKeyJwtIn(BaseModel):
    """Client credentials with a signed JWT client assertion (RFC 7523, private_key_jwt)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["private_key_jwt"]
    token_url: HttpUrl = Field(description="The token endpoint; also the assertion's audience.")
    client_id: str = Field(min_length=1, max_length=200)
    private_key: PemText = Field(
        min_length=1,
        max_length=20_000,
        description="PKCS#8 PEM (P-256, Ed25519 or RSA >= 2048 bits); sealed, write-only.",
    )
    key_id: str | None = Field(default=None, max_length=200)
    scope: str | None = Field(default=None, max_length=1000)
    audience: str | None = Field(default=None, max_length=1000)

    @field_validator("token_url")
    @classmethod
    def _token_url_is_safe(cls, value: HttpUrl) -> HttpUrl:
        return _https_or_loopback(value)

    @field_validator("private_key")
    @classmethod
    def _signing_key(cls, value: str) -> str:
        signing_algorithm(value)
        return value

    @property
    def algorithm(self) -> str:
        return signing_algorithm(self.private_key)


class MtlsAuthIn(BaseModel):
    """The client certificate in ``tls`` is the connector's only credential."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["mtls"]


class TlsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ca_certificates: PemText | None = Field(
        default=None,
        max_length=200_000,
        description="PEM bundle; when given, the DP's server certificates must chain to these "
        "and to nothing else. Default: the system's trust store.",
    )
    client_certificate: PemText | None = Field(
        default=None, max_length=50_000, description="PEM chain presented for mutual TLS."
    )
    client_private_key: PemText | None = Field(
        default=None, max_length=20_000, description="PKCS#8 PEM; sealed at rest, write-only."
    )
    min_version: Literal["1.2", "1.3"] = Field(
        default="1.2", description="Lowest TLS version accepted; 1.3 is always preferred."
    )

    @field_validator("ca_certificates", "client_certificate")
    @classmethod
    def _certificates(cls, value: str | None) -> str | None:
        if value is not None:
            load_certificates(value)
        return value

    @field_validator("client_private_key")
    @classmethod
    def _private_key(cls, value: str | None) -> str | None:
        if value is not None:
            load_private_key(value)
        return value

    @model_validator(mode="after")
    def _pair(self) -> TlsIn:
        if (self.client_certificate is None) != (self.client_private_key is None):
            raise ValueError("give client_certificate and client_private_key together")
        if self.client_certificate is not None and self.client_private_key is not None:
            certificate = load_certificates(self.client_certificate)[0]
            key = load_private_key(self.client_private_key)
            public = serialization.PublicFormat.SubjectPublicKeyInfo
            encoding = serialization.Encoding.DER
            if certificate.public_key().public_bytes(
                encoding, public
            ) != key.public_key().public_bytes(encoding, public):
                raise ValueError("client_private_key does not belong to client_certificate")
        return self


def _https_or_loopback(value: HttpUrl) -> HttpUrl:
    if value.scheme != "https" and value.host not in {"127.0.0.1", "localhost", "[::1]", "::1"}:
        raise ValueError("must be an https URL (plain http is allowed on loopback only)")
    return value


def load_certificates(pem: str) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError("not a PEM certificate (or bundle)") from exc
    return certificates


SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def load_private_key(pem: str) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise ValueError("not an unencrypted PEM private key") from exc
    if not isinstance(key, SigningKey):
        raise ValueError("the key must be an EC, RSA or Ed25519 private key")
    return key


def signing_algorithm(pem: str) -> str:
    """The JOSE algorithm a client-assertion key signs with: ES256, EdDSA or RS256."""
    key = load_private_key(pem)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("an EC key must be on P-256 (ES256)")
        return "ES256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if key.key_size < 2048:
        raise ValueError("an RSA key must have at least 2048 bits")
    return "RS256"
