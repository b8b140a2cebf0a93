"""SD-JWT VC: issuer, holder and verifier on our JWS encoder, joserfc and hashlib.

RFC 9901 (Selective Disclosure for JWTs) and the IETF SD-JWT VC draft:

* a Disclosure is ``base64url(JSON [salt, claim name, value])`` for an object member and
  ``base64url(JSON [salt, value])`` for an array element; its digest is
  ``base64url(SHA-256(ASCII(disclosure)))``; digests sit in ``_sd`` (objects) or in
  ``{"...": digest}`` (array elements); ``_sd_alg`` is ``sha-256``;
* the issuer hides every claim of the credential subject, recursively: each nested member is
  a Disclosure of its own, so a holder can reveal ``student_status`` without ``current``;
  digests are sorted (the original order is hidden) and decoy digests may be added;
* the SD-JWT is ``<issuer JWT>~<disclosure>~...~`` and a presentation appends a Key-Binding
  JWT (``typ`` ``kb+jwt``; ``iat``, ``aud``, ``nonce``, and ``sd_hash`` = the base64url SHA-256
  of everything before it), signed with the key in the credential's ``cnf.jwk``;
* SD-JWT VC: ``typ`` ``dc+sd-jwt``, ``vct``, ``iss``, ``iat``, ``nbf``/``exp``, ``cnf``,
  ``status``; ``iss``, ``nbf``, ``exp``, ``cnf``, ``vct`` and ``status`` are never
  selectively disclosable.

The verifier enforces what the reference implementation leaves out: ``typ``, ``vct``, expiry
and not-before, the Key-Binding JWT's ``typ`` and ``iat`` window, audience, nonce and
``sd_hash``; and it refuses duplicated disclosures, disclosures no digest references
(which is what a tampered disclosure becomes), repeated digests and overwritten claims.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pavilion.credentials.jws import CompactJws, parse_compact, verify_with_jwk
from pavilion.credentials.report import CheckFailed, CheckName
from pavilion.credentials.templates import CredentialTemplate, by_vct
from pavilion.credentials.timeutil import DEFAULT_LEEWAY, iso, numeric_date
from pavilion.errors import InvalidRequest
from pavilion.jose import b64url, b64url_decode_strict, compact_json, sign_compact
from pavilion.keystore.signer import Signer
from pavilion.parsing import loads_json

SD_JWT_VC_TYP = "dc+sd-jwt"
SD_JWT_VC_MEDIA_TYPE = "application/dc+sd-jwt"
KB_JWT_TYP = "kb+jwt"
SD_ALG = "sha-256"
#: SD-JWT VC: claims that must stay visible (never selectively disclosable).
NEVER_DISCLOSABLE = frozenset({"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status"})
_RESERVED_NAMES = frozenset({"_sd", "...", "_sd_alg"})
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
#: How old a Key-Binding JWT may be when it arrives.
DEFAULT_KB_MAX_AGE = timedelta(minutes=5)


def _salt() -> str:
    """128 bits from the OS CSPRNG (RFC 9901 recommends at least 128)."""
    return b64url(secrets.token_bytes(16))


def digest_of(disclosure: str) -> str:
    """base64url(SHA-256(ASCII(disclosure))): what ``_sd`` and ``...`` hold."""
    return b64url(hashlib.sha256(disclosure.encode("ascii")).digest())


def encode_disclosure(salt: str, name: str | None, value: Any) -> str:
    """A Disclosure: ``[salt, name, value]`` for an object member, ``[salt, value]`` else."""
    return b64url(compact_json([salt, value] if name is None else [salt, name, value]))


def sd_hash(presented: str) -> str:
    """The Key-Binding JWT's ``sd_hash`` over ``<issuer JWT>~<disclosures>~``."""
    return b64url(hashlib.sha256(presented.encode("ascii")).digest())


# -- issuer ------------------------------------------------------------------------------------


class _Hider:
    """Turns claims into digests and Disclosures, recursively."""

    def __init__(self, decoys: int) -> None:
        self.disclosures: list[str] = []
        self._decoys = decoys

    def hide_object(self, claims: Mapping[str, Any]) -> dict[str, Any]:
        digests = []
        for name, value in claims.items():
            if name in _RESERVED_NAMES:
                raise InvalidRequest(f"claim name {name!r} is reserved by SD-JWT", field=name)
            disclosure = encode_disclosure(_salt(), name, self.hide_value(value))
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
                disclosure = encode_disclosure(_salt(), None, self.hide_value(item))
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


