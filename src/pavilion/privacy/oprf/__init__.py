"""RFC 9497 oblivious PRFs (OPRF, VOPRF, POPRF) for the ristretto255-SHA512 suite.

Section numbers below are those of RFC 9497 unless another RFC is named. The group is
ristretto255 on libsodium (:mod:`pavilion.privacy.ristretto`), the hash SHA-512 (§4.1).
Everything is pure and synchronous; libsodium releases the GIL during scalar multiplications.

Wire values are ``bytes``: elements are 32-byte ristretto255 encodings, scalars 32 bytes
little-endian, a proof is ``c || s`` (64 bytes) and an output is 64 bytes. Every element or
scalar that arrives from the other party is deserialized (validated) before use. On the server's
hot path the validation of a blinded element is fused into the scalar multiplication:
libsodium decodes the point (rejecting non-canonical encodings) and rejects an identity
product, which for a non-zero key happens exactly when the point is the identity.

The blind of :meth:`OPRFClient.blind` and the proof nonce ``r`` of the servers' ``blind_evaluate``
are drawn from libsodium's CSPRNG; both can be injected for known-answer tests only.

The package: :mod:`~pavilion.privacy.oprf.suite` (the ciphersuite, its errors and wire values,
key pairs) and :mod:`~pavilion.privacy.oprf.protocol` (the clients and servers, with the DLEQ
proofs); this module re-exports their public API, so callers write ``oprf.VOPRFServer``.
"""

from __future__ import annotations

from pavilion.privacy.oprf.protocol import (
    OPRFClient,
    OPRFServer,
    POPRFClient,
    POPRFServer,
    VOPRFClient,
    VOPRFServer,
)
from pavilion.privacy.oprf.suite import (
    ELEMENT_BYTES,
    IDENTIFIER,
    MAX_BATCH,
    MAX_INPUT_BYTES,
    OUTPUT_BYTES,
    PROOF_BYTES,
    SCALAR_BYTES,
    SEED_BYTES,
    BatchEvaluation,
    Blinded,
    DeriveKeyPairError,
    DeserializeError,
    Evaluation,
    InvalidInput,
    InverseError,
    KeyPair,
    Mode,
    OPRFError,
    POPRFBlinded,
    VerifyError,
    context_string,
    derive_key_pair,
    deserialize_element,
    deserialize_scalar,
    expand_message_xmd,
    generate_key_pair,
)

__all__ = [
    "ELEMENT_BYTES",
    "IDENTIFIER",
    "MAX_BATCH",
    "MAX_INPUT_BYTES",
    "OUTPUT_BYTES",
    "PROOF_BYTES",
    "SCALAR_BYTES",
    "SEED_BYTES",
    "BatchEvaluation",
    "Blinded",
    "DeriveKeyPairError",
    "DeserializeError",
    "Evaluation",
    "InvalidInput",
    "InverseError",
    "KeyPair",
    "Mode",
    "OPRFClient",
    "OPRFError",
    "OPRFServer",
    "POPRFBlinded",
    "POPRFClient",
    "POPRFServer",
    "VOPRFClient",
    "VOPRFServer",
    "VerifyError",
    "context_string",
    "derive_key_pair",
    "deserialize_element",
    "deserialize_scalar",
    "expand_message_xmd",
    "generate_key_pair",
]
