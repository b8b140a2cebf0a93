"""The XML reader: ``<root><record>...</record>...</root>``, streamed with lxml.

XML is parsed with entity resolution, DTD loading and network access off and ``huge_tree``
off; a document with a DTD (where billion-laughs and external entities live) is refused before
parsing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import polars as pl
from lxml import etree  # type: ignore[import-untyped]

from pavilion.ingest.errors import Issue, MalformedUpload, issue
from pavilion.ingest.formats.core import ROW, Format, RawBatch
from pavilion.ingest.schema import FieldType, RecordSchema

PROLOG_LIMIT: Final = 1 << 20
_DOCTYPE: Final = tuple(
    "<!DOCTYPE".encode(encoding) for encoding in ("utf-8", "utf-16-le", "utf-16-be")
)
_ROOT_START: Final = re.compile(rb"<[A-Za-z_]|<\x00[A-Za-z_]|\x00<\x00[A-Za-z_]")


def _xml_parser_options() -> dict[str, Any]:
    return {
        "resolve_entities": False,
        "no_network": True,
        "load_dtd": False,
        "dtd_validation": False,
        "huge_tree": False,
        "remove_comments": True,
        "remove_pis": True,
    }


def reject_dtd(head: bytes) -> None:
    """Refuse a document type declaration: where entity bombs and external entities live."""
    start = _ROOT_START.search(head)
    prolog = head[: start.start()] if start else head
    if any(marker in prolog for marker in _DOCTYPE):
        raise MalformedUpload(
            "XML with a document type declaration (DTD) is refused: entity expansion "
            "(billion laughs) and external entities are not allowed",
            field="body",
            extra={"reason": "xml-dtd"},
        )
    if start is None and len(head) >= PROLOG_LIMIT:
        raise MalformedUpload("the XML prolog is longer than 1 MiB", field="body")


def local_name(tag: Any) -> str:
    return str(tag).rpartition("}")[2]


def _record_tag(path: Path, schema: RecordSchema) -> str | None:
    if schema.record_element is not None:
        return schema.record_element
    depth = 0
    for event, element in etree.iterparse(
        str(path), events=("start", "end"), **_xml_parser_options()
    ):
        if event == "start":
            depth += 1
            if depth == 2:
                return local_name(element.tag)
        else:
            depth -= 1
    return None


def read_xml(path: Path, schema: RecordSchema) -> RawBatch:
    """``<root><record><field>text</field>...</record>...</root>``; fields may be attributes.

    A list field is an element with one child per item (``<memberships><m>A</m></memberships>``)
    or text split by the field's separator.
    """
    with path.open("rb") as handle:
        reject_dtd(handle.read(PROLOG_LIMIT))
    try:
        return _read_xml(path, schema)
    except etree.XMLSyntaxError as exc:
        line, message = _xml_error(exc)
        raise MalformedUpload(
            f"not well-formed XML at line {line}: {message}", field="body", extra={"line": line}
        ) from exc


def _xml_error(exc: etree.XMLSyntaxError) -> tuple[int, str]:
    """lxml's own message can be vague ("no element found"); its error log is precise."""
    for entry in exc.error_log:
        return int(entry.line), str(entry.message)
    return int(exc.lineno or 0), str(exc.msg)  # pragma: no cover - the log is never empty


def _read_xml(path: Path, schema: RecordSchema) -> RawBatch:
    tag = _record_tag(path, schema)
    if tag is None:
        raise MalformedUpload("the XML document holds no records", field="body")
    reader = _XmlColumns(schema)
    add = reader.add
    root: Any = None
    for _, element in etree.iterparse(
        str(path), events=("end",), tag="{*}" + tag, **_xml_parser_options()
    ):
        if root is None:
            root = element.getroottree().getroot()
        if element is root or root[0] is not element:  # lxml keeps one proxy per node
            _misplaced(element, root, tag)
        add(element)
        element.clear()
        del root[0]
    if root is not None:
        for leftover in root:
            _unexpected(leftover, tag)
    if reader.rows == 0:
        raise MalformedUpload(f"the XML document holds no <{tag}> records", field="body")
    return RawBatch(reader.frame(), Format.XML, reader.type_errors)


