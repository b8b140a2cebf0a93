"""A DP's answer to a lookup, JSON or XML, read into ``{"found": ..., "record": ...}``."""

from __future__ import annotations

from typing import Any

import defusedxml.ElementTree as safe_et  # type: ignore[import-untyped]
import msgspec
from defusedxml import DefusedXmlException

from pavilion.errors import ProviderBadResponse
from pavilion.ingest.errors import MalformedUpload
from pavilion.ingest.formats.xml import PROLOG_LIMIT, local_name, reject_dtd
from pavilion.parsing import MAX_NESTING, nesting_depth_exceeds


def parse_lookup_answer(
    body: bytes, content_type: str | None, record_schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A DP's lookup answer, JSON or XML, as ``{"found": bool, "record": {...}, "as_of": ...}``.

    XML: ``<lookup found="true" as_of="..."><record><field>..</field>...</record></lookup>``;
    a field with child elements is a list; scalar values are converted to the JSON types the
    record schema declares. A DTD is refused, and nothing is fetched.
    """
    media = (content_type or "application/json").partition(";")[0].strip().lower()
    if media in ("application/xml", "text/xml"):
        return _xml_answer(body, record_schema or {})
    try:
        answer = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ProviderBadResponse("the provider answered with invalid JSON") from exc
    except RecursionError:
        raise ProviderBadResponse(
            f"the provider's answer nests deeper than {MAX_NESTING} levels"
        ) from None
    if nesting_depth_exceeds(answer, MAX_NESTING):
        raise ProviderBadResponse(f"the provider's answer nests deeper than {MAX_NESTING} levels")
    if not isinstance(answer, dict):
        raise ProviderBadResponse("the provider's answer is not a JSON object")
    return answer


def _xml_answer(body: bytes, record_schema: dict[str, Any]) -> dict[str, Any]:
    try:
        reject_dtd(body[:PROLOG_LIMIT])
        root = safe_et.fromstring(body, forbid_dtd=True)
    except (MalformedUpload, DefusedXmlException) as exc:
        raise ProviderBadResponse(
            "the provider's XML answer has a DTD (entities are refused)"
        ) from exc
    except safe_et.ParseError as exc:
        raise ProviderBadResponse(f"the provider's XML answer is not well-formed: {exc}") from exc
    found_text = root.attrib.get("found", "").strip().lower()
    if found_text not in ("true", "false"):
        raise ProviderBadResponse('the provider\'s XML answer has no found="true|false"')
    answer: dict[str, Any] = {"found": found_text == "true"}
    if "as_of" in root.attrib:
        answer["as_of"] = root.attrib["as_of"]
    record_element = next((c for c in root if local_name(c.tag) == "record"), None)
    if record_element is not None:
        properties = record_schema.get("properties", {})
        record: dict[str, Any] = {}
        for child in record_element:
            name = local_name(child.tag)
            if len(child):
                record[name] = [item.text or "" for item in child]
            else:
                record[name] = _typed(child.text or "", _json_type(properties.get(name, {})))
        answer["record"] = record
    return answer


def _json_type(prop: dict[str, Any]) -> str:
    kind = prop.get("type")
    if isinstance(kind, str):
        return kind
    for option in prop.get("anyOf", []):
        if isinstance(option, dict) and option.get("type") not in (None, "null"):
            return str(option["type"])
    return "string"


def _typed(text: str, kind: str) -> Any:
    value = text.strip()
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return text
    if kind == "boolean" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if kind == "array":
        return [text] if text else []
    return text
