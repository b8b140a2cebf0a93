"""C2SP signed notes and checkpoints: Go's published example, round trips, every rejection.

tests/data/audit/sumdb_note_vectors.json holds the published example of
golang.org/x/mod/sumdb/note (package documentation and note_test.go); only values were copied.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from pavilion.audit.checkpoint import (
    MAX_SIGNATURES,
    MAX_TREE_SIZE,
    Checkpoint,
    NoteSignature,
    parse_signed_note,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    signed_under,
    verifier_key,
    verify_checkpoint,
    verify_note,
)
from pavilion.audit.merkle import EMPTY_ROOT, CompactRange, leaf_hash
from pavilion.errors import CryptoError, VerificationFailed
from pavilion.jose import b64url
from pavilion.keystore.signer import Algorithm, Signer

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "data" / "audit" / "sumdb_note_vectors.json").read_text("utf-8")
)
TEXT: str = VECTORS["text"]
PETER: dict[str, str] = VECTORS["peter"]
ENOCH: dict[str, str] = VECTORS["enoch"]
PETER_NOTE = TEXT + "\n" + PETER["signature_line"]
EM_DASH = "\u2014"
ROOT = leaf_hash(b"root")


class Ed25519TestSigner:
    """The Signer protocol over an in-memory key, with knobs to misbehave."""

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        *,
        algorithm: Algorithm = "EdDSA",
        jwk_override: dict[str, str] | None = None,
        signature_override: bytes | None = None,
    ) -> None:
        self._key = private_key
        self._algorithm: Algorithm = algorithm
        raw = private_key.public_key().public_bytes_raw()
        self._jwk = jwk_override or {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
        self._signature_override = signature_override

    @property
    def key_id(self) -> str:
        return "test-key"

    @property
    def algorithm(self) -> Algorithm:
        return self._algorithm

    def public_jwk(self) -> dict[str, str]:
        return dict(self._jwk)

    async def sign(self, message: bytes) -> bytes:
        return self._signature_override or self._key.sign(message)


def _peter_private_key() -> Ed25519PrivateKey:
    """Go's signer key is PRIVATE+KEY+<name>+<id>+base64(0x01 || seed)."""
    encoded = PETER["signer_key"].split("+", 4)[4]
    seed = base64.b64decode(encoded)
    assert seed[0] == 1
    return Ed25519PrivateKey.from_private_bytes(seed[1:])


def _public_key(vkey: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(vkey.split("+")[2])[1:])


@pytest.fixture
def private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def signer(private_key: Ed25519PrivateKey) -> Signer:
    return Ed25519TestSigner(private_key)


@pytest.fixture
def vkey(private_key: Ed25519PrivateKey) -> str:
    return verifier_key("example.com/log", private_key.public_key())


# -- Go's published example ---------------------------------------------------------------


def test_signer_protocol_is_satisfied(signer: Signer) -> None:
    assert isinstance(signer, Signer)


@pytest.mark.parametrize("who", [PETER, ENOCH], ids=["PeterNeumann", "EnochRoot"])
def test_key_id_and_verifier_key_match_go(who: dict[str, str]) -> None:
    public_key = _public_key(who["verifier_key"])
    verifier = parse_verifier_key(who["verifier_key"])
    assert verifier.key_id.hex() == who["key_id_hex"]
    assert str(verifier) == f"{who['key_name']}+{who['key_id_hex']}"
    assert verifier_key(who["key_name"], public_key) == who["verifier_key"]


def test_go_private_key_matches_published_verifier_key() -> None:
    assert verifier_key("PeterNeumann", _peter_private_key().public_key()) == PETER["verifier_key"]


def test_go_signed_note_verifies() -> None:
    assert verify_note(PETER_NOTE, PETER["verifier_key"]) == TEXT
    assert verify_note(PETER_NOTE.encode("utf-8"), PETER["verifier_key"]) == TEXT


async def test_signing_reproduces_go_signed_note_byte_for_byte() -> None:
    signed = await sign_note(TEXT, "PeterNeumann", Ed25519TestSigner(_peter_private_key()))
    assert signed == PETER_NOTE


