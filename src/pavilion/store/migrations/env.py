"""Alembic environment: runs migrations over the async engine as the schema owner."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from pavilion.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    # ``pavilion.store.migrate.upgrade`` passes a dict to learn what this run did: the
    # revisions applied and the tables before and after.
    report: dict[str, Any] | None = config.attributes.get("report")

    def applied(
        ctx: MigrationContext,
        step: MigrationInfo,
        heads: Collection[Any],
        run_args: Mapping[str, Any],
    ) -> None:
        if report is not None and step.is_upgrade:
            revision = step.up_revision
            doc = (getattr(revision, "doc", "") or "").strip().splitlines()
            report.setdefault("applied", []).append((step.up_revision_id, doc[0] if doc else ""))

    if report is not None:
        report["tables_before"] = _tables(connection)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        on_version_apply=applied,
    )
    with context.begin_transaction():
        context.run_migrations()
    if report is not None:
        report["tables_after"] = _tables(connection)


def _tables(connection: Connection) -> list[str]:
    return sorted(set(inspect(connection).get_table_names()) - {"alembic_version"})


async def _run_async() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():  # pragma: no cover - offline SQL generation is not offered
    raise SystemExit("pavilion migrations run online only: use `pavilion db upgrade`")
asyncio.run(_run_async())
