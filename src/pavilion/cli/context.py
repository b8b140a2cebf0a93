"""What every ``pavilion`` command shares: the invocation's options, its runtime, tenant lookup.

The global options (``--config``) live in a :class:`CliContext` that the main callback builds
for each invocation and :func:`enter` makes current until the invocation's Click context
closes (a context variable, not module or class state: a test's invocation, another thread or
a second process each see their own). Command modules import these public helpers;
``cli/main.py`` imports the command modules, never the other way round.

Nothing heavy is imported here at module level (settings, the runtime, logging): ``pavilion
--help`` builds every command without them, and a command imports them when it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import typer

from pavilion.errors import PavilionError

if TYPE_CHECKING:
    from pavilion.config.settings import Settings
    from pavilion.runtime import Runtime

T = TypeVar("T")

#: The reserved tenant of platform-admin tokens (``pavilion.tenancy.models``; a test holds
#: the two equal, so that this module need not import the tables).
PLATFORM_TENANT_ID: Final = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class CliContext:
    """The options given before the command: ``pavilion --config FILE <command>``."""

    config_file: Path | None = None
    #: Whether this invocation has routed logging through the redacting pipeline yet.
    _logging: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    def settings(self, **overrides: Any) -> Settings:
        """Settings from the config file and ``PAVILION_*`` (the environment wins), then these."""
        from pavilion.config.settings import load_settings

        return load_settings(self.config_file, **overrides)

    def start_logging(self) -> None:
        """Once per invocation: logs go to stderr as redacted JSON at WARNING, so standard
        output carries only what a command prints (a token, a PEM, a signed note). Done when
        a command first asks for settings, not before: ``--help`` needs no logging (and the
        import costs a tenth of a second). ``serve`` reconfigures with its own level."""
        if not self._logging.get("started"):
            from pavilion.observability.logging import configure_logging

            configure_logging("WARNING")
            self._logging["started"] = True


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
    """The running invocation's settings (see :meth:`CliContext.settings`); logging starts."""
    context = cli_context()
    settings = context.settings(**overrides)
    context.start_logging()
    return settings


def run_async(work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Build the runtime, run one piece of async work on it, and close it again."""
    from pavilion.runtime import build_runtime

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
