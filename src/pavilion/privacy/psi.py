"""Private set membership and intersection over RFC 9497 VOPRF outputs (pure, no I/O).

The push model, in one picture::

    DP agent (holds skS)                                         connector (holds pkS only)
    every roster entry x ──Evaluate(skS, x)──▶ 64-byte output ──▶ tag = first t bytes
    sorted unique tags + signed manifest ───────────────── push ──▶ stored, never reversible

    subject identifier y ──Blind──▶ r·H(y) ───── evaluate ──▶ skS·r·H(y) + DLEQ proof
    connector: verify proof against pkS, unblind, Finalize ──▶ tag(y) ∈ pushed tags ?

The DP sees only uniformly random group elements (it learns nothing about y); the connector
sees only PRF outputs of roster entries under a key it does not have, so it cannot test a
guess offline: every guess costs an evaluation by the DP, which the DP rate-limits. The VOPRF
proof binds every evaluation to the public key named in the signed manifest, so a DP that
answers with another key (to mark a subject, or to lie) is caught.

An encoded set of ``m`` distinct ``t``-byte tags answers "member" for a non-member with
probability ``m / 2^(8t)`` (the tags are uniform because the OPRF output is a hash): 8-byte
tags and a million entries give about 5.4e-14 per query.

OPRF inputs are domain-separated by set name, so tags of two sets cannot be linked to each
other, and identifiers are normalised the same way on both sides (:func:`oprf_input`).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from pavilion.errors import InvalidRequest, VerificationFailed
from pavilion.jose import b64url, b64url_decode, jwk_thumbprint
from pavilion.parsing import loads_json
from pavilion.privacy import oprf
from pavilion.privacy.errors import DPProofInvalid

PSI_CONTEXT: Final = "pavilion-psi/v1"
#: The JOSE ``typ`` of a signed tag set manifest (a wire name that DP agents already sign with).
MANIFEST_TYP: Final = "pavilion-psi-roster+jwt"
MANIFEST_TYPE: Final = "pavilion-psi-roster/v1"
MANIFEST_ALG: Final = "Ed25519"
ENCODING: Final = "sorted-truncated-tags"
SUITE: Final = "ristretto255-SHA512"
#: Every subject the DP knows; lets a non-member answer be "false" rather than "unknown".
ROSTER_SET: Final = "roster"
STUDENT_SET: Final = "student_status"
MEMBERSHIP_PREFIX: Final = "membership:"
MIN_TAG_BYTES: Final = 4
MAX_TAG_BYTES: Final = 32
DEFAULT_TAG_BYTES: Final = 8
MAX_SET_NAME: Final = 200
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_KIND: Final = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_JSON_TEXT: Final = json.JSONEncoder(ensure_ascii=False)  # a string as oprf_input writes it
_HEX64: Final = re.compile(r"^[0-9a-f]{64}$")
#: One chunk of tag work: the OPRF key, the inputs (bytes or identifier values), tag bytes.
_Job = tuple[bytes, Sequence[Any], int]


# --------------------------------------------------------------------------- identifiers


def normalise_identifier(kind: str, value: str) -> str:
    """The form both sides hash: student ids upper-case, e-mail addresses lower-case.

    Anything else is trimmed and case-folded. The DP agent and the connector call this same
    function, so a subject typed as ``" s1234567 "`` matches the roster's ``S1234567``.
    """
    if not _KIND.match(kind):
        raise InvalidRequest(
            f"identifier kind {kind!r} must be a lowercase slug", field=f"identifiers.{kind}"
        )
    text = value.strip()
    if not text:
        raise InvalidRequest("an identifier must not be empty", field=f"identifiers.{kind}")
    if kind == "student_id":
        return text.upper()
    if kind == "email":
        return text.lower()
    return text.casefold()


def normalise_group(group: str) -> str:
    return " ".join(group.split()).casefold()


def membership_set(group: str) -> str:
    """The set name of a club's members: ``membership:<normalised group>``."""
    return check_set_name(MEMBERSHIP_PREFIX + normalise_group(group))


def check_set_name(name: str) -> str:
    if not name or len(name) > MAX_SET_NAME or _CONTROL.search(name) or name != name.strip():
        raise InvalidRequest(
            f"a set name has 1 to {MAX_SET_NAME} printable characters without surrounding spaces",
            field="set",
        )
    return name


