"""``pavilion credentials ...``: issue, present and verify from files, trust chains (SQLite)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from joserfc.jwk import ECKey
from typer.testing import CliRunner

from connector_support import provider_body
from pavilion.cli.main import app
from pavilion.jose import b64url_decode
from presentation_support import Holder, envelope_presentation

runner = CliRunner()

CREDENTIAL = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://pavilion.example/contexts/eligibility/v1",
    ],
    "type": ["VerifiableCredential", "AgeOverCredential"],
    "credentialSubject": {"ageOver": {"threshold": 18, "over": True}},
}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAVILION_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PAVILION_DATABASE_URL", raising=False)
    return tmp_path


def _run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output + repr(result.exception)
    return result.stdout


def test_issue_present_and_verify_every_format_from_files(env: Path) -> None:
    _run("db", "upgrade")
    _run("tenants", "create", "acme")
    (env / "credential.json").write_text(json.dumps(CREDENTIAL))
    holder = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
    (env / "holder.json").write_text(json.dumps(holder.as_dict(private=True)))
    (env / "holder-public.json").write_text(json.dumps(holder.as_dict(private=False)))

    for fmt in ("vc2_jose", "jwt_vc", "sd_jwt_vc"):
        extra = ["--holder-jwk", str(env / "holder-public.json")] if fmt == "sd_jwt_vc" else []
        token = _run(
            "credentials",
            "issue",
            "--tenant",
            "acme",
            "--format",
            fmt,
            *extra,
            str(env / "credential.json"),
        ).strip()
        (env / f"{fmt}.txt").write_text(token)
        report = _run(
            "credentials", "verify", "--tenant", "acme", "--json", str(env / f"{fmt}.txt")
        )
        parsed = json.loads(report)
        assert parsed["verified"] is True, parsed
        assert parsed["format"] == fmt

    presentation = _run(
        "credentials",
        "present",
        str(env / "sd_jwt_vc.txt"),
        "--holder-key",
        str(env / "holder.json"),
        "--audience",
        "https://rp.example",
        "--nonce",
        "n-1",
        "--reveal",
        "age_equal_or_over",
    ).strip()
    (env / "presentation.txt").write_text(presentation)
    table = _run(
        "credentials",
        "verify",
        "--tenant",
        "acme",
        str(env / "presentation.txt"),
        "--audience",
        "https://rp.example",
        "--nonce",
        "n-1",
    )
    assert "key_binding" in table
    assert "verified" in table
    wrong = _run(
        "credentials",
        "verify",
        "--tenant",
        "acme",
        str(env / "presentation.txt"),
        "--audience",
        "https://rp.example",
        "--nonce",
        "other",
        code=1,
    )
    assert "NOT verified" in wrong
    public_only = runner.invoke(
        app,
        [
            "credentials",
            "present",
            str(env / "sd_jwt_vc.txt"),
            "--holder-key",
            str(env / "holder-public.json"),
            "--audience",
            "a",
            "--nonce",
            "n",
        ],
    )
    assert "no private part" in str(public_only.exception)

    envelope = _run(
        "credentials",
        "issue",
        "--tenant",
        "acme",
        "--envelope",
        "--no-status",
        str(env / "credential.json"),
    )
    (env / "envelope.json").write_text(envelope)
    assert json.loads(envelope)["verifiableCredential"]["type"] == "EnvelopedVerifiableCredential"
    assert "verified" in _run(
        "credentials", "verify", "--tenant", "acme", str(env / "envelope.json")
    )


def test_trust_chain_and_defaults_from_the_command_line(env: Path) -> None:
    _run("db", "upgrade")
    _run("tenants", "create", "acme")
    spec = env / "provider.yaml"
    spec.write_text(yaml.safe_dump(provider_body()))
    registered = _run("providers", "register", "--tenant", "acme", str(spec))
    provider_id = re.fullmatch(r"([0-9a-f-]{36})", registered.strip())  # the id alone on stdout
    assert provider_id is not None
    pem = _run("credentials", "trust-root", "--tenant", "acme", "--common-name", "Acme root")
    assert pem.rstrip().endswith("-----END CERTIFICATE-----")
    assert "-----BEGIN CERTIFICATE-----" in pem
    certified = _run(
        "credentials",
        "certify",
        "--tenant",
        "acme",
        "--provider",
        provider_id.group(1),
        "--claim-type",
        "age_over",
    )
    assert "accredited for age_over" in certified
    (env / "credential.json").write_text(json.dumps(CREDENTIAL))
    token = _run(
        "credentials",
        "issue",
        "--tenant",
        "acme",
        "--provider",
        provider_id.group(1),
        str(env / "credential.json"),
    )
    (env / "vc.txt").write_text(token.strip().splitlines()[-1])  # the credential is the last line
    report = json.loads(
        _run("credentials", "verify", "--tenant", "acme", "--json", str(env / "vc.txt"))
    )
    chain = next(c for c in report["checks"] if c["check"] == "chain")
    assert chain["status"] == "pass", chain
    assert "age_over@1" in _run("credentials", "templates")
    assert "sd_jwt_vc" in _run(
        "credentials",
        "set-default",
        "--tenant",
        "acme",
        "--claim-type",
        "age_over",
        "--format",
        "sd_jwt_vc",
    )
    refused = runner.invoke(
        app,
        [
            "credentials",
            "set-default",
            "--tenant",
            "acme",
            "--claim-type",
            "age_over",
            "--format",
            "jwt_vc",
            "--template",
            "student_status@1",
        ],
    )
    assert refused.exit_code != 0


def test_an_ed25519_credential_says_ed25519_and_no_warning_reaches_the_user(env: Path) -> None:
    """RFC 9864: a DP key certified Ed25519 signs as "Ed25519", not the deprecated "EdDSA";
    issuing and verifying from the command line print no warning, even with warnings as errors,
    and pyca/cryptography verifies the signature with the x5c leaf's key on its own."""
    _run("db", "upgrade")
    _run("tenants", "create", "acme")
    spec = env / "provider.yaml"
    spec.write_text(yaml.safe_dump(provider_body()))
    provider_id = _run("providers", "register", "--tenant", "acme", str(spec)).strip()
    _run("credentials", "trust-root", "--tenant", "acme")
    _run(
        "credentials",
        "certify",
        "--tenant",
        "acme",
        "--provider",
        provider_id,
        "--claim-type",
        "age_over",
        "--algorithm",
        "EdDSA",
    )
    (env / "credential.json").write_text(json.dumps(CREDENTIAL))
    pavilion = [sys.executable, "-W", "error", "-c", "from pavilion.cli.main import main; main()"]
    issued = subprocess.run(
        [
            *pavilion,
            "credentials",
            "issue",
            "--tenant",
            "acme",
            "--provider",
            provider_id,
            str(env / "credential.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert issued.returncode == 0, issued.stderr
    assert not re.search("Warning|deprecated", issued.stderr), issued.stderr
    token = issued.stdout.strip()
    (env / "vc.txt").write_text(token)
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64url_decode(header_b64))
    assert header["alg"] == "Ed25519"
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    public = leaf.public_key()
    assert isinstance(public, ed25519.Ed25519PublicKey)
    public.verify(b64url_decode(signature_b64), f"{header_b64}.{payload_b64}".encode())

    verified = subprocess.run(
        [*pavilion, "credentials", "verify", "--tenant", "acme", "--json", str(env / "vc.txt")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    assert not re.search("Warning|deprecated", verified.stderr), verified.stderr
    report = json.loads(verified.stdout)
    signature = next(c for c in report["checks"] if c["check"] == "signature")
    assert report["verified"] is True
    assert signature["reason"].startswith("Ed25519 signature verified with the x5c leaf")


def test_bad_files_say_what_is_wrong(env: Path) -> None:
    _run("db", "upgrade")
    _run("tenants", "create", "acme")
    (env / "broken.json").write_text("{not json")
    result = runner.invoke(
        app, ["credentials", "issue", "--tenant", "acme", str(env / "broken.json")]
    )
    assert result.exit_code != 0
    assert "cannot read the credential as JSON" in str(result.exception)
    (env / "list.json").write_text("[1]")
    result = runner.invoke(
        app, ["credentials", "issue", "--tenant", "acme", str(env / "list.json")]
    )
    assert "must be a JSON object" in str(result.exception)
    (env / "credential.json").write_text(json.dumps(CREDENTIAL))
    (env / "holder.json").write_text(
        json.dumps({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"})
    )
    result = runner.invoke(
        app,
        [
            "credentials",
            "issue",
            "--tenant",
            "acme",
            "--format",
            "sd_jwt_vc",
            "--holder-jwk",
            str(env / "holder.json"),
            str(env / "credential.json"),
        ],
    )
    assert "holder key" in str(result.exception)
    result = runner.invoke(
        app,
        [
            "credentials",
            "present",
            str(env / "credential.json"),
            "--holder-key",
            str(env / "holder.json"),
            "--audience",
            "a",
            "--nonce",
            "n",
        ],
    )
    assert result.exit_code != 0
    (env / "garbage.txt").write_text("garbage")
    _run("credentials", "verify", "--tenant", "acme", str(env / "garbage.txt"), code=1)
    result = runner.invoke(
        app,
        ["credentials", "certify", "--tenant", "acme", "--provider", "x", "--algorithm", "RS256"],
    )
    assert "ES256 or EdDSA" in str(result.exception)


def test_data_integrity_credentials_and_vp_jwt_presentations_from_files(env: Path) -> None:
    _run("db", "upgrade")
    _run("tenants", "create", "acme")
    (env / "credential.json").write_text(json.dumps(CREDENTIAL))
    for suite in ("eddsa-rdfc-2022", "ecdsa-rdfc-2019"):
        secured = _run(
            "credentials",
            "issue",
            "--tenant",
            "acme",
            "--cryptosuite",
            suite,
            str(env / "credential.json"),
        )
        document = json.loads(secured)
        assert document["proof"]["cryptosuite"] == suite
        assert document["issuer"].startswith("did:key:")
        (env / f"{suite}.json").write_text(secured)
        report = json.loads(
            _run("credentials", "verify", "--tenant", "acme", "--json", str(env / f"{suite}.json"))
        )
        assert (report["verified"], report["format"]) == (True, "data_integrity"), report
        document["credentialSubject"]["ageOver"]["over"] = False
        (env / "tampered.json").write_text(json.dumps(document))
        failed = json.loads(
            _run(
                "credentials",
                "verify",
                "--tenant",
                "acme",
                "--json",
                str(env / "tampered.json"),
                code=1,
            )
        )
        assert failed["verified"] is False
        assert {c["check"]: c.get("code") for c in failed["checks"]}["signature"] == (
            "bad_signature"
        )

    holder = Holder.p256()
    (env / "subject.json").write_text(
        json.dumps(
            {
                **CREDENTIAL,
                "credentialSubject": {"id": holder.did, **CREDENTIAL["credentialSubject"]},
            }
        )
    )
    envelope = json.loads(
        _run("credentials", "issue", "--tenant", "acme", "--envelope", str(env / "subject.json"))
    )["verifiableCredential"]
    token = holder.present([envelope], audience="https://rp.example", nonce="n-7")
    (env / "vp.txt").write_text(token)
    (env / "vp.json").write_text(
        json.dumps({"verifiablePresentation": envelope_presentation(token)})
    )
    for name in ("vp.txt", "vp.json"):
        args = ["credentials", "verify", "--tenant", "acme", str(env / name)]
        report = json.loads(
            _run(*args, "--audience", "https://rp.example", "--nonce", "n-7", "--json")
        )
        assert report["verified"] is True, report
        assert report["format"] == "vp+jwt"
        (credential,) = report["credentials"]
        assert credential["verified"] is True
        assert {c["check"]: c["status"] for c in credential["checks"]}["key_binding"] == "pass"
        table = _run(*args, "--audience", "https://rp.example", "--nonce", "n-7")
        assert "verifiablePresentation.verifiableCredential[0]" in table
        wrong = _run(*args, "--audience", "https://rp.example", "--nonce", "other", code=1)
        assert "NOT verified" in wrong
    result = runner.invoke(app, ["credentials", "verify", "--tenant", "acme", str(env / "vp.txt")])
    assert result.exit_code != 0
    assert "--audience and --nonce" in str(result.exception)
