"""Tenants, their API tokens and roles, their data keys, and the other ways a caller proves
who it is: a client certificate (``identities.py``) or an OIDC access token (``oidc.py``).

Errors this domain adds to the tree of :mod:`pavilion.errors`, where they live:

    PavilionError
    └── IdentityProviderUnavailable   oidc.py: an OIDC provider's JWKS cannot be fetched   503
"""
