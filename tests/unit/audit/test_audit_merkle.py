"""RFC 9162 Merkle tree: known answers from an independent implementation, then properties.

The known answers in tests/data/audit/ct_merkle_vectors.json are the published test vectors of
the Certificate Transparency reference implementation, github.com/transparency-dev/merkle
(testonly/constants.go and proof/verify_test.go); only their values were copied.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pavilion.audit import merkle
from pavilion.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from pavilion.errors import CryptoError, InvalidRequest, VerificationFailed

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "data" / "audit" / "ct_merkle_vectors.json").read_text("utf-8")
)
LEAVES = [bytes.fromhex(leaf) for leaf in VECTORS["leaf_inputs_hex"]]
LEAF_HASHES = [bytes.fromhex(h) for h in VECTORS["leaf_hashes"]]
ROOTS = [bytes.fromhex(h) for h in VECTORS["roots_by_size"]]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _hashes(hex_list: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hex_list]


def _flip(hash_: bytes, mask: int = 0x08) -> bytes:
    return bytes([hash_[0] ^ mask]) + hash_[1:]


def _accepts(verify: Callable[..., None], *arguments: Any) -> bool:
    try:
        verify(*arguments)
    except VerificationFailed:
        return False
    return True


def _tree(size: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]


# -- known answers ------------------------------------------------------------------------


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == VECTORS["roots_by_size"][0]
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert CompactRange().root() == EMPTY_ROOT


def test_leaf_hashes_match_reference() -> None:
    assert [leaf_hash(leaf) for leaf in LEAVES] == LEAF_HASHES


def test_node_hash_matches_reference_level_one() -> None:
    assert node_hash(LEAF_HASHES[0], LEAF_HASHES[1]) == ROOTS[2]


@pytest.mark.parametrize("size", range(9))
def test_roots_match_reference(size: int) -> None:
    assert root_from_leaf_hashes(LEAF_HASHES[:size]) == ROOTS[size]


@pytest.mark.parametrize("size", range(9))
def test_compact_range_matches_reference(size: int) -> None:
    compact = CompactRange.from_leaf_hashes(LEAF_HASHES[:size])
    assert list(compact.peaks) == _hashes(VECTORS["compact_ranges_by_size"][size])
    assert compact.size == size
    assert compact.root() == ROOTS[size]


@pytest.mark.parametrize(
    "vector", VECTORS["inclusion_proofs"], ids=lambda v: f"{v['leaf_index']}-of-{v['tree_size']}"
)
def test_inclusion_proofs_match_reference(vector: dict[str, Any]) -> None:
    index, size, expected = vector["leaf_index"], vector["tree_size"], _hashes(vector["proof"])
    assert inclusion_proof(index, LEAF_HASHES[:size]) == expected
    verify_inclusion(LEAF_HASHES[index], index, size, expected, ROOTS[size])


@pytest.mark.parametrize(
    "vector", VECTORS["consistency_proofs"], ids=lambda v: f"{v['old_size']}-to-{v['new_size']}"
)
def test_consistency_proofs_match_reference(vector: dict[str, Any]) -> None:
    old, new, expected = vector["old_size"], vector["new_size"], _hashes(vector["proof"])
    assert consistency_proof(old, LEAF_HASHES[:new]) == expected
    verify_consistency(old, new, ROOTS[old], ROOTS[new], expected)


def _inclusion_corruptions(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    """The probes of transparency-dev/merkle's corruptInclusionProof, rewritten."""
    probes = [
        ("index - 1", index - 1, size, proof, root, leaf),
        ("index + 1", index + 1, size, proof, root, leaf),
        ("index ^ 2", index ^ 2, size, proof, root, leaf),
        ("size * 2", index, size * 2, proof, root, leaf),
        ("size // 2", index, size // 2, proof, root, leaf),
        ("wrong leaf", index, size, proof, root, SOME_HASH),
        ("empty root", index, size, proof, EMPTY_ROOT, leaf),
        ("random root", index, size, proof, SOME_HASH, leaf),
        ("trailing root", index, size, [*proof, root], root, leaf),
        ("preceding root", index, size, [root, *proof], root, leaf),
    ]
    for position in range(len(proof)):
        tampered = list(proof)
        tampered[position] = _flip(tampered[position])
        probes.append((f"flipped {position}", index, size, tampered, root, leaf))
    if proof:
        probes.append(("removed last", index, size, proof[:-1], root, leaf))
    if len(proof) > 1:
        probes.append(("inserted", index, size, [proof[0], SOME_HASH, *proof[1:]], root, leaf))
    return probes


@pytest.mark.parametrize(
    "vector", VECTORS["inclusion_proofs"], ids=lambda v: f"{v['leaf_index']}-of-{v['tree_size']}"
)
def test_corrupted_reference_inclusion_proofs_fail(vector: dict[str, Any]) -> None:
    index, size = vector["leaf_index"], vector["tree_size"]
    probes = _inclusion_corruptions(
        index, size, _hashes(vector["proof"]), ROOTS[size], LEAF_HASHES[index]
    )
    accepted = [
        description
        for description, probe_index, probe_size, proof, root, leaf in probes
        if _accepts(verify_inclusion, leaf, probe_index, probe_size, proof, root)
    ]
    assert accepted == []


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS["consistency_proofs"] if v["proof"]],
    ids=lambda v: f"{v['old_size']}-to-{v['new_size']}",
)
def test_corrupted_reference_consistency_proofs_fail(vector: dict[str, Any]) -> None:
    old, new, proof = vector["old_size"], vector["new_size"], _hashes(vector["proof"])
    old_root, new_root = ROOTS[old], ROOTS[new]
    probes: list[tuple[str, int, int, bytes, bytes, list[bytes]]] = [
        ("old - 1", old - 1, new, old_root, new_root, proof),
        ("old + 1", old + 1, new, old_root, new_root, proof),
        ("old ^ 2", old ^ 2, new, old_root, new_root, proof),
        ("new * 2", old, new * 2, old_root, new_root, proof),
        ("new // 2", old, new // 2, old_root, new_root, proof),
        ("wrong old root", old, new, SOME_HASH, new_root, proof),
        ("wrong new root", old, new, old_root, SOME_HASH, proof),
        ("swapped roots", old, new, new_root, old_root, proof),
        ("empty proof", old, new, old_root, new_root, []),
        ("trailing old root", old, new, old_root, new_root, [*proof, old_root]),
        ("trailing new root", old, new, old_root, new_root, [*proof, new_root]),
        ("preceding old root", old, new, old_root, new_root, [old_root, *proof]),
        ("preceding new root", old, new, old_root, new_root, [new_root, *proof]),
        ("preceding proof[0]", old, new, old_root, new_root, [proof[0], *proof]),
        ("truncated", old, new, old_root, new_root, proof[:-1]),
    ]
    for position in range(len(proof)):
        tampered = list(proof)
        tampered[position] = _flip(tampered[position], 0x10)
        probes.append((f"flipped {position}", old, new, old_root, new_root, tampered))
    accepted = [
        description
        for description, *arguments in probes
        if _accepts(verify_consistency, *arguments)
    ]
    assert accepted == []


# -- verifier edge cases and reasons ----------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "size", "reason"),
    [
        (0, 0, "outside a tree of size 0"),
        (1, 1, "outside a tree of size 1"),
        (-1, 1, "outside a tree of size 1"),
    ],
)
def test_inclusion_rejects_index_outside_tree(index: int, size: int, reason: str) -> None:
    with pytest.raises(VerificationFailed, match=reason):
        verify_inclusion(SOME_HASH, index, size, [], SOME_HASH)


