"""A small PKI made with pyca cryptography for the zero-trust tests: a CA, server and client
certificates (EC P-256), PEM on disk where ``ssl`` wants files, and client SSL contexts."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pavilion.config.settings import Settings
from pavilion.runtime import build_runtime
from pavilion.tenancy.roles import Role


@dataclass(frozen=True)
class Issued:
    cert_pem: str
    key_pem: str
    subject: str
    spki_sha256: str

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        cert, key = directory / f"{name}.crt", directory / f"{name}.key"
        cert.write_text(self.cert_pem)
        key.write_text(self.key_pem)
        key.chmod(0o600)
        return cert, key


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pavilion tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


class TestCA:
    """A self-signed CA that issues server and client certificates."""

    __test__ = False

    def __init__(self, common_name: str = "Pavilion test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        self.name = _name(common_name)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, common_name: str, *, server: bool = False) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return Issued(
            cert.public_bytes(serialization.Encoding.PEM).decode(),
            _pem_key(key),
            cert.subject.rfc4514_string(),
            hashlib.sha256(spki).hexdigest(),
        )


def client_ssl(
    ca: TestCA, certificate: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """What a broker uses: trusts ``ca`` for the server, presents a certificate if given."""
    context = ssl.create_default_context(cadata=ca.cert_pem)
    if certificate is not None:
        context.load_cert_chain(certificate, key)
    return context


def make_tenants(settings: Settings, *names: str) -> dict[str, tuple[str, str]]:
    """Tenants (name -> (id, a broker API token)) made through a runtime that is then closed,
    so the server's runtime, built later on its own event loop, opens its own connections."""

    async def work() -> dict[str, tuple[str, str]]:
        rt = build_runtime(settings)
        try:
            await rt.tenancy.ensure_platform_tenant()
            made = {}
            for name in names:
                tenant = await rt.tenancy.create_tenant(name)
                token = await rt.tenancy.create_token(tenant.id, "broker", Role.BROKER)
                made[name] = (tenant.id, token.secret)
            return made
        finally:
            await rt.aclose()

    return asyncio.run(work())
