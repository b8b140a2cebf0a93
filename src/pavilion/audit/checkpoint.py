"""Signed tree heads: C2SP tlog-checkpoint bodies in C2SP signed notes, signed with Ed25519.

The formats are the ones the transparency ecosystem already speaks (c2sp.org/tlog-checkpoint,
c2sp.org/signed-note, golang.org/x/mod/sumdb/note), so a tenant's auditor can check our
checkpoints with off-the-shelf tools and keep them as evidence. A signed note is::

    <text ending in a newline>
    <blank line>
    — <key name> <base64(4-byte key ID || Ed25519 signature over the text)>

and a checkpoint's text is its origin, tree size, base64 root hash and optional extension
lines. The C2SP tlog-checkpoint spec says the key name SHOULD be the origin, so the log signs
each tenant's checkpoints under the name ``<origin prefix>/<tenant id>``; checkpoints signed
before that under the prefix's host alone (``pavilion.local``) still verify with the same key
under that legacy name (:func:`verify_checkpoint` takes several verifier keys). Verification
raises :class:`~pavilion.errors.VerificationFailed` with the reason; signing problems (a
non-Ed25519 signer, a bad key name or text) raise :class:`~pavilion.errors.CryptoError`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pavilion.audit.merkle import HASH_SIZE
from pavilion.errors import CryptoError, VerificationFailed
from pavilion.jose import b64url_decode
from pavilion.keystore.signer import Signer

#: Go's sumdb/note cap; the signed-note spec asks verifiers to accept at least 16.
MAX_SIGNATURES = 100
#: Tree sizes are uint64 in every other implementation.
MAX_TREE_SIZE = 2**64 - 1

_ED25519_TYPE = b"\x01"
_KEY_ID_SIZE = 4
_ED25519_KEY_SIZE = 32
_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_CONTROL_CHARACTER = re.compile(r"[\x00-\x09\x0b-\x1f]")  # all below U+0020 except newline
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_KEY_ID_HEX = re.compile(r"[0-9a-fA-F]{8}")


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: who (origin), how many leaves (size) and their Merkle root."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CryptoError(f"checkpoint tree size {self.size} is outside 0..2^64-1")
        if len(self.root_hash) != HASH_SIZE:
            raise CryptoError(f"checkpoint root hash is {len(self.root_hash)} bytes, not 32")
        for line in (self.origin, *self.extensions):
            defect = _line_defect(line)
            if defect is not None:
                raise CryptoError(f"checkpoint line {line!r} {defect}")

    def body(self) -> str:
        """The note text that gets signed, ending in a newline."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        return "".join(
            f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions)
        )


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note, not yet verified."""

    key_name: str
    key_id: bytes
    signature: bytes


class SignedNote(NamedTuple):
    """A note split into its signed text (with its final newline) and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...]


@dataclass(frozen=True)
class NoteVerifier:
    """A parsed verifier key: the (name, key ID) a signature line must carry, and the key."""

    key_name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    def __str__(self) -> str:
        return f"{self.key_name}+{self.key_id.hex()}"


def note_key_id(key_name: str, public_key: Ed25519PublicKey) -> bytes:
    """SHA-256(key name || 0x0A || 0x01 || public key)[:4], the signed-note Ed25519 key ID."""
    material = key_name.encode("utf-8") + b"\n" + _ED25519_TYPE + _raw_public_key(public_key)
    return hashlib.sha256(material).digest()[:_KEY_ID_SIZE]


def verifier_key(key_name: str, public_key: Ed25519PublicKey) -> str:
    """The ``<name>+<hex key ID>+<base64(0x01 || public key)>`` string auditors configure."""
    if not _is_valid_key_name(key_name):
        raise CryptoError(f"{key_name!r} is not a valid note key name")
    encoded_key = base64.b64encode(_ED25519_TYPE + _raw_public_key(public_key)).decode("ascii")
    return f"{key_name}+{note_key_id(key_name, public_key).hex()}+{encoded_key}"


