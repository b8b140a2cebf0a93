"""Privacy primitives: RFC 9497 oblivious PRFs over ristretto255 (libsodium)."""
