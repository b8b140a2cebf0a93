"""Status-list encode/decode benchmark: 1,000,000 entries with 1% revoked.

Token Status List (1 and 2 bits, ZLIB level 9) and W3C Bitstring Status List (1 bit, GZIP level
9), each beside a plain ``zlib.compress`` of the same bytes at zlib's default level as the
baseline. Sizes are of the compressed bytes (the base64url text is 4/3 of that) in KB of 1,000
bytes; times are medians. The headline figures come last, one per line, as
``name: value unit (target ...)``.

    .venv/bin/python bench/status_lists.py [--quick]
"""

from __future__ import annotations

import argparse
import base64
import random
import statistics
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from pavilion.credentials.status import BitstringStatusList, TokenStatus, TokenStatusList

ENTRIES = 1_000_000
REVOKED = ENTRIES // 100
SEED = 20240611
SIZE_TARGET_KB = 20.0
ENCODE_TARGET_MS = 200.0


@dataclass
class Result:
    name: str
    raw_bytes: int
    compressed_bytes: int
    text_chars: int
    baseline_bytes: int
    encode_ms: float
    decode_ms: float


def median_ms(action: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1000


def unbase64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def bench_token(bits: int, revoked: list[int], repeats: int) -> Result:
    status_list = TokenStatusList(ENTRIES, bits)
    for index in revoked:
        status_list.set(index, TokenStatus.INVALID)
    encoded = status_list.encode()
    raw = status_list.to_bytes()
    return Result(
        name=f"token_status_list_{bits}bit",
        raw_bytes=len(raw),
        compressed_bytes=len(unbase64url(encoded["lst"])),
        text_chars=len(encoded["lst"]),
        baseline_bytes=len(zlib.compress(raw)),
        encode_ms=median_ms(status_list.encode, repeats),
        decode_ms=median_ms(lambda: TokenStatusList.decode(encoded), repeats),
    )


def bench_bitstring(revoked: list[int], repeats: int) -> Result:
    status_list = BitstringStatusList(ENTRIES)
    for index in revoked:
        status_list.set(index, 1)
    encoded = status_list.encode_list()
    raw = status_list.to_bytes()
    return Result(
        name="bitstring_1bit",
        raw_bytes=len(raw),
        compressed_bytes=len(unbase64url(encoded[1:])),
        text_chars=len(encoded),
        baseline_bytes=len(zlib.compress(raw)),
        encode_ms=median_ms(status_list.encode_list, repeats),
        decode_ms=median_ms(lambda: BitstringStatusList.decode_list(encoded), repeats),
    )


def bench_access(revoked: list[int]) -> float:
    """Mean nanoseconds of one ``set`` plus one ``get`` on the 1-bit Token Status List."""
    status_list = TokenStatusList(ENTRIES, 1)
    start = time.perf_counter()
    for index in revoked:
        status_list.set(index, 1)
        status_list.get(index)
    return (time.perf_counter() - start) / len(revoked) * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a few seconds)")
    args = parser.parse_args()
    repeats = 5 if args.quick else 30

    revoked = random.Random(SEED).sample(range(ENTRIES), REVOKED)
    results = [
        bench_token(1, revoked, repeats),
        bench_token(2, revoked, repeats),
        bench_bitstring(revoked, repeats),
    ]

    print(f"{ENTRIES:,} entries, {REVOKED:,} revoked (seed {SEED}), median of {repeats} runs")
    print(
        f"{'list':<22} {'raw B':>8} {'ours B':>8} {'text ch':>8} {'zlib-6 B':>9} "
        f"{'ours/base':>9} {'raw/ours':>8} {'enc ms':>7} {'dec ms':>7}"
    )
    for r in results:
        print(
            f"{r.name:<22} {r.raw_bytes:>8} {r.compressed_bytes:>8} {r.text_chars:>8} "
            f"{r.baseline_bytes:>9} {r.compressed_bytes / r.baseline_bytes:>9.3f} "
            f"{r.raw_bytes / r.compressed_bytes:>8.1f} {r.encode_ms:>7.1f} {r.decode_ms:>7.1f}"
        )
    print(f"set+get on a bytearray: {bench_access(revoked):.0f} ns per pair")
    print()

    token_1, token_2, bitstring = results
    size_target = f"(target < {SIZE_TARGET_KB:.0f} KB)"
    encode_target = f"(target < {ENCODE_TARGET_MS:.0f} ms)"
    print(f"token_status_list_1m_1pct_size: {token_1.compressed_bytes / 1000:.1f} KB {size_target}")
    print(f"token_status_list_1m_1pct_encode: {token_1.encode_ms:.1f} ms {encode_target}")
    print(f"token_status_list_1m_1pct_decode: {token_1.decode_ms:.1f} ms (target n/a)")
    token_2_kb = token_2.compressed_bytes / 1000
    print(f"token_status_list_2bit_1m_1pct_size: {token_2_kb:.1f} KB (target n/a)")
    print(f"token_status_list_2bit_1m_1pct_encode: {token_2.encode_ms:.1f} ms (target n/a)")
    print(f"bitstring_1m_1pct_size: {bitstring.compressed_bytes / 1000:.1f} KB {size_target}")
    print(f"bitstring_1m_1pct_encode: {bitstring.encode_ms:.1f} ms {encode_target}")
    print(f"bitstring_1m_1pct_decode: {bitstring.decode_ms:.1f} ms (target n/a)")


if __name__ == "__main__":
    main()
