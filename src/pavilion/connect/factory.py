"""Build the production DP client from the settings (the composition root calls this)."""

from __future__ import annotations

from pavilion.audit.log import AuditLog
from pavilion.config.settings import Settings
from pavilion.connect.audit import AuditLogSink
from pavilion.connect.client import ProviderClient, RetryPolicy
from pavilion.connect.config import ConnectConfig, PoolConfig, ProbeConfig
from pavilion.store.database import Database


def connect_config(settings: Settings) -> ConnectConfig:
    interval = settings.provider_probe_interval_seconds
    return ConnectConfig(
        pool=PoolConfig(
            max_connections=settings.provider_max_connections,
            max_keepalive_connections=settings.provider_max_keepalive_connections,
            http2=settings.provider_http2,
            warm_connections=settings.provider_warm_connections,
        ),
        probe=ProbeConfig(interval_s=interval if interval > 0 else None),
        attempt_timeout_s=settings.provider_attempt_timeout_seconds,
        hedging=settings.provider_hedging,
    )


def build_provider_client(settings: Settings, db: Database, audit: AuditLog) -> ProviderClient:
    return ProviderClient(
        timeout_seconds=settings.provider_timeout_seconds,
        connect_timeout_seconds=settings.provider_connect_timeout_seconds,
        retry=RetryPolicy(settings.provider_retries, settings.provider_retry_backoff_seconds),
        config=connect_config(settings),
        events=AuditLogSink(db, audit),
    )
