"""Bounded parsing: JSON and YAML past the nesting limit are refused by an error that names the
limit and is the plain parser's own kind, so callers answer it as malformed input."""

from __future__ import annotations

import json

import pytest
import yaml

from pavilion.parsing import (
    MAX_NESTING,
    NestingTooDeep,
    YamlNestingTooDeep,
    load_yaml,
    loads_json,
    text_problem,
)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_at_the_limit_parses_and_one_more_level_is_refused() -> None:
    assert loads_json(_nested(MAX_NESTING)) is not None
    with pytest.raises(NestingTooDeep, match=f"deeper than {MAX_NESTING} levels"):
        loads_json(_nested(MAX_NESTING + 1))


@pytest.mark.parametrize("document", [_nested(10_000), '{"a":' * 10_000 + "1" + "}" * 10_000])
def test_json_ten_thousand_deep_is_refused_not_a_recursion_error(document: str) -> None:
    with pytest.raises(json.JSONDecodeError) as raised:  # what every caller already answers
        loads_json(document, what="the body")
    assert str(raised.value) == f"the body nests deeper than {MAX_NESTING} levels (the limit)"


def test_yaml_at_the_limit_parses_and_past_it_is_refused() -> None:
    assert load_yaml("a: " + _nested(MAX_NESTING - 1)) == {"a": json.loads(_nested(63))}
    with pytest.raises(YamlNestingTooDeep, match=f"deeper than {MAX_NESTING} levels"):
        load_yaml("a: " + _nested(MAX_NESTING))
    with pytest.raises(yaml.YAMLError):
        load_yaml("a:\n" + "".join("  " * i + "- \n" for i in range(10_000)))


def test_yaml_stays_safe() -> None:
    with pytest.raises(yaml.YAMLError):
        load_yaml("!!python/object/apply:os.system ['true']")


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"a": ["b", "c\x00"]}, "NUL"),
        ({"k\x00": 1}, "NUL"),
        (["\ud800"], "surrogate"),
        ({"ok": "Zoë 日本"}, None),
    ],
)
def test_text_problem_finds_what_no_column_holds(document: object, problem: str | None) -> None:
    found = text_problem(document)
    assert (found is None) if problem is None else (problem in (found or ""))
