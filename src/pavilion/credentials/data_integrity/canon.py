"""RDF Dataset Canonicalization (RDFC-1.0) of a JSON-LD document, through pyld, offline.

pyld's ``URDNA2015`` is the algorithm RDFC-1.0 standardised (same output; RDFC-1.0 only
renamed it and bounded its work). Contexts come from the local cache
(:func:`pavilion.credentials.jsonld.cached_context`) through a document loader that never
fetches: an unknown context URL is an error that names it. A document that expands to
nothing, or that drops terms on the way (an undefined term is silently dropped by JSON-LD
expansion), is refused first by :func:`pavilion.credentials.jsonld.check_document`, so that a
signature never covers less than the document shows.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from pyld import jsonld as pyld_jsonld

from pavilion.credentials import jsonld

#: N-Quads, as the cryptosuites hash them.
_OPTIONS: Final = {"algorithm": "URDNA2015", "format": "application/n-quads"}


class CanonicalizationError(ValueError):
    """pyld could not canonicalise the document (internal: callers translate it)."""


def _load(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld's document loader over the local cache: never the network."""
    try:
        context = jsonld.cached_context(url)
    except jsonld.JsonLdError as exc:
        raise pyld_jsonld.JsonLdError(
            exc.detail, "jsonld.LoadDocumentError", code="loading document failed"
        ) from exc
    return {
        "contextUrl": None,
        "documentUrl": url,
        "document": {"@context": copy.deepcopy(context)},
    }


def canonicalize(document: dict[str, Any]) -> str:
    """The canonical N-Quads of a JSON-LD document (RDFC-1.0), using cached contexts only."""
    options = {**_OPTIONS, "documentLoader": _load}
    try:
        result = pyld_jsonld.normalize(document, options)
    except pyld_jsonld.JsonLdError as exc:
        raise CanonicalizationError(_reason(exc)) from exc
    if not isinstance(result, str):  # pragma: no cover - the n-quads format returns text
        raise CanonicalizationError("canonicalisation did not produce N-Quads")
    return result


def _reason(exc: BaseException) -> str:
    """The innermost message of a pyld error chain (its outer messages are generic)."""
    message = str(exc.args[0]) if exc.args else type(exc).__name__
    details = getattr(exc, "details", None)
    cause = details.get("cause") if isinstance(details, dict) else exc.__cause__
    if isinstance(cause, BaseException):
        return f"{message}: {_reason(cause)}"
    return message