def _misplaced(element: Any, root: Any, tag: str) -> None:
    """A record that is not the root's first remaining child: nested, or after a stranger."""
    if element.getparent() is not root:
        raise MalformedUpload(
            f"XML records must be children of the root: <{tag}> at line "
            f"{element.sourceline} is nested deeper",
            field="body",
            extra={"line": element.sourceline},
        )
    _unexpected(element.getprevious(), tag)


def _unexpected(element: Any, tag: str) -> None:
    raise MalformedUpload(
        f"unexpected element <{local_name(element.tag)}> at line {element.sourceline} "
        f"(records are <{tag}> elements)",
        field="body",
        extra={"line": element.sourceline},
    )


#: Joins the items of a list field given as child elements; XML 1.0 text cannot hold U+001F
#: (not even as a character reference), so splitting on it restores exactly the items.
_ITEMS: Final = "\x1f"


class _XmlColumns:
    """Record elements into columns: one list per field, padded where a record lacks it.

    The common child (a field with text, in a column that is up to date) is appended inline;
    everything else (attributes, a repeated or empty field, nested elements) goes through
    ``_child``. A list field's items are stored joined and split by polars in ``frame``.
    """

    def __init__(self, schema: RecordSchema) -> None:
        self.fields = schema.by_name
        self.lists = {f.name: f.separator for f in schema.fields if f.type is FieldType.LIST}
        self.columns: dict[str, list[Any]] = {}
        self.by_tag: dict[str, list[Any]] = {}
        self.item_rows: dict[str, list[int]] = {}
        self.type_errors: list[Issue] = []
        self.rows = 0

    def _column(self, name: str, index: int) -> list[Any]:
        column = self.columns.get(name)
        if column is None:
            column = self.columns[name] = []
        if len(column) < index:
            column.extend([None] * (index - len(column)))
        return column

    def _set(self, name: str, index: int, value: Any) -> None:
        column = self._column(name, index)
        if len(column) > index:  # the same field twice in one record
            column[index] = None
            self._error(index, name, f"<{name}> appears more than once")
        else:
            column.append(value)

    def _error(self, index: int, name: str, message: str) -> None:
        row = index + 1
        self.type_errors.append(issue(f"row {row}: {message}", field=name, row=row, code="type"))

    def add(self, element: Any) -> None:
        index = self.rows
        self.rows = index + 1
        attrib = element.attrib
        if attrib:
            for key, value in attrib.items():
                self._set(local_name(key), index, value)
        by_tag = self.by_tag
        for child in element:
            text = child.text
            column = by_tag.get(child.tag)
            if column is not None and text and len(column) == index and not text.isspace():
                column.append(text)
            else:
                self._child(child, index)

    def _child(self, child: Any, index: int) -> None:
        tag = child.tag
        name = local_name(tag)
        text = child.text
        if text and not text.isspace():
            self._set(name, index, text)
        elif len(child):
            if name in self.lists:
                self._set(name, index, _ITEMS.join(item.text or "" for item in child))
                self.item_rows.setdefault(name, []).append(index)  # a repeat stays null
            elif name in self.fields:
                self._set(name, index, None)
                self._error(index, name, f"<{name}> holds nested elements, expected text")
            else:
                self._set(name, index, "".join(child.itertext()))
        else:
            self._set(name, index, text or None)
        self.by_tag[tag] = self.columns[name]

    def frame(self) -> pl.DataFrame:
        rows = self.rows
        data: dict[str, pl.Series] = {
            ROW: pl.int_range(1, rows + 1, dtype=pl.Int64, eager=True).alias(ROW)
        }
        for name, column in self.columns.items():
            column.extend([None] * (rows - len(column)))
            text = pl.Series(name, column, dtype=pl.String)
            separator = self.lists.get(name)
            if separator is None:
                data[name] = text
                continue
            items = pl.Series(name, [False] * rows, dtype=pl.Boolean)
            marked = self.item_rows.get(name)
            if marked:
                items.scatter(marked, True)
            data[name] = pl.select(
                pl.when(items).then(text.str.split(_ITEMS)).otherwise(text.str.split(separator))
            ).to_series()
        return pl.DataFrame(data)
