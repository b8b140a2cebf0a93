"""W3C Verifiable Credential Data Integrity: ``eddsa-rdfc-2022`` and ``ecdsa-rdfc-2019``.

``canon`` canonicalises JSON-LD with RDFC-1.0 (pyld, cached contexts, never the network);
``multikey`` encodes and decodes Multikey public keys and base58btc proof values; ``did``
resolves verification methods (did:key, did:web through an injectable fetcher, and known
controller documents); ``proofs`` adds and verifies proofs, signing through a ``Signer``.
"""
