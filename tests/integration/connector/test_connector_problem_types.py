"""Every problem type is documented at its URI: each ``code`` the connector, the DP agent or
the CLI can produce has its heading in docs/PROBLEMS.md (``<base><code>`` leads there), and
both servers use the one scheme."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pavilion
from connector_support import Api
from pavilion.dpagent.problems import PROBLEM_TYPE_PREFIX
from pavilion.errors import PROBLEM_TYPE_BASE, PavilionError

ROOT = Path(__file__).parents[3]
#: Types that no exception class carries: rendered by the HTTP layers themselves.
FRAMEWORK_TYPES = {"internal", "malformed-json", "not-found", "method-not-allowed"}


def _codes() -> set[str]:
    for module in pkgutil.walk_packages(pavilion.__path__, "pavilion."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    codes: set[str] = set()
    pending: list[type[PavilionError]] = [PavilionError]
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending += cls.__subclasses__()
    return codes | FRAMEWORK_TYPES


def test_every_problem_type_has_its_heading() -> None:
    page = (ROOT / "docs" / "PROBLEMS.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## ([a-z0-9-]+)$", page, re.MULTILINE))
    missing = sorted(_codes() - headings)
    assert missing == [], f"docs/PROBLEMS.md lacks {missing}"
    stale = sorted(headings - _codes())
    assert stale == [], f"docs/PROBLEMS.md documents types nothing produces: {stale}"


def test_the_connector_and_the_agent_share_one_scheme() -> None:
    assert PROBLEM_TYPE_PREFIX == PROBLEM_TYPE_BASE


async def test_an_unknown_path_is_the_same_type_from_both_servers(api: Api) -> None:
    from datetime import UTC, datetime

    import httpx
    from pydantic import SecretStr

    from pavilion.dpagent.app import create_agent_app
    from pavilion.dpagent.config import AgentConfig
    from pavilion.dpagent.records import RecordIndex

    agent = create_agent_app(
        AgentConfig(api_key=SecretStr("k" * 32)), RecordIndex([], as_of=datetime.now(UTC))
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=agent), base_url="http://agent"
    ) as client:
        answer = await client.get("/no/such/path", headers={"authorization": "Bearer " + "k" * 32})
    assert answer.status_code == 404
    assert answer.json()["type"] == PROBLEM_TYPE_BASE + "not-found"
    connector = await api.client.get("/no/such/path")
    assert connector.status_code == 404
    assert connector.json()["type"] == answer.json()["type"]
    assert connector.json()["title"] == "Not Found"
    wrong_method = await api.client.delete("/healthz")
    assert wrong_method.json()["type"] == PROBLEM_TYPE_BASE + "method-not-allowed"
