"""SoftHSM2 helpers of the HSM integration tests (see conftest.py for the fixture).

SoftHSM2 reads ``SOFTHSM2_CONF`` (and rescans its token directory) in ``C_Initialize``, so the
fixture points the variable at a config whose ``directories.tokendir`` is the test's temporary
directory and initialises a token there with ``softhsm2-util``. ``Pkcs11Token`` finalises the
module when its last token closes, so the next test sees only its own token.

Needs the Debian/Ubuntu package ``softhsm2`` (module ``/usr/lib/softhsm/libsofthsm2.so``,
override with ``SOFTHSM2_MODULE``); the tests are skipped without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from pavilion.jose import b64url_decode
from pavilion.keystore.pkcs11 import Pkcs11Config
from pavilion.keystore.pkcs11.worker import active_workers

SOFTHSM_MODULE = os.environ.get("SOFTHSM2_MODULE", "/usr/lib/softhsm/libsofthsm2.so")


@dataclass(frozen=True)
class SoftHsm:
    """A SoftHSM2 token directory with one initialised token."""

    module_path: str
    conf: Path
    tokendir: Path
    label: str
    pin: str
    so_pin: str

    def config(self, **overrides: Any) -> Pkcs11Config:
        values: dict[str, Any] = {
            "module_path": self.module_path,
            "token_label": self.label,
            "user_pin": self.pin,
        }
        values.update(overrides)
        return Pkcs11Config(**values)

    def init_token(self, label: str, pin: str | None = None) -> None:
        """Initialise one more token (in the next free slot) in the same directory."""
        init_softhsm_token(label, pin or self.pin, self.so_pin)


def require_softhsm() -> None:
    if not os.path.isfile(SOFTHSM_MODULE) or shutil.which("softhsm2-util") is None:
        pytest.skip(
            f"SoftHSM2 is not installed (no {SOFTHSM_MODULE} or softhsm2-util): "
            "apt-get install softhsm2"
        )


def init_softhsm_token(label: str, pin: str, so_pin: str) -> None:
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            so_pin,
            "--pin",
            pin,
        ],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )


@contextmanager
def raw_session(hsm: SoftHsm, *, login: bool = True) -> Iterator[Any]:
    """python-pkcs11 directly, for independent checks. Only while no Pkcs11Token is open."""
    import pkcs11

    assert not active_workers(), "close the Pkcs11Token before using the module directly"
    lib = pkcs11.lib(hsm.module_path)
    lib.reinitialize()  # rescan the token directory of this test
    try:
        token = lib.get_token(token_label=hsm.label)
        session = token.open(rw=True, user_pin=hsm.pin if login else None)
        try:
            yield session
        finally:
            session.close()
    finally:
        lib.finalize()


def verify_with_cryptography(jwk: dict[str, str], message: bytes, signature: bytes) -> None:
    """Raises InvalidSignature unless ``signature`` is the raw JOSE signature of ``message``."""
    if jwk["kty"] == "EC":
        assert len(signature) == 64
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(b64url_decode(jwk["x"]), "big"),
            int.from_bytes(b64url_decode(jwk["y"]), "big"),
            ec.SECP256R1(),
        )
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        numbers.public_key().verify(der, message, ec.ECDSA(hashes.SHA256()))
    else:
        assert len(signature) == 64
        Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"])).verify(signature, message)