def test_single_leaf_tree_root_is_the_leaf() -> None:
    verify_inclusion(SOME_HASH, 0, 1, [], SOME_HASH)
    with pytest.raises(VerificationFailed, match="does not lead to the expected root"):
        verify_inclusion(SOME_HASH, 0, 1, [], EMPTY_ROOT)


def test_inclusion_reports_long_and_short_proofs() -> None:
    hashes = _tree(5)
    proof = inclusion_proof(4, hashes)
    root = root_from_leaf_hashes(hashes)
    with pytest.raises(VerificationFailed, match="longer than the path"):
        verify_inclusion(hashes[4], 4, 5, [*proof, SOME_HASH], root)
    with pytest.raises(VerificationFailed, match="shorter than the path"):
        verify_inclusion(hashes[4], 4, 5, proof[:-1], root)


@pytest.mark.parametrize(
    ("leaf", "proof", "root", "reason"),
    [
        (b"short", [], SOME_HASH, "leaf_hash is 5 bytes"),
        (SOME_HASH, [], b"", "root is 0 bytes"),
        (SOME_HASH, [SOME_HASH, b"x" * 33], SOME_HASH, "proof hash 1 is 33 bytes"),
    ],
)
def test_inclusion_rejects_wrong_hash_lengths(
    leaf: bytes, proof: list[bytes], root: bytes, reason: str
) -> None:
    with pytest.raises(VerificationFailed, match=reason):
        verify_inclusion(leaf, 0, 2, proof, root)


