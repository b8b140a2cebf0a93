"""The CLI's per-invocation context: --config reaches the command and does not outlive it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pavilion.cli.context import CliContext, cli_context, cli_settings, resolve_tenant, run_async
from pavilion.cli.main import app
from pavilion.runtime import Runtime
from pavilion.tenancy.models import PLATFORM_TENANT_ID


def test_config_file_reaches_the_command_and_ends_with_the_invocation(tmp_path: Path) -> None:
    data_dir = tmp_path / "from-config"
    config = tmp_path / "pavilion.yaml"
    config.write_text(f"data_dir: {data_dir}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["--config", str(config), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (data_dir / "pavilion.db").is_file()
    assert cli_context() == CliContext()  # nothing left behind for the next invocation


def test_helpers_outside_an_invocation_use_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAVILION_DATA_DIR", str(tmp_path))
    assert cli_settings().data_dir == tmp_path
    CliRunner().invoke(app, ["db", "upgrade"])

    async def names(rt: Runtime) -> tuple[str, str, str]:
        tenant = await rt.tenancy.create_tenant("acme")
        return (
            await resolve_tenant(rt, "acme"),
            await resolve_tenant(rt, tenant.id),
            await resolve_tenant(rt, "platform"),
        )

    by_name, by_id, platform = run_async(names)
    assert by_name == by_id
    assert platform == PLATFORM_TENANT_ID