def test_doubly_signed_go_note_verifies_for_each_key_and_ignores_the_other() -> None:
    note = TEXT + "\n" + PETER["signature_line"] + ENOCH["signature_line"]
    assert verify_note(note, PETER["verifier_key"]) == TEXT
    assert verify_note(note, ENOCH["verifier_key"]) == TEXT
    parsed = parse_signed_note(note)
    assert parsed.text == TEXT
    assert [(s.key_name, s.key_id.hex()) for s in parsed.signatures] == [
        ("PeterNeumann", "c74f20a3"),
        ("EnochRoot", "af0cfe78"),
    ]
    text, signatures = parsed
    assert text == TEXT
    assert [len(signature.signature) for signature in signatures] == [64, 64]


def test_go_note_with_corrupted_signature_is_rejected() -> None:
    line = PETER["signature_line"]
    corrupted = TEXT + "\n" + line[:60] + "ABCD" + line[60:]
    with pytest.raises(VerificationFailed, match=r"signature by PeterNeumann\+c74f20a3 does not"):
        verify_note(corrupted, PETER["verifier_key"])


def test_any_bad_signature_by_the_key_rejects_the_whole_note() -> None:
    line = PETER["signature_line"]
    corrupted = line[:60] + "ABCD" + line[60:]
    with pytest.raises(VerificationFailed, match="does not verify"):
        verify_note(TEXT + "\n" + line + corrupted, PETER["verifier_key"])


# -- checkpoints ----------------------------------------------------------------------------


def test_checkpoint_body_matches_the_c2sp_layout() -> None:
    checkpoint = Checkpoint("example.com/log", 20852163, ROOT, ("ext one", "ext two"))
    root_line = base64.b64encode(ROOT).decode()
    assert checkpoint.body() == f"example.com/log\n20852163\n{root_line}\next one\next two\n"


async def test_checkpoint_round_trip(signer: Signer, vkey: str) -> None:
    hashes = [leaf_hash(bytes([i])) for i in range(11)]
    compact = CompactRange.from_leaf_hashes(hashes)
    checkpoint = Checkpoint("example.com/log", compact.size, compact.root())
    note = await sign_checkpoint(checkpoint, "example.com/log", signer)
    assert note.startswith(checkpoint.body() + "\n" + EM_DASH + " example.com/log ")
    assert verify_checkpoint(note, vkey) == checkpoint
    assert verify_checkpoint(note, vkey, origin="example.com/log") == checkpoint


async def test_checkpoint_round_trip_keeps_extensions_and_empty_tree(
    signer: Signer, vkey: str
) -> None:
    checkpoint = Checkpoint("example.com/log", 0, EMPTY_ROOT, ("extension line",))
    note = await sign_checkpoint(checkpoint, "example.com/log", signer)
    assert verify_checkpoint(note, vkey) == checkpoint


checkpoints = st.builds(
    Checkpoint,
    origin=st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), min_size=1),
    size=st.integers(min_value=0, max_value=MAX_TREE_SIZE),
    root_hash=st.binary(min_size=32, max_size=32),
    extensions=st.lists(
        st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), min_size=1),
        max_size=3,
    ).map(tuple),
)


@settings(max_examples=50)
@given(checkpoint=checkpoints)
async def test_any_checkpoint_round_trips(checkpoint: Checkpoint) -> None:
    key = Ed25519PrivateKey.generate()
    note = await sign_checkpoint(checkpoint, "example.com/log", Ed25519TestSigner(key))
    vkey = verifier_key("example.com/log", key.public_key())
    assert verify_checkpoint(note, vkey) == checkpoint


# -- rejections: checkpoint content ------------------------------------------------------------


async def _signed(text: str, signer: Signer) -> str:
    return await sign_note(text, "example.com/log", signer)


