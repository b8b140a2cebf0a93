"""Helpers of the credential tests: keys, clocks, token surgery, the reference SD-JWT oracle."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwcrypto.jwk import JWK

from pavilion.credentials import issuance, templates, verifier
from pavilion.credentials.report import CheckName, IntegrityReport
from pavilion.credentials.templates import CredentialFormat
from pavilion.credentials.trust import x509 as trust_x509
from pavilion.jose import b64url, b64url_decode
from pavilion.keystore.pkcs11 import Pkcs11Config
from pavilion.keystore.signer import Signer
from pavilion.keystore.software_signer import SoftwareSigner

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ISSUER = "https://connector.example"
STUDENT = {"studentStatus": {"current": True}}
AGE = {"ageOver": {"threshold": 18, "over": True}}
MEMBER = {"membership": {"group": "chess club", "member": True}}


def es256() -> SoftwareSigner:
    return SoftwareSigner(ec.generate_private_key(ec.SECP256R1()))


def eddsa() -> SoftwareSigner:
    return SoftwareSigner(ed25519.Ed25519PrivateKey.generate())


def trust_for(*signers: Signer, **kwargs: Any) -> verifier.TrustContext:
    return verifier.TrustContext.from_jwks([s.public_jwk() for s in signers], **kwargs)


def options(now: datetime = NOW, **kwargs: Any) -> verifier.VerifyOptions:
    return verifier.VerifyOptions(now=now, **kwargs)


async def issue(
    fmt: CredentialFormat,
    signer: Signer,
    *,
    claim_type: str = "student_status",
    subject: Mapping[str, Any] = STUDENT,
    now: datetime = NOW,
    vouched: timedelta = timedelta(days=1),
    holder: Signer | None = None,
    status: issuance.StatusEmbed | None = None,
    x5c: tuple[str, ...] = (),
    provider_id: str | None = "provider-1",
) -> issuance.Issued:
    return await issuance.issue(
        fmt=fmt,
        template=templates.latest(claim_type),
        subject=subject,
        issuer=ISSUER,
        key=issuance.IssuingKey(signer, x5c, provider_id),
        issued_at=now,
        vouched_at=now - vouched,
        holder_jwk=holder.public_jwk() if holder is not None else None,
        status=status,
    )


def decode_part(part: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(b64url_decode(part))
    return value


def encode_part(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def split_jws(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return decode_part(header), decode_part(payload), signature


async def resign(header: dict[str, Any], payload: dict[str, Any], signer: Signer) -> str:
    """A JWS over exactly this header (alg and kid as given): for hostile tokens."""
    signing_input = f"{encode_part(header)}.{encode_part(payload)}"
    return f"{signing_input}.{b64url(await signer.sign(signing_input.encode()))}"


def jwcrypto_key(signer: Signer) -> JWK:
    return JWK.from_json(json.dumps(signer.public_jwk()))


def check(report: IntegrityReport, name: str) -> tuple[str, str | None]:
    """(status, code) of one check of a report."""
    found = report.get(CheckName(name))
    assert found is not None, f"no {name} check in {report.to_json()}"
    return found.status.value, found.code


async def make_chain(
    *, root_days: int = 3650, leaf_days: int = 365, now: datetime = NOW, leaf: Signer | None = None
) -> tuple[Signer, Any, Signer, Any]:
    """(root signer, root certificate, DP signer, DP leaf certificate)."""
    root_signer = es256()
    start, end = trust_x509.default_validity(now, root_days)
    root = await trust_x509.build_root(
        root_signer, tenant_id="tenant-1", common_name="Test root", not_before=start, not_after=end
    )
    dp = leaf or es256()
    start, end = trust_x509.default_validity(now, leaf_days)
    certificate = await trust_x509.build_leaf(
        root_signer,
        root,
        dp,
        provider_id="provider-1",
        common_name="Test University",
        not_before=start,
        not_after=end,
    )
    return root_signer, root, dp, certificate


def b64_der(value: str) -> bytes:
    return base64.b64decode(value)


SOFTHSM_MODULE = os.environ.get("SOFTHSM2_MODULE", "/usr/lib/softhsm/libsofthsm2.so")


@dataclass(frozen=True)
class SoftHsmToken:
    module: str
    label: str
    pin: str
    pin_file: Path

    def settings_overrides(self) -> dict[str, Any]:
        """Settings that run the connector's keystore on this token."""
        return {
            "keystore_backend": "pkcs11",
            "hsm_module": self.module,
            "hsm_token_label": self.label,
            "hsm_pin_file": self.pin_file,
        }

    def config(self) -> Pkcs11Config:
        return Pkcs11Config(module_path=self.module, token_label=self.label, user_pin=self.pin)


def softhsm_token(directory: Path, monkeypatch: pytest.MonkeyPatch, label: str) -> SoftHsmToken:
    """A fresh SoftHSM2 token in ``directory``; ``SOFTHSM2_CONF`` points at it."""
    if not os.path.isfile(SOFTHSM_MODULE) or shutil.which("softhsm2-util") is None:
        pytest.skip(f"SoftHSM2 is not installed (no {SOFTHSM_MODULE}): apt-get install softhsm2")
    tokendir = directory / "tokens"
    tokendir.mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    pin = secrets.token_hex(6)
    command = ["softhsm2-util", "--init-token", "--free", "--label", label]
    subprocess.run(
        [*command, "--so-pin", secrets.token_hex(6), "--pin", pin],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    pin_file = directory / "pin"
    pin_file.write_text(pin + "\n", encoding="utf-8")
    pin_file.chmod(0o600)
    return SoftHsmToken(SOFTHSM_MODULE, label, pin, pin_file)
