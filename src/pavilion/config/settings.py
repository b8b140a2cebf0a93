"""The one settings object.

Read from ``PAVILION_*`` environment variables and, optionally, a YAML file given with
``--config``; the environment wins over the file. Validated at start-up: a bad value stops the
service with a message naming the variable and what to write instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from pavilion.errors import ConfigurationError

_SQLITE_PREFIX = "sqlite+aiosqlite://"
_POSTGRES_PREFIX = "postgresql+asyncpg://"


def normalise_database_url(url: str) -> str:
    """Accept the usual spellings and return the async driver URL the connector runs on."""
    for plain, driver in (
        ("sqlite://", _SQLITE_PREFIX),
        ("postgresql://", _POSTGRES_PREFIX),
        ("postgres://", _POSTGRES_PREFIX),
        ("postgresql+psycopg://", _POSTGRES_PREFIX),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    if url.startswith((_SQLITE_PREFIX, _POSTGRES_PREFIX)):
        return url
    raise ValueError(
        "must be a sqlite:///path/to/file.db or postgresql://user@host:port/database URL"
    )


#: Signature algorithms an OIDC provider's access tokens may use: asymmetric ones only, so a
#: public JWKS key can never double as an HMAC secret (and ``none`` is never accepted).
OIDC_ALGORITHMS = frozenset(
    {
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES384",
        "ES512",
        "EdDSA",
        "Ed25519",
    }
)
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def _is_https_or_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS)


class ClientIdentity(BaseModel):
    """Who a client certificate is: the tenant (id) and role its holder acts as."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str = Field(min_length=36, max_length=36)
    role: str = Field(min_length=1)


