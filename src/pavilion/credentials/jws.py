"""JWS compact serialisation (RFC 7515 section 7.1) over any Signer.

The signature comes from the Signer (software key or HSM); this module only encodes. It is
checked against joserfc and PyJWT in the tests.
"""

from __future__ import annotations

import json
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from pavilion.errors import VerificationFailed
from pavilion.keystore.signer import Signer, b64url


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


async def sign_compact(header: dict[str, Any], payload: dict[str, Any], signer: Signer) -> str:
    protected = {**header, "alg": signer.algorithm, "kid": signer.key_id}
    signing_input = f"{b64url(_json(protected))}.{b64url(_json(payload))}"
    signature = await signer.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url(signature)}"


ALLOWED_ALGORITHMS = ("ES256", "EdDSA")


def verify_compact(token: str, jwks: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify with joserfc against a JWKS; only asymmetric algorithms we issue are accepted."""
    try:
        key_set = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        result = jws.deserialize_compact(token, key_set, algorithms=list(ALLOWED_ALGORITHMS))
        payload = json.loads(result.payload)
    except (JoseError, ValueError) as exc:
        raise VerificationFailed(f"credential signature does not verify: {exc}") from exc
    if not isinstance(payload, dict):
        raise VerificationFailed("credential payload is not a JSON object")
    return dict(result.protected), payload