def parse_verifier_key(text: str) -> NoteVerifier:
    """Parse a verifier key string, checking its key ID against its name and key."""
    key_name, _, rest = text.partition("+")
    key_id_hex, _, encoded_key = rest.partition("+")
    key = _decode_base64(encoded_key)
    if not _is_valid_key_name(key_name) or not _KEY_ID_HEX.fullmatch(key_id_hex) or not key:
        raise VerificationFailed("verifier key is not <name>+<8 hex digits>+<base64 key>")
    if key[:1] != _ED25519_TYPE or len(key) != 1 + _ED25519_KEY_SIZE:
        raise VerificationFailed("verifier key is not an Ed25519 (type 0x01) key")
    public_key = Ed25519PublicKey.from_public_bytes(key[1:])
    key_id = bytes.fromhex(key_id_hex)
    if note_key_id(key_name, public_key) != key_id:
        raise VerificationFailed("verifier key ID does not match its name and public key")
    return NoteVerifier(key_name, key_id, public_key)


async def sign_note(text: str, key_name: str, signer: Signer) -> str:
    """Sign ``text`` (which must end in a newline) into a signed note with one signature.

    The fresh signature is checked against the signer's public key before it leaves, so a
    keystore that signs with a different key than it reports fails here and not at an auditor.
    """
    defect = "does not end in a newline" if not text.endswith("\n") else _text_defect(text)
    if defect is not None:
        raise CryptoError(f"note text {defect}")
    if not _is_valid_key_name(key_name):
        raise CryptoError(f"{key_name!r} is not a valid note key name")
    public_key = _signer_public_key(signer)
    message = text.encode("utf-8")
    signature = await signer.sign(message)
    try:
        public_key.verify(signature, message)
    except InvalidSignature as exc:
        raise CryptoError("the signer's signature does not verify under its public key") from exc
    blob = note_key_id(key_name, public_key) + signature
    return f"{text}\n{_SIGNATURE_PREFIX}{key_name} {base64.b64encode(blob).decode('ascii')}\n"


async def sign_checkpoint(checkpoint: Checkpoint, key_name: str | None, signer: Signer) -> str:
    """The checkpoint as a signed note under ``key_name`` (None: the checkpoint's origin, as
    C2SP tlog-checkpoint says the key name SHOULD be)."""
    return await sign_note(checkpoint.body(), key_name or checkpoint.origin, signer)


def signed_under(note: str, key_name: str) -> bool:
    """Whether a well-formed note carries a signature line under ``key_name`` (unverified)."""
    try:
        return any(s.key_name == key_name for s in parse_signed_note(note).signatures)
    except VerificationFailed:
        return False


def parse_signed_note(note: str | bytes) -> SignedNote:
    """Split a note into text and signature lines, rejecting anything the spec forbids.

    Nothing is verified here: the text must be ignored until :func:`verify_note` accepts it.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise VerificationFailed("note is not valid UTF-8") from exc
    defect = _text_defect(note)
    if defect is not None:
        raise VerificationFailed(f"note {defect}")
    split = note.rfind("\n\n")
    if split < 0:
        raise VerificationFailed("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise VerificationFailed("note has no signature lines ending in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationFailed(f"note has more than {MAX_SIGNATURES} signatures")
    return SignedNote(text, tuple(_parse_signature_line(line) for line in lines))


def verify_note(note: str | bytes, verifier_key: str) -> str:
    """Return the note's text once a signature by the key verifies.

    Per the signed-note spec, lines by other keys (name or ID differ) are ignored, every line
    by the key must verify, and at least one must be there.
    """
    verifier = parse_verifier_key(verifier_key)
    signed = parse_signed_note(note)
    message = signed.text.encode("utf-8")
    matching = [
        line
        for line in signed.signatures
        if (line.key_name, line.key_id) == (verifier.key_name, verifier.key_id)
    ]
    if not matching:
        found = ", ".join(f"{s.key_name}+{s.key_id.hex()}" for s in signed.signatures)
        raise VerificationFailed(f"note is not signed by {verifier} (signed by: {found})")
    for line in matching:
        try:
            verifier.public_key.verify(line.signature, message)
        except InvalidSignature as exc:
            raise VerificationFailed(f"signature by {verifier} does not verify") from exc
    return signed.text


def verify_checkpoint(
    note: str | bytes, verifier_key: str | Sequence[str], *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint and parse it; pass ``origin`` to pin the log it is for.

    ``verifier_key`` may be several keys (a log's current key name and a legacy one): the note
    must verify under one of them, and signature lines under the others are ignored.
    """
    keys = [verifier_key] if isinstance(verifier_key, str) else list(verifier_key)
    if not keys:
        raise VerificationFailed("no verifier key to check the checkpoint with")
    failures: list[VerificationFailed] = []
    for key in keys:
        try:
            text = verify_note(note, key)
            break
        except VerificationFailed as exc:
            failures.append(exc)
    else:
        if len(failures) == 1:
            raise failures[0]
        raise VerificationFailed("; ".join(f.detail for f in failures))
    checkpoint = _parse_checkpoint(text)
    if origin is not None and checkpoint.origin != origin:
        raise VerificationFailed(
            f"checkpoint is for origin {checkpoint.origin!r}, expected {origin!r}"
        )
    return checkpoint


