"""X.509 for trust chains: certificates signed through a Signer, chains checked by pyca.

Each tenant has an issuer root: a self-signed CA certificate whose key lives in the keystore
(software or HSM). The root certifies each data provider's issuing key with a leaf
certificate; credentials carry ``x5c`` (leaf first, RFC 7515 section 4.1.6: standard base64
DER, not base64url).

Certificates are built with ``cryptography``'s ``CertificateBuilder``. The builder wants a
private key object, so :class:`SignerBackedKey` presents a :class:`Signer` as one: ``sign``
hands the to-be-signed bytes to the Signer (an HSM signs them without the key leaving it) and
DER-encodes the raw ``r || s`` it returns. Roots are P-256 (ECDSA with SHA-256 is what the
chain verifier's web PKI profile accepts for signatures); leaves may hold P-256 or Ed25519.

Chains are validated with ``cryptography.x509.verification`` (``PolicyBuilder`` and its client
verifier: the profile for certificates that do not name a DNS server) against the configured
trust anchors at the verification time. Before that, the links are checked one by one so the
reason can say which link expired, or that the root is unknown.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from pavilion.credentials.report import CheckFailed, CheckName
from pavilion.credentials.timeutil import iso
from pavilion.errors import CryptoError, InvalidRequest
from pavilion.jose import b64url_decode
from pavilion.keystore.signer import Signer
from pavilion.keystore.software_signer import public_jwk_of

#: How long a thread may wait for the Signer (an HSM worker) to sign one certificate.
SIGN_TIMEOUT_S = 30.0
PROVIDER_URN = "urn:pavilion:provider:"


def _public_key(signer: Signer) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey:
    jwk = signer.public_jwk()
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        return ec.EllipticCurvePublicNumbers(
            int.from_bytes(b64url_decode(jwk["x"]), "big"),
            int.from_bytes(b64url_decode(jwk["y"]), "big"),
            ec.SECP256R1(),
        ).public_key()
    if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    raise CryptoError(f"unsupported key type {jwk.get('kty')}/{jwk.get('crv')}")


class SignerBackedKey(ec.EllipticCurvePrivateKey):
    """A P-256 :class:`Signer` dressed as a pyca private key, for ``CertificateBuilder.sign``.

    Only ``sign`` (ECDSA with SHA-256), ``public_key``, ``curve`` and ``key_size`` work; the
    key material stays wherever the Signer keeps it. ``sign`` blocks: call the builder from a
    worker thread (:func:`sign_certificate` does), never on the event loop.
    """

    def __init__(self, signer: Signer, loop: asyncio.AbstractEventLoop) -> None:
        if signer.algorithm != "ES256":
            raise InvalidRequest(
                "a certificate authority key must be ES256 (P-256)", field="algorithm"
            )
        public = _public_key(signer)
        assert isinstance(public, ec.EllipticCurvePublicKey)
        self._signer = signer
        self._loop = loop
        self._public = public

    def sign(
        self, data: bytes | Any, signature_algorithm: ec.EllipticCurveSignatureAlgorithm
    ) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA) or not isinstance(
            signature_algorithm.algorithm, hashes.SHA256
        ):
            raise CryptoError("the Signer signs ECDSA with SHA-256 only")
        future = asyncio.run_coroutine_threadsafe(self._signer.sign(bytes(data)), self._loop)
        raw = future.result(SIGN_TIMEOUT_S)
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        return encode_dss_signature(r, s)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return ec.SECP256R1()

    @property
    def key_size(self) -> int:
        return 256

    def _unsupported(self) -> NoReturn:
        raise CryptoError("a Signer-backed key only signs; its private key never leaves")

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        self._unsupported()

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        self._unsupported()

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        self._unsupported()

    def __copy__(self) -> SignerBackedKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> SignerBackedKey:
        return self


async def sign_certificate(builder: x509.CertificateBuilder, ca: Signer) -> x509.Certificate:
    """Sign with the CA's Signer: the builder runs in a thread, the Signer on this loop."""
    key = SignerBackedKey(ca, asyncio.get_running_loop())
    return await asyncio.to_thread(builder.sign, key, hashes.SHA256())


_KEY_USAGE_CA = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
_KEY_USAGE_LEAF = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


async def build_root(
    ca: Signer, *, tenant_id: str, common_name: str, not_before: datetime, not_after: datetime
) -> x509.Certificate:
    """A self-signed issuer root for one tenant (CA, path length 0: it certifies leaves)."""
    public = _public_key(ca)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pavilion"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, tenant_id),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_KEY_USAGE_CA, critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    return await sign_certificate(builder, ca)


async def build_leaf(
    ca: Signer,
    root: x509.Certificate,
    subject_key: Signer,
    *,
    provider_id: str,
    common_name: str,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    """A data provider's issuing-key certificate, issued by the tenant root."""
    not_after = min(not_after, root.not_valid_after_utc)
    public = _public_key(subject_key)
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pavilion data provider"),
                    x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                ]
            )
        )
        .issuer_name(root.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_KEY_USAGE_LEAF, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(PROVIDER_URN + provider_id)]
            ),
            critical=False,
        )
    )
    return await sign_certificate(builder, ca)


