"""The connector's own TLS endpoint: certificate and key from files, or the key sealed by the
keystore, turned into the SSL context ``pavilion serve`` terminates TLS with.

The private key is either a PEM file readable by the service user only (a key file that group
or others may read is refused, as ssh does), or a file written by ``pavilion tls seal-key``: the
PEM sealed with AES-256-GCM under the keystore's key-encryption key (inside the HSM on the
PKCS#11 backend). Either way the key reaches OpenSSL through an anonymous in-memory file, never a
plaintext copy on disk.
"""

from __future__ import annotations

import base64
import json
import ssl
import stat
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization

from pavilion.config.settings import Settings
from pavilion.errors import ConfigurationError, CryptoError
from pavilion.keystore.base import Keystore
from pavilion.serving import server_ssl_context

SEALED_FORMAT: Final = "pavilion-sealed-tls-key/1"
_CONTEXT: Final = b"pavilion/tls-server-key/v1"


def seal_tls_key(keystore: Keystore, key_pem: bytes) -> str:
    """A sealed-key document (JSON) for a PEM private key; refuses anything else."""
    try:
        serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            "not an unencrypted PEM private key (decrypt it first: openssl pkey -in KEY -out -)"
        ) from exc
    kek_id, sealed = keystore.wrap_key(key_pem, _CONTEXT)
    document = {
        "format": SEALED_FORMAT,
        "kek": kek_id,
        "sealed": base64.b64encode(sealed).decode("ascii"),
    }
    return json.dumps(document, indent=2) + "\n"


def read_tls_key(keystore: Keystore, path: Path) -> str:
    """The PEM private key in ``path``: a sealed document, or a private PEM file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"PAVILION_TLS_KEY_FILE {path}: {exc.strerror}") from exc
    if raw.lstrip().startswith(b"{"):
        return _unseal(keystore, path, raw)
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"PAVILION_TLS_KEY_FILE {path}: group or others may read it; chmod 600 it, or "
            "seal it with `pavilion tls seal-key`"
        )
    return raw.decode("ascii", errors="replace")


def _unseal(keystore: Keystore, path: Path, raw: bytes) -> str:
    try:
        document = json.loads(raw)
        if document.get("format") != SEALED_FORMAT:
            raise ValueError("unknown format")
        sealed = base64.b64decode(document["sealed"], validate=True)
        kek_id = str(document["kek"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigurationError(
            f"PAVILION_TLS_KEY_FILE {path}: not a sealed key written by `pavilion tls seal-key`"
        ) from exc
    try:
        return keystore.unwrap_key(kek_id, sealed, _CONTEXT).decode("ascii")
    except CryptoError as exc:
        raise ConfigurationError(
            f"PAVILION_TLS_KEY_FILE {path}: the keystore cannot open it ({exc.detail})"
        ) from exc


def _read_text(path: Path, setting: str) -> str:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{setting} {path}: cannot be read ({exc})") from exc


def tls_context(settings: Settings, keystore: Keystore) -> ssl.SSLContext | None:
    """The SSL context ``pavilion serve`` listens with, or None when TLS is not configured."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    client_ca = (
        _read_text(settings.tls_client_ca_file, "PAVILION_TLS_CLIENT_CA_FILE")
        if settings.tls_client_ca_file is not None
        else None
    )
    return server_ssl_context(
        _read_text(settings.tls_cert_file, "PAVILION_TLS_CERT_FILE"),
        read_tls_key(keystore, settings.tls_key_file),
        client_ca_pem=client_ca,
        client_auth=settings.tls_client_auth,
    )
