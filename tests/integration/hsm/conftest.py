"""A fresh SoftHSM2 token per test, in a temporary directory.

SoftHSM2 reads ``SOFTHSM2_CONF`` (and rescans its token directory) in ``C_Initialize``, so the
fixture points the variable at a config whose ``directories.tokendir`` is the test's temporary
directory and initialises a token there with ``softhsm2-util``. ``Pkcs11Token`` finalises the
module when its last token closes, so the next test sees only its own token.

Needs the Debian/Ubuntu package ``softhsm2`` (module ``/usr/lib/softhsm/libsofthsm2.so``,
override with ``SOFTHSM2_MODULE``); the tests are skipped without it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from hsm_support import SOFTHSM_MODULE, SoftHsm, init_softhsm_token, require_softhsm

from pavilion.keystore.pkcs11.worker import active_workers


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHsm]:
    """A fresh SoftHSM2 token (label ``pavilion-test``) in ``tmp_path``; ``SOFTHSM2_CONF`` set."""
    require_softhsm()
    tokendir = tmp_path / "tokens"
    tokendir.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    hsm = SoftHsm(
        module_path=SOFTHSM_MODULE,
        conf=conf,
        tokendir=tokendir,
        label="pavilion-test",
        pin=secrets.token_hex(4),
        so_pin=secrets.token_hex(4),
    )
    init_softhsm_token(hsm.label, hsm.pin, hsm.so_pin)
    yield hsm
    leftovers = active_workers()
    for worker in leftovers:  # a test that forgot to close: still finalise for the next one
        worker.stop().result(10)
        worker.join(10)
    assert not leftovers, "a test left a PKCS#11 token open"
