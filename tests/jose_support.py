"""PyJWT with Ed25519 under RFC 9864's fully specified name ``Ed25519``.

PyJWT (2.15) knows Ed25519 only as ``EdDSA``: its ``PyJWK`` refuses a JWK with ``"alg":
"Ed25519"`` and ``jwt.decode`` a header with it. The connector signs and publishes Ed25519 keys
under the new name, so the tests that check it with PyJWT (an independent implementation) map
the name; importing this module also registers ``Ed25519`` with PyJWT's default decoder, backed
by PyJWT's own OKP (EdDSA) algorithm.
"""

from __future__ import annotations

import contextlib
from typing import Any

import jwt
from jwt.algorithms import Algorithm, OKPAlgorithm

with contextlib.suppress(ValueError):  # already registered (imported under another name)
    jwt.register_algorithm("Ed25519", OKPAlgorithm())


def pyjwt_name(alg: str) -> str:
    """PyJWT's name of a JWS algorithm: ``EdDSA`` for ``Ed25519``."""
    return "EdDSA" if alg == "Ed25519" else alg


def pyjwk(jwk: dict[str, Any]) -> jwt.PyJWK:
    """A PyJWT key from a public JWK, whichever name its ``alg`` gives Ed25519."""
    alg = jwk.get("alg")
    return jwt.PyJWK(jwk, algorithm=pyjwt_name(alg) if isinstance(alg, str) else None)


def pyjwt_algorithm(alg: str) -> Algorithm:
    return jwt.get_algorithm_by_name(pyjwt_name(alg))
