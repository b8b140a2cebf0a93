"""The SD-JWT VC verifier: disclosures processed, then the claims and the Key-Binding JWT.

It enforces what the reference implementation leaves out: ``typ``, ``vct``, expiry and
not-before, the Key-Binding JWT's ``typ`` and ``iat`` window, audience, nonce and ``sd_hash``;
and it refuses duplicated disclosures, disclosures no digest references (which is what a
tampered disclosure becomes), repeated digests and overwritten claims.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pavilion.credentials.jws import parse_compact, verify_with_jwk
from pavilion.credentials.report import CheckFailed, CheckName
from pavilion.credentials.sd_jwt.encoding import (
    DEFAULT_KB_MAX_AGE,
    KB_JWT_TYP,
    NEVER_DISCLOSABLE,
    SD_ALG,
    SD_JWT_VC_TYP,
    ParsedSdJwt,
    decode_disclosure,
    digest_of,
    sd_hash,
)
from pavilion.credentials.templates import CredentialTemplate, by_vct
from pavilion.credentials.timeutil import DEFAULT_LEEWAY, iso, numeric_date


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
        by_digest[digest] = decode_disclosure(disclosure)
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