@pytest.mark.parametrize(
    ("old", "new", "old_root", "new_root", "proof", "reason"),
    [
        (1, 0, SOME_HASH, SOME_HASH, [], "outside 0..0"),
        (-1, 3, SOME_HASH, SOME_HASH, [], "outside 0..3"),
        (0, 0, SOME_HASH, SOME_HASH, [], "size 0 must be SHA-256 of nothing"),
        (0, 5, SOME_HASH, SOME_HASH, [], "size 0 must be SHA-256 of nothing"),
        (0, 5, EMPTY_ROOT, SOME_HASH, [SOME_HASH], "nothing to prove"),
        (3, 3, SOME_HASH, SOME_HASH, [SOME_HASH], "nothing to prove"),
        (3, 3, SOME_HASH, EMPTY_ROOT, [], "different roots for the same tree size 3"),
        (1, 2, SOME_HASH, EMPTY_ROOT, [], "consistency proof is empty"),
        (2, 3, b"", SOME_HASH, [SOME_HASH], "old_root is 0 bytes"),
        (2, 3, SOME_HASH, SOME_HASH, [b"x"], "proof hash 0 is 1 bytes"),
    ],
)
def test_consistency_rejections(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes], reason: str
) -> None:
    with pytest.raises(VerificationFailed, match=reason):
        verify_consistency(old, new, old_root, new_root, proof)


def test_trivial_consistency_needs_no_proof() -> None:
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 7, EMPTY_ROOT, SOME_HASH, [])
    verify_consistency(7, 7, SOME_HASH, SOME_HASH, [])


def test_consistency_reports_each_failed_step() -> None:
    hashes = _tree(7)
    proof = consistency_proof(3, hashes)
    old_root, new_root = root_from_leaf_hashes(hashes[:3]), root_from_leaf_hashes(hashes)
    with pytest.raises(VerificationFailed, match="longer than the trees need"):
        verify_consistency(3, 7, old_root, new_root, [*proof, SOME_HASH])
    with pytest.raises(VerificationFailed, match="shorter than the trees need"):
        verify_consistency(3, 7, old_root, new_root, proof[:-1])
    with pytest.raises(VerificationFailed, match="does not reproduce the old root"):
        verify_consistency(3, 7, SOME_HASH, new_root, proof)
    with pytest.raises(VerificationFailed, match="does not reproduce the new root"):
        verify_consistency(3, 7, old_root, SOME_HASH, proof)


# -- proof generation arguments -----------------------------------------------------------------


@pytest.mark.parametrize(("index", "size"), [(0, 0), (3, 3), (-1, 3)])
def test_inclusion_proof_rejects_index_outside_tree(index: int, size: int) -> None:
    with pytest.raises(InvalidRequest, match=f"leaf index {index} is outside"):
        inclusion_proof(index, _tree(size))


