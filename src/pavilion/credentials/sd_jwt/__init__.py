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

The package, one role per module: ``encoding`` (disclosures, digests, ``sd_hash``, parsing),
``issuer``, ``holder`` and ``verifier``; this module re-exports their public API, so callers
write ``sd_jwt.issue``, ``sd_jwt.present`` or ``sd_jwt.disclose``.
"""

from __future__ import annotations

from pavilion.credentials.sd_jwt.encoding import (
    DEFAULT_KB_MAX_AGE,
    KB_JWT_TYP,
    NEVER_DISCLOSABLE,
    SD_ALG,
    SD_JWT_VC_MEDIA_TYPE,
    SD_JWT_VC_TYP,
    ParsedSdJwt,
    digest_of,
    encode_disclosure,
    parse,
    sd_hash,
)
from pavilion.credentials.sd_jwt.holder import (
    present,
    select,
)
from pavilion.credentials.sd_jwt.issuer import (
    IssuedSdJwt,
    build_payload,
    issue,
)
from pavilion.credentials.sd_jwt.verifier import (
    check_claims,
    check_key_binding,
    disclose,
)

__all__ = [
    "DEFAULT_KB_MAX_AGE",
    "KB_JWT_TYP",
    "NEVER_DISCLOSABLE",
    "SD_ALG",
    "SD_JWT_VC_MEDIA_TYPE",
    "SD_JWT_VC_TYP",
    "IssuedSdJwt",
    "ParsedSdJwt",
    "build_payload",
    "check_claims",
    "check_key_binding",
    "digest_of",
    "disclose",
    "encode_disclosure",
    "issue",
    "parse",
    "present",
    "sd_hash",
    "select",
]
