"""Signing throughput of the PKCS#11 backend (SoftHSM2) against the raw token sign rate.

Usage: ``python bench/hsm_sign.py [--quick]``. Creates its own SoftHSM2 token in a temporary
directory, generates an ES256 and an EdDSA key in it, then measures in short wall-clock windows,
interleaved round by round (each figure is the best window):

* raw: python-pkcs11 directly, one thread, one session: ``CKM_ECDSA`` over a precomputed
  SHA-256 digest, ``CKM_EDDSA`` over the message (the primitive);
* ``Pkcs11Signer.sign`` with 1 and with 64 concurrent async callers (all through the token's
  one worker thread), and its ratio to raw;
* pyca ``cryptography`` software ES256 in one thread, as a peer.

The raw loop runs on the main thread while the worker is idle (never at the same time: SoftHSM2
is initialised without locking), through a session of its own that shares the process's login.
The headline figures come last, one per line, as ``name: value unit (target ...)``. The exit
status is 1 when a signer with 64 callers falls below 50% of the raw sign rate.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pkcs11
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pkcs11 import Mechanism, ObjectClass

from pavilion.keystore.pkcs11 import Pkcs11Config, Pkcs11Signer, Pkcs11Token

MODULE = os.environ.get("SOFTHSM2_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
LABEL = "pavilion-bench"
MESSAGE = b"eyJhbGciOiJFUzI1NiIsImtpZCI6ImJlbmNoIn0." + b"x" * 160  # a JWS signing input
CONCURRENCY = 64
TARGET_RATIO = 0.5


def make_token(directory: Path) -> Pkcs11Config:
    """A fresh SoftHSM2 token in ``directory`` (SOFTHSM2_CONF set for this process)."""
    tokendir = directory / "tokens"
    tokendir.mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pin = secrets.token_hex(8)
    init = ["softhsm2-util", "--init-token", "--free", "--label", LABEL]
    subprocess.run(
        [*init, "--so-pin", pin + "so", "--pin", pin],
        check=True,
        capture_output=True,
    )
    return Pkcs11Config(module_path=MODULE, token_label=LABEL, user_pin=pin)


def window_rate(call: Callable[[], object], seconds: float) -> float:
    """Calls per wall-clock second of ``call`` over one window of about ``seconds``."""
    calls, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(20):
            call()
        calls += 20
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start)


async def signer_rate(signer: Pkcs11Signer, callers: int, seconds: float) -> float:
    """Signatures per second with ``callers`` coroutines signing back to back."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds

    async def caller() -> None:
        nonlocal done
        count = 0
        while time.perf_counter() < deadline:
            await signer.sign(MESSAGE)
            count += 1
        done += count

    await asyncio.gather(*(caller() for _ in range(callers)))
    return done / (time.perf_counter() - start)


async def run(config: Pkcs11Config, rounds: int, seconds: float) -> dict[str, float]:
    async with Pkcs11Token(config) as token:
        es = await token.agenerate_key("bench-es256", "ES256")
        ed = await token.agenerate_key("bench-eddsa", "EdDSA")
        for signer in (es, ed):  # warm up the worker and the key handles
            await signer_rate(signer, CONCURRENCY, 0.05)

        # The raw primitive: python-pkcs11 in this thread, its own session (login is shared
        # by the process), used only while the worker is idle.
        lib = pkcs11.lib(config.module_path)
        raw_session = lib.get_token(token_label=config.token_label).open()
        raw_es: Any = raw_session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="bench-es256")
        raw_ed: Any = raw_session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="bench-eddsa")
        digest = hashlib.sha256(MESSAGE).digest()
        software = ec.generate_private_key(ec.SECP256R1())
        software_ed = ed25519.Ed25519PrivateKey.generate()

        sync_workloads: dict[str, Callable[[], object]] = {
            "hsm_es256_raw": lambda: raw_es.sign(digest, mechanism=Mechanism.ECDSA),
            "hsm_eddsa_raw": lambda: raw_ed.sign(MESSAGE, mechanism=Mechanism.EDDSA),
            "software_es256_pyca": lambda: software.sign(MESSAGE, ec.ECDSA(hashes.SHA256())),
            "software_eddsa_pyca": lambda: software_ed.sign(MESSAGE),
        }
        best: dict[str, float] = {}
        try:
            for number in range(1, rounds + 1):
                rates = {name: window_rate(call, seconds) for name, call in sync_workloads.items()}
                for label, signer in (("es256", es), ("eddsa", ed)):
                    rates[f"hsm_{label}_signer_1"] = await signer_rate(signer, 1, seconds)
                    rates[f"hsm_{label}_signer"] = await signer_rate(signer, CONCURRENCY, seconds)
                for name, rate in rates.items():
                    best[name] = max(best.get(name, 0.0), rate)
                summary = ", ".join(f"{name} {rate:,.0f}/s" for name, rate in rates.items())
                print(f"  round {number}: {summary}", flush=True)
        finally:
            raw_session.close()
    return best


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print details, then the headline figures last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (well under a minute)")
    args = parser.parse_args(argv)
    rounds, seconds = (5, 0.3) if args.quick else (5, 2.0)

    if not os.path.isfile(MODULE) or shutil.which("softhsm2-util") is None:
        print(f"hsm_sign: skipped, SoftHSM2 not installed ({MODULE}): apt-get install softhsm2")
        return 0

    with tempfile.TemporaryDirectory(prefix="pavilion-hsm-bench-") as directory:
        config = make_token(Path(directory))
        print(
            f"SoftHSM2 token '{LABEL}' in {directory}; {rounds} rounds of {seconds} s windows, "
            f"async callers 1 and {CONCURRENCY}",
            flush=True,
        )
        best = asyncio.run(run(config, rounds, seconds))

    ratios = {alg: best[f"hsm_{alg}_signer"] / best[f"hsm_{alg}_raw"] for alg in ("es256", "eddsa")}
    ratios_1 = {
        alg: best[f"hsm_{alg}_signer_1"] / best[f"hsm_{alg}_raw"] for alg in ("es256", "eddsa")
    }
    print()
    for alg, name in (("es256", "ES256"), ("eddsa", "EdDSA")):
        print(
            f"hsm_{alg}_raw: {best[f'hsm_{alg}_raw']:.0f} signs/s "
            f"(target reference: python-pkcs11 {name} in one thread)"
        )
        print(
            f"hsm_{alg}_signer_1: {best[f'hsm_{alg}_signer_1']:.0f} signs/s "
            f"(target informational, 1 async caller, {ratios_1[alg]:.2f} of raw)"
        )
        print(
            f"hsm_{alg}_signer: {best[f'hsm_{alg}_signer']:.0f} signs/s "
            f"(target >= {TARGET_RATIO:.0%} of raw hsm sign rate, {CONCURRENCY} async callers)"
        )
        print(f"hsm_{alg}_signer_vs_raw: {ratios[alg]:.2f} ratio (target >= {TARGET_RATIO})")
    print(
        f"software_es256_pyca: {best['software_es256_pyca']:.0f} signs/s "
        "(target reference: pyca cryptography ES256 in one thread)"
    )
    print(
        f"software_eddsa_pyca: {best['software_eddsa_pyca']:.0f} signs/s "
        "(target reference: pyca cryptography Ed25519 in one thread)"
    )
    return 0 if min(ratios.values()) >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
