"""Schema migrations, run as the schema owner; on PostgreSQL they also set up row-level security."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from alembic import command
from alembic.config import Config

MIGRATIONS = "pavilion.store:migrations"


def alembic_config(url: str, app_role: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["app_role"] = app_role
    return config


def app_role_for(app_url: str, migration_url: str) -> str | None:
    """The role row-level security applies to: the app's user when it differs from the owner."""
    app_user = urlsplit(app_url).username
    owner = urlsplit(migration_url).username
    return app_user if app_user and app_user != owner else None


def upgrade(url: str, app_role: str | None = None, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Safe to run again: applied revisions are skipped."""
    config = alembic_config(url, app_role)

    def run() -> None:
        command.upgrade(config, revision)

    # env.py drives its own event loop; keep it off any loop the caller may be running.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        run()
        return
    import threading

    errors: list[BaseException] = []

    def target() -> None:
        try:
            run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
