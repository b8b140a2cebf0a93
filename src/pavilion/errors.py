"""The one exception tree of the connector.

Every error a domain raises derives from :class:`PavilionError`. The HTTP layer maps the tree
to RFC 9457 problem+json in exactly one place (``pavilion.api.problems``); the CLI prints the
``detail``. Domains never raise HTTP exceptions.

    PavilionError
    ├── ConfigurationError          settings that cannot start the service
    ├── ServerStartFailed           a server that cannot bind its address or start
    ├── InvalidRequest              a request that breaks a rule (names the field)     422
    │   ├── PayloadTooLarge         a body over the configured limit                  413
    │   ├── BadRequest              a request the protocol defines no answer for      400
    │   └── StorageRefusedValue     a value the database cannot hold (out of range)   422
    ├── AuthenticationFailed        no or unknown credentials                          401
    ├── PermissionDenied            a role or tenant that may not do this              403
    ├── NotFound                    an unknown tenant, provider, proof, ...            404
    ├── Conflict                    state that forbids the write (idempotency reuse)   409
    ├── PolicyDenied                policy (residency, purpose) forbids the request    403
    ├── ProviderError               the data provider failed us
    │   ├── ProviderUnavailable     unreachable, timed out, 5xx after retries          503
    │   └── ProviderBadResponse     an answer that breaks the DP's declared schema     502
    ├── CryptoError                 keystore, signature or proof failures               500
    │   ├── KeystoreUnavailable     the keys cannot be used right now (HSM down): retry 503
    │   └── VerificationFailed      a signature, proof or checkpoint that fails        422
    └── StorageError                the database failed (logged with its cause)        500
        └── StorageUnavailable      unreachable, or busy past its timeout: retry      503

Each domain draws the errors it adds, under the class above that they extend, where they
live (``tests/unit/core/test_core_error_tree.py`` holds every drawing to the code):

    connect       pavilion/connect/errors.py
    credentials   pavilion/credentials/__init__.py
    dpagent       pavilion/dpagent/__init__.py
    ingest        pavilion/ingest/errors.py
    keystore      pavilion/keystore/__init__.py
    privacy       pavilion/privacy/errors.py
    tenancy       pavilion/tenancy/__init__.py

Internal signals, outside the tree: raised and caught inside one module, never let out.

    NormaliseError              pavilion/ingest/normalisers.py    a value with no canonical form
    DuplicateIdentifierError    pavilion/dpagent/records.py       becomes a RecordLoadError
    OAuthError                  pavilion/dpagent/token_server.py  becomes an RFC 6749 error body
    MultibaseError              pavilion/credentials/data_integrity/multikey.py
                                    a bad Multikey or proofValue: becomes a CheckFailed
    CanonicalizationError       pavilion/credentials/data_integrity/canon.py
                                    pyld failed: becomes a CheckFailed or an InvalidRequest
    StaleHead                   pavilion/audit/journal.py
                                    another worker appended: the head is read again

Parse errors that subclass the parsers' own (``json.JSONDecodeError``, ``yaml.YAMLError``), so
that every caller answering malformed input answers these alike:

    NestingTooDeep              pavilion/parsing.py               JSON nested past the limit
    YamlNestingTooDeep          pavilion/parsing.py               YAML nested past the limit
    YamlExpansionRefused        pavilion/parsing.py               YAML aliases past the node limit

Lower-layer errors enter the tree ``from`` the original: SQLAlchemy's by SQLSTATE class and
one table in ``store/database.py`` (a refused value 422, an unreachable or busy database 503,
anything else 500; an integrity error passes through to the caller that answers the race, and
one no caller answers is a 409 at the HTTP edge), anoncreds-rs's by one table in
``credentials/anoncreds/engine.py``, httpx's at the one call site of each HTTP client (the DP
client, its token fetcher, the remote status resolver, the OPRF client, the agent's roster
push); PKCS#11's, for now, at each operation of the keystore's PKCS#11 worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

#: Every RFC 9457 problem ``type`` the connector and its DP agents answer is this base plus the
#: error's ``code`` (one scheme for both processes).
PROBLEM_TYPE_BASE: Final = "https://pavilion.example/problems/"


class PavilionError(Exception):
    """Root of every error the connector raises on purpose."""

    #: Short, stable machine-readable slug; becomes the problem ``type`` suffix.
    code: str = "internal"
    #: Human title of the problem class (RFC 9457 ``title``).
    title: str = "Internal error"

    def __init__(self, detail: str, *, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: dict[str, Any] = dict(extra or {})


class ConfigurationError(PavilionError):
    code = "configuration"
    title = "Invalid configuration"


class ServerStartFailed(PavilionError):
    code = "server-start-failed"
    title = "Server did not start"


class InvalidRequest(PavilionError):
    code = "invalid-request"
    title = "Invalid request"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail, extra=extra)
        self.field = field
        self.errors: list[dict[str, Any]] = (
            [dict(e) for e in errors]
            if errors
            else ([{"field": field, "message": detail}] if field else [])
        )


class PayloadTooLarge(InvalidRequest):
    code = "payload-too-large"
    title = "Payload too large"


class BadRequest(InvalidRequest):
    """A request the standard behind the endpoint defines no answer for (RFC 9162 has no
    consistency proof from the empty tree); 400 rather than 422, as the standard says."""

    code = "bad-request"
    title = "Bad request"


class AuthenticationFailed(PavilionError):
    code = "unauthenticated"
    title = "Authentication required"


class PermissionDenied(PavilionError):
    code = "forbidden"
    title = "Permission denied"


class NotFound(PavilionError):
    code = "not-found"
    title = "Not found"


class Conflict(PavilionError):
    code = "conflict"
    title = "Conflict"


class PolicyDenied(PavilionError):
    code = "policy-denied"
    title = "Denied by policy"


class ProviderError(PavilionError):
    code = "provider-error"
    title = "Data provider error"


class ProviderUnavailable(ProviderError):
    code = "provider-unavailable"
    title = "Data provider unavailable"

    def __init__(
        self, detail: str, *, retry_after_s: int = 5, extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(detail, extra=extra)
        self.retry_after_s = retry_after_s


class ProviderBadResponse(ProviderError):
    code = "provider-bad-response"
    title = "Data provider sent an invalid answer"


class CryptoError(PavilionError):
    code = "crypto"
    title = "Cryptographic operation failed"


class KeystoreUnavailable(CryptoError):
    """The keystore cannot sign (or unwrap) right now: the HSM, its session or its keys are
    unreachable. Transient: the keystore reconnects on its own; the client retries."""

    code = "keystore-unavailable"
    title = "Keystore unavailable"
    retry_after_s: int = 5

    def __init__(
        self,
        detail: str,
        *,
        retry_after_s: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail, extra=extra)
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s


class VerificationFailed(CryptoError):
    code = "verification-failed"
    title = "Verification failed"


class StorageRefusedValue(InvalidRequest):
    code = "invalid-value"
    title = "Value refused by storage"


class StorageError(PavilionError):
    code = "storage"
    title = "Storage failure"


class StorageUnavailable(StorageError):
    code = "storage-unavailable"
    title = "Storage unavailable"

    def __init__(
        self, detail: str, *, retry_after_s: int = 2, extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(detail, extra=extra)
        self.retry_after_s = retry_after_s
