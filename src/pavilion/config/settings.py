"""The one settings object.

Read from ``PAVILION_*`` environment variables and, optionally, a YAML file given with
``--config``; the environment wins over the file. Validated at start-up: a bad value stops the
service with a message naming the variable and what to write instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
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
    hsm_pin_file: Path | None = Field(default=None, description="File holding the user PIN.")
    hsm_slot: int | None = Field(default=None, ge=0, description="Only when labels repeat.")
    hsm_timeout_s: float = Field(default=30.0, gt=0, le=600)
    key_usage_flush_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="How often signing counts reach the audit log."
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8600, ge=0, le=65535)
    public_url: str = Field(
        default="", description="The connector's public base URL; empty means http://host:port."
    )
    issuer_id: str = Field(
        default="", description="Issuer identifier in credentials; empty means public_url."
    )
    node_region: str = "eu-west"
    audit_origin: str = Field(
        default="pavilion.local/audit",
        description="Origin line of audit checkpoints; the tenant id is appended.",
    )

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    ingest_max_upload_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1024,
        description="Largest roster upload (streamed to disk, never held in memory).",
    )
    lineage_file: Path | None = Field(
        default=None, description="Also append OpenLineage events to this file (JSON lines)."
    )
    credential_ttl_seconds: int = Field(default=86_400, ge=60)
    # Status lists (revocation); see README "Revocation".
    status_list_bits: int = Field(default=2, description="1, 2, 4 or 8 (2 allows suspension).")
    status_list_size: int = Field(default=131_072, ge=16, le=16_777_216)
    status_list_ttl_seconds: int = Field(default=300, ge=1, le=86_400)
    status_list_lifetime_seconds: int = Field(default=86_400, ge=60, le=31_536_000)
    status_trust_anchors: dict[str, str] = Field(
        default_factory=dict,
        description="Foreign status lists: list URL prefix -> JWKS URL of the keys that sign them.",
    )

    provider_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    provider_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    provider_retries: int = Field(default=2, ge=0, le=5)
    provider_retry_backoff_seconds: float = Field(default=0.05, ge=0, le=5)
    # DP connections (pavilion.connect): pools, probes, hedging; see docs/ARCHITECTURE.md.
    provider_attempt_timeout_seconds: float = Field(default=2.0, gt=0, le=120)
    provider_max_connections: int = Field(default=100, ge=1, le=100_000)
    provider_max_keepalive_connections: int = Field(default=100, ge=0, le=100_000)
    provider_http2: bool = True
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
        return value

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
            derived["public_url"] = f"http://{self.host}:{self.port}"
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
        raise ConfigurationError(_explain(exc)) from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"--config {config_file}: not valid YAML: {exc}") from exc


def _explain(exc: ValidationError) -> str:
    lines = ["Invalid settings:"]
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        env = f"PAVILION_{name.upper()}" if error["loc"] else name
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "is not a known setting (check its spelling)"
        lines.append(f"  {env} ({name} in YAML): {message}")
    return "\n".join(lines)