ROOT_LINE = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("example.com/log\n5\n", "needs origin, tree size and root hash"),
        (f"\n5\n{ROOT_LINE}\n", "must be non-empty"),
        (f"example.com/log\n5\n{ROOT_LINE}\n\nextension\n", "must be non-empty"),
        (f"example.com/log\n05\n{ROOT_LINE}\n", "'05' is not a decimal uint64"),
        (f"example.com/log\n-1\n{ROOT_LINE}\n", "'-1' is not a decimal"),
        (f"example.com/log\n+1\n{ROOT_LINE}\n", "'\\+1' is not a decimal"),
        (f"example.com/log\n1_000\n{ROOT_LINE}\n", "'1_000' is not a decimal"),
        (f"example.com/log\n\u0661\n{ROOT_LINE}\n", "is not a decimal"),
        (f"example.com/log\n 5\n{ROOT_LINE}\n", "' 5' is not a decimal"),
        (f"example.com/log\n{2**64}\n{ROOT_LINE}\n", "is not a decimal uint64"),
        ("example.com/log\n5\nnot base64!\n", "is not the base64 of 32 bytes"),
        ("example.com/log\n5\n" + base64.b64encode(b"x" * 31).decode() + "\n", "of 32 bytes"),
        ("example.com/log\n5\n" + ROOT_LINE.rstrip("=") + "\n", "of 32 bytes"),
        (
            "example.com/log\n5\n" + base64.urlsafe_b64encode(b"\xff" * 32).decode() + "\n",
            "of 32 bytes",
        ),
    ],
)
async def test_malformed_checkpoint_bodies_are_rejected(
    text: str, reason: str, signer: Signer, vkey: str
) -> None:
    with pytest.raises(VerificationFailed, match=reason):
        verify_checkpoint(await _signed(text, signer), vkey)


async def test_non_canonical_base64_root_is_rejected(signer: Signer, vkey: str) -> None:
    canonical = base64.b64encode(b"\x00" * 32).decode()  # ends in "A=": two spare zero bits
    non_canonical = canonical[:-2] + "B="
    assert base64.b64decode(non_canonical) == b"\x00" * 32
    text = f"example.com/log\n5\n{non_canonical}\n"
    with pytest.raises(VerificationFailed, match="is not the base64 of 32 bytes"):
        verify_checkpoint(await _signed(text, signer), vkey)


async def test_the_largest_uint64_tree_size_is_accepted(signer: Signer, vkey: str) -> None:
    text = f"example.com/log\n{MAX_TREE_SIZE}\n{ROOT_LINE}\n"
    assert verify_checkpoint(await _signed(text, signer), vkey).size == MAX_TREE_SIZE


async def test_checkpoint_key_name_is_the_origin_by_default(
    signer: Signer, private_key: Ed25519PrivateKey
) -> None:
    """C2SP tlog-checkpoint: "the key name SHOULD be the origin"; so our default."""
    origin = "pavilion.local/audit/tenant-1"
    note = await sign_checkpoint(Checkpoint(origin, 3, ROOT), None, signer)
    assert [s.key_name for s in parse_signed_note(note).signatures] == [origin]
    assert signed_under(note, origin)
    assert not signed_under(note, "pavilion.local")
    assert not signed_under("not a note", origin)
    vkey = verifier_key(origin, private_key.public_key())
    assert vkey.startswith(origin + "+")
    assert verify_checkpoint(note, vkey, origin=origin).size == 3