class OidcProvider(BaseModel):
    """An OpenID Connect provider a tenant trusts for signed JWT access tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str = Field(min_length=36, max_length=36, description="The trusting tenant's id.")
    issuer: str = Field(description="The exact `iss` of the tokens.")
    audience: str = Field(min_length=1, description="The `aud` the tokens must name.")
    jwks_uri: str = Field(description="Where the provider publishes its signing keys.")
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"], min_length=1)
    role_claim: str = Field(
        default="roles", min_length=1, description="Claim (dotted path) whose values map to roles."
    )
    roles: dict[str, str] = Field(
        default_factory=dict, description="Claim value -> role; the first match in order wins."
    )
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    jwks_cache_seconds: int = Field(default=300, ge=1, le=86_400)

    @field_validator("issuer", "jwks_uri")
    @classmethod
    def _secure_url(cls, value: str) -> str:
        if not _is_https_or_loopback(value):
            raise ValueError(f"{value!r} must be an https URL (http only on loopback)")
        return value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        refused = [alg for alg in value if alg not in OIDC_ALGORITHMS]
        if refused:
            raise ValueError(
                f"algorithms {refused} are not allowed; use asymmetric ones: "
                + ", ".join(sorted(OIDC_ALGORITHMS))
            )
        return value


class Settings(BaseSettings):
    """Every setting of the connector, with its default for the embedded mode."""

    model_config = SettingsConfigDict(
        env_prefix="PAVILION_", extra="forbid", validate_default=True, frozen=True
    )

    data_dir: Path = Field(
        default=Path(".pavilion"),
        description="Where the embedded defaults keep their files (SQLite, software keystore).",
    )
    database_url: str = Field(
        default="",
        description="The app's database connection; empty means SQLite in data_dir.",
    )
    database_migration_url: str = Field(
        default="",
        description="The schema owner's connection for migrations; empty means database_url.",
    )
    database_pool_size: int = Field(default=10, ge=1, le=500)
    allow_rls_bypass: bool = Field(
        default=False,
        description="Allow the app to run as a PostgreSQL role that bypasses row-level security.",
    )

    keystore_backend: Literal["software", "pkcs11"] = "software"
    keystore_dir: Path | None = Field(
        default=None, description="Software keystore directory; empty means data_dir/keystore."
    )
    keystore_master_key: str = Field(
        default="",
        description="Base64 32-byte master key of the software keystore; empty means a key "
        "file created in the keystore directory (embedded mode only).",
    )
    # The PKCS#11 keystore (keystore_backend pkcs11); see docs/HSM.md.
    hsm_module: str = Field(default="", description="Path of the HSM vendor's PKCS#11 module.")
    hsm_token_label: str = Field(default="", description="Label of the PKCS#11 token.")
    hsm_pin: SecretStr = Field(default=SecretStr(""), description="User PIN; prefer the file.")
    metrics_token: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="A bearer token that may read /metrics (a Prometheus scraper's); without "
        "it, /metrics answers a platform-admin API token only.",
    )
    hsm_pin_file: Path | None = Field(default=None, description="File holding the user PIN.")
    hsm_slot: int | None = Field(default=None, ge=0, description="Only when labels repeat.")
    hsm_timeout_s: float = Field(default=30.0, gt=0, le=600)
    hsm_standby_token_label: str = Field(
        default="",
        description="Label of a standby PKCS#11 token holding the same keys (pavilion keys "
        "replicate); signing fails over to it. Empty: no standby.",
    )
    hsm_standby_module: str = Field(
        default="", description="The standby's PKCS#11 module; empty means the primary's."
    )
    hsm_standby_pin: SecretStr = Field(default=SecretStr(""), description="Standby user PIN.")
    hsm_standby_pin_file: Path | None = Field(
        default=None, description="File holding the standby's user PIN."
    )
    hsm_standby_slot: int | None = Field(default=None, ge=0, description="The standby's slot.")
    key_usage_flush_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="How often signing counts reach the audit log."
    )

    # The verification hot path (docs/PERFORMANCE.md).
    stage_timing: bool = Field(
        default=False,
        description="Charge the event loop's CPU to named stages of the hot path "
        "(pavilion_stage_cpu_seconds_total in /metrics); costs about a microsecond per step.",
    )
    config_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        le=300,
        description="How long a worker serves providers, endpoints and residency adequacy from "
        "memory; a change made through this worker applies at once, through another within this.",
    )
    journal_max_batch: int = Field(
        default=256, ge=1, le=10_000, description="At most this many verifications share a commit."
    )
    lineage_window_seconds: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="Lookup lineage is counted per outcome and written once per window.",
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8600, ge=0, le=65535)
    # Inbound TLS, mutual TLS and federated identity (docs/SECURITY.md).
    tls_cert_file: Path | None = Field(
        default=None, description="PEM certificate chain `pavilion serve` presents (TLS on)."
    )
    tls_key_file: Path | None = Field(
        default=None,
        description="Its private key: a PEM file, or a file sealed by `pavilion tls seal-key`.",
    )
    tls_client_ca_file: Path | None = Field(
        default=None, description="CA bundle that client certificates must chain to."
    )
    tls_client_auth: Literal["none", "optional", "required"] = Field(
        default="none", description="Ask for client certificates (optional) or insist (required)."
    )
    tls_client_identities: dict[str, ClientIdentity] = Field(
        default_factory=dict,
        description="Client certificate -> tenant and role; keys are 'spki-sha256:<hex>' "
        "(the certificate's public key) or 'subject:<RFC 4514 name>'.",
    )
    oidc_providers: list[OidcProvider] = Field(
        default_factory=list, description="OIDC providers tenants trust for access tokens."
    )
    public_url: str = Field(
        default="", description="The connector's public base URL; empty means http://host:port."
    )
    issuer_id: str = Field(
        default="", description="Issuer identifier in credentials; empty means public_url."
    )
    node_region: str = "eu-west"
    audit_origin: str = Field(
        default="pavilion.local/audit",
        pattern=r"^[^\s+]+$",
        description="Origin line of audit checkpoints; the tenant id is appended. It is also "
        "the checkpoints' signing key name, so it has no spaces and no '+'.",
    )

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_header_bytes: int = Field(
        default=16_384, ge=1024, description="Larger request headers (all of them) get 431."
    )
    ingest_max_upload_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1024,
        description="Largest roster upload (streamed to disk, never held in memory).",
    )
    lineage_file: Path | None = Field(
        default=None, description="Also append OpenLineage events to this file (JSON lines)."
    )
    # A credential's validity is its template's maximum data age (credentials/templates.py),
    # not a setting: a credential outliving the data it vouches for would be stale.
    # Status lists (revocation); see README "Revocation".
    status_list_bits: int = Field(default=2, description="1, 2, 4 or 8 (2 allows suspension).")
    status_list_size: int = Field(default=131_072, ge=16, le=16_777_216)
    status_list_ttl_seconds: int = Field(default=300, ge=1, le=86_400)
    status_list_lifetime_seconds: int = Field(default=86_400, ge=60, le=31_536_000)
    status_trust_anchors: dict[str, str] = Field(
        default_factory=dict,
        description="Foreign status lists: list URL prefix -> JWKS URL of the keys that sign them.",
    )
    # Data Integrity proofs: the DID they are signed as, and fetching others' did:web documents.
    did_web: str = Field(
        default="",
        pattern=r"^(did:web:[A-Za-z0-9.%_~-]+(:[A-Za-z0-9.%_~-]+)*)?$",
        description="The connector's did:web DID (did:web:connector.example): Data Integrity "
        "proofs name it as issuer and the connector serves its DID document. Empty: did:key.",
    )
    did_web_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Deadline for fetching one did:web document."
    )
    did_web_allow_private_addresses: bool = Field(
        default=False,
        description="Also fetch did:web documents from loopback and private addresses "
        "(development only: a credential chooses the host the connector contacts).",
    )
    did_web_ca_file: Path | None = Field(
        default=None,
        description="CA bundle did:web servers' certificates must chain to (default: the "
        "system CAs).",
    )

    provider_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    provider_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    provider_retries: int = Field(default=2, ge=0, le=5)
    provider_retry_backoff_seconds: float = Field(default=0.05, ge=0, le=5)
    # DP connections (pavilion.connect): pools, probes, hedging; see docs/ARCHITECTURE.md.
    provider_attempt_timeout_seconds: float = Field(default=2.0, gt=0, le=120)
    provider_max_connections: int = Field(default=100, ge=1, le=100_000)
    provider_max_keepalive_connections: int = Field(default=100, ge=0, le=100_000)
    provider_http2: bool = Field(
        default=False,
        description="Look DPs up over HTTP/2 (httpx) where they offer it; false uses HTTP/1.1 "
        "keep-alive pools (aiohttp), about a fifth of the CPU per lookup (docs/PERFORMANCE.md).",
    )
    provider_warm_connections: int = Field(default=2, ge=0, le=1000)
    provider_probe_interval_seconds: float = Field(
        default=1.0, ge=0, le=3600, description="Active health checks of DP endpoints; 0 is off."
    )
    provider_hedging: bool = Field(
        default=False, description="Hedge read-only lookups past the endpoint's p95 latency."
    )

    # Privacy engine (docs/PRIVACY.md): receipts name this policy; AnonCreds registry size.
    privacy_policy_version: str = Field(default="pavilion-privacy-policy/1", min_length=1)
    anoncreds_registry_capacity: int = Field(default=1000, ge=1, le=100_000)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True

    @field_validator("database_url", "database_migration_url")
    @classmethod
    def _database_url_is_supported(cls, value: str) -> str:
        return normalise_database_url(value) if value else value

    @field_validator("node_region")
    @classmethod
    def _region_is_slug(cls, value: str) -> str:
        if not value or not all(c.isalnum() or c == "-" for c in value):
            raise ValueError("must be a region slug such as eu-west or us-east")
        return value

    @field_validator("status_list_bits")
    @classmethod
    def _status_bits_allowed(cls, value: int) -> int:
        if value not in (1, 2, 4, 8):
            raise ValueError("must be 1, 2, 4 or 8")
        return value

    @field_validator("status_trust_anchors")
    @classmethod
    def _trust_anchors_are_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for url in [*value, *value.values()]:
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"{url!r} must be an http(s) URL")
        for prefix in value:  # compared by origin and path segments: nothing else may vary
            parts = urlsplit(prefix)
            if not parts.hostname or "@" in parts.netloc or parts.query or parts.fragment:
                raise ValueError(
                    f"{prefix!r} must be an origin and a path, without user information, "
                    "query or fragment"
                )
        return value

    @field_validator("tls_client_identities")
    @classmethod
    def _identity_keys(cls, value: dict[str, ClientIdentity]) -> dict[str, ClientIdentity]:
        hexdigits = set("0123456789abcdef")
        for key in value:
            kind, _, rest = key.partition(":")
            if kind == "spki-sha256" and len(rest) == 64 and set(rest) <= hexdigits:
                continue
            if kind == "subject" and rest:
                continue
            raise ValueError(
                f"{key!r} must be 'spki-sha256:<64 lowercase hex>' or 'subject:<RFC 4514 name>'"
            )
        return value

    @model_validator(mode="after")
    def _tls_is_complete(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("TLS needs both PAVILION_TLS_CERT_FILE and PAVILION_TLS_KEY_FILE")
        if self.tls_client_auth != "none" and (
            self.tls_cert_file is None or self.tls_client_ca_file is None
        ):
            raise ValueError(
                "PAVILION_TLS_CLIENT_AUTH needs TLS (PAVILION_TLS_CERT_FILE, _KEY_FILE) and "
                "PAVILION_TLS_CLIENT_CA_FILE"
            )
        if self.tls_client_identities and self.tls_client_auth == "none":
            raise ValueError("PAVILION_TLS_CLIENT_IDENTITIES needs PAVILION_TLS_CLIENT_AUTH")
        return self

    @model_validator(mode="after")
    def _hsm_is_configured(self) -> Settings:
        if self.keystore_backend == "pkcs11":
            needed = (("MODULE", self.hsm_module), ("TOKEN_LABEL", self.hsm_token_label))
            missing = [f"PAVILION_HSM_{name}" for name, value in needed if not value]
            if missing:
                raise ValueError(f"keystore_backend pkcs11 needs {' and '.join(missing)}")
            if bool(self.hsm_pin.get_secret_value()) == (self.hsm_pin_file is not None):
                raise ValueError(
                    "keystore_backend pkcs11 needs PAVILION_HSM_PIN or PAVILION_HSM_PIN_FILE "
                    "(exactly one; the file is the safer choice)"
                )
            if self.hsm_standby_token_label and bool(self.hsm_standby_pin.get_secret_value()) == (
                self.hsm_standby_pin_file is not None
            ):
                raise ValueError(
                    "PAVILION_HSM_STANDBY_TOKEN_LABEL needs PAVILION_HSM_STANDBY_PIN or "
                    "PAVILION_HSM_STANDBY_PIN_FILE (exactly one)"
                )
            if (
                self.hsm_standby_token_label == self.hsm_token_label
                and (self.hsm_standby_module or self.hsm_module) == self.hsm_module
                and self.hsm_standby_slot == self.hsm_slot
            ):
                raise ValueError(
                    "PAVILION_HSM_STANDBY_TOKEN_LABEL names the primary token itself: a standby "
                    "is another token (another label, slot or module)"
                )
        return self

    @model_validator(mode="after")
    def _fill_derived_defaults(self) -> Settings:
        data_dir = self.data_dir
        derived: dict[str, Any] = {}
        if not self.database_url:
            derived["database_url"] = f"{_SQLITE_PREFIX}/{(data_dir / 'pavilion.db').resolve()}"
        if not self.database_migration_url:
            derived["database_migration_url"] = derived.get("database_url", self.database_url)
        if self.keystore_dir is None:
            derived["keystore_dir"] = data_dir / "keystore"
        if not self.public_url:
            scheme = "https" if self.tls_cert_file is not None else "http"
            derived["public_url"] = f"{scheme}://{self.host}:{self.port}"
        for key, value in derived.items():
            object.__setattr__(self, key, value)
        if not self.issuer_id:
            object.__setattr__(self, "issuer_id", self.public_url)
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith(_SQLITE_PREFIX)

    @property
    def resolved_keystore_dir(self) -> Path:
        assert self.keystore_dir is not None  # filled by the model validator
        return self.keystore_dir

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if settings_cls.model_config.get("yaml_file"):
            sources.append(YamlConfigSettingsSource(settings_cls))
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build and validate the settings, or raise ConfigurationError saying what to fix."""
    settings_cls: type[Settings] = Settings
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigurationError(f"--config {config_file}: no such file")
        config = SettingsConfigDict(**{**Settings.model_config, "yaml_file": config_file})
        settings_cls = type("Settings", (Settings,), {"model_config": config})
    try:
        return settings_cls(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(_explain(exc, config_file)) from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"--config {config_file}: not valid YAML: {exc}") from exc


def _explain(exc: ValidationError, config_file: Path | None = None) -> str:
    """One line per error, naming the variable (and the key of the --config file, if one was
    given); a rule that spans several settings names them in its own message."""
    lines = ["Invalid settings:"]
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "is not a known setting (check its spelling)"
        if not error["loc"]:
            lines.append(f"  {message}")
            continue
        name = ".".join(str(part) for part in error["loc"])
        where = f" ({name} in {config_file})" if config_file is not None else ""
        lines.append(f"  PAVILION_{name.upper()}{where}: {message}")
    return "\n".join(lines)
