"""Bounded parsing: JSON and YAML past the nesting limit are refused by an error that names the
limit and is the plain parser's own kind, so callers answer it as malformed input."""

from __future__ import annotations

import json

import pytest
import yaml

from pavilion.parsing import (
    MAX_NESTING,
    MAX_YAML_NODES,
    NestingTooDeep,
    YamlExpansionRefused,
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


def _laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines)


def test_yaml_billion_laughs_is_refused_before_anything_walks_it() -> None:
    document = _laughs(9)  # 500 bytes, 9**9 = 387 million strings once expanded
    assert len(document) < 1000
    with pytest.raises(yaml.YAMLError, match=f"more than {MAX_YAML_NODES} nodes"):
        load_yaml(document, what="the mapping")


def test_yaml_aliases_within_the_limit_still_work() -> None:
    shared = load_yaml("base: &base {kind: csv, delimiter: ','}\nfirst: *base\nsecond: *base")
    assert shared["first"] == shared["second"] == {"kind": "csv", "delimiter": ","}
    assert load_yaml(_laughs(3))["a2"][0][0] == ["lol"] * 9  # 9**3 leaves: fine


def test_yaml_aliases_may_not_deepen_a_document_past_the_limit() -> None:
    deep = "[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1)
    with pytest.raises(YamlNestingTooDeep):
        load_yaml(f"a: &deep {deep}\nb: [[*deep]]")


def test_a_yaml_node_that_contains_itself_is_refused() -> None:
    with pytest.raises(YamlExpansionRefused, match="from inside itself"):
        load_yaml("&loop [1, *loop]")