async def test_a_checkpoint_verifies_under_any_of_the_keys_given(
    signer: Signer, private_key: Ed25519PrivateKey
) -> None:
    """A log that renamed its key keeps checking its older notes: the note must verify under
    one of the verifier keys; lines under the others are ignored (signed-note spec)."""
    origin = "pavilion.local/audit/tenant-1"
    public = private_key.public_key()
    current, legacy = verifier_key(origin, public), verifier_key("pavilion.local", public)
    old_note = await sign_checkpoint(Checkpoint(origin, 2, ROOT), "pavilion.local", signer)
    new_note = await sign_checkpoint(Checkpoint(origin, 3, ROOT), None, signer)
    assert verify_checkpoint(old_note, [current, legacy], origin=origin).size == 2
    assert verify_checkpoint(new_note, (current, legacy), origin=origin).size == 3
    with pytest.raises(VerificationFailed, match=r"not signed by pavilion\.local/audit/tenant-1"):
        verify_checkpoint(old_note, current)
    stranger = verifier_key(origin, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(VerificationFailed, match=r"not signed by .*; note is not signed by"):
        verify_checkpoint(new_note, [stranger, legacy])
    with pytest.raises(VerificationFailed, match="no verifier key"):
        verify_checkpoint(new_note, [])


async def test_checkpoint_for_another_origin_is_rejected(signer: Signer, vkey: str) -> None:
    note = await sign_checkpoint(
        Checkpoint("other.example/log", 1, ROOT), "example.com/log", signer
    )
    with pytest.raises(VerificationFailed, match=r"for origin 'other\.example/log', expected"):
        verify_checkpoint(note, vkey, origin="example.com/log")


async def test_checkpoint_signed_by_another_key_is_rejected(signer: Signer) -> None:
    note = await sign_checkpoint(Checkpoint("example.com/log", 1, ROOT), "example.com/log", signer)
    stranger = verifier_key("example.com/log", Ed25519PrivateKey.generate().public_key())
    with pytest.raises(VerificationFailed, match=r"not signed by example.com/log\+[0-9a-f]{8}"):
        verify_checkpoint(note, stranger)


async def test_tampered_checkpoint_is_rejected(signer: Signer, vkey: str) -> None:
    note = await sign_checkpoint(Checkpoint("example.com/log", 10, ROOT), "example.com/log", signer)
    tampered = note.replace("\n10\n", "\n11\n", 1)
    with pytest.raises(VerificationFailed, match="does not verify"):
        verify_checkpoint(tampered, vkey)


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (("o", -1, ROOT), "size -1 is outside"),
        (("o", 2**64, ROOT), "is outside 0..2\\^64-1"),
        (("o", 1, b"short"), "root hash is 5 bytes"),
        (("", 1, ROOT), "line '' is empty"),
        (("a\nb", 1, ROOT), "contains a newline"),
        (("o", 1, ROOT, ("",)), "line '' is empty"),
        (("o", 1, ROOT, ("tab\there",)), "control character"),
        (("o", 1, ROOT, ("\ud800",)), "not valid UTF-8"),
    ],
)
def test_checkpoint_rejects_values_it_cannot_encode(
    arguments: tuple[Any, ...], reason: str
) -> None:
    with pytest.raises(CryptoError, match=reason):
        Checkpoint(*arguments)


# -- rejections: note envelope --------------------------------------------------------------


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        (TEXT, "no blank line"),
        (TEXT + "\n", "no signature lines ending in a newline"),
        (PETER_NOTE[:-1], "no signature lines ending in a newline"),
        ("\x01" + PETER_NOTE, "control character"),
        (PETER_NOTE.replace("\n", "\r\n"), "control character"),
        (b"\xff" + PETER_NOTE.encode(), "not valid UTF-8"),
        ("\udcff" + PETER_NOTE, "not valid UTF-8"),
        (TEXT + "\n" + PETER["signature_line"] + "Unexpected line.\n", "does not start with an em"),
        (TEXT + "\n" + PETER["signature_line"].replace(EM_DASH, "--"), "does not start with an em"),
        (TEXT + "\n" + PETER["signature_line"].replace(EM_DASH + " ", EM_DASH), "em dash"),
        (
            TEXT + "\n" + PETER["signature_line"].replace("PeterNeumann", "Bad Name"),
            "is not base64",
        ),
        (
            TEXT + "\n" + PETER["signature_line"].replace("PeterNeumann", "Peter+Neumann"),
            "invalid key name",
        ),
        (
            TEXT + "\n" + PETER["signature_line"].replace("PeterNeumann", "Peter\u00a0Neumann"),
            "invalid key name",
        ),
        (TEXT + "\n" + EM_DASH + " PeterNeumann\n", "is not base64"),
        (TEXT + "\n" + EM_DASH + " PeterNeumann \n", "is not base64"),
        (TEXT + "\n" + EM_DASH + " PeterNeumann AAAAAA==\n", "is not base64"),
        (TEXT + "\n" + EM_DASH + " PeterNeumann x08g\n", "is not base64"),
        (TEXT + "\n" + PETER["signature_line"].replace("=\n", "\n"), "is not base64"),
    ],
)
def test_malformed_notes_are_rejected(note: str | bytes, reason: str) -> None:
    with pytest.raises(VerificationFailed, match=reason):
        verify_note(note, PETER["verifier_key"])


def test_too_many_signatures_are_rejected() -> None:
    assert verify_note(
        TEXT + "\n" + PETER["signature_line"] * MAX_SIGNATURES, PETER["verifier_key"]
    )
    with pytest.raises(VerificationFailed, match=f"more than {MAX_SIGNATURES} signatures"):
        verify_note(TEXT + "\n" + PETER["signature_line"] * 101, PETER["verifier_key"])