# -- encoding ---------------------------------------------------------------------------------


def to_x5c(certificate: x509.Certificate) -> str:
    """One ``x5c`` entry: standard (padded) base64 of the DER certificate."""
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")


def to_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def from_pem(pem: str | bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode("ascii") if isinstance(pem, str) else pem)


def load_pem_bundle(pem: str | bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM file (trust anchors)."""
    try:
        return x509.load_pem_x509_certificates(pem.encode("ascii") if isinstance(pem, str) else pem)
    except ValueError as exc:
        raise InvalidRequest(f"not a PEM certificate bundle: {exc}", field="anchors") from exc


def parse_x5c(value: object) -> list[x509.Certificate]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise CheckFailed(CheckName.CHAIN, "bad_x5c", "x5c must be a non-empty array of strings")
    certificates = []
    for index, entry in enumerate(value):
        try:
            der = base64.b64decode(entry, validate=True)
            certificates.append(x509.load_der_x509_certificate(der))
        except (binascii.Error, ValueError) as exc:
            raise CheckFailed(
                CheckName.CHAIN, "bad_x5c", f"x5c[{index}] is not a base64 DER certificate"
            ) from exc
    return certificates


def public_jwk_of_certificate(certificate: x509.Certificate) -> dict[str, str]:
    public = certificate.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        return public_jwk_of(public)
    if isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1):
        return public_jwk_of(public)
    raise CheckFailed(
        CheckName.SIGNATURE,
        "unsupported_certificate_key",
        "the x5c leaf certificate's key is neither P-256 nor Ed25519",
    )


def describe(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


def provider_of(certificate: x509.Certificate) -> str | None:
    """The provider id a leaf certificate names in its subjectAltName URI."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(PROVIDER_URN):
            return uri[len(PROVIDER_URN) :]
    return None


# -- chain validation -------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidatedChain:
    leaf: x509.Certificate
    root: x509.Certificate

    @property
    def leaf_is_root(self) -> bool:
        return self.leaf == self.root


def _same(a: x509.Certificate, b: x509.Certificate) -> bool:
    return a.public_bytes(serialization.Encoding.DER) == b.public_bytes(serialization.Encoding.DER)


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    if child.issuer != parent.subject:
        return False
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_period(certificate: x509.Certificate, now: datetime, role: str) -> None:
    if now > certificate.not_valid_after_utc:
        raise CheckFailed(
            CheckName.CHAIN,
            "expired_link",
            f"expired link: the {role} certificate '{describe(certificate)}' expired at "
            f"{iso(certificate.not_valid_after_utc)}",
        )
    if now < certificate.not_valid_before_utc:
        raise CheckFailed(
            CheckName.CHAIN,
            "not_yet_valid_link",
            f"the {role} certificate '{describe(certificate)}' is not valid before "
            f"{iso(certificate.not_valid_before_utc)}",
        )


def validate_chain(
    chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate], now: datetime
) -> ValidatedChain:
    """Validate ``x5c`` (leaf first) to one of the trust anchors at ``now``.

    Raises CheckFailed (``chain``) with code ``no_trust_anchors``, ``unknown_root``,
    ``expired_link``, ``not_yet_valid_link`` or ``invalid_chain``.
    """
    if not anchors:
        raise CheckFailed(
            CheckName.CHAIN, "no_trust_anchors", "no trust anchors are configured to check x5c"
        )
    now = now.astimezone(UTC)
    leaf = chain[0]
    direct = next((a for a in anchors if _same(a, leaf)), None)
    if direct is not None:
        _check_period(direct, now, "root")
        return ValidatedChain(direct, direct)
    top = chain[-1]
    root = next((a for a in anchors if _same(a, top)), None) or next(
        (a for a in anchors if _issued_by(top, a)), None
    )
    if root is None:
        raise CheckFailed(
            CheckName.CHAIN,
            "unknown_root",
            f"unknown root: the chain of '{describe(leaf)}' does not lead to a configured trust "
            f"anchor (its issuer is '{top.issuer.rfc4514_string()}')",
        )
    _check_period(root, now, "root")
    for index, certificate in enumerate(chain):
        if not _same(certificate, root):
            _check_period(certificate, now, "leaf" if index == 0 else "intermediate")
    intermediates = [c for c in chain[1:] if not _same(c, root)]
    verifier = PolicyBuilder().store(Store(list(anchors))).time(now).build_client_verifier()
    try:
        verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        raise CheckFailed(
            CheckName.CHAIN, "invalid_chain", f"the certificate chain does not validate: {exc}"
        ) from exc
    return ValidatedChain(leaf, root)


def default_validity(now: datetime, days: int) -> tuple[datetime, datetime]:
    """(not_before, not_after): back-dated five minutes for clock skew."""
    return now - timedelta(minutes=5), now + timedelta(days=days)
