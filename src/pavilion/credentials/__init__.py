"""Credentials: formats, issuance and verification, keys from the keystore."""
