"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing for the audit log.

Pure functions over 32-byte SHA-256 hashes, so every root and proof the service hands out can be
checked by any RFC 9162 / RFC 6962 verifier, and the service can check theirs. Section numbers in
comments refer to RFC 9162.

Errors: the verifiers raise :class:`~pavilion.errors.VerificationFailed` with the reason and
return ``None`` on success. Asking for a proof the tree cannot have (an index or size beyond it)
raises :class:`~pavilion.errors.InvalidRequest`; a hash of the wrong length handed to a generator
or a malformed stored :class:`CompactRange` raises :class:`~pavilion.errors.CryptoError`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pavilion.errors import CryptoError, InvalidRequest, VerificationFailed

HASH_SIZE = 32
#: MTH({}) = SHA-256 of the empty string (section 2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_HEX_HASH = re.compile(r"[0-9a-f]{64}")


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the prefix keeps a leaf from passing for an interior node."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right), the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash MTH(D[n]) of section 2.1.1, from the leaf hashes in log order."""
    _require_hashes(hashes)
    if not hashes:
        return EMPTY_ROOT
    return _subtree_root(hashes, 0, len(hashes))


def inclusion_proof(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """The audit path PATH(index, D[n]) of section 2.1.3.1, deepest sibling first."""
    size = len(hashes)
    if not 0 <= index < size:
        raise InvalidRequest(f"leaf index {index} is outside a tree of size {size}")
    _require_hashes(hashes)
    siblings: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        middle = start + _split_point(end - start)
        if index < middle:
            siblings.append(_subtree_root(hashes, middle, end))
            end = middle
        else:
            siblings.append(_subtree_root(hashes, start, middle))
            start = middle
    siblings.reverse()
    return siblings


def consistency_proof(old_size: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(old_size, D[n]) = SUBPROOF(old_size, D[n], true) of section 2.1.4.1.

    The RFC defines proofs for 0 < old_size < n only; for old_size 0 or n there is nothing to
    prove and the proof is empty, which is what :func:`verify_consistency` expects.
    """
    size = len(hashes)
    if not 0 <= old_size <= size:
        raise InvalidRequest(f"old size {old_size} is outside 0..{size}")
    _require_hashes(hashes)
    if old_size in (0, size):
        return []
    proof: list[bytes] = []
    start, end, remaining = 0, size, old_size
    # The RFC's flag "b": while only left halves were taken, the subtree holding the old leaves
    # is the old tree itself, whose root the verifier already has.
    on_left_edge = True
    while remaining != end - start:
        middle = start + _split_point(end - start)
        if remaining <= middle - start:
            proof.append(_subtree_root(hashes, middle, end))
            end = middle
        else:
            proof.append(_subtree_root(hashes, start, middle))
            remaining -= middle - start
            start = middle
            on_left_edge = False
    if not on_left_edge:
        proof.append(_subtree_root(hashes, start, end))
    proof.reverse()
    return proof


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an audit path with the algorithm of section 2.1.3.2, step for step."""
    _require_proof_hashes(proof, leaf_hash=leaf_hash, root=root)
    # Step 1.
    if not 0 <= index < tree_size:
        raise VerificationFailed(f"leaf index {index} is outside a tree of size {tree_size}")
    # Steps 2 and 3.
    fn, sn = index, tree_size - 1
    result = leaf_hash
    # Step 4.
    for sibling in proof:
        if sn == 0:
            raise VerificationFailed("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while fn != 0 and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    # Step 5.
    if sn != 0:
        raise VerificationFailed("inclusion proof is shorter than the path to the root")
    if result != root:
        raise VerificationFailed("inclusion proof does not lead to the expected root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (new_size, new_root) extends (old_size, old_root).

    For 0 < old_size < new_size this is the algorithm of section 2.1.4.2, step for step. The
    trivial cases the RFC leaves out need an empty proof: a tree is consistent with itself, and
    the empty tree (whose root must be SHA-256("")) with every tree.
    """
    _require_proof_hashes(proof, old_root=old_root, new_root=new_root)
    if not 0 <= old_size <= new_size:
        raise VerificationFailed(f"old size {old_size} is outside 0..{new_size}")
    if old_size == 0 and old_root != EMPTY_ROOT:
        raise VerificationFailed("the root of a tree of size 0 must be SHA-256 of nothing")
    if old_size in (0, new_size):
        if proof:
            raise VerificationFailed(
                f"nothing to prove from size {old_size} to {new_size}, yet the proof is not empty"
            )
        if old_root != new_root and old_size == new_size:
            raise VerificationFailed(f"two different roots for the same tree size {old_size}")
        return
    # Step 1.
    if not proof:
        raise VerificationFailed("consistency proof is empty")
    # Step 2.
    path = [old_root, *proof] if old_size & (old_size - 1) == 0 else list(proof)
    # Steps 3 and 4.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # Step 5.
    old_result = new_result = path[0]
    # Step 6.
    for node in path[1:]:
        if sn == 0:
            raise VerificationFailed("consistency proof is longer than the trees need")
        if fn & 1 or fn == sn:
            old_result = node_hash(node, old_result)
            new_result = node_hash(node, new_result)
            while fn != 0 and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            new_result = node_hash(new_result, node)
        fn, sn = fn >> 1, sn >> 1
    # Step 7.
    if sn != 0:
        raise VerificationFailed("consistency proof is shorter than the trees need")
    if old_result != old_root:
        raise VerificationFailed("consistency proof does not reproduce the old root")
    if new_result != new_root:
        raise VerificationFailed("consistency proof does not reproduce the new root")


@dataclass(frozen=True)
class CompactRange:
    """The whole tree in O(log n) space: the roots of its perfect subtrees, largest first.

    A tree of size n splits into one perfect subtree per set bit of n, so the service can keep
    a tenant's log head in one row and append or compute the root without reading the leaves.
    """

    size: int = 0
    peaks: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.size < 0 or len(self.peaks) != self.size.bit_count():
            raise CryptoError(
                f"a compact range of size {self.size} needs {max(self.size, 0).bit_count()} "
                f"subtree roots, not {len(self.peaks)}"
            )
        _require_hashes(self.peaks)

    @classmethod
    def from_leaf_hashes(cls, hashes: Sequence[bytes]) -> CompactRange:
        """Fold the leaves in one by one; O(n) hashing in all."""
        compact = cls()
        for hash_ in hashes:
            compact = compact.append(hash_)
        return compact

    def append(self, leaf_hash: bytes) -> CompactRange:
        """The range with one more leaf: merge equal-sized subtrees like a binary carry."""
        _require_hashes([leaf_hash])
        peaks = list(self.peaks)
        carried, bits = leaf_hash, self.size
        while bits & 1:
            carried = node_hash(peaks.pop(), carried)
            bits >>= 1
        peaks.append(carried)
        return CompactRange(self.size + 1, tuple(peaks))

    def root(self) -> bytes:
        """MTH of the whole tree: the subtree roots hashed together from the right."""
        if not self.peaks:
            return EMPTY_ROOT
        result = self.peaks[-1]
        for peak in reversed(self.peaks[:-1]):
            result = node_hash(peak, result)
        return result

    def first_difference(self, other: CompactRange) -> tuple[int, int] | None:
        """The leaves ``[start, end)`` under the first subtree root the two ranges disagree on,
        or None when they are equal. Each root covers a known span of leaves (largest first),
        so a changed leaf whose stored hash was rewritten too is found to within its span;
        a span of one names the leaf. Ranges of different sizes differ from the shorter end.
        """
        if self.size != other.size:
            return min(self.size, other.size), max(self.size, other.size)
        start = 0
        for bit in reversed(range(self.size.bit_length())):
            if not self.size >> bit & 1:
                continue
            position = (self.size >> (bit + 1)).bit_count()
            if self.peaks[position] != other.peaks[position]:
                return start, start + (1 << bit)
            start += 1 << bit
        return None

    def to_json(self) -> str:
        """Compact JSON, ``{"size": n, "peaks": [lowercase hex, ...]}``, for one DB row."""
        document = {"size": self.size, "peaks": [peak.hex() for peak in self.peaks]}
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> CompactRange:
        """Parse :meth:`to_json` output strictly; anything else is a corrupt row."""
        try:
            document: Any = json.loads(text)
        except ValueError as exc:
            raise CryptoError(f"stored compact range is not JSON: {exc}") from exc
        if not isinstance(document, dict) or set(document) != {"size", "peaks"}:
            raise CryptoError("stored compact range must be an object with size and peaks")
        size, peaks = document["size"], document["peaks"]
        if type(size) is not int or not isinstance(peaks, list):
            raise CryptoError("stored compact range needs an integer size and a list of peaks")
        if not all(isinstance(peak, str) and _HEX_HASH.fullmatch(peak) for peak in peaks):
            raise CryptoError("stored compact range peaks must be 64 lowercase hex digits each")
        return cls(size, tuple(bytes.fromhex(peak) for peak in peaks))


def _split_point(size: int) -> int:
    """The largest power of two smaller than size (size >= 2): where section 2.1.1 splits."""
    return 1 << ((size - 1).bit_length() - 1)


def _subtree_root(hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a non-empty range, by indices so nothing is copied."""
    if end - start == 1:
        return hashes[start]
    middle = start + _split_point(end - start)
    return node_hash(_subtree_root(hashes, start, middle), _subtree_root(hashes, middle, end))


def _require_hashes(hashes: Sequence[bytes]) -> None:
    for position, hash_ in enumerate(hashes):
        if len(hash_) != HASH_SIZE:
            raise CryptoError(f"hash {position} is {len(hash_)} bytes, not {HASH_SIZE}")


def _require_proof_hashes(proof: Sequence[bytes], **named: bytes) -> None:
    for name, hash_ in named.items():
        if len(hash_) != HASH_SIZE:
            raise VerificationFailed(f"{name} is {len(hash_)} bytes, not {HASH_SIZE}")
    for position, hash_ in enumerate(proof):
        if len(hash_) != HASH_SIZE:
            raise VerificationFailed(
                f"proof hash {position} is {len(hash_)} bytes, not {HASH_SIZE}"
            )
