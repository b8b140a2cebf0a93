"""Verification methods of Data Integrity proofs: did:key, did:web and known controllers.

* ``did:key`` (W3C CCG did:key 0.7): the DID is the key; ``did:key:<mb>#<mb>`` is its one
  verification method, for every relationship. The fragment must repeat the key.
* ``did:web`` (W3C CCG did:web): ``did:web:host%3Aport:path`` is the document at
  ``https://host:port/path/did.json`` (``/.well-known/did.json`` without a path), fetched by
  an injectable fetcher (:class:`~pavilion.credentials.data_integrity.did_web.HttpDidWebFetcher`
  in production, on loopback in tests).
  The document's ``id`` must be the DID; the method must be listed (by reference or
  embedded) under the relationship the proof claims (``assertionMethod`` for credentials).
* Any other URL: a controller document handed to the resolver (the connector's own issuer
  id, whose keys are the keystore's credential-signing keys; test vectors' controllers).

Methods of type ``Multikey`` and ``Ed25519VerificationKey2020`` (``publicKeyMultibase``) and
``JsonWebKey``/``JsonWebKey2020`` (``publicKeyJwk``) are understood. Every failure is a
:class:`~pavilion.credentials.report.CheckFailed` of the ``signature`` check with a reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

from pavilion.credentials.data_integrity.multikey import (
    MultibaseError,
    PublicKey,
    decode_public_key,
    public_key_from_jwk,
)
from pavilion.credentials.report import CheckFailed, CheckName

#: An async fetch of a did:web document: the https URL in, the parsed JSON out.
DidWebFetcher = Callable[[str], Awaitable[Any]]

RELATIONSHIPS: Final = (
    "assertionMethod",
    "authentication",
    "capabilityInvocation",
    "capabilityDelegation",
)
_MULTIBASE_TYPES: Final = frozenset({"Multikey", "Ed25519VerificationKey2020"})
_JWK_TYPES: Final = frozenset({"JsonWebKey", "JsonWebKey2020"})


@dataclass(frozen=True)
class VerificationMethod:
    """A resolved verification method: its key, its controller and what it may be used for."""

    id: str
    controller: str
    key: PublicKey
    relationships: frozenset[str]


def _fail(code: str, reason: str) -> CheckFailed:
    return CheckFailed(CheckName.SIGNATURE, code, reason)


def did_web_url(did: str) -> str:
    """The https URL of a did:web DID's document (did:web method specification, 3.2)."""
    parts = did.split(":")
    if len(parts) < 3 or parts[:2] != ["did", "web"] or not parts[2]:
        raise _fail("bad_did", f"{did!r} is not a did:web DID")
    host = unquote(parts[2])
    if "/" in host or "@" in host:
        raise _fail("bad_did", f"{did!r} has an invalid host")
    path = "/".join(unquote(p) for p in parts[3:])
    return f"https://{host}/{path}/did.json" if path else f"https://{host}/.well-known/did.json"


def controller_methods(document: Mapping[str, Any]) -> list[VerificationMethod]:
    """Every verification method of a controller (DID) document, with its relationships."""
    controller_id = document.get("id")
    if not isinstance(controller_id, str):
        raise _fail("bad_controller_document", "the controller document has no id")
    declared: dict[str, Mapping[str, Any]] = {}
    listed: dict[str, set[str]] = {}

    def absolute(ref: str) -> str:
        return controller_id + ref if ref.startswith("#") else ref

    for method in _as_list(document.get("verificationMethod")):
        if isinstance(method, dict) and isinstance(method.get("id"), str):
            declared[absolute(method["id"])] = method
    for relationship in RELATIONSHIPS:
        for entry in _as_list(document.get(relationship)):
            if isinstance(entry, str):
                listed.setdefault(absolute(entry), set()).add(relationship)
            elif isinstance(entry, dict) and isinstance(entry.get("id"), str):
                declared.setdefault(absolute(entry["id"]), entry)
                listed.setdefault(absolute(entry["id"]), set()).add(relationship)
    return [
        VerificationMethod(
            id=method_id,
            controller=str(method.get("controller", controller_id)),
            key=_method_key(method, method_id),
            relationships=frozenset(listed.get(method_id, ())),
        )
        for method_id, method in declared.items()
    ]


def _method_key(method: Mapping[str, Any], method_id: str) -> PublicKey:
    kind = method.get("type")
    try:
        if kind in _MULTIBASE_TYPES and "publicKeyMultibase" in method:
            return decode_public_key(method["publicKeyMultibase"])
        if kind in _JWK_TYPES and isinstance(method.get("publicKeyJwk"), dict):
            if "d" in method["publicKeyJwk"]:
                raise MultibaseError("publicKeyJwk holds a private key")
            return public_key_from_jwk(method["publicKeyJwk"])
    except (MultibaseError, KeyError, ValueError) as exc:
        raise _fail("bad_verification_method", f"{method_id}: {exc}") from exc
    raise _fail(
        "bad_verification_method",
        f"{method_id}: type {kind!r} is not Multikey, Ed25519VerificationKey2020 or JsonWebKey",
    )


def did_key_method(url: str) -> VerificationMethod:
    """The one verification method of a did:key URL (``did:key:<mb>#<mb>``)."""
    did, _, fragment = url.partition("#")
    multibase = did.removeprefix("did:key:")
    if fragment and fragment != multibase:
        raise _fail("bad_did", f"{url}: a did:key fragment repeats the key")
    try:
        key = decode_public_key(multibase)
    except MultibaseError as exc:
        raise _fail("bad_did", f"{did}: {exc}") from exc
    return VerificationMethod(f"{did}#{multibase}", did, key, frozenset(RELATIONSHIPS))


class Resolver:
    """Finds the verification method a proof names, and what its controller allows."""

    def __init__(
        self,
        *,
        controllers: Mapping[str, Mapping[str, Any]] | None = None,
        did_web: DidWebFetcher | None = None,
    ) -> None:
        self._controllers = dict(controllers or {})
        self._did_web = did_web

    async def method(self, url: object) -> VerificationMethod:
        if not isinstance(url, str) or ("#" not in url and not url.startswith("did:key:")):
            raise _fail(
                "bad_verification_method", "verificationMethod must be a URL with a fragment"
            )
        if url.startswith("did:key:"):
            return did_key_method(url)
        base = url.split("#", 1)[0]
        if base in self._controllers:
            document: Any = self._controllers[base]
        elif base.startswith("did:web:"):
            if self._did_web is None:
                raise _fail("unresolvable_verification_method", "did:web is not enabled here")
            document = await self._did_web(did_web_url(base))
            if not isinstance(document, dict) or document.get("id") != base:
                raise _fail(
                    "bad_controller_document", f"the DID document of {base} does not name it"
                )
        else:
            raise _fail(
                "unresolvable_verification_method",
                f"{url}: only did:key, did:web and this connector's keys are resolved",
            )
        for method in controller_methods(document):
            if method.id == url:
                return method
        raise _fail("unresolvable_verification_method", f"{base} has no method {url}")


def _as_list(value: object) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
