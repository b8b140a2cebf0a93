"""The API fuzzed against its own OpenAPI document (issue 14, item 4): schemathesis generates
requests for every operation, valid and invalid by the document, and the connector answers
each without a server error, on both databases, with a token of every role.

Bounded to run in well under three minutes on a 2-core machine: a few examples per operation
and generation mode, sent in process (no sockets). Schemathesis's strategies draw the cases;
Hypothesis runs them through ``@given`` inside a plain function that collects them, and they
are then sent over the app's ASGI transport, half with the ids of a real provider and tenant
so that the requests get past "not found" into the code behind it.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from connector_support import Api

#: Examples per operation and generation mode (positive and negative).
EXAMPLES = 6
#: Operations that do seconds of work by design on their first call (an AnonCreds credential
#: definition searches for safe primes); their input handling is tested in their own suites.
SLOW_BY_DESIGN = {("GET", "/v1/anoncreds/providers/{provider_id}/credential-definition")}


def _cases(document: dict[str, Any]) -> list[Any]:
    schema = schemathesis.openapi.from_dict(document)
    cases: list[Any] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SLOW_BY_DESIGN:
            continue
        strategy = st.one_of(operation.as_strategy(generation_mode=mode) for mode in GenerationMode)

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES * 2,
            phases=[Phase.generate],
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def collect(case: Any) -> None:
            cases.append(case)

        collect()
    return cases


def _request(case: Any, index: int, api: Api, provider_id: str) -> dict[str, Any]:
    if index % 2 == 0:  # half the cases name things that exist
        known = {"provider_id": provider_id, "tenant_id": api.tenant_id}
        for name in case.path_parameters or {}:
            if name in known:
                case.path_parameters[name] = known[name]
    roles = sorted(api.tokens)
    token = api.tokens[roles[index % len(roles)]]
    kwargs = case.as_transport_kwargs(base_url="http://connector.test")
    headers = {
        k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "authorization"
    }
    headers["authorization"] = f"Bearer {token}"
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": headers,
        "params": kwargs.get("params"),
    }
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        request["content"] = kwargs["data"] if isinstance(kwargs["data"], bytes | str) else None
        if request["content"] is None:
            request["data"] = kwargs["data"]
    return request


@pytest.mark.timeout(300)
async def test_no_generated_request_gets_a_server_error(api: Api) -> None:
    started = time.monotonic()
    provider = await api.register_provider()
    cases = _cases(api.app.openapi())
    assert len(cases) > 300
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    sent = 0
    for index, case in enumerate(cases):
        try:
            request = _request(case, index, api, provider["id"])
        except (ValueError, TypeError, UnicodeEncodeError):
            continue  # a case no HTTP client can send (a header that is not Latin-1)
        try:
            response = await api.client.request(**request)
        except httpx.InvalidURL:
            continue
        sent += 1
        statuses[response.status_code // 100] += 1
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.path} -> {response.status_code}: {response.text}")
    assert sent > 300
    assert failures == []
    assert statuses[2] > 20  # the fuzzing reached the routes' work, not only their checks
    assert statuses[4] > 100
    assert time.monotonic() - started < 180
