"""The SD-JWT holder: choose what to disclose, and bind a presentation to its audience.

A presentation keeps the disclosures of the claims the holder reveals (each with every
disclosure nested inside it) and appends a Key-Binding JWT (``typ`` ``kb+jwt``; ``iat``,
``aud``, ``nonce`` and ``sd_hash``) signed with the key in the credential's ``cnf.jwk``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from pavilion.credentials.sd_jwt.encoding import (
    KB_JWT_TYP,
    decode_disclosure,
    digest_of,
    digests_in,
    parse,
    sd_hash,
)
from pavilion.jose import sign_compact
from pavilion.keystore.signer import Signer


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
        if digest in by_digest and decode_disclosure(by_digest[digest])[1] in reveal
    ]
    wanted: set[str] = set()
    while queue:
        disclosure = queue.pop()
        if disclosure not in wanted:
            wanted.add(disclosure)
            nested = digests_in(decode_disclosure(disclosure)[-1])
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