def test_signature_of_the_wrong_length_under_a_known_key_is_rejected() -> None:
    blob = bytes.fromhex(PETER["key_id_hex"]) + b"\x00" * 10
    line = f"{EM_DASH} PeterNeumann {base64.b64encode(blob).decode()}\n"
    assert parse_signed_note(TEXT + "\n" + line).signatures == (
        NoteSignature("PeterNeumann", bytes.fromhex("c74f20a3"), b"\x00" * 10),
    )
    with pytest.raises(VerificationFailed, match="does not verify"):
        verify_note(TEXT + "\n" + line, PETER["verifier_key"])


def test_signatures_sharing_only_name_or_only_key_id_are_ignored() -> None:
    line = PETER["signature_line"]
    same_name_other_id = line.replace("x08go", "xxxxx")
    same_id_other_name = line.replace("PeterNeumann", "PeterNeuman")
    for note in (TEXT + "\n" + same_name_other_id, TEXT + "\n" + same_id_other_name):
        with pytest.raises(VerificationFailed, match="not signed by PeterNeumann"):
            verify_note(note, PETER["verifier_key"])
    assert verify_note(TEXT + "\n" + same_id_other_name + line, PETER["verifier_key"]) == TEXT


def test_blank_lines_in_the_text_belong_to_the_text() -> None:
    note = "a\n\nb\n\n" + PETER["signature_line"]
    assert parse_signed_note(note).text == "a\n\nb\n"


# -- rejections: verifier keys --------------------------------------------------------------


@pytest.mark.parametrize(
    ("vkey", "reason"),
    [
        ("PeterNeumann", "is not <name>"),
        ("PeterNeumann+c74f20a3", "is not <name>"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "is not <name>"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "is not <name>"),
        ("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "is not <name>"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "is not <name>"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TX", "does not match"),
        ("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not an Ed25519"),
        (
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEYA=",
            "not an Ed25519",
        ),
    ],
)
def test_malformed_verifier_keys_are_rejected(vkey: str, reason: str) -> None:
    with pytest.raises(VerificationFailed, match=reason):
        verify_note(PETER_NOTE, vkey)


def test_verifier_key_hex_id_is_case_insensitive() -> None:
    assert verify_note(PETER_NOTE, PETER["verifier_key"].replace("c74f20a3", "C74F20A3")) == TEXT


def test_verifier_key_rejects_invalid_names(private_key: Ed25519PrivateKey) -> None:
    with pytest.raises(CryptoError, match="not a valid note key name"):
        verifier_key("has space", private_key.public_key())


# -- rejections: signing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key_name", "reason"),
    [
        ("no final newline", "k", "does not end in a newline"),
        ("bell \x07\n", "k", "control character"),
        ("\ud800\n", "k", "not valid UTF-8"),
        (TEXT, "", "not a valid note key name"),
        (TEXT, "a+b", "not a valid note key name"),
        (TEXT, "a b", "not a valid note key name"),
        (TEXT, "a\x00b", "not a valid note key name"),
    ],
)
async def test_sign_note_rejects_what_it_cannot_encode(
    text: str, key_name: str, reason: str, signer: Signer
) -> None:
    with pytest.raises(CryptoError, match=reason):
        await sign_note(text, key_name, signer)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"algorithm": "ES256"}, "need an Ed25519 signer, not ES256"),
        ({"jwk_override": {"kty": "EC", "crv": "P-256", "x": "AA"}}, "need an Ed25519 signer"),
        ({"jwk_override": {"kty": "OKP", "crv": "Ed25519"}}, "no valid Ed25519 key"),
        ({"jwk_override": {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}}, "no valid Ed25519 key"),
        ({"signature_override": b"\x00" * 64}, "does not verify under its public key"),
    ],
)
async def test_sign_note_rejects_unfit_signers(
    options: dict[str, Any], reason: str, private_key: Ed25519PrivateKey
) -> None:
    with pytest.raises(CryptoError, match=reason):
        await sign_note(TEXT, "k", Ed25519TestSigner(private_key, **options))


async def test_signer_reporting_another_public_key_is_caught(
    private_key: Ed25519PrivateKey,
) -> None:
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    lying = Ed25519TestSigner(
        private_key, jwk_override={"kty": "OKP", "crv": "Ed25519", "x": b64url(other)}
    )
    with pytest.raises(CryptoError, match="does not verify under its public key"):
        await sign_checkpoint(Checkpoint("o", 1, ROOT), "k", lying)