@pytest.mark.parametrize(("old", "size"), [(4, 3), (-1, 3)])
def test_consistency_proof_rejects_old_size_outside_tree(old: int, size: int) -> None:
    with pytest.raises(InvalidRequest, match=f"old size {old} is outside 0..{size}"):
        consistency_proof(old, _tree(size))


def test_generators_reject_hashes_of_wrong_length() -> None:
    bad = [*_tree(3), b"not a hash"]
    with pytest.raises(CryptoError, match="hash 3 is 10 bytes"):
        root_from_leaf_hashes(bad)
    with pytest.raises(CryptoError, match="hash 3 is 10 bytes"):
        inclusion_proof(0, bad)
    with pytest.raises(CryptoError, match="hash 3 is 10 bytes"):
        consistency_proof(1, bad)
    with pytest.raises(CryptoError, match="hash 0 is 3 bytes"):
        CompactRange().append(b"abc")


# -- compact range --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "peaks", "reason"),
    [
        (3, (SOME_HASH,), "size 3 needs 2 subtree roots, not 1"),
        (-1, (), "size -1 needs 0 subtree roots"),
        (1, (b"short",), "hash 0 is 5 bytes"),
    ],
)
def test_compact_range_rejects_inconsistent_state(
    size: int, peaks: tuple[bytes, ...], reason: str
) -> None:
    with pytest.raises(CryptoError, match=reason):
        CompactRange(size, peaks)


def test_compact_range_json_is_small_and_stable() -> None:
    compact = CompactRange.from_leaf_hashes(LEAF_HASHES[:3])
    assert compact.to_json() == (
        '{"size":3,"peaks":["' + VECTORS["compact_ranges_by_size"][3][0] + '","'
        f'{VECTORS["compact_ranges_by_size"][3][1]}"]}}'
    )
    assert CompactRange.from_json(compact.to_json()) == compact


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "not JSON"),
        ("[]", "object with size and peaks"),
        ('{"size": 0}', "object with size and peaks"),
        ('{"size": 0, "peaks": [], "extra": 1}', "object with size and peaks"),
        ('{"size": true, "peaks": ["' + "00" * 32 + '"]}', "integer size"),
        ('{"size": 1.0, "peaks": ["' + "00" * 32 + '"]}', "integer size"),
        ('{"size": 1, "peaks": "' + "00" * 32 + '"}', "list of peaks"),
        ('{"size": 1, "peaks": ["' + "AB" * 32 + '"]}', "64 lowercase hex"),
        ('{"size": 1, "peaks": ["' + "ab" * 31 + '"]}', "64 lowercase hex"),
        ('{"size": 1, "peaks": [" ' + "ab" * 31 + 'a"]}', "64 lowercase hex"),
        ('{"size": 1, "peaks": [1]}', "64 lowercase hex"),
        ('{"size": 2, "peaks": ["' + "ab" * 32 + '", "' + "ab" * 32 + '"]}', "needs 1"),
    ],
)
def test_compact_range_from_json_rejects_corrupt_rows(text: str, reason: str) -> None:
    with pytest.raises(CryptoError, match=reason):
        CompactRange.from_json(text)


# -- properties -----------------------------------------------------------------------------

leaf_data = st.lists(st.binary(max_size=16), max_size=70)


@given(leaf_data)
def test_compact_range_root_equals_full_root(leaves: list[bytes]) -> None:
    hashes = [leaf_hash(leaf) for leaf in leaves]
    compact = CompactRange()
    for position, hash_ in enumerate(hashes):
        assert compact.root() == root_from_leaf_hashes(hashes[:position])
        compact = compact.append(hash_)
    assert compact.size == len(hashes)
    assert compact.root() == root_from_leaf_hashes(hashes)
    assert CompactRange.from_json(compact.to_json()) == compact


@given(st.integers(min_value=1, max_value=2**70))
def test_compact_range_holds_one_peak_per_set_bit(size: int) -> None:
    peaks = tuple(leaf_hash(bytes([i])) for i in range(size.bit_count()))
    assert CompactRange.from_json(CompactRange(size, peaks).to_json()).peaks == peaks


