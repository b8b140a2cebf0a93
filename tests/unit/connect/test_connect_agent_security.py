"""The DP agent's side: access-token validation and the small authorization server."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pavilion.dpagent.security import (
    AgentSecurity,
    BearerJwtConfig,
    ServerTlsConfig,
    agent_ssl_context,
    announced,
    load_cli_security,
    replaces_api_key,
    server_ssl_context,
    validate_access_token,
)
from pavilion.dpagent.token_server import (
    CLIENT_ASSERTION_TYPE,
    TokenClient,
    TokenServerConfig,
    create_token_server_app,
    load_config,
    main,
    secret_digest,
)
from pavilion.errors import AuthenticationFailed, ConfigurationError, PermissionDenied

NOW = 1_800_000_000.0
AS_KEY = ec.generate_private_key(ec.SECP256R1())


def _jwks(key: ec.EllipticCurvePrivateKey = AS_KEY, kid: str = "as-1") -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return {"keys": [jwk | {"kid": kid, "alg": "ES256"}]}


SETTINGS = BearerJwtConfig(issuer="https://as", audience="dp-agent", jwks=_jwks())


def _token(**changes: Any) -> str:
    header = {"kid": "as-1", "typ": "at+jwt"} | changes.pop("header", {})
    key = changes.pop("key", AS_KEY)
    claims = {
        "iss": "https://as",
        "aud": "dp-agent",
        "sub": "pavilion",
        "scope": "dp.lookup",
        "iat": int(NOW),
        "exp": int(NOW) + 300,
    } | changes
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, "ES256", header)


def test_a_valid_access_token_passes() -> None:
    claims = validate_access_token(_token(), SETTINGS, now=NOW)
    assert claims["sub"] == "pavilion"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("not-a-jwt", "malformed"),
        (_token(header={"typ": "JWT"}), "typ"),
        (_token(header={"kid": "unknown"}), "kid"),
        (_token(aud="another-agent"), "InvalidAudienceError"),
        (_token(iss="https://evil"), "InvalidIssuerError"),
        (_token(exp=int(NOW) - 100), "expired"),
        (_token(iat=int(NOW) + 3600, exp=int(NOW) + 7200), "iat"),
        (_token(sub=None), "MissingRequiredClaimError"),
        (_token(key=ec.generate_private_key(ec.SECP256R1())), "InvalidSignatureError"),
    ],
)
def test_bad_access_tokens_are_refused_with_a_reason(token: str, reason: str) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        validate_access_token(token, SETTINGS, now=NOW)
    assert info.value.extra["reason"] == reason


def test_algorithm_and_scope_are_enforced() -> None:
    only_rs = BearerJwtConfig(
        issuer="https://as", audience="dp-agent", jwks=_jwks(), algorithms=("RS256",)
    )
    with pytest.raises(AuthenticationFailed, match="algorithm"):
        validate_access_token(_token(), only_rs, now=NOW)
    with pytest.raises(PermissionDenied, match=r"dp\.lookup"):
        validate_access_token(_token(scope="other"), SETTINGS, now=NOW)


def test_jwks_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        BearerJwtConfig(issuer="i", audience="a")
    no_kid = {"keys": [{k: v for k, v in _jwks()["keys"][0].items() if k != "kid"}]}
    with pytest.raises(ValueError, match="kid"):
        BearerJwtConfig(issuer="i", audience="a", jwks=no_kid)
    with pytest.raises(ValueError, match="cannot read"):
        BearerJwtConfig(issuer="i", audience="a", jwks_file=tmp_path / "missing.json")
    with pytest.raises(ValueError, match="not a usable JWKS"):
        BearerJwtConfig(issuer="i", audience="a", jwks={"keys": "x"})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(_jwks()))
    from_file = BearerJwtConfig(issuer="https://as", audience="dp-agent", jwks_file=path)
    assert validate_access_token(_token(), from_file, now=NOW)["iss"] == "https://as"


def test_security_files_load_with_clear_errors(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    (tmp_path / "cert.pem").write_bytes(cert.cert_chain_pems[0].bytes())
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    good = tmp_path / "security.yaml"
    good.write_text(
        "tls:\n"
        f"  certificate: {tmp_path / 'cert.pem'}\n"
        f"  private_key: {tmp_path / 'key.pem'}\n"
        f"  client_ca: {tmp_path / 'ca.pem'}\n"
        "  min_version: '1.3'\n"
    )
    security = load_cli_security(good)
    assert security is not None
    assert security.mutual_tls
    assert security.methods() == ["mtls"]
    assert load_cli_security(None) is None
    assert security.tls is not None
    context = server_ssl_context(security.tls)
    assert context.minimum_version.name == "TLSv1_3"
    assert context.verify_mode.name == "CERT_REQUIRED"
    assert agent_ssl_context(security) is not None
    assert agent_ssl_context(None) is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("tls:\n  certificate: x\n")
    with pytest.raises(ConfigurationError, match=r"tls\.private_key"):
        AgentSecurity.from_file(bad)
    with pytest.raises(ConfigurationError, match="cannot read"):
        AgentSecurity.from_file(tmp_path / "missing.yaml")
    with pytest.raises(ConfigurationError, match="do not load"):
        server_ssl_context(ServerTlsConfig(certificate=tmp_path / "ca.pem", private_key=good))


def test_cli_helpers_describe_the_auth_and_scheme() -> None:
    mtls = AgentSecurity(
        tls=ServerTlsConfig(certificate=Path("c"), private_key=Path("k"), client_ca=Path("ca"))
    )
    assert replaces_api_key(mtls, None, None)
    assert not replaces_api_key(mtls, "ENV", None)
    assert not replaces_api_key(None, None, None)
    assert announced("http://127.0.0.1:1", mtls, api_key=False, insecure=False) == (
        "https://127.0.0.1:1",
        "mtls",
    )
    assert announced("http://h:1", mtls, api_key=True, insecure=False)[1] == "API key + mtls"
    assert announced("http://h:1", None, api_key=False, insecure=True) == ("http://h:1", "off")


CLIENT_KEY = ec.generate_private_key(ec.SECP256R1())
CLIENT_PUBLIC = (
    CLIENT_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def _server(clock: float = NOW) -> httpx.AsyncClient:
    config = TokenServerConfig(
        issuer="https://as",
        audience="dp-agent",
        key_id="as-1",
        clients=(
            TokenClient(client_id="basic", secret_sha256=secret_digest("right-secret")),
            TokenClient(client_id="signed", public_key=CLIENT_PUBLIC, scopes=("dp.lookup", "x")),
        ),
    )
    app = create_token_server_app(config, signing_key=AS_KEY, clock=lambda: clock)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://as")


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"authorization": f"Basic {raw}"}


def _assertion(**changes: Any) -> str:
    claims = {
        "iss": "signed",
        "sub": "signed",
        "aud": "http://as/oauth2/token",
        "jti": changes.pop("jti", str(time.time_ns())),
        "iat": int(NOW),
        "exp": int(NOW) + 60,
    } | changes
    return jwt.encode(claims, CLIENT_KEY, "ES256")


async def test_token_server_issues_rfc9068_tokens_the_agent_accepts() -> None:
    async with _server() as http:
        response = await http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers=_basic("basic", "right-secret"),
        )
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert (body["token_type"], body["expires_in"], body["scope"]) == (
            "Bearer",
            300,
            "dp.lookup",
        )
        claims = validate_access_token(body["access_token"], SETTINGS, now=NOW)
        assert claims["client_id"] == "basic"
        metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
        assert metadata["token_endpoint"] == "http://as/oauth2/token"
        assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
        assert (await http.get("/healthz")).json() == {"status": "ok"}


async def test_token_server_accepts_each_assertion_once() -> None:
    async with _server() as http:
        form = {
            "grant_type": "client_credentials",
            "scope": "x",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": _assertion(jti="once"),
        }
        first = await http.post("/oauth2/token", data=form)
        assert first.status_code == 200
        assert first.json()["scope"] == "x"
        replay = await http.post("/oauth2/token", data=form)
        assert replay.status_code == 401
        assert replay.json()["error"] == "invalid_client"
        assert "replayed" in replay.json()["error_description"]


@pytest.mark.parametrize(
    ("form", "headers", "status", "error"),
    [
        ({"grant_type": "password"}, {}, 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, {}, 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, _basic("basic", "wrong"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, _basic("nobody", "x"), 401, "invalid_client"),
        (
            {"grant_type": "client_credentials"},
            {"authorization": "Basic !!!"},
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials", "scope": "admin"},
            _basic("basic", "right-secret"),
            400,
            "invalid_scope",
        ),
    ],
)
async def test_token_server_errors_follow_rfc6749(
    form: dict[str, str], headers: dict[str, str], status: int, error: str
) -> None:
    async with _server() as http:
        response = await http.post("/oauth2/token", data=form, headers=headers)
    assert (response.status_code, response.json()["error"]) == (status, error)
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    ("assertion", "form_extra", "message"),
    [
        ("garbage", {}, "not a JWT"),
        (_assertion(iss="basic", sub="basic"), {}, "unknown client"),
        (_assertion(), {"client_id": "someone-else"}, "does not match"),
        (_assertion(aud="https://elsewhere"), {}, "rejected"),
        (_assertion(sub="other"), {}, "sub must be"),
        (_assertion(exp=int(NOW) + 3600), {}, "lives too long"),
        (_assertion(exp=int(NOW) - 60), {}, "expired"),
        (_assertion(iat=int(NOW) + 600, exp=int(NOW) + 660), {}, "issued later"),
    ],
)
async def test_token_server_refuses_bad_client_assertions(
    assertion: str, form_extra: dict[str, str], message: str
) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
    } | form_extra
    async with _server() as http:
        response = await http.post("/oauth2/token", data=form)
    assert response.status_code == 401
    assert message in response.json()["error_description"]


def test_token_server_config_checks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TokenClient(client_id="c")
    key_file = tmp_path / "as.pem"
    key_file.write_bytes(
        AS_KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config_file = tmp_path / "as.yaml"
    config_file.write_text(
        "issuer: https://as\naudience: dp-agent\n"
        f"signing_key: {key_file}\n"
        f"clients:\n  - client_id: c\n    secret_sha256: {secret_digest('s')}\n"
    )
    config = load_config(config_file)
    assert config.signing_key == key_file
    assert config.clients[0].auth_method == "client_secret_basic"
    assert create_token_server_app(config) is not None
    wrong = tmp_path / "rsa.pem"
    from cryptography.hazmat.primitives.asymmetric import ed25519

    wrong.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ValueError, match="P-256"):
        create_token_server_app(config.model_copy(update={"signing_key": wrong}))
    broken = tmp_path / "broken.yaml"
    broken.write_text("issuer: x\n")
    assert main(["--config", str(broken)]) == 2


# --- joserfc at run time, PyJWT (a test dependency) as the independent signer -----------------

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ED_KEY = ed25519.Ed25519PrivateKey.generate()


@pytest.mark.parametrize(
    ("key", "algorithm", "kty"),
    [
        (RSA_KEY, "RS256", jwt.algorithms.RSAAlgorithm),
        (ED_KEY, "EdDSA", jwt.algorithms.OKPAlgorithm),
    ],
)
def test_access_tokens_signed_with_rsa_and_ed25519_keys_are_accepted(
    key: Any, algorithm: str, kty: Any
) -> None:
    jwk = json.loads(kty.to_jwk(key.public_key())) | {"kid": "k2"}  # no "alg": implied by the key
    settings = BearerJwtConfig(issuer="https://as", audience="dp-agent", jwks={"keys": [jwk]})
    claims = {
        "iss": "https://as",
        "aud": ["x", "dp-agent"],
        "sub": "s",
        "scope": "dp.lookup",
        "iat": int(NOW),
        "exp": int(NOW) + 60,
    }
    token = jwt.encode(claims, key, algorithm, {"kid": "k2", "typ": "at+jwt"})
    assert validate_access_token(token, settings, now=NOW)["sub"] == "s"
    # The key's algorithm only: an ES256 header against this key is refused before any check.
    with pytest.raises(AuthenticationFailed) as info:
        validate_access_token(_token(header={"kid": "k2"}), settings, now=NOW)
    assert info.value.extra["reason"] == "alg"


def _raw(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"sig") -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join(
        [part(json.dumps(header).encode()), part(json.dumps(claims).encode()), part(signature)]
    )


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (_raw({"alg": "ES256", "typ": "at+jwt", "kid": 7}, {}), "malformed"),  # kid not a string
        (_raw(["not", "an", "object"], {}), "malformed"),  # type: ignore[arg-type]
        ("a.b", "malformed"),
        ("a.b.c.d", "malformed"),
        (_raw({"alg": "none", "typ": "at+jwt", "kid": "as-1"}, {"sub": "x"}, b""), "alg"),
        (
            _raw({"alg": "ES256", "typ": "at+jwt", "kid": "as-1"}, {"sub": "x"}),
            "InvalidSignatureError",
        ),
        (_token(aud=["a", "b"]), "InvalidAudienceError"),
        (_token(aud=[1]), "InvalidAudienceError"),
        (_token(iss=None), "MissingRequiredClaimError"),
        (_token(iat=None), "MissingRequiredClaimError"),
    ],
)
def test_malformed_and_forged_access_tokens_are_refused(token: str, reason: str) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        validate_access_token(token, SETTINGS, now=NOW)
    assert info.value.extra["reason"] == reason


def test_a_jwks_whose_keys_are_all_unusable_is_refused() -> None:
    unusable = [
        {"kty": "EC", "crv": "P-256", "kid": "a", "alg": "RS256"},  # alg of another key type
        {"kty": "EC", "crv": "P-256", "kid": "b"},  # no x, y
        {"kty": "XYZ", "kid": "c"},
        "not-a-key",
    ]
    with pytest.raises(ValueError, match="not a usable JWKS"):
        BearerJwtConfig(issuer="i", audience="a", jwks={"keys": unusable})
    mixed = {"keys": [*unusable, _jwks()["keys"][0]]}
    config = BearerJwtConfig(issuer="https://as", audience="dp-agent", jwks=mixed)
    assert validate_access_token(_token(), config, now=NOW)["sub"] == "pavilion"


@pytest.mark.parametrize(
    ("key", "algorithm"), [(RSA_KEY, "RS256"), (RSA_KEY, "PS256"), (ED_KEY, "EdDSA")]
)
async def test_token_server_accepts_assertions_signed_with_each_allowed_algorithm(
    key: Any, algorithm: str
) -> None:
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    config = TokenServerConfig(
        issuer="https://as",
        audience="dp-agent",
        clients=(TokenClient(client_id="signed", public_key=public),),
    )
    app = create_token_server_app(config, signing_key=AS_KEY, clock=lambda: NOW)
    assertion = jwt.encode(
        {
            "iss": "signed",
            "sub": "signed",
            "aud": "https://as",
            "jti": algorithm,
            "iat": int(NOW),
            "exp": int(NOW) + 60,
        },
        key,
        algorithm,
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://as") as http:
        response = await http.post("/oauth2/token", data=form)
        assert response.status_code == 200, response.text
        # The access token it issues is checked by PyJWT against the JWKS it publishes.
        published = (await http.get("/.well-known/jwks.json")).json()
    verifier = jwt.PyJWKSet.from_dict(published)["pavilion-dp-as-1"]
    claims = jwt.decode(
        response.json()["access_token"],
        verifier.key,
        ["ES256"],
        audience="dp-agent",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert (claims["sub"], jwt.get_unverified_header(response.json()["access_token"])["typ"]) == (
        "signed",
        "at+jwt",
    )


def test_a_client_key_that_cannot_sign_jwts_is_refused_in_the_config() -> None:
    from cryptography.hazmat.primitives.asymmetric import x25519

    public = (
        x25519.X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ValueError, match="EC, RSA or EdDSA"):
        TokenClient(client_id="c", public_key=public)
