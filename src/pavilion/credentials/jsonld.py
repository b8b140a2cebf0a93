"""A minimal JSON-LD well-formedness check against a local context cache (never the network).

This is not a JSON-LD processor: it does not expand or canonicalise. It answers one question a
VC Data Model 2.0 verifier must ask: is every property and type in the document defined by the
contexts the document names, and does it name only contexts we hold? It follows the JSON-LD
1.1 context rules that matter for that answer:

* ``@context`` entries are URLs of cached documents or inline context objects (an inline
  context needs no network; ``@import`` in one is refused because it would fetch);
* term definitions merge in order; a ``@protected`` term may not be redefined differently,
  except by a property-scoped context;
* type-scoped contexts (``VerifiableCredential``'s ``@context``) apply to the node that has the
  type and do not propagate into nested nodes; property-scoped contexts do propagate;
* ``@context: null`` in a scoped context (``verifiableCredential`` in a presentation) clears
  the active context, so a nested credential must carry its own ``@context``;
* a key is defined when it is a keyword, a term, an absolute IRI or a compact IRI, or when an
  active ``@vocab`` covers it (as the ``undefined-terms/v2`` context does on purpose);
* values of ``@type: @json`` terms are opaque.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from pavilion.errors import InvalidRequest

VC_V2 = "https://www.w3.org/ns/credentials/v2"
VC_V1 = "https://www.w3.org/2018/credentials/v1"
UNDEFINED_TERMS_V2 = "https://www.w3.org/ns/credentials/undefined-terms/v2"
PAVILION_ELIGIBILITY_V1 = "https://pavilion.example/contexts/eligibility/v1"
EXAMPLES_V2 = "https://www.w3.org/ns/credentials/examples/v2"
DATA_INTEGRITY_V2 = "https://w3id.org/security/data-integrity/v2"

#: Context URL -> file in ``pavilion/credentials/contexts`` (see the README there).
CONTEXT_FILES = {
    VC_V2: "credentials-v2.json",
    VC_V1: "credentials-v1.json",
    UNDEFINED_TERMS_V2: "undefined-terms-v2.json",
    PAVILION_ELIGIBILITY_V1: "pavilion-eligibility-v1.json",
    EXAMPLES_V2: "credentials-examples-v2.json",
    DATA_INTEGRITY_V2: "data-integrity-v2.json",
}

_KEYWORDS = frozenset(
    {
        "@context",
        "@id",
        "@type",
        "@value",
        "@language",
        "@direction",
        "@list",
        "@set",
        "@graph",
        "@included",
        "@index",
        "@reverse",
        "@nest",
        "@json",
    }
)
_ABSOLUTE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$")
_MAX_DEPTH = 32
_MAX_CONTEXTS = 8


class JsonLdError(InvalidRequest):
    """The document is not well-formed JSON-LD against the cached contexts."""

    code = "malformed-json-ld"
    title = "Malformed JSON-LD"


_documents: dict[str, Any] = {}


def cached_context(url: str) -> Any:
    """The ``@context`` value of a cached context document, or JsonLdError for any other URL."""
    if url not in _documents:
        name = CONTEXT_FILES.get(url)
        if name is None:
            raise JsonLdError(
                f"context {url!r} is not in the local cache (known: {', '.join(CONTEXT_FILES)}); "
                "contexts are never fetched",
                field="@context",
            )
        text = resources.files("pavilion.credentials").joinpath("contexts", name).read_text("utf-8")
        document = json.loads(text)["@context"]
        _remember_objects(document)
        _documents[url] = document
    return _documents[url]


#: ids of the objects inside cached context documents: they live as long as the process, so
#: their identity is a safe memo key; an inline context from a request is keyed by content.
_cached_objects: set[int] = set()


def _remember_objects(value: Any) -> None:
    if isinstance(value, dict):
        _cached_objects.add(id(value))
        for item in value.values():
            _remember_objects(item)
    elif isinstance(value, list):
        _cached_objects.add(id(value))
        for item in value:
            _remember_objects(item)


def _content_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


@dataclass(frozen=True)
class _Term:
    iri: str | None
    type: str | None = None
    container: tuple[str, ...] = ()
    scoped: Any = None
    has_scoped: bool = False
    protected: bool = False

    def same_definition(self, other: _Term) -> bool:
        return (self.iri, self.type, self.container, json.dumps(self.scoped, sort_keys=True)) == (
            other.iri,
            other.type,
            other.container,
            json.dumps(other.scoped, sort_keys=True),
        )


@dataclass(frozen=True)
class _Context:
    terms: dict[str, _Term] = field(default_factory=dict)
    vocab: str | None = None
    #: Identifies the sequence of contexts that built this one (memoisation key).
    key: tuple[Any, ...] = ()
    #: Terms that alias a keyword (``type`` -> ``@type``), precomputed for the hot path.
    aliases: dict[str, str] = field(default_factory=dict)

    def defines(self, name: str) -> bool:
        term = self.terms.get(name)
        if term is not None:
            return term.iri is not None
        if _ABSOLUTE_IRI.match(name):
            return True
        return self.vocab is not None


_EMPTY = _Context()
_memo: dict[tuple[Any, ...], _Context] = {}


def _identity(local: Any) -> Any:
    """A stable memo key: URLs by value; scoped contexts (parts of cached documents) by id;
    inline contexts (parts of a request) by content."""
    if isinstance(local, str) or local is None:
        return local
    if isinstance(local, list) and all(isinstance(item, str) for item in local):
        return tuple(local)
    if id(local) in _cached_objects:
        return id(local)
    return ("inline", _content_key(local))


def _process(active: _Context, local: Any, *, override_protected: bool, where: str) -> _Context:
    key = (active.key, _identity(local), override_protected)
    hit = _memo.get(key)
    if hit is not None:
        return hit
    result = _process_uncached(active, local, override_protected=override_protected, where=where)
    aliases = {
        name: term.iri
        for name, term in result.terms.items()
        if term.iri is not None and term.iri.startswith("@")
    }
    result = _Context(result.terms, result.vocab, key, aliases)
    if len(_memo) > 4096:
        _memo.clear()
    _memo[key] = result
    return result


def _process_uncached(
    active: _Context, local: Any, *, override_protected: bool, where: str
) -> _Context:
    items = local if isinstance(local, list) else [local]
    context = active
    for item in items:
        if item is None:
            if not override_protected and any(t.protected for t in context.terms.values()):
                raise JsonLdError(f"{where}: cannot clear a context with protected terms")
            context = _EMPTY
        elif isinstance(item, str):
            context = _process(
                context, cached_context(item), override_protected=override_protected, where=where
            )
        elif isinstance(item, dict):
            context = _define(context, item, override_protected=override_protected, where=where)
        else:
            raise JsonLdError(f"{where}: a context must be a URL, an object or null")
    return context


def _define(
    active: _Context, local: dict[str, Any], *, override_protected: bool, where: str
) -> _Context:
    if "@import" in local:
        raise JsonLdError(f"{where}: @import is not supported (it would fetch a document)")
    terms = dict(active.terms)
    vocab = active.vocab
    if "@vocab" in local:
        vocab = local["@vocab"] if isinstance(local["@vocab"], str) else None
    protected_default = bool(local.get("@protected", False))
    raw = {
        name: _term(name, value, protected_default)
        for name, value in local.items()
        if not name.startswith("@")
    }
    prefixes = {**terms, **raw}
    for name, unexpanded in raw.items():
        term = replace(
            unexpanded,
            iri=_expand(unexpanded.iri, prefixes),
            type=_expand(unexpanded.type, prefixes),
        )
        existing = terms.get(name)
        if (
            existing is not None
            and existing.protected
            and not override_protected
            and not existing.same_definition(term)
        ):
            raise JsonLdError(
                f"{where}: the protected term {name!r} may not be redefined", field="@context"
            )
        terms[name] = term
    return _Context(terms, vocab)


def _expand(iri: str | None, terms: dict[str, _Term]) -> str | None:
    """Expand a compact IRI (``sec:proof``) whose prefix is a term of the context."""
    if iri is None or iri.startswith("@") or ":" not in iri:
        return iri
    prefix, suffix = iri.split(":", 1)
    if suffix.startswith("//"):
        return iri
    term = terms.get(prefix)
    if term is not None and term.iri is not None and term.iri != iri:
        return term.iri + suffix
    return iri


def _term(name: str, value: Any, protected_default: bool) -> _Term:
    if value is None:
        return _Term(iri=None, protected=protected_default)
    if isinstance(value, str):
        return _Term(iri=value, protected=protected_default)
    if not isinstance(value, dict):
        raise JsonLdError(f"the definition of term {name!r} is not a string or an object")
    iri = value.get("@id", name if ":" in name else None)
    if iri is None and "@reverse" in value:
        iri = value["@reverse"]
    container = value.get("@container", ())
    return _Term(
        iri=iri if isinstance(iri, str) else None,
        type=value.get("@type") if isinstance(value.get("@type"), str) else None,
        container=tuple(container) if isinstance(container, list) else (container,),
        scoped=value.get("@context"),
        has_scoped="@context" in value,
        protected=bool(value.get("@protected", protected_default)),
    )


def _keyword_alias(context: _Context, key: str) -> str | None:
    if key[:1] == "@":
        return key
    return context.aliases.get(key)


def check_document(document: dict[str, Any], *, where: str = "credential") -> None:
    """Raise JsonLdError naming the first undefined term, unknown context or bad context."""
    if "@context" not in document:
        raise JsonLdError(f"{where}: @context is missing", field=f"{where}.@context")
    contexts = document["@context"]
    urls = contexts if isinstance(contexts, list) else [contexts]
    if len(urls) > _MAX_CONTEXTS:
        raise JsonLdError(f"{where}: more than {_MAX_CONTEXTS} contexts", field=f"{where}.@context")
    for index, url in enumerate(urls):
        if not isinstance(url, str | dict):
            raise JsonLdError(
                f"{where}: @context[{index}] must be a URL or an inline context object",
                field=f"{where}.@context",
            )
    shape = _shape(document, 0)
    if shape in _valid_shapes:
        return
    _check_node(document, _EMPTY, where, 0)
    if len(_valid_shapes) > 4096:
        _valid_shapes.clear()
    _valid_shapes.add(shape)


#: Shapes of documents that passed: credentials of one template differ only in values.
_valid_shapes: set[Any] = set()
#: Keys whose values decide well-formedness (contexts and types); every other value only
#: matters through its own keys. The cached contexts alias ``@type`` as ``type`` only.
_SHAPE_VALUES = frozenset({"@context", "type", "@type"})


def _shape(value: Any, depth: int) -> Any:
    """What the check depends on: keys, nesting, contexts and types; not the other values."""
    if depth > _MAX_DEPTH:
        return ("deep", id(value))  # never cached in practice: the full check refuses it
    if isinstance(value, dict):
        if "@value" in value:
            return "@value"
        return tuple(
            (key, _literal(item) if key in _SHAPE_VALUES else _shape(item, depth + 1))
            for key, item in value.items()
        )
    if isinstance(value, list):
        return tuple(_shape(item, depth + 1) for item in value)
    return None


def _literal(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_literal(item) for item in value)
    if isinstance(value, dict):
        return ("object", _content_key(value))  # an inline context, by content
    return value


def _check_node(node: dict[str, Any], inherited: _Context, path: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise JsonLdError(f"{path}: nested deeper than {_MAX_DEPTH} levels", field=path)
    active = inherited
    if "@context" in node:
        local = node["@context"]
        for entry in local if isinstance(local, list) else [local]:
            if not isinstance(entry, str | dict) and entry is not None:
                raise JsonLdError(
                    f"{path}: a context must be a URL, an object or null",
                    field=f"{path}.@context",
                )
        active = _process(active, local, override_protected=False, where=path)
    # Type-scoped contexts: for this node's properties only (they do not propagate).
    node_context = active
    for key, value in node.items():
        if _keyword_alias(active, key) == "@type":
            for name in sorted(v for v in _as_list(value) if isinstance(v, str)):
                term = active.terms.get(name)
                if term is not None and term.has_scoped:
                    node_context = _process(
                        node_context, term.scoped, override_protected=False, where=path
                    )
    for key, value in node.items():
        if key == "@context":
            continue
        where = f"{path}.{key}"
        keyword = _keyword_alias(node_context, key)
        if keyword is not None:
            if keyword not in _KEYWORDS:
                raise JsonLdError(f"{where}: {key!r} is not a JSON-LD keyword", field=where)
            if keyword == "@type":
                for name in _as_list(value):
                    if not isinstance(name, str) or not node_context.defines(name):
                        raise JsonLdError(
                            f"{where}: type {name!r} is not defined by the credential's contexts",
                            field=where,
                        )
            elif keyword in ("@graph", "@included", "@list", "@set"):
                _check_value(value, active, where, depth + 1)
            continue
        if not node_context.defines(key):
            raise JsonLdError(
                f"{where}: term {key!r} is not defined by the credential's contexts", field=where
            )
        term = node_context.terms.get(key)
        if term is not None and term.type == "@json":
            continue
        child = active
        if term is not None and term.has_scoped:
            child = _process(active, term.scoped, override_protected=True, where=where)
        if term is not None and "@language" in term.container:
            continue
        _check_value(value, child, where, depth + 1)


def _check_value(value: Any, context: _Context, path: str, depth: int) -> None:
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(item, context, f"{path}[{index}]", depth)
    elif isinstance(value, dict):
        if "@value" in value:
            return
        _check_node(value, context, path, depth)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