@given(st.data())
def test_every_inclusion_proof_verifies_and_tampering_fails(data: st.DataObject) -> None:
    leaves = data.draw(st.lists(st.binary(max_size=8), min_size=1, max_size=70))
    hashes = [leaf_hash(leaf) for leaf in leaves]
    root = root_from_leaf_hashes(hashes)
    index = data.draw(st.integers(min_value=0, max_value=len(hashes) - 1))
    proof = inclusion_proof(index, hashes)
    verify_inclusion(hashes[index], index, len(hashes), proof, root)

    if proof:
        position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        bit = data.draw(st.integers(min_value=0, max_value=7))
        tampered = list(proof)
        tampered[position] = _flip(proof[position], 1 << bit)
        with pytest.raises(VerificationFailed):
            verify_inclusion(hashes[index], index, len(hashes), tampered, root)
    other = data.draw(st.integers(min_value=0, max_value=len(hashes) - 1))
    if hashes[other] != hashes[index]:
        with pytest.raises(VerificationFailed):
            verify_inclusion(hashes[other], index, len(hashes), proof, root)


@settings(max_examples=20)
@given(st.binary(min_size=1, max_size=4))
def test_every_consistency_proof_for_small_trees_verifies_and_tampering_fails(
    salt: bytes,
) -> None:
    hashes = [leaf_hash(salt + i.to_bytes(2, "big")) for i in range(20)]
    roots = [root_from_leaf_hashes(hashes[:size]) for size in range(len(hashes) + 1)]
    for new in range(len(hashes) + 1):
        for old in range(new + 1):
            proof = consistency_proof(old, hashes[:new])
            verify_consistency(old, new, roots[old], roots[new], proof)
            for position in range(len(proof)):
                tampered = list(proof)
                tampered[position] = _flip(tampered[position], 0x01)
                with pytest.raises(VerificationFailed):
                    verify_consistency(old, new, roots[old], roots[new], tampered)
            if 0 < old < new:
                with pytest.raises(VerificationFailed):
                    verify_consistency(old, new, roots[old], roots[new], proof[:-1])


def test_proofs_take_linear_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """One pass over the leaves (a 1000-leaf tree has 999 interior nodes), not one per level."""
    calls = 0
    real_node_hash = merkle.node_hash

    def counting_node_hash(left: bytes, right: bytes) -> bytes:
        nonlocal calls
        calls += 1
        return real_node_hash(left, right)

    monkeypatch.setattr(merkle, "node_hash", counting_node_hash)
    hashes = _tree(1000)
    inclusion_proof(777, hashes)
    assert calls < 1000
    calls = 0
    consistency_proof(333, hashes)
    assert calls < 1000


@given(st.integers(min_value=1, max_value=300), st.data())
def test_first_difference_finds_the_span_of_a_rewritten_leaf(
    size: int, data: st.DataObject
) -> None:
    position = data.draw(st.integers(min_value=0, max_value=size - 1))
    hashes = [leaf_hash(f"event {n}".encode()) for n in range(size)]
    head = CompactRange.from_leaf_hashes(hashes)
    assert head.first_difference(head) is None
    rewritten = list(hashes)
    rewritten[position] = leaf_hash(b"forged")
    start, end = head.first_difference(CompactRange.from_leaf_hashes(rewritten)) or (0, 0)
    assert start <= position < end
    # the span is the perfect subtree (one set bit of size) that holds the leaf
    assert (end - start) & size == end - start
    assert (end - start).bit_count() == 1
    if position == size - 1 and size % 2 == 1:
        assert (start, end) == (position, position + 1)  # a lone last leaf is named exactly


def test_first_difference_of_ranges_of_different_sizes_is_the_gap() -> None:
    hashes = [leaf_hash(bytes([n])) for n in range(9)]
    short = CompactRange.from_leaf_hashes(hashes[:5])
    assert short.first_difference(CompactRange.from_leaf_hashes(hashes)) == (5, 9)
