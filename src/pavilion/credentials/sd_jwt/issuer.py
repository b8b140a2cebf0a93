"""The SD-JWT VC issuer: every claim of the credential subject hidden, recursively.

Each nested member is a Disclosure of its own, so a holder can reveal ``student_status``
without ``current``; digests are sorted (the original order is hidden) and decoy digests may be
added. ``iss``, ``nbf``, ``exp``, ``cnf``, ``vct`` and ``status`` stay visible.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pavilion.credentials.sd_jwt.encoding import (
    NEVER_DISCLOSABLE,
    RESERVED_NAMES,
    SD_ALG,
    SD_JWT_VC_TYP,
    digest_of,
    encode_disclosure,
    new_salt,
)
from pavilion.errors import InvalidRequest
from pavilion.jose import b64url, sign_compact
from pavilion.keystore.signer import Signer


class _Hider:
    """Turns claims into digests and Disclosures, recursively."""

    def __init__(self, decoys: int) -> None:
        self.disclosures: list[str] = []
        self._decoys = decoys

    def hide_object(self, claims: Mapping[str, Any]) -> dict[str, Any]:
        digests = []
        for name, value in claims.items():
            if name in RESERVED_NAMES:
                raise InvalidRequest(f"claim name {name!r} is reserved by SD-JWT", field=name)
            disclosure = encode_disclosure(new_salt(), name, self.hide_value(value))
            self.disclosures.append(disclosure)
            digests.append(digest_of(disclosure))
        digests += [
            b64url(hashlib.sha256(secrets.token_bytes(32)).digest()) for _ in range(self._decoys)
        ]
        return {"_sd": sorted(digests)}

    def hide_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return self.hide_object(value)
        if isinstance(value, list):
            out = []
            for item in value:
                disclosure = encode_disclosure(new_salt(), None, self.hide_value(item))
                self.disclosures.append(disclosure)
                out.append({"...": digest_of(disclosure)})
            return out
        return value


@dataclass(frozen=True)
class IssuedSdJwt:
    #: ``<issuer JWT>~<disclosure>~...~`` (what the holder stores).
    token: str
    #: The issuer-signed payload (digests only: what a verifier sees before disclosure).
    payload: dict[str, Any]
    disclosures: tuple[str, ...]


def build_payload(
    *,
    visible: Mapping[str, Any],
    disclosable: Mapping[str, Any],
    decoys: int = 0,
) -> tuple[dict[str, Any], list[str]]:
    """The issuer-signed payload (visible claims + digests) and the Disclosures."""
    for name in disclosable:
        if name in NEVER_DISCLOSABLE:
            raise InvalidRequest(
                f"SD-JWT VC claim {name!r} must not be selectively disclosable", field=name
            )
        if name in visible:
            raise InvalidRequest(f"claim {name!r} is both visible and disclosable", field=name)
    hider = _Hider(decoys)
    hidden = hider.hide_object(disclosable)
    payload = {**visible, **hidden, "_sd_alg": SD_ALG}
    return payload, hider.disclosures


async def issue(
    *,
    signer: Signer,
    issuer: str,
    vct: str,
    claims: Mapping[str, Any],
    issued_at: datetime,
    valid_until: datetime | None,
    not_before: datetime | None = None,
    holder_jwk: Mapping[str, Any] | None = None,
    status: Mapping[str, Any] | None = None,
    extra_visible: Mapping[str, Any] | None = None,
    x5c: Sequence[str] | None = None,
    decoys: int = 0,
) -> IssuedSdJwt:
    """Sign an SD-JWT VC; every member of ``claims`` (recursively) is selectively disclosable.

    ``status`` is the Referenced Token ``status`` claim value (``{"status_list": {...}}``);
    ``extra_visible`` adds always-visible claims (the DP attestation evidence).
    """
    visible: dict[str, Any] = {"iss": issuer, "iat": int(issued_at.timestamp()), "vct": vct}
    visible["nbf"] = int((not_before or issued_at).timestamp())
    if valid_until is not None:
        visible["exp"] = int(valid_until.timestamp())
    if holder_jwk is not None:
        visible["cnf"] = {"jwk": dict(holder_jwk)}
    if status is not None:
        visible["status"] = dict(status)
    for name, value in (extra_visible or {}).items():
        visible.setdefault(name, value)
    payload, disclosures = build_payload(visible=visible, disclosable=claims, decoys=decoys)
    header: dict[str, Any] = {"typ": SD_JWT_VC_TYP}
    if x5c:
        header["x5c"] = list(x5c)
    jwt = await sign_compact(header, payload, signer)
    token = "~".join([jwt, *disclosures]) + "~"
    return IssuedSdJwt(token, payload, tuple(disclosures))