def _parse_checkpoint(text: str) -> Checkpoint:
    """Parse verified note text (so UTF-8, control-free, newline-ended) as a checkpoint."""
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise VerificationFailed("checkpoint needs origin, tree size and root hash lines")
    origin, size_line, root_line, *extensions = lines
    if not origin or "" in extensions:
        raise VerificationFailed("checkpoint origin and extension lines must be non-empty")
    if not _DECIMAL.fullmatch(size_line) or int(size_line) > MAX_TREE_SIZE:
        raise VerificationFailed(
            f"checkpoint tree size {size_line!r} is not a decimal uint64 without leading zeros"
        )
    root_hash = _decode_base64(root_line)
    if root_hash is None or len(root_hash) != HASH_SIZE:
        raise VerificationFailed(
            f"checkpoint root hash {root_line!r} is not the base64 of {HASH_SIZE} bytes"
        )
    return Checkpoint(origin, int(size_line), root_hash, tuple(extensions))


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise VerificationFailed(f"signature line {line!r} does not start with an em dash")
    key_name, _, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    if not _is_valid_key_name(key_name):
        raise VerificationFailed(f"signature line {line!r} has an invalid key name")
    blob = _decode_base64(encoded)
    if blob is None or len(blob) <= _KEY_ID_SIZE:
        raise VerificationFailed(f"signature line {line!r} is not base64(key ID || signature)")
    return NoteSignature(key_name, blob[:_KEY_ID_SIZE], blob[_KEY_ID_SIZE:])


def _signer_public_key(signer: Signer) -> Ed25519PublicKey:
    jwk = signer.public_jwk()
    if signer.algorithm != "EdDSA" or jwk.get("crv") != "Ed25519":
        raise CryptoError(f"signed notes need an Ed25519 signer, not {signer.algorithm}")
    try:
        return Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    except (KeyError, ValueError) as exc:
        raise CryptoError("the signer's public JWK has no valid Ed25519 key") from exc


def _raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _is_valid_key_name(name: str) -> bool:
    """Non-empty, no Unicode spaces, no plus (signed-note spec), and fit for a note line."""
    return (
        bool(name)
        and "+" not in name
        and not any(character.isspace() for character in name)
        and _text_defect(name) is None
    )


def _line_defect(line: str) -> str | None:
    """Why ``line`` cannot be one line of a checkpoint, or None."""
    if not line:
        return "is empty"
    if "\n" in line:
        return "contains a newline"
    return _text_defect(line)


def _text_defect(text: str) -> str | None:
    """Why ``text`` cannot be in a note (UTF-8, no control characters but newline), or None."""
    if _CONTROL_CHARACTER.search(text):
        return "contains an ASCII control character other than newline"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    return None


def _decode_base64(text: str) -> bytes | None:
    """Standard padded base64, canonical only, so one value has exactly one spelling."""
    try:
        decoded = base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        return None
    return decoded if base64.b64encode(decoded).decode("ascii") == text else None
