"""Bounded parsing of documents from outside the process: JSON and YAML with a nesting limit,
and the text rules every stored string obeys.

Python's ``json``, PyYAML and msgspec recurse once per level of nesting, so a body of ten
thousand nested brackets ends in ``RecursionError`` (a 500) instead of an answer. Every parse of
a request body, an upload, a remote document or a token goes through :func:`loads_json` or
:func:`load_yaml`, which refuse a document nested deeper than :data:`MAX_NESTING` levels with
an error that names the limit. YAML aliases may not expand a document past
:data:`MAX_YAML_NODES` nodes (a few hundred bytes of "billion laughs" would otherwise become a
billion nodes for whatever walks the result) nor refer to a node from inside itself. The
errors subclass what the plain parsers raise
(``json.JSONDecodeError``, ``yaml.YAMLError``), so every caller that already answers malformed
input answers a too-deep document the same way.

:func:`text_problem` finds what no database column may hold: a NUL character (PostgreSQL's text
refuses it) and a lone UTF-16 surrogate (not encodable as UTF-8), anywhere in a parsed document.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

#: The deepest nesting (arrays and objects, or YAML sequences and mappings) any document may
#: have. The connector's own documents (credentials, JSON Schemas, profiles) stay under 20.
MAX_NESTING: Final = 64
#: The most nodes a YAML document may hold once its aliases are expanded.
MAX_YAML_NODES: Final = 100_000


class NestingTooDeep(json.JSONDecodeError):
    """A JSON document nested deeper than the limit (a ``JSONDecodeError``: callers that answer
    malformed JSON answer this the same way; ``str()`` is the message alone)."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"{what} nests deeper than {limit} levels (the limit)", "", 0)
        self.args = (self.msg,)
        self.limit = limit


class YamlNestingTooDeep(yaml.YAMLError):
    """A YAML document nested deeper than the limit."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"{what} nests deeper than {limit} levels (the limit)")
        self.limit = limit


class YamlExpansionRefused(yaml.YAMLError):
    """A YAML document whose aliases expand past the node limit or form a cycle."""


def nesting_depth_exceeds(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether a parsed value holds containers nested deeper than ``limit`` (iteratively)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def loads_json(
    data: str | bytes,
    *,
    what: str = "the JSON document",
    max_depth: int = MAX_NESTING,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """``json.loads`` refusing nesting deeper than ``max_depth`` (:class:`NestingTooDeep`)."""
    try:
        value = json.loads(data, object_pairs_hook=object_pairs_hook)
    except RecursionError:
        raise NestingTooDeep(what, max_depth) from None
    if nesting_depth_exceeds(value, max_depth):
        raise NestingTooDeep(what, max_depth)
    return value


def load_yaml(
    text: str | bytes, *, what: str = "the YAML document", max_depth: int = MAX_NESTING
) -> Any:
    """``yaml.safe_load`` that refuses nesting deeper than ``max_depth`` while composing (before
    the recursion could run out of stack), with :class:`YamlNestingTooDeep`."""
    loader = _BoundedLoader(text, what=what, max_depth=max_depth)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream: str | bytes, *, what: str, max_depth: int) -> None:
        super().__init__(stream)
        self._what = what
        self._max_depth = max_depth
        self._depth = 0

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None:
            _check_expansion(node, self._what, self._max_depth)
        return node

    def compose_sequence_node(self, anchor: Any) -> SequenceNode:
        with self._level():
            return super().compose_sequence_node(anchor)

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        with self._level():
            return super().compose_mapping_node(anchor)

    @contextmanager
    def _level(self) -> Iterator[None]:
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                raise YamlNestingTooDeep(self._what, self._max_depth)
            yield
        finally:
            self._depth -= 1


def text_problem(value: Any) -> str | None:
    """What makes a parsed document's text unstorable (a NUL or a lone surrogate in a key or a
    string), or None. Iterative, so it takes a document of any depth."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            problem = _string_problem(item)
            if problem:
                return problem
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return "text may not contain the NUL character (U+0000)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "text may not contain a lone surrogate (U+D800 to U+DFFF)"
    return None


def _check_expansion(root: Node, what: str, max_depth: int) -> None:
    """Count the nodes and levels ``root`` has with every alias expanded, each shared node
    counted once per use but walked once (memoised), so the check itself stays cheap."""
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, depth), expanded
    visiting: set[int] = set()

    def measure(node: Node) -> tuple[int, int]:
        key = id(node)
        known = measured.get(key)
        if known is not None:
            return known
        if isinstance(node, SequenceNode):
            children: list[Node] = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            return 1, 0
        if key in visiting:
            raise YamlExpansionRefused(f"{what} refers to a node from inside itself (an alias)")
        visiting.add(key)
        nodes, depth = 1, 0
        for child in children:
            child_nodes, child_depth = measure(child)
            nodes += child_nodes
            depth = max(depth, child_depth)
            if nodes > MAX_YAML_NODES:
                raise YamlExpansionRefused(
                    f"{what} expands to more than {MAX_YAML_NODES} nodes through its aliases "
                    "(the limit)"
                )
        visiting.discard(key)
        if depth + 1 > max_depth:
            raise YamlNestingTooDeep(what, max_depth)
        measured[key] = (nodes, depth + 1)
        return nodes, depth + 1

    measure(root)
