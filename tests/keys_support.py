"""Helpers of the key-lifecycle and revocation tests: SoftHSM2 tokens, decoders, JWT checks.

The decoders here are written from the specifications, independently of
``pavilion.credentials.status``:

* IETF Token Status List ("Status List"): base64url, ZLIB, then status ``i`` is ``bits`` bits
  at bit offset ``i * bits`` counted from the least significant bit of each byte.
* W3C Bitstring Status List (section 3.4, "Bitstring Expansion Algorithm"): drop the ``u``
  multibase prefix, base64url, GZIP; index 0 is the left-most (most significant) bit.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import secrets
import shutil
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest

from jose_support import pyjwk

SOFTHSM_MODULE = os.environ.get("SOFTHSM2_MODULE", "/usr/lib/softhsm/libsofthsm2.so")


@dataclass(frozen=True)
class Token:
    module: str
    label: str
    pin: str
    pin_file: Path


def make_softhsm_token(directory: Path, monkeypatch: pytest.MonkeyPatch, label: str) -> Token:
    """A fresh SoftHSM2 token in ``directory`` (``SOFTHSM2_CONF`` set for this process)."""
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
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            secrets.token_hex(6),
            "--pin",
            pin,
        ],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    pin_file = directory / "pin"
    pin_file.write_text(pin + "\n", encoding="utf-8")
    pin_file.chmod(0o600)
    return Token(SOFTHSM_MODULE, label, pin, pin_file)


def hsm_overrides(token: Token) -> dict[str, Any]:
    return {
        "keystore_backend": "pkcs11",
        "hsm_module": token.module,
        "hsm_token_label": token.label,
        "hsm_pin_file": token.pin_file,
    }


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def spec_token_status(status_list: dict[str, Any], index: int) -> int:
    """Status ``index`` of a JSON Status List, decoded straight from the draft's rules."""
    bits = status_list["bits"]
    data = zlib.decompress(b64url_decode(status_list["lst"]))
    position = index * bits
    return (data[position // 8] >> (position % 8)) & ((1 << bits) - 1)


def spec_bitstring_status(encoded_list: str, index: int) -> int:
    """Bit ``index`` of an ``encodedList`` (1-bit entries), per the W3C expansion algorithm."""
    assert encoded_list.startswith("u")
    data = gzip.decompress(b64url_decode(encoded_list[1:]))
    return (data[index // 8] >> (7 - index % 8)) & 1


def spec_bitstring_length(encoded_list: str) -> int:
    return len(gzip.decompress(b64url_decode(encoded_list[1:]))) * 8


def verify_with_pyjwt(token: str, jwks: dict[str, Any], **options: Any) -> dict[str, Any]:
    """Verify a JWS with PyJWT against the JWKS key its ``kid`` names."""
    header = jwt.get_unverified_header(token)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims: dict[str, Any] = jwt.decode(
        token,
        pyjwk(key).key,
        algorithms=[header["alg"]],
        options={"verify_aud": False, **options},
    )
    return claims


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header_b64, payload_b64, _signature = token.split(".")
    return json.loads(b64url_decode(header_b64)), json.loads(b64url_decode(payload_b64))


def hide_token_objects(tokendir: Path, stash: Path, only: str | None = None) -> None:
    """Make every token in ``tokendir`` (or only the one labelled ``only``) lose its objects
    (keys), as an HSM that lost them would: each ``<uuid>.object`` file (and its lock) moves to
    ``stash``; the token stays."""
    for token in tokendir.iterdir():
        if only is not None and only.encode() not in (token / "token.object").read_bytes():
            continue
        for path in token.iterdir():
            if path.name.startswith("token.") or path.name == "generation":
                continue
            target = stash / token.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)


def restore_token_objects(tokendir: Path, stash: Path) -> None:
    """Put back what :func:`hide_token_objects` moved."""
    for token in stash.iterdir():
        for path in token.iterdir():
            path.rename(tokendir / token.name / path.name)
        token.rmdir()
