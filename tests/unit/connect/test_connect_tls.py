"""Client TLS contexts and how TLS failures are told apart."""

from __future__ import annotations

import ssl

import httpx
import pytest
import trustme

from pavilion.connect.tls import client_context, session_parameters, tls_failure
from pavilion.errors import ConfigurationError
from pavilion.providers.types import TlsSettings


def test_contexts_verify_with_tls12_floor_and_may_pin_a_ca_and_demand_13() -> None:
    default = client_context(None)
    assert default.verify_mode is ssl.CERT_REQUIRED
    assert default.check_hostname
    assert default.minimum_version is ssl.TLSVersion.TLSv1_2
    ca = trustme.CA()
    pinned = client_context(
        TlsSettings(ca_certificates=ca.cert_pem.bytes().decode(), min_version="1.3")
    )
    assert pinned.minimum_version is ssl.TLSVersion.TLSv1_3
    assert len(pinned.get_ca_certs()) == 1  # only the provider's CA is trusted


def test_a_client_key_that_does_not_match_is_a_configuration_error() -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("client.example").cert_chain_pems[0].bytes().decode()
    other_key = ca.issue_cert("other.example").private_key_pem.bytes().decode()
    with pytest.raises(ConfigurationError, match="does not load"):
        client_context(TlsSettings(client_certificate=cert, client_private_key=other_key))


def test_tls_failures_are_classified_through_the_exception_chain() -> None:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "certificate has expired"
    wrapped = httpx.ConnectError("boom")
    wrapped.__cause__ = verify
    assert tls_failure(wrapped) == ("tls_verification_failed", "certificate has expired")
    refused = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert")
    refused.reason = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    assert tls_failure(refused)[0] == "tls_client_certificate_refused"  # type: ignore[index]
    other = ssl.SSLError(1, "[SSL: NO_PROTOCOLS_AVAILABLE] no protocols available")
    other.reason = "NO_PROTOCOLS_AVAILABLE"
    assert tls_failure(other) == ("tls_error", "NO_PROTOCOLS_AVAILABLE")
    assert tls_failure(httpx.ConnectError("refused")) is None
    assert session_parameters(None) is None