# -- parsing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedSdJwt:
    jws: CompactJws
    disclosures: tuple[str, ...]
    #: The Key-Binding JWT, when the token is a presentation.
    kb_jwt: str | None

    @property
    def presented(self) -> str:
        """``<issuer JWT>~<disclosures>~``: the input of ``sd_hash``."""
        return "~".join([self.jws.token, *self.disclosures]) + "~"


def parse(token: object) -> ParsedSdJwt:
    if not isinstance(token, str) or "~" not in token:
        raise CheckFailed(
            CheckName.SCHEMA,
            "malformed_sd_jwt",
            "not an SD-JWT (<issuer JWT>~<disclosures>~[<KB-JWT>])",
        )
    parts = token.split("~")
    jwt, disclosures, last = parts[0], parts[1:-1], parts[-1]
    for disclosure in disclosures:
        if not _B64URL.fullmatch(disclosure):
            raise CheckFailed(
                CheckName.DISCLOSURES,
                "malformed_disclosure",
                "a disclosure is empty or not base64url",
            )
    return ParsedSdJwt(parse_compact(jwt), tuple(disclosures), last or None)


# -- holder -----------------------------------------------------------------------------------


def _decode_disclosure(disclosure: str) -> list[Any]:
    if len(disclosure) % 4 == 1:
        raise CheckFailed(
            CheckName.DISCLOSURES, "malformed_disclosure", "a disclosure is not base64url"
        )
    try:
        value = loads_json(b64url_decode_strict(disclosure).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise CheckFailed(
            CheckName.DISCLOSURES, "malformed_disclosure", "a disclosure is not base64url JSON"
        ) from exc
    if not isinstance(value, list) or len(value) not in (2, 3) or not isinstance(value[0], str):
        raise CheckFailed(
            CheckName.DISCLOSURES,
            "malformed_disclosure",
            "a disclosure must be [salt, name, value] or [salt, value]",
        )
    if len(value) == 3 and (not isinstance(value[1], str) or value[1] in _RESERVED_NAMES):
        raise CheckFailed(
            CheckName.DISCLOSURES,
            "malformed_disclosure",
            "a disclosure's claim name must be a string other than _sd, _sd_alg and ...",
        )
    return value


def _digests_in(value: Any) -> list[str]:
    """Digests referenced directly by this value (its _sd members and ... array elements)."""
    found: list[str] = []
    if isinstance(value, dict):
        found += [d for d in value.get("_sd", []) if isinstance(d, str)]
        for key, inner in value.items():
            if key != "_sd":
                found += _digests_in(inner)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and set(item) == {"..."}:
                found.append(item["..."])
            else:
                found += _digests_in(item)
    return found


def select(sd_jwt: str, reveal: Collection[str] | None = None) -> str:
    """The SD-JWT with only the disclosures of the named top-level claims (all if None).

    A revealed claim brings every disclosure nested inside it.
    """
    parsed = parse(sd_jwt if sd_jwt.endswith("~") else sd_jwt + "~")
    if reveal is None:
        return parsed.presented
    by_digest = {digest_of(d): d for d in parsed.disclosures}
    queue = [
        by_digest[digest]
        for digest in parsed.jws.claims().get("_sd", [])
        if digest in by_digest and _decode_disclosure(by_digest[digest])[1] in reveal
    ]
    wanted: set[str] = set()
    while queue:
        disclosure = queue.pop()
        if disclosure not in wanted:
            wanted.add(disclosure)
            nested = _digests_in(_decode_disclosure(disclosure)[-1])
            queue += [by_digest[d] for d in nested if d in by_digest]
    kept = [d for d in parsed.disclosures if d in wanted]
    return "~".join([parsed.jws.token, *kept]) + "~"


async def present(
    sd_jwt: str,
    *,
    holder: Signer,
    audience: str,
    nonce: str,
    issued_at: datetime,
    reveal: Collection[str] | None = None,
) -> str:
    """A presentation: the chosen disclosures and a Key-Binding JWT for audience and nonce."""
    presented = select(sd_jwt, reveal)
    kb = await sign_compact(
        {"typ": KB_JWT_TYP},
        {
            "iat": int(issued_at.timestamp()),
            "aud": audience,
            "nonce": nonce,
            "sd_hash": sd_hash(presented),
        },
        holder,
    )
    return presented + kb


# -- verifier ---------------------------------------------------------------------------------


def disclose(payload: Mapping[str, Any], disclosures: Sequence[str]) -> dict[str, Any]:
    """Replace digests with the disclosed claims (RFC 9901 "Processing the SD-JWT").

    Raises CheckFailed (``disclosures``) for a duplicated disclosure, a disclosure no digest
    references (a tampered one hashes to a digest nobody signed), a digest that appears twice,
    a disclosed name that overwrites a claim, or a disclosure of the wrong kind for its place.
    """
    alg = payload.get("_sd_alg", SD_ALG)
    if alg != SD_ALG:
        raise CheckFailed(
            CheckName.DISCLOSURES, "unsupported_sd_alg", f"_sd_alg {alg!r} is not supported"
        )
    by_digest: dict[str, list[Any]] = {}
    for disclosure in disclosures:
        digest = digest_of(disclosure)
        if digest in by_digest:
            raise CheckFailed(
                CheckName.DISCLOSURES,
                "duplicate_disclosure",
                "the same disclosure is presented more than once",
            )
        by_digest[digest] = _decode_disclosure(disclosure)
    seen: set[str] = set()
    used: set[str] = set()

    def see(digest: object) -> None:
        if not isinstance(digest, str):
            raise CheckFailed(CheckName.DISCLOSURES, "malformed_digest", "a digest is not a string")
        if digest in seen:
            raise CheckFailed(
                CheckName.DISCLOSURES,
                "duplicate_digest",
                "a digest appears more than once in the credential",
            )
        seen.add(digest)

    def walk(value: Any, depth: int) -> Any:
        if depth > 32:
            raise CheckFailed(CheckName.DISCLOSURES, "too_deep", "disclosures nest too deeply")
        if isinstance(value, dict):
            digests = value.get("_sd", [])
            if not isinstance(digests, list):
                raise CheckFailed(CheckName.DISCLOSURES, "malformed_digest", "_sd is not an array")
            out = {k: walk(v, depth + 1) for k, v in value.items() if k not in ("_sd", "_sd_alg")}
            for digest in digests:
                see(digest)
                decoded = by_digest.get(digest)
                if decoded is None:
                    continue  # a decoy, or a claim the holder chose not to disclose
                if len(decoded) != 3:
                    raise CheckFailed(
                        CheckName.DISCLOSURES,
                        "wrong_disclosure_kind",
                        "an array-element disclosure is referenced from an object",
                    )
                used.add(digest)
                _, name, disclosed = decoded
                if name in out:
                    raise CheckFailed(
                        CheckName.DISCLOSURES,
                        "claim_overwrite",
                        f"a disclosure would overwrite the claim {name!r}",
                    )
                out[name] = walk(disclosed, depth + 1)
            return out
        if isinstance(value, list):
            items = []
            for item in value:
                if isinstance(item, dict) and set(item) == {"..."}:
                    see(item["..."])
                    decoded = by_digest.get(item["..."])
                    if decoded is None:
                        continue
                    if len(decoded) != 2:
                        raise CheckFailed(
                            CheckName.DISCLOSURES,
                            "wrong_disclosure_kind",
                            "an object-member disclosure is referenced from an array",
                        )
                    used.add(item["..."])
                    items.append(walk(decoded[1], depth + 1))
                else:
                    items.append(walk(item, depth + 1))
            return items
        return value

    result = walk(dict(payload), 0)
    unused = set(by_digest) - used
    if unused:
        raise CheckFailed(
            CheckName.DISCLOSURES,
            "unreferenced_disclosure",
            f"{len(unused)} disclosure(s) are not referenced by the issuer-signed JWT "
            "(tampered, or from another credential)",
        )
    for name in NEVER_DISCLOSABLE:
        if name in result and name not in payload:
            raise CheckFailed(
                CheckName.DISCLOSURES,
                "forbidden_disclosure",
                f"{name!r} must not be selectively disclosable",
            )
    assert isinstance(result, dict)
    return result


def check_claims(
    header: Mapping[str, Any], claims: Mapping[str, Any], *, expected_vct: Collection[str] | None
) -> CredentialTemplate | None:
    """SD-JWT VC data model rules on the processed claims; the template ``vct`` names."""
    if header.get("typ") != SD_JWT_VC_TYP:
        raise CheckFailed(
            CheckName.SCHEMA,
            "bad_typ",
            f"typ must be {SD_JWT_VC_TYP!r}, not {header.get('typ')!r}",
        )
    vct = claims.get("vct")
    if not isinstance(vct, str) or not vct:
        raise CheckFailed(CheckName.SCHEMA, "missing_vct", "vct is missing")
    if expected_vct is not None and vct not in expected_vct:
        raise CheckFailed(
            CheckName.SCHEMA, "unexpected_vct", f"vct {vct!r} is not one the verifier accepts"
        )
    if not isinstance(claims.get("iss"), str):
        raise CheckFailed(CheckName.SCHEMA, "missing_iss", "iss is missing")
    cnf = claims.get("cnf")
    if cnf is not None and (not isinstance(cnf, dict) or not isinstance(cnf.get("jwk"), dict)):
        raise CheckFailed(CheckName.SCHEMA, "bad_cnf", "cnf must hold a jwk")
    status = claims.get("status")
    if status is not None and not isinstance(status, dict):
        raise CheckFailed(CheckName.SCHEMA, "bad_status", "status must be an object")
    for name in ("iat", "nbf", "exp"):
        numeric_date(dict(claims), name)
    template = by_vct(vct)
    if template is not None:
        user_claims = {
            k: v for k, v in claims.items() if k in template.sd_jwt_schema.get("properties", {})
        }
        problems = template.sd_jwt_errors(user_claims)
        if problems:
            raise CheckFailed(
                CheckName.SCHEMA,
                "claims_schema",
                f"the disclosed claims do not match {template.id}: {problems[0]}",
            )
    return template


def check_key_binding(
    parsed: ParsedSdJwt,
    claims: Mapping[str, Any],
    *,
    audience: str,
    nonce: str,
    now: datetime,
    max_age: timedelta = DEFAULT_KB_MAX_AGE,
    leeway: timedelta = DEFAULT_LEEWAY,
) -> str:
    """Check the Key-Binding JWT; returns a one-line description of what passed."""
    if parsed.kb_jwt is None:
        raise CheckFailed(
            CheckName.KEY_BINDING, "kb_missing", "the presentation has no Key-Binding JWT"
        )
    cnf = claims.get("cnf")
    holder_jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if not isinstance(holder_jwk, dict):
        raise CheckFailed(
            CheckName.KEY_BINDING, "no_holder_key", "the credential has no cnf.jwk to bind to"
        )
    try:
        kb = parse_compact(parsed.kb_jwt)
        if kb.header.get("typ") != KB_JWT_TYP:
            raise CheckFailed(
                CheckName.KEY_BINDING,
                "kb_typ",
                f"the Key-Binding JWT typ must be {KB_JWT_TYP!r}, not {kb.header.get('typ')!r}",
            )
        verify_with_jwk(kb, holder_jwk, where="holder key (cnf.jwk)")
        kb_claims = kb.claims()
    except CheckFailed as exc:
        raise CheckFailed(
            CheckName.KEY_BINDING, exc.code, f"Key-Binding JWT: {exc.reason}"
        ) from exc
    issued = numeric_date(kb_claims, "iat")
    if issued is None:
        raise CheckFailed(CheckName.KEY_BINDING, "kb_no_iat", "the Key-Binding JWT has no iat")
    if issued > now + leeway:
        raise CheckFailed(
            CheckName.KEY_BINDING,
            "kb_in_future",
            f"the Key-Binding JWT is dated {iso(issued)}, in the future",
        )
    if now - issued > max_age + leeway:
        raise CheckFailed(
            CheckName.KEY_BINDING,
            "kb_too_old",
            f"the Key-Binding JWT was made at {iso(issued)}, more than "
            f"{int(max_age.total_seconds())} s ago",
        )
    if kb_claims.get("aud") != audience:
        raise CheckFailed(
            CheckName.KEY_BINDING,
            "kb_wrong_audience",
            "the Key-Binding JWT is for another audience",
        )
    if kb_claims.get("nonce") != nonce:
        raise CheckFailed(
            CheckName.KEY_BINDING, "kb_wrong_nonce", "the Key-Binding JWT carries another nonce"
        )
    if kb_claims.get("sd_hash") != sd_hash(parsed.presented):
        raise CheckFailed(
            CheckName.KEY_BINDING,
            "kb_sd_hash_mismatch",
            "sd_hash does not match the presented SD-JWT and disclosures",
        )
    return f"holder key bound; audience and nonce match; made at {iso(issued)}"
