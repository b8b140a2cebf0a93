"""Audit-log cryptography: RFC 9162 Merkle trees and Ed25519-signed C2SP checkpoints."""
