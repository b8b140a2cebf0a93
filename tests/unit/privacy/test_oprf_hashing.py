"""expand_message_xmd (RFC 9380 §5.3.1), HashToGroup/HashToScalar and DeriveKeyPair edges."""

from __future__ import annotations

import pytest

from pavilion.privacy import oprf
from pavilion.privacy import ristretto as r255
from pavilion.privacy.oprf import suite as oprf_suite

# RFC 9380 Appendix K.3: expand_message_xmd(SHA-512), DST "QUUX-V01-CS02-with-expander-SHA512-256".
XMD_DST = b"QUUX-V01-CS02-with-expander-SHA512-256"
XMD_VECTORS = [
    (b"", 0x20, "6b9a7312411d92f921c6f68ca0b6380730a1a4d982c507211a90964c394179ba"),
    (b"abc", 0x20, "0da749f12fbe5483eb066a5f595055679b976e93abe9be6f0f6318bce7aca8dc"),
    (
        b"",
        0x80,
        "41b037d1734a5f8df225dd8c7de38f851efdb45c372887be655212d07251b921"
        "b052b62eaed99b46f72f2ef4cc96bfaf254ebbbec091e1a3b9e4fb5e5b619d2e"
        "0c5414800a1d882b62bb5cd1778f098b8eb6cb399d5d9d18f5d5842cf5d13d7e"
        "b00a7cff859b605da678b318bd0e65ebff70bec88c753b159a805d2c89c55961",
    ),
    (
        b"abc",
        0x80,
        "7f1dddd13c08b543f2e2037b14cefb255b44c83cc397c1786d975653e36a6b11"
        "bdd7732d8b38adb4a0edc26a0cef4bb45217135456e58fbca1703cd6032cb134"
        "7ee720b87972d63fbf232587043ed2901bce7f22610c0419751c065922b48843"
        "1851041310ad659e4b23520e1772ab29dcdeb2002222a363f0c2b1c972b3efe1",
    ),
]


@pytest.mark.parametrize(("msg", "length", "expected"), XMD_VECTORS)
def test_expand_message_xmd_rfc9380(msg: bytes, length: int, expected: str) -> None:
    assert oprf.expand_message_xmd(msg, XMD_DST, length).hex() == expected


@pytest.mark.parametrize("length", [0, -1, 255 * 64 + 1, 0x10000])
def test_expand_message_xmd_rejects_lengths(length: int) -> None:
    with pytest.raises(oprf.InvalidInput):
        oprf.expand_message_xmd(b"msg", XMD_DST, length)


def test_expand_message_xmd_longest_output_and_dst() -> None:
    assert len(oprf.expand_message_xmd(b"", b"x" * 255, 255 * 64)) == 255 * 64
    with pytest.raises(oprf.InvalidInput):
        oprf.expand_message_xmd(b"", b"x" * 256, 32)


def test_context_strings() -> None:
    assert oprf.context_string(oprf.Mode.OPRF) == b"OPRFV1-\x00-ristretto255-SHA512"
    assert oprf.context_string(oprf.Mode.VOPRF) == b"OPRFV1-\x01-ristretto255-SHA512"
    assert oprf.context_string(oprf.Mode.POPRF) == b"OPRFV1-\x02-ristretto255-SHA512"


def test_hash_to_group_identity_is_invalid_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(r255, "from_hash", lambda _h: r255.IDENTITY)
    with pytest.raises(oprf.InvalidInput, match="identity"):
        oprf.OPRFClient().blind(b"input")
    with pytest.raises(oprf.InvalidInput, match="identity"):
        oprf.OPRFServer(oprf.generate_key_pair().sk).evaluate(b"input")


def test_a_batch_that_hashes_to_the_identity_is_invalid_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``evaluate_many`` maps in C; the all-zero uniform bytes map to the identity there."""
    assert r255.from_hash(bytes(64)) == r255.IDENTITY
    monkeypatch.setattr(
        oprf_suite.Suite, "group_hashes", lambda _s, msgs: (bytes(64) for _ in msgs)
    )
    server = oprf.VOPRFServer(oprf.generate_key_pair().sk)
    with pytest.raises(oprf.InvalidInput, match="identity"):
        server.evaluate_many([b"a", b"b"])


def test_group_hashes_are_expand_message_xmd_of_the_group_dst() -> None:
    suite = oprf_suite.SUITES[oprf.Mode.VOPRF]
    msgs = [b"", b"abc", bytes(range(256)) * 3]
    expected = [oprf_suite.expand_message_xmd(m, suite.group_dst, 64) for m in msgs]
    assert list(suite.group_hashes(msgs)) == expected
    assert [suite.hash_to_group(m) for m in msgs] == [r255.from_hash(h) for h in expected]


def test_evaluate_many_is_evaluate_of_each_input_and_checks_lengths() -> None:
    server = oprf.VOPRFServer(oprf.generate_key_pair().sk)
    inputs = [b"", b"x", "\u00fcnicode".encode(), bytes(oprf.MAX_INPUT_BYTES)]
    assert server.evaluate_many(inputs) == [server.evaluate(x) for x in inputs]
    assert server.evaluate_many([]) == []
    with pytest.raises(oprf.InvalidInput, match="longer"):
        server.evaluate_many([b"ok", bytes(oprf.MAX_INPUT_BYTES + 1)])


def test_derive_key_pair_skips_zero_and_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bytes] = []
    real_reduce = r255.scalar_reduce

    def zero_twice(wide: bytes) -> bytes:
        seen.append(wide)
        return bytes(32) if len(seen) <= 2 else real_reduce(wide)

    monkeypatch.setattr(r255, "scalar_reduce", zero_twice)
    key_pair = oprf.derive_key_pair(bytes(32), b"info", oprf.Mode.OPRF)
    assert len(seen) == 3  # counters 0 and 1 gave zero, counter 2 a key
    assert key_pair.pk == r255.scalarmult_base(key_pair.sk)

    monkeypatch.setattr(r255, "scalar_reduce", lambda _wide: bytes(32))
    with pytest.raises(oprf.DeriveKeyPairError):
        oprf.derive_key_pair(bytes(32), b"info", oprf.Mode.OPRF)


def test_derive_key_pair_input_checks() -> None:
    with pytest.raises(oprf.InvalidInput, match="seed"):
        oprf.derive_key_pair(bytes(31), b"", oprf.Mode.VOPRF)
    with pytest.raises(oprf.InvalidInput, match="info"):
        oprf.derive_key_pair(bytes(32), bytes(0x10000), oprf.Mode.VOPRF)


def test_modes_derive_different_keys() -> None:
    keys = {oprf.derive_key_pair(bytes(32), b"", mode).sk for mode in oprf.Mode}
    assert len(keys) == 3


def test_generate_key_pair() -> None:
    first, second = oprf.generate_key_pair(), oprf.generate_key_pair()
    assert first.sk != second.sk
    assert first.pk == r255.scalarmult_base(first.sk)
    assert first.sk.hex() not in repr(first)
