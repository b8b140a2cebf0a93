"""What every ``pavilion`` command shares: the invocation's options, its runtime, tenant lookup.

The global options (``--config``) live in a :class:`CliContext` that the main callback builds
for each invocation and :func:`enter` makes current until the invocation's Click context
closes (a context variable, not module or class state: a test's invocation, another thread or
a second process each see their own). Command modules import these public helpers;
``cli/main.py`` imports the command modules, never the other way round.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer

from pavilion.config.settings import Settings, load_settings
from pavilion.errors import PavilionError
from pavilion.runtime import Runtime, build_runtime
from pavilion.tenancy.models import PLATFORM_TENANT_ID

T = TypeVar("T")


@dataclass(frozen=True)
class CliContext:
    """The options given before the command: ``pavilion --config FILE <command>``."""

    config_file: Path | None = None

    def settings(self, **overrides: Any) -> Settings:
        """Settings from the config file and ``PAVILION_*`` (the environment wins), then these."""
        return load_settings(self.config_file, **overrides)


_current: ContextVar[CliContext | None] = ContextVar("pavilion_cli_context", default=None)


def enter(ctx: typer.Context, cli: CliContext) -> None:
    """Make ``cli`` the running invocation's context until ``ctx`` closes."""
    ctx.obj = cli
    token = _current.set(cli)
    ctx.call_on_close(lambda: _current.reset(token))


def cli_context() -> CliContext:
    """The running invocation's context; the defaults outside a command (a bare call)."""
    return _current.get() or CliContext()


def cli_settings(**overrides: Any) -> Settings:
    """The running invocation's settings (see :meth:`CliContext.settings`)."""
    return cli_context().settings(**overrides)


def run_async(work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Build the runtime, run one piece of async work on it, and close it again."""
    settings = cli_settings()

    async def main() -> T:
        rt = build_runtime(settings)
        try:
            return await work(rt)
        finally:
            await rt.aclose()

    return asyncio.run(main())


async def resolve_tenant(rt: Runtime, name_or_id: str) -> str:
    """A tenant's id from its id or its name; ``platform`` is the platform tenant."""
    if name_or_id == "platform":
        return PLATFORM_TENANT_ID
    try:
        return (await rt.tenancy.get_tenant(name_or_id)).id
    except PavilionError:
        return (await rt.tenancy.find_tenant_by_name(name_or_id)).id