def oprf_input(set_name: str, identifiers: Mapping[str, str]) -> bytes:
    """The OPRF input of one subject in one set: canonical JSON of context, set, identifiers.

    A subject known by several identifiers is one input over all of them, so asking with a
    student id and an e-mail matches only when both belong to the same roster entry.
    """
    if not identifiers:
        raise InvalidRequest("give at least one identifier", field="identifiers")
    normalised = {kind: normalise_identifier(kind, v) for kind, v in identifiers.items()}
    text = json.dumps(
        [PSI_CONTEXT, check_set_name(set_name), normalised],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    data = text.encode("utf-8")
    if len(data) > oprf.MAX_INPUT_BYTES:
        raise InvalidRequest("the identifiers are too long", field="identifiers")
    return data


def oprf_inputs(set_name: str, kind: str, values: Iterable[str]) -> list[bytes]:
    """``oprf_input(set_name, {kind: v})`` of every value, the JSON around the value built once
    (the same bytes: one key, so the value closes the canonical JSON)."""
    head = oprf_input(set_name, {kind: "-"})[: -len(b'"-"}]')].decode("utf-8")
    inputs = []
    for value in values:
        data = f"{head}{_JSON_TEXT.encode(normalise_identifier(kind, value))}}}]".encode()
        if len(data) > oprf.MAX_INPUT_BYTES:
            raise InvalidRequest("the identifiers are too long", field="identifiers")
        inputs.append(data)
    return inputs


def identifier_subsets(identifiers: Mapping[str, str]) -> list[dict[str, str]]:
    """Every non-empty combination of a roster entry's identifiers (the DP publishes each)."""
    kinds = sorted(identifiers)
    subsets: list[dict[str, str]] = []
    for mask in range(1, 1 << len(kinds)):
        subsets.append({k: identifiers[k] for i, k in enumerate(kinds) if mask >> i & 1})
    return subsets


# --------------------------------------------------------------------------- encoded sets


def false_positive_rate(count: int, tag_bytes: int) -> float:
    """Probability that a non-member's tag is among ``count`` distinct uniform tags."""
    return count / float(2 ** (8 * tag_bytes))


def _check_tag_bytes(tag_bytes: int) -> None:
    if not MIN_TAG_BYTES <= tag_bytes <= MAX_TAG_BYTES:
        raise InvalidRequest(
            f"tag_bytes must be {MIN_TAG_BYTES} to {MAX_TAG_BYTES}", field="encoding.tag_bytes"
        )


@dataclass(frozen=True)
class EncodedSet:
    """Sorted, distinct, truncated OPRF outputs: ``count * tag_bytes`` bytes, searchable.

    Membership is a binary search over the packed bytes, so a million-entry set costs 8 MB
    and about twenty comparisons per query.
    """

    tag_bytes: int
    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_tag_bytes(self.tag_bytes)
        if len(self.data) % self.tag_bytes:
            raise InvalidRequest(
                f"an encoded set is a whole number of {self.tag_bytes}-byte tags", field="data"
            )

    @classmethod
    def from_tags(cls, tags: Iterable[bytes], tag_bytes: int) -> EncodedSet:
        _check_tag_bytes(tag_bytes)
        unique = sorted({bytes(t[:tag_bytes]) for t in tags})
        if any(len(t) != tag_bytes for t in unique):
            raise InvalidRequest(f"every tag must have {tag_bytes} bytes", field="tags")
        return cls(tag_bytes, b"".join(unique))

    def check_sorted(self) -> None:
        """Raise unless the tags are strictly ascending (sorted and distinct)."""
        t = self.tag_bytes
        view = memoryview(self.data)
        for i in range(t, len(self.data), t):
            if view[i - t : i].tobytes() >= view[i : i + t].tobytes():
                raise InvalidRequest(
                    f"tags are not strictly ascending at tag {i // t}", field="data"
                )

    @property
    def count(self) -> int:
        return len(self.data) // self.tag_bytes

    @property
    def fpr(self) -> float:
        return false_positive_rate(self.count, self.tag_bytes)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> bytes:
        t = self.tag_bytes
        return self.data[index * t : (index + 1) * t]

    def __contains__(self, output: object) -> bool:
        """Whether an OPRF output (or a tag) is in the set."""
        if not isinstance(output, bytes) or len(output) < self.tag_bytes:
            return False
        tag = output[: self.tag_bytes]
        i = bisect.bisect_left(self, tag)
        return i < self.count and self[i] == tag


def tag_of(output: bytes, tag_bytes: int) -> bytes:
    return output[:tag_bytes]


def _evaluate_chunk(job: tuple[bytes, Sequence[bytes], int]) -> bytes:
    """Worker body: Evaluate (RFC 9497 §3.3.2) every input, keep the first tag bytes."""
    sk, inputs, tag_bytes = job
    return b"".join(output[:tag_bytes] for output in oprf.VOPRFServer(sk).evaluate_many(inputs))


def _run_chunks(
    body: Callable[[_Job], bytes], jobs: Sequence[_Job], workers: int, tag_bytes: int
) -> list[bytes]:
    """Run ``body`` over ``jobs`` on ``workers`` threads and split the packed tags.

    Threads, not processes: libsodium's scalar multiplication and hash-to-group (about 95%
    of an Evaluate) run with the GIL released (ctypes drops it for every foreign call), so
    threads use every core without a worker process that must start an interpreter and
    import its caller's main module (seconds of CPU per worker under ``spawn``).
    """
    if workers == 1 or len(jobs) <= 1:
        packed = [body(job) for job in jobs]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="psi-tags") as pool:
            packed = list(pool.map(body, jobs))
    return [blob[i : i + tag_bytes] for blob in packed for i in range(0, len(blob), tag_bytes)]


