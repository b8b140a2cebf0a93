"""Roster uploads over real HTTP (uvicorn on loopback): streamed, and stopped at the limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml

from databases import sqlite_database
from ingest_support import csv_bytes, profile, roster
from pavilion.api.app import create_app
from pavilion.config.settings import load_settings
from pavilion.runtime import build_runtime
from pavilion.serving import BackgroundServer
from pavilion.tenancy.roles import Role


def test_streamed_uploads_over_http(tmp_path: Path) -> None:
    sqlite_database(tmp_path)
    settings = load_settings(None, data_dir=tmp_path, ingest_max_upload_bytes=2 * 1024 * 1024)
    import asyncio

    async def prepare() -> tuple[str, str]:
        rt = build_runtime(settings)
        try:
            await rt.tenancy.ensure_platform_tenant()
            tenant = await rt.tenancy.create_tenant("uni")
            token = await rt.tenancy.create_token(tenant.id, "dp", Role.DP_ADMIN)
            return tenant.id, token.secret
        finally:
            await rt.aclose()

    _, secret = asyncio.run(prepare())
    headers = {"authorization": f"Bearer {secret}"}
    from connector_support import provider_body

    with (
        BackgroundServer(create_app(build_runtime(settings))) as server,
        httpx.Client(base_url=server.url, headers=headers, timeout=30) as http,
    ):
        provider = http.post("/v1/providers", json=provider_body())
        assert provider.status_code == 201, provider.text
        provider_id = provider.json()["id"]
        mapping = http.post(
            f"/v1/providers/{provider_id}/mappings",
            content=yaml.safe_dump(profile(), allow_unicode=True),
            headers={"content-type": "application/yaml"},
        )
        assert mapping.status_code == 201

        body = csv_bytes(roster(200))

        def small_chunks() -> Iterator[bytes]:  # chunked transfer encoding, no length
            for start in range(0, len(body), 1000):
                yield body[start : start + 1000]

        pushed = http.post(
            f"/v1/providers/{provider_id}/roster-uploads",
            content=small_chunks(),
            headers={"content-type": "text/csv"},
        )
        assert pushed.status_code == 201, pushed.text
        assert pushed.json()["rows"]["applied"] == 200
        assert pushed.json()["manifest"]["input_bytes"] == len(body)

        pulled = 0

        def endless() -> Iterator[bytes]:  # 2 GB if the server kept reading
            nonlocal pulled
            block = b"x" * (256 * 1024)
            while pulled < 2 * 1024**3:
                pulled += len(block)
                yield block

        try:
            refused = http.post(
                f"/v1/providers/{provider_id}/roster-uploads",
                content=endless(),
                headers={"content-type": "text/csv"},
            )
            assert refused.status_code == 413
            assert refused.json()["type"].endswith("/payload-too-large")
        except httpx.HTTPError:
            pass  # the server may close the connection before the client finishes sending
        assert pulled < 64 * 1024 * 1024  # stopped at the 2 MiB limit, long before 2 GB
