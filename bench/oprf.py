"""Throughput of the RFC 9497 ristretto255-SHA512 OPRF against raw libsodium scalar multiplication.

Usage: ``python bench/oprf.py [--quick]``. Every workload runs single-threaded and is timed in
process CPU time, so rates are per core and other processes on the machine do not count against
them; workloads run in short windows interleaved round by round, and each reports its best
window. The headline figures come last, one per line, as ``name: value unit (target ...)``.
The exit status is 1 when BlindEvaluate falls below 85% of the raw scalar multiplication rate.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from pavilion.privacy import oprf
from pavilion.privacy import ristretto as r255

BATCH = 100
TARGET_RATIO = 0.85


def _window_rate(call: Callable[[], object], seconds: float) -> float:
    """Calls per CPU second of ``call`` over one window of about ``seconds`` of CPU time."""
    calls, start = 0, time.process_time()
    deadline = start + seconds
    while True:
        for _ in range(10):
            call()
        calls += 10
        now = time.process_time()
        if now >= deadline:
            return calls / (now - start)


def _best_rates(
    workloads: dict[str, Callable[[], object]], rounds: int, seconds: float
) -> dict[str, float]:
    best = dict.fromkeys(workloads, 0.0)
    for round_number in range(1, rounds + 1):
        rates = {name: _window_rate(call, seconds) for name, call in workloads.items()}
        for name, rate in rates.items():
            best[name] = max(best[name], rate)
        summary = ", ".join(f"{name} {rate:,.0f}/s" for name, rate in rates.items())
        print(f"  round {round_number}: {summary}", flush=True)
    return best


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print details, then the headline figures last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (well under a minute)")
    args = parser.parse_args(argv)
    rounds, seconds = (5, 0.3) if args.quick else (10, 1.5)

    key_pair = oprf.generate_key_pair()
    point = r255.scalarmult_base(r255.scalar_random())
    server = oprf.OPRFServer(key_pair.sk)
    client = oprf.OPRFClient()
    blinded = client.blind(b"benchmark input").blinded_element
    vserver = oprf.VOPRFServer(key_pair.sk, key_pair.pk)
    vclient = oprf.VOPRFClient(key_pair.pk)
    batch = [vclient.blind(i.to_bytes(4, "big")).blinded_element for i in range(BATCH)]

    def client_round() -> bytes:
        state = client.blind(b"benchmark input")
        evaluated = server.blind_evaluate(state.blinded_element)
        return client.finalize(b"benchmark input", state.blind, evaluated)

    workloads: dict[str, Callable[[], object]] = {
        "raw_scalarmult": lambda: r255.scalarmult(key_pair.sk, point),
        "oprf_blind_evaluate": lambda: server.blind_evaluate(blinded),
        "voprf_batch_blind_evaluate": lambda: vserver.blind_evaluate_batch(batch),
        "oprf_client_round": client_round,
    }
    mode = "quick" if args.quick else "full"
    print(f"OPRF ristretto255-SHA512 benchmark ({mode}: {rounds} rounds x {seconds} s windows)")
    best = _best_rates(workloads, rounds, seconds)

    raw = best["raw_scalarmult"]
    evaluate = best["oprf_blind_evaluate"]
    ratio = evaluate / raw
    print(f"raw_scalarmult: {raw:.0f} ops/s (target reference: libsodium through the binding)")
    print(f"oprf_blind_evaluate: {evaluate:.0f} ops/s (target >= 85% of raw scalarmult)")
    print(
        f"voprf_batch{BATCH}_blind_evaluate: {best['voprf_batch_blind_evaluate'] * BATCH:.0f}"
        " elements/s (target informational, one proof per batch)"
    )
    print(
        f"oprf_client_round: {best['oprf_client_round']:.0f} rounds/s"
        " (target informational, blind+blind_evaluate+finalize)"
    )
    print(f"oprf_vs_raw_scalarmult: {ratio:.2f} ratio (target >= {TARGET_RATIO})")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