def evaluate_tags(
    sk: bytes, inputs: Sequence[bytes], tag_bytes: int, *, workers: int = 1, chunk: int = 25_000
) -> list[bytes]:
    """The DP's side of a push: the tag of every input, on ``workers`` threads.

    One scalar multiplication per input dominates; libsodium's is single-threaded but runs
    without the GIL, so the inputs are split in chunks over a thread pool.
    """
    _check_tag_bytes(tag_bytes)
    if workers < 1:
        raise InvalidRequest("workers must be at least 1", field="workers")
    jobs: list[_Job] = [
        (sk, inputs[i : i + chunk], tag_bytes) for i in range(0, len(inputs), chunk)
    ]
    return _run_chunks(_evaluate_chunk, jobs, workers, tag_bytes)


def evaluate_identifier_tags(
    sk: bytes,
    set_name: str,
    kind: str,
    values: Sequence[str],
    tag_bytes: int,
    *,
    workers: int = 1,
    chunk: int = 25_000,
) -> list[bytes]:
    """Tags of a one-identifier set (a customer list, a club's e-mails), the inputs built
    chunk by chunk in the worker threads too."""
    _check_tag_bytes(tag_bytes)
    if workers < 1:
        raise InvalidRequest("workers must be at least 1", field="workers")

    def body(job: _Job) -> bytes:
        key, part, size = job
        return _evaluate_chunk((key, oprf_inputs(set_name, kind, part), size))

    jobs: list[_Job] = [
        (sk, values[i : i + chunk], tag_bytes) for i in range(0, len(values), chunk)
    ]
    return _run_chunks(body, jobs, workers, tag_bytes)


# --------------------------------------------------------------------------- manifests


@dataclass(frozen=True)
class TagSetManifest:
    """What the DP signs about one pushed set; the connector checks every member."""

    tenant_id: str
    provider_id: str
    set_name: str
    version: int
    issued_at: datetime
    key_id: str
    public_key: bytes
    tag_bytes: int
    count: int
    sha256: str

    @property
    def fpr(self) -> float:
        return false_positive_rate(self.count, self.tag_bytes)

    def claims(self) -> dict[str, Any]:
        return {
            "type": MANIFEST_TYPE,
            "tenant_id": self.tenant_id,
            "provider_id": self.provider_id,
            "set": self.set_name,
            "version": self.version,
            "issued_at": int(self.issued_at.timestamp()),
            "oprf": {
                "suite": SUITE,
                "mode": "VOPRF",
                "key_id": self.key_id,
                "public_key": b64url(self.public_key),
            },
            "encoding": {"type": ENCODING, "tag_bytes": self.tag_bytes},
            "count": self.count,
            "fpr": self.fpr,
            "sha256": self.sha256,
        }

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> TagSetManifest:
        """Parse signed claims, naming the first member that is missing or wrong."""

        def need(path: str, kind: type | tuple[type, ...]) -> Any:
            value: Any = claims
            for part in path.split("."):
                value = value.get(part) if isinstance(value, Mapping) else None
            if not isinstance(value, kind) or isinstance(value, bool):
                raise InvalidRequest(
                    f"the manifest's {path} is missing or has the wrong type",
                    field=f"manifest.{path}",
                )
            return value

        if need("type", str) != MANIFEST_TYPE:
            raise InvalidRequest(f"manifest type must be {MANIFEST_TYPE}", field="manifest.type")
        if need("oprf.suite", str) != SUITE or need("oprf.mode", str) != "VOPRF":
            raise InvalidRequest(
                f"the tag set must be VOPRF outputs of {SUITE}", field="manifest.oprf"
            )
        if need("encoding.type", str) != ENCODING:
            raise InvalidRequest(f"encoding must be {ENCODING}", field="manifest.encoding.type")
        tag_bytes = need("encoding.tag_bytes", int)
        _check_tag_bytes(tag_bytes)
        version = need("version", int)
        count = need("count", int)
        if version < 1 or count < 0:
            raise InvalidRequest("version must be >= 1 and count >= 0", field="manifest.version")
        sha = need("sha256", str)
        if not _HEX64.match(sha):
            raise InvalidRequest("sha256 must be 64 lowercase hex digits", field="manifest.sha256")
        try:
            public_key = oprf.deserialize_element(b64url_decode(need("oprf.public_key", str)))
        except (oprf.OPRFError, ValueError) as exc:
            raise InvalidRequest(
                "the OPRF public key is not a ristretto255 element",
                field="manifest.oprf.public_key",
            ) from exc
        manifest = cls(
            tenant_id=need("tenant_id", str),
            provider_id=need("provider_id", str),
            set_name=check_set_name(need("set", str)),
            version=version,
            issued_at=datetime.fromtimestamp(need("issued_at", int), UTC),
            key_id=need("oprf.key_id", str),
            public_key=public_key,
            tag_bytes=tag_bytes,
            count=count,
            sha256=sha,
        )
        stated = need("fpr", (int, float))
        if not math.isclose(float(stated), manifest.fpr, rel_tol=1e-9, abs_tol=0.0):
            raise InvalidRequest(
                "the stated false-positive rate does not match count and tag_bytes",
                field="manifest.fpr",
            )
        return manifest


