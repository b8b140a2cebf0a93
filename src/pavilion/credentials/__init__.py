"""Credentials: formats, issuance and verification, keys from the keystore.

Errors the credential domain adds to the tree of :mod:`pavilion.errors`, where they live:

    PavilionError
    ├── StatusListFull              status/allocation.py: every index in use (opens a new list)
    ├── InvalidRequest
    │   ├── DataModelError          data_model.py: breaks a MUST of the VC Data Model 2.0
    │   ├── JsonLdError             jsonld.py: not well-formed JSON-LD for the cached contexts
    │   └── StatusListError         status/allocation.py: a list breaks the status list rules
    ├── Conflict
    │   └── StatusConflict          status/states.py: a status change the state forbids    409
    └── CryptoError
        ├── AnoncredsFailure        anoncreds/engine.py: anoncreds-rs failed                500
        │   └── RegistryFull        anoncreds/engine.py: the revocation registry is full
        └── VerificationFailed
            ├── CheckFailed         report.py: one check of a verification report failed
            ├── PredicateUnsatisfied  anoncreds/engine.py: a false predicate cannot be proved
            └── StatusUnavailable   status/resolver.py: a credential's status is unknowable
"""
