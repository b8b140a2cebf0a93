"""``pavilion --help`` answers fast: the CLI imports its domains only when a command runs.

Each check runs in a fresh interpreter (a subprocess), where nothing is imported yet.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from pavilion.cli import choices
from pavilion.cli.context import PLATFORM_TENANT_ID

#: What no help text needs: the web stack, the database, the data pipeline, the crypto
#: services, the runtime, settings and logging.
HEAVY = (
    "alembic",
    "fastapi",
    "httpx",
    "joserfc",
    "polars",
    "pydantic_settings",
    "sqlalchemy",
    "structlog",
    "uvicorn",
    "pavilion.api",
    "pavilion.config",
    "pavilion.credentials",
    "pavilion.ingest",
    "pavilion.runtime",
    "pavilion.workflows",
)

#: Every command's help rendered in one fresh interpreter; prints the heavy modules it loaded.
EVERY_HELP = textwrap.dedent(
    """
    import json, sys
    import typer
    from typer.testing import CliRunner
    from pavilion.cli.main import app

    def paths(command, prefix):
        yield prefix
        for name, sub in getattr(command, "commands", {}).items():
            if not sub.hidden:
                yield from paths(sub, [*prefix, name])

    runner = CliRunner()
    failed = []
    for path in paths(typer.main.get_command(app), []):
        result = runner.invoke(app, [*path, "--help"])
        if result.exit_code != 0:
            failed.append(path)
    heavy = sorted(
        name for name in sys.modules
        if any(name == h or name.startswith(h + ".") for h in json.loads(sys.argv[1]))
    )
    print(json.dumps({"failed": failed, "heavy": heavy}))
    """
)

#: The CPU time from a bare interpreter to the root help printed: what ``pavilion --help``
#: costs beyond starting Python. CPU time, not wall time, so that a loaded machine (five
#: engineers on two cores) does not decide the result; the wall time is reported alongside.
TIMED_HELP = textwrap.dedent(
    """
    import io, sys, time, contextlib
    cpu, wall = time.process_time(), time.perf_counter()
    from pavilion.cli.main import main
    sys.argv = ["pavilion", "--help"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main()
    print(time.process_time() - cpu, time.perf_counter() - wall)
    """
)


def _python(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_help_text_renders_without_loading_a_domain() -> None:
    report = json.loads(_python(EVERY_HELP, json.dumps(HEAVY)))
    assert report["failed"] == []
    assert report["heavy"] == []


@pytest.mark.serial
def test_root_help_answers_in_under_half_a_second() -> None:
    # The best of three: the machine is shared, and the claim is about the code.
    runs = [tuple(float(t) for t in _python(TIMED_HELP).split()) for _ in range(3)]
    cpu, wall = min(runs)
    assert cpu < 0.5, f"pavilion --help took {cpu:.2f} s of CPU ({wall:.2f} s on the clock)"


def test_the_cli_choices_are_the_domains_values() -> None:
    from pavilion.credentials.embedded import ALGORITHMS
    from pavilion.credentials.templates import CredentialFormat
    from pavilion.ingest.formats import Format
    from pavilion.tenancy.models import PLATFORM_TENANT_ID as DOMAIN_PLATFORM_TENANT_ID

    assert [f.value for f in choices.DataFormat] == [f.value for f in Format]
    assert [f.value for f in choices.CredentialFormat] == [f.value for f in CredentialFormat]
    assert [c.value for c in choices.Cryptosuite] == list(ALGORITHMS)
    assert PLATFORM_TENANT_ID == DOMAIN_PLATFORM_TENANT_ID