def sign_manifest(manifest: TagSetManifest, signing_key: OKPKey) -> str:
    """The DP's signature: a compact JWS over the manifest claims, ``alg`` ``Ed25519``
    (the fully specified name of RFC 9864)."""
    public = {k: str(v) for k, v in signing_key.as_dict(private=False).items()}
    header = {"alg": MANIFEST_ALG, "typ": MANIFEST_TYP, "kid": jwk_thumbprint(public)}
    payload = json.dumps(manifest.claims(), sort_keys=True, separators=(",", ":")).encode()
    return jws.serialize_compact(header, payload, signing_key, algorithms=[MANIFEST_ALG])


def verify_manifest(token: str, public_jwk: Mapping[str, Any]) -> TagSetManifest:
    """Check the DP's signature with its registered key, then parse the manifest."""
    try:
        key = OKPKey.import_key(dict(public_jwk))
        result = jws.deserialize_compact(token, key, algorithms=[MANIFEST_ALG])
        claims = loads_json(result.payload)
    except (JoseError, ValueError) as exc:
        raise VerificationFailed(
            f"the tag set manifest's signature does not verify with the DP's key: {exc}"
        ) from exc
    if result.protected.get("typ") != MANIFEST_TYP:
        raise VerificationFailed(f"the manifest's typ must be {MANIFEST_TYP}")
    if not isinstance(claims, dict):
        raise VerificationFailed("the manifest payload is not a JSON object")
    return TagSetManifest.from_claims(claims)


# --------------------------------------------------------------------------- client side


@dataclass(frozen=True)
class BlindedQuery:
    """What the connector keeps while the DP evaluates: inputs and blinds never leave it."""

    public_key: bytes
    inputs: tuple[bytes, ...] = field(repr=False)
    blinds: tuple[bytes, ...] = field(repr=False)
    blinded_elements: tuple[bytes, ...]


def blind_inputs(public_key: bytes, inputs: Sequence[bytes]) -> BlindedQuery:
    """Blind every input with a fresh random scalar (RFC 9497 §3.3.1)."""
    client = oprf.VOPRFClient(public_key)
    states = [client.blind(x) for x in inputs]
    return BlindedQuery(
        public_key,
        tuple(inputs),
        tuple(s.blind for s in states),
        tuple(s.blinded_element for s in states),
    )


def finalize_outputs(
    query: BlindedQuery, evaluated_elements: Sequence[bytes], proof: bytes
) -> list[bytes]:
    """Verify the DP's batch DLEQ proof against the manifest's key, unblind and hash.

    A proof made with any other key, or evaluations that were tampered with, raise
    :class:`DPProofInvalid` and yield no output at all.
    """
    if len(evaluated_elements) != len(query.inputs):
        raise DPProofInvalid(
            f"the DP returned {len(evaluated_elements)} evaluations for "
            f"{len(query.inputs)} blinded elements"
        )
    client = oprf.VOPRFClient(query.public_key)
    try:
        return client.finalize_batch(
            query.inputs, query.blinds, evaluated_elements, query.blinded_elements, proof=proof
        )
    except oprf.OPRFError as exc:
        raise DPProofInvalid(
            "the DP's VOPRF proof does not verify against the key in its signed tag set"
        ) from exc
